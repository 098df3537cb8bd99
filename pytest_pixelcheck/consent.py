"""Consent: what a visitor's answer to the consent banner allows, judged from the capture.

A test says what the visitor answered with ``pixelcheck.consent(granted=...)``; a
``pixelcheck_consent_hook`` fixture sets that answer in the site's own CMP. From the
first answer on, the test's capture is read against the consent in force when each
copy arrived:

* ``tracked-before-consent``: a pixel hit or a tag-library load while the visitor had
  not (yet) consented;
* ``server-event-without-consent``: a server event for a visitor without consent that
  lacks the platform's limited-use flag (Meta's ``data_processing_options`` LDU, GA4's
  consent-mode parameters);
* ``not-fired-after-consent``: the page the visitor accepted on held its events for
  consent and never fired them once consent came.

A browser copy missing while there was no consent is no finding: the tag had to stay
quiet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import platforms
from .events import Event
from .findings import Finding, register_codes
from .matching import MatchResult, accepted, blocked
from .proxy import TrafficEntry
from .wire import host_of, path_of

register_codes({
    "tracked-before-consent": ("error", "a pixel fired or a tag library loaded before the "
                                        "visitor consented"),
    "server-event-without-consent": ("error", "a server event for a visitor without consent "
                                              "lacks the platform's limited-use flag"),
    "not-fired-after-consent": ("error", "events held for consent never fired once the "
                                         "visitor consented"),
})


@dataclass(frozen=True)
class ConsentStep:
    """The visitor's answer from a point of the test on."""

    granted: bool
    #: store position (events from here on arrived under this answer)
    position: int
    #: proxy traffic position, for tag-library loads
    traffic_position: int
    #: the page the visitor answered on, when known
    page_url: str | None = None


def _state(steps: Sequence[ConsentStep], position: int, *, traffic: bool = False) -> bool | None:
    """True/False: the answer in force at ``position``; None: not answered yet."""
    state = None
    for step in steps:
        if (step.traffic_position if traffic else step.position) <= position:
            state = step.granted
    return state


def _words(state: bool | None) -> str:
    return "before the visitor answered the consent banner" if state is None else \
        "after the visitor denied consent"


def page_of(entries: Sequence[TrafficEntry]) -> str | None:
    """The last page (an HTML document) the browser loaded among ``entries``."""
    for entry in reversed(entries):
        kind = next((v for k, v in entry.response_headers if k.lower() == "content-type"), "")
        if entry.method == "GET" and "text/html" in kind and entry.handled_by == "passthrough":
            return entry.url
    return None


def _same_page(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.netloc, pa.path) == (pb.netloc, pb.path)


def consent_findings(result: MatchResult, found: list[Finding], steps: Sequence[ConsentStep],
                     traffic: Sequence[tuple[int, TrafficEntry]]) -> list[Finding]:
    """``found`` judged against the visitor's consent: the findings above added, a
    browser twin missing while there was no consent dropped. ``traffic``: (absolute
    position, entry) of the test's proxy traffic."""
    if not steps:
        return found
    out: list[Finding] = []
    before: dict[str, list[Event]] = {}
    for event in result.events:
        if event.source == "browser" and not blocked(event) \
                and _state(steps, event.seq) is not True:
            before.setdefault(event.platform, []).append(event)
    libraries: dict[str, list[tuple[str, bool | None]]] = {}
    for position, entry in traffic:
        found_library = platforms.for_library(host_of(entry.url), path_of(entry.url))
        if found_library is None or entry.handled_by == "blocked":
            continue
        state = _state(steps, position, traffic=True)
        if state is not True:
            libraries.setdefault(found_library[0].name, []).append(
                (entry.url.split("?", 1)[0], state))
    for name in dict.fromkeys([*before, *libraries]):
        events = before.get(name, [])
        loads = libraries.get(name, [])
        platform = _platform(name)
        tag = platform.tag_name if platform is not None else "the pixel"
        state = _state(steps, events[0].seq) if events else loads[0][1]
        what = []
        if loads:
            what.append(f"loaded its library {loads[0][0]}")
        if events:
            names = ", ".join(dict.fromkeys(e.event_name or "?" for e in events))
            what.append(f"fired {len(events)} hit(s) ({names})")
        out.append(Finding(
            "tracked-before-consent",
            f"{tag} {' and '.join(what)} {_words(state)}",
            "hold the tag (library and events) until the visitor accepts: have the consent "
            "banner load it, e.g. as <script type=\"text/plain\" data-consent> that the CMP "
            "activates, or the platform's consent API",
            events, [f"library: {url}" for url, _ in loads[:3]], name,
            events[0].event_name if events else None))

    without: dict[str, list[Event]] = {}
    for event in result.events:
        if event.source != "server" or not event.decoded or not accepted(event):
            continue
        platform = _platform(event.platform)
        if _state(steps, event.seq) is not True and not (platform and platform.limited_use(event)):
            without.setdefault(event.platform, []).append(event)
    for name, events in without.items():
        platform = _platform(name)
        flag = platform.limited_use_flag if platform is not None else ""
        names = ", ".join(dict.fromkeys(e.event_name or "?" for e in events))
        out.append(Finding(
            "server-event-without-consent",
            f"the backend sent {len(events)} {name} server event(s) ({names}) "
            f"{_words(_state(steps, events[0].seq))}, without the limited-use flag",
            (f"for a visitor without consent send {flag}, or send nothing" if flag else
             "for a visitor without consent send no server event: the platform has no "
             "limited-use flag"),
            events, [], name, events[0].event_name))

    grants = [s for s in steps if s.granted]
    moot: set[int] = set()
    for event in result.server_only:
        if _state(steps, event.seq) is True:
            continue
        moot.add(id(event))
        grant = next((g for g in grants if g.position > event.seq), None)
        if grant is None or not _same_page(event.page_url, grant.page_url):
            continue
        out.append(Finding(
            "not-fired-after-consent",
            f"server {event.event_name} id={event.event_id!r} of the page the visitor "
            f"accepted on ({grant.page_url}) has no browser twin: the tags held for consent "
            "never fired once it was given",
            "when the visitor accepts, run the tags the page held (the CMP's accept callback "
            "must activate them), not only on the next page",
            [event], [], event.platform, event.event_name))
    kept = [f for f in found if not (f.code == "browser-event-missing"
                                     and all(id(e) in moot for e in f.events))]
    return kept + out


def _platform(name: str) -> platforms.Platform | None:
    try:
        return platforms.get(name)
    except KeyError:
        return None
