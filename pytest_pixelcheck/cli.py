"""The ``pixelcheck`` command. It shares the harness, matching and reports with
the pytest plugin; it adds no logic of its own beyond argument handling."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .findings import at_least
from .harness import Harness, HarnessConfig
from .matching import settled
from .report import count_severities, events_table, findings_text, stats_table


def _demo(args: argparse.Namespace) -> int:
    from example_site import FAULTS, SiteProcess
    from example_site.journey import checkout, set_faults

    faults = [f for f in (args.fault or []) if f]
    unknown = [f for f in faults if f.split(":")[0] not in FAULTS]
    if unknown:
        print(f"unknown fault(s): {', '.join(unknown)}. Known faults:", file=sys.stderr)
        for name, text in FAULTS.items():
            print(f"  {name:<24} {text}", file=sys.stderr)
        return 2
    config = HarnessConfig(browser_path=args.browser, headless=not args.headed)
    print(f"pixelcheck demo: the example shop's checkout, faults: {', '.join(faults) or 'none'}")
    with Harness(config) as harness:
        with SiteProcess(harness.sink.url) as site:
            browser = harness.browser()
            capture = harness.capture("demo")
            context = browser.new_context()
            try:
                set_faults(context, site.url, faults)
                page = context.new_page()
                started = time.perf_counter()
                order_id = checkout(page, site.url)
                capture.wait_until(settled, args.timeout)
                took = time.perf_counter() - started
            finally:
                context.close()
            startup = harness.startup_seconds()
            print(f"  started: proxy {startup['proxy']:.2f}s, sink {startup['sink']:.3f}s, "
                  f"browser {startup['browser']:.2f}s ({browser.location.how})")
            print(f"  order {order_id} placed; journey and events took {took:.2f}s\n")
            result = capture.match()
            findings = capture.findings()
    print("dedup by event name:")
    print(stats_table(result.stats().values()))
    print("\nevents:")
    print(events_table(result))
    print(f"\nfindings ({count_severities(findings)}):")
    print(findings_text(findings))
    errors = at_least(findings, "error")
    verdict = "DEDUPLICATED" if not errors else f"NOT DEDUPLICATED ({len(errors)} errors)"
    print(f"\nverdict: {verdict}")
    return 0 if not errors else 1


def _install_browser(args: argparse.Namespace) -> int:
    from .install import ensure_chromium

    print(f"Chromium: {ensure_chromium(args.browser)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelcheck",
        description="Check that browser pixel events and server conversion API events "
                    "deduplicate.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the example shop's checkout and print the report")
    demo.add_argument("--fault", action="append", metavar="NAME",
                      help="switch on a fault of the example shop (repeatable)")
    demo.add_argument("--browser", help="Chromium executable")
    demo.add_argument("--headed", action="store_true", help="show the browser window")
    demo.add_argument("--timeout", type=float, default=5.0,
                      help="seconds to wait for straggling events (default 5)")
    demo.set_defaults(func=_demo)

    install = sub.add_parser("install-browser",
                             help="make sure a Chromium exists (apt as root, else Playwright)")
    install.add_argument("--browser", help="a Chromium executable to check instead")
    install.set_defaults(func=_install_browser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
