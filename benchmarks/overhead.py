"""A pixelcheck test's own overhead over a bare Playwright test of the same journey.

    python benchmarks/overhead.py [--repeat N] [--json PATH]

Both modes drive the example shop's checkout (``example_site.journey.checkout``:
product, cart, checkout form, thank-you page; 8 pixel hits and 8 Conversions API
calls) in the same Chromium executable, and both end with every event in hand:

* pixelcheck: ``Harness()`` (proxy, sink, browser through the proxy); the shop's
  Graph URL is the sink. Per journey: ``harness.capture()``, a new context, the
  checkout, ``capture.wait_until(settled)``, ``capture.match()`` and
  ``capture.findings()``, close the context: what a test with
  ``assert_deduplicated`` does.
* direct-site: as pixelcheck, in a second Chromium that reaches the site on loopback
  directly and sends only other hosts through the proxy (``proxy_loopback=False``,
  ``--pixelcheck-direct-site``); its pages reach the token scan from Playwright's
  response events. The same run measures both.
* bare: Chromium launched by plain Playwright without a proxy; the shop's Graph
  URL is a trivial local HTTP server answering ``{"events_received":1}``. The
  context routes ``connect.facebook.net`` to the same offline ``fbevents.js``
  stand-in and ``www.facebook.com/tr`` to a 1x1 GIF, so the page does the same
  work. Per journey it waits until the 8 pixel hits reached the route and the 8
  Conversions API calls reached the server.

One Playwright instance drives both browsers (pixelcheck's gets it the way it
gets pytest-playwright's), so the modes alternate journey by journey (ABBA
order) and a slow moment of the machine hits both. One warm-up journey per mode
is not counted. Session start-up (proxy, sink, browser, shop) is not part of a
journey: ``benchmarks/startup.py`` measures it. Measures and prints; asserts
nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

import example_site
from example_site.journey import checkout
from pytest_pixelcheck import Harness, platforms
from pytest_pixelcheck.browser import BrowserSession, chromium_args, find_chromium
from pytest_pixelcheck.matching import settled

EXPECTED_HITS = 8  # PageView x4, ViewContent, AddToCart, InitiateCheckout, Purchase
EVENT_TIMEOUT = 10.0  # seconds; a journey whose events do not arrive is an error
# keep the shop's Conversions API calls to loopback off any proxy of the environment
LOOPBACK_ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class BenchmarkError(RuntimeError):
    pass


# --- bare mode's stand-in for graph.facebook.com -----------------------------------------


class GraphStub:
    """Answers every request 200 ``{"events_received":1}``, counting POSTs."""

    def __init__(self) -> None:
        self.posts = 0
        self._cond = threading.Condition()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b'{"events_received":1}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self._answer()
                with stub._cond:
                    stub.posts += 1
                    stub._cond.notify_all()

            def do_GET(self) -> None:  # noqa: N802
                self._answer()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GraphStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self) -> int:
        with self._cond:
            return self.posts

    def wait_for(self, total: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.posts >= total, timeout)


# --- one journey per mode -----------------------------------------------------------------


@dataclass
class Sample:
    total: float  # new context .. context closed
    checkout: float  # the journey's page actions
    events: int  # events in hand at the end (pairs for pixelcheck, hits + calls for bare)


@dataclass
class Mode:
    name: str
    run_once: Callable[[], Sample]
    samples: list[Sample] = field(default_factory=list)


def pixelcheck_journey(harness: Harness, site_url: str, browser: Any = None) -> Sample:
    browser = browser or harness.browser()
    started = time.perf_counter()
    capture = harness.capture("bench")
    context = browser.new_context()
    try:
        page = context.new_page()
        checkout(page, site_url)
        checked_out = time.perf_counter()
        if not capture.wait_until(lambda evs: settled(evs), EVENT_TIMEOUT):
            raise BenchmarkError(f"pixelcheck: events did not settle within {EVENT_TIMEOUT}s:"
                                 f"\n{capture.report()}")
        result = capture.match()
        capture.findings()
    finally:
        context.close()
    ended = time.perf_counter()
    return Sample(ended - started, checked_out - started, 2 * len(result.pairs))


def bare_journey(browser: Any, stub: GraphStub, site_url: str) -> Sample:
    meta = platforms.get("meta")
    library = meta.library_response("connect.facebook.net", "/en_US/fbevents.js")
    if library is None:
        raise BenchmarkError("the meta platform serves no fbevents.js stand-in")
    hits = 0

    def serve_library(route: Any) -> None:
        route.fulfill(status=200, body=library.body, content_type=library.content_type)

    def pixel_hit(route: Any) -> None:
        nonlocal hits
        hits += 1
        route.fulfill(status=200, body=platforms.TRANSPARENT_GIF, content_type="image/gif")

    started = time.perf_counter()
    posts_before = stub.count()
    context = browser.new_context()
    try:
        context.route("https://connect.facebook.net/**", serve_library)
        context.route("https://www.facebook.com/tr**", pixel_hit)
        page = context.new_page()
        checkout(page, site_url)
        checked_out = time.perf_counter()
        if hits < EXPECTED_HITS:
            # The sync API runs route handlers only while it waits on Playwright,
            # so wait on Playwright's own events: each fulfilled hit finishes a
            # request, and the predicate sees the count the handler just raised.
            context.wait_for_event("requestfinished", predicate=lambda _: hits >= EXPECTED_HITS,
                                   timeout=EVENT_TIMEOUT * 1000)
        if not stub.wait_for(posts_before + EXPECTED_HITS, EVENT_TIMEOUT):
            raise BenchmarkError(f"bare: {stub.count() - posts_before} of {EXPECTED_HITS} "
                                 f"Conversions API calls arrived within {EVENT_TIMEOUT}s")
    finally:
        context.close()
    ended = time.perf_counter()
    return Sample(ended - started, checked_out - started, hits + stub.count() - posts_before)


# --- the run ------------------------------------------------------------------------------


def peak_rss_mib(who: int) -> float:
    """``ru_maxrss`` in MiB (Linux reports KiB, macOS bytes)."""
    value = resource.getrusage(who).ru_maxrss
    return value / (1024 * 1024) if sys.platform == "darwin" else value / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=8,
                        help="measured journeys per mode (default 8)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    print(f"overhead: example checkout, 1 warm-up + {args.repeat} measured journeys per mode, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    stub = GraphStub().start()
    harness = Harness().start()
    bare_site = example_site.SiteProcess(stub.url, env=LOOPBACK_ENV)
    pixelcheck_site = example_site.SiteProcess(harness.sink.url, env=LOOPBACK_ENV)
    bare_browser = None
    try:
        bare_site.start()
        pixelcheck_site.start()
        with sync_playwright() as pw:
            pixelcheck_browser = harness.browser(pw)
            location = find_chromium(playwright=pw)
            bare_browser = pw.chromium.launch(executable_path=location.executable_path,
                                              headless=True, args=chromium_args(None))
            used = pixelcheck_browser.location.how if pixelcheck_browser.location else "?"
            print(f"  Chromium: {location.how} (pixelcheck: {used})")
            # the site on loopback direct, only other hosts through the proxy
            direct_site = BrowserSession(
                harness.proxy.url, harness.proxy.ca_spki_sha256_base64, location=location,
                playwright=pw, proxy_loopback=False,
                site_responses=harness.site_responses).start()
            modes = [
                Mode("pixelcheck", lambda: pixelcheck_journey(harness, pixelcheck_site.url)),
                Mode("bare", lambda: bare_journey(bare_browser, stub, bare_site.url)),
                Mode("direct-site", lambda: pixelcheck_journey(
                    harness, pixelcheck_site.url, direct_site)),
            ]
            for mode in modes:  # warm-up, not counted
                mode.run_once()
            for i in range(args.repeat):
                order = modes if i % 2 == 0 else modes[::-1]
                for mode in order:
                    mode.samples.append(mode.run_once())
                print(f"  journey {i + 1}/{args.repeat}: " + ", ".join(
                    f"{m.name} {m.samples[-1].total:.3f}s" for m in modes),
                    file=sys.stderr, flush=True)
            bare_browser.close()
            bare_browser = None
            direct_site.stop()
            harness.stop()  # closes its browser while Playwright still runs
    finally:
        if bare_browser is not None:
            bare_browser.close()
        harness.stop()
        pixelcheck_site.stop()
        bare_site.stop()
        stub.stop()

    by_name = {m.name: m for m in modes}
    med = {name: {"total": median([s.total for s in m.samples]),
                  "checkout": median([s.checkout for s in m.samples]),
                  "min": min(s.total for s in m.samples),
                  "max": max(s.total for s in m.samples)}
           for name, m in by_name.items()}
    ratio = med["pixelcheck"]["total"] / med["bare"]["total"]
    direct_ratio = med["direct-site"]["total"] / med["bare"]["total"]
    checkout_ratio = med["pixelcheck"]["checkout"] / med["bare"]["checkout"]
    events = {name: min(s.events for s in m.samples) for name, m in by_name.items()}
    rss_self = peak_rss_mib(resource.RUSAGE_SELF)
    rss_children = peak_rss_mib(resource.RUSAGE_CHILDREN)

    print()
    print(f"  {'mode':<12} {'median':>8} {'min':>8} {'max':>8} {'checkout':>9}  events in hand")
    print("  " + "-" * 66)
    for name in ("pixelcheck", "direct-site", "bare"):
        row = med[name]
        print(f"  {name:<12} {row['total']:>7.3f}s {row['min']:>7.3f}s {row['max']:>7.3f}s"
              f" {row['checkout']:>8.3f}s  {events[name]} (fewest in a journey)")
    print(f"\n  overhead ratio = median(pixelcheck)/median(bare) = {ratio:.2f}"
          f"  ({med['pixelcheck']['total'] - med['bare']['total']:+.3f}s per journey)")
    print(f"  checkout part alone: {checkout_ratio:.2f}")
    print(f"  direct-site (--pixelcheck-direct-site) / bare: {direct_ratio:.2f}")
    print(f"  peak RSS: this process {rss_self:.0f} MiB (proxy, sink, Playwright client);"
          f" largest finished child process {rss_children:.0f} MiB")

    if args.json:
        Path(args.json).write_text(json.dumps({
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "chromium": location.how,
            "samples_seconds": {name: [s.total for s in m.samples] for name, m in by_name.items()},
            "checkout_seconds": {name: [s.checkout for s in m.samples]
                                 for name, m in by_name.items()},
            "median_seconds": {name: row["total"] for name, row in med.items()},
            "overhead_ratio": ratio,
            "direct_site_ratio": direct_ratio,
            "checkout_ratio": checkout_ratio,
            "events_in_hand_min": events,
            "peak_rss_mib": {"self": rss_self, "largest_child": rss_children},
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
