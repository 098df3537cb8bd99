"""Nothing lost without a word: broken bodies, over-long URLs and hits the browser
failed are recorded or reported, never silently dropped. Real sockets and Chromium."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from pytest_pixelcheck import Event
from pytest_pixelcheck.findings import Finding
from pytest_pixelcheck.losses import FailedRequest, explain_failed_hits, failed_hits

PIXEL = "1234567890"


def _raw_exchange(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_broken_chunked_body_is_recorded_and_answered_400(pixelcheck, pixelcheck_sink):
    answer = _raw_exchange(pixelcheck_sink.address, (
        b"POST /v21.0/1234567890/events HTTP/1.1\r\nHost: graph\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"could not be read" in answer
    assert pixelcheck.wait_until(lambda events: len(events) == 1, 5)
    (event,) = pixelcheck.events
    assert event.platform == "meta" and event.source == "server"
    assert "could not be read" in event.error and "chunk" in event.error.lower()
    assert event.raw.response_status == 400
    codes = [f.code for f in pixelcheck.findings()]
    assert codes == ["undecodable-request"]


@pytest.mark.browser
def test_61_kb_pixel_url_is_captured_with_a_finding(pixelcheck, pixelcheck_page):
    """Over HTTP/2 a header block past 64 KiB closed the browser's connection to the
    proxy: the hit was lost, unanswered and unrecorded."""
    url = (f"https://www.facebook.com/tr/?id={PIXEL}&ev=Lead&eid=L-long&cd[note]="
           + "x" * 61_000)
    pixelcheck_page.set_content("<html><body>long URL</body></html>")
    pixelcheck_page.evaluate("u => { const i = new Image(); i.src = u; "
                             "document.body.appendChild(i); }", url)
    event = pixelcheck.wait_for("Lead", "browser", timeout=10)
    assert event.event_id == "L-long" and len(event.raw.url) > 61_000
    (finding,) = [f for f in pixelcheck.findings() if f.code == "url-too-long"]
    assert "61," in finding.message and "414" in finding.message


def test_a_failed_hit_replaces_the_never_fired_verdict():
    now = time.time()
    server = Event("meta", "server", PIXEL, "Purchase", "P-1", now, now)
    missing = Finding("browser-event-missing", "never fired it", "check the page", [server],
                      [], "meta", "Purchase")
    failure = FailedRequest("POST", "https://www.facebook.com/tr/",
                            "net::ERR_INSUFFICIENT_RESOURCES",
                            f"id={PIXEL}&ev=Purchase&eid=P-1".encode())
    other = FailedRequest("POST", "https://www.facebook.com/tr/", "net::ERR_ABORTED",
                          f"id={PIXEL}&ev=Lead&eid=L-9".encode())
    hits = failed_hits([failure, other], traffic=[])
    out = explain_failed_hits([missing], hits)
    assert [f.code for f in out] == ["browser-request-failed", "browser-request-failed"]
    assert "ERR_INSUFFICIENT_RESOURCES" in out[0].message and "never fired" not in out[0].message
    assert out[0].events == [server]
    assert "too many requests" in out[0].fix
    assert "1 meta pixel hit(s)" in out[1].message and "Lead" in out[1].message
    assert "navigating away" in out[1].fix


def test_a_failed_request_the_proxy_recorded_is_no_loss():
    """Cancelled after it was sent (ERR_ABORTED on navigation): the proxy has it."""
    body = f"id={PIXEL}&ev=Lead&eid=L-1".encode()
    failure = FailedRequest("POST", "https://www.facebook.com/tr/", "net::ERR_ABORTED", body)

    class Entry:
        method, url, request_body = "POST", "https://www.facebook.com/tr/", body

    assert failed_hits([failure], [Entry()]) == []
    assert len(failed_hits([failure, failure], [Entry()])) == 1


def _server_call(sink_url: str, index: int) -> int:
    event = {"event_name": "Purchase", "event_id": f"B-{index}", "action_source": "website",
             "event_time": int(time.time()), "event_source_url": "https://shop.example/",
             "user_data": {"client_user_agent": "Mozilla/5.0"},
             # one order each: the same payload under new ids reads as a re-send
             "custom_data": {"value": index, "currency": "EUR"}}
    request = urllib.request.Request(
        f"{sink_url}/v21.0/{PIXEL}/events?access_token=T0KEN-burst",
        data=json.dumps({"data": [event]}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status


@pytest.mark.browser
def test_burst_every_hit_is_captured_or_reported_failed(pixelcheck, pixelcheck_page,
                                                        pixelcheck_sink):
    """1,000 sendBeacon hits and their 1,000 server calls at once: each browser hit is
    captured or named as failed by the browser; none vanishes. "Never fired" is left
    only for hits sendBeacon refused to queue (it returned false: no request exists)."""
    count = 1000
    pixelcheck_page.set_content("<html><body>burst</body></html>")
    with ThreadPoolExecutor(8) as pool:
        calls = pool.map(_server_call, [pixelcheck_sink.url] * count, range(count))
        refused = pixelcheck_page.evaluate("""([n, pixel]) => {
            const refused = [];
            for (let i = 0; i < n; i++) {
              const hit = new URLSearchParams({id: pixel, ev: 'Purchase', eid: 'B-' + i,
                                              'cd[value]': i, 'cd[currency]': 'EUR'});
              if (!navigator.sendBeacon('https://www.facebook.com/tr/', hit)) {
                refused.push('B-' + i);  // over the keepalive quota: the page is told
              }
            }
            return refused; }""", [count, PIXEL])
        statuses = list(calls)
    assert statuses == [200] * count
    assert pixelcheck.wait_for("Purchase", "server", count=count, timeout=60)
    # Playwright delivers its events during calls: wait until every hit is accounted for
    deadline = time.monotonic() + 60
    while True:
        captured = {e.event_id for e in pixelcheck.browser_events}
        failed = pixelcheck.failed_requests()
        if len(captured) + len(failed) + len(refused) >= count or \
                time.monotonic() > deadline:
            break
        pixelcheck_page.wait_for_timeout(250)
    findings = pixelcheck.findings()
    reported = {e.event_id for f in findings if f.code == "browser-request-failed"
                for e in f.events}
    never_fired = {e.event_id for f in findings if f.code == "browser-event-missing"
                   for e in f.events}
    print(f"sendBeacon refused {len(refused)}, captured {len(captured)}, "
          f"failed in the browser {len(failed)}")
    assert len(captured) + len(failed) + len(refused) == count
    assert captured | reported | set(refused) == {f"B-{i}" for i in range(count)}
    assert never_fired == set(refused)
