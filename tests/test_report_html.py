"""The HTML report: escaping and structure on a synthetic report, then the real
thing rendered from the recorded captures in a headless Chromium."""

from __future__ import annotations

import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from html import unescape

import pytest
from recorded import FIXTURES

from pytest_pixelcheck import artifacts, platforms
from pytest_pixelcheck.artifacts import build_report, read_requests
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.gate import gate_failures
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.pii import COVERAGE_LEGEND, MATCH_KEYS, coverage_rows, match_key_coverage
from pytest_pixelcheck.report_html import (
    CHAR_W,
    WIDTH,
    _rows,
    render_html,
    write_html,
)

CAPTURES = FIXTURES / "captures"
EVIL = "<script>alert(1)</script>"


def event(seq, source, name, at, event_id=None, status=200, error=None, rejection=None):
    return {
        "seq": seq, "platform": "meta", "source": source, "pixel_id": "1",
        "event_name": name, "event_id": event_id or f"{name}.{seq // 2}".lower(),
        "event_time": 1_700_000_000 + at, "arrival_time": 1_700_000_000 + at,
        "page_url": "https://shop.example/checkout", "user_data": {},
        "custom_data": {"value": 12.5, "currency": "USD"}, "error": error,
        "rejection": rejection,
        "request": {"method": "POST" if source == "server" else "GET",
                    "url": "https://graph.facebook.com/v21.0/1/events",
                    "channel": "sink", "status": status},
    }


def synthetic_report():
    events = [event(0, "browser", "PageView", 0.0), event(1, "server", "PageView", 0.001),
              event(2, "browser", "Purchase", 0.5), event(3, "server", "Purchase", 0.502),
              event(4, "browser", EVIL, 0.6, event_id="x"),
              event(5, "server", "Lead", 0.7, status=400, rejection=["bad token"]),
              event(6, "browser", None, 0.8, error="not a pixel hit")]
    finding = {"code": "server-call-rejected", "severity": "error",
               "message": f"rejected {EVIL}", "fix": "send a token", "details": [EVIL],
               "platform": "meta", "event_name": "Lead", "events": [5]}
    record = {"nodeid": f"tests/test_x.py::test_{EVIL}", "outcome": "failed",
              "events": events, "pairs": [[0, 1], [2, 3]], "findings": [finding],
              "stats": [{"platform": "meta", "event_name": "PageView", "browser": 1,
                         "server": 1, "deduplicated": 1, "browser_only": 0, "server_only": 0},
                        {"platform": "meta", "event_name": "Lead", "browser": 0, "server": 1,
                         "deduplicated": 0, "browser_only": 0, "server_only": 1}],
              "sink_answers": {"2xx": 2, "4xx": 1, "5xx": 0}}
    empty = {"nodeid": "tests/test_x.py::test_quiet", "outcome": "passed", "events": [],
             "pairs": [], "findings": [], "stats": [], "sink_answers": {}}
    return build_report([record, empty])


def test_synthetic_report_is_escaped_and_complete():
    html = render_html(synthetic_report())
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('class="pair-link"') == 2
    assert html.count('<section class="test ') == 2
    assert html.count('class="finding error" data-code="server-call-rejected"') == 1
    assert 'id="summary"' in html and 'id="dedup-table"' in html
    assert "no pixel or server events" in html  # the test with 0 events
    assert 'class="rate low"' in html  # Lead: 0% is flagged
    assert "event rejected" not in html and "rejected undecodable" not in html
    assert re.search(r'class="event server rejected unpaired flag-error"', html)
    assert re.search(r'class="event browser undecodable unpaired"', html)


def test_no_external_resources():
    html = render_html(synthetic_report())
    assert "https://graph.facebook.com" in html  # event URLs are shown as text...
    refs = re.findall(r"""\b(?:src|href)\s*=\s*["']?\s*([^"'\s>]*)""", html, re.I)
    assert refs and all(ref.startswith("#") for ref in refs)  # ...but nothing is loaded
    assert not re.search(r"url\(|@import|<link|<img|<iframe", html, re.I)


def test_an_empty_report_renders():
    html = render_html(build_report([]))
    assert "pytest-pixelcheck report" in html and "no tests in this report" in html
    assert 'class="test' not in html


def by_event_row(name, deduplicated, browser_only=0, server_only=0, extra=0):
    conversions = deduplicated + max(browser_only, server_only)
    return {"platform": "meta", "event_name": name, "browser": deduplicated + browser_only,
            "server": deduplicated + server_only, "deduplicated": deduplicated,
            "browser_only": browser_only, "server_only": server_only, "extra": extra,
            "dedup_rate": deduplicated / conversions if conversions else None}


def rates_report(gate=None):
    """Rows at 100%, 94%, 90%, 50% and none; overall 94%."""
    report = build_report([])
    rows = [by_event_row("AddToCart", 10), by_event_row("Lead", 47, server_only=3),
            by_event_row("PageView", 9, browser_only=1), by_event_row("Purchase", 1, 1, 1),
            by_event_row("Search", 0)]
    report["summary"].update(by_event=rows, dedup_rate=0.94)
    if gate is not None:
        report["gate"] = gate
    return report


def rate_cells(html):
    """{event name: (class of the rate cell, its text)} of the dedup table."""
    table = html.split('id="dedup-table"')[1].split("</table>")[0]
    return {name: (cls, text) for name, cls, text in re.findall(
        r'<td class=l>([^<]*)</td>.*?<td class="(rate[^"]*)"[^>]*>([^<]*)</td>', table)}


def dedup_rate_stat(html):
    return re.search(r'<div class="stat([^"]*)"><b>[^<]*</b><span>dedup rate', html).group(1)


def test_without_a_gate_every_rate_below_100_is_flagged():
    html = render_html(rates_report())
    assert rate_cells(html) == {"AddToCart": ("rate", "100%"), "Lead": ("rate low", "⚠ 94%"),
                                "PageView": ("rate low", "⚠ 90%"),
                                "Purchase": ("rate low", "⚠ 50%"), "Search": ("rate", "n/a")}
    assert dedup_rate_stat(html) == " bad"
    assert 'id="gate"' not in html


def test_the_gate_minimum_decides_red_or_amber():
    gate = {"min_dedup_rate": 0.9, "fail_on": None, "passed": True, "reasons": []}
    html = render_html(rates_report(gate))
    # below the minimum: red with a warning sign; 90% is the minimum itself, so it passes
    assert rate_cells(html) == {"AddToCart": ("rate", "100%"), "Lead": ("rate below", "94%"),
                                "PageView": ("rate below", "90%"),
                                "Purchase": ("rate low", "⚠ 50%"), "Search": ("rate", "n/a")}
    assert 'title="below the gate&#x27;s minimum of 90%"' in html
    assert dedup_rate_stat(html) == " warn"  # 94% overall: amber, not red
    assert "gate minimum 90%" in html
    # a higher minimum turns the overall rate red again
    html = render_html(rates_report({**gate, "min_dedup_rate": 0.95, "passed": False}))
    assert rate_cells(html)["Lead"] == ("rate low", "⚠ 94%")
    assert dedup_rate_stat(html) == " bad"
    # a gate on findings alone sets no minimum: every rate below 100% stays red
    html = render_html(rates_report({"min_dedup_rate": None, "fail_on": "warning",
                                     "passed": True, "reasons": []}))
    assert rate_cells(html)["Lead"] == ("rate low", "⚠ 94%")


def gate_banner(html):
    return re.search(r'<div class="gate [^"]*" id="gate".*?</div>', html).group(0)


def test_gate_banner_says_passed_or_failed_with_thresholds_and_reasons():
    report = rates_report()
    reasons = gate_failures(report, min_dedup_rate=0.95, fail_on="error") + [EVIL]
    html = render_html(rates_report({"min_dedup_rate": 0.95, "fail_on": "error",
                                     "passed": False, "reasons": reasons}))
    banner = gate_banner(html)
    assert 'class="gate failed"' in banner and "gate FAILED" in banner
    assert "minimum dedup rate <b>95%</b> (this run: 94%)" in banner
    assert "fails on <b>error</b> findings or worse" in banner
    assert "<li>dedup rate 94.0% is below the minimum 95.0% (below it: Purchase 50%, " in banner
    assert "<li>&lt;script&gt;" in banner and "<script" not in html
    assert html.index('id="gate"') < html.index('class="totals"')  # in the header, on top

    html = render_html(rates_report({"min_dedup_rate": 0.9, "fail_on": None, "passed": True,
                                     "reasons": []}))
    banner = gate_banner(html)
    assert 'class="gate passed"' in banner and "gate PASSED" in banner
    assert "minimum dedup rate <b>90%</b>" in banner and "findings do not fail it" in banner
    assert "<ul>" not in banner
    banner = gate_banner(render_html(rates_report({"min_dedup_rate": None, "fail_on": "warning",
                                                   "passed": True, "reasons": []})))
    assert "no minimum dedup rate" in banner and "fails on <b>warning</b>" in banner


def coverage_row(name, browser, server, browser_events=1, server_events=1):
    """A coverage row from two strings of one state character per match key."""
    return {"platform": "meta", "event_name": name,
            "browser": dict(zip(MATCH_KEYS, browser, strict=True)),
            "server": dict(zip(MATCH_KEYS, server, strict=True)),
            "browser_events": browser_events, "server_events": server_events}


def test_match_key_coverage_summary_and_per_test():
    every = "+hx?~.-++++++++"
    rows = [coverage_row("Purchase", every, every[::-1], 2, 3),
            coverage_row(EVIL, "." * 15, "-" * 15)]
    records = [dict(t) for t in synthetic_report()["tests"]]
    records[0].update(match_key_coverage=rows, customer_known=True)
    report = build_report(records)
    report["summary"]["match_key_coverage"] = rows  # exactly these states, unmerged
    html = render_html(report)
    summary = html.split('id="coverage"')[1].split("</section>")[0]
    assert summary.count("<tr>") == 3  # header + 2 event names
    heads = re.findall(r'<th class="k" title="([^"]+)">([^<]+)</th>', summary)
    assert [k for k, _ in heads] == list(MATCH_KEYS)
    assert [c for _, c in heads] == ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "co",
                                     "xid", "fbp", "fbc", "ip", "ua"]  # as in the terminal
    cells = re.findall(r'<td class="kc" data-key="([^"]+)" title="([^"]+)">'
                       r'<span class="st st-(\w+)">(.)</span><span class="sep">\|</span>'
                       r'<span class="st st-(\w+)">(.)</span></td>', summary)
    assert len(cells) == 2 * len(MATCH_KEYS)
    purchase = cells[:len(MATCH_KEYS)]
    assert "".join(b for *_, b, _, _ in purchase) == every
    assert "".join(s for *_, s in purchase) == every[::-1]
    colour = {"+": "ok", "h": "hashed", "x": "wrong", "?": "other", "~": "some", ".": "absent",
              "-": "na"}
    assert all(colour[b] == bc and colour[s] == sc for _, _, bc, b, sc, s in purchase)
    assert purchase[2][:2] == ("fn", "fn: browser wrong · server right")  # hover text
    assert '<td class="counts">2|3</td>' in summary
    assert "&lt;script&gt;" in summary and "<script" not in html
    assert "no customer declared" not in summary  # customer_known: hashes were checked
    # the legend explains every state the terminal legend does, in its words
    legend = [(c, unescape(m)) for c, m in re.findall(
        r'<span class="st st-\w+">(.)</span> ([^<]+)</span>',
        summary.split('class="cov-legend"')[1])]
    assert [c for c, _ in legend] == [e[0] for e in COVERAGE_LEGEND.split(": ", 1)[1]
                                      .split("  ")]
    for char, meaning in legend:
        assert f"{char}\u00a0{meaning.replace(' ', chr(0xa0))}" in COVERAGE_LEGEND
    # per test: a compact table under the findings, only where the test has coverage
    tests = html.split('<section class="test ')[1:]
    with_rows = [t for t in tests if 'class="coverage compact"' in t]
    assert len(with_rows) == 1 and EVIL.replace("<", "&lt;")[:10] in with_rows[0]
    assert with_rows[0].index('class="findings"') < with_rows[0].index('coverage compact')
    assert with_rows[0].count("<tr>") == 3


def test_coverage_without_a_customer_and_without_rows():
    html = render_html(synthetic_report())
    assert "no match-key coverage in this report" in html
    assert 'class="coverage compact"' not in html
    report = synthetic_report()
    report["summary"]["match_key_coverage"] = [coverage_row("Lead", "h" * 15, "+" * 15)]
    report["summary"]["customer_known"] = False
    html = render_html(report)
    assert "no customer declared: hashes unchecked" in html


def test_index_shows_each_outcome():
    html = render_html(synthetic_report())
    nav = re.search(r"<nav .*?</nav>", html).group(0)
    entries = re.findall(r'<span class="entry"><a href="#test-(\d)">.*?</a>'
                         r'<span class="badge outcome outcome-(\w+)">(\w+)</span>', nav)
    assert entries == [("0", "failed", "failed"), ("1", "passed", "passed")]
    assert "(1 finding)" in nav


def test_dedup_table_has_an_extra_column():
    report = rates_report()
    report["summary"]["by_event"][0]["extra"] = 2
    html = render_html(report)
    table = html.split('id="dedup-table"')[1].split("</table>")[0]
    heads = re.findall(r"<th[^>]*>([^<]+)</th>", table)
    assert heads == ["platform", "event", "browser", "server", "deduplicated", "browser-only",
                     "server-only", "extra", "rate"]
    assert '<td class="extra warn">2</td>' in table
    assert table.count('<td class="extra">0</td>') == 4
    del report["summary"]["by_event"][1]["extra"]  # rows of an older report
    assert '<td class="extra">0</td>' in render_html(report)


def crowded_record():
    """Events with long names bunched at the end of the axis, where labels used to be
    pushed past the right edge."""
    names = ["PageView", "ViewContent", "AddToCart", "InitiateCheckout", "AddPaymentInfo",
             "CompleteRegistration", "Purchase", "Subscribe"]
    events = [event(0, "browser", "PageView", 0.0), event(1, "server", "PageView", 0.0)]
    for i, name in enumerate(names):
        at = 0.93 + i * 0.01  # the last at 1 s, the end of the axis
        events += [event(len(events), "browser", name, at),
                   event(len(events) + 1, "server", name, at - 0.002)]
    pairs = [[i, i + 1] for i in range(0, len(events), 2)]
    return {"nodeid": "tests/test_x.py::test_crowded_end", "outcome": "passed",
            "events": events, "pairs": pairs, "findings": [], "stats": [],
            "sink_answers": {}}


def label_boxes(html):
    """(x, anchor, text, svg width) of every timeline label."""
    out = []
    for width, body in re.findall(r'<div class="timeline"><svg width="(\d+)"(.*?)</svg>', html,
                                  re.S):
        out += [(float(x), anchor, text, float(width)) for x, anchor, text in re.findall(
            r'<text class="label" x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)"[^>]*>([^<]*)<',
            body)]
    return out


def test_labels_stay_inside_the_timeline():
    html = render_html(build_report([crowded_record()]))
    boxes = label_boxes(html)
    assert len(boxes) == 18
    for x, anchor, text, width in boxes:
        assert width == WIDTH  # the drawing does not grow to make room
        w = len(text) * CHAR_W + 4
        right = {"end": x, "middle": x + w / 2, "start": x + w}[anchor]
        assert right <= width - 4, text
    assert any(anchor == "end" for _, anchor, _, _ in boxes)  # pinned to the edge


def test_label_rows_never_cross_the_limit_nor_overlap():
    items = [(900 + 15 * i, 60 + 10 * (i % 3)) for i in range(12)]
    rows = _rows(items, 1000)
    ends = {}
    for (x, w), (row, centre) in zip(items, rows, strict=True):
        assert centre + w / 2 <= 1000 + 1e-6 and abs(centre - x) <= 110
        assert centre - w / 2 >= ends.get(row, -1e9) + 8 - 1e-6
        ends[row] = centre + w / 2
    assert _rows([(100, 40), (200, 40)], 1000) == [(0, 100), (0, 200)]  # room: over markers


def report_from_fixtures():
    """What `pixelcheck analyze --by day` builds: one record per day, with the
    match-key coverage and a gate at a 90% minimum dedup rate."""
    events = []
    for name in ("clean_checkout.jsonl", "id_suffix_checkout.jsonl"):
        for source, request in read_requests(CAPTURES / name):
            for decoded in platforms.decode_request(request, source):
                decoded.seq = len(events)
                events.append(decoded)
    days = defaultdict(list)
    for e in events:
        days[datetime.fromtimestamp(e.arrival_time, timezone.utc).date().isoformat()].append(e)
    records = []
    for day in sorted(days):
        result = match_events(days[day])
        records.append(artifacts.test_record(
            day, "analyzed", result, diagnose(result), {},
            coverage=coverage_rows(match_key_coverage(result)), customer_known=False))
    report = build_report(records)
    reasons = gate_failures(report, min_dedup_rate=0.9, fail_on="error")
    report["gate"] = {"min_dedup_rate": 0.9, "fail_on": "error", "passed": not reasons,
                      "reasons": reasons}
    return report


MARKERS_IN_VIEWBOX = """() => [...document.querySelectorAll('.timeline svg')].map(svg => {
  const vb = svg.viewBox.baseVal, box = svg.getBoundingClientRect();
  const outside = [...svg.querySelectorAll('.event')].filter(m => {
    const b = m.getBBox();
    return b.x < vb.x || b.y < vb.y || b.x + b.width > vb.x + vb.width
        || b.y + b.height > vb.y + vb.height;
  }).length;
  return {width: box.width, height: box.height, markers: svg.querySelectorAll('.event').length,
          outside};
})"""

LABELS_OVERLAP = """() => [...document.querySelectorAll('.timeline svg')].map(svg => {
  const boxes = [...svg.querySelectorAll('text.label')].map(t => t.getBBox());
  let overlaps = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height
        && b.y < a.y + a.height) overlaps++;
  }
  return overlaps;
})"""


LABELS_INSIDE = """() => [...document.querySelectorAll('.timeline')].map(div => {
  const svg = div.querySelector('svg'), width = svg.viewBox.baseVal.width;
  const frame = svg.getBoundingClientRect();
  const labels = [...svg.querySelectorAll('text.label')];
  const outside = labels.filter(t => {
    const b = t.getBBox(), r = t.getBoundingClientRect();
    return b.x < 0 || b.x + b.width > width || r.left < frame.left || r.right > frame.right;
  }).map(t => t.textContent);
  return {labels: labels.length, outside, svg_width: svg.width.baseVal.value, width,
          scrolls: div.scrollWidth > div.clientWidth};
})"""

COVERAGE_COLOURS = """() => Object.fromEntries(
  [...document.querySelectorAll('table.coverage .st')].map(
    s => [s.textContent, getComputedStyle(s).color]))"""


def look_at(path, shot):
    """What a real headless Chromium shows of the report at ``path``, and a screenshot.

    Runs in its own thread: a session that already drives pixelcheck's browser has a
    Playwright event loop on the main thread, and the sync API refuses to nest.
    """
    from playwright.sync_api import sync_playwright

    from pytest_pixelcheck.browser import NO_DNS, chromium_args, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium().executable_path,
                                     args=chromium_args(None, (NO_DNS,)),
                                     headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(path.as_uri())
            page.screenshot(path=str(shot), full_page=True)
            rows = page.locator("#dedup-table tbody tr")
            near_miss = page.locator('.finding[data-code="near-miss-event-id"]')
            gate = page.locator("#summary #gate")
            return {
                "summary": page.locator("#summary").inner_text(),
                "gate": gate.inner_text() if gate.count() else None,
                "gate_visible": gate.count() == 1 and gate.is_visible(),
                "rate_stat": page.locator(".stat", has_text="dedup rate")
                                 .get_attribute("class"),
                "rows": rows.all_inner_texts(),
                "low_rates": page.locator("#dedup-table td.low").all_inner_texts(),
                "amber_rates": page.locator("#dedup-table td.below").all_inner_texts(),
                "coverage_rows": page.locator("#coverage-table tbody tr").all_inner_texts(),
                "coverage_cells": page.locator("#coverage-table td.kc").count(),
                "coverage_colours": page.evaluate(COVERAGE_COLOURS),
                "test_coverage": [t.locator("table.coverage.compact tbody tr").count()
                                  for t in page.locator(".test").all()],
                "index": page.locator("nav .entry").all_inner_texts(),
                "labels": page.evaluate(LABELS_INSIDE),
                "nodeids": [t.get_attribute("data-nodeid") for t in page.locator(".test").all()],
                "pair_links": page.locator(".pair-link").count(),
                "browser_markers": page.locator(".event.browser").count(),
                "server_markers": page.locator(".event.server").count(),
                "flagged_markers": page.locator(".event.flag-error").count(),
                "near_miss": near_miss.all_inner_texts(),
                "near_miss_visible": near_miss.first.is_visible(),
                "svgs": page.evaluate(MARKERS_IN_VIEWBOX),
                "label_overlaps": page.evaluate(LABELS_OVERLAP),
                "scroll_width": page.evaluate("document.documentElement.scrollWidth"),
            }
        finally:
            browser.close()


@pytest.mark.browser
def test_report_in_a_real_browser(tmp_path, record_property):
    report = report_from_fixtures()
    path = write_html(tmp_path / "report.html", report)
    crowded = write_html(tmp_path / "crowded.html", build_report([crowded_record()]))
    shot, crowded_shot = tmp_path / "report.png", tmp_path / "crowded.png"
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(look_at, path, shot).result(timeout=120)
        seen_crowded = pool.submit(look_at, crowded, crowded_shot).result(timeout=120)
    print(f"screenshots: {shot} {crowded_shot}")
    record_property("screenshot", str(shot))

    assert "pytest-pixelcheck report" in seen["summary"]
    # the gate: 94% clears its 90% minimum, the near miss's error finding fails it
    assert report["summary"]["dedup_rate"] == 0.9375 and not report["gate"]["passed"]
    assert seen["gate_visible"] and seen["gate"].startswith("gate FAILED")
    assert "minimum dedup rate 90% (this run: 94%)" in seen["gate"]
    assert "fails on error findings or worse" in seen["gate"]
    assert "1 error found (--pixelcheck-fail-on=error)" in seen["gate"]
    assert seen["rate_stat"] == "stat warn"  # above the minimum: amber, not red
    assert len(seen["rows"]) == len(report["summary"]["by_event"]) == 5
    assert [row.split("\t")[1] for row in seen["rows"]] \
        == [r["event_name"] for r in report["summary"]["by_event"]]
    assert [row.split("\t")[7] for row in seen["rows"]] == ["0"] * 5  # the extra column
    assert len(seen["low_rates"]) == 1 and seen["low_rates"][0].endswith("50%")
    assert seen["amber_rates"] == []
    # match-key coverage: one row per event name, a browser|server pair per key
    assert [row.split("\t")[1] for row in seen["coverage_rows"]] \
        == [r["event_name"] for r in report["summary"]["match_key_coverage"]]
    assert len(seen["coverage_rows"]) == 5 and seen["coverage_cells"] == 5 * len(MATCH_KEYS)
    purchase = seen["coverage_rows"][3].split("\t")
    assert purchase[1] == "Purchase" and purchase[3] == "h|h" and purchase[-2:] == ["-|+", "+|+"]
    colours = seen["coverage_colours"]
    assert colours["+"] == "rgb(21, 128, 61)" and colours["~"] == "rgb(217, 119, 6)"
    assert colours["h"] == "rgb(107, 114, 128)" and colours["."] == "rgb(209, 213, 219)"
    assert seen["test_coverage"] == [5, 5]
    assert seen["index"] == ["2026-11-27analyzed (1 finding)", "2026-11-28analyzed"]
    assert seen["nodeids"] == [t["nodeid"] for t in report["tests"]] and len(seen["nodeids"]) == 2
    assert seen["pair_links"] == sum(len(t["pairs"]) for t in report["tests"]) == 15
    assert seen["browser_markers"] == seen["server_markers"] == 16
    assert len(seen["near_miss"]) == 1 and seen["near_miss_visible"]
    assert "-server" in seen["near_miss"][0]
    assert seen["flagged_markers"] == 2  # both Purchase events of the near miss
    assert len(seen["svgs"]) == 2
    for svg in seen["svgs"]:
        assert svg["width"] > 0 and svg["height"] > 0 and svg["markers"] == 16
        assert svg["outside"] == 0
    assert seen["label_overlaps"] == [0, 0]
    assert seen["scroll_width"] <= 1280  # no horizontal scrolling on a laptop
    # every label ends inside its SVG, and no timeline needs a scrollbar
    for page in (seen, seen_crowded):
        for svg in page["labels"]:
            assert svg["labels"] > 0 and svg["outside"] == [], svg
            assert svg["svg_width"] == svg["width"] and not svg["scrolls"]
    assert seen_crowded["labels"][0]["labels"] == 18
    assert seen_crowded["svgs"][0]["outside"] == 0
    assert seen_crowded["label_overlaps"] == [0]
    assert seen_crowded["scroll_width"] <= 1280


def test_several_platforms_get_a_platform_by_event_matrix():
    from pytest_pixelcheck import Event
    from pytest_pixelcheck.artifacts import test_record as record_of
    from pytest_pixelcheck.report_html import render_html as render

    events = [
        Event("meta", "browser", "1", "Purchase", "p.1", 1.0, 1.0),
        Event("meta", "server", "1", "Purchase", "p.1", 1.0, 1.1),
        Event("tiktok", "browser", "C1", "CompletePayment", "p.1", 1.0, 1.0),
        Event("tiktok", "server", "C1", "CompletePayment", "p.2", 1.0, 1.1),
    ]
    for seq, event in enumerate(events):
        event.seq = seq
    result = match_events(events)
    html = render(build_report([record_of("t::one", "passed", result, [], {})]))
    matrix = html[html.index('id="platform-matrix"'):]
    matrix = matrix[:matrix.index("</table>")]
    assert "<th>meta</th><th>tiktok</th>" in matrix
    assert re.search(r"<td class=l>Purchase</td><td class=\"rate[^\"]*\"[^>]*>100%", matrix)
    assert re.search(r"<td class=l>CompletePayment</td><td class=\"muted\">&nbsp;</td>"
                     r"<td class=\"rate[^\"]*\"[^>]*>0%", matrix)
    # one platform: no matrix
    only_meta = match_events(events[:2])
    assert "platform-matrix" not in render(build_report(
        [record_of("t::two", "passed", only_meta, [], {})]))
