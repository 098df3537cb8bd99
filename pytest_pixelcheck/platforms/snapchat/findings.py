"""Snapchat's own findings: what the core's checks cannot see because it takes Snap's
rules to see it.

* ``snap-auto-dedup-id``: the Snap Pixel filled ``cdid`` with its own random
  ``"@-<uuid>"`` because the page passed no ``client_dedup_id``; that id can never
  equal a server ``event_id``.
* ``snap-event-name-case``: a merged pair whose two sides spell the event name in
  different letter case (``PURCHASE`` / ``purchase``): Snap merged them, reports keep
  both spellings.
* ``snap-cdid-shared``: one ``client_dedup_id`` on two different events of the page
  (a tag manager variable reused across tags, Snapchat/snapchat-google-tag-manager
  issue #2): Snap may merge the wrong pair.
* the identity codes of ``identity.py`` (``_scid`` / ``sc_cookie1``, ``ScCid`` /
  ``sc_click_id``).

The codes register on import. The platform imports this module lazily: the core's
``pytest_pixelcheck.findings`` imports the platform registry and cannot be imported
while the registry loads.
"""

from __future__ import annotations

from typing import Any

from ...findings import Finding, Severity, register_codes
from .identity import PAIR_CODES, capture_problems, identity_problems
from .platform import FINDING_CODES, NAME, SNAPCHAT, canonical_name
from .texts import AUTO_ID

CODES: dict[str, tuple[Severity, str]] = dict(FINDING_CODES)
register_codes(CODES)


def snapchat_findings(result: Any) -> list[Finding]:
    """Findings over one test's ``MatchResult`` (Snapchat's events only)."""
    out: list[Finding] = []
    out += [Finding(code, message, fix, events, [], NAME, events[0].event_name)
            for code, message, fix, events in capture_problems(result)]
    out += _auto_dedup_ids(result)
    out += _name_case(result)
    out += _shared_cdids(result)
    return out


def _snap(events: list[Any]) -> list[Any]:
    return [e for e in events if e.platform == NAME and e.decoded
            and not e.extra.get("not_a_conversion")]


def _auto_dedup_ids(result: Any) -> list[Finding]:
    """Browser events that went out with the pixel's own '@-' id and did not merge."""
    out = []
    servers = [e for e in _snap(result.events) if e.source == "server"]
    for event in _snap(result.browser_only):
        auto = event.extra.get("auto_dedup_id")
        if not auto or event.source != "browser":
            continue
        name = canonical_name(event.event_name)
        twin = next((s for s in servers if canonical_name(s.event_name) == name), None)
        if twin is None and name != "PURCHASE":
            continue  # a browser-only event: the core's missing-event-id says enough
        details = [f"browser cdid: {auto!r} (made up by the Snap Pixel)"]
        message = (f"browser {event.event_name} went out with cdid {auto!r}: the Snap Pixel "
                   f"made that id up because snaptr('track', '{event.event_name}', ...) got "
                   "no client_dedup_id, and it can never equal a server event_id")
        involved = [event]
        if twin is not None:
            involved.append(twin)
            details.append(f"server event_id: {twin.event_id!r}")
            transaction = event.extra.get("transaction_id")
            if name == "PURCHASE" and transaction:
                details.append(f"browser transaction_id: {transaction!r} (Snap's PURCHASE "
                               "fallback would match an event_id equal to it)")
        out.append(Finding("snap-auto-dedup-id", message,
                           AUTO_ID.replace("NAME", event.event_name or "PURCHASE"),
                           involved, details, NAME, event.event_name))
    return out


def _name_case(result: Any) -> list[Finding]:
    out = []
    for pair in result.pairs:
        if pair.browser.platform != NAME:
            continue
        sentence = SNAPCHAT.name_variant(pair.browser.event_name, pair.server.event_name)
        if sentence is None:
            continue
        standard = canonical_name(pair.browser.event_name)
        out.append(Finding(
            "snap-event-name-case", sentence,
            f"send '{standard}' from both sides: snaptr('track', '{standard}', ...) and "
            f"data[].event_name = '{standard}'",
            [pair.browser, pair.server],
            [f"browser event: {pair.browser.event_name!r}",
             f"server event:  {pair.server.event_name!r}"], NAME, pair.browser.event_name))
    return out


def _shared_cdids(result: Any) -> list[Finding]:
    groups: dict[tuple[Any, str], list[Any]] = {}
    for event in _snap(result.events):
        if event.source == "browser" and event.event_id:
            groups.setdefault((event.pixel_id, event.event_id), []).append(event)
    out = []
    for (_, cdid), events in groups.items():
        names = sorted({canonical_name(e.event_name) or "?" for e in events})
        if len(names) < 2:
            continue
        out.append(Finding(
            "snap-cdid-shared",
            f"client_dedup_id {cdid!r} went out with {len(names)} different Snap events "
            f"({', '.join(names)}): each conversion needs its own id",
            "give every snaptr('track', ...) call its own client_dedup_id (e.g. the event "
            "name plus the order or page-view id), and send that id as the server's "
            "event_id of the same event",
            events, [], NAME, events[0].event_name))
    return out


def identity_findings(pair: Any) -> list[Finding]:
    """The pair-level identity findings (``matching.Pair``): a click id unlike the
    ScCid in this hit's own page URL, a hashed sc_cookie1."""
    browser, server = pair.browser, pair.server
    return [Finding(code, message, fix, [browser, server], [], browser.platform,
                    browser.event_name)
            for code, message, fix in identity_problems(browser, server)
            if code in PAIR_CODES]
