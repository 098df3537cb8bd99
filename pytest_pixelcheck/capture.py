"""``Pixelcheck``: one test's view of the session's capture.

It works without pytest (the CLI uses it too): give it the session's store and
the position where the test started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .events import Event, EventStore, Source
from .findings import SEVERITY_RANK, DiagnosisSettings, Finding, diagnose
from .matching import MatchResult, match_events
from .pii import Customer, check_pii
from .report import test_report


class WaitTimeout(AssertionError):
    """An awaited event did not arrive; the message lists what did."""


class Pixelcheck:
    def __init__(
        self,
        store: EventStore,
        *,
        mark: int | None = None,
        test_id: str | None = None,
        settings: DiagnosisSettings | None = None,
        default_timeout: float = 5.0,
    ) -> None:
        self.store = store
        self.mark = store.mark() if mark is None else mark
        self.test_id = test_id
        self.settings = settings or DiagnosisSettings()
        self.default_timeout = default_timeout
        #: the customer this test's checkout used, once declared with ``customer()``
        self.known_customer: Customer | None = None

    # --- what was captured ------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every event of this test, both sides, undecodable ones included."""
        return self.store.since(self.mark)

    @property
    def browser_events(self) -> list[Event]:
        return [e for e in self.events if e.source == "browser"]

    @property
    def server_events(self) -> list[Event]:
        return [e for e in self.events if e.source == "server"]

    def earlier_events(self) -> list[Event]:
        """Events of the session before this test (to catch ids reused across tests)."""
        return self.store.since(0)[: self.mark]

    # --- waiting ----------------------------------------------------------------------

    def wait_for(
        self,
        event_name: str,
        source: Source | None = None,
        timeout: float | None = None,
        *,
        count: int = 1,
        platform: str | None = None,
    ) -> Event:
        """Block until ``count`` events named ``event_name`` arrived; return the last one.

        Returns as soon as they are there (no fixed sleep); raises ``WaitTimeout``
        listing what did arrive otherwise.
        """
        __tracebackhide__ = True
        timeout = self.default_timeout if timeout is None else timeout

        def wanted(events: Sequence[Event]) -> list[Event]:
            return [e for e in events if e.event_name == event_name
                    and (source is None or e.source == source)
                    and (platform is None or e.platform == platform)]

        if not self.store.wait_until(lambda evs: len(wanted(evs)) >= count, self.mark, timeout):
            got = self.events
            seen = ", ".join(sorted({f"{e.source} {e.event_name}" for e in got})) or "nothing"
            side = f"{source} " if source else ""
            raise WaitTimeout(
                f"waited {timeout:g}s for {count} {side}{event_name!r} event(s), "
                f"got {len(wanted(got))}. Captured in this test: {seen}."
            )
        return wanted(self.events)[count - 1]

    def wait_until(self, predicate: Callable[[list[Event]], bool], timeout: float) -> bool:
        return self.store.wait_until(predicate, self.mark, timeout)

    # --- verdicts ---------------------------------------------------------------------

    def match(self, platform: str | None = None) -> MatchResult:
        return match_events(self.events, platform)

    def customer(self, customer: Any = None, /, **values: Any) -> Customer:
        """Declare the customer the checkout used, as typed (``email=``, ``phone=``,
        ``first_name=``, ``last_name=``, ``city=``, ``state=``, ``zip=``, ``country=``,
        ``date_of_birth=``, ``gender=``, ``external_id=``), or pass an object or
        mapping with those fields. PII checks then tell a right hash from one of
        un-normalized or double-hashed input, and which side of a mismatch is right.
        """
        self.known_customer = Customer.build(customer, **values)
        return self.known_customer

    def findings(self, platform: str | None = None) -> list[Finding]:
        result = self.match(platform)
        found = diagnose(result, self.settings, earlier_events=self.earlier_events())
        found += check_pii(result, self.known_customer)
        # stable: diagnose's own order holds within a severity
        return sorted(found, key=lambda f: -SEVERITY_RANK[f.severity])

    def report(self, platform: str | None = None) -> str:
        return test_report(self.match(platform), self.findings(platform))
