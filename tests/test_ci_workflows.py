"""The example CI workflows in docs/ci run: their commands, read from the YAML, run here
against a small suite as the CI would run them (matrix values and CI variables filled
in, the network-bound install steps left out), with `python` and `pixelcheck` being
this checkout's."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_session_reports import TESTS

ROOT = Path(__file__).resolve().parent.parent
CI_DOCS = ROOT / "docs" / "ci"

CLEAN_TESTS = '''
from pytest_pixelcheck import Event, assert_deduplicated

def test_purchase(pixelcheck):
    pixelcheck.store.add([Event("meta", side, "42", "Purchase", "p1", 1.79e9, 1.79e9)
                          for side in ("browser", "server")])
    assert_deduplicated(pixelcheck, "Purchase")

def test_lead(pixelcheck):
    pixelcheck.store.add([Event("meta", side, "42", "Lead", "l1", 1.79e9, 1.79e9)
                          for side in ("browser", "server")])
    assert_deduplicated(pixelcheck, "Lead")
'''


def _load(name: str) -> dict:
    from ruamel.yaml import YAML  # comes with mitmproxy

    return YAML(typ="safe").load((CI_DOCS / name).read_text())


def _workspace(tmp_path: Path, suite: str) -> dict[str, str]:
    """A checkout with ``suite`` as its tests, and the env whose PATH has this
    checkout's python and pixelcheck commands first."""
    (tmp_path / "test_suite.py").write_text(suite)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, command in (("python", ""), ("pixelcheck", " -m pytest_pixelcheck.cli")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}"{command} "$@"\n')
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "CI_", "PYTEST_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    return env


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert "${{" not in command, f"an expression was left unfilled: {command}"
    return subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_github_actions_workflow_shards_and_gates(tmp_path):
    workflow = _load("github-actions.yml")
    env = _workspace(tmp_path, TESTS)
    env["GITHUB_STEP_SUMMARY"] = str(tmp_path / "summary.md")
    jobs = workflow["jobs"]
    shards = jobs["shard"]["strategy"]["matrix"]["shard"]
    assert shards == [1, 2]
    ran: list[subprocess.CompletedProcess[str]] = []
    for shard in shards:
        for step in jobs["shard"]["steps"]:
            if "run" in step and not step.get("name", "").startswith("Install"):
                command = re.sub(r"\$\{\{\s*matrix\.shard\s*\}\}", str(shard), step["run"])
                ran.append(_run(command, tmp_path, env))
    # the shard with the broken test fails, the other passes
    assert sorted(r.returncode for r in ran) == [0, 1]
    assert (tmp_path / "shard-1.json").is_file() and (tmp_path / "junit-2.xml").is_file()
    assert jobs["gate"]["needs"] == "shard"
    gate = [_run(step["run"], tmp_path, env) for step in jobs["gate"]["steps"]
            if "run" in step and not step.get("name", "").startswith("Install")]
    assert len(gate) == 1
    assert gate[0].returncode == 1, gate[0].stderr
    assert gate[0].stdout.rstrip().splitlines()[-1].startswith(
        "pixelcheck gate FAILED: dedup rate 83.3% is below the minimum 95.0%")
    assert (tmp_path / "pixelcheck.html").is_file()
    # two shards' tables and the merged one with the verdict, in the job summary
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("## pixelcheck") == 3 and summary.count("**gate FAILED**") == 1


def test_gitlab_ci_parallel_jobs_and_gate(tmp_path):
    pipeline = _load("gitlab-ci.yml")
    env = _workspace(tmp_path, CLEAN_TESTS)
    job, gate_job = pipeline["pixelcheck"], pipeline["pixelcheck-gate"]
    total = job["parallel"]
    for index in range(1, total + 1):
        node_env = {**env, "CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(total)}
        for command in job["script"]:
            result = _run(command, tmp_path, node_env)
            assert result.returncode == 0, result.stdout + result.stderr
            result_line = result.stdout.rstrip().splitlines()[-1]
            assert "1 passed" in result_line and "1 deselected" in result_line
    for command in gate_job["script"]:
        result = _run(command, tmp_path, env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 test(s) from 2 report(s)" in result.stdout
        assert "dedup rate 100.0% over 2 test(s)" in result.stdout
    assert all((tmp_path / p).is_file() for p in gate_job["artifacts"]["paths"])


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_workflows_install_only_in_the_steps_the_test_leaves_out(name):
    """Every command the tests above skip is an install: nothing else goes untested."""
    data = _load(name)
    skipped: list[str] = []
    if "jobs" in data:
        skipped = [step["run"] for job in data["jobs"].values() for step in job["steps"]
                   if "run" in step and step.get("name", "").startswith("Install")]
    else:
        skipped = [line for job in data.values() if isinstance(job, dict)
                   for line in job.get("before_script", [])]
    assert skipped
    for command in skipped:
        for line in command.strip().splitlines():
            assert re.match(r"python -m (pip|playwright) install ", line), line
