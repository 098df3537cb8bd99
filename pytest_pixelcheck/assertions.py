"""Assertions users call in their tests. Messages are the product: each one says
which event broke, on which side, and what to change.

``__tracebackhide__`` keeps pytest's traceback on the test's own line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import platforms
from .capture import Pixelcheck
from .diagnosis import in_platform_words
from .events import Event, Source
from .exactly_once import exactly_once
from .findings import CATALOGUE, SEVERITY_RANK, Finding, Severity, register_codes
from .matching import MatchResult, accepted, blocked, settled
from .pii import (
    ABSENT,
    HASHED,
    NA,
    OK,
    OTHER,
    SOME,
    WRONG,
    Customer,
    MatchKeyCoverage,
    check_pii,
    customer_key,
    match_key_coverage,
    match_keys,
)
from .report import WIDTH, count_severities, events_table, findings_text, wrap

# pytest prints an assertion message behind an 8-column `E       `
MESSAGE_WIDTH = WIDTH - 8


class PixelcheckAssertionError(AssertionError):
    """Raised by pixelcheck's assertions; ``findings`` holds what failed it."""

    # shown as pytest_pixelcheck.PixelcheckAssertionError, its public import path
    __module__ = "pytest_pixelcheck"

    def __init__(self, message: str, findings: Sequence[Finding] = ()) -> None:
        super().__init__(message)
        self.findings = list(findings)


def _names(event_name: str | Iterable[str] | None) -> list[str] | None:
    if event_name is None:
        return None
    if isinstance(event_name, str):
        return [event_name]
    return list(event_name)


def _verdict(
    call: str, names: list[str] | None, timeout: float, result: MatchResult,
    findings: Sequence[Finding], fail_on: str, *, nothing_checked: Sequence[str] = (),
) -> tuple[list[Finding], list[str]] | None:
    """None when the assertion passes; else the failing findings and the message's
    head: what failed, missing events, the findings, the other findings.
    ``nothing_checked``: why there was nothing to check; a verdict on nothing fails."""
    failing = [f for f in findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[fail_on]]
    problems: list[str] = list(nothing_checked)
    captured_names = {e.event_name for e in result.events}
    for name in names or []:
        if name not in captured_names:
            problems.append(f"no {name!r} event was captured from either side within "
                            f"{timeout:g}s")
    if names is None and not result.events:
        problems.append(f"no event was captured at all within {timeout:g}s: did the page "
                        "load through the pixelcheck proxy (use the pixelcheck_page fixture)?")
    if not failing and not problems:
        return None
    scope = ", ".join(repr(n) for n in names) if names else "every event"
    what = count_severities(failing) if failing else (
        "nothing to check" if nothing_checked else "missing events")
    head = f"{call}({scope}) failed: {what}"
    # The first line is what pytest's short summary shows: as many codes as fit.
    codes = list(dict.fromkeys(f.code for f in failing))
    for keep in range(len(codes), 0, -1):
        shown = f"{head} [{', '.join(codes[:keep])}{', ...' if keep < len(codes) else ''}]"
        if len(shown) <= MESSAGE_WIDTH:
            head = shown
            break
    lines = [head]
    lines += [f"  {p}" for p in problems]
    if failing:
        lines.append(findings_text(failing, width=MESSAGE_WIDTH))
    others = [f for f in findings if f not in failing]
    if others:
        lines.append(f"other findings ({count_severities(others)}):")
        lines.append(findings_text(others, width=MESSAGE_WIDTH))
    return failing, lines


def assert_deduplicated(
    pixelcheck: Pixelcheck,
    event_name: str | Iterable[str] | None = None,
    *,
    platform: str | None = None,
    timeout: float | None = None,
    fail_on: Severity | None = None,
) -> MatchResult:
    """Fail unless every in-scope browser event merges with its server twin.

    ``event_name``: one name or several; None checks every event of the test.
    Waits up to ``timeout`` seconds for stragglers, returning early once every
    conversion has both copies. Fails on findings of ``fail_on`` severity or
    worse (default: the ``pixelcheck_fail_on`` setting, else "error").
    """
    __tracebackhide__ = True
    names = _names(event_name)
    if platform is not None:
        platforms.get(platform)  # an unknown platform is a usage error, said early
    timeout = pixelcheck.default_timeout if timeout is None else timeout
    level: str = fail_on or pixelcheck.fail_on
    pixelcheck.wait_until(
        lambda evs: settled(evs, names, platform, pixelcheck.expected_side), timeout)

    result, all_findings = pixelcheck.evaluate(platform)
    # A browser that went around the proxy explains a missing event of any name.
    findings = [f for f in all_findings if names is None or f.involves(names)
                or f.code == "browser-not-proxied"]
    verdict = _verdict("assert_deduplicated", names, timeout, result, findings, level)
    if verdict is None:
        return result.narrowed(names)
    failing, lines = verdict
    lines.append("events captured in this test:")
    lines.append(events_table(result, width=MESSAGE_WIDTH))
    rules = {platforms.get(e.platform).dedup_rule() for e in result.events
             if e.platform in {p.name for p in platforms.all_platforms()}}
    for rule in sorted(r for r in rules if r):
        lines += wrap(f"rule: {rule}", MESSAGE_WIDTH, subsequent_indent="      ")
    pixelcheck.failed_assertions += 1  # see Pixelcheck.failed_assertions
    raise PixelcheckAssertionError("\n".join(lines), failing)


DUPLICATE_CODES: dict[Source, tuple[str, ...]] = {
    "browser": ("duplicate-browser-trigger", "reused-event-id"),
    "server": ("duplicate-server-send", "server-retry-new-id", "reused-event-id"),
}


def assert_no_duplicate_triggers(
    pixelcheck: Pixelcheck,
    event_name: str | Iterable[str] | None = None,
    *,
    source: Source | None = "browser",
    platform: str | None = None,
) -> None:
    """Fail if an event fired more than once (browser by default, or server, or both)."""
    __tracebackhide__ = True
    names = _names(event_name)
    sources: tuple[Source, ...] = (source,) if source else ("browser", "server")
    codes = {code for s in sources for code in DUPLICATE_CODES[s]}
    result, findings = pixelcheck.evaluate(platform)
    found = [f for f in findings
             if f.code in codes and (names is None or f.involves(names))
             and any(e.source in sources for e in f.events)]
    if not found:
        return
    scope = ", ".join(repr(n) for n in names) if names else "every event"
    message = "\n".join([
        f"assert_no_duplicate_triggers({scope}) failed: {count_severities(found)} "
        f"[{', '.join(dict.fromkeys(f.code for f in found))}]",
        findings_text(found, width=MESSAGE_WIDTH),
        "events captured in this test:",
        events_table(result, width=MESSAGE_WIDTH),
    ])
    pixelcheck.failed_assertions += 1
    raise PixelcheckAssertionError(message, found)


def assert_pii_hashed(
    pixelcheck: Pixelcheck,
    customer: Any = None,
    *,
    event_name: str | Iterable[str] | None = None,
    require: Iterable[str] | None = None,
    timeout: float | None = None,
    fail_on: Severity | None = None,
) -> MatchKeyCoverage:
    """Fail when customer data travels raw, hashed wrongly, or differs between the
    browser and the server copy of a conversion (fbp, fbc, user agent, URL too).

    ``customer``: the customer the checkout used (a ``Customer``, a mapping or an
    object with ``email``/``phone``/...); defaults to the one declared with
    ``pixelcheck.customer(...)``. Without one, hashes can only be checked for shape
    and browser/server agreement. ``require``: match keys (``"em"``, ``"ph"``, or
    field names like ``"email"``) that must arrive, hashed and right, on each side
    that sent the events; default: every key the customer declares.

    It also fails when there was nothing to check: no server event of the asserted
    names arrived, or the server calls could not be decoded. Returns the match-key
    coverage.
    """
    __tracebackhide__ = True
    names = _names(event_name)
    timeout = pixelcheck.default_timeout if timeout is None else timeout
    level: str = fail_on or pixelcheck.fail_on
    known = Customer.build(customer) if customer is not None else pixelcheck.known_customer
    required = _required_keys(require, known)
    pixelcheck.wait_until(lambda evs: settled(evs, names), timeout)

    result = pixelcheck.match()
    findings = [f for f in check_pii(result, known) if names is None or f.involves(names)]
    coverage = match_key_coverage(result, known)
    nothing = _nothing_checked(result.narrowed(names), names, timeout)
    if not nothing:
        nothing = _required_not_arrived(coverage, names, required, known is not None)
    verdict = _verdict("assert_pii_hashed", names, timeout, result, findings, level,
                       nothing_checked=nothing)
    if verdict is None:
        return coverage
    failing, lines = verdict
    lines.append(coverage.table(names, width=MESSAGE_WIDTH))
    pixelcheck.failed_assertions += 1
    raise PixelcheckAssertionError("\n".join(lines), failing)


_SIDE_STATE = {OK: "right", HASHED: "sent hashed", WRONG: "wrong", OTHER: "another customer's",
               ABSENT: "not sent", SOME: "in only some events", NA: "not applicable"}


def _required_keys(require: Iterable[str] | None, known: Customer | None) -> list[str]:
    if require is None:
        return known.keys if known is not None else []
    keys = []
    for name in [require] if isinstance(require, str) else require:
        try:
            key = customer_key(name)
        except ValueError:
            key = name
        if key not in match_keys():
            raise ValueError(f"require: {name!r} is not a match key; known: "
                             f"{', '.join(match_keys())}")
        keys.append(key)
    return keys


def _nothing_checked(scoped: MatchResult, names: list[str] | None, timeout: float) -> list[str]:
    """Why there was no server customer data to check, or []."""
    server = [e for e in scoped.events if e.source == "server"]
    if any(e.decoded for e in server):
        return []
    scope = " or ".join(repr(n) for n in names) if names else ""
    broken = [e for e in server if not e.decoded]
    if broken:
        reasons = "; ".join(dict.fromkeys(str(e.error) for e in broken))
        return [f"{len(broken)} server call(s) arrived but could not be decoded, so no "
                f"customer data could be checked: {reasons}"]
    return [f"no server {scope + ' ' if scope else ''}event arrived within {timeout:g}s: "
            "there was no customer data to check"]


def _required_not_arrived(coverage: MatchKeyCoverage, names: list[str] | None,
                          required: Sequence[str], customer_known: bool) -> list[str]:
    """Required keys that did not arrive right on a side that sent the events."""
    rows = [r for r in coverage.names if names is None or r.event_name in names]
    good = {OK} if customer_known else {OK, HASHED}
    problems = []
    for source in ("browser", "server"):
        sent = [r for r in rows if (r.browser_events if source == "browser" else r.server_events)]
        if not sent:
            continue
        for key in required:
            states = [(r.browser if source == "browser" else r.server)[key] for r in sent]
            # with no names, one event per side carrying the key right is enough (a
            # PageView carries no customer data); named events must each carry it
            ok = any(s in good for s in states) if names is None else \
                all(s in good for s in states)
            if not ok:
                shown = ", ".join(f"{r.event_name} {_SIDE_STATE.get(st, st)}"
                                  for r, st in zip(sent, states, strict=True))
                problems.append(f"required key {key!r} did not arrive right from the "
                                f"{source} ({shown})")
    return problems


# --- negative tests ---------------------------------------------------------------------

#: codes that only time proves (the twin never came): they show while the other copy is
#: still on its way, so a wait that sees or expects them runs to its timeout
_ABSENCE_CODES = frozenset({"server-event-missing", "browser-event-missing"})


def check_expected_codes(codes: Iterable[str], where: str) -> list[str]:
    """``codes`` as a list, each known to the catalogue; ValueError naming the known codes
    otherwise (a misspelt expectation must not pass by never matching)."""
    listed = list(dict.fromkeys(codes))
    if not listed or not all(isinstance(c, str) for c in listed):
        raise ValueError(f"{where} needs one or more finding codes (strings), e.g. "
                         f"{where}('near-miss-event-id')")
    unknown = [c for c in listed if c not in CATALOGUE]
    if unknown:
        raise ValueError(f"{where}: unknown finding code(s) {', '.join(map(repr, unknown))}; "
                         f"known codes: {', '.join(sorted(CATALOGUE))}")
    return listed


def expectation_message(
    call: str, expected: Sequence[str], result: MatchResult, findings: Sequence[Finding],
    timeout: float,
) -> tuple[list[Finding], str] | None:
    """None when ``findings`` are exactly the ``expected`` codes (plus any unlisted info
    findings); else the findings that break it and the failure message, with the
    findings and the events table as the other assertions print them."""
    found = {f.code for f in findings}
    missing = [c for c in expected if c not in found]
    unexpected = [f for f in findings if f.code not in expected and f.severity != "info"]
    if not missing and not unexpected:
        return None
    scope = ", ".join(repr(c) for c in expected)
    parts = []
    if missing:
        parts.append(f"expected {', '.join(missing)} not found")
    if unexpected:
        parts.append(f"unexpected {count_severities(unexpected)} "
                     f"[{', '.join(dict.fromkeys(f.code for f in unexpected))}]")
    lines = [f"{call}({scope}) failed: {'; '.join(parts)}"]
    if missing:
        lines += wrap(f"within {timeout:g}s the test's events showed no {', '.join(missing)} "
                      "finding: the fault this negative test injects did not happen"
                      + (", or shows as another code (below)" if findings else ""),
                      MESSAGE_WIDTH, initial_indent="  ", subsequent_indent="  ")
    if not result.events:
        lines.append(f"  no event was captured at all within {timeout:g}s")
    if unexpected:
        lines.append(f"unexpected findings ({count_severities(unexpected)}):")
        lines.append(findings_text(unexpected, width=MESSAGE_WIDTH))
    others = [f for f in findings if f not in unexpected]
    if others:
        lines.append(f"other findings ({count_severities(others)}):")
        lines.append(findings_text(others, width=MESSAGE_WIDTH))
    lines.append("events captured in this test:")
    lines.append(events_table(result, width=MESSAGE_WIDTH))
    return unexpected, "\n".join(lines)


def expect_findings(pixelcheck: Pixelcheck, *codes: str,
                    timeout: float | None = None) -> list[Finding]:
    """A negative test: pass when the test's findings are exactly ``codes``.

    Fails when a listed code is not found (at any severity), or when an unlisted
    error or warning is; unlisted info findings are ignored. Severities are the
    session's effective ones (``pixelcheck_severity``), so a code moved to info
    need not be listed. Waits like ``assert_deduplicated`` (up to ``timeout``,
    default ``pixelcheck_timeout``), returning early once every listed code is
    found and no event still waits for its twin; a listed ``server-event-missing``
    or ``browser-event-missing`` waits the whole timeout, as only time proves the
    twin never comes.

    The test is set aside from the session's dedup rate, findings and gate, as with
    ``@pytest.mark.pixelcheck_expect``. Returns the findings of the listed codes.
    """
    __tracebackhide__ = True
    return check_expectation(pixelcheck, codes, timeout=timeout, call="expect_findings")


def check_expectation(pixelcheck: Pixelcheck, codes: Iterable[str], *,
                      timeout: float | None = None, call: str) -> list[Finding]:
    """``expect_findings``, with ``call`` naming the caller in the failure message (the
    ``pixelcheck_expect`` marker uses it too)."""
    __tracebackhide__ = True
    expected = check_expected_codes(codes, call)
    # Recorded before waiting: a test that fails on the way is still a negative test.
    pixelcheck.expected_codes = list(dict.fromkeys([*(pixelcheck.expected_codes or []),
                                                    *expected]))
    timeout = pixelcheck.default_timeout if timeout is None else timeout

    def done(events: list[Event]) -> bool:
        if settled(events):
            return True
        seen = {f.code for f in pixelcheck.findings()}
        return set(expected) <= seen and not ((seen | set(expected)) & _ABSENCE_CODES)

    pixelcheck.wait_until(done, timeout)
    result, findings = pixelcheck.evaluate()
    verdict = expectation_message(call, expected, result, findings, timeout)
    if verdict is not None:
        raise PixelcheckAssertionError(verdict[1], verdict[0])
    return [f for f in findings if f.code in expected]


# --- exactly once -----------------------------------------------------------------------


def assert_exactly_once(
    pixelcheck: Pixelcheck,
    event_name: str,
    *,
    key: str | None = None,
    platform: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Fail unless each platform counted ``event_name`` exactly once across everything
    the test did (reloads, back buttons, double clicks, second tabs).

    Copies that share the platform's dedup key are one conversion, however many there
    are; copies under different ids are conversions the platform counts each.
    ``key``: the order (``order_id``) the conversion belongs to; its copies are those
    whose event id contains it or whose custom data names it. Without ``key`` every
    ``event_name`` of the test must be one conversion per platform: use that after
    ``journeys.double_submit``, where a second order brings its own id. Returns the
    conversions per platform. The failure names the platform and the journey
    (``pytest_pixelcheck.journeys``) that added each extra conversion.
    """
    __tracebackhide__ = True
    if platform is not None:
        platforms.get(platform)
    timeout = pixelcheck.default_timeout if timeout is None else timeout
    counted, findings = exactly_once(pixelcheck, event_name, key=key, platform=platform,
                                     timeout=timeout)
    in_platform_words(findings)
    whose = f" for {key!r}" if key is not None else ""
    problems = []
    if not counted:
        problems.append(f"no {event_name!r} event{whose} was captured from either side "
                        f"within {timeout:g}s: there was nothing to count")
    for name, conversions in counted.items():
        if not conversions:
            problems.append(f"{name} counted {event_name}{whose} 0 times: every copy was "
                            "refused by the platform (see the findings below)")
    if not problems and not findings:
        return counted
    scope = f"{event_name!r}" + (f", key={key!r}" if key is not None else "")
    counts = ", ".join(f"{name} {len(c)}x" for name, c in counted.items()) or "nothing"
    lines = [f"assert_exactly_once({scope}) failed: counted {counts}"
             + (" [counted-more-than-once]" if findings else "")]
    lines += [f"  {p}" for p in problems]
    if findings:
        lines.append(findings_text(findings, width=MESSAGE_WIDTH))
    others = [f for f in pixelcheck.findings(platform)
              if f.involves([event_name]) and f.severity != "info"]
    if others:
        lines.append(f"other findings ({count_severities(others)}):")
        lines.append(findings_text(others, width=MESSAGE_WIDTH))
    if pixelcheck.journey_steps:
        lines.append("journeys: " + " -> ".join(n for n, _ in pixelcheck.journey_steps))
    lines.append("events captured in this test:")
    lines.append(events_table(pixelcheck.match(platform), width=MESSAGE_WIDTH))
    pixelcheck.failed_assertions += 1
    raise PixelcheckAssertionError("\n".join(lines), findings)


# --- the browser side blocked -----------------------------------------------------------

register_codes({
    "blocked-not-covered": ("error", "a conversion hidden from the browser side never "
                                     "reached the server"),
})


def _covered(blocked_event: Event, server: Sequence[Event]) -> bool:
    platform = platforms.get(blocked_event.platform)
    key = platform.dedup_key(blocked_event)
    return any(s.platform == blocked_event.platform and accepted(s) and (
        platform.dedup_key(s) == key if key is not None
        else s.event_name == blocked_event.event_name) for s in server)


def _hidden_conversions(events: Sequence[Event]) -> list[Event]:
    """Browser conversions a blocker (or block_browser) stopped."""
    out = []
    for event in events:
        if event.source != "browser" or not blocked(event) or not event.decoded \
                or event.extra.get("not_a_conversion"):
            continue
        try:
            platform = platforms.get(event.platform)
        except KeyError:
            continue
        if platform.deduplicates(event.event_name):
            out.append(event)
    return out


def assert_server_covers_blocked(
    pixelcheck: Pixelcheck,
    event_name: str | Iterable[str] | None = None,
    *,
    timeout: float | None = None,
) -> list[Event]:
    """Fail unless every conversion the ad blocker (``pixelcheck.ad_blocker``) or
    ``pixelcheck.block_browser`` hid from the platform still reached it from the server:
    the server copy a visitor with a blocker is counted by.

    A blocker that stops the tag library leaves no hit to see: name the conversions
    (``event_name``) and each must have arrived from the server. Returns the server
    events that cover them.
    """
    __tracebackhide__ = True
    names = _names(event_name)
    timeout = pixelcheck.default_timeout if timeout is None else timeout

    def uncovered(events: list[Event]) -> tuple[list[Event], list[str]]:
        server = [e for e in events if e.source == "server" and e.decoded]
        hidden = [e for e in _hidden_conversions(events)
                  if names is None or e.event_name in names]
        missing = [e for e in hidden if not _covered(e, server)]
        absent = [n for n in names or [] if not any(
            e.event_name == n and accepted(e) for e in server)]
        return missing, absent

    pixelcheck.wait_until(lambda evs: uncovered(evs) == ([], []), timeout)
    events = pixelcheck.events
    missing, absent = uncovered(events)
    hidden = [e for e in _hidden_conversions(events) if names is None or e.event_name in names]
    libraries = sorted({entry.url.split("?", 1)[0] for entry in pixelcheck.traffic()
                        if entry.handled_by == "blocked" and _is_library(entry.url)})
    problems = []
    if not hidden and not libraries and names is None:
        problems.append("nothing was blocked: switch the browser side off first with "
                        "pixelcheck.block_browser() or pixelcheck.ad_blocker(...)")
    if libraries and not names and not hidden:
        problems.append(f"the blocker stopped the tag librar{'ies' if len(libraries) > 1 else 'y'}"
                        f" {', '.join(libraries)}, so no event ever fired to compare: name "
                        "the conversions, e.g. assert_server_covers_blocked(pixelcheck, "
                        "'Purchase')")
    findings = [Finding(
        "blocked-not-covered",
        f"browser {e.event_name} id={e.event_id!r} was blocked ({blocked(e)}) and no "
        f"server copy reached {e.platform}: a visitor with this blocker is never counted",
        f"send {e.event_name} from the backend too, with the same event id as the tag, so "
        "the platform counts visitors whose blocker hides the pixel",
        [e], [], e.platform, e.event_name) for e in missing]
    findings += [Finding(
        "blocked-not-covered",
        f"no server {name} reached any platform"
        + (f", and the blocker stopped {', '.join(libraries)}" if libraries else "")
        + ": a visitor with this blocker is never counted",
        f"send {name} from the backend too (the platform's server API)", [], [], None, name)
        for name in absent]
    in_platform_words(findings)
    if not problems and not findings:
        covered = [s for s in events if s.source == "server" and accepted(s)
                   and (names is None or s.event_name in names)]
        return covered
    scope = ", ".join(repr(n) for n in names) if names else "every blocked conversion"
    lines = [f"assert_server_covers_blocked({scope}) failed"
             + (f": {count_severities(findings)} [blocked-not-covered]" if findings else
                ": nothing to check")]
    lines += [f"  {p}" for p in problems]
    if findings:
        lines.append(findings_text(findings, width=MESSAGE_WIDTH))
    if libraries and findings:
        lines.append(f"  tag libraries blocked: {', '.join(libraries)}")
    lines.append("events captured in this test:")
    lines.append(events_table(pixelcheck.match(), width=MESSAGE_WIDTH))
    pixelcheck.failed_assertions += 1
    raise PixelcheckAssertionError("\n".join(lines), findings)


def _is_library(url: str) -> bool:
    from .wire import host_of, path_of

    return platforms.for_library(host_of(url), path_of(url)) is not None
