"""Bounded resources: decompression capped and off the proxy's event loop, bodies kept
cut short with length and digest, pytest-httpserver's own log not kept, the store a
ring for long sessions that keeps the running test's capture whole."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request

from pytest_pixelcheck.events import KEPT_BODY_BYTES, AppendLog, Event, EventStore
from pytest_pixelcheck.platforms.meta.platform import Meta
from pytest_pixelcheck.wire import DECOMPRESSED_LIMIT


def _post(url, body, headers, opener=None, timeout=20):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with (opener.open if opener else urllib.request.urlopen)(request,
                                                                 timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _event(event_id, **extra):
    return {"event_name": "Purchase", "event_time": int(time.time()), "event_id": event_id,
            "action_source": "website", "event_source_url": "https://shop.example/thanks",
            "user_data": {"client_user_agent": "Mozilla/5.0"}, **extra}


def test_gzip_bomb_stops_at_the_limit_with_a_finding(pixelcheck, pixelcheck_sink):
    inner = json.dumps({"data": [_event("bomb-1")]}).encode()
    bomb = gzip.compress(inner + b" " * (DECOMPRESSED_LIMIT + 1024 * 1024))
    status, answer = _post(f"{pixelcheck_sink.url}/v21.0/1234567890/events", bomb,
                           {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert status == 400, answer
    (event,) = pixelcheck.events
    assert "more than 16 MiB (the limit)" in event.error
    assert [f.code for f in pixelcheck.findings()] == ["undecodable-request"]


def test_a_slow_decode_does_not_hold_up_other_hits(pixelcheck, pixelcheck_proxy, via_proxy,
                                                   monkeypatch):
    """A hit whose decoding takes long (a large or compressed body) is decoded off the
    proxy's event loop: another hit is answered meanwhile. No timing is asserted: the
    first decode waits until the second hit was answered."""
    second_answered = threading.Event()
    decoded_on = []
    original = Meta.decode_browser

    def slow_decode(self, request):
        decoded_on.append(threading.current_thread().name)
        if "eid=slow" in request.url:
            second_answered.wait(20)
        return original(self, request)

    monkeypatch.setattr(Meta, "decode_browser", slow_decode)
    first = threading.Thread(target=_post, args=(
        "https://www.facebook.com/tr/?id=1234567890&ev=Lead&eid=slow", b"", {}, via_proxy))
    first.start()
    time.sleep(0.5)  # the first hit is in its decoder now
    status, _ = _post("https://www.facebook.com/tr/?id=1234567890&ev=Lead&eid=fast", b"", {},
                      via_proxy, timeout=10)
    second_answered.set()
    first.join(20)
    assert status == 200
    assert "pixelcheck-proxy" not in decoded_on
    assert {e.event_id for e in pixelcheck.wait_for("Lead", count=2) and
            pixelcheck.browser_events} == {"slow", "fast"}


def test_a_large_body_is_kept_cut_short_with_length_and_digest(pixelcheck, pixelcheck_sink):
    body = json.dumps({"data": [_event("big-1", custom_data={
        "value": 5, "currency": "EUR", "note": "x" * (5 * 1024 * 1024)})]}).encode()
    status, _ = _post(f"{pixelcheck_sink.url}/v21.0/1234567890/events", body,
                      {"Content-Type": "application/json"})
    assert status == 200
    (event,) = pixelcheck.server_events
    assert event.event_id == "big-1" and event.decoded  # decoded from the whole body
    raw = event.raw
    assert len(raw.body) == KEPT_BODY_BYTES
    assert raw.body_length == len(body)
    assert raw.body_sha256 == hashlib.sha256(body).hexdigest()
    assert "first 65536 kept" in repr(raw)


def test_pytest_httpservers_own_log_is_not_kept(pixelcheck, pixelcheck_sink):
    for index in range(3):
        _post(f"{pixelcheck_sink.url}/v21.0/1234567890/events",
              json.dumps({"data": [_event(f"log-{index}")]}).encode(),
              {"Content-Type": "application/json"})
    assert len(pixelcheck.server_events) == 3
    assert pixelcheck_sink.server.log == []


def _events(count, name="Lead"):
    now = time.time()
    return [Event("meta", "browser", "1", name, f"{name}-{i}", now, now) for i in range(count)]


def test_the_store_is_a_ring_that_keeps_the_running_tests_events():
    store = EventStore(max_items=100)
    store.add(_events(500, "Earlier"))
    assert len(store) == 500 and store.dropped >= 400  # nothing pinned yet: a ring
    mark = store.mark()  # a test begins
    store.add(_events(300, "Mine"))  # more than the bound, all the test's own
    mine = store.since(mark)
    assert [e.event_id for e in mine] == [f"Mine-{i}" for i in range(300)]
    assert [e.seq for e in mine] == list(range(500, 800))
    assert all(e.event_name == "Earlier" for e in store.before(mark))
    store.mark()  # the next test: the previous one's events may go
    store.add(_events(10, "Next"))
    assert len(store.since(0)) <= 100


def test_logs_are_bounded_by_bytes_too():
    log: AppendLog[bytes] = AppendLog(max_items=10_000, max_bytes=1000, weigh=len)
    for _ in range(100):
        log.append(b"x" * 100)
    assert len(log) == 100 and len(log.since()) <= 10
    mark = log.mark()
    log.append(b"y" * 5000)  # the running test's own item stays, over the budget
    assert log.since(mark) == [b"y" * 5000]
