"""Snapchat (Snap Pixel + Snap Conversions API): the decoder on recorded samples and on
malformed input, the API's answers for each error, the dedup key, the PII rules,
identity, Snap's own findings, the sink over real sockets (urllib and Snap's own
Python SDK), the shop's tracker, and the pixel stand-in in a real Chromium."""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.findings import CATALOGUE
from pytest_pixelcheck.matching import MatchResult, Pair, match_events
from pytest_pixelcheck.platforms.snapchat import SNAPCHAT, pii_rules
from pytest_pixelcheck.platforms.snapchat.findings import snapchat_findings
from pytest_pixelcheck.sink import ConversionSink

SAMPLES_DIR = Path(SNAPCHAT.samples_dir or ".")
SAMPLES = sorted(SAMPLES_DIR.glob("*.json"))
TOKEN = "snap-test-token-0123456789"
PIXEL = "a1b2c3d4-0000-4000-8000-5a9c0ffee001"
HEX = "a" * 64
SCID = "5e3c2a57-98a4-4b1e-a1f2-0c7d3b9e6f10"
HIT_URL = "https://tr.snapchat.com/p"
V3_URL = f"https://tr.snapchat.com/v3/{PIXEL}/events?access_token={TOKEN}"
V2_URL = "https://tr.snapchat.com/v2/conversion"


# --- helpers ----------------------------------------------------------------------------


def captured(url: str, body: bytes | str, *, headers: list[tuple[str, str]] | None = None,
             arrival: float | None = None, method: str = "POST") -> CapturedRequest:
    data = body.encode() if isinstance(body, str) else body
    return CapturedRequest(method, url, headers if headers is not None else
                           [("Content-Type", "application/json")],
                           data, arrival if arrival is not None else time.time(), "proxy")


def v3_body(**item: Any) -> dict[str, Any]:
    event = {"event_name": "PURCHASE", "event_time": int(time.time()),
             "event_id": "purchase.ORD-1", "action_source": "WEB",
             "event_source_url": "https://shop.example/thanks/ORD-1",
             "user_data": {"em": [HEX], "ph": [HEX], "client_ip_address": "203.0.113.7",
                           "client_user_agent": "Mozilla/5.0", "sc_cookie1": SCID,
                           "sc_click_id": "click-1"},
             "custom_data": {"value": 25.0, "currency": "USD", "order_id": "ORD-1",
                             "content_ids": ["sku-1"]}}
    event.update(item)
    return {"data": [event]}


def v2_body(**item: Any) -> list[dict[str, Any]]:
    event = {"pixel_id": PIXEL, "event_type": "PURCHASE", "event_conversion_type": "WEB",
             "timestamp": str(int(time.time() * 1000)), "hashed_email": HEX,
             "uuid_c1": SCID, "client_dedup_id": "purchase.ORD-1", "price": "25.0",
             "currency": "USD", "transaction_id": "ORD-1"}
    event.update(item)
    return [event]


def server(body: Any, url: str = V3_URL, **kw: Any):
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    if url.startswith(V2_URL) and "headers" not in kw:
        kw["headers"] = [("Content-Type", "application/json"),
                         ("Authorization", f"Bearer {TOKEN}")]
    return SNAPCHAT.handle_server(captured(url, text, **kw))


def hit(*events: dict[str, Any], ctx: dict[str, Any] | None = None) -> str:
    return json.dumps({"ctx": ctx if ctx is not None else
                       {"v": "3.53.0", "pl": "https://shop.example/thanks?ScCid=click-1",
                        "rf": ""},
                       "req": [{"t": e} for e in events]})


def t(**fields: Any) -> dict[str, Any]:
    base = {"pid": PIXEL, "ev": "PURCHASE", "ts": 1795911810118, "cdid": "purchase.ORD-1",
            "u_c1": "6a1145c7-e086-4d0b-a6c3-65a8977f9153", "e_pr": "25",
            "e_cur": "USD", "e_tid": "ORD-1", "e_iids": "sku-1", "e_ni": "2",
            "u_hem": HEX}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def decode(body: bytes | str, url: str = HIT_URL, method: str = "POST") -> list[Event]:
    return SNAPCHAT.decode_browser(captured(url, body, method=method, headers=[
        ("content-type", "text/plain;charset=UTF-8")]))


def _sample(stem: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / f"{stem}.json").read_text(encoding="utf-8"))


# --- recorded samples ---------------------------------------------------------------------


def test_the_package_registers_snapchat() -> None:
    assert platforms.get("snapchat") is SNAPCHAT
    assert SNAPCHAT.title == "Snapchat"
    assert "tr.snapchat.com" in SNAPCHAT.server_hosts
    assert "access_token" in SNAPCHAT.secret_params
    assert SNAPCHAT.max_event_age == 37 * 86400
    assert {"snap-auto-dedup-id", "sc-cookie1-unstable", "sc-click-id-missing"} <= set(
        CATALOGUE)


def test_samples_cover_what_the_brief_asks() -> None:
    names = {p.stem for p in SAMPLES}
    assert {"browser-page-view-and-purchase", "browser-purchase-auto-dedup-id",
            "browser-init-tr6", "browser-config", "browser-cookie-match",
            "server-v2-sdk-purchase", "server-v3-json-purchase", "server-v3-unhashed-email",
            "server-v3-stale-event-time", "server-v3-missing-token",
            "server-v3-missing-action-source"} <= names
    # nothing in a sample names this machine
    for path in SAMPLES:
        text = path.read_text(encoding="utf-8")
        assert "127.0.0.1" not in text and "localhost" not in text, path.name


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_decodes_and_is_answered_as_recorded(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    request = CapturedRequest.from_dict({**sample["request"], "channel": "proxy"})
    expect = sample["expect"]
    if sample["kind"] == "browser":
        events = SNAPCHAT.decode_browser(request)
        assert SNAPCHAT.collection_response(request).status == expect["status"]
        assert [bool(e.extra.get("not_a_conversion")) for e in events] == \
            expect["not_a_conversion"]
    else:
        answer = SNAPCHAT.handle_server(request)
        events = answer.events
        assert answer.status == expect["status"], answer.body
        if "reason" in expect:
            assert expect["reason"] in answer.body["reason"]
        rejected = [bool(e.extra.get("rejected_by_platform")) for e in events]
        assert rejected == [bool(expect.get("rejected"))] * len(events)
        if "test_event_code" in expect:
            assert SNAPCHAT.test_event_code(events[0]) == expect["test_event_code"]
    got = [{"event_name": e.event_name, "event_id": e.event_id, "pixel_id": e.pixel_id}
           for e in events]
    assert got == expect["events"]
    assert all(e.decoded for e in events) != bool(expect.get("undecodable"))


def test_browser_batch_sample_fields() -> None:
    sample = _sample("browser-page-view-and-purchase")
    page_view, purchase = SNAPCHAT.decode_browser(CapturedRequest.from_dict(sample["request"]))
    assert purchase.value == 25.0 and purchase.custom_data["currency"] == "USD"
    assert purchase.custom_data["content_ids"] == ["sku-1"]
    assert purchase.custom_data["num_items"] == 2
    assert purchase.extra["transaction_id"] == "ORD-1"
    assert purchase.extra["sc_click_id"] == "pixelcheck-ScCid-0123"
    assert abs(purchase.event_time - purchase.raw.arrival_time) < 5
    assert page_view.extra["u_c1"] == purchase.extra["u_c1"]
    # the library hashed what snaptr('init') got, exactly as Snap's own SDK hashes it
    sdk = json.loads(_sample("server-v2-sdk-purchase")["request"]["body"])[0]
    assert purchase.user_data["u_hem"] == sdk["hashed_email"]
    assert purchase.user_data["u_hpn"] == sdk["hashed_phone_number"]
    assert SNAPCHAT.customer_values(purchase) == {"em": [sdk["hashed_email"]],
                                                  "ph": [sdk["hashed_phone_number"]]}


def test_sdk_sample_is_snaps_own_client() -> None:
    request = _sample("server-v2-sdk-purchase")["request"]
    headers = dict(request["headers"])
    assert headers["User-Agent"] == "BusinessSDK/Python/1.0.0"
    assert headers["Authorization"] == "Bearer REDACTED"
    (event,) = SNAPCHAT.handle_server(CapturedRequest.from_dict(request)).events
    assert event.extra["api"] == "v2" and event.extra["integration"] == "business-sdk"
    assert event.event_time == 1795910491.0  # the SDK's milliseconds, read as seconds
    assert event.extra["sc_cookie1"] == "5e3c2a57-98a4-4b1e-a1f2-0c7d3b9e6f10"
    assert set(SNAPCHAT.customer_values(event)) == {"em", "ph", "fn", "ln", "ct", "zp"}
    for key, raw in (("em", " Jane.Doe@Example.com "), ("ph", "+1 (650) 555-1212"),
                     ("fn", "Jane"), ("ln", "Doe"), ("ct", "Menlo Park"), ("zp", "94025")):
        assert SNAPCHAT.customer_values(event)[key] == [SNAPCHAT.expected_value(key, raw)]


# --- browser decoder ------------------------------------------------------------------------


def test_collection_hosts_and_paths() -> None:
    for host, path in [("tr.snapchat.com", "/p"), ("tr6.snapchat.com", "/p"),
                       ("tr.snapchat.com", "/config/1/abc.json"),
                       ("tr.snapchat.com", "/cm/i"), ("tr.snapchat.com", "/cm/p")]:
        assert SNAPCHAT.is_collection(host, path), (host, path)
    for host, path in [("tr.snapchat.com", "/v3/x/events"), ("sc-static.net", "/p"),
                       ("tr.snapchat.com", "/"), ("www.snapchat.com", "/p")]:
        assert not SNAPCHAT.is_collection(host, path), (host, path)


def test_library_stand_in_and_answers() -> None:
    lib = SNAPCHAT.library_response("sc-static.net", "/scevent.min.js")
    assert lib is not None and b"snaptr" in lib.body and b"sendBeacon" in lib.body
    assert SNAPCHAT.library_response("sc-static.net", "/other.js") is None
    assert SNAPCHAT.library_response("connect.facebook.net", "/en_US/fbevents.js") is None
    config = SNAPCHAT.collection_response(captured(
        "https://tr.snapchat.com/config/1/PIX.json", b"", method="GET"))
    assert json.loads(config.body)["pixel_id"] == "PIX"
    frame = SNAPCHAT.collection_response(captured("https://tr.snapchat.com/cm/i?pid=PIX", b""))
    assert frame.content_type == "text/html"


def test_hit_fields_and_several_events_in_one_request() -> None:
    events = decode(hit(t(ev="PAGE_VIEW", cdid="pv.1", e_pr=None, e_tid=None), t()))
    assert [(e.event_name, e.event_id, e.pixel_id) for e in events] == [
        ("PAGE_VIEW", "pv.1", PIXEL), ("PURCHASE", "purchase.ORD-1", PIXEL)]
    purchase = events[1]
    assert purchase.event_time == pytest.approx(1795911810.118)
    assert purchase.page_url == "https://shop.example/thanks?ScCid=click-1"
    assert purchase.extra["sc_click_id"] == "click-1"
    assert purchase.extra["library_version"] == "3.53.0"
    assert purchase.user_data["u_hem"] == HEX and purchase.extra["index"] == 1


def test_auto_filled_cdid_is_kept_aside() -> None:
    (event,) = decode(hit(t(cdid="@-aa1200fa-dbc4-419a-8767-78134456b765")))
    assert event.event_id is None and event.decoded
    assert event.extra["auto_dedup_id"].startswith("@-")
    assert "client_dedup_id" in SNAPCHAT.fix("missing-event-id", event)
    assert "'@-<uuid>'" in SNAPCHAT.fix("missing-event-id", event)


def test_omnibug_form_encoded_hit_is_read() -> None:
    """The 1.4 library's form body (Omnibug's sample): one event, the same keys."""
    body = ("pid=b2ade379-a55e-4ca7-893b-b9fac04c843f&ev=PAGE_VIEW&pl=https%3A%2F%2Fomnibug"
            ".io%2F&ts=1583875341291&rf=&v=1.4&if=false&bt=__LIVE__&e_desc=Example+Page&"
            "u_hem=f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a&u_hpn="
            "009875cdd7e8a0abe6dc0444d693ff435599e9c68793dac5bc277066d4bc0dc3&u_c1=842d7ddb-"
            "e7ea-478c-85a7-cd256905dd2c")
    (event,) = decode(body)
    assert (event.event_name, event.pixel_id) == ("PAGE_VIEW",
                                                  "b2ade379-a55e-4ca7-893b-b9fac04c843f")
    assert event.event_id is None and event.page_url == "https://omnibug.io/"
    assert SNAPCHAT.customer_values(event) == {
        "em": [pii_rules.sha256_hex("test@test.com")], "ph": [pii_rules.sha256_hex("15555555555")]}


def test_query_string_hit_is_read() -> None:
    (event,) = decode(b"", url=f"{HIT_URL}?pid={PIXEL}&ev=SIGN_UP&cdid=su.1", method="GET")
    assert (event.event_name, event.event_id) == ("SIGN_UP", "su.1")


@pytest.mark.parametrize("url,label", [
    ("https://tr6.snapchat.com/p", "(pixel init)"),
    (f"https://tr.snapchat.com/config/1/{PIXEL}.json", "(pixel config)"),
    (f"https://tr.snapchat.com/cm/i?pid={PIXEL}", "(cookie match)"),
], ids=["init", "config", "cookie-match"])
def test_requests_that_are_not_conversions_are_kept_but_never_paired(url: str,
                                                                      label: str) -> None:
    body = hit({"pid": PIXEL, "ts": 1795911810118}) if "tr6" in url else b""
    (event,) = decode(body, url=url, method="POST" if "tr6" in url else "GET")
    assert event.decoded and event.extra["not_a_conversion"]
    assert event.event_name == label and event.pixel_id == PIXEL
    assert SNAPCHAT.dedup_key(event) is None
    assert match_events([event]).browser_only == []


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe\x00garbage", b"[]", b"[1, 2]", b"42", b'"a string"',
    b'{"ctx": {}, "req": []}', b'{"ctx": {}, "req": "nope"}', b'{"ctx": 5, "req": [5]}',
    b'{"req": [{"t": {"ev": "PURCHASE"}}]}', b'{"req": [{"t": {"pid": "X"}}]}',
    b'{"req": [{"t": {"ev": ["list"], "pid": {"a": 1}, "ts": "soon", "e_pr": [1]}}]}',
    b'{"nothing": "here"}', b"=&=&", gzip.compress(b"{}", mtime=0)[:10],
    hit(t(ts="yesterday", e_ni="many", e_iids=5)).encode(),
], ids=lambda b: repr(b[:20]))
def test_browser_decoder_never_raises(body: bytes) -> None:
    events = SNAPCHAT.decode_browser(captured(HIT_URL, body, headers=[
        ("content-type", "text/plain;charset=UTF-8")]))
    assert events and all(isinstance(e, Event) and e.source == "browser" for e in events)
    for event in events:
        assert event.decoded or isinstance(event.error, str)


def test_gzip_hit() -> None:
    body = gzip.compress(hit(t()).encode())
    (event,) = SNAPCHAT.decode_browser(captured(HIT_URL, body, headers=[
        ("content-type", "text/plain"), ("content-encoding", "gzip")]))
    assert event.event_id == "purchase.ORD-1"


# --- the Snap Conversions API's answers ----------------------------------------------------


def test_good_v3_call_is_valid() -> None:
    answer = server(v3_body())
    assert answer.status == 200
    assert answer.body == {"status": "VALID",
                           "reason": "Events have been processed successfully."}
    assert answer.token == TOKEN and answer.token_location == "query"
    (event,) = answer.events
    assert (event.event_name, event.event_id, event.pixel_id) == ("PURCHASE",
                                                                   "purchase.ORD-1", PIXEL)
    assert event.value == 25.0 and event.extra["sc_cookie1"] == SCID
    assert "rejected_by_platform" not in event.extra


def test_bearer_token_is_read_too() -> None:
    url = V3_URL.split("?")[0]
    answer = server(v3_body(), url=url, headers=[("Content-Type", "application/json"),
                                                 ("Authorization", f"Bearer {TOKEN}")])
    assert answer.status == 200 and answer.token == TOKEN
    assert answer.token_location == "header"


def test_missing_token_is_401() -> None:
    answer = server(v3_body(), url=V3_URL.split("?")[0])
    assert answer.status == 401 and answer.body["status"] == "INVALID"
    assert "access_token" in answer.body["reason"] and answer.token is None
    assert answer.events[0].event_id == "purchase.ORD-1"  # decoded all the same


@pytest.mark.parametrize("field,value,where", [
    ("em", ["jane@example.com"], "data[0].user_data.em[0]"),
    ("em", "jane@example.com", "data[0].user_data.em"),
    ("ph", ["16505551212"], "data[0].user_data.ph[0]"),
])
def test_unhashed_email_or_phone_is_refused(field: str, value: Any, where: str) -> None:
    body = v3_body()
    body["data"][0]["user_data"][field] = value
    answer = server(body)
    assert answer.status == 400 and answer.body["status"] == "INVALID"
    assert answer.body["reason"].startswith("Unhashed PII") and where in answer.body["reason"]
    assert answer.body["errors"]["codes"] == ["UNHASHED_PII"] and answer.body["event"] == 0
    # the answer lands in reports: it names the field, never the customer's value
    assert "jane@" not in json.dumps(answer.body) and "6505551212" not in json.dumps(
        answer.body)


def test_hashed_upper_case_and_empty_values_pass() -> None:
    body = v3_body()
    body["data"][0]["user_data"].update(em=["A" * 64], ph="")
    assert server(body).status == 200


def test_stale_event_time_is_refused_after_37_days() -> None:
    answer = server(v3_body(event_time=int(time.time()) - 38 * 86400))
    assert answer.status == 400
    assert answer.body["reason"].startswith("Timestamp invalid or out of range")
    assert "data[0].event_time" in answer.body["reason"]
    assert server(v3_body(event_time=int(time.time()) - 36 * 86400)).status == 200


def test_event_time_in_milliseconds_is_read_as_seconds() -> None:
    now = time.time()
    (event,) = server(v3_body(event_time=int(now * 1000))).events
    assert event.event_time == pytest.approx(now, abs=2)
    assert event.extra["event_time_unit"] == "milliseconds"


@pytest.mark.parametrize("change,words", [
    (lambda e: e.pop("event_name"), "Missing required field: data[0].event_name"),
    (lambda e: e.pop("event_time"), "Missing required field: data[0].event_time"),
    (lambda e: e.pop("action_source"), "Missing required field: data[0].action_source"),
    (lambda e: e.pop("user_data"), "Missing required field: data[0].user_data"),
    (lambda e: e.update(event_time="1700000000"), "data[0].event_time"),
    (lambda e: e.update(action_source="TELEPATHY"), "action_source"),
    (lambda e: e.update(user_data={"sc_cookie1": SCID}), "Insufficient PII"),
    (lambda e: e.pop("event_source_url"), "event_source_url"),
    (lambda e: e["custom_data"].update(currency="dollars"), "data[0].custom_data.currency"),
], ids=["no-name", "no-time", "no-action-source", "no-user-data", "time-as-string",
        "bad-action-source", "insufficient-pii", "no-source-url", "bad-currency"])
def test_missing_or_bad_fields_are_400_invalid(change: Any, words: str) -> None:
    body = v3_body()
    change(body["data"][0])
    answer = server(body)
    assert answer.status == 400 and answer.body["status"] == "INVALID", answer.body
    assert words in answer.body["reason"], answer.body
    assert answer.body["errors"]["error_msgs"] and answer.body["errors"]["codes"]


def test_action_source_and_event_name_any_case() -> None:
    for source in ("WEB", "web", "website"):
        assert server(v3_body(action_source=source, event_name="purchase")).status == 200


@pytest.mark.parametrize("body,words", [
    (b"{not json", "not valid JSON"), (b"", "empty"), (b"[1]", "must be object"),
    (json.dumps({"data": []}), "data"), (json.dumps({"data": ["a string"]}), "data[0]"),
], ids=["bad-json", "empty", "list", "no-events", "str-item"])
def test_malformed_calls_are_400_and_never_raise(body: Any, words: str) -> None:
    answer = server(body)
    assert answer.status == 400 and answer.body["status"] == "INVALID", answer.body
    assert words in answer.body["reason"]
    assert answer.events


def test_huge_batches_are_refused() -> None:
    body = v3_body()
    body["data"] = body["data"] * 2001
    answer = server(body)
    assert answer.status == 400 and "2000" in answer.body["reason"]
    assert len(answer.events) == 2001


def test_validate_endpoint_never_records() -> None:
    url = f"https://tr.snapchat.com/v3/{PIXEL}/events/validate?access_token={TOKEN}"
    assert SNAPCHAT.is_server_api("tr.snapchat.com", urlsplit(url).path)
    answer = server(v3_body(), url=url)
    assert answer.status == 200 and answer.body["test_event"] is True
    assert answer.body["event_logs"][0]["status"] == "VALID"
    assert "validates" in answer.events[0].extra["rejected_by_platform"]


def test_test_event_code_top_level_in_event_or_query() -> None:
    assert SNAPCHAT.test_event_code(server({**v3_body(), "test_event_code": "T1"}).events[0]) \
        == "T1"
    inside = v3_body(test_event_code="T2")
    assert SNAPCHAT.test_event_code(server(inside).events[0]) == "T2"
    (event,) = server(v3_body(), url=V3_URL + "&test_event_code=T3").events
    assert SNAPCHAT.test_event_code(event) == "T3"
    assert SNAPCHAT.test_event_code(server(v3_body()).events[0]) is None


def test_v2_calls_of_snaps_sdk() -> None:
    answer = server(v2_body(), url=V2_URL)
    assert answer.status == 200 and answer.body["status"] == "SUCCESS"
    assert answer.token == TOKEN and answer.token_location == "header"
    (event,) = answer.events
    assert (event.event_name, event.event_id, event.pixel_id) == ("PURCHASE",
                                                                   "purchase.ORD-1", PIXEL)
    assert event.value == 25.0 and event.extra["transaction_id"] == "ORD-1"
    bad = server(v2_body(hashed_email="jane@example.com"), url=V2_URL)
    assert bad.status == 400 and bad.body["status"] == "FAILED"
    assert bad.body["error_records"][0]["record_indexes"] == [0]
    assert "Unhashed PII: [0].hashed_email" in bad.body["reason"]
    assert server(v2_body(), url=V2_URL, headers=[("Content-Type", "application/json")]
                  ).status == 401
    missing = v2_body()
    del missing[0]["event_type"]
    assert "event_type" in server(missing, url=V2_URL).body["reason"]
    assert SNAPCHAT.is_server_api("tr.snapchat.com", "/v2/conversion/validate")


def test_server_api_paths() -> None:
    assert SNAPCHAT.is_server_api(None, f"/v3/{PIXEL}/events")
    assert SNAPCHAT.is_server_api("tr.snapchat.com", f"/v3/{PIXEL}/events/")
    assert not SNAPCHAT.is_server_api("graph.facebook.com", f"/v3/{PIXEL}/events")
    assert not SNAPCHAT.is_server_api(None, "/v21.0/123/events")
    assert not SNAPCHAT.is_server_api("tr.snapchat.com", "/p")


def test_fault_answers_transient_and_answer_text() -> None:
    request = captured(V3_URL, json.dumps(v3_body()))
    got = {kind: SNAPCHAT.error_answer(kind, request) for kind in
           ("missing_token", "invalid_token", "expired_token", "429", "transient",
            "timeout", "500")}
    assert {k: s for k, (s, _) in got.items()} == {
        "missing_token": 401, "invalid_token": 401, "expired_token": 401, "429": 429,
        "transient": 503, "timeout": 504, "500": 500}
    assert all(b["status"] == "INVALID" and b["errors"]["codes"] for _, b in got.values())
    v2_status, v2 = SNAPCHAT.error_answer("invalid_token", captured(V2_URL, "[]"))
    assert v2_status == 401 and v2["status"] == "FAILED"
    for kind, transient in (("429", True), ("transient", True), ("500", True),
                            ("invalid_token", False)):
        status, body = got[kind]
        event = Event("snapchat", "server", PIXEL, "PURCHASE", "x", None, 0.0,
                      raw=captured(V3_URL, "{}"))
        event.raw.response_status, event.raw.response_body = status, json.dumps(body).encode()
        assert SNAPCHAT.is_transient(event) is transient, kind
        assert SNAPCHAT.answer_text(event).startswith("INVALID: ")


# --- dedup ----------------------------------------------------------------------------------


def test_browser_and_server_share_the_key() -> None:
    (browser,) = decode(hit(t()))
    (srv,) = server(v3_body()).events
    assert SNAPCHAT.dedup_key(browser) == SNAPCHAT.dedup_key(srv) == (
        PIXEL, "PURCHASE", "purchase.ORD-1")
    lower = server(v3_body(event_name="purchase")).events[0]
    assert SNAPCHAT.dedup_key(lower) == SNAPCHAT.dedup_key(browser)
    (v2,) = server(v2_body(), url=V2_URL).events
    assert SNAPCHAT.dedup_key(v2) == SNAPCHAT.dedup_key(browser)
    assert SNAPCHAT.dedup_key(server(v3_body(event_id="")).events[0]) is None
    assert "client_dedup_id" in SNAPCHAT.dedup_rule() and "transaction_id" in \
        SNAPCHAT.dedup_rule()


def test_purchase_falls_back_on_transaction_id() -> None:
    (browser,) = decode(hit(t(cdid="@-aa1200fa-dbc4-419a-8767-78134456b765")))
    (srv,) = server(v3_body(event_id="ORD-1")).events
    assert SNAPCHAT.dedup_key(browser) == SNAPCHAT.dedup_key(srv) == (PIXEL, "PURCHASE",
                                                                       "ORD-1")
    assert len(match_events([browser, srv]).pairs) == 1
    (view,) = decode(hit(t(ev="VIEW_CONTENT", cdid=None)))
    assert SNAPCHAT.dedup_key(view) is None  # only PURCHASE has the fallback


def test_name_variant() -> None:
    text = SNAPCHAT.name_variant("PURCHASE", "purchase")
    assert text and "'PURCHASE'" in text and "'purchase'" in text
    assert SNAPCHAT.name_variant("PURCHASE", "PURCHASE") is None
    assert SNAPCHAT.name_variant("PURCHASE", "ADD_CART") is None


def test_fix_texts_in_snap_words() -> None:
    (browser,) = decode(hit(t(cdid=None)))
    (srv,) = server(v3_body(event_id="")).events
    assert "client_dedup_id" in SNAPCHAT.fix("missing-event-id", browser)
    assert "data[].event_id" in SNAPCHAT.fix("missing-event-id", srv)
    for code in ("near-miss-event-id", "event-name-mismatch", "wrong-pixel",
                 "server-event-missing", "browser-event-missing", "raw-pii-in-user-data",
                 "unnormalized-hash", "test-event-code", "server-call-rejected",
                 "event-time-too-old", "duplicate-browser-trigger", "payload-mismatch"):
        text = SNAPCHAT.fix(code, srv)
        assert text and "fbq" not in text, code
        assert "snaptr" in text or "snap" in text.lower(), code
    assert "no '+'" in SNAPCHAT.fix("unnormalized-hash", srv)
    assert SNAPCHAT.fix("no-such-code") is None


# --- customer data --------------------------------------------------------------------------


@pytest.mark.parametrize("key,raw,normalized,digest", pii_rules.TEST_VECTORS)
def test_pii_vectors(key: str, raw: str, normalized: str, digest: str) -> None:
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == digest == hashlib.sha256(
        normalized.encode()).hexdigest()
    assert SNAPCHAT.expected_value(key, raw) == digest


def test_pii_rules() -> None:
    # the '+' split of section 10: Snap hashes the digits alone, TikTok keeps the '+'
    assert pii_rules.hash_value("ph", "+16505551212") != pii_rules.PHONE_WITH_PLUS_SHA256
    assert pii_rules.normalize("u_hpn", "0044 20 7946 0958") == "442079460958"
    assert pii_rules.normalize("hashed_email", "  Jane.Doe@Example.COM ") == \
        "jane.doe@example.com"
    assert pii_rules.normalize("ct", " Menlo Park ") == "menlo park"
    assert pii_rules.normalize("country", " US ") == "us"
    assert pii_rules.normalize("ge", "Female") == "f"
    assert pii_rules.hash_value("em", "A" * 64) == "a" * 64  # already hashed: kept
    assert pii_rules.hash_value("sc_cookie1", SCID) == SCID  # never hashed
    assert {"sc_cookie1", "sc_click_id", "client_ip_address",
            "client_user_agent"} == set(pii_rules.NEVER_HASHED)
    assert SNAPCHAT.expected_value("sc_cookie1", SCID) is None
    assert {"em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge",
            "external_id"} == SNAPCHAT.hashed_keys


def test_customer_values_for_each_shape() -> None:
    (v3,) = server(v3_body()).events
    assert SNAPCHAT.customer_values(v3) == {"em": [HEX], "ph": [HEX]}
    scalar = v3_body()
    scalar["data"][0]["user_data"].update(fn=HEX, external_id=[HEX])
    assert set(SNAPCHAT.customer_values(server(scalar).events[0])) == {"em", "ph", "fn",
                                                                      "external_id"}
    (browser,) = decode(hit(t(u_hpn=HEX)))
    assert SNAPCHAT.customer_values(browser) == {"em": [HEX], "ph": [HEX]}


# --- identity -------------------------------------------------------------------------------


def _pair(browser_extra: dict[str, Any], server_extra: dict[str, Any],
          page: str = "https://shop.example/thanks") -> Pair:
    (browser,) = decode(hit(t()))
    (srv,) = server(v3_body()).events
    browser.page_url = page
    browser.extra.update(browser_extra)
    srv.extra.update(server_extra)
    return Pair(browser, srv)


def test_pair_identity_findings() -> None:
    assert SNAPCHAT.identity_findings(_pair({"sc_click_id": "c1"},
                                            {"sc_click_id": "c1", "sc_cookie1": SCID})) == []
    found = SNAPCHAT.identity_findings(_pair({"sc_click_id": "c1"},
                                             {"sc_click_id": "c2",
                                              "sc_cookie1": pii_rules.sha256_hex(SCID)}))
    assert [f.code for f in found] == ["sc-click-id-mismatch", "sc-cookie1-hashed"]
    assert found[0].severity == "error" and found[0].platform == "snapchat"
    hashed = SNAPCHAT.identity_findings(_pair({"sc_click_id": "c1"},
                                              {"sc_click_id": pii_rules.sha256_hex("c1")}))
    assert "SHA-256 of the ScCid" in hashed[0].message
    # u_c1 is not the _scid value, and that is never a finding
    assert SNAPCHAT.identity_findings(_pair({"u_c1": "other"}, {"sc_cookie1": SCID})) == []


def test_capture_identity_findings() -> None:
    """Missing ids are judged over the capture: on the page where the pixel first ran
    the backend cannot have _scid; on a later page it must, and the click id the
    visitor landed with must come along."""
    first = _pair({"sc_click_id": "c1"}, {"sc_cookie1": None, "sc_click_id": "c1"},
                  page="https://shop.example/product/sku-1?ScCid=c1")
    later = _pair({"sc_click_id": None}, {"sc_cookie1": None, "sc_click_id": None})
    later.browser.arrival_time = first.browser.arrival_time + 1
    events = [first.browser, first.server, later.browser, later.server]
    result = MatchResult(pairs=[first, later], events=events)
    found = {(f.code, f.events[0].page_url) for f in SNAPCHAT.findings(result)}
    assert found == {("sc-cookie1-missing", "https://shop.example/thanks"),
                     ("sc-click-id-missing", "https://shop.example/thanks")}
    later.server.extra["sc_click_id"] = "other"
    codes = [f.code for f in SNAPCHAT.findings(result)]
    assert "sc-click-id-mismatch" in codes


def test_unstable_cookie1_is_found() -> None:
    pairs = [_pair({}, {"sc_cookie1": SCID}, page=f"https://shop.example/p{i}")
             for i in range(3)]
    odd = _pair({}, {"sc_cookie1": "f" * 8 + "-new"}, page="https://shop.example/thanks")
    result = MatchResult(pairs=[*pairs, odd],
                         events=[e for p in [*pairs, odd] for e in (p.browser, p.server)])
    (found,) = [f for f in SNAPCHAT.findings(result) if f.code == "sc-cookie1-unstable"]
    assert found.events == [odd.browser, odd.server] and "3 of them" in found.message


# --- Snap's own findings --------------------------------------------------------------------


def test_auto_dedup_id_finding() -> None:
    (browser,) = decode(hit(t(cdid="@-aa1200fa-dbc4-419a-8767-78134456b765")))
    (srv,) = server(v3_body()).events
    result = match_events([browser, srv], "snapchat")
    (found,) = [f for f in snapchat_findings(result) if f.code == "snap-auto-dedup-id"]
    assert "'@-aa1200fa" in found.message and "never equal" in found.message
    assert found.events == [browser, srv]
    assert any("transaction_id: 'ORD-1'" in d for d in found.details)
    assert "client_dedup_id" in found.fix and "fbq" not in found.fix
    # the transaction_id fallback merged it: nothing to say
    (fallback,) = server(v3_body(event_id="ORD-1")).events
    merged = match_events([browser, fallback], "snapchat")
    assert not [f for f in snapchat_findings(merged) if f.code == "snap-auto-dedup-id"]


def test_name_case_and_shared_cdid_findings() -> None:
    (browser,) = decode(hit(t()))
    (srv,) = server(v3_body(event_name="purchase")).events
    result = match_events([browser, srv], "snapchat")
    assert len(result.pairs) == 1
    (case,) = [f for f in snapchat_findings(result) if f.code == "snap-event-name-case"]
    assert case.severity == "info" and "'PURCHASE'" in case.fix
    shared = decode(hit(t(ev="ADD_CART"), t(ev="PURCHASE")))
    result = match_events(shared, "snapchat")
    (found,) = [f for f in snapchat_findings(result) if f.code == "snap-cdid-shared"]
    assert "ADD_CART, PURCHASE" in found.message


# --- backend logs ---------------------------------------------------------------------------


def test_from_backend_log() -> None:
    record = {**v3_body(), "pixel_id": PIXEL}
    request = SNAPCHAT.from_backend_log(record)
    assert request is not None and f"/v3/{PIXEL}/events" in request.url
    (event,) = SNAPCHAT.handle_server(request).events
    assert event.event_id == "purchase.ORD-1" and event.pixel_id == PIXEL
    v2 = SNAPCHAT.from_backend_log({"data": v2_body()})
    assert v2 is not None and v2.url.endswith("/v2/conversion")
    assert SNAPCHAT.handle_server(v2).status == 200
    assert SNAPCHAT.from_backend_log(v3_body()) is None  # no pixel: not provably Snap's
    assert SNAPCHAT.from_backend_log({**v3_body(),
                                      "url": "https://graph.facebook.com/v21.0/1/events"}) \
        is None
    assert SNAPCHAT.from_backend_log({"events": []}) is None


# --- over real sockets: urllib and Snap's own SDK -------------------------------------------


@pytest.fixture
def sink() -> Iterator[ConversionSink]:
    with ConversionSink(EventStore()) as running:
        yield running


def _post(url: str, body: Any) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sink_answers_v3_over_http(sink: ConversionSink) -> None:
    base = sink.url_for("snapchat") + f"/v3/{PIXEL}/events"
    status, body = _post(f"{base}?access_token={TOKEN}", v3_body())
    assert status == 200 and body["status"] == "VALID"
    bad = v3_body()
    bad["data"][0]["user_data"]["em"] = ["jane@example.com"]
    status, body = _post(f"{base}?access_token={TOKEN}", bad)
    assert status == 400 and body["reason"].startswith("Unhashed PII")
    status, body = _post(f"{base}?access_token={TOKEN}",
                         v3_body(event_time=int(time.time()) - 40 * 86400))
    assert status == 400 and "Timestamp invalid or out of range" in body["reason"]
    sink.expect_token(TOKEN)
    status, body = _post(f"{base}?access_token=wrong", v3_body())
    assert status == 401 and body["status"] == "INVALID"
    status, body = _post(base, v3_body())
    assert status == 401
    events = sink.store.since(0)
    assert all(e.platform == "snapchat" and e.event_id == "purchase.ORD-1" for e in events)
    assert [e.raw.response_status for e in events] == [200, 400, 400, 401, 401]
    assert sink.status_counts[200] == 1


def test_sink_answers_snaps_own_sdk(sink: ConversionSink) -> None:
    pytest.importorskip("snap_business_sdk")
    from snap_business_sdk.public.conversion_api import ConversionApi
    from snap_business_sdk.public.conversion_event import ConversionEvent

    api = ConversionApi(access_token=TOKEN, launchpad_url=sink.url_for("snapchat"))

    def event(**fields: Any) -> Any:
        return ConversionEvent(pixel_id=PIXEL, event_type="PURCHASE",
                               event_conversion_type="WEB",
                               timestamp=str(int(time.time() * 1000)),
                               client_dedup_id="purchase.ORD-9", price="9.5",
                               currency="USD", uuid_c1=SCID, **fields)

    answer = api.send_event_sync(event(email=" A@B.example "))
    assert answer.status == "SUCCESS"
    refused = api.send_event_sync(event(hashed_email="a@b.example"))
    assert refused.get()["status"] == "ERROR" and "400" in refused.get()["reason"]
    ok, rejected = sink.store.since(0)
    assert (ok.event_name, ok.event_id, ok.pixel_id, ok.value) == (
        "PURCHASE", "purchase.ORD-9", PIXEL, 9.5)
    assert ok.user_data["hashed_email"] == pii_rules.hash_value("em", " A@B.example ")
    assert ok.raw.header("User-Agent") == "BusinessSDK/Python/1.0.0"
    assert rejected.raw.response_status == 400


# --- the shop's tracker ---------------------------------------------------------------------


CUSTOMER = Customer(email=" Jane.Doe@Example.COM ", phone="+1 (650) 555-1212",
                    first_name="Jane", last_name="Doe", city="Menlo Park", zip="94025")
PURCHASE_DATA = {"content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                          "item_price": 12.5}],
                 "num_items": 2, "value": 25.0, "currency": "USD", "content_type": "product",
                 "order_id": "ORD-1"}


def _tracked() -> list[TrackedEvent]:
    return [TrackedEvent("PageView", "pageview.1", {}, "https://shop.example/thanks/ORD-1"),
            TrackedEvent("Purchase", "purchase.ORD-1", dict(PURCHASE_DATA),
                         "https://shop.example/thanks/ORD-1")]


def test_tracker_browser_calls() -> None:
    tracker = load_trackers()["snapchat"]
    config = TrackerConfig("snapchat", tracker.default_tag_id, tracker.real_api_url,
                           tracker.default_token)
    head = tracker.head(config, CUSTOMER)
    assert "https://sc-static.net/scevent.min.js" in head
    assert f"snaptr('init', '{tracker.default_tag_id}', {{\"user_email\"" in head
    assert tracker.head(config, None).endswith(f"snaptr('init', '{tracker.default_tag_id}');")
    lines = tracker.browser_calls(config, _tracked(), ActiveFaults(), CUSTOMER)
    assert lines[0] == "snaptr('track', 'PAGE_VIEW', {\"client_dedup_id\": \"pageview.1\"});"
    assert lines[1].startswith("snaptr('track', 'PURCHASE', ")
    assert '"client_dedup_id": "purchase.ORD-1"' in lines[1]
    assert '"transaction_id": "ORD-1"' in lines[1] and '"price": 25.0' in lines[1]
    no_id = tracker.browser_calls(config, _tracked(),
                                  ActiveFaults({"browser_no_dedup_id": None}), CUSTOMER)
    assert "client_dedup_id" not in no_id[-1]
    assert len(tracker.browser_calls(config, _tracked(),
                                     ActiveFaults({"no_browser_purchase": None}),
                                     CUSTOMER)) == 1
    assert set(tracker.faults) >= {"id_mismatch", "missing_id", "unhashed_pii", "stale_time",
                                   "bad_auth", "no_server_purchase"}
    assert tracker.clients == ("json", "snap-business-sdk")


@pytest.mark.parametrize("client", ["json", "snap-business-sdk"])
@pytest.mark.parametrize("fault,status", [
    ("", 200), ("unhashed_pii", 400), ("stale_time", 400), ("bad_auth", 401),
    ("id_mismatch", 200), ("missing_id", 200), ("phone_with_plus", 200), ("scid_new", 200),
    ("scid_hashed", 200), ("click_id_lost", 200), ("name_lowercase", 200),
])
def test_tracker_server_calls_reach_the_sink(sink: ConversionSink, client: str, fault: str,
                                             status: int) -> None:
    if client != "json":
        pytest.importorskip("snap_business_sdk")
    tracker = load_trackers()["snapchat"]
    sink.expect_token(tracker.default_token)
    config = TrackerConfig("snapchat", tracker.default_tag_id, sink.url_for("snapchat"),
                           tracker.default_token, client)
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test",
                         cookies={"_scid": SCID, "_scclid": "click-1"})
    faults = ActiveFaults({fault: None} if fault else {})
    calls = tracker.server_calls(config, _tracked(), faults, ctx, CUSTOMER)
    assert len(calls) == 2
    got, answer = calls[1].send(10.0)
    assert got == status, answer
    assert calls[1].retryable(got, answer) is False
    event = sink.store.since(0)[-1]
    assert event.pixel_id == tracker.default_tag_id and event.value == 25.0
    assert event.extra["api"] == ("v3" if client == "json" else "v2")
    assert event.event_name == ("purchase" if fault == "name_lowercase" else "PURCHASE")
    expected_id = {"id_mismatch": "purchase.ORD-1-server", "missing_id": None}.get(
        fault, "purchase.ORD-1")
    assert event.event_id == expected_id
    cookie1 = event.extra["sc_cookie1"]
    assert (cookie1 == SCID) is (fault not in ("scid_new", "scid_hashed"))
    assert (event.extra["sc_click_id"] == "click-1") is (fault != "click_id_lost")
    values = SNAPCHAT.customer_values(event)
    assert (values["ph"][0] == SNAPCHAT.expected_value("ph", CUSTOMER.phone)) is (
        fault != "phone_with_plus")
    assert (values["em"][0] == SNAPCHAT.expected_value("em", CUSTOMER.email)) is (
        fault != "unhashed_pii")


def test_tracker_page_view_goes_to_both_sides(sink: ConversionSink) -> None:
    tracker = load_trackers()["snapchat"]
    config = TrackerConfig("snapchat", tracker.default_tag_id, sink.url_for("snapchat"),
                           tracker.default_token)
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test", cookies={},
                         page_url="https://shop.example/?ScCid=landing-1")
    (page_view, _) = tracker.server_calls(config, _tracked(), ActiveFaults(), ctx, None)
    assert page_view.send(10.0)[0] == 200
    (event,) = sink.store.since(0)
    assert event.event_name == "PAGE_VIEW" and event.event_id == "pageview.1"
    # the landing page: no _scid yet, the click id from the URL
    assert event.extra["sc_cookie1"] is None and event.extra["sc_click_id"] == "landing-1"


# --- the pixel stand-in in a real Chromium --------------------------------------------------


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def shop_page() -> Iterator[str]:
    from example_site.trackers.snapchat import BASE_CODE

    _Page.html = ("<!doctype html><html><head><script>" + BASE_CODE + f"""
snaptr('init', '{PIXEL}', {{user_email: ' Jane.Doe@Example.COM ',
                            user_phone_number: '+1 (650) 555-1212'}});
snaptr('track', 'PAGE_VIEW', {{client_dedup_id: 'pv.1'}});
snaptr('track', 'PURCHASE', {{price: 25, currency: 'USD', transaction_id: 'ORD-1',
  item_ids: ['sku-1', 'sku-2'], client_dedup_id: 'purchase.ORD-1'}});
snaptr('track', 'ADD_CART', {{price: 5}});
</script></head><body>thanks</body></html>""").encode()
    server_ = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server_.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server_.server_address[1]}/thanks?ScCid=Click42"
    server_.shutdown()


@pytest.mark.browser
def test_stand_in_in_chromium(pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
                              shop_page: str) -> None:
    pixelcheck_page.goto(shop_page)
    event = pixelcheck.wait_for("PURCHASE", source="browser", platform="snapchat")
    pixelcheck.wait_for("(cookie match)", source="browser", platform="snapchat")
    assert (event.pixel_id, event.event_id, event.value) == (PIXEL, "purchase.ORD-1", 25.0)
    assert event.custom_data["content_ids"] == ["sku-1", "sku-2"]
    assert event.raw.header("content-type") == "text/plain;charset=UTF-8"
    assert event.extra["sc_click_id"] == "Click42"
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    assert cookies["_scclid"] == "Click42" and len(cookies["_scid"]) == 36
    assert event.extra["u_c1"] and event.extra["u_c1"] != cookies["_scid"]
    # hashed in the browser exactly as pii_rules hashes: phone digits without the '+'
    assert event.user_data["u_hem"] == pii_rules.hash_value("em", " Jane.Doe@Example.COM ")
    assert event.user_data["u_hpn"] == pii_rules.hash_value("ph", "+1 (650) 555-1212")
    snap = [e for e in pixelcheck.browser_events if e.platform == "snapchat"]
    # the three track calls went out together, one req[] entry each
    batch = [e for e in snap if e.raw is event.raw]
    assert [e.event_name for e in batch] == ["PAGE_VIEW", "PURCHASE", "ADD_CART"]
    add_cart = batch[2]
    assert add_cart.event_id is None and add_cart.extra["auto_dedup_id"].startswith("@-")
    extras = {e.event_name for e in snap if e.extra.get("not_a_conversion")}
    assert extras == {"(pixel init)", "(pixel config)", "(cookie match)"}
