"""Negative tests: ``@pytest.mark.pixelcheck_expect`` and ``expect_findings`` pass when
exactly the expected codes are found, fail with the usual report otherwise, and are
set aside from the session's dedup rate, findings and gate."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from pytest_pixelcheck import Event, EventStore, Pixelcheck, PixelcheckAssertionError
from pytest_pixelcheck import expect_findings as expect_findings_export
from pytest_pixelcheck.assertions import expect_findings

pytest_plugins = ["pytester"]

HELPERS = '''
import time
import pytest
from pytest_pixelcheck import Event, PixelcheckAssertionError, assert_deduplicated, \\
    expect_findings

def event(source, name, eid, delay=0.0):
    now = time.time()
    return Event("meta", source, "1234567890", name, eid, now, now + delay)
'''

MARKED = HELPERS + '''
@pytest.mark.pixelcheck_expect("near-miss-event-id")
def test_near_miss_is_caught(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-1"),
                          event("server", "Purchase", "ORD-1-server")])

def test_clean(pixelcheck):
    pixelcheck.store.add([event("browser", "Lead", "L-1"), event("server", "Lead", "L-1")])
    assert_deduplicated(pixelcheck)
'''


def test_a_marked_near_miss_passes_and_is_set_aside_from_the_gate(pytester):
    pytester.makepyfile(test_neg=MARKED)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pixelcheck-min-dedup-rate=1.0",
        "--pixelcheck-fail-on=error", "--pixelcheck-report=report.json",
        "--pixelcheck-html=report.html")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    out = result.stdout.str()
    assert "gate FAILED" not in out
    result.stdout.fnmatch_lines([
        "*total: 1 browser, 1 server, 1 deduplicated, dedup rate 100.0% over 1 test(s)",
        "*1 test set aside as expected-failure tests (pixelcheck_expect /",
        "*expect_findings): not counted in the rates, findings or gate",
    ])
    assert "findings: near-miss-event-id" not in out
    report = json.loads((pytester.path / "report.json").read_text())
    summary = report["summary"]
    assert (summary["tests"], summary["set_aside"], summary["dedup_rate"]) == (2, 1, 1.0)
    assert summary["set_aside_tests"] == ["test_neg.py::test_near_miss_is_caught"]
    assert summary["findings_by_code"] == {} and summary["findings_by_severity"] == {}
    # the test itself stays in the report, findings and all, marked as set aside
    negative = next(t for t in report["tests"] if t["nodeid"].endswith("caught"))
    assert negative["expected_failure"] is True
    assert negative["expected_codes"] == ["near-miss-event-id"]
    assert [f["code"] for f in negative["findings"]] == ["near-miss-event-id"]
    html = (pytester.path / "report.html").read_text()
    assert "1 test set aside as expected-failure tests" in html
    assert 'class="badge set-aside"' in html


MARKED_UNMET = HELPERS + '''
@pytest.mark.pixelcheck_expect("near-miss-event-id", timeout=0.2)
def test_expects_a_near_miss_that_does_not_happen(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-2"),
                          event("server", "Purchase", "ORD-2")])

@pytest.mark.pixelcheck_expect("near-miss-event-id", timeout=0.2)
def test_expects_a_near_miss_and_gets_more(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-3"),
                          event("server", "Purchase", "ORD-3-server"),
                          event("browser", "Lead", "L-3")])

@pytest.mark.pixelcheck_expect("near-miss-evnt-id")
def test_misspelt(pixelcheck):
    pass

@pytest.mark.pixelcheck_expect("near-miss-event-id")
def test_without_the_fixture():
    pass
'''


def test_a_marked_test_fails_clearly_when_its_expectation_is_unmet(pytester):
    pytester.makepyfile(test_neg=MARKED_UNMET)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pixelcheck-fail-on=error")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines([
        "*_ test_expects_a_near_miss_that_does_not_happen _*",
        "pixelcheck_expect('near-miss-event-id') failed: expected near-miss-event-id not "
        "found",
        "  within 0.2s the test's events showed no near-miss-event-id finding:",
        "  the fault this negative test injects did not happen",
        "events captured in this test:",
        "= Purchase *ORD-2 * ORD-2 *",
    ])
    result.stdout.fnmatch_lines([
        "*_ test_expects_a_near_miss_and_gets_more _*",
        "pixelcheck_expect('near-miss-event-id') failed: unexpected 1 error "
        "[[]server-event-missing]",
        "unexpected findings (1 error):",
        "  ERROR [[]server-event-missing] *Lead*",
        "other findings (1 error):",
        "  ERROR [[]near-miss-event-id] Purchase*",
        "events captured in this test:",
    ])
    result.stdout.fnmatch_lines([
        "*pixelcheck_expect: unknown finding code(s) 'near-miss-evnt-id'; known codes: *",
        "*@pytest.mark.pixelcheck_expect needs the pixelcheck fixture*",
    ])
    out = result.stdout.str()
    # the message is the test's failure, said once, without a traceback through hooks
    # (the short summary repeats it: in full where CI is set, cut to the width elsewhere)
    failures = out.split("short test summary info")[0]
    assert failures.count("pixelcheck_expect('near-miss-event-id') failed: expected") == 1
    assert "pytest_pixelcheck/plugin.py" not in out
    # failed or not, a negative test is set aside: the gate has nothing to count
    assert "2 tests set aside as expected-failure tests" in out
    assert "gate FAILED" not in out


HELPER = HELPERS + '''
def test_helper_passes(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-4"),
                          event("server", "Purchase", "ORD-4-server")])
    [finding] = expect_findings(pixelcheck, "near-miss-event-id", timeout=0.2)
    assert finding.code == "near-miss-event-id"

def test_helper_fails(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-5"),
                          event("server", "Purchase", "ORD-5")])
    expect_findings(pixelcheck, "near-miss-event-id", timeout=0.2)

def test_helper_ignores_unlisted_info(pixelcheck):
    # a late server copy is a warning; moved to info it need not be listed
    pixelcheck.store.add([event("browser", "Purchase", "ORD-6"),
                          event("server", "Purchase", "ORD-6-server", delay=9),
                          event("browser", "Lead", "L-6"),
                          event("server", "Lead", "L-6", delay=9)])
    expect_findings(pixelcheck, "near-miss-event-id", timeout=0.2)

def test_caught_assertion(pixelcheck):
    pixelcheck.store.add([event("browser", "Lead", "L-7"), event("server", "Lead", "L-7x")])
    with pytest.raises(PixelcheckAssertionError):
        assert_deduplicated(pixelcheck, timeout=0.1)
'''


def test_the_helper_both_ways_and_the_pytest_raises_hint(pytester):
    pytester.makepyfile(test_helper=HELPER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v",
                                           "--pixelcheck-severity=server-event-late=info")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        ">*expect_findings(pixelcheck, \"near-miss-event-id\", timeout=0.2)",
        "E   *expect_findings('near-miss-event-id') failed: expected near-miss-event-id not "
        "found",
        "test_helper.py:*: PixelcheckAssertionError",
    ])
    out = result.stdout.str()
    assert "pytest_pixelcheck/assertions.py" not in out
    # the helper's three tests are set aside; the test that caught a failing assertion is
    # not, and the summary says how to set it aside
    result.stdout.fnmatch_lines([
        "*3 tests set aside as expected-failure tests*",
        "*1 passed test caught a failed pixelcheck assertion (pytest.raises?) and still",
        "*counts in the rates, findings and gate: mark negative tests",
        "*@pytest.mark.pixelcheck_expect(CODE, ...) or use expect_findings() to set",
        "*them aside (test_helper.py::test_caught_assertion)",
        "*passed*test_helper_passes*set aside, expects near-miss-event-id",
    ])


def test_expect_findings_is_exported():
    assert expect_findings_export is expect_findings


def _capture(*events: Event, timeout: float = 0.2) -> Pixelcheck:
    store = EventStore()
    capture = Pixelcheck(store, default_timeout=timeout)
    store.add(events)
    return capture


def _event(source: str, eid: str, arrival: float | None = None) -> Event:
    now = time.time()
    return Event("meta", source, "1", "Purchase", eid, now, arrival or now)


def test_an_expected_absence_waits_the_whole_timeout():
    capture = _capture(_event("browser", "ORD-8"))
    started = time.monotonic()
    [finding] = expect_findings(capture, "server-event-missing", timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert finding.code == "server-event-missing"
    assert capture.expected_codes == ["server-event-missing"]


def test_a_found_expectation_returns_without_waiting_out_the_timeout():
    capture = _capture(_event("browser", "ORD-9"), _event("server", "ORD-9-server"))
    started = time.monotonic()
    expect_findings(capture, "near-miss-event-id", timeout=5)
    assert time.monotonic() - started < 2


def test_unknown_or_no_codes_are_a_usage_mistake():
    capture = _capture(_event("browser", "ORD-10"))
    with pytest.raises(ValueError, match="unknown finding code.*'near-miss'.*known codes"):
        expect_findings(capture, "near-miss")
    with pytest.raises(ValueError, match="needs one or more finding codes"):
        expect_findings(capture)
    with pytest.raises(PixelcheckAssertionError, match="expected payload-mismatch not found"):
        expect_findings(capture, "payload-mismatch", timeout=0.05)


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="needs pytest-xdist")
def test_set_aside_under_xdist(pytester):
    pytester.makepyfile(test_neg=MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                           "--pixelcheck-min-dedup-rate=1.0")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*1 test set aside as expected-failure tests*"])
