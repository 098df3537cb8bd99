"""``Pixelcheck``: one test's view of the session's capture.

It works without pytest (the CLI uses it too): give it the session's store and
the position where the test started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import platforms
from .artifacts import status_classes
from .consent import ConsentStep, consent_findings, page_of
from .crossdomain import lost_identities
from .diagnosis import DiagnosisSettings, diagnose, in_platform_words
from .events import AppendLog, Event, EventStore, Source
from .findings import SEVERITY_RANK, Finding, register_codes
from .losses import FailedRequest, explain_failed_hits, failed_hits, url_too_long
from .matching import MatchResult, match_events
from .pii import Customer, check_pii
from .playwright_wiring import browser_not_proxied, not_proxied_hint
from .proxy import PixelProxy, TrafficEntry
from .redact import known_secrets, scrub
from .report import test_report
from .safety import exposed_tokens, test_event_codes, unexpected_pixels, untrusted_proxy
from .sink import ConversionSink, Switch
from .site_traffic import SiteResponses

if TYPE_CHECKING:
    from .adblocking import AdBlocker

register_codes({
    "late-from-earlier-test": ("info", "a late server call of an earlier test was set aside"),
    "side-not-isolated": ("error", "a side the test switched off still reached the platform"),
})

#: the twin-missing code each expected side makes moot (server_only: no browser twins)
_MOOT_WHEN_ONE_SIDE = {"server": "browser-event-missing", "browser": "server-event-missing"}


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
        fail_on: str = "error",
        proxy: PixelProxy | None = None,
        sink: ConversionSink | None = None,
        allowed_pixels: Iterable[str] = (),
        site_responses: SiteResponses | None = None,
    ) -> None:
        self.store = store
        self.mark = store.mark() if mark is None else mark
        self.test_id = test_id
        self.settings = settings or DiagnosisSettings()
        self.default_timeout = default_timeout
        #: lowest severity that fails the assertions
        self.fail_on = fail_on
        #: pixel ids and/or collection hosts allowed to fire; empty: any
        self.allowed_pixels = set(allowed_pixels)
        self.proxy, self.sink = proxy, sink
        self.traffic_mark = proxy.traffic.mark() if proxy is not None else 0
        self.sink_mark = sink.requests.mark() if sink is not None else 0
        self.tls_mark = proxy.tls_failures.mark() if proxy is not None else 0
        self.site_responses = site_responses
        self.site_mark = site_responses.mark() if site_responses is not None else 0
        self._earlier_keys: dict[tuple[object, ...], str | None] | None = None
        #: the customer this test's checkout used, once declared with ``customer()``
        self.known_customer: Customer | None = None
        #: (log of URLs the test's own browser requested, where this test began), once
        #: a plugin watches that browser (pytest-playwright's); see page_requests()
        self._page_requests: tuple[AppendLog[str], int] | None = None
        #: (log of requests the watched browsers failed, where this test began)
        self._failed_requests: list[tuple[AppendLog[FailedRequest], int]] = []
        #: called before a verdict, to collect what the browser still has to report
        self._flushes: list[Callable[[], None]] = []
        #: finding codes this test expects (``expect_findings`` / ``pixelcheck_expect``):
        #: a negative test, set aside from the session's rates, findings and gate
        self.expected_codes: list[str] | None = None
        #: how many pixelcheck assertions failed in this test; a passed test with some
        #: caught them (pytest.raises) and still counts in the session's rates
        self.failed_assertions = 0
        #: (journey name, store position where it began), in order: see journey()
        self.journey_steps: list[tuple[str, int]] = []
        #: the one side this test's verdicts expect ("server" after server_only(),
        #: "browser" after browser_only()); None: both
        self.expected_side: Source | None = None
        #: URLs the watched pages' main frames committed, loads and route changes alike
        #: (see watch_routes())
        self.routes: list[str] = []
        #: the visitor's consent answers, in order (see consent())
        self.consent_steps: list[ConsentStep] = []
        #: gives the pixelcheck_consent_hook that sets consent in the site's CMP
        self.consent_hook: Callable[[], Callable[[bool], Any] | None] | None = None

    def __repr__(self) -> str:
        events = self.events
        browser = sum(1 for e in events if e.source == "browser")
        customer = "; customer declared" if self.known_customer is not None else ""
        # a parametrized test id may carry an email
        return scrub(f"Pixelcheck(test={self.test_id!r}, {len(events)} "
                     f"event{'' if len(events) == 1 else 's'}: {browser} browser, "
                     f"{len(events) - browser} server{customer})")

    # --- what was captured ------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every event of this test, both sides, undecodable ones included.

        A server call of an earlier test that arrives during this one (its backend
        was still retrying) is left out: see ``stragglers()``.
        """
        return self._split()[0]

    def stragglers(self) -> list[Event]:
        """Server events that arrived during this test but belong to an earlier one."""
        return self._split()[1]

    def _split(self) -> tuple[list[Event], list[Event]]:
        """(this test's events, late ones of earlier tests), from one read of the store."""
        events = self.store.since(self.mark)
        late = self._straggler_ids(events)
        if not late:
            return events, []
        return ([e for e in events if id(e) not in late], [e for e in events if id(e) in late])

    def _earlier_browser_keys(self) -> dict[tuple[object, ...], str | None]:
        """Conversions earlier tests' browsers fired (fixed once this test began).

        Only those: a server call whose id only ever came from servers is this
        test's own, reused or not.
        """
        if self._earlier_keys is None:
            self._earlier_keys = {_key(e): e.test_id for e in self.store.before(self.mark)
                                  if e.event_id is not None and e.source == "browser"}
        return self._earlier_keys

    def _straggler_ids(self, events: list[Event]) -> set[int]:
        candidates = [e for e in events if e.source == "server" and e.event_id is not None]
        if not candidates or self.mark == 0:
            return set()
        earlier = self._earlier_browser_keys()
        here = {_key(e) for e in events if e.source == "browser"}
        # With a browser twin in this test, the id is reused, not late: that stays in view
        # and is reported as reused-event-id.
        return {id(e) for e in candidates if _key(e) in earlier and _key(e) not in here
                and earlier[_key(e)] != self.test_id}

    @property
    def browser_events(self) -> list[Event]:
        return [e for e in self.events if e.source == "browser"]

    @property
    def server_events(self) -> list[Event]:
        return [e for e in self.events if e.source == "server"]

    def earlier_events(self) -> list[Event]:
        """Events of the session before this test (to catch ids reused across tests)."""
        return self.store.before(self.mark)

    # --- isolating one side -------------------------------------------------------------

    def block_browser(self, platform: str | None = None) -> Switch:
        """Drop ``platform``'s collection hits (None: every platform's) at the proxy, as
        an ad blocker does: the pixel sees a network error. The hits are still captured
        and shown as blocked; the platform counts none. Lasts until the returned
        context manager exits, or the test ends."""
        if self.proxy is None:
            raise RuntimeError("block_browser needs the proxy (the pixelcheck fixture has it)")
        if platform is not None:
            platforms.get(platform)  # a typo is a usage error, said here
        proxy = self.proxy
        proxy.blocked_platforms.add(platform)
        return Switch(lambda: proxy.blocked_platforms.discard(platform))

    def ad_blocker(self, context: Any, *filter_lists: str | Path) -> AdBlocker:
        """Block in ``context`` (a Playwright browser context or page) what the filter
        lists (Adblock Plus / EasyPrivacy syntax) block, as a visitor's blocker does:
        tag libraries and collection hits fail with ``blockedbyclient``. Blocked hits are
        kept and shown as blocked. Lasts until the returned blocker's ``with`` block
        ends or ``remove()``; a fresh context per test starts without it."""
        from .adblocking import AdBlocker

        traffic = self.proxy.traffic if self.proxy is not None else None
        return AdBlocker(filter_lists, self.store, traffic).install(context)

    def server_only(self) -> Switch:
        """Verdicts expect the server side alone from here to the test's end (step 2 of
        debugging double counting: the browser blocked): no browser twin is missing, and
        a browser copy that still reached the platform is a ``side-not-isolated``
        finding. The test's report judges it the same way; as a ``with`` block it ends
        with the block."""
        return self._one_side("server")

    def browser_only(self) -> Switch:
        """Verdicts expect the browser side alone from here to the test's end (step 1:
        the server side off, e.g. ``pixelcheck_sink.refuse()``): no server twin is
        missing, and a server call the platform still counted is a
        ``side-not-isolated`` finding."""
        return self._one_side("browser")

    def _one_side(self, side: Source) -> Switch:
        self.expected_side = side

        def both() -> None:
            self.expected_side = None
        return Switch(both)

    def _one_side_findings(self, result: MatchResult, found: list[Finding]) -> list[Finding]:
        side = self.expected_side
        if side is None:
            return found
        kept = [f for f in found if f.code != _MOOT_WHEN_ONE_SIDE[side]]
        other = "browser" if side == "server" else "server"
        set_aside = {id(e) for e in result.blocked + result.rejected + result.mirrors}
        leaked = [e for e in result.events if e.source == other and e.decoded
                  and id(e) not in set_aside and not e.extra.get("not_a_conversion")]
        switched = ("pixelcheck.server_only(): the browser side is off" if side == "server"
                    else "pixelcheck.browser_only(): the server side is off")
        for event in leaked:
            kept.append(Finding(
                "side-not-isolated",
                f"{other} {event.event_name} id={event.event_id!r} reached the platform "
                f"though {switched}",
                ("switch the browser side off too: pixelcheck.block_browser() or an ad "
                 "blocker (pixelcheck.ad_blocker)") if other == "browser" else
                ("switch the server side off too: pixelcheck_sink.refuse(), or the "
                 "backend's own switch for its server calls"),
                [event], [], event.platform, event.event_name))
        return kept

    # --- single-page apps ---------------------------------------------------------------

    def watch_routes(self, page: Any) -> list[str]:
        """Record every URL ``page`` shows from now on: page loads and a single-page
        app's route changes (history.pushState, popstate) alike, for
        ``assert_pageview_per_route``. Returns the live list."""
        def committed(frame: Any) -> None:
            if frame == page.main_frame and frame.url.startswith("http"):
                self.routes.append(frame.url)

        if page.url.startswith("http"):
            self.routes.append(page.url)
        page.on("framenavigated", committed)
        return self.routes

    # --- consent --------------------------------------------------------------------------

    def consent(self, granted: bool = True) -> None:
        """The visitor answers the consent banner (``granted=False``: denies) from here
        on, set in the site's CMP by the ``pixelcheck_consent_hook`` fixture. From the
        first answer on the capture is judged against consent: tags before consent,
        server events without the platform's limited-use flag, held events that never
        fire once consent comes (see ``pytest_pixelcheck.consent``)."""
        hook = self.consent_hook() if self.consent_hook is not None else None
        if hook is None:
            raise RuntimeError(
                "pixelcheck.consent() needs the site's consent banner wired: define a "
                "pixelcheck_consent_hook fixture returning set_consent(granted: bool), e.g. "
                "one that clicks the banner's Accept / Deny button or sets the CMP's cookie")
        traffic = self.proxy.traffic if self.proxy is not None else None
        page = page_of(traffic.since(self.traffic_mark)) if traffic is not None else None
        self.consent_steps.append(ConsentStep(
            bool(granted), self.store.mark(), traffic.mark() if traffic is not None else 0,
            page))
        hook(bool(granted))

    # --- journeys ---------------------------------------------------------------------

    @contextmanager
    def journey(self, name: str) -> Iterator[None]:
        """Mark what arrives from here on as caused by journey ``name`` (a reload, a
        back button, ...), so a verdict can say which journey added a copy. The
        helpers of ``pytest_pixelcheck.journeys`` use it; so can a test's own steps."""
        self.journey_steps.append((name, self.store.mark()))
        yield

    def journey_of(self, event: Event) -> str:
        """The journey step during which ``event`` arrived."""
        named = "the test's own steps"
        for name, position in self.journey_steps:
            if event.seq >= position:
                named = f"journey {name!r}"
        return named

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
                + not_proxied_hint(self.page_requests(), self._proxy_traffic(),
                                   self._tls_failures())
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

    def traffic(self) -> list[TrafficEntry]:
        """What the test's browser loaded during this test: what went through the proxy
        (hits, scripts, other hosts) and the site's own pages, which go direct."""
        site = (self.site_responses.entries(self.site_mark)
                if self.site_responses is not None else [])
        return sorted(self._proxy_traffic() + site, key=lambda entry: entry.started)

    def _proxy_traffic(self) -> list[TrafficEntry]:
        return self.proxy.traffic.since(self.traffic_mark) if self.proxy is not None else []

    def watch_page_requests(self, log: AppendLog[str]) -> None:
        """Follow what the test's own browser requests (``log`` grows with every URL), to
        tell a browser that went around the proxy from a page that fired nothing."""
        self._page_requests = (log, log.mark())

    def watch_failed_requests(self, log: AppendLog[FailedRequest],
                              flush: Callable[[], None] | None = None) -> None:
        """Follow the requests a browser failed (``log`` grows with each), so a hit the
        page fired but the browser never sent is reported as such, not as never fired.
        ``flush``: called before each verdict to collect failures not yet delivered."""
        self._failed_requests.append((log, log.mark()))
        if flush is not None:
            self._flushes.append(flush)

    def failed_requests(self) -> list[FailedRequest]:
        """Requests the watched browsers failed during this test."""
        for flush in self._flushes:
            flush()
        return [f for log, mark in self._failed_requests for f in log.since(mark)]

    def page_requests(self) -> list[str]:
        """http(s) URLs the watched browser requested during this test ([]: unwatched)."""
        if self._page_requests is None:
            return []
        log, mark = self._page_requests
        return log.since(mark)

    def _tls_failures(self) -> list[tuple[str | None, str]]:
        """(host, reason) of handshakes with the proxy that failed during this test."""
        return self.proxy.tls_failures.since(self.tls_mark) if self.proxy is not None else []

    def sink_answers(self) -> dict[str, int]:
        """How the sink answered the backend in this test: ``{"2xx": n, "4xx": n, "5xx": n}``."""
        if self.sink is None:
            return status_classes([])
        return status_classes(r.response_status for r in self.sink.requests.since(self.sink_mark))

    def evaluate(self, platform: str | None = None) -> tuple[MatchResult, list[Finding]]:
        """The match and every finding, from one read of the capture (what reports and
        assertions need together; ``match()`` and ``findings()`` are its halves)."""
        failures = self.failed_requests()  # first: it lets late failures arrive
        events, late = self._split()
        result = match_events(events, platform)
        traffic, tls_failures = self.traffic(), self._tls_failures()
        # First: a browser outside the proxy explains every missing browser event below.
        found = browser_not_proxied(self.page_requests(), self._proxy_traffic(), tls_failures)
        # A hit the browser failed is no hit "never fired".
        found += explain_failed_hits(
            diagnose(result, self.settings, earlier_events=self.earlier_events()),
            [hit for hit in failed_hits(failures, traffic)
             if platform is None or hit[1].name == platform])
        found += url_too_long(result.events)
        found += check_pii(result, self.known_customer)
        found += exposed_tokens(traffic, known_secrets())
        found += test_event_codes(result.events)
        found += unexpected_pixels(result.events, self.allowed_pixels)
        found += untrusted_proxy(tls_failures)
        found += [_straggler_finding(e) for e in late]
        found = self._one_side_findings(result, found)
        if self.routes:
            found += lost_identities(result.events, self.routes)
        found = consent_findings(result, found, self.consent_steps,
                                 list(enumerate(traffic, start=self.traffic_mark)))
        in_platform_words(found)
        # stable: diagnose's own order holds within a severity
        return result, sorted(found, key=lambda f: -SEVERITY_RANK[f.severity])

    def findings(self, platform: str | None = None) -> list[Finding]:
        return self.evaluate(platform)[1]

    def report(self, platform: str | None = None) -> str:
        return test_report(*self.evaluate(platform))


def _key(event: Event) -> tuple[object, ...]:
    return (event.platform, event.pixel_id, event.event_name, event.event_id)


def _straggler_finding(event: Event) -> Finding:
    return Finding(
        "late-from-earlier-test",
        f"server {event.event_name} id={event.event_id!r} of {event.test_id or 'an earlier test'} "
        "arrived during this test and is left out of it",
        "nothing to change in this test; if it is common, let the earlier test wait for "
        "the backend's retries (pixelcheck.wait_for) before it ends",
        [event], [], event.platform, event.event_name,
    )
