"""Backends that are not the test run's child: fixed ports, another listen host, the
exported CA, and the refusals that keep an open port from becoming an open relay.

Each run is a real pytest subprocess (pytester); the backend is the example shop in its
own process on 127.0.0.2, the stand-in for a container or staging host: it reaches the
proxy and sink only at the address they listen on.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "EAAremoteTESTtoken0123456789"


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch):
    # the pytest subprocesses import this checkout's plugin, wherever they run
    monkeypatch.setenv("PYTHONPATH", str(ROOT))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _second_loopback_works() -> bool:
    try:
        with socket.socket() as probe:
            probe.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


USES_HARNESS = """
def test_uses_the_harness(pixelcheck):
    pass
"""


@pytest.mark.parametrize("which", ["sink", "proxy"])
def test_a_taken_fixed_port_fails_with_a_message_naming_it(pytester, which):
    pytester.makepyfile(test_ports=USES_HARNESS)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                               f"--pixelcheck-{which}-port={port}")
    assert result.ret != 0
    out = result.stdout.str()
    assert f"the {which}'s port {port} on 127.0.0.1 is taken" in out
    assert f"--pixelcheck-{which}-port" in out
    assert "Traceback" not in out + result.stderr.str()


def test_fixed_ports_are_the_ones_listened_on(pytester):
    proxy_port, sink_port = _free_port(), _free_port()
    pytester.makeini(f"[pytest]\npixelcheck_proxy_port = {proxy_port}\n"
                     f"pixelcheck_sink_port = {sink_port}\n")
    pytester.makepyfile(test_ports=f"""
def test_ports(pixelcheck_harness):
    assert pixelcheck_harness.proxy.url == "http://127.0.0.1:{proxy_port}"
    assert pixelcheck_harness.sink.url == "http://127.0.0.1:{sink_port}"
    env = pixelcheck_harness.backend_env(host="host.docker.internal")
    assert env["HTTPS_PROXY"] == "http://host.docker.internal:{proxy_port}"
    assert env["PIXELCHECK_SINK_URL"] == "http://host.docker.internal:{sink_port}"
    assert "host.docker.internal" in env["NO_PROXY"].split(",")
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_non_loopback_listening_is_refused_unless_asked_for_with_a_token(pytester):
    pytester.makepyfile(test_remote=USES_HARNESS)
    refused = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                            "--pixelcheck-listen-host=0.0.0.0")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*--pixelcheck-listen-host=0.0.0.0 would open the proxy "
                                  "and sink to other machines*--pixelcheck-allow-remote*"])
    no_token = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                             "--pixelcheck-listen-host=0.0.0.0",
                                             "--pixelcheck-allow-remote")
    assert no_token.ret == pytest.ExitCode.USAGE_ERROR
    no_token.stderr.fnmatch_lines(["*needs --pixelcheck-access-token*"])
    allowed = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                            "--pixelcheck-listen-host=0.0.0.0",
                                            "--pixelcheck-allow-remote",
                                            f"--pixelcheck-access-token={TOKEN}")
    allowed.assert_outcomes(passed=1)


def test_ca_export_writes_the_ca_and_a_bundle_and_prints_the_env(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pytest_pixelcheck.cli", "ca", "--export", "ca-public",
         "--ca-dir", "ca-private", "--host", "host.docker.internal", "--path-in-backend",
         "/pixelcheck-ca"], cwd=tmp_path, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": ""}).stdout
    cert = (tmp_path / "ca-public" / "pixelcheck-ca.pem").read_text()
    bundle = (tmp_path / "ca-public" / "ca-bundle.pem").read_text()
    assert cert.count("BEGIN CERTIFICATE") == 1 and "PRIVATE KEY" not in cert
    assert bundle.startswith(cert) and bundle.count("BEGIN CERTIFICATE") > 50  # + roots
    assert "PRIVATE KEY" in (tmp_path / "ca-private" / "mitmproxy-ca.pem").read_text()
    assert "export HTTPS_PROXY=http://host.docker.internal:8080" in out
    assert "export REQUESTS_CA_BUNDLE=/pixelcheck-ca/ca-bundle.pem" in out
    assert "export PIXELCHECK_SINK_URL=http://host.docker.internal:8081" in out
    # run again: the same CA, so a backend started earlier keeps trusting it
    subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", "ca", "--export",
                    "again", "--ca-dir", "ca-private"], cwd=tmp_path, check=True,
                   capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert (tmp_path / "again" / "pixelcheck-ca.pem").read_text() == cert


ELSEWHERE = '''
import json
import subprocess
import sys

from example_site import SiteProcess
from example_site.journey import checkout
from pytest_pixelcheck import assert_deduplicated

TOKEN = "{token}"
BUNDLE = "{bundle}"
CLIENT = """
import http.client, json, os, sys, time, urllib.parse
url = urllib.parse.urlsplit(os.environ["PIXELCHECK_SINK_URL"])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10,
                                  source_address=("127.0.0.2", 0))
body = json.dumps({{"data": [{{
    "event_name": "Lead", "event_id": "stray-1", "event_time": int(time.time()),
    "action_source": "website", "event_source_url": "https://shop.example/lead",
    "user_data": {{"em": ["0" * 64], "client_user_agent": "curl/8",
                  "client_ip_address": "10.1.2.3"}}}}]}})
conn.request("POST", "/v21.0/1234567890/events?access_token=" + sys.argv[1], body,
             {{"Content-Type": "application/json"}})
print(conn.getresponse().status)
"""


def test_backend_on_another_address_goes_through_the_listen_host(
        pixelcheck, pixelcheck_harness, pixelcheck_page):
    # the CA exported before the run, as a container would have mounted it
    env = pixelcheck_harness.backend_env(host="127.0.0.2", ca_bundle=BUNDLE)
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN, env=env,
                     extra_args=["--host", "127.0.0.2"]) as site:
        assert site.url.startswith("http://127.0.0.2:")
        checkout(pixelcheck_page, site.url)
        assert_deduplicated(pixelcheck, "Purchase")
    server = [e for e in pixelcheck.events if e.source == "server"]
    assert server and {{e.raw.channel for e in server}} == {{"proxy"}}


def test_a_call_without_the_token_is_refused(pixelcheck, pixelcheck_harness, pixelcheck_sink):
    pixelcheck_sink.expect_token(None)  # a test cannot open the port: ignored here
    env = pixelcheck_harness.backend_env(host="127.0.0.2")
    status = subprocess.run([sys.executable, "-c", CLIENT, "not-the-token"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()
    assert status.startswith("4"), status
    lead = pixelcheck.wait_for("Lead", source="server")
    assert "the access token is not the one this test expects" in lead.extra["rejection"]
'''


@pytest.mark.browser
@pytest.mark.skipif(not _second_loopback_works(), reason="no 127.0.0.2 on this machine")
def test_backend_on_another_loopback_address_reaches_proxy_and_sink(pytester, tmp_path):
    subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", "ca", "--export",
                    str(tmp_path / "public"), "--ca-dir", str(tmp_path / "private")],
                   check=True, capture_output=True)
    pytester.makepyfile(test_elsewhere=ELSEWHERE.format(
        token=TOKEN, bundle=tmp_path / "public" / "ca-bundle.pem"))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--pixelcheck-listen-host=0.0.0.0",
        "--pixelcheck-allow-remote", f"--pixelcheck-access-token={TOKEN}",
        f"--pixelcheck-ca-dir={tmp_path / 'private'}",
        f"--pixelcheck-proxy-port={_free_port()}", f"--pixelcheck-sink-port={_free_port()}")
    result.assert_outcomes(passed=2)


UNREACHABLE = """
import socket
import pytest

def test_sink_and_proxy_are_not_reachable_from_another_address(pixelcheck_harness):
    for port in (pixelcheck_harness.sink.port, pixelcheck_harness.proxy.port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", port), timeout=5)
"""


@pytest.mark.skipif(not _second_loopback_works(), reason="no 127.0.0.2 on this machine")
def test_by_default_nothing_listens_beyond_127_0_0_1(pytester):
    pytester.makepyfile(test_default=UNREACHABLE)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
