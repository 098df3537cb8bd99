"""Every registered platform's recorded samples (``platforms/<name>/samples/*.json``)
through the whole pipeline: decode -> match -> diagnose -> report. A new platform
folder is covered as soon as it has samples."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_pixelcheck import platforms
from pytest_pixelcheck.artifacts import build_report
from pytest_pixelcheck.artifacts import test_record as record_of
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.events import CapturedRequest, EventStore
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.pii import check_pii, coverage_rows, match_key_coverage
from pytest_pixelcheck.report import test_report as report_of
from pytest_pixelcheck.wire import host_of, path_of


def _samples() -> list[tuple[str, Path]]:
    found = []
    for platform in platforms.all_platforms():
        folder = platform.samples_dir
        if folder is not None and folder.is_dir():
            found += [(platform.name, path) for path in sorted(folder.glob("*.json"))]
    return found


SAMPLES = _samples()


def _request(sample: dict) -> CapturedRequest:
    raw = sample["request"]
    headers = raw.get("headers", [])
    headers = list(headers.items()) if isinstance(headers, dict) else headers
    body = raw.get("body", "")
    body = body if isinstance(body, str) else json.dumps(body)
    # the recording's own arrival time, when it has one: event ages are judged from it
    return CapturedRequest(raw.get("method", "GET"), raw["url"], [tuple(h) for h in headers],
                           body.encode("utf-8"), float(raw.get("arrival_time") or time.time()),
                           "proxy")


def test_every_platform_the_product_names_has_samples():
    names = {name for name, _ in SAMPLES}
    assert {"meta", "tiktok", "ga4"} <= names, names


@pytest.mark.parametrize(("name", "path"), SAMPLES,
                         ids=[f"{n}/{p.stem}" for n, p in SAMPLES])
def test_each_sample_decodes_to_what_was_recorded(name, path):
    sample = json.loads(path.read_text())
    request = _request(sample)
    platform = platforms.get(name)
    host, url_path = host_of(request.url), path_of(request.url)
    if sample["kind"] == "browser":
        assert platform.is_collection(host, url_path), request.url
        events = platform.decode_browser(request)
    else:
        assert platform.is_server_api(host, url_path), request.url
        answer = platform.handle_server(request)
        events = answer.events
        if sample["expect"].get("status") is not None:
            assert answer.status == sample["expect"]["status"], answer.body
    expected = sample["expect"]["events"]
    got = [{key: getattr(e, key) for key in ("event_name", "event_id", "pixel_id")}
           for e in events]
    assert got == [{key: e.get(key) for key in ("event_name", "event_id", "pixel_id")}
                   for e in expected], [e.error for e in events]
    assert all(e.platform == name for e in events)
    assert all(e.source == sample["kind"] for e in events)


@pytest.mark.parametrize("name", sorted({n for n, _ in SAMPLES}))
def test_a_platforms_samples_run_through_match_diagnose_and_report(name):
    store = EventStore()
    for platform_name, path in SAMPLES:
        if platform_name != name:
            continue
        sample = json.loads(path.read_text())
        request = _request(sample)
        platform = platforms.get(name)
        events = (platform.decode_browser(request) if sample["kind"] == "browser"
                  else platform.handle_server(request).events)
        store.add(events)
    result = match_events(store.since(0))
    findings = diagnose(result) + check_pii(result)
    text = report_of(result, findings)
    assert text and result.events
    coverage = match_key_coverage(result)
    record = record_of(f"conformance::{name}", "passed", result, findings, {},
                         coverage_rows(coverage), False)
    report = build_report([record])
    json.dumps(report)  # plain data all the way down
    for finding in findings:
        assert finding.fix and finding.message
    # recorded tokens were replaced before they were stored; none shows anyway
    assert "EAAtesttoken123" not in text and "EAAtesttoken123" not in json.dumps(report)
