"""Nothing leaves the machine: a browser checkout (Chromium, proxy, sink, the shop and
its backend calls through the proxy) run under ``strace -f -e trace=connect`` makes no
connection to a non-loopback address and no DNS lookup. And the proxy answers a host
it does not serve itself, unless the session allows upstream."""

from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from pytest_pixelcheck.browser import DISABLED_FEATURES, QUIET_FLAGS
from pytest_pixelcheck.proxy import PixelProxy

ROOT = Path(__file__).resolve().parent.parent

CHECKOUT_PROJECT = '''
import pytest
from example_site import SiteProcess
from example_site.journey import checkout
from pytest_pixelcheck import assert_deduplicated


@pytest.fixture(scope="session")
def shop(pixelcheck_harness):
    # the backend calls the real graph.facebook.com host, through the proxy
    with SiteProcess("https://graph.facebook.com", access_token="EAAtoken",
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def test_checkout(pixelcheck, pixelcheck_page, shop):
    checkout(pixelcheck_page, shop.url)
    assert_deduplicated(pixelcheck, "Purchase", timeout=15)
    # a request for a host pixelcheck does not serve gets its page, not the network
    pixelcheck_page.goto("https://www.example.com/")
    assert "pixelcheck answered this request" in pixelcheck_page.content()
'''

_SOCKET = re.compile(r"^(\d+) socket\(AF_INET6?, (SOCK_\w+)[^)]*\) = (\d+)")
_CONNECT = re.compile(r'^(\d+) connect\((\d+), \{sa_family=AF_INET6?,.*?htons\((\d+)\),.*?'
                      r'(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def egress(trace: str) -> tuple[list[str], list[str]]:
    """(connections that leave the machine, UDP reachability probes) in an strace log
    of ``socket`` and ``connect`` calls.

    Leaving: a TCP connection to a non-loopback address, or anything to port 53 (a DNS
    lookup goes out through the resolver, loopback or not). A UDP ``connect`` elsewhere
    sends no packet (it only asks the kernel for a route): Chromium does it to learn
    whether IPv6 is reachable; those are listed apart.
    """
    import ipaddress

    kinds: dict[tuple[str, str], str] = {}
    leaving, probes = [], []
    for line in trace.splitlines():
        if made := _SOCKET.search(line):
            kinds[(made[1], made[3])] = made[2]
            continue
        found = _CONNECT.search(line)
        if not found:
            continue
        tid, fd, port, v4, v6 = found.groups()
        address = ipaddress.ip_address(v4 or v6)
        mapped = getattr(address, "ipv4_mapped", None)
        loopback = address.is_loopback or (mapped is not None and mapped.is_loopback)
        if int(port) == 53:
            leaving.append(line.strip())
        elif not loopback:
            (probes if kinds.get((tid, fd)) == "SOCK_DGRAM" else leaving).append(line.strip())
    return leaving, probes


def test_egress_parser_counts_what_leaves():
    trace = "\n".join([
        '1 socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, IPPROTO_IP) = 10',
        '1 connect(10, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '1 connect(5, {sa_family=AF_INET, sin_port=htons(443), '
        'sin_addr=inet_addr("157.240.1.35")}, 16) = -1 ENETUNREACH',
        '1 connect(5, {sa_family=AF_INET, sin_port=htons(8080), '
        'sin_addr=inet_addr("127.0.0.1")}, 16) = 0',
        '1 connect(6, {sa_family=AF_INET, sin_port=htons(53), '
        'sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
        '1 connect(7, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '1 connect(8, {sa_family=AF_INET6, sin6_port=htons(9000), sin6_flowinfo=htonl(0), '
        'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
        '1 connect(9, {sa_family=AF_UNIX, sun_path="/run/x"}, 110) = 0',
    ])
    leaving, probes = egress(trace)
    assert len(leaving) == 3 and len(probes) == 1


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_browser_checkout_makes_no_connection_off_the_machine(tmp_path):
    (tmp_path / "test_checkout.py").write_text(CHECKOUT_PROJECT)
    trace = tmp_path / "connect.trace"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
         sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-q", "test_checkout.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    text = trace.read_text()
    assert "connect(" in text  # strace did see the run's loopback connections
    leaving, probes = egress(text)
    print(f"non-loopback connections and DNS lookups: {len(leaving)}; "
          f"UDP reachability probes (no packet sent): {len(probes)}")
    assert leaving == []


def test_quiet_flags_keep_playwrights_disabled_features():
    """Chromium reads only the last --disable-features: ours must carry Playwright's
    (its list keeps Chromium from asking clients2.google.com for the time)."""
    flags = [f for f in QUIET_FLAGS if f.startswith("--disable-features=")]
    assert len(flags) == 1
    assert {"NetworkTimeServiceQuerying", "OptimizationHints", "AutofillServerCommunication",
            "site-per-process"} <= set(DISABLED_FEATURES)
    for flag in ("--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-client-side-phishing-detection",
                 "--disable-site-isolation-trials"):
        assert flag in QUIET_FLAGS


def _get_through(proxy: PixelProxy, url: str) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(proxy.ca_cert_path))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": proxy.url, "http": proxy.url}),
        urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=20) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# The session's own proxy: a second one in this process would take mitmproxy's
# process-global context from it (and is refused).
def test_unknown_host_gets_the_offline_page_recorded_as_traffic(pixelcheck_proxy):
    status, page = _get_through(pixelcheck_proxy,
                                "https://update.googleapis.com/service/update2")
    assert status == 502
    assert "pixelcheck answered this request" in page
    assert "pixelcheck_allow_upstream" in page
    [entry] = [e for e in pixelcheck_proxy.traffic if "update.googleapis" in e.url][-1:]
    assert entry.handled_by == "offline" and entry.status == 502


def test_allow_upstream_lets_a_request_leave(pixelcheck_proxy, monkeypatch):
    """With upstream allowed the proxy connects out. The upstream is a non-loopback
    name mapped to a closed loopback port (no DNS lookup leaves the run), so the proof
    is mitmproxy's own connection error instead of the offline page."""
    import socket

    monkeypatch.setattr(pixelcheck_proxy, "allow_upstream", True)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host == "upstream.invalid" else host, *a, **k))
    status, page = _get_through(pixelcheck_proxy, "http://upstream.invalid:9/")
    assert "pixelcheck answered this request" not in page
    assert status == 502
    [entry] = [e for e in pixelcheck_proxy.traffic if "upstream.invalid" in e.url][-1:]
    assert entry.handled_by == "passthrough"


@pytest.mark.browser
def test_a_context_opens_no_browser_ui_pages(pixelcheck_context, pixelcheck_page):
    """Chromium 156 rendered the address bar's popups (chrome://omnibox-popup.top-chrome/
    and its AI-mode page) in a renderer of their own for every context's window,
    headless too: 0.57 CPU-s per checkout, as much as the shop's pages. The session's
    browser turns them off; any chrome:// page a new Chromium adds shows up here."""
    pixelcheck_page.set_content("<p>shop</p>")
    cdp = pixelcheck_context.browser.new_browser_cdp_session()
    try:
        targets = cdp.send("Target.getTargets")["targetInfos"]
    finally:
        cdp.detach()
    assert [t["url"] for t in targets if t["url"].startswith("chrome://")] == []
    assert any(t["type"] == "page" for t in targets)
