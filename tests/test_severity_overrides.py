"""Per-code severity overrides (pixelcheck_severity / --pixelcheck-severity / analyze
--severity): parsed strictly, and applied by assertions, the gate and every report."""

from __future__ import annotations

import json

import pytest
from recorded import FIXTURES

from pytest_pixelcheck import CATALOGUE, Finding
from pytest_pixelcheck.cli import main
from pytest_pixelcheck.findings import (
    at_least,
    default_severity,
    effective_severity,
    parse_severity_overrides,
    severity_overrides,
    severity_policy,
)

pytest_plugins = ["pytester"]


# --- the parser -------------------------------------------------------------------------


def test_parser_takes_commas_newlines_spaces_and_ini_lists():
    assert parse_severity_overrides("payload-mismatch=error, server-event-late=info") == {
        "payload-mismatch": "error", "server-event-late": "info"}
    assert parse_severity_overrides("\n  payload-mismatch = ERROR\n\nserver-event-late=info,\n") \
        == {"payload-mismatch": "error", "server-event-late": "info"}
    assert parse_severity_overrides(["payload-mismatch=error", "wrong-pixel=warning"]) == {
        "payload-mismatch": "error", "wrong-pixel": "warning"}
    assert parse_severity_overrides(None) == {} == parse_severity_overrides("  ")


def test_parser_names_the_known_codes_and_severities():
    with pytest.raises(ValueError) as typo:
        parse_severity_overrides("payload-mismatch=error, server-evnt-late=info")
    assert "unknown finding code 'server-evnt-late'" in str(typo.value)
    assert "known codes: " in str(typo.value) and "server-event-late" in str(typo.value)
    with pytest.raises(ValueError, match=r"unknown severity 'fatal' for payload-mismatch; "
                                         r"known severities: error, warning, info"):
        parse_severity_overrides("payload-mismatch=fatal")
    with pytest.raises(ValueError, match=r"'payload-mismatch' is not CODE=SEVERITY"):
        parse_severity_overrides("payload-mismatch")


def test_the_policy_changes_the_effective_severity_and_keeps_the_default():
    finding = Finding("payload-mismatch", "value differs", "send one value")
    assert finding.severity == "warning" and "default_severity" not in finding.to_dict()
    with severity_policy({"payload-mismatch": "error"}):
        assert finding.severity == effective_severity("payload-mismatch") == "error"
        assert default_severity("payload-mismatch") == CATALOGUE["payload-mismatch"][0]
        assert finding.to_dict()["severity"] == "error"
        assert finding.to_dict()["default_severity"] == "warning"
        assert at_least([finding], "error") == [finding]
    assert finding.severity == "warning" and severity_overrides() == {}


# --- in a pytest run --------------------------------------------------------------------

MISMATCH = '''
import time
from pytest_pixelcheck import Event, assert_deduplicated

def event(source, value):
    now = time.time()
    return Event("meta", source, "1234567890", "Purchase", "ORD-1", now, now,
                 custom_data={"value": value, "currency": "EUR"})

def test_value_differs(pixelcheck):
    pixelcheck.store.add([event("browser", 10.0), event("server", 12.5)])
    assert_deduplicated(pixelcheck, "Purchase", timeout=0.2)
'''


def test_a_warning_raised_to_error_fails_assert_deduplicated(pytester):
    pytester.makepyfile(test_mismatch=MISMATCH)
    default = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    default.assert_outcomes(passed=1)

    raised = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           "--pixelcheck-severity=payload-mismatch=error")
    raised.assert_outcomes(failed=1)
    raised.stdout.fnmatch_lines([
        "E   *assert_deduplicated('Purchase') failed: 1 error [[]payload-mismatch]",
        "E   *ERROR [[]payload-mismatch] Purchase id='ORD-1' carries different value*",
    ])
    # the summary says the run counted with changed severities
    raised.stdout.fnmatch_lines(["*severity overrides (pixelcheck_severity): "
                                 "payload-mismatch=error*"])


def test_the_ini_setting_works_too(pytester):
    pytester.makeini("[pytest]\npixelcheck_severity =\n    payload-mismatch=error\n"
                     "    server-event-late=info\n")
    pytester.makepyfile(test_mismatch=MISMATCH)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(failed=1)


def test_an_unknown_code_is_a_usage_error_naming_the_known_ones(pytester):
    pytester.makepyfile(test_mismatch=MISMATCH)
    result = pytester.runpytest_subprocess("--pixelcheck-severity=payload-mismatc=error")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([
        "*--pixelcheck-severity / pixelcheck_severity: unknown finding code "
        "'payload-mismatc'; known codes: *payload-mismatch*"])


LATE = '''
import time
from pytest_pixelcheck import Event

def test_late_server_copy(pixelcheck):
    now = time.time()
    pixelcheck.store.add([
        Event("meta", "browser", "1234567890", "Lead", "L-1", now, now),
        Event("meta", "server", "1234567890", "Lead", "L-1", now, now + 10),
    ])
'''


def test_an_info_override_keeps_a_code_out_of_the_warning_gate(pytester):
    pytester.makepyfile(test_late=LATE)
    gated = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                          "--pixelcheck-fail-on=warning")
    gated.assert_outcomes(passed=1)
    assert gated.ret == pytest.ExitCode.TESTS_FAILED
    gated.stdout.fnmatch_lines(["pixelcheck gate FAILED: 1 warning found "
                                "(--pixelcheck-fail-on=warning)"])

    relaxed = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pixelcheck-fail-on=warning",
        "--pixelcheck-severity=server-event-late=info",
        "--pixelcheck-report=report.json", "--pixelcheck-html=report.html")
    relaxed.assert_outcomes(passed=1)
    assert relaxed.ret == pytest.ExitCode.OK
    assert "gate FAILED" not in relaxed.stdout.str()
    # the JSON and HTML reports show the effective severity, and the default
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["summary"]["findings_by_severity"] == {"info": 1}
    assert report["summary"]["severity_overrides"] == {"server-event-late": "info"}
    [finding] = report["tests"][0]["findings"]
    assert (finding["code"], finding["severity"], finding["default_severity"]) == \
        ("server-event-late", "info", "warning")
    assert report["gate"]["passed"] is True
    html = (pytester.path / "report.html").read_text()
    assert 'title="default severity: warning (pixelcheck_severity)">info*' in html
    assert "severity overrides (pixelcheck_severity): server-event-late=info" in html


# --- pixelcheck analyze --severity ------------------------------------------------------


def test_analyze_applies_severity_overrides(tmp_path, capsys):
    capture = FIXTURES / "captures" / "id_suffix_checkout.jsonl"
    assert main(["analyze", str(capture)]) == 1  # near-miss-event-id is an error
    capsys.readouterr()

    report = tmp_path / "report.json"
    code = main(["analyze", str(capture), "--severity", "near-miss-event-id=warning",
                 "--json", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "WARNING [near-miss-event-id]" in out
    assert "verdict: PASSED: dedup rate 88%, 1 warning" in out
    data = json.loads(report.read_text())
    assert data["summary"]["severity_overrides"] == {"near-miss-event-id": "warning"}
    assert data["summary"]["findings_by_severity"] == {"warning": 1}
    # the overrides end with the command
    assert severity_overrides() == {}


def test_analyze_rejects_an_unknown_severity(capsys):
    capture = FIXTURES / "captures" / "id_suffix_checkout.jsonl"
    assert main(["analyze", str(capture), "--severity", "near-miss-event-id=fatal"]) == 2
    assert "--severity: unknown severity 'fatal' for near-miss-event-id; known severities: " \
        "error, warning, info" in capsys.readouterr().err
