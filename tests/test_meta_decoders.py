"""Meta decoders on requests recorded at the proxy and the sink (fixtures/meta)."""

from __future__ import annotations

import gzip
import hashlib
import json
import time

import pytest
from recorded import recorded

from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest

META = platforms.get("meta")


def valid_event(event_id, name="Purchase", **fields):
    """A website event with everything Meta requires."""
    return {"event_name": name, "event_time": int(time.time()), "event_id": event_id,
            "action_source": "website", "event_source_url": "https://shop.example/thanks",
            "user_data": {"client_user_agent": "Mozilla/5.0", "em": ["a" * 64]}, **fields}


def _server(body: bytes, content_type: str = "application/json", *, query: str = "",
            headers: list[tuple[str, str]] | None = None) -> CapturedRequest:
    return CapturedRequest("POST", f"http://127.0.0.1:1/v21.0/1234567890/events{query}",
                           [("Content-Type", content_type), *(headers or [])], body,
                           time.time(), "sink")


def test_docs_example_get_hit():
    [event] = META.decode_browser(recorded("meta/browser_get_docs_example"))
    assert event.decoded
    assert (event.pixel_id, event.event_name, event.event_id) == ("123456", "Purchase", "ORD-1001")
    assert event.event_time == pytest.approx(1730578362.123)
    assert event.event_time_raw == "1730578362123"
    assert event.page_url == "https://shop.example/thanks"
    assert event.custom_data == {"value": "25", "currency": "USD"}
    assert event.extra["params"]["v"] == "2.9.15"


def test_recorded_purchase_with_advanced_matching():
    [event] = META.decode_browser(recorded("meta/browser_get_purchase_advanced_matching"))
    assert event.event_id == "purchase.ORD-1001"
    # JSON arrays inside cd[...] are decoded, not left as strings
    assert event.custom_data["content_ids"] == ["sku-1", "sku-2"]
    assert event.custom_data["contents"][0] == {"id": "sku-1", "quantity": 1, "item_price": 12.5}
    # the stand-in library hashed the normalized email in the browser
    assert event.user_data["em"] == hashlib.sha256(b"john.smith@example.com").hexdigest()
    assert event.user_data["ph"] == hashlib.sha256(b"16505551212").hexdigest()
    assert event.user_data["ct"] == hashlib.sha256(b"menlopark").hexdigest()
    assert event.extra["fbp"].startswith("fb.1.")
    assert "HeadlessChrome" in event.extra["user_agent"]


@pytest.mark.parametrize("name, event_name, event_id", [
    ("meta/browser_sendbeacon_urlencoded", "AddToCart", "atc.1"),
    ("meta/browser_sendbeacon_multipart", "InitiateCheckout", "ic.1"),
])
def test_sendbeacon_posts_are_decoded_from_the_body(name, event_name, event_id):
    request = recorded(name)
    assert request.method == "POST"
    [event] = META.decode_browser(request)
    assert event.decoded, event.error
    assert (event.event_name, event.event_id, event.pixel_id) == (event_name, event_id,
                                                                  "1234567890")


def test_hit_without_ev_is_kept_as_undecodable_with_reason():
    [event] = META.decode_browser(recorded("meta/browser_get_missing_ev"))
    assert not event.decoded
    assert "without `ev`" in event.error
    assert event.event_id == "broken.1"  # what could be read is kept


def test_query_and_body_parameters_merge():
    request = CapturedRequest("POST", "https://www.facebook.com/tr/?id=42&ev=Lead",
                              [("Content-Type", "application/x-www-form-urlencoded")],
                              b"eid=lead.1&cd%5Bvalue%5D=3", time.time(), "proxy")
    [event] = META.decode_browser(request)
    assert (event.pixel_id, event.event_name, event.event_id) == ("42", "Lead", "lead.1")
    assert event.custom_data["value"] == "3"


def test_gzip_claimed_but_not_gzip_is_a_finding_not_a_crash():
    request = CapturedRequest("POST", "https://www.facebook.com/tr/",
                              [("Content-Encoding", "gzip")], b"not gzip", time.time(), "proxy")
    [event] = META.decode_browser(request)
    assert not event.decoded and "Content-Encoding gzip" in event.error


@pytest.mark.parametrize("host, path, expected", [
    ("www.facebook.com", "/tr", True),
    ("www.facebook.com", "/tr/", True),
    ("facebook.com", "/tr/", True),
    ("www.beta.facebook.com", "/tr/", True),
    ("www.facebook.com", "/track", False),
    ("graph.facebook.com", "/tr/", False),
    ("evilfacebook.com", "/tr/", False),
])
def test_collection_endpoint_recognition(host, path, expected):
    assert META.is_collection(host, path) is expected


def test_library_stand_in_is_served_for_fbevents_only():
    assert META.library_response("connect.facebook.net", "/en_US/fbevents.js") is not None
    assert META.library_response("connect.facebook.net", "/other.js") is None
    assert META.library_response("cdn.example", "/en_US/fbevents.js") is None


# --- server side ------------------------------------------------------------------------


@pytest.mark.parametrize("name, token_location", [
    ("meta/server_json_purchase", "query"),
    ("meta/server_form_purchase", "form"),
    ("meta/server_gzip_json_with_test_code", "query"),
    ("meta/server_via_proxy_json", "query"),
])
def test_recorded_server_calls_decode(name, token_location):
    answer = META.handle_server(recorded(name))
    assert answer.status == 200
    assert answer.body["events_received"] == 1 and answer.body["messages"] == []
    assert answer.body["fbtrace_id"]
    assert answer.token_location == token_location
    [event] = answer.events
    assert (event.pixel_id, event.event_name, event.event_id) == (
        "1234567890", "Purchase", "purchase.ORD-1001")
    assert event.extra["action_source"] == "website"
    assert event.page_url.endswith("/thanks/ORD-1001")


def test_test_event_code_is_kept():
    answer = META.handle_server(recorded("meta/server_gzip_json_with_test_code"))
    assert answer.events[0].extra["test_event_code"] == "TEST123"


@pytest.mark.parametrize("name, reason", [
    ("meta/server_truncated_json", "not valid JSON"),
    ("meta/server_empty_body", "empty"),
])
def test_malformed_server_bodies_answer_like_meta(name, reason):
    answer = META.handle_server(recorded(name))
    assert answer.status == 400
    error = answer.body["error"]
    assert error["type"] == "OAuthException" and error["code"] == 100
    assert error["fbtrace_id"]
    [event] = answer.events
    assert not event.decoded and reason in event.error
    assert event.pixel_id == "1234567890"


def test_batch_of_events_and_numeric_event_id():
    data = [valid_event(1001), valid_event("lead.1", "Lead")]
    answer = META.handle_server(_server(json.dumps({"data": data}).encode(),
                                        query="?access_token=x"))
    assert answer.status == 200 and answer.body["events_received"] == 2
    assert [e.event_id for e in answer.events] == ["1001", "lead.1"]


@pytest.mark.parametrize("body, content_type, reason", [
    (b"data=not-json&access_token=x", "application/x-www-form-urlencoded",
     "not a JSON array"),
    (b'{"data": {"event_name": "Purchase"}}', "application/json", "not an array"),
    (b'{"data": []}', "application/json", "empty array"),
    (b'{"data": ["Purchase"]}', "application/json", "not a JSON object; Meta expects"),
    (b'{"data": [{"event_time": 1}]}', "application/json", "no event_name"),
    (b"\xff\xfe\x00garbage", "application/octet-stream", "UTF-8"),
    (b"[1, 2]", "application/json", "not a JSON object"),
])
def test_invalid_payloads_get_a_400_and_an_undecodable_event(body, content_type, reason):
    answer = META.handle_server(_server(body, content_type))
    assert answer.status == 400, answer.body
    assert "error" in answer.body
    assert any(reason in (e.error or "") for e in answer.events), [e.error for e in
                                                                    answer.events]


def test_gzip_json_and_a_two_megabyte_body_decode():
    data = [valid_event(f"p.{i}", custom_data={"blob": "x" * 2000}) for i in range(1000)]
    raw = json.dumps({"data": data}).encode()
    assert len(raw) > 2_000_000
    answer = META.handle_server(_server(gzip.compress(raw),
                                        headers=[("Content-Encoding", "gzip")]))
    assert answer.status == 200 and answer.body["events_received"] == 1000


def test_dedup_key_is_exact_bytes():
    [event] = META.decode_browser(recorded("meta/browser_get_docs_example"))
    assert META.dedup_key(event) == ("123456", "Purchase", "ORD-1001")
    event.event_id = None
    assert META.dedup_key(event) is None
