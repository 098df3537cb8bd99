"""Bad input over real sockets: the proxy and the sink answer it, record it with a
reason, keep serving, and never hide the test's other events."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request


def _post(url, body, headers=None, opener=None):
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with (opener.open if opener else urllib.request.urlopen)(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _good_event(event_id):
    return {"event_name": "Purchase", "event_time": int(time.time()), "event_id": event_id,
            "action_source": "website", "event_source_url": "https://shop.example/thanks",
            "user_data": {"client_user_agent": "Mozilla/5.0", "em": ["a" * 64]}}


SINK_CASES = {
    "empty body": (b"", {"Content-Type": "application/json"}),
    "truncated JSON": (b'{"data": [{"event_name": "Purch', {"Content-Type": "application/json"}),
    "gzip body": (gzip.compress(json.dumps({"data": [_good_event("gz-1")]}).encode()),
                  {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    "gzip header, plain body": (b'{"data": []}', {"Content-Type": "application/json",
                                                  "Content-Encoding": "gzip"}),
    "5 MB body": (json.dumps({"data": [_good_event("big-1")], "pad": "x" * 5_000_000}).encode(),
                  {"Content-Type": "application/json"}),
    "wrong content type": (json.dumps({"data": [_good_event("ct-1")]}).encode(),
                           {"Content-Type": "text/plain"}),
    "binary garbage": (bytes(range(256)) * 10, {"Content-Type": "application/octet-stream"}),
}


def test_sink_answers_every_body_and_keeps_serving(pixelcheck, pixelcheck_sink):
    url = f"{pixelcheck_sink.url}/v21.0/1234567890/events?access_token=T0KEN-bad-input"
    answers = {name: _post(url, body, headers) for name, (body, headers) in
               SINK_CASES.items()}
    for name, (status, body) in answers.items():
        parsed = json.loads(body)  # always a well-formed JSON answer
        if status == 200:
            assert parsed["events_received"] == 1, name
        else:
            assert status == 400 and parsed["error"]["code"] == 100, (name, parsed)
    assert answers["gzip body"][0] == 200
    assert answers["5 MB body"][0] == 200
    assert answers["wrong content type"][0] == 200  # JSON is read whatever the header says
    undecodable = [e for e in pixelcheck.server_events if not e.decoded]
    reasons = " | ".join(e.error for e in undecodable)
    assert len(undecodable) == 4, reasons
    assert "empty" in reasons and "not valid JSON" in reasons and "not UTF-8" in reasons
    assert "Content-Encoding gzip" in reasons
    # the good calls among them were decoded and kept
    assert {e.event_id for e in pixelcheck.server_events if e.decoded} == {"gz-1", "big-1",
                                                                          "ct-1"}
    # an unknown path is answered and recorded too
    status, _ = _post(f"{pixelcheck_sink.url}/nothing/here", b"x")
    assert status == 404
    assert any("no platform" in (e.error or "") for e in pixelcheck.server_events)


def test_proxy_answers_malformed_hits_and_keeps_capturing(pixelcheck, via_proxy,
                                                          pixelcheck_sink):
    tr = "https://www.facebook.com/tr/"
    cases = [
        (tr + "?id=1234567890&eid=no-ev", b"", {}),
        (tr, b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip",
                                       "Content-Type": "application/x-www-form-urlencoded"}),
        (tr, b"--b\r\nbroken multipart", {"Content-Type": "multipart/form-data; boundary=b"}),
        (tr, ("id=1234567890&ev=Purchase&eid=big&cd[pad]=" + "y" * 2_000_000).encode(),
         {"Content-Type": "application/x-www-form-urlencoded"}),
        (tr + "?id=1234567890&ev=Purchase&eid=ok-1", b"", {}),
    ]
    for url, body, headers in cases:
        status, payload = _post(url, body, headers, opener=via_proxy)
        assert status == 200 and payload.startswith(b"GIF89a")
    events = pixelcheck.browser_events
    assert len(events) == 5
    assert [e.decoded for e in events] == [False, False, False, True, True], \
        [e.error for e in events]
    assert "without `ev`" in events[0].error
    assert "Content-Encoding gzip" in events[1].error
    assert "without `id` and `ev`" in events[2].error
    big = next(e for e in events if e.event_id == "big")
    assert len(big.custom_data["pad"]) == 2_000_000
    # the server twin of the good hit still pairs despite the noise before it
    _post(f"{pixelcheck_sink.url}/v21.0/1234567890/events",
          json.dumps({"data": [_good_event("ok-1")]}).encode(),
          {"Content-Type": "application/json"})
    pixelcheck.wait_for("Purchase", source="server")
    assert any(p.browser.event_id == "ok-1" for p in pixelcheck.match().pairs)


def test_shop_takes_a_browser_hanging_up_mid_answer_as_no_error(pixelcheck_sink):
    """A browser that navigates on resets the connection before the page is written. That
    is no backend crash: the shop logs no traceback and keeps serving (it once failed CI)."""
    import socket
    import struct

    from example_site import SiteProcess

    with SiteProcess(pixelcheck_sink.url, access_token="EAAhangupTEST0123456789") as site:
        host, port = site.url.removeprefix("http://").split(":")
        for _ in range(50):
            with socket.create_connection((host, int(port))) as conn:
                conn.sendall(b"GET /product/sku-1 HTTP/1.1\r\nHost: shop\r\n\r\n")
                # linger 0: close() sends a reset, as a tab navigating away does
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with urllib.request.urlopen(f"{site.url}/", timeout=10) as answer:
            assert answer.status == 200
    assert "Traceback" not in site.stderr, site.stderr[-3000:]
