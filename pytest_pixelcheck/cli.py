"""The ``pixelcheck`` command. It shares the harness, matching, findings and
reports with the pytest plugin; it adds argument handling and printing."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import platforms
from .artifacts import (
    build_report,
    stats_dicts,
    test_record,
    write_capture,
    write_har,
    write_json,
)
from .findings import Finding, at_least, parse_severity_overrides, severity_policy
from .harness import Harness, HarnessConfig
from .matching import MatchResult, match_events, settled
from .pii import match_key_coverage
from .redact import scrub
from .report import (
    count_severities,
    coverage_table_text,
    events_table,
    findings_text,
    shorten,
    stats_table,
    wrap,
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_ALERT = 0, 1, 2, 3


def overall_rate(result: MatchResult) -> float | None:
    rows = result.stats().values()
    conversions = sum(s.conversions for s in rows)
    return sum(s.deduplicated for s in rows) / conversions if conversions else None


def print_verdict(result: MatchResult, findings: Sequence[Finding], *, events: bool = True,
                  out: Callable[[str], None] = print) -> int:
    """The report every command prints; returns the exit code for its findings."""
    out("dedup by event name:")
    out(stats_table(result.stats().values()))
    if events:
        out("\nevents:")
        out(events_table(result))
    out(f"\nfindings ({count_severities(findings)}):")
    out(findings_text(findings))
    errors = at_least(findings, "error")
    rate = overall_rate(result)
    shown = "-" if rate is None else f"{rate:.0%}"
    # The dedup rate and the findings are two verdicts: a sale can merge and still
    # carry raw PII or a stale event_time.
    out(f"\nverdict: {'PASSED' if not errors else 'FAILED'}: dedup rate {shown}, "
        f"{count_severities(findings) if findings else 'no findings'}")
    return EXIT_OK if not errors else EXIT_FINDINGS


# --- demo -------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from example_site import FAULTS, SiteProcess
    from example_site.journey import Customer, checkout, set_faults
    from example_site.trackers import load_trackers

    trackers = load_trackers()
    chosen = [p for p in (args.platform or []) if p]
    # the shop tracks the default platform itself; the others through its trackers
    builtin = (platforms.default() or platforms.UNKNOWN).name
    missing = [p for p in chosen if p not in trackers and p != builtin]
    if missing:
        print(f"unknown platform(s): {', '.join(missing)}; the shop tracks meta and "
              f"{', '.join(sorted(trackers))}", file=sys.stderr)
        return EXIT_USAGE
    faults = [f for f in (args.fault or []) if f]
    unknown = [f for f in faults if f.split(":")[0] not in FAULTS and not (
        f.split(":")[0] in trackers and f.split(":")[1:2]
        and f.split(":")[1] in trackers[f.split(":")[0]].faults)]
    if unknown:
        print(f"unknown fault(s): {', '.join(unknown)}.", file=sys.stderr)
        print(_fault_list(), file=sys.stderr)
        return EXIT_USAGE
    config = HarnessConfig(browser_path=args.browser, headless=not args.headed)
    print(f"pixelcheck demo: the example shop's checkout, faults: {', '.join(faults) or 'none'}")
    names = {f.split(":")[0]: f for f in faults}
    timeout = args.timeout
    if "server_delay" in names:  # wait for the late copy, to show it is late, not missing
        delay = names["server_delay"].partition(":")[2]
        timeout = max(timeout, float(delay or 5) + 3)
    others = [p for p in chosen if p != builtin]
    if others:
        print(f"  also tracked on both sides: {', '.join(others)}")
    with Harness(config) as harness, SiteProcess(
            harness.sink.url,
            trackers={p: harness.sink.url_for(p) for p in others}) as site:
        orders = 2 if "hardcoded_event_id" in names else 1
        browser = harness.browser()
        capture = harness.capture("demo")  # (resets the sink's faults: set them after)
        # Some faults only show against an API that misbehaves or checks the token.
        if {"no_retry", "retry_new_id"} & names.keys():
            harness.sink.fail_next(1, kind="500", event_name="Purchase")
            print("  the sink answers the first Purchase call with a 500")
        if "wrong_token" in names:
            harness.sink.expect_token(site.token)
            print("  the sink expects the shop's configured token")
        typed = Customer()
        capture.customer(typed)  # so PII checks can tell right hashes from wrong ones
        context = browser.new_context()
        try:
            set_faults(context, site.url, faults)
            started = time.perf_counter()
            page = context.new_page()
            order_id = ", ".join(checkout(page, site.url, customer=typed)
                                 for _ in range(orders))
            capture.wait_until(settled, timeout)
            took = time.perf_counter() - started
        finally:
            context.close()
        startup = harness.startup_seconds()
        print(f"  started: proxy {startup['proxy']:.2f}s, sink {startup['sink']:.3f}s, "
              f"browser {startup['browser']:.2f}s ({browser.location.how})")
        print(f"  order(s) {order_id} placed; journey and events took {took:.2f}s\n")
        result, findings = capture.evaluate()
        coverage = match_key_coverage(result, capture.known_customer)
    code = print_verdict(result, findings, events=True)
    print()
    print(coverage_table_text(coverage))
    return code


# --- record -----------------------------------------------------------------------------


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) \
        or sys.platform in ("darwin", "win32")


class LivePrinter:
    """Prints each event as it arrives, and each pair as it forms."""

    def __init__(self, harness: Harness, mark: int, out: Callable[[str], None] = print) -> None:
        self.harness, self.mark, self.out = harness, mark, out
        self._seen = 0
        self._paired: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pixelcheck-live", daemon=True)

    def start(self) -> LivePrinter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._print_new()

    def _run(self) -> None:
        store = self.harness.store
        while not self._stop.is_set():
            store.wait_until(lambda evs: len(evs) > self._seen, self.mark, 0.2)
            self._print_new()

    def _print_new(self) -> None:
        events = self.harness.store.since(self.mark)
        for event in events[self._seen:]:
            self.out(f"  {time.strftime('%H:%M:%S')} {event.source:<7} "
                     f"{shorten(event.event_name or '<no name>', 18):<18} "
                     f"id={shorten(event.event_id or '-', 28):<28} "
                     + (f"UNDECODABLE: {scrub(event.error)}" if event.error else
                        f"pixel {event.pixel_id}"))
        self._seen = len(events)
        for pair in match_events(events).pairs:
            if pair.server.seq not in self._paired:
                self._paired.add(pair.server.seq)
                self.out(f"  {'':8} = deduplicated {pair.browser.event_name} "
                         f"id={pair.browser.event_id!r}")


def _record(args: argparse.Namespace) -> int:
    headless = not args.headed and bool(args.headless or args.script or not _has_display())
    config = HarnessConfig(browser_path=args.browser, headless=headless,
                           default_timeout=args.timeout, proxy_port=args.proxy_port,
                           sink_port=args.sink_port)
    out_dir = Path(args.out)
    with Harness(config) as harness:
        print(f"pixelcheck record: {args.url}")
        print(f"  proxy {harness.proxy.url} (CA {harness.proxy.ca_cert_path})")
        print(f"  sink  {harness.sink.url}  <- point your backend's Graph base URL here")
        capture = harness.capture("record")
        printer = LivePrinter(harness, capture.mark).start()
        context = harness.browser().new_context()
        try:
            page = context.new_page()
            page.goto(args.url)
            if args.script:
                runpy.run_path(args.script, init_globals={"page": page, "context": context,
                                                          "pixelcheck": capture})
                capture.wait_until(settled, args.timeout)
            else:
                print("  browse; close the browser window (or press Ctrl-C) to finish")
                try:
                    page.wait_for_event("close", timeout=0)
                except KeyboardInterrupt:
                    pass
        finally:
            printer.stop()
            context.close()
        events = capture.events
        capture_path = write_capture(out_dir / "capture.jsonl", events)
        har_path = write_har(out_dir / "traffic.har", capture.traffic())
        result, findings = capture.evaluate()
    print(f"\nwrote {capture_path} ({len(events)} events) and {har_path}\n")
    return print_verdict(result, findings)


# --- analyze ----------------------------------------------------------------------------


def _analyze_with_severity(args: argparse.Namespace) -> int:
    """``analyze`` under ``--severity`` overrides: the verdict, exit code and reports use
    them, as the pytest plugin's pixelcheck_severity does."""
    try:
        overrides = parse_severity_overrides(args.severity)
    except ValueError as exc:
        print(f"pixelcheck analyze: --severity: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with severity_policy(overrides):
        return _analyze(args)


def _analyze(args: argparse.Namespace) -> int:
    from .analysis import Engine
    from .analysis.text import dashboard_rows, dashboard_text, grouped_text

    with Engine(by=args.by, workers=args.workers) as engine:
        try:
            loaded = engine.load(args.files)
        except (OSError, ValueError, duckdb_error()) as exc:
            print(f"pixelcheck analyze: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"pixelcheck analyze: {loaded.rows} events from {loaded.files} file(s)")
        if loaded.overlap:
            print(f"  {loaded.overlap} events appeared again in a later file (the same session "
                  "saved twice?) and were counted once")
        for reason, count in loaded.unread.most_common():
            print(f"  {count} line(s) gave no event: {reason} (e.g. "
                  f"{loaded.unread_example[reason]})")
        reports = engine.reports()
        series = engine.series() if args.by != "all" else []
        if args.export:
            print(f"  wrote Parquet to {engine.export(args.export)} (by day and platform)")
    records, exit_code = [], EXIT_OK
    list_all = args.events or args.findings == "all"
    for report in reports:
        if args.by != "all":
            print(f"\n=== {report.period} ===")
        if report.complete and (list_all or len(report.findings) <= GROUPED_ABOVE):
            exit_code = max(exit_code, print_verdict(report.result, report.findings,
                                                     events=args.events))
        else:
            exit_code = max(exit_code, _print_grouped(report, grouped_text, list_all))
        record = test_record(report.period, "analyzed", report.result, report.findings,
                             report.answers)
        record["stats"] = stats_dicts(report.stats)
        records.append(record)
    alerts = [f"{r.period}: dedup rate {r.rate:.0%} is below {args.min_dedup_rate:.0%}"
              for r in reports if args.min_dedup_rate is not None and r.rate is not None
              and r.rate < args.min_dedup_rate]
    dashboard = dashboard_rows(series, args.alert_drop, args.min_dedup_rate)
    if args.by != "all":
        print(f"\n{args.by} by {args.by}:")
        print(dashboard_text(dashboard))
        alerts += [f"{r['period']} {r['platform']} {r['event_name']}: {r['alert']}"
                   for r in dashboard if r["alert"] and "below" not in r["alert"]]
    data = build_report(records)
    if dashboard:
        data["dashboard"] = dashboard
    if args.json:
        write_json(args.json, data)
        print(f"\nwrote {args.json}")
    if args.html:
        from .report_html import write_html

        write_html(args.html, data)
        print(f"wrote {args.html}")
    if alerts:
        print("\nALERT: " + "; ".join(alerts))
        return EXIT_ALERT
    return EXIT_OK if args.min_dedup_rate is not None else exit_code


#: more findings than this in one report are grouped by code, platform and event name
GROUPED_ABOVE = 20


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def _print_grouped(report: Any, grouped_text: Callable[..., str], list_all: bool) -> int:
    """The report of a large input: the counts, then findings by group."""
    print("dedup by event name:")
    print(stats_table(report.stats))
    scope = "" if report.complete else (
        " (diagnosed on the conversions the counts mark as problems)")
    print(f"\nfindings by code, platform and event name ({count_severities(report.findings)})"
          f"{scope}:")
    if list_all:
        print(findings_text(report.findings))
    else:
        print(grouped_text(report.findings, report.conversions))
    errors = at_least(report.findings, "error")
    rate = report.rate
    shown = "-" if rate is None else f"{rate:.0%}"
    print(f"\nverdict: {'PASSED' if not errors else 'FAILED'}: dedup rate {shown}, "
          f"{count_severities(report.findings) if report.findings else 'no findings'}")
    return EXIT_OK if not errors else EXIT_FINDINGS


def _install_browser(args: argparse.Namespace) -> int:
    from .install import ensure_chromium

    print(f"Chromium: {ensure_chromium(args.browser)}")
    return EXIT_OK


def _fault_list() -> str:
    try:
        from example_site import FAULTS
    except ImportError:
        return ""
    from example_site.trackers import load_trackers

    lines = ["faults of the example shop:"]
    for name, text in FAULTS.items():
        lines += wrap(f"{name:<24} {text}", 78, initial_indent="  ", subsequent_indent=" " * 27)
    for platform, tracker in sorted(load_trackers().items()):
        for name, text in tracker.faults.items():
            lines += wrap(f"{platform + ':' + name:<24} {text}", 78, initial_indent="  ",
                          subsequent_indent=" " * 27)
    return "\n".join(lines)


def _browser_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--browser", help="Chromium executable")
    command.add_argument("--headed", action="store_true", help="show the browser window")
    command.add_argument("--timeout", type=float, default=5.0,
                         help="seconds to wait for straggling events (default 5)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pixelcheck",
        description="Check that browser pixel events and server conversion API events "
                    "deduplicate.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the example shop's checkout and print the report",
                          epilog=_fault_list(), formatter_class=argparse.RawTextHelpFormatter)
    demo.add_argument("--platform", action="append", metavar="NAME",
                      help="also track this platform on both sides (one the shop has a "
                           "tracker for); its faults are PLATFORM:FAULT, listed below")
    demo.add_argument("--fault", action="append", metavar="NAME",
                      help="switch on a fault of the example shop (repeatable);\n"
                           "NAME:VALUE for the ones that take a value")
    _browser_options(demo)
    demo.set_defaults(func=_demo)

    record = sub.add_parser("record", help="open a page through the proxy and sink, print "
                                           "events live, write the capture when done")
    record.add_argument("url")
    record.add_argument("--script", help="a Python file that drives `page` (Playwright) "
                                         "instead of a human; `pixelcheck` is the capture")
    record.add_argument("--out", default="pixelcheck-capture",
                        help="folder for capture.jsonl and traffic.har")
    record.add_argument("--sink-port", type=int, default=0,
                        help="port of the sink, so a backend started beforehand can be "
                             "pointed at http://127.0.0.1:PORT (default: any free port)")
    record.add_argument("--proxy-port", type=int, default=0,
                        help="port of the proxy (default: any free port)")
    _browser_options(record)
    record.add_argument("--headless", action="store_true", help="force no window")
    record.set_defaults(func=_record)

    analyze = sub.add_parser("analyze", help="the dedup report of captures: pixelcheck "
                                             "JSONL (or .gz), HAR files, JSON lines of server "
                                             "payloads, Parquet from --export")
    analyze.add_argument("files", nargs="+")
    analyze.add_argument("--by", choices=["all", "day", "hour"], default="all",
                         help="one report, or one per day or hour (UTC), with the dashboard "
                              "of counts and rates per platform and event name")
    analyze.add_argument("--alert-drop", type=float, default=0.05, metavar="POINTS",
                         help=f"exit {EXIT_ALERT} when a rate falls by this much since the "
                              "previous period (default 0.05: five points)")
    analyze.add_argument("--findings", choices=["grouped", "all"], default="grouped",
                         help="findings of large inputs grouped by code, platform and event "
                              "name with three examples (default), or all of them")
    analyze.add_argument("--workers", type=int, default=None, metavar="N",
                         help="processes decoding large inputs (default: the cores, at most 4)")
    analyze.add_argument("--export", metavar="DIR",
                         help="write the decoded events as Parquet, partitioned by day and "
                              "platform (analyze reads the folder back)")
    analyze.add_argument("--min-dedup-rate", type=float, default=None, metavar="RATE",
                         help=f"exit {EXIT_ALERT} when a report's dedup rate is below RATE")
    analyze.add_argument("--events", action="store_true", help="list every event too")
    analyze.add_argument("--json", help="write the JSON report here")
    analyze.add_argument("--html", help="write the HTML report here")
    analyze.add_argument("--severity", action="append", metavar="CODE=SEV[,CODE=SEV]",
                         help="change a finding code's severity (error, warning, info), "
                              "e.g. payload-mismatch=error,server-event-late=info; "
                              "repeatable")
    analyze.set_defaults(func=_analyze_with_severity)

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
