"""A remote browser: a Playwright browser server in its own process (`playwright
launch-server`, as a grid would run it); the test run connects to it instead of launching
Chromium, and its per-test contexts still go through the proxy and trust its CA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import still_running

from pytest_pixelcheck.browser import NO_DNS, BrowserNotFound, find_chromium

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

REMOTE_TESTS = '''
import pytest
from example_site import SiteProcess
from example_site.journey import checkout
from pytest_pixelcheck import assert_deduplicated


@pytest.fixture(scope="module")
def shop(pixelcheck_sink):
    with SiteProcess(pixelcheck_sink.url) as site:
        yield site


def test_checkout_through_the_remote_browser(pixelcheck, pixelcheck_page, pixelcheck_harness,
                                             shop):
    assert pixelcheck_harness.browser().location.how.startswith("remote, ws://")
    checkout(pixelcheck_page, shop.url)
    assert_deduplicated(pixelcheck, "Purchase")
    # the tag's HTTPS hits reached the proxy, which decoded them: trust and proxy work
    hits = [e for e in pixelcheck.browser_events if e.raw.url.startswith("https://")]
    # and no connection refused the proxy's certificate (preconnects included): the
    # browser server was launched trusting the CA (without it, this finding shows)
    assert hits and "proxy-not-trusted" not in {f.code for f in pixelcheck.findings()}
    pixelcheck_page.context.add_cookies([{"name": "left", "value": "over",
                                          "url": shop.url}])


def test_each_test_has_its_own_context(pixelcheck, pixelcheck_context, shop):
    assert pixelcheck_context.cookies() == []
'''


SERVER_TAG = "PIXELCHECK_TEST_BROWSER_SERVER"


def _launch_server(config: Path) -> tuple[subprocess.Popen[str], str]:
    # a group of its own: `python -m playwright` runs the server as a node child, which
    # terminating the Python wrapper alone left running with its Chromium
    process = subprocess.Popen([sys.executable, "-m", "playwright", "launch-server",
                                "--browser", "chromium", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True,
                               env={**os.environ, SERVER_TAG: str(config)})
    deadline = time.monotonic() + 60
    line = ""
    while not line.startswith("ws://") and time.monotonic() < deadline:
        line = process.stdout.readline().strip()
        if not line and process.poll() is not None:
            break
    if not line.startswith("ws://"):
        _stop(process, signal.SIGKILL)
        pytest.fail(f"playwright launch-server did not start: {process.stderr.read()}")
    return process, line


@pytest.mark.browser
def test_a_run_connects_to_a_browser_server(pytester, tmp_path, monkeypatch):
    try:
        chromium = find_chromium()
    except BrowserNotFound as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # the CA exists before the browser server, which is launched trusting it
    subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", "ca", "--export",
                    str(tmp_path / "public"), "--ca-dir", str(tmp_path / "private")],
                   check=True, capture_output=True)
    options = json.loads((tmp_path / "public" / "browser-server.json").read_text())
    assert any(a.startswith("--ignore-certificate-errors-spki-list=") for a in options["args"])
    config = tmp_path / "server.json"
    config.write_text(json.dumps({
        # the server's own default context has no proxy: no DNS lookup from it either
        **options, "args": [*options["args"], NO_DNS], "port": 0, "wsPath": "grid",
        **({"executablePath": chromium.executable_path} if chromium.executable_path else {}),
    }))
    server, endpoint = _launch_server(config)
    try:
        pytester.makepyfile(test_remote=REMOTE_TESTS)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                               f"--pixelcheck-connect={endpoint}",
                                               f"--pixelcheck-ca-dir={tmp_path / 'private'}")
        result.assert_outcomes(passed=2)
        assert server.poll() is None  # the server outlives the run's connection
    finally:
        _stop(server)
    assert _alive(str(config)) == [], "the browser server's processes outlived it"


def _stop(process: subprocess.Popen[str], how: signal.Signals = signal.SIGTERM) -> None:
    try:
        os.killpg(process.pid, how)
    except ProcessLookupError:
        pass
    process.wait(timeout=20)


def _alive(tag: str) -> list[str]:
    """The server's processes (it, its node child, their Chromium) still running."""
    return still_running(SERVER_TAG, tag, 10.0)
