"""Reports for CI: shards merged into the figures of one run, JUnit XML properties and
messages, the GitHub job summary. Every run is a real pytest or pixelcheck subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_session_reports import TESTS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
GATE = ("--pixelcheck-min-dedup-rate=0.9", "--pixelcheck-fail-on=error")


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    # the subprocesses import this checkout's plugin and command, wherever they run
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def _pytest(pytester, *args):
    pytester.makepyfile(test_session=TESTS)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def _pixelcheck(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", *args], cwd=cwd,
                          capture_output=True, text=True)


def _section(out: str) -> list[str]:
    """The lines of pytest's pixelcheck section (the session summary)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if "= pixelcheck =" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("="))
    return lines[start:end]


def _without_time(text: str, report: dict) -> str:
    return text.replace(report["generated_at"], "<time>")


def test_two_shards_merged_give_the_figures_of_one_run(pytester):
    whole = _pytest(pytester, "--pixelcheck-report=whole.json", "--pixelcheck-html=whole.html",
                    *GATE)
    shards = [_pytest(pytester, f"--pixelcheck-shard={k}/2", f"--pixelcheck-report=shard-{k}.json")
              for k in (1, 2)]
    path = pytester.path
    reports = [json.loads((path / f"shard-{k}.json").read_text()) for k in (1, 2)]
    ids = [{t["nodeid"] for t in r["tests"]} for r in reports]
    assert ids[0] and ids[1] and not ids[0] & ids[1]  # a real split: no overlap
    assert sum(r["summary"]["tests"] for r in reports) == 6
    assert all(s.ret in (0, 1) for s in shards)

    merged = _pixelcheck(path, "merge", "shard-1.json", "shard-2.json", "--min-dedup-rate",
                         "0.9", "--fail-on", "error", "--json", "merged.json", "--html",
                         "merged.html")
    assert whole.ret == merged.returncode == 1, merged.stderr
    one = json.loads((path / "whole.json").read_text())
    both = json.loads((path / "merged.json").read_text())
    assert both["gate"]["passed"] is False
    assert {**one, "generated_at": None} == {**both, "generated_at": None}
    assert _without_time((path / "whole.html").read_text(), one) == \
        _without_time((path / "merged.html").read_text(), both)
    # the same summary lines and the same gate verdict, word for word
    summary = _section(whole.stdout.str())
    assert summary and "\n".join(summary) in merged.stdout
    gate = whole.stdout.str().rstrip().splitlines()[-1]
    assert gate.startswith("pixelcheck gate FAILED: dedup rate 83.3%")
    assert merged.stdout.rstrip().splitlines()[-1] == gate


def test_merge_refuses_overlapping_shards_and_other_files(pytester):
    _pytest(pytester, "--pixelcheck-report=whole.json")
    _pytest(pytester, "--pixelcheck-shard=1/2", "--pixelcheck-report=shard-1.json")
    overlap = _pixelcheck(pytester.path, "merge", "whole.json", "shard-1.json")
    assert overlap.returncode == 2
    assert "the same test is in more than one report" in overlap.stderr
    assert "(whole.json and shard-1.json)" in overlap.stderr
    (pytester.path / "other.json").write_text('{"log": {}}')
    other = _pixelcheck(pytester.path, "merge", "whole.json", "other.json")
    assert other.returncode == 2
    assert "other.json: not a pixelcheck session report" in other.stderr
    bad = _pytest(pytester, "--pixelcheck-shard=3/2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--pixelcheck-shard=3/2: K/N with 1 <= K <= N*"])


@pytest.mark.parametrize("workers", [None, "2"])
def test_junit_xml_carries_rates_codes_artifacts_and_the_verdict_line(pytester, workers):
    if workers:
        pytest.importorskip("xdist")
    result = _pytest(pytester, "--junitxml=junit.xml", *(("-n", workers) if workers else ()))
    assert result.ret == 1
    cases = {case.get("name"): case
             for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")}

    def properties(name):
        return {p.get("name"): p.get("value") for p in cases[name].iter("property")}

    assert properties("test_clean_purchase[0]") == {"pixelcheck_dedup_rate": "1",
                                                    "pixelcheck_findings": "-"}
    broken = properties("test_broken_purchase")
    assert broken["pixelcheck_dedup_rate"] == "0"
    assert broken["pixelcheck_findings"] == "near-miss-event-id"
    assert (pytester.path / broken["pixelcheck_events"]).is_file()
    assert broken["pixelcheck_har"].endswith("test_broken_purchase/traffic.har")
    assert properties("test_late_lead")["pixelcheck_findings"] == "server-event-late"
    failure = cases["test_broken_purchase"].find("failure")
    message, text = failure.get("message"), failure.text
    # the verdict's first line; the whole verdict (events table, findings) in the text
    assert "\n" not in message and message.startswith("assert_deduplicated")
    assert message in text and "near-miss-event-id" in text and "fix:" in text


def test_github_summary_is_the_session_table_in_markdown(pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step-summary.md"))
    (pytester.path / "step-summary.md").write_text("earlier step\n")
    _pytest(pytester, "--pixelcheck-min-dedup-rate=0.95")
    markdown = (pytester.path / "step-summary.md").read_text()
    assert markdown.startswith("earlier step\n## pixelcheck\n")  # appended, as GitHub wants
    assert "**gate FAILED**: dedup rate 83.3% is below the minimum 95.0%" in markdown
    assert "| meta | Purchase | 5 | 5 | 4 | 0 | 1 | 1 | 80% |" in markdown
    assert "| `near-miss-event-id` | 1 |" in markdown
    assert "failed: `test_session.py::test_broken_purchase`" in markdown
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    _pytest(pytester, "--pixelcheck-github-summary=own.md", "-k", "clean")
    own = (pytester.path / "own.md").read_text()
    assert "dedup rate **100.0%** over 4 test(s)" in own and "gate" not in own
