"""One checkout with every platform tracked on both sides against the Meta-only one.

    python benchmarks/all_platforms.py [--repeat N] [--breakdown]

Both modes run in the same harness (proxy, sink, browser) against two example-shop
processes: one tracking Meta only, one tracking Meta and every other platform the
shop has a tracker for (each API's base URL at ``sink.url_for(name)``). A journey:
a new context, the checkout, wait until every platform's purchase is in from both
sides and the capture has settled, match and diagnose, close the context. The
modes alternate (ABBA) so a slow moment of the machine hits both. ``--breakdown``
then runs as many instrumented journeys per mode (see ``breakdown``). Measures and
prints; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import EVENT_TIMEOUT, LOOPBACK_ENV, BenchmarkError  # noqa: E402

import example_site  # noqa: E402
from example_site.journey import checkout  # noqa: E402
from example_site.trackers import load_trackers  # noqa: E402
from pytest_pixelcheck import Harness  # noqa: E402
from pytest_pixelcheck.matching import settled  # noqa: E402

QUIET = 0.5  # seconds without a new event that end a journey (not counted in its time)


def journey(harness: Harness, site_url: str) -> tuple[float, int]:
    """(seconds until the last event arrived, merged pairs) of one checkout: the
    capture settled, then no new event for ``QUIET`` seconds (a stand-in may fire
    its purchase after the page loaded)."""
    started = time.time()
    capture = harness.capture("bench")
    context = harness.browser().new_context()
    try:
        checkout(context.new_page(), site_url)
        if not capture.wait_until(settled, EVENT_TIMEOUT):
            raise BenchmarkError(f"events did not settle:\n{capture.report()}")
        while True:
            seen = len(capture.events)
            if not capture.wait_until(lambda evs, n=seen: len(evs) > n, QUIET):
                break
        events = capture.events
        result, _ = capture.evaluate()
    finally:
        context.close()
    return max(e.arrival_time for e in events) - started, len(result.pairs)


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """user + system CPU of ``pids`` (and of their children already waited for)."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        total += sum(int(x) for x in stat[stat.rindex(")") + 2:].split()[11:15]) / _TICK
    return total


def _chromium_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "(chromium)" in (entry / "stat").read_text():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def breakdown(harness: Harness, site: example_site.SiteProcess) -> dict[str, float]:
    """One checkout, instrumented: when each page's load event fired, when the last
    browser hit and the last server call arrived, how many requests and new connections
    the browser made (Playwright's request timing), and the CPU each process spent.
    Playwright's request events cost time themselves: these journeys are not timed."""
    started = time.time()
    capture = harness.capture("bench")
    context = harness.browser().new_context()
    page = context.new_page()
    loads: list[float] = []
    requests: list[Any] = []
    page.on("load", lambda _: loads.append(time.time() - started))
    page.on("requestfinished", lambda request: requests.append(request))
    page.on("requestfailed", lambda request: requests.append(request))
    chromium = _chromium_pids()
    before = (os.times(), _cpu_seconds(chromium), _cpu_seconds([site.pid or 0]))
    try:
        checkout(page, site.url or "")
        if not capture.wait_until(settled, EVENT_TIMEOUT):
            raise BenchmarkError(f"events did not settle:\n{capture.report()}")
        events = list(capture.events)
        after = (os.times(), _cpu_seconds(chromium), _cpu_seconds([site.pid or 0]))
    finally:
        context.close()
    own = (after[0].user + after[0].system) - (before[0].user + before[0].system)
    out = {f"page {i + 1} loaded": t for i, t in enumerate(loads[:4])}
    for source in ("browser", "server"):
        out[f"last {source} event"] = max(
            e.arrival_time for e in events if e.source == source) - started
    out["requests"] = len(requests)
    out["new connections"] = sum(1 for r in requests if r.timing["connectStart"] >= 0
                                 and not r.url.startswith("http://127.0.0.1"))
    out["CPU: harness (proxy, sink, client)"] = own
    out["CPU: Chromium"] = after[1] - before[1]
    out["CPU: shop"] = after[2] - before[2]
    return out


def print_breakdown(harness: Harness, modes: list[tuple[str, Any]], repeat: int) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    for i in range(repeat):
        for name, site in modes if i % 2 == 0 else modes[::-1]:
            for key, value in breakdown(harness, site).items():
                rows.setdefault(key, {}).setdefault(name, []).append(value)
    print(f"breakdown, median of {repeat} instrumented journeys per mode "
          "(seconds from opening the context):")
    print(f"  {'':<36}" + "".join(f"{name:>16}" for name, _ in modes))
    for key, values in rows.items():
        print(f"  {key:<36}" + "".join(
            f"{statistics.median(values[name]):>16.3f}" for name, _ in modes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--breakdown", action="store_true",
                        help="also run instrumented journeys: page loads, last events, "
                             "requests, new connections, CPU per process")
    args = parser.parse_args(argv)
    others = sorted(load_trackers())
    harness = Harness().start()
    meta_only = example_site.SiteProcess(harness.sink.url, env=LOOPBACK_ENV)
    every = example_site.SiteProcess(
        harness.sink.url, env=LOOPBACK_ENV,
        trackers={name: harness.sink.url_for(name) for name in others})
    samples: dict[str, list[float]] = {"meta only": [], "every platform": []}
    pairs: dict[str, int] = {}
    load = [Path("/proc/loadavg").read_text().split()[0]]
    try:
        meta_only.start()
        every.start()
        modes = [("meta only", meta_only.url), ("every platform", every.url)]
        for _, url in modes:  # warm-up
            journey(harness, url)
        for i in range(args.repeat):
            for name, url in modes if i % 2 == 0 else modes[::-1]:
                seconds, pairs[name] = journey(harness, url)
                samples[name].append(seconds)
        load.append(Path("/proc/loadavg").read_text().split()[0])
        med = {name: statistics.median(values) for name, values in samples.items()}
        print(f"all platforms ({', '.join(['meta', *others])}) vs meta only, "
              f"{args.repeat} journeys each after a warm-up (load average {load[0]} "
              f"before, {load[1]} after):")
        for name, value in med.items():
            print(f"  {name:<15} median {value:.3f}s  min {min(samples[name]):.3f}s  "
                  f"merged pairs {pairs[name]}")
        print(f"  ratio = {med['every platform'] / med['meta only']:.2f}")
        if args.breakdown:
            print_breakdown(harness, [("meta only", meta_only), ("every platform", every)],
                            args.repeat)
    finally:
        harness.stop()
        meta_only.stop()
        every.stop()
    return 0

if __name__ == "__main__":
    sys.exit(main())
