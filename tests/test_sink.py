"""The sink over real sockets: token checks, injected faults, delays, counters."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

GOOD = {"event_name": "Purchase", "event_id": "p-1", "action_source": "website",
        "event_source_url": "https://shop.example/thanks",
        "user_data": {"client_user_agent": "Mozilla/5.0", "em": ["a" * 64]}}


def send(sink, *, name="Purchase", event_id="p-1", token="T0KEN-123456", form=False,
         timeout=10):
    event = dict(GOOD, event_name=name, event_id=event_id, event_time=int(time.time()))
    url = f"{sink.url}/v21.0/1234567890/events"
    if form:
        body = urllib.parse.urlencode({"data": json.dumps([event]),
                                       **({"access_token": token} if token else {})}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    else:
        url += f"?access_token={token}" if token else ""
        body = json.dumps({"data": [event]}).encode()
        headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read()), dict(answer.headers), \
                time.perf_counter() - started
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers), \
            time.perf_counter() - started


def test_expected_token_missing_or_wrong_gets_code_190(pixelcheck, pixelcheck_sink):
    pixelcheck_sink.expect_token("T0KEN-123456")
    assert send(pixelcheck_sink)[0] == 200
    assert send(pixelcheck_sink, form=True)[0] == 200
    status, body, _, _ = send(pixelcheck_sink, token="EAAwrong-token")
    assert status == 400 and body["error"]["code"] == 190
    status, body, _, _ = send(pixelcheck_sink, token=None)
    assert status == 400 and body["error"]["code"] == 190
    locations = [e.extra["token_location"] for e in pixelcheck.server_events]
    assert locations == ["query", "form", "query", None]
    rejected = [e for e in pixelcheck.server_events if e.raw.response_status == 400]
    assert [e.extra["rejection"] for e in rejected] == [
        ["the access token is not the one this test expects"],
        ["no access token was sent"]]


def test_token_expectation_ends_with_the_test(pixelcheck_sink, pixelcheck):
    assert pixelcheck_sink.expected_token is None
    assert send(pixelcheck_sink, token="anything-goes")[0] == 200


@pytest.mark.parametrize("kind, status, code", [
    ("500", 500, 1), ("transient", 500, 2), ("429", 429, 17), ("expired_token", 400, 190),
])
def test_fail_next_answers_like_meta_then_recovers(pixelcheck, pixelcheck_sink, kind, status,
                                                   code):
    pixelcheck_sink.fail_next(2, kind=kind, event_name="Purchase")
    assert send(pixelcheck_sink, name="PageView")[0] == 200  # other events pass
    first, body, headers, _ = send(pixelcheck_sink)
    assert (first, body["error"]["code"]) == (status, code)
    assert body["error"]["fbtrace_id"]
    if kind == "429":
        assert headers["Retry-After"] == "1"
    assert send(pixelcheck_sink)[0] == status
    assert send(pixelcheck_sink)[0] == 200
    statuses = [e.raw.response_status for e in pixelcheck.server_events]
    assert statuses == [200, status, status, 200]


def test_timeout_holds_the_answer_past_the_client_timeout(pixelcheck, pixelcheck_sink):
    pixelcheck_sink.timeout_hold_seconds = 1.0
    try:
        pixelcheck_sink.fail_next(1, kind="timeout")
        with pytest.raises(TimeoutError):
            send(pixelcheck_sink, timeout=0.3)
        # the call was recorded on arrival, as not counted
        [event] = pixelcheck.server_events
        assert event.raw.response_status == 504
    finally:
        pixelcheck_sink.timeout_hold_seconds = 6.0


def test_delay_answers_late_but_records_on_arrival(pixelcheck, pixelcheck_sink):
    pixelcheck_sink.delay(0.4, event_name="Purchase")
    before = time.time()
    status, _, _, took = send(pixelcheck_sink)
    assert status == 200 and took >= 0.4
    assert pixelcheck.server_events[0].arrival_time - before < 0.3
    assert send(pixelcheck_sink, name="Lead")[3] < 0.4


def test_unknown_fault_kind_is_a_clear_error(pixelcheck_sink):
    with pytest.raises(ValueError, match="unknown fault kind 'teapot'"):
        pixelcheck_sink.fail_next(1, kind="teapot")


def test_status_counters(pixelcheck, pixelcheck_sink):
    before = dict(pixelcheck_sink.status_counts)
    pixelcheck_sink.fail_next(1, kind="500")
    send(pixelcheck_sink)
    send(pixelcheck_sink)
    after = pixelcheck_sink.status_counts
    assert after[500] - before.get(500, 0) == 1 and after[200] - before.get(200, 0) == 1


def test_a_call_with_a_url_over_64_kib_is_recorded_and_answered(pixelcheck, pixelcheck_sink):
    """http.server refused a request line over 64 KiB with 414 before the sink saw it,
    and the call was lost unrecorded (the fuzzing found it with a deeply nested query)."""
    import http.client

    before = len(pixelcheck_sink.requests)
    query = "access_token=T0KEN-123456&padding=" + "x" * 100_000
    connection = http.client.HTTPConnection(pixelcheck_sink.host, pixelcheck_sink.port,
                                            timeout=20)
    try:
        body = json.dumps({"data": [dict(GOOD, event_time=int(time.time()))]}).encode()
        connection.request("POST", f"/v21.0/1234567890/events?{query}", body=body,
                           headers={"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
    finally:
        connection.close()
    assert answer.status == 200
    [recorded] = pixelcheck_sink.requests.since(before)
    assert recorded.body == body and len(recorded.url) > 100_000
    assert pixelcheck.wait_for("Purchase", source="server").event_id == "p-1"
