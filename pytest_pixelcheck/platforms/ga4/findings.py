"""GA4's own findings: what Google does with a purchase that the core's checks cannot
see, because Google answers 2xx and merges only within one user.

``ga4_findings(result)`` takes the core's ``MatchResult`` (all platforms; it looks at
GA4's events only). The codes register on import; the platform imports this module
lazily (``GA4.findings``), as ``pytest_pixelcheck.findings`` imports the platform
registry and cannot be imported while the registry loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...events import Event
from ...findings import Finding, Severity, register_codes
from ...matching import MatchResult
from .platform import NAME
from .texts import CLIENT_ID, DROPPED, MP_PURCHASE, PAGE_PURCHASE

CODES: dict[str, tuple[Severity, str]] = {
    "empty-transaction-id": ("error", "a GA4 purchase carries an empty transaction_id"),
    "client-id-not-from-browser": ("error", "a Measurement Protocol purchase uses a client_id "
                                            "gtag.js never used"),
    "session-id-not-from-browser": ("warning", "a Measurement Protocol purchase carries "
                                               "another session_id than gtag.js"),
    "mp-silently-dropped": ("error", "Google answers 2xx but drops these Measurement "
                                     "Protocol events"),
    "mp-validation-message": ("warning", "Google keeps the event but its validation server "
                                         "objects to part of it"),
}
register_codes(CODES)

#: words of the reason the platform gives events sent to /debug/mp/collect
DEBUG_WORD = "validation server"


def _ga4(events: Iterable[Event]) -> list[Event]:
    return [e for e in events if e.platform == NAME and not e.extra.get("mirror_of")]


def browser_client_ids(events: Iterable[Event]) -> set[str]:
    """The gtag.js client ids (``cid``) the browser used."""
    return {str(e.extra["client_id"]) for e in _ga4(events)
            if e.source == "browser" and e.decoded and e.extra.get("client_id")}


def ga4_findings(result: MatchResult) -> list[Finding]:
    events = _ga4(result.events)
    out: list[Finding] = []
    out += _empty_transaction_ids(events)
    out += _foreign_client_ids(result, events)
    out += _silently_dropped(events)
    out += _validation_messages(events)
    return out


def _empty_transaction_ids(events: list[Event]) -> list[Finding]:
    empty = [e for e in events if e.decoded and e.event_name == "purchase"
             and e.event_id is not None and not e.event_id.strip()]
    if not empty:
        return []
    sides = sorted({e.source for e in empty})
    return [Finding(
        "empty-transaction-id",
        f"{len(empty)} purchase(s) from the {' and the '.join(sides)} carry an empty "
        "transaction_id: GA4 collapses every purchase with an empty transaction_id into one, "
        "so every order but one drops out of purchases and revenue",
        f"send the order id as transaction_id: {PAGE_PURCHASE} in the page and "
        "events[].params.transaction_id = ORDER_ID in the Measurement Protocol call; never ''",
        empty, [f"{e.source}: transaction_id {e.event_id!r}" for e in empty], NAME, "purchase",
    )]


def _foreign_client_ids(result: MatchResult, events: list[Event]) -> list[Finding]:
    known = browser_client_ids(events)
    if not known:
        return []  # no gtag.js hit in this test: nothing to compare with
    paired = {id(p.server) for p in result.pairs}
    out = []
    for server in events:
        client_id = server.extra.get("client_id")
        if server.source != "server" or not server.decoded or server.event_name != "purchase" \
                or id(server) in paired or server.extra.get("rejected_by_platform") \
                or not client_id or str(client_id) in known:
            continue
        twins = [b for b in events if b.source == "browser" and b.decoded
                 and b.event_name == "purchase" and b.event_id is not None
                 and b.event_id == server.event_id]
        message = (f"the Measurement Protocol purchase transaction_id={server.event_id!r} uses "
                   f"client_id {client_id!r}, which gtag.js never used in this test: the "
                   "Measurement Protocol purchase lands as a separate, unattributed user")
        if twins:
            message += (", and as Google merges a transaction_id only within one user, this "
                        "order is counted twice")
        out.append(Finding(
            "client-id-not-from-browser", message, CLIENT_ID, [server, *twins[:1]],
            [f"browser cid: {', '.join(sorted(known))}", f"server client_id: {client_id}"],
            NAME, "purchase",
        ))
    return out


def _drop_fix(reason: str) -> str:
    if "api_secret" in reason:
        return ("use this data stream's API secret (Admin > Data streams > your stream > "
                "Measurement Protocol API secrets) in the api_secret query parameter")
    if DEBUG_WORD in reason:
        return ("post to /mp/collect in production: /debug/mp/collect validates and never "
                "records")
    if "timestamp_micros" in reason or "backdated" in reason:
        return ("send the event within 72 hours of when it happened, or leave "
                "timestamp_micros out so Google uses the arrival time")
    if "NAME_" in reason:
        return ("name the event as GA4 allows: a letter first, then letters, digits or _, at "
                "most 40 characters, no reserved name or prefix (_, ga_, google_, "
                f"firebase_); for a sale: {MP_PURCHASE}")
    return DROPPED



def _silently_dropped(events: list[Event]) -> list[Finding]:
    groups: dict[str, list[Event]] = {}
    for event in events:
        reason = event.extra.get("rejected_by_platform")
        if event.source == "server" and event.decoded and reason:
            groups.setdefault(str(reason), []).append(event)
    out = []
    for reason, group in groups.items():
        names = ", ".join(sorted({e.event_name or "<no name>" for e in group}))
        out.append(Finding(
            "mp-silently-dropped",
            f"{len(group)} Measurement Protocol event(s) ({names}) got a 2xx answer, but "
            f"{reason}",
            _drop_fix(reason), group, _messages_lines(group), NAME, group[0].event_name,
        ))
    return out


def _messages_lines(events: list[Event]) -> list[str]:
    lines: dict[str, None] = {}
    for event in events:
        for message in event.extra.get("validation_messages") or []:
            lines.setdefault(f"{message.get('validationCode')}: {message.get('description')}")
    return list(lines)[:10]


def _validation_messages(events: list[Event]) -> list[Finding]:
    out = []
    for event in events:
        messages: list[dict[str, Any]] = event.extra.get("validation_messages") or []
        if event.source != "server" or not event.decoded or not messages \
                or event.extra.get("rejected_by_platform"):
            continue
        out.append(Finding(
            "mp-validation-message",
            f"the Measurement Protocol {event.event_name} (events[{event.extra.get('index')}]) "
            f"is kept, but Google's validation server reports {len(messages)} problem(s): "
            f"{messages[0].get('description')}",
            "fix what /debug/mp/collect lists for this body: Google keeps the event but "
            "ignores or truncates the parts it objects to",
            [event], _messages_lines([event]), NAME, event.event_name,
        ))
    return out
