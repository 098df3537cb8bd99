"""The dedup diagnosis: from one test's ``MatchResult`` to findings, each in its
platform's words (near misses, missing twins, retries, duplicates, timing, payload).
"""

from __future__ import annotations

import bisect
import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import platforms
from .depth import MAX_JSON_DEPTH, is_too_deep
from .events import Event
from .findings import SEVERITY_RANK, Finding
from .matching import MatchResult, Pair
from .nearmiss import COMPARISONS, CandidateIndex
from .wire import loads

_ID_FIX = ("pass one id to both sides, byte for byte: the tag's event id for NAME in the page "
           "and the server call's event id")


@dataclass
class DiagnosisSettings:
    #: a server twin arriving later than this (seconds) is reported as late
    late_after: float = 3.0
    #: a server twin arriving earlier than the browser's by more than this is a race
    race_tolerance: float = 2.0
    max_age_days: float = 7.0
    future_tolerance: float = 300.0


# --- comparing ids and names ------------------------------------------------------------


def explain_id_difference(browser_id: str, server_id: str) -> str | None:
    """A sentence on how two ids differ when they are near misses; None if unrelated."""
    if browser_id == server_id:
        return None
    if browser_id.strip() == server_id.strip():
        return "they differ only in surrounding whitespace (" + _ws(browser_id, server_id) + ")"
    if browser_id.lower() == server_id.lower():
        return "they differ only in letter case"
    if browser_id.strip().lower() == server_id.strip().lower():
        return ("they differ in letter case and in surrounding whitespace ("
                + _ws(browser_id, server_id) + ")")
    if server_id.startswith(browser_id):
        return f"the server id has the extra suffix {server_id[len(browser_id):]!r}"
    if server_id.endswith(browser_id):
        return f"the server id has the extra prefix {server_id[:-len(browser_id)]!r}"
    if browser_id.startswith(server_id):
        return f"the browser id has the extra suffix {browser_id[len(server_id):]!r}"
    if browser_id.endswith(server_id):
        return f"the browser id has the extra prefix {browser_id[:-len(server_id)]!r}"
    if min(len(browser_id), len(server_id)) < 4:
        return None
    matcher = difflib.SequenceMatcher(None, browser_id, server_id)
    # the cheap upper bounds first: most pairs offered are unrelated
    if matcher.real_quick_ratio() < 0.75 or matcher.quick_ratio() < 0.75:
        return None
    ratio = matcher.ratio()
    if ratio >= 0.75 and min(len(browser_id), len(server_id)) >= 4:
        pairs = zip(browser_id + "\0", server_id + "\0", strict=False)
        at = next(i for i, (a, b) in enumerate(pairs) if a != b)
        return f"they first differ at character {at + 1}"
    return None


def _ws(a: str, b: str) -> str:
    def shape(s: str) -> str:
        return ("leading " if s != s.lstrip() else "") + ("trailing " if s != s.rstrip() else "")
    parts = [f"{side} has {shape(s)}whitespace" for side, s in (("browser", a), ("server", b))
             if shape(s)]
    return "; ".join(parts)


def side_by_side(browser: Event, server: Event) -> list[str]:
    """The two copies aligned, so a differing name or id stands out; the pixel is
    shown only when it differs too."""
    names = [repr(browser.event_name), repr(server.event_name)]
    ids = [repr(browser.event_id), repr(server.event_id)]
    name_w, id_w = max(map(len, names)), max(map(len, ids))
    pixels = browser.pixel_id != server.pixel_id
    return [
        (f"{side:<8} {name:<{name_w}} id {eid:<{id_w}}"
         + (f" pixel {event.pixel_id}" if pixels else "")).rstrip()
        for side, name, eid, event in (("browser:", names[0], ids[0], browser),
                                       ("server:", names[1], ids[1], server))
    ]


# --- the diagnosis ----------------------------------------------------------------------


def diagnose(
    result: MatchResult,
    settings: DiagnosisSettings | None = None,
    *,
    earlier_events: Sequence[Event] = (),
) -> list[Finding]:
    """Every finding for one test's events. ``earlier_events``: other tests' events,
    used to catch event ids reused across the session."""
    settings = settings or DiagnosisSettings()
    findings: list[Finding] = []
    findings += _undecodable(result)
    explained_findings, leftover_browser, leftover_server = _unmatched(result)
    findings += explained_findings
    findings += _duplicates(result)
    findings += _retries_and_one_side(result, leftover_browser, leftover_server)
    findings += _reused_ids(result, earlier_events)
    findings += _timing(result, settings)
    findings += _payload(result)
    findings += _platforms_own(result)
    findings = _one_wrong_pixel_finding_per_pixel(findings)
    in_platform_words(findings)
    findings.sort(key=lambda f: (-SEVERITY_RANK[f.severity], _first_seq(f)))
    return findings


def _platforms_own(result: MatchResult) -> list[Finding]:
    """What only a platform knows to look for: its own rules on the whole capture
    (GA4's empty transaction ids) and its cookie and click ids on each merged pair."""
    out: list[Finding] = []
    for name in dict.fromkeys(e.platform for e in result.events):
        try:
            platform = platforms.get(name)
        except KeyError:
            continue
        out += platform.findings(result)
        for pair in result.pairs:
            if pair.browser.platform == name:
                out += platform.identity_findings(pair)
    return out


def _one_wrong_pixel_finding_per_pixel(findings: list[Finding]) -> list[Finding]:
    """A backend posting to the wrong pixel does it for every event: say it once."""
    groups: dict[tuple[Any, ...], list[Finding]] = {}
    for finding in findings:
        if finding.code == "wrong-pixel" and len(finding.events) == 2:
            browser, server = finding.events
            groups.setdefault((browser.platform, browser.pixel_id, server.pixel_id),
                              []).append(finding)
    out = [f for f in findings if f.code != "wrong-pixel" or len(f.events) != 2]
    for (_, browser_pixel, server_pixel), group in groups.items():
        if len(group) == 1:
            out.extend(group)
            continue
        names = sorted({f.event_name or "?" for f in group})
        out.append(Finding(
            "wrong-pixel",
            f"{len(group)} server events ({', '.join(names)}) went to pixel {server_pixel}; "
            f"the page's browser events went to pixel {browser_pixel}",
            group[0].fix, [e for f in group for e in f.events],
            [f"e.g. {line}" for line in group[0].details], group[0].platform,
            group[0].event_name,
        ))
    return out


def _first_seq(finding: Finding) -> int:
    return min((e.seq for e in finding.events), default=-1)


def client_of(event: Event) -> str:
    """The sending client as its User-Agent names it (an SDK names itself there)."""
    agent = event.raw.header("user-agent") if event.raw is not None else None
    return agent or "a client that sends no User-Agent"


def _undecodable(result: MatchResult) -> list[Finding]:
    out = []
    for event in result.undecodable:
        where = "pixel hit" if event.source == "browser" else "server call"
        url = event.raw.url if event.raw else "?"
        status = event.raw.response_status if event.raw else None
        details = [f"request: {event.raw.method if event.raw else '?'} {url}",
                   f"client: {client_of(event)}"]
        if status is not None:
            details.append(f"answered: HTTP {status}")
        if is_too_deep(event.error):
            out.append(Finding(
                "payload-too-deep",
                f"{event.platform} {where} arrived with JSON nested deeper than "
                f"{MAX_JSON_DEPTH} levels, so it was not read: {event.error}",
                "send the event's fields flat, as the platform documents them (a few levels "
                "at most); a structure this deep is usually an object serialized into "
                "itself. Its bytes are kept in the capture artifacts",
                [event], details, event.platform, event.event_name,
            ))
            continue
        out.append(Finding(
            "undecodable-request",
            f"{event.platform} {where} arrived but could not be decoded: {event.error}",
            "fix the code that builds this request; its bytes are kept in the capture "
            "artifacts" if event.source == "server" else
            "check the tag that fires this hit (a hand-built URL or a truncated beacon)",
            [event], details, event.platform, event.event_name,
        ))
    return out


def _error_message(event: Event) -> str:
    return _platform(event).answer_text(event)


def _platform(event: Event) -> platforms.Platform:
    """The event's platform, or a neutral stand-in for one nobody registered."""
    try:
        return platforms.get(event.platform)
    except KeyError:
        return platforms.UNKNOWN


def in_platform_words(findings: list[Finding]) -> list[Finding]:
    """Each finding's fix in its platform's own words (its tag's call, its API's
    field), where the platform has them; the neutral text stays otherwise."""
    for finding in findings:
        if finding.platform is None:
            continue
        try:
            platform = platforms.get(finding.platform)
        except KeyError:
            continue
        event = finding.events[0] if finding.events else None
        better = platform.fix(finding.code, event)
        if better:
            finding.fix = better
    return findings


def _unmatched(result: MatchResult) -> tuple[list[Finding], list[Event], list[Event]]:
    """Explain browser-only and server-only events by their nearest counterpart."""
    out: list[Finding] = []
    browser_left = list(result.browser_only)
    server_left = list(result.server_only)

    # A server copy re-sent under a new id after a rejected call is a retry, not a
    # near miss, even when the new id happens to resemble the old one.
    rejected_ids: dict[tuple[Any, ...], set[str | None]] = {}
    for r in result.rejected:
        rejected_ids.setdefault((r.event_name, _identity(r)), set()).add(r.event_id)
    retry_like = {id(s) for s in server_left
                  if rejected_ids.get((s.event_name, _identity(s)), set()) - {s.event_id}}
    # Near misses first: each unmatched browser event takes its best server counterpart,
    # among the few the index offers (same normalised id, or nearest same-named in time).
    servers = CandidateIndex([s for s in server_left if s.event_id is not None
                              and id(s) not in retry_like],
                             lambda e: e, lambda e: (e.platform, e.event_name))
    paired_browser: set[int] = set()
    for browser in browser_left:
        if browser.event_id is None:
            continue
        best = None
        for server in servers.candidates(browser):
            if server.platform != browser.platform:
                continue
            COMPARISONS.comparisons += 1
            near = _near_miss(browser, server)
            if near is not None and (best is None or near[0] < best[0]):
                best = (near[0], server, near[1])
        if best is not None:
            _, server, finding = best
            out.append(finding)
            paired_browser.add(id(browser))
            servers.take(server)
    browser_left = [b for b in browser_left if id(b) not in paired_browser]
    server_left = [s for s in server_left if not servers.taken(s)]

    # Then events without an id, next to a same-named counterpart where there is one.
    gone: set[int] = set()
    for source, pool, others in (("server", server_left, browser_left),
                                 ("browser", browser_left, server_left)):
        named: dict[tuple[Any, ...], list[Event]] = {}
        for other in reversed(others):
            named.setdefault((other.event_name, other.platform), []).append(other)
        for event in [e for e in pool if e.event_id is None and id(e) not in gone]:
            same = named.get((event.event_name, event.platform), [])
            while same and id(same[-1]) in gone:
                same.pop()
            twin = same.pop() if same else None
            gone.add(id(event))
            involved = [event]
            details = []
            if twin is not None:
                gone.add(id(twin))
                involved.append(twin)
                details.append(f"the {twin.source} {twin.event_name} has id {twin.event_id!r}")
            words = _platform(event)
            fix = (f"send the event id in {words.api_name} call, the same value as "
                   f"{words.tag_name} sends" if source == "server" else
                   f"pass the event id to {words.tag_name} for this event, the same id the "
                   "server sends")
            out.append(Finding(
                "missing-event-id",
                f"the {source} {event.event_name} has no event id, so it cannot be "
                "deduplicated", fix, involved, details, event.platform, event.event_name,
            ))
    browser_left = [e for e in browser_left if id(e) not in gone]
    server_left = [e for e in server_left if id(e) not in gone]
    return out, browser_left, server_left


def _near_miss(browser: Event, server: Event) -> tuple[int, Finding] | None:
    """(rank, finding) when the two look like one conversion; lower rank is closer."""
    same_id = browser.event_id == server.event_id
    id_note = None if same_id or browser.event_id is None or server.event_id is None \
        else explain_id_difference(browser.event_id, server.event_id)
    same_name = browser.event_name == server.event_name
    # a side that names no pixel (an API call that names the conversion rule, not the
    # tag's own id) is not a different pixel
    other_pixel = None not in (browser.pixel_id, server.pixel_id) and \
        browser.pixel_id != server.pixel_id
    if same_id and same_name and other_pixel:
        return 0, Finding(
            "wrong-pixel",
            f"{browser.event_name} id={browser.event_id!r} went to pixel {browser.pixel_id} "
            f"from the browser but to pixel {server.pixel_id} from the server",
            f"send the server call to the pixel the page initialises ({browser.pixel_id})",
            [browser, server], side_by_side(browser, server), browser.platform,
            browser.event_name,
        )
    if other_pixel:
        return None
    if (same_id or id_note) and not same_name:
        case_only = (browser.event_name or "").lower() == (server.event_name or "").lower()
        how = ("event names are case-sensitive" if case_only else
               "the two sides name the same conversion differently")
        details = side_by_side(browser, server)
        if id_note:
            details.append(f"and the ids differ too: {id_note}")
        return 1, Finding(
            "event-name-mismatch",
            f"browser {browser.event_name!r} and server {server.event_name!r} carry "
            f"{'the same id' if same_id else 'nearly the same id'}; {how}",
            f"use one event name on both sides (the standard name is probably "
            f"{_standard_name(_platform(browser), browser.event_name, server.event_name)!r})."
            f" {platforms.get(browser.platform).dedup_rule()}",
            [browser, server], details, browser.platform, browser.event_name,
        )
    if same_name and id_note:
        return 2, Finding(
            "near-miss-event-id",
            f"{browser.event_name}: browser id {browser.event_id!r} and server id "
            f"{server.event_id!r} nearly match: {id_note}",
            _ID_FIX.replace("NAME", repr(browser.event_name)),
            [browser, server], side_by_side(browser, server), browser.platform,
            browser.event_name,
        )
    return None


def _standard_name(platform: platforms.Platform, *names: str | None) -> str:
    for name in names:
        for standard in platform.standard_events:
            if name and name.lower() == standard.lower():
                return standard
    return next((n for n in names if n), "")


def _duplicates(result: MatchResult) -> list[Finding]:
    out = []
    for dup in result.duplicates:
        first = dup.events[0]
        name, eid = first.event_name, first.event_id
        if _distinct_payloads(dup.events):
            continue  # one id for different conversions: reported as reused-event-id
        times = ", ".join(f"+{e.arrival_time - first.arrival_time:.2f}s" for e in dup.events[1:])
        if dup.source == "browser":
            pages = sorted({e.page_url or "?" for e in dup.events})
            out.append(Finding(
                "duplicate-browser-trigger",
                f"browser fired {name} id={eid!r} {len(dup.events)} times (again at {times})",
                "make the tag fire once: look for a trigger bound twice in the tag manager, "
                "a second call of the tag for this event, or a page that re-fires on reload",
                dup.events, [f"page: {p}" for p in pages], first.platform, name,
            ))
        else:
            out.append(Finding(
                "duplicate-server-send",
                f"backend sent {name} id={eid!r} {len(dup.events)} times (again at {times}); "
                "the platform drops the copies, but each one is a wasted call",
                "send each event once, and retry only after a failed answer",
                dup.events, [], first.platform, name,
            ))
    return out


def _identity(event: Event) -> tuple[Any, ...]:
    """What tells two conversions apart: order id, value, contents and the page, and,
    without an order id, the customer data too.

    A retry re-sends the same body, so all of these agree; two PageViews of
    different pages differ at least in the page. Without an order id (some platforms'
    payloads have none) two customers buying the same thing at the same price would
    otherwise look like one conversion sent twice.
    """
    data = event.custom_data
    page = (event.page_url or "").split("?", 1)[0].split("#", 1)[0]
    order = str(data.get("order_id", ""))
    customer = "" if order else json.dumps(event.user_data, sort_keys=True, default=str)
    return (order, _number(data.get("value")), json.dumps(_ids(data), sort_keys=True), page,
            customer)


def _distinct_payloads(events: Sequence[Event]) -> bool:
    return len({_identity(e) for e in events}) > 1


def _transient(event: Event) -> bool:
    """Was the answer one a client should retry? The platform's answer says."""
    return _platform(event).is_transient(event)


def _answer_line(event: Event) -> str:
    status = event.raw.response_status if event.raw else None
    return f"answered {status}: {_error_message(event)}"


def _retries_and_one_side(
    result: MatchResult, browser_left: list[Event], server_left: list[Event]
) -> list[Finding]:
    """What happened to server calls: retried, rejected, given up, or never sent."""
    out: list[Finding] = []
    # Paired copies first: the one the platform merged is the original.
    candidates = [p.server for p in result.pairs] + list(result.server_only) + \
        list(result.rejected)
    by_identity: dict[tuple[Any, ...], list[Event]] = {}
    for s in candidates:
        by_identity.setdefault((s.event_name, s.platform, _identity(s)), []).append(s)
    rejected_ids = {id(e) for e in result.rejected}
    browser_by_key: dict[tuple[Any, ...], list[Event]] = {}
    for b in reversed(browser_left):
        browser_by_key.setdefault(_key_of(b), []).append(b)
    gone: set[int] = set()

    def take_browser_twin(of: Event) -> Event | None:
        same = browser_by_key.get(_key_of(of), [])
        while same and id(same[-1]) in gone:
            same.pop()
        if not same:
            return None
        gone.add(id(same[-1]))
        return same.pop()

    retries: set[int] = set()
    explained_keys: set[tuple[Any, ...]] = set()
    for server in server_left:
        # Arrival order proves nothing: a backend's workers may send the retry first.
        original = next((s for s in by_identity.get(
            (server.event_name, server.platform, _identity(server)), [])
            if s is not server and id(s) not in retries
            and s.event_id != server.event_id), None)
        if original is None:
            continue
        retries.add(id(server))
        involved = [original, server]
        if id(original) in rejected_ids:
            explained_keys.add(_key_of(original))
            twin = take_browser_twin(original)
            if twin is not None:
                involved.insert(0, twin)
        if id(original) in rejected_ids:
            what = (f"first sent as {original.event_id!r} and {_answer_line(original)}; "
                    f"the retry used a new id {server.event_id!r}, so the browser copy "
                    "no longer has a server twin with its id")
        else:
            what = (f"sent as {original.event_id!r} and again as {server.event_id!r} with "
                    "the same payload: the platform counts it twice")
        out.append(Finding(
            "server-retry-new-id",
            f"backend re-sent {server.event_name} under a new id: {what}",
            "generate the event id once per conversion and reuse it on every retry",
            involved, [], server.platform, server.event_name,
        ))

    accepted = [p.server for p in result.pairs] + list(result.server_only)
    groups: dict[tuple[Any, ...], list[Event]] = {}
    for event in result.rejected:
        groups.setdefault(_key_of(event), []).append(event)
    for key, attempts in groups.items():
        if key in explained_keys:
            continue
        first = attempts[0]
        if first.event_id is not None and any(_same_key(a, first) for a in accepted):
            out.append(Finding(
                "retried-after-error",
                f"server {first.event_name} id={first.event_id!r} was {_answer_line(first)}; "
                "the backend retried with the same id and got through",
                "nothing to change: this is the retry behaviour the platform expects",
                attempts, [], first.platform, first.event_name,
            ))
            continue
        twin = take_browser_twin(first)
        involved = ([twin] if twin else []) + attempts
        reasons = [str(r) for a in attempts for r in a.extra.get("rejection") or []]
        details = [f"attempt {i + 1}: {_answer_line(a)}" for i, a in enumerate(attempts)]
        details += [f"why: {r}" for r in dict.fromkeys(reasons)]
        lost = "; the browser copy has no server twin" if twin else ""
        if _transient(attempts[-1]) and len(attempts) == 1:
            out.append(Finding(
                "transient-error-not-retried",
                f"server {first.event_name} id={first.event_id!r} got a transient error and "
                f"the backend never retried it: the event is lost{lost}",
                "retry 5xx, 429 and is_transient answers with backoff, keeping the same "
                "event_id; log every non-2xx answer",
                involved, details, first.platform, first.event_name,
            ))
        elif _transient(attempts[-1]):
            out.append(Finding(
                "server-gave-up",
                f"server {first.event_name} id={first.event_id!r} failed {len(attempts)} times "
                f"and the backend gave up: the event is lost{lost}",
                "retry transient errors for longer (with backoff) or queue the event for "
                "later delivery, keeping the same event_id",
                involved, details, first.platform, first.event_name,
            ))
        else:
            out.append(Finding(
                "server-call-rejected",
                f"server {first.event_name} id={first.event_id!r} was {_answer_line(first)}"
                f": the platform never counted it{lost}",
                "fix the request (see why:) and make the backend log and act on "
                "non-2xx answers",
                involved, details, first.platform, first.event_name,
            ))

    server_left = [s for s in server_left if id(s) not in retries]
    browser_left = [b for b in browser_left if id(b) not in gone]
    undecodable = _undecodable_server_calls(result)
    claimed: set[int] = set()
    for event in browser_left:
        names = dict.fromkeys((None, event.event_name))
        # A call that could not be read is the twin of one conversion at most: the
        # first browser event near it in time claims it (in one test, all of them).
        arrived = [e for _, e in sorted(
            (pair for name in names for pair in _near(undecodable.get((event.platform, name),
                                                                      ([], [])), event)
             if id(pair[1]) not in claimed),
            key=lambda pair: pair[0])]
        if not arrived:
            continue
        claimed.update(id(a) for a in arrived)
        gone.add(id(event))
        reasons = list(dict.fromkeys(str(a.error) for a in arrived))
        out.append(Finding(
            "server-event-undecodable",
            f"browser {event.event_name} id={event.event_id!r} has no server twin that "
            f"counts: {len(arrived)} server call(s) arrived in this test but could not be "
            f"decoded, so the platform cannot count them",
            "fix the server call's body (see why:); the platform rejects what it cannot "
            "read, so this conversion is counted from the browser only",
            [event, *arrived],
            [f"why: {r}" for r in reasons[:3]]
            + [f"client: {c}" for c in dict.fromkeys(client_of(a) for a in arrived)],
            event.platform, event.event_name,
        ))
    for event in browser_left:
        if id(event) in gone:
            continue
        out.append(Finding(
            "server-event-missing",
            f"browser {event.event_name} id={event.event_id!r} has no server twin: "
            f"{_platform(event).api_name} call never arrived within the wait",
            "check that the backend sends this event (and its logs for errors); if it is "
            "only late, wait longer (timeout= of the assertion, --timeout of the command)",
            [event], [], event.platform, event.event_name,
        ))
    for event in server_left:
        out.append(Finding(
            "browser-event-missing",
            f"server {event.event_name} id={event.event_id!r} has no browser twin: "
            f"{_platform(event).tag_name} never fired it",
            "check that the page fires this event with the same name and id; if no browser "
            "event was captured at all, "
            "check first that the browser goes through the pixelcheck proxy (pixelcheck_page, "
            "or pytest-playwright's page in a test that uses pixelcheck), then that no "
            "consent banner or ad blocker stops the tag",
            [event], [], event.platform, event.event_name,
        ))
    return out


#: how far in time (seconds) an undecodable server call may be from its browser twin
UNDECODABLE_TWIN_WINDOW = 60.0


def _near(found: tuple[list[float], list[tuple[int, Event]]],
          browser: Event) -> list[tuple[int, Event]]:
    """The calls (sorted by arrival, with their times) within UNDECODABLE_TWIN_WINDOW
    of ``browser``."""
    times, calls = found
    low = bisect.bisect_left(times, browser.arrival_time - UNDECODABLE_TWIN_WINDOW)
    high = bisect.bisect_right(times, browser.arrival_time + UNDECODABLE_TWIN_WINDOW)
    return calls[low:high]


def _undecodable_server_calls(
    result: MatchResult,
) -> dict[tuple[Any, ...], tuple[list[float], list[tuple[int, Event]]]]:
    """Undecodable server calls (with their place in the capture) by (platform, name):
    each may be the twin of a browser event of that platform with that name, or of any
    name where none could be read."""
    out: dict[tuple[Any, ...], list[tuple[int, Event]]] = {}
    for position, e in enumerate(result.undecodable):
        if e.source == "server":
            out.setdefault((e.platform, e.event_name), []).append((position, e))
    found = {}
    for key, calls in out.items():
        calls.sort(key=lambda pair: pair[1].arrival_time)
        found[key] = ([e.arrival_time for _, e in calls], calls)
    return found


def _reused_ids(result: MatchResult, earlier_events: Sequence[Event]) -> list[Finding]:
    out = []
    for dup in result.duplicates:
        if _distinct_payloads(dup.events):
            first = dup.events[0]
            out.append(Finding(
                "reused-event-id",
                f"id {first.event_id!r} is used by {len(dup.events)} different "
                f"{first.event_name} conversions on the {dup.source} side: the platform "
                "keeps one and drops the others",
                "derive the event id from something unique per conversion (the order id), "
                "never a constant",
                dup.events, [], first.platform, first.event_name,
            ))
    if earlier_events:
        seen: dict[tuple[Any, ...], Event] = {}
        for event in earlier_events:
            key = _full_key(event)
            if key is not None:
                seen.setdefault(key, event)
        for event in result.events:
            key = _full_key(event)
            earlier = seen.get(key) if key is not None else None
            if key is not None and earlier is not None and earlier.test_id != event.test_id:
                out.append(Finding(
                    "reused-event-id",
                    f"{event.source} {event.event_name} id={event.event_id!r} was already "
                    f"used in {earlier.test_id or 'an earlier test'}: ids must be unique per "
                    "conversion",
                    "derive the event id from something unique per conversion, never a "
                    "constant or a per-deploy value",
                    [earlier, event], [], event.platform, event.event_name,
                ))
                seen.pop(key)
    return out


def _key_of(event: Event) -> tuple[Any, ...]:
    return (event.platform, event.pixel_id, event.event_name, event.event_id)


def _same_key(a: Event, b: Event) -> bool:
    return _key_of(a) == _key_of(b)


def _full_key(event: Event) -> tuple[Any, ...] | None:
    if not event.decoded or event.event_id is None:
        return None
    return (event.platform, event.source, event.pixel_id, event.event_name, event.event_id)


def _timing(result: MatchResult, settings: DiagnosisSettings) -> list[Finding]:
    out = []
    for pair in result.pairs:
        delay = pair.server.arrival_time - pair.browser.arrival_time
        if delay > settings.late_after:
            out.append(Finding(
                "server-event-late",
                f"server {pair.server.event_name} id={pair.server.event_id!r} arrived "
                f"{delay:.1f}s after the browser's (threshold {settings.late_after:g}s)",
                "send the server call when the conversion happens, not from a delayed "
                "batch; set pixelcheck_late_after to tune the threshold",
                [pair.browser, pair.server], [], pair.server.platform, pair.server.event_name,
            ))
        elif -delay > settings.race_tolerance:
            out.append(Finding(
                "server-before-browser",
                f"server {pair.server.event_name} id={pair.server.event_id!r} arrived "
                f"{-delay:.1f}s before the browser's: if the tag is slow or blocked on a "
                "real visit, the two may not merge",
                "fine when both arrive within minutes; make sure the page fires the tag's "
                "event promptly and with the same id",
                [pair.browser, pair.server], [], pair.server.platform, pair.server.event_name,
            ))
    for event in result.events:
        if event.source != "server" or not event.decoded or event.event_time is None:
            continue
        raw = event.event_time_raw
        platform = _platform(event)
        # decoders give seconds; a time a thousand times past now was sent in a unit
        # a thousand times too small
        if event.event_time > event.arrival_time * 100:
            out.append(Finding(
                "event-time-in-milliseconds",
                f"server {event.event_name} event time {raw} is 1000 times too large: "
                f"{platform.title or platform.name} expects {platform.event_time_unit}",
                f"send the event time in {platform.event_time_unit}: int(time.time()) in "
                "Python, Math.floor(Date.now() / 1000) in JavaScript",
                [event], [], event.platform, event.event_name,
            ))
            continue
        age = event.arrival_time - event.event_time
        max_age = platform.max_event_age or settings.max_age_days * 86400
        if age > max_age:
            out.append(Finding(
                "event-time-too-old",
                f"server {event.event_name} event time {raw} is {age / 86400:.1f} days old; "
                f"{platform.title or platform.name} refuses events older than "
                f"{max_age / 86400:g} days",
                "set event_time to when the conversion happened, in Unix seconds; do not "
                "replay stale events",
                [event], [], event.platform, event.event_name,
            ))
        elif -age > settings.future_tolerance:
            out.append(Finding(
                "event-time-in-future",
                f"server {event.event_name} event_time={raw} is {-age / 60:.0f} minutes in "
                "the future",
                "use the server's UTC clock for event_time (check the time zone and clock sync)",
                [event], [], event.platform, event.event_name,
            ))
    return out


def _number(value: Any) -> float | None:
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return None


def _ids(data: dict[str, Any]) -> list[str]:
    ids = data.get("content_ids")
    if isinstance(ids, str):
        try:
            ids = loads(ids)
        except ValueError:
            ids = [ids]
    if isinstance(ids, list):
        return sorted(str(i) for i in ids)
    return []


def _payload(result: MatchResult) -> list[Finding]:
    out = []
    for pair in result.pairs:
        differences = _payload_differences(pair)
        if differences:
            out.append(Finding(
                "payload-mismatch",
                f"{pair.browser.event_name} id={pair.browser.event_id!r} carries different "
                f"{', '.join(d[0] for d in differences)} on the two sides",
                "build the browser and server payloads from the same order record",
                [pair.browser, pair.server],
                [f"{field_}: browser {b!r} / server {s!r}" for field_, b, s in differences],
                pair.browser.platform, pair.browser.event_name,
            ))
    return out


def _payload_differences(pair: Pair) -> list[tuple[str, Any, Any]]:
    b, s = pair.browser.custom_data, pair.server.custom_data
    out = []
    if "value" in b and "value" in s and _number(b["value"]) != _number(s["value"]):
        out.append(("value", b["value"], s["value"]))
    if "currency" in b and "currency" in s and \
            str(b["currency"]).upper() != str(s["currency"]).upper():
        out.append(("currency", b["currency"], s["currency"]))
    if "content_ids" in b and "content_ids" in s and _ids(b) != _ids(s):
        out.append(("content_ids", b["content_ids"], s["content_ids"]))
    return out
