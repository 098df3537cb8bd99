"""`pixelcheck serve` for a backend that is already running, and test runs attaching to it:
the serve process, the backend and the pytest run are three real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from example_site import SiteProcess

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "EAAstagingTESTtoken0123456789"

STAGING_TESTS = '''
import os
from example_site.journey import checkout
from pytest_pixelcheck import assert_deduplicated

def test_checkout(pixelcheck, pixelcheck_page):
    checkout(pixelcheck_page, os.environ["SHOP_URL"])
    assert_deduplicated(pixelcheck, "Purchase")
    server = pixelcheck.server_events
    # the staging backend's calls, captured by the serve process, joined this test
    assert server and {e.raw.channel for e in server} == {"proxy"}
    assert {e.test_id for e in server} == {"test_staging.py::test_checkout"}

def test_no_calls_of_another_test(pixelcheck):
    assert pixelcheck.server_events == []
'''


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", *args],
                          capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """A `pixelcheck serve` process; yields (control URL, the env it printed, process)."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    ports = [str(_free_port()) for _ in range(3)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest_pixelcheck.cli", "serve", "--proxy-port", ports[0],
         "--sink-port", ports[1], "--control-port", ports[2], "--ca-dir",
         str(tmp_path / "ca")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not any(line.strip().startswith("NODE_EXTRA_CA_CERTS=") for line in lines):
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, \
                f"serve did not start: {''.join(lines)}{process.stderr.read()}"
            lines.append(line)
        control = next(line.split()[1] for line in lines if line.strip().startswith("control"))
        env = dict(line.strip().split("=", 1) for line in lines
                   if line.startswith("    ") and "=" in line)
        assert control == f"http://127.0.0.1:{ports[2]}"
        assert env["HTTPS_PROXY"] == f"http://127.0.0.1:{ports[0]}"
        yield control, env, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.browser
def test_an_attached_run_gets_the_calls_of_a_running_backend(serve, pytester, monkeypatch):
    control, env, process = serve
    # the staging backend: started once, before any test run, through the serve's proxy
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN, env=env) as shop:
        monkeypatch.setenv("SHOP_URL", shop.url)
        pytester.makepyfile(test_staging=STAGING_TESTS)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                               f"--pixelcheck-attach={control}")
        result.assert_outcomes(passed=2)
    assert process.poll() is None  # still capturing after the run

    # the CLI fetches one test's capture by its id
    fetched = _cli("attach", control, "--test", "test_staging.py::test_checkout", "--out",
                   str(pytester.path / "staging.jsonl"))
    assert "pixelcheck attach: test test_staging.py::test_checkout:" in fetched.stdout
    lines = [json.loads(line) for line in
             (pytester.path / "staging.jsonl").read_text().splitlines()]
    assert lines and {line["test_id"] for line in lines} == {"test_staging.py::test_checkout"}
    assert any("Purchase" in line["request"].get("body", "") for line in lines)
    assert TOKEN not in (pytester.path / "staging.jsonl").read_text()  # redacted on the wire
    none = _cli("attach", control, "--test", "test_staging.py::test_no_calls_of_another_test")
    assert ": 0 events" in none.stdout

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    assert "pixelcheck serve: stopped after" in process.stdout.read()


def test_attach_to_nothing_says_so(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_x="def test_x(pixelcheck):\n    pass\n")
    url = f"http://127.0.0.1:{_free_port()}"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                           f"--pixelcheck-attach={url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*--pixelcheck-attach: cannot reach pixelcheck serve at "
                                 f"{url}*is it running*"])
    assert "Traceback" not in result.stdout.str()
    fetched = _cli("attach", url, "--test", "x", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert fetched.returncode == 2 and "cannot reach pixelcheck serve" in fetched.stderr
