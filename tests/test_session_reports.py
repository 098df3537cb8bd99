"""Session-level behaviour seen from a user's run (pytester, in subprocesses):
terminal summary, JSON report, artifacts on failure, the gate, xdist parity."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import pytest
from pytest_pixelcheck import Event, assert_deduplicated

T0 = 1_790_000_000.0

def add(pixelcheck, *events):
    pixelcheck.store.add([Event("meta", source, "42", name, eid, T0 + at, T0 + at,
                                custom_data={"value": 5})
                          for source, name, eid, at in events])

@pytest.mark.parametrize("n", range(4))
def test_clean_purchase(pixelcheck, n):
    add(pixelcheck, ("browser", "Purchase", f"p{n}", 0), ("server", "Purchase", f"p{n}", 0.1))
    assert_deduplicated(pixelcheck, "Purchase")

def test_broken_purchase(pixelcheck):
    add(pixelcheck, ("browser", "Purchase", "b1", 0), ("server", "Purchase", "b1-server", 0.1))
    assert_deduplicated(pixelcheck, "Purchase", timeout=0.1)

def test_late_lead(pixelcheck):
    add(pixelcheck, ("browser", "Lead", "l1", 0), ("server", "Lead", "l1", 4.0))
    assert_deduplicated(pixelcheck, "Lead")
'''


def _run(pytester, *args):
    pytester.makepyfile(test_session=TESTS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_summary_report_artifacts_and_gate(pytester):
    result = _run(pytester, "--pixelcheck-report=out/report.json",
                  "--pixelcheck-min-dedup-rate=0.95", "-v")
    result.assert_outcomes(passed=5, failed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*- pixelcheck -*",
        "*meta     Purchase                 5      5     4     0      1      1   80%",
        "*total: 6 browser, 6 server, 5 deduplicated, dedup rate 83.3% over 6 test(s)",
        "*findings: near-miss-event-id x1, server-event-late x1",
        "*failed  test_session.py::test_broken_purchase: 2 events, 0 pairs; "
        "near-miss-event-id",
    ])
    # the gate's verdict is the run's last line, and the exit code says failed
    last = out.rstrip().splitlines()[-1]
    assert last == ("pixelcheck gate FAILED: dedup rate 83.3% is below the minimum 95.0% "
                    "(below it: Purchase 80%)")
    assert result.ret == 1
    # artifacts of the failed test are named in its failure output
    result.stdout.fnmatch_lines(["*captured events: pixelcheck-artifacts/"
                                 "test_session.py_test_broken_purchase/events.jsonl",
                                 "*proxy traffic (HAR): pixelcheck-artifacts/*/traffic.har"])
    folder = pytester.path / "pixelcheck-artifacts" / "test_session.py_test_broken_purchase"
    assert (folder / "events.jsonl").exists()  # fabricated events carry no request bytes
    assert json.loads((folder / "traffic.har").read_text())["log"]["version"] == "1.2"
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["format"] == "pytest-pixelcheck-report" and report["version"] == 1
    assert report["summary"]["tests"] == 6
    broken = next(t for t in report["tests"] if t["nodeid"].endswith("test_broken_purchase"))
    assert broken["outcome"] == "failed"
    assert [f["code"] for f in broken["findings"]] == ["near-miss-event-id"]
    assert report["gate"] == {"min_dedup_rate": 0.95, "fail_on": None, "passed": False,
                              "reasons": [last.removeprefix("pixelcheck gate FAILED: ")]}
    assert broken["findings"][0]["events"] == [0, 1]


def test_gate_passes_and_fail_on_warning(pytester):
    passing = _run(pytester, "--pixelcheck-min-dedup-rate=0.5", "-k", "not broken")
    assert passing.ret == 0
    assert "pixelcheck gate FAILED" not in passing.stdout.str()
    strict = _run(pytester, "--pixelcheck-fail-on=warning", "-k", "late")
    assert strict.ret == 1  # the test itself now fails on its warning, and the gate says why
    assert strict.stdout.str().rstrip().splitlines()[-1] == (
        "pixelcheck gate FAILED: 1 warning found (--pixelcheck-fail-on=warning)")


def test_html_report_and_pixel_allowlist_flags(pytester):
    result = _run(pytester, "--pixelcheck-html=out/report.html",
                  "--pixelcheck-allowed-pixels=7,8", "-k", "clean")
    # a stray pixel's Purchase is an error in assert_deduplicated's scope
    result.assert_outcomes(failed=4)
    html = (pytester.path / "out" / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and 'id="dedup-table"' in html
    result.stdout.fnmatch_lines(["*findings: unexpected-pixel x4*"])


def test_ini_keys_work_like_the_flags(pytester):
    pytester.makeini("[pytest]\npixelcheck_min_dedup_rate = 0.99\n"
                     "pixelcheck_report = r.json\n")
    result = _run(pytester, "-k", "clean or late")
    assert result.ret == 0  # all merged: rate 100%
    assert json.loads((pytester.path / "r.json").read_text())["summary"]["dedup_rate"] == 1.0


def test_xdist_report_matches_a_serial_run(pytester):
    pytest.importorskip("xdist")
    serial = _run(pytester, "--pixelcheck-report=serial.json")
    parallel = _run(pytester, "-n", "2", "--pixelcheck-report=parallel.json")
    assert serial.ret == parallel.ret == 1

    def content(name):
        data = json.loads((pytester.path / name).read_text())
        data.pop("generated_at")
        return data

    assert content("serial.json") == content("parallel.json")
    # one summary, printed by the controller
    assert parallel.stdout.str().count("- pixelcheck -") == 1
    parallel.stdout.fnmatch_lines(["*meta     Purchase                 5      5     4     0"
                                   "      1      1   80%"])
