"""Meta's match-key coverage: per event, the state of each customer key and of the
identifiers Meta matches on (fbp, fbc, client IP, user agent), from the marks of
Meta's checks (``pii_checks.Checker``)."""

from __future__ import annotations

from ...matching import MatchResult
from ...pii import ABSENT, HASHED_KEYS, NA, OK, Customer, EventCoverage
from .pii_checks import Checker
from .platform import META, NAME


def event_coverage(result: MatchResult, customer: Customer | None) -> list[EventCoverage]:
    """One ``EventCoverage`` per decoded Meta event, in the capture's order."""
    checker = Checker(result, customer, NAME).run()
    events: list[EventCoverage] = []
    for event in checker.events:
        states = {}
        for key in HASHED_KEYS + tuple(META.coverage_columns):
            mark = checker.marks.get((id(event), key))
            if mark is not None:
                states[key] = mark
            elif event.source == "browser" and key == "client_ip_address":
                states[key] = NA  # the pixel sends no IP field; Meta reads the connection
            elif key in ("fbp", "fbc") and event.source == "browser":
                states[key] = OK if checker.browser_cookie(event, key) else ABSENT
            elif key == "client_user_agent" and event.source == "browser":
                states[key] = OK if event.extra.get("user_agent") else ABSENT
            elif event.source == "server" and key in event.user_data and \
                    event.user_data[key] not in (None, "", []):
                states[key] = OK
            else:
                states[key] = ABSENT
        events.append(EventCoverage(event, states))
    return events
