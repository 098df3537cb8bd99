"""One checkout with every platform tracked on both sides against the Meta-only one.

    python benchmarks/all_platforms.py [--repeat N]

Both modes run in the same harness (proxy, sink, browser) against two example-shop
processes: one tracking Meta only, one tracking Meta and every other platform the
shop has a tracker for (each API's base URL at ``sink.url_for(name)``). A journey:
a new context, the checkout, wait until every platform's purchase is in from both
sides and the capture has settled, match and diagnose, close the context. The
modes alternate (ABBA) so a slow moment of the machine hits both. Measures and
prints; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=6)
    args = parser.parse_args(argv)
    others = sorted(load_trackers())
    harness = Harness().start()
    meta_only = example_site.SiteProcess(harness.sink.url, env=LOOPBACK_ENV)
    every = example_site.SiteProcess(
        harness.sink.url, env=LOOPBACK_ENV,
        trackers={name: harness.sink.url_for(name) for name in others})
    samples: dict[str, list[float]] = {"meta only": [], "every platform": []}
    pairs: dict[str, int] = {}
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
    finally:
        harness.stop()
        meta_only.stop()
        every.stop()
    med = {name: statistics.median(values) for name, values in samples.items()}
    print(f"all platforms ({', '.join(['meta', *others])}) vs meta only, "
          f"{args.repeat} journeys each after a warm-up:")
    for name, value in med.items():
        print(f"  {name:<15} median {value:.3f}s  min {min(samples[name]):.3f}s  "
              f"merged pairs {pairs[name]}")
    print(f"  ratio = {med['every platform'] / med['meta only']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
