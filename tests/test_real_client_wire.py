"""What the official clients really send (recorded in fixtures/meta/clients/), read by
the one decoder the sink, the proxy and ``analyze`` share; and verdicts that never pass
on nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_pixelcheck import (
    Event,
    PixelcheckAssertionError,
    assert_deduplicated,
    assert_pii_hashed,
)
from pytest_pixelcheck.capture import Pixelcheck
from pytest_pixelcheck.events import CapturedRequest, EventStore
from pytest_pixelcheck.platforms import decode_request, get

CLIENTS = Path(__file__).resolve().parent.parent / "fixtures" / "meta" / "clients"
# the Python recorder nests the request under "request"; the Node one writes it flat
RECORDED = sorted(p for p in CLIENTS.glob("*.json")
                  if {"request", "body"} & set(json.loads(p.read_text())))


def _captured(recorded: dict, *, via_proxy: bool = False) -> CapturedRequest:
    request = recorded.get("request", recorded)
    pairs = request["headers"]
    pairs = pairs.items() if isinstance(pairs, dict) else pairs
    headers = [(k, v) for k, v in pairs if k.lower() != "host"]
    host = "graph.facebook.com" if via_proxy else "127.0.0.1"
    body = request["body"]
    return CapturedRequest(
        request["method"], f"https://{host}{request['path']}", headers,
        body.encode() if isinstance(body, str) else json.dumps(body).encode(),
        time.time(), "proxy" if via_proxy else "sink",
        original_host=host if via_proxy else None)


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_every_recorded_client_request_is_accepted_like_meta_does(path):
    recorded = json.loads(path.read_text())
    recorded_event_time = None
    for via_proxy in (False, True):
        captured = _captured(recorded, via_proxy=via_proxy)
        answer = get("meta").handle_server(captured)
        # an event_time in a recording ages: only the decoding is under test here
        events = [e for e in answer.events if e.error is None]
        assert len(events) == len(answer.events) == 1, [e.error for e in answer.events]
        [event] = events
        assert event.event_name == "Purchase"
        assert event.event_id.startswith("purchase.")
        assert len(event.user_data["em"][0]) == 64
        assert event.custom_data["order_id"]
        recorded_event_time = event.event_time
        too_old = time.time() - recorded_event_time > 7 * 86400
        assert answer.status == (400 if too_old else 200), answer.body
        if too_old:
            assert answer.body["error"]["error_subcode"] == 2804003
        assert answer.token == "REDACTED"
        # analyze reads a recorded request through the same decoder
        assert [e.event_id for e in decode_request(_captured(recorded))] == [event.event_id]


def test_the_python_sdk_shape_data_as_json_strings_is_decoded():
    # facebook-business sends data=["{...}"]: each event a JSON string. Meta accepts
    # it; the sink used to answer 400 "data[0] is a str".
    event = {"event_name": "Purchase", "event_time": int(time.time()), "event_id": "p.1",
             "action_source": "website", "event_source_url": "https://shop.example/t",
             "user_data": {"client_user_agent": "UA", "em": ["a" * 64]}}
    body = "data=" + json.dumps([json.dumps(event)]) + "&access_token=EAAx"
    captured = CapturedRequest("POST", "http://127.0.0.1/v21.0/123/events",
                               [("Content-Type", "application/x-www-form-urlencoded")],
                               body.encode(), time.time(), "sink")
    answer = get("meta").handle_server(captured)
    assert answer.status == 200, answer.body
    assert answer.events[0].event_id == "p.1"
    assert answer.events[0].extra["data_item_encoding"] == "json-string"


def test_a_string_that_is_not_an_event_names_index_shape_and_client():
    body = json.dumps({"data": ["Purchase"]})
    captured = CapturedRequest("POST", "http://127.0.0.1/v21.0/123/events?access_token=x",
                               [("Content-Type", "application/json"),
                                ("User-Agent", "acme-capi/1.2")],
                               body.encode(), time.time(), "sink")
    answer = get("meta").handle_server(captured)
    assert answer.status == 400
    [event] = answer.events
    assert "data[0] is a string 'Purchase' that is not a JSON object" in event.error


# --- verdicts that never pass on nothing --------------------------------------------


def _pixelcheck(*events: Event) -> Pixelcheck:
    store = EventStore()
    capture = Pixelcheck(store, default_timeout=0.1)
    store.add(events)
    return capture


def _browser_purchase() -> Event:
    now = time.time()
    return Event("meta", "browser", "123", "Purchase", "purchase.1", now, now,
                 user_data={"em": "a" * 64})


def _undecodable_server_call() -> Event:
    now = time.time()
    raw = CapturedRequest("POST", "http://127.0.0.1/v21.0/123/events", [
        ("User-Agent", "acme-capi/1.2")], b"data=%5B%22oops", now, "sink", response_status=400)
    return Event("meta", "server", "123", None, None, None, now, raw=raw,
                 error="`data` is not a JSON array: Unterminated string")


def test_an_undecodable_server_twin_is_not_reported_as_never_arrived():
    pixelcheck = _pixelcheck(_browser_purchase(), _undecodable_server_call())
    codes = [f.code for f in pixelcheck.findings()]
    assert "server-event-missing" not in codes
    assert "server-event-undecodable" in codes
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_deduplicated(pixelcheck, "Purchase", timeout=0.1)
    message = str(failure.value)
    assert "server-event-undecodable" in message
    assert "never arrived" not in message
    assert "could not be decoded" in message and "acme-capi/1.2" in message
    # the scoped assertion shows the request's own finding as an error too
    assert "undecodable-request" in [f.code for f in failure.value.findings]


def test_pii_check_fails_when_every_server_call_was_undecodable():
    pixelcheck = _pixelcheck(_browser_purchase(), _undecodable_server_call())
    pixelcheck.customer(email="jane@example.com")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=0.1)
    assert "nothing to check" in str(failure.value).splitlines()[0]
    assert "could not be decoded" in str(failure.value)


def test_pii_check_fails_when_no_server_event_arrived():
    pixelcheck = _pixelcheck(_browser_purchase())
    pixelcheck.customer(email="jane@example.com")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=0.1)
    assert "no server 'Purchase' event arrived" in str(failure.value)


def test_pii_check_fails_when_a_required_key_reached_neither_side():
    now = time.time()
    browser = Event("meta", "browser", "123", "Purchase", "p.1", now, now)
    server = Event("meta", "server", "123", "Purchase", "p.1", now, now,
                   user_data={"client_user_agent": "UA"})
    pixelcheck = _pixelcheck(browser, server)
    pixelcheck.customer(email="jane@example.com", phone="+16505551212")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=0.1)
    message = str(failure.value)
    assert "required key 'em' did not arrive right from the browser" in message
    assert "required key 'ph' did not arrive right from the server" in message
    # only what is asked for: no customer keys required, so this passes
    assert_pii_hashed(pixelcheck, event_name="Purchase", require=(), timeout=0.1)
    with pytest.raises(ValueError, match="not a match key"):
        assert_pii_hashed(pixelcheck, require=("shoe_size",), timeout=0.1)


def test_assert_deduplicated_returns_only_the_asserted_names():
    now = time.time()
    events = [Event("meta", side, "123", name, f"{name}.1", now, now)
              for name in ("PageView", "Purchase") for side in ("browser", "server")]
    result = assert_deduplicated(_pixelcheck(*events), "Purchase", timeout=0.1)
    assert [p.browser.event_name for p in result.pairs] == ["Purchase"]
    assert {e.event_name for e in result.events} == {"Purchase"}
