"""The pixelcheck command: demo, record with a script, analyze on recorded captures."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from recorded import FIXTURES

from example_site import SiteProcess

CAPTURES = FIXTURES / "captures"


def pixelcheck(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_analyze_a_clean_capture():
    run = pixelcheck("analyze", CAPTURES / "clean_checkout.jsonl")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "pixelcheck analyze: 16 events from 1 file(s)" in run.stdout
    assert "verdict: PASSED: dedup rate 100%, no findings" in run.stdout


def test_overlapping_files_count_each_event_once():
    run = pixelcheck("analyze", CAPTURES / "clean_checkout.jsonl", CAPTURES / "clean_checkout.har",
                     CAPTURES / "backend_log.jsonl")
    assert run.returncode == 0, run.stdout
    assert "16 events appeared again in a later file" in run.stdout
    assert "verdict: PASSED: dedup rate 100%, no findings" in run.stdout


def test_analyze_a_devtools_style_har_with_backend_log_lines():
    run = pixelcheck("analyze", CAPTURES / "clean_checkout.har", CAPTURES / "backend_log.jsonl")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verdict: PASSED: dedup rate 100%, no findings" in run.stdout
    assert "meta     Purchase                 1      1     1     0      0      0  100%" \
        in run.stdout


def test_analyze_by_day_alerts_below_the_minimum_rate(tmp_path):
    report = tmp_path / "report.json"
    run = pixelcheck("analyze", CAPTURES / "clean_checkout.jsonl",
                     CAPTURES / "id_suffix_checkout.jsonl", "--by", "day",
                     "--min-dedup-rate", "0.9", "--json", report)
    assert run.returncode == 3, run.stdout + run.stderr
    days = [line for line in run.stdout.splitlines() if line.startswith("=== ")]
    assert len(days) == 2
    assert "[near-miss-event-id]" in run.stdout
    assert run.stdout.rstrip().splitlines()[-1].startswith("ALERT: ")
    assert "dedup rate 88% is below 90%" in run.stdout
    assert "day by day:" in run.stdout
    data = json.loads(report.read_text())
    assert data["format"] == "pytest-pixelcheck-report" and data["version"] == 1
    assert [t["nodeid"] for t in data["tests"]] == sorted(d[4:14] for d in days)


def test_analyze_without_alert_exits_1_on_error_findings():
    run = pixelcheck("analyze", CAPTURES / "id_suffix_checkout.jsonl")
    assert run.returncode == 1
    assert "verdict: FAILED: dedup rate 88%, 1 error" in run.stdout


def test_analyze_says_what_is_wrong_with_a_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\nnot json\n')
    run = pixelcheck("analyze", bad)
    assert run.returncode == 2
    assert "bad.jsonl:1: neither a pixelcheck capture line nor a server payload" in run.stderr


def test_analyze_shows_progress_on_large_inputs(tmp_path):
    line = (CAPTURES / "backend_log.jsonl").read_text().splitlines()[0]
    big = tmp_path / "big.jsonl"
    big.write_text((line + "\n") * 1200)
    run = pixelcheck("analyze", big)
    assert "decoding [#########################] 1200/1200" in run.stderr
    assert "pixelcheck analyze: 1200 events" in run.stdout


@pytest.mark.browser
def test_demo_clean_and_with_a_fault():
    clean = pixelcheck("demo")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verdict: PASSED: dedup rate 100%, no findings" in clean.stdout
    assert "started: proxy" in clean.stdout
    broken = pixelcheck("demo", "--fault", "id_suffix")
    assert broken.returncode == 1
    assert "[near-miss-event-id]" in broken.stdout
    unknown = pixelcheck("demo", "--fault", "nonsense")
    assert unknown.returncode == 2 and "unknown fault(s): nonsense" in unknown.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.browser
def test_record_with_a_script(tmp_path):
    sink_port = _free_port()
    script = tmp_path / "drive.py"
    with SiteProcess(f"http://127.0.0.1:{sink_port}") as site:
        script.write_text("from example_site.journey import checkout\n"
                          f"checkout(page, {site.url!r})\n")
        run = pixelcheck("record", f"{site.url}/", "--script", script, "--out",
                         tmp_path / "out", "--sink-port", sink_port)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "= deduplicated Purchase" in run.stdout
    assert "verdict: PASSED: dedup rate 100%" in run.stdout
    lines = (tmp_path / "out" / "capture.jsonl").read_text().splitlines()
    assert len(lines) >= 16
    har = json.loads((tmp_path / "out" / "traffic.har").read_text())
    assert any("facebook.com/tr" in e["request"]["url"] for e in har["log"]["entries"])
    # the written capture analyzes to the same verdict
    again = pixelcheck("analyze", tmp_path / "out" / "capture.jsonl")
    assert again.returncode == 0 and "verdict: PASSED" in again.stdout


def test_analyze_reads_a_backend_log_of_python_sdk_payloads(tmp_path):
    # facebook-business logs data as JSON strings, one per event, as it sends them
    lines = []
    for line in (CAPTURES / "backend_log.jsonl").read_text().splitlines():
        record = json.loads(line)
        record["data"] = [json.dumps(event) for event in record["data"]]
        lines.append(json.dumps(record))
    sdk_log = tmp_path / "sdk_backend.jsonl"
    sdk_log.write_text("\n".join(lines) + "\n")
    run = pixelcheck("analyze", CAPTURES / "clean_checkout.har", sdk_log)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "undecodable" not in run.stdout
    assert "verdict: PASSED: dedup rate 100%, no findings" in run.stdout
