"""The HTML report: escaping and structure on a synthetic report, then the real
thing rendered from the recorded captures in a headless Chromium."""

from __future__ import annotations

import re
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from recorded import FIXTURES

from pytest_pixelcheck import artifacts, platforms
from pytest_pixelcheck.artifacts import build_report, read_requests
from pytest_pixelcheck.findings import diagnose
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.report_html import render_html, write_html

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


def report_from_fixtures():
    """What `pixelcheck analyze --by day` builds: one record per day."""
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
        records.append(artifacts.test_record(day, "analyzed", result, diagnose(result), {}))
    return build_report(records)


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


def look_at(path, shot):
    """What a real headless Chromium shows of the report at ``path``, and a screenshot.

    Runs in its own thread: a session that already drives pixelcheck's browser has a
    Playwright event loop on the main thread, and the sync API refuses to nest.
    """
    from playwright.sync_api import sync_playwright

    from pytest_pixelcheck.browser import chromium_args, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium().executable_path,
                                     args=chromium_args(None), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(path.as_uri())
            page.screenshot(path=str(shot), full_page=True)
            rows = page.locator("#dedup-table tbody tr")
            near_miss = page.locator('.finding[data-code="near-miss-event-id"]')
            return {
                "summary": page.locator("#summary").inner_text(),
                "rows": rows.all_inner_texts(),
                "low_rates": page.locator("#dedup-table td.low").all_inner_texts(),
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
    shot = tmp_path / "report.png"
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(look_at, path, shot).result(timeout=120)
    print(f"screenshot: {shot}")
    record_property("screenshot", str(shot))

    assert "pytest-pixelcheck report" in seen["summary"]
    assert len(seen["rows"]) == len(report["summary"]["by_event"]) == 5
    assert [row.split("\t")[1] for row in seen["rows"]] \
        == [r["event_name"] for r in report["summary"]["by_event"]]
    assert len(seen["low_rates"]) == 1 and seen["low_rates"][0].endswith("50%")
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
