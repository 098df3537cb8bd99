"""``pixelcheck analyze`` on the DuckDB engine: its counts against the matcher's, the
diagnosis of the problem rows against the full one, every input kind, undecodable
lines counted, the Parquet export's round trip, the dashboard and its charts."""

from __future__ import annotations

import collections
import gzip
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_pixelcheck import platforms
from pytest_pixelcheck.analysis import Engine, engine, synthetic
from pytest_pixelcheck.artifacts import read_requests
from pytest_pixelcheck.matching import match_events

FAULTS = synthetic.Faults(id_suffix=0.06, missing_server=0.03, late_server=0.03,
                          truncated_server=0.02)


def pixelcheck(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "sales.jsonl"
    synthetic.write(path, synthetic.Plan(sales=700, days=3, faults=FAULTS))
    return path


def analysis(paths, **options):
    with Engine(**options) as run:
        run.load(paths, progress=False)
        reports = run.reports()
        return run.summary, reports


def figures(reports):
    stats = {r.period: sorted((s.platform, s.event_name, s.browser, s.server, s.deduplicated,
                               s.browser_only, s.server_only, s.extra) for s in r.stats)
             for r in reports}
    codes = collections.Counter((r.period, f.code, f.platform, f.event_name)
                                for r in reports for f in r.findings)
    return stats, codes


def test_the_engine_counts_what_the_matcher_counts(capture):
    decoded = []
    for source, request in read_requests(capture):
        for event in platforms.decode_request(request, source):
            event.seq = len(decoded)
            decoded.append(event)
    expected = sorted((s.platform, s.event_name, s.browser, s.server, s.deduplicated,
                       s.browser_only, s.server_only, s.extra)
                      for s in match_events(decoded).stats().values())
    summary, reports = analysis([capture])
    assert summary.rows == len(decoded)
    assert figures(reports)[0] == {"all": expected}
    # every platform took part, and each has deduplicated sales
    assert {row[0] for row in expected} == set(synthetic.TEMPLATES)
    assert all(row[4] > 0 for row in expected)


@pytest.mark.parametrize("by", ["all", "day"])
def test_diagnosing_only_the_problem_rows_finds_what_diagnosing_all_finds(capture, by):
    _, everything = analysis([capture], by=by)
    _, problems = analysis([capture], by=by, full_diagnosis_rows=0)
    assert all(r.complete for r in everything) and not any(r.complete for r in problems)
    assert len(problems[0].result.events) < len(everything[0].result.events) / 2
    assert figures(problems) == figures(everything)
    codes = {code for _, code, _, _ in figures(problems)[1]}
    assert {"near-miss-event-id", "server-event-missing", "server-event-late",
            "server-event-undecodable", "undecodable-request"} <= codes


def test_a_sample_of_the_problem_rows_estimates_the_finding_counts(capture):
    from pytest_pixelcheck.analysis.text import group_findings, grouped_text

    _, everything = analysis([capture], full_diagnosis_rows=0, sample_rows=None)
    _, sampled = analysis([capture], full_diagnosis_rows=0, sample_rows=150)
    whole, part = everything[0], sampled[0]
    assert not whole.sampled and part.sampled
    assert len(part.result.events) < 0.8 * len(whole.result.events)
    exact = {(g.code, g.platform): g.count for g in group_findings(whole.findings)}
    estimated = {(g.code, g.platform): g.count
                 for g in group_findings(part.findings, part.weight)}
    # whole minutes are kept: a near miss's two ids are diagnosed together, never as a
    # browser copy and a server copy each missing its twin
    assert set(estimated) <= set(exact)
    total, guess = sum(exact.values()), sum(estimated.values())
    assert abs(guess - total) <= 0.25 * total, (exact, estimated)
    nearmiss = sum(v for (code, _), v in exact.items() if code == "near-miss-event-id")
    guessed = sum(v for (code, _), v in estimated.items() if code == "near-miss-event-id")
    assert nearmiss and abs(guessed - nearmiss) <= 0.5 * nearmiss, (nearmiss, guessed)
    text = grouped_text(part.findings, part.conversions, weight=part.weight)
    assert ": ~" in text


def test_gzip_and_worker_processes_give_the_same_figures(capture, tmp_path, monkeypatch):
    packed = tmp_path / "sales.jsonl.gz"
    packed.write_bytes(gzip.compress(capture.read_bytes()))
    # small batches, so even this file goes through the worker processes
    monkeypatch.setattr(engine, "BATCH_LINES", 97)
    _, plain = analysis([capture], workers=1)
    _, parallel = analysis([packed], workers=2)
    assert figures(parallel) == figures(plain)


def test_backend_logs_of_every_platform_decode(tmp_path):
    lines = []
    for name in synthetic.TEMPLATES:
        template = synthetic.load_template(name, "server")
        request = json.loads(template.line(f"{name}-1", synthetic.START,
                                           synthetic.START + 1))["request"]
        record = json.loads(request["body"])
        record.update(platform=name, url=request["url"])
        lines.append(json.dumps(record))
    log = tmp_path / "backend.jsonl"
    log.write_text("\n".join(lines) + "\n")
    summary, reports = analysis([log])
    assert summary.unread == {} and summary.undecodable == []
    assert {(s.platform, s.server) for s in reports[0].stats} == {
        (name, 1) for name in synthetic.TEMPLATES}


def test_lines_that_give_no_event_are_counted_by_reason(capture, tmp_path):
    good = capture.read_text().splitlines()[:40]
    truncated = json.loads(good[1])
    truncated["request"]["body"] = truncated["request"]["body"][:30]
    bad = tmp_path / "mixed.jsonl"
    bad.write_text("\n".join([*good, "not json at all", '{"hello": 1}', json.dumps(truncated),
                              '{"format": "pytest-pixelcheck-capture", "source": "browser", '
                              '"request": {"url": "https://shop.example/logo.png"}}']) + "\n")
    run = pixelcheck("analyze", bad)
    assert "1 line(s) gave no event: not a JSON line (e.g. " in run.stdout
    assert f"{bad}:41)" in run.stdout
    assert "1 line(s) gave no event: neither a pixelcheck capture line nor a server payload" \
        in run.stdout
    assert "1 line(s) gave no event: not a pixel hit or conversion API call" in run.stdout
    assert "[undecodable-request]" in run.stdout
    summary, _ = analysis([bad])
    assert sum(summary.unread.values()) == 3
    assert [(p, n) for p, _, n in summary.undecodable] == [(truncated["platform"], 1)]


def test_export_round_trip_gives_the_same_figures(capture, tmp_path):
    exported = tmp_path / "parquet"
    first = pixelcheck("analyze", capture, "--by", "day", "--export", exported,
                       "--json", tmp_path / "first.json", "--alert-drop", "1")
    assert first.returncode == 1, first.stdout + first.stderr
    days = sorted(p.name for p in exported.iterdir())
    assert days == ["day=2026-11-01", "day=2026-11-02", "day=2026-11-03"]
    assert {p.name for p in (exported / days[0]).iterdir()} == {
        f"platform={name}" for name in synthetic.TEMPLATES}
    again = pixelcheck("analyze", exported, "--by", "day", "--json", tmp_path / "again.json",
                       "--alert-drop", "1")
    assert again.returncode == 1, again.stdout + again.stderr

    def essence(report):
        return [(t["nodeid"], t["stats"], sorted((f["code"], f["platform"], f["message"])
                                                 for f in t["findings"]))
                for t in json.loads(report.read_text())["tests"]]

    assert essence(tmp_path / "again.json") == essence(tmp_path / "first.json")
    def printed(run):
        return run.stdout.split("===", 1)[1].split("\nwrote ")[0]

    assert printed(again) == printed(first)
    # the export holds what a finding needs, never a secret
    assert "EAAtesttoken123" not in "".join(
        p.read_bytes().decode("latin-1") for p in exported.rglob("*.parquet"))
    # and the same figures after a second round
    _, from_parquet = analysis([exported], by="day")
    _, from_capture = analysis([capture], by="day")
    assert figures(from_parquet) == figures(from_capture)


def test_the_dashboard_alerts_when_a_rate_drops(tmp_path):
    capture = tmp_path / "deploy.jsonl"
    synthetic.write(capture, synthetic.Plan(
        sales=420, days=3, platforms={"meta": 1.0, "tiktok": 1.0},
        faults=synthetic.Faults(id_suffix=0.0, missing_server=0.0, last_day_id_suffix=0.5)))
    run = pixelcheck("analyze", capture, "--by", "day", "--json", tmp_path / "r.json")
    assert run.returncode == 3, run.stdout + run.stderr
    table = run.stdout.split("day by day:")[1]
    assert "2026-11-02       meta      Purchase" in table
    alert = run.stdout.rstrip().splitlines()[-1]
    assert alert.startswith("ALERT: 2026-11-03 meta Purchase: rate fell ")
    assert "2026-11-03 tiktok CompletePayment: rate fell" in alert
    assert "2026-11-02" not in alert
    dashboard = json.loads((tmp_path / "r.json").read_text())["dashboard"]
    assert {r["period"] for r in dashboard if r["alert"]} == {"2026-11-03"}
    hours = pixelcheck("analyze", capture, "--by", "hour")
    assert "hour by hour:" in hours.stdout and "2026-11-03 00:00" in hours.stdout


def test_many_findings_are_grouped_with_counts_shares_and_examples(capture):
    run = pixelcheck("analyze", capture)
    out = run.stdout
    assert "findings by code, platform and event name" in out
    header = next(line for line in out.splitlines() if "% of conversions)" in line)
    assert header.strip().startswith("error") and "[" in header
    block = out.split(header)[1].splitlines()
    assert block[1].strip().startswith("fix: ")
    assert [line.strip()[:4] for line in block[2:5]] == ["e.g."] * 3
    assert len(out.splitlines()) < 70
    listed = pixelcheck("analyze", capture, "--findings", "all")
    assert len(listed.stdout.splitlines()) > len(out.splitlines())


def look_at_dashboard(path, shot):
    """What a real headless Chromium shows of the dashboard (its own thread: see
    test_report_html.look_at)."""
    from playwright.sync_api import sync_playwright

    from pytest_pixelcheck.browser import NO_DNS, chromium_args, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium().executable_path,
                                     args=chromium_args(None, (NO_DNS,)),
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(path.as_uri())
            board = page.locator("#dashboard")
            board.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=True)
            chart = page.locator('.chart-pair[data-event="Purchase"] svg.chart').first
            box = chart.bounding_box()
            overall = page.locator('.chart-pair[data-event="*"] svg.chart')
            return {
                "platform_lines": overall.locator("polyline.series").evaluate_all(
                    "els => els.map(e => e.dataset.platform)"),
                "title": board.locator("h3").inner_text(),
                "alerts": board.locator("ul.alerts li").all_inner_texts(),
                "lines": chart.locator("polyline.series").evaluate_all(
                    "els => els.map(e => [e.dataset.platform, e.getTotalLength()])"),
                "marks": chart.locator("circle.mark").count(),
                "red_marks": chart.locator("circle.mark.alert").count(),
                "box": box,
                "other_requests": [u for u in requests if not u.startswith("file:")],
            }
        finally:
            browser.close()


@pytest.mark.browser
def test_the_dashboard_charts_render_in_a_real_browser(tmp_path, record_property):
    capture = tmp_path / "week.jsonl"
    synthetic.write(capture, synthetic.Plan(
        sales=700, days=7, platforms={"meta": 1.0, "snapchat": 1.0},
        faults=synthetic.Faults(id_suffix=0.02, missing_server=0.01, last_day_id_suffix=0.4)))
    page = tmp_path / "dashboard.html"
    run = pixelcheck("analyze", capture, "--by", "day", "--html", page)
    assert run.returncode == 3, run.stdout + run.stderr
    shot = tmp_path / "dashboard.png"
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(look_at_dashboard, page, shot).result(timeout=120)
    record_property("screenshot", str(shot))
    assert seen["title"] == "dashboard: 7 period(s)"
    assert seen["alerts"] and all(a.startswith("2026-11-07 ") for a in seen["alerts"])
    assert seen["platform_lines"] == ["meta", "snapchat"]  # a line per platform
    assert sorted(p for p, _ in seen["lines"]) == ["meta"]  # Purchase is Meta's name
    assert all(length > 300 for _, length in seen["lines"])  # drawn across the days
    assert seen["marks"] == 7 and seen["red_marks"] == 1
    assert seen["box"]["width"] > 500 and seen["box"]["height"] > 150
    assert seen["other_requests"] == []  # self-contained: nothing fetched
    assert shot.stat().st_size > 10_000


def test_the_documented_sql_is_the_sql_the_engine_runs():
    from pathlib import Path

    from pytest_pixelcheck.analysis import sql

    page = Path(__file__).parent.parent / "docs" / "analyze-at-scale.md"
    assert sql.script() in page.read_text()


def test_workers_keep_the_pairs_a_decoder_makes_in_file_order(tmp_path, monkeypatch):
    """Pinterest's tag sends each event to /user/ and then again to /v3/; the decoder
    marks the /v3/ copy a mirror only after it decoded the /user/ one. Decoded in worker
    batches, a pair split across two batches gave a second browser event. Lines whose
    decoding depends on earlier lines are decoded in file order: the counts are the same
    with workers as without, and each sale is one browser event."""
    lines = []
    for line in synthetic.lines(synthetic.Plan(sales=150, platforms={"pinterest": 1.0},
                                               days=1)):
        lines.append(line)
        record = json.loads(line)
        if record["source"] == "browser":
            record["request"]["url"] = record["request"]["url"].replace("/user/", "/v3/")
            record["request"]["arrival_time"] += 0.05
            lines.append(json.dumps(record))
    path = tmp_path / "pinterest.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # three lines a sale, 25 a batch: some batches end between a /user/ and its /v3/
    monkeypatch.setattr(engine, "BATCH_LINES", 25)

    def counts(workers):
        with Engine(workers=workers, exact=True) as run:
            run.load([path], progress=False)
            return [(s.platform, s.event_name, s.browser, s.server, s.deduplicated, s.extra)
                    for r in run.reports() for s in r.stats]

    alone = counts(1)
    assert [(p, name, browser, extra) for p, name, browser, _, _, extra in alone] == \
        [("pinterest", "checkout", 150, 0)]
    assert counts(2) == alone
