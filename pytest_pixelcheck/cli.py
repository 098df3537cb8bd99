"""The ``pixelcheck`` command. It shares the harness, matching, findings and
reports with the pytest plugin; it adds argument handling and printing."""

from __future__ import annotations

import argparse
import json
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
    REPORT_FORMAT,
    REPORT_VERSION,
    build_report,
    stats_dicts,
    test_record,
    write_capture,
    write_har,
    write_json,
)
from .ca import DEFAULT_CA_DIR
from .diagnosis import diagnose
from .events import EventStore
from .findings import Finding, at_least, parse_severity_overrides, severity_policy
from .gate import apply_gate, gate_line
from .harness import Harness, HarnessConfig
from .listen import is_loopback, url_host
from .matching import MatchResult, match_events, settled
from .pii import match_key_coverage
from .redact import scrub
from .report import (
    count_severities,
    coverage_table_text,
    events_table,
    findings_text,
    session_summary,
    shorten,
    stats_table,
    wrap,
)

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_ALERT = 0, 1, 2, 3
#: the fixed ports `pixelcheck ca` and `pixelcheck serve` assume unless told
DEFAULT_PROXY_PORT, DEFAULT_SINK_PORT, DEFAULT_CONTROL_PORT = 8080, 8081, 8082


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
    from .analysis.engine import SAMPLE_ROWS
    from .analysis.text import dashboard_rows, dashboard_text, grouped_text

    list_all = args.events or args.findings == "all"
    with Engine(by=args.by, workers=args.workers, exact=args.exact,
                sample_rows=None if list_all else SAMPLE_ROWS) as engine:
        try:
            loaded = engine.load(args.files)
        except (OSError, ValueError, duckdb_error()) as exc:
            print(f"pixelcheck analyze: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"pixelcheck analyze: {loaded.rows} events from {loaded.files} file(s)"
              + (f" ({loaded.fast_rows} decoded in SQL)" if loaded.fast_rows else ""))
        for note in loaded.notes:
            print(f"  {note}")
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
        if report.sampled:  # findings from a sample: what one stands for, per platform
            record["sample_weights"] = {str(k): round(v, 3) for k, v in report.weights.items()}
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
    if report.sampled:
        scope = (" (estimated: diagnosed on whole minutes of the conversions the counts "
                 "mark as problems, about one in "
                 f"{max(report.weights.values()):.0f}; --findings all diagnoses every one)")
    counted = count_severities(report.findings) + (" in the sample" if report.sampled else "")
    print(f"\nfindings by code, platform and event name ({counted}){scope}:")
    if list_all:
        print(findings_text(report.findings))
    else:
        print(grouped_text(report.findings, report.conversions, weight=report.weight))
    errors = at_least(report.findings, "error")
    rate = report.rate
    shown = "-" if rate is None else f"{rate:.0%}"
    print(f"\nverdict: {'PASSED' if not errors else 'FAILED'}: dedup rate {shown}, "
          f"{counted if report.findings else 'no findings'}")
    return EXIT_OK if not errors else EXIT_FINDINGS

# --- merge ------------------------------------------------------------------------------


def read_report(path: str) -> dict[str, Any]:
    """A JSON session report of this format and version, or a ValueError saying why not."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON report ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != REPORT_FORMAT:
        raise ValueError(f"{path}: not a pixelcheck session report (--pixelcheck-report)")
    if data.get("version") != REPORT_VERSION:
        raise ValueError(f"{path}: report version {data.get('version')}, this pixelcheck "
                         f"reads version {REPORT_VERSION}")
    return data


def merge_reports(reports: Sequence[dict[str, Any]],
                  names: Sequence[str] | None = None) -> dict[str, Any]:
    """One session report from the reports of shards: built from their tests as the
    pytest session builds its own, so every figure is the one a single run gives."""
    names = names or [f"report {i + 1}" for i in range(len(reports))]
    seen: dict[str, str] = {}
    twice = []
    for name, report in zip(names, reports, strict=True):
        for test in report["tests"]:
            if test["nodeid"] in seen:
                twice.append(f"{test['nodeid']} ({seen[test['nodeid']]} and {name})")
            seen[test["nodeid"]] = name
    if twice:
        raise ValueError("the same test is in more than one report, so it would count twice "
                         "(do the shards overlap?): " + ", ".join(twice[:5])
                         + (f" and {len(twice) - 5} more" if len(twice) > 5 else ""))
    overrides = {json.dumps(r["summary"].get("severity_overrides") or {}, sort_keys=True)
                 for r in reports}
    if len(overrides) > 1:
        raise ValueError("the reports were made with different pixelcheck_severity "
                         "overrides; merge only shards of one run configuration")
    with severity_policy(json.loads(overrides.pop()) if overrides else {}):
        return build_report([test for report in reports for test in report["tests"]])


def _merge(args: argparse.Namespace) -> int:
    try:
        report = merge_reports([read_report(path) for path in args.files], args.files)
    except ValueError as exc:
        print(f"pixelcheck merge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    reasons = apply_gate(report, min_dedup_rate=args.min_dedup_rate, fail_on=args.fail_on)
    print(f"pixelcheck merge: {report['summary']['tests']} test(s) from "
          f"{len(args.files)} report(s)")
    print(session_summary(report, verbose=args.verbose))
    write_outputs(report, json_path=args.json, html_path=args.html,
                  github_summary=args.github_summary, out=print)
    if reasons:
        print(gate_line(reasons))
        return EXIT_FINDINGS
    return EXIT_OK


def write_outputs(report: dict[str, Any], *, json_path: str | None, html_path: str | None,
                  github_summary: str | None, out: Callable[[str], None]) -> None:
    if json_path:
        out(f"wrote {write_json(json_path, report)}")
    if html_path:
        from .report_html import write_html

        out(f"wrote {write_html(html_path, report)}")
    if github_summary:
        from .report import append_markdown_summary

        append_markdown_summary(github_summary, report)


# --- serve and attach -------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import signal

    from .listen import ListenError, check_port_free
    from .serve import CaptureServer

    config = HarnessConfig(listen_host=args.listen_host, allow_remote=args.allow_remote,
                           access_token=args.access_token, proxy_port=args.proxy_port,
                           sink_port=args.sink_port, ca_dir=args.ca_dir)
    try:
        check_port_free(args.listen_host, args.control_port, "control API", "--control-port")
        harness = Harness(config).start()
    except ListenError as exc:
        print(f"pixelcheck serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    remote = not is_loopback(args.listen_host)
    control = CaptureServer(harness, host=args.listen_host, port=args.control_port,
                            token=args.access_token if remote else None).start()
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    print("pixelcheck serve: capturing until stopped (Ctrl-C)")
    print(f"  proxy   {harness.proxy.url}")
    print(f"  sink    {harness.sink.url}")
    print(f"  control {control.url}  <- pytest --pixelcheck-attach {control.url}")
    print(f"  CA      {harness.proxy.ca_cert_path} (with public roots: {harness.ca_bundle_path})")
    print("  the backend's environment:")
    for name, value in harness.backend_env(args.backend_host).items():
        print(f"    {name}={value}")
    sys.stdout.flush()
    try:
        while not stopped.wait(0.5):
            pass
    finally:
        control.stop()
        harness.stop()
    print(f"pixelcheck serve: stopped after {len(harness.store)} events")
    return EXIT_OK


def _attach(args: argparse.Namespace) -> int:
    from .serve import AttachError, Attachment, events_from_line

    attachment = Attachment(args.url, EventStore(), token=args.access_token)
    try:
        text = attachment.capture(args.test)
    except AttachError as exc:
        print(f"pixelcheck attach: {exc}", file=sys.stderr)
        return EXIT_USAGE
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = [event for line in lines for event in events_from_line(line)]
    for seq, event in enumerate(events):
        event.seq = seq
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(lines)} requests)")
    print(f"pixelcheck attach: test {args.test}: {len(events)} events")
    result = match_events(events)
    return print_verdict(result, diagnose(result), events=True)


# --- ca ---------------------------------------------------------------------------------


def _ca(args: argparse.Namespace) -> int:
    from . import ca

    try:
        cert, bundle = ca.export_ca(args.ca_dir, args.export)
    except OSError as exc:
        print(f"pixelcheck ca: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {cert} (the CA) and {bundle} (the CA and public roots)")
    print(f"and {cert.parent / ca.BROWSER_SERVER_FILE}, for a browser server that trusts it:"
          f" playwright launch-server --browser chromium --config "
          f"{cert.parent / ca.BROWSER_SERVER_FILE}")
    print(f"the proxy signs with it when pytest runs with --pixelcheck-ca-dir={args.ca_dir}"
          f" (pixelcheck serve --ca-dir {args.ca_dir}); the key stays in {args.ca_dir}")
    seen_at = Path(args.path_in_backend) if args.path_in_backend else None
    host = url_host(args.host)
    env = ca.backend_env(
        f"http://{host}:{args.proxy_port}", f"http://{host}:{args.sink_port}",
        str(seen_at / bundle.name if seen_at else bundle.resolve()),
        str(seen_at / cert.name if seen_at else cert.resolve()),
        (*ca.LOCAL_NO_PROXY, args.host))
    print("\nthe backend's environment:")
    for name, value in env.items():
        print(f"export {name}={value}")
    return EXIT_OK


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
    analyze.add_argument("--exact", action="store_true",
                         help="decode every line with the platforms' Python decoders, each "
                              "server call checked against its API schema (slow); by default "
                              "the common request shapes are decoded in SQL, trusting the "
                              "answer recorded with each call")
    analyze.add_argument("--events", action="store_true", help="list every event too")
    analyze.add_argument("--json", help="write the JSON report here")
    analyze.add_argument("--html", help="write the HTML report here")
    analyze.add_argument("--severity", action="append", metavar="CODE=SEV[,CODE=SEV]",
                         help="change a finding code's severity (error, warning, info), "
                              "e.g. payload-mismatch=error,server-event-late=info; "
                              "repeatable")
    analyze.set_defaults(func=_analyze_with_severity)

    serve = sub.add_parser(
        "serve", help="keep a proxy and sink on fixed ports for a backend that is already "
                      "running (staging); test runs attach with --pixelcheck-attach")
    serve.add_argument("--listen-host", default="127.0.0.1",
                       help="where proxy, sink and control API listen (default 127.0.0.1)")
    serve.add_argument("--allow-remote", action="store_true",
                       help="allow a non-loopback --listen-host (needs --access-token)")
    serve.add_argument("--access-token", help="the token the backend's calls must carry; "
                                              "also required by the control API when remote")
    serve.add_argument("--proxy-port", type=int, default=DEFAULT_PROXY_PORT)
    serve.add_argument("--sink-port", type=int, default=DEFAULT_SINK_PORT)
    serve.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT)
    serve.add_argument("--ca-dir", default=DEFAULT_CA_DIR,
                       help="the CA (made when missing; pixelcheck ca --export shares it)")
    serve.add_argument("--backend-host", default=None,
                       help="how the backend reaches this machine, for the printed env")
    serve.set_defaults(func=_serve)

    attach = sub.add_parser("attach", help="fetch one test's capture from a running "
                                           "pixelcheck serve and print its verdict")
    attach.add_argument("url", help="the serve's control URL")
    attach.add_argument("--test", required=True, metavar="TEST_ID",
                        help="the test's id (pytest's node id)")
    attach.add_argument("--out", help="write the capture (JSONL) here")
    attach.add_argument("--access-token", help="when the serve listens beyond loopback")
    attach.set_defaults(func=_attach)

    ca_command = sub.add_parser(
        "ca", help="export the proxy's CA for a backend started before the run (container, "
                   "staging host), and print the environment that trusts it")
    ca_command.add_argument("--export", required=True, metavar="DIR",
                            help="write pixelcheck-ca.pem and ca-bundle.pem (the CA and "
                                 "the public roots) here; never the key")
    ca_command.add_argument("--ca-dir", default=DEFAULT_CA_DIR,
                            help="the CA with its key, created when missing; give the same "
                                 f"to --pixelcheck-ca-dir (default {DEFAULT_CA_DIR})")
    ca_command.add_argument("--host", default="127.0.0.1",
                            help="how the backend reaches this machine "
                                 "(host.docker.internal from a container)")
    ca_command.add_argument("--proxy-port", type=int, default=DEFAULT_PROXY_PORT)
    ca_command.add_argument("--sink-port", type=int, default=DEFAULT_SINK_PORT)
    ca_command.add_argument("--path-in-backend", metavar="DIR",
                            help="where the backend sees DIR (a container's mount path)")
    ca_command.set_defaults(func=_ca)

    merge = sub.add_parser(
        "merge", help="merge the JSON reports of parallel CI jobs (shards) into one report, "
                      "summary, HTML file and gate verdict")
    merge.add_argument("files", nargs="+", metavar="REPORT",
                       help="JSON session reports (--pixelcheck-report) of the shards")
    merge.add_argument("--min-dedup-rate", type=float, default=None, metavar="RATE",
                       help="fail (exit 1) when the overall dedup rate is below RATE (0 to 1)")
    merge.add_argument("--fail-on", choices=["error", "warning"], default=None,
                       help="fail (exit 1) on findings of this severity or worse")
    merge.add_argument("--json", help="write the merged JSON report here")
    merge.add_argument("--html", help="write the merged HTML report here")
    merge.add_argument("--github-summary", default=os.environ.get("GITHUB_STEP_SUMMARY"),
                       metavar="PATH", help="append the summary as Markdown (default: "
                                            "$GITHUB_STEP_SUMMARY when set)")
    merge.add_argument("-v", "--verbose", action="store_true", help="one line per test too")
    merge.set_defaults(func=_merge)

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
