"""TikTok (Pixel + Events API): the decoder on recorded samples, the Events API answers,
the dedup key, the PII rules, the sink over real sockets (urllib and TikTok's own SDK),
the shop's tracker, and the pixel stand-in in a real Chromium."""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.matching import MatchResult, Pair, match_events
from pytest_pixelcheck.platforms.tiktok import TIKTOK, identity, pii_rules
from pytest_pixelcheck.sink import ConversionSink

SAMPLES = sorted(Path(TIKTOK.samples_dir or ".").glob("*.json"))
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tiktok" / "clients"
TOKEN = "tt-test-token-0123456789"
PIXEL = "CPIXEL0TIKTOK1234567"
HEX = "a" * 64


# --- helpers ----------------------------------------------------------------------------


def captured(url: str, body: bytes | str, *, headers: list[tuple[str, str]] | None = None,
             arrival: float | None = None) -> CapturedRequest:
    data = body.encode() if isinstance(body, str) else body
    return CapturedRequest("POST", url, headers if headers is not None else
                           [("Content-Type", "application/json"), ("Access-Token", TOKEN)],
                           data, arrival if arrival is not None else time.time(), "proxy")


def v2_body(**item: Any) -> dict[str, Any]:
    event = {"event": "CompletePayment", "event_time": int(time.time()), "event_id": "ORD-1",
             "user": {"email": [HEX], "phone": [HEX], "ttp": "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk",
                      "ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
             "page": {"url": "https://shop.example/thanks"},
             "properties": {"value": 25.0, "currency": "USD", "content_type": "product",
                            "contents": [{"content_id": "sku-1", "quantity": 2,
                                          "price": 12.5}]}}
    event.update(item)
    return {"event_source": "web", "event_source_id": PIXEL, "data": [event]}


V2_URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"
PIXEL_URL = "https://analytics.tiktok.com/api/v2/pixel"


def server(body: Any, **kw: Any):
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return TIKTOK.handle_server(captured(kw.pop("url", V2_URL), text, **kw))


def browser_hit(**fields: Any) -> dict[str, Any]:
    hit = {"event": "CompletePayment", "event_id": "ORD-1",
           "timestamp": "2026-11-29T00:23:30.118Z",
           "context": {"ad": {"callback": "E.C.P.click"}, "pixel": {"code": PIXEL},
                       "page": {"url": "https://shop.example/thanks", "referrer": ""},
                       "user": {"anonymous_id": "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk"}},
           "properties": {"value": 25, "currency": "USD"}}
    hit.update(fields)
    return hit


def decode(body: bytes | str, url: str = PIXEL_URL) -> list[Event]:
    return TIKTOK.decode_browser(captured(url, body, headers=[
        ("content-type", "text/plain;charset=UTF-8")]))


# --- recorded samples ---------------------------------------------------------------------


def test_the_package_registers_tiktok() -> None:
    assert platforms.get("tiktok") is TIKTOK
    assert TIKTOK.title == "TikTok" and TIKTOK.server_hosts == {"business-api.tiktok.com"}
    assert "access-token" in TIKTOK.secret_headers


def test_samples_cover_what_the_brief_asks() -> None:
    names = {p.stem for p in SAMPLES}
    assert {"browser-completepayment", "server-sdk-1.0-pixel-track", "server-2.0-event-track",
            "server-2.0-unhashed-email", "server-2.0-token-in-authorization"} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_decodes_and_is_answered_as_recorded(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    request = CapturedRequest.from_dict({**sample["request"], "channel": "proxy"})
    expect = sample["expect"]
    if sample["kind"] == "browser":
        assert TIKTOK.is_collection("analytics.tiktok.com", "/api/v2/pixel")
        events = TIKTOK.decode_browser(request)
        assert TIKTOK.collection_response(request).status == expect["status"]
        assert all(bool(e.extra.get("not_a_conversion")) == expect["not_a_conversion"]
                   for e in events)
    else:
        answer = TIKTOK.handle_server(request)
        events = answer.events
        assert answer.status == expect["status"]
        assert answer.body["code"] == expect["code"], answer.body
        rejected = [bool(e.extra.get("rejected_by_platform")) for e in events]
        assert rejected == [expect["rejected"]] * len(events)
    got = [{"event_name": e.event_name, "event_id": e.event_id, "pixel_id": e.pixel_id}
           for e in events]
    assert got == expect["events"]
    assert all(e.decoded for e in events) != bool(expect.get("undecodable"))


def test_browser_completepayment_sample_fields() -> None:
    sample = json.loads((TIKTOK.samples_dir / "browser-completepayment.json").read_text())
    (event,) = TIKTOK.decode_browser(CapturedRequest.from_dict(sample["request"]))
    assert event.value == 25 and event.custom_data["currency"] == "USD"
    assert event.custom_data["order_id"] == "ORD-1"
    assert event.extra["ttclid"] == "E.C.P.pixelcheckClick123"
    assert len(event.extra["ttp"]) == 27 and event.extra["ttp"].isalnum()
    assert abs(event.event_time - event.raw.arrival_time) < 5
    assert event.event_time_raw.endswith("Z")
    # the library hashed what ttq.identify() got, the way TikTok's SDK users hash it
    track = json.loads((FIXTURES / "tiktok-business-api-sdk-1.0.1-pixel-track.json")
                       .read_text())["body"]["context"]["user"]
    assert event.user_data["email"] == track["email"]
    assert event.user_data["phone_number"] == track["phone_number"]
    assert TIKTOK.customer_values(event) == {
        "em": [track["email"]], "ph": [track["phone_number"]],
        "external_id": [pii_rules.sha256_hex("cust-42")]}


# --- browser decoder ------------------------------------------------------------------------


def test_collection_hosts_and_paths() -> None:
    for host, path in [("analytics.tiktok.com", "/api/v2/pixel"),
                       ("analytics.tiktok.com", "/api/v2/pixel/act"),
                       ("analytics.tiktok.com", "/api/v2/pixel/track/"),
                       ("analytics.us.tiktok.com", "/api/v2/pixel"),
                       ("analytics.tiktok.com", "/api/v1/track")]:
        assert TIKTOK.is_collection(host, path), (host, path)
    for host, path in [("analytics.tiktok.com", "/i18n/pixel/events.js"),
                       ("analytics.tiktok.com", "/"), ("www.tiktok.com", "/api/v2/pixel")]:
        assert not TIKTOK.is_collection(host, path), (host, path)


def test_library_stand_in_and_its_parts() -> None:
    main = TIKTOK.library_response("analytics.tiktok.com", "/i18n/pixel/events.js")
    assert main is not None and b"ttq" in main.body and b"sendBeacon" in main.body
    part = TIKTOK.library_response("analytics.tiktok.com", "/i18n/pixel/static/main.abc.js")
    assert part is not None and part.status == 200 and b"ttq" not in part.body
    assert TIKTOK.library_response("connect.facebook.net", "/en_US/fbevents.js") is None


def test_browser_hit_fields() -> None:
    (event,) = decode(json.dumps(browser_hit()))
    assert (event.event_name, event.event_id, event.pixel_id) == ("CompletePayment", "ORD-1",
                                                                   PIXEL)
    assert event.event_time == pytest.approx(1795911810.118)
    assert event.page_url == "https://shop.example/thanks"
    assert event.extra["ttp"] == "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk"
    assert event.extra["ttclid"] == "E.C.P.click"
    assert event.decoded and not event.extra.get("not_a_conversion")


def test_omnibug_2020_shape_is_read() -> None:
    """The 2020 pixel (OMNI's sample): /api/v1/track, percent-encoded page URL, no id."""
    hit = {"event": "AddToCart", "context": {"ad": {"callback": ""}, "user": {"user_id": ""},
           "pixel": {"code": "BT24M8TQUU2IQ2BVG9NG"},
           "page": {"url": "https%3A%2F%2Fshop.example%2F", "referrer": ""},
           "library": {"version": "0.0.24", "name": "pixel.js"}},
           "analytics_uniq_id": "f1udvvnn6gt0jhsn6wirp3q", "timestamp": "2020-09-04T11:22:12.961Z"}
    (event,) = decode(json.dumps(hit), "https://analytics.tiktok.com/api/v1/track")
    assert event.decoded and event.page_url == "https://shop.example/"
    assert event.event_id is None and event.extra["ttclid"] is None
    assert TIKTOK.dedup_key(event) is None


@pytest.mark.parametrize("hit,path", [
    (browser_hit(event="Pageview", event_id=""), "/api/v2/pixel"),
    (browser_hit(event="EnrichAM", event_id=""), "/api/v2/pixel"),
    (browser_hit(event="ClickButton", event_id=""), "/api/v2/pixel/act"),
], ids=["pageview", "enricham", "act"])
def test_hits_that_are_not_conversions_are_kept_but_never_paired(hit: dict[str, Any],
                                                                  path: str) -> None:
    (event,) = decode(json.dumps(hit), "https://analytics.tiktok.com" + path)
    assert event.decoded and event.extra["not_a_conversion"]
    assert TIKTOK.dedup_key(event) is None


def test_event_id_inside_properties_is_noticed() -> None:
    hit = browser_hit(event_id="", properties={"value": 1, "event_id": "ORD-1"})
    (event,) = decode(json.dumps(hit))
    assert event.event_id is None and event.extra["event_id_in_properties"] == "ORD-1"
    assert "inside the properties" in TIKTOK.fix("missing-event-id", event)


@pytest.mark.parametrize("body", [
    b"", b"not json", b"\xff\xfe\x00garbage", b"[]", b"[1, 2]", b"42", b'"a string"',
    b'{"event": "CompletePayment"}', b'{"context": {"pixel": {"code": "X"}}}',
    b'{"event": ["list"], "context": "nope", "properties": 5, "timestamp": {"a": 1}}',
    b'{"batch": "nope"}', b'{"batch": []}', gzip.compress(b"{}", mtime=0)[:10],
    json.dumps(browser_hit(timestamp="yesterday-ish")).encode(),
], ids=lambda b: repr(b[:20]))
def test_browser_decoder_never_raises(body: bytes) -> None:
    events = TIKTOK.decode_browser(captured(PIXEL_URL, body, headers=[
        ("content-type", "text/plain;charset=UTF-8")]))
    assert events and all(isinstance(e, Event) and e.source == "browser" for e in events)
    for event in events:
        assert event.decoded or isinstance(event.error, str)


def test_gzip_and_batched_bodies() -> None:
    body = gzip.compress(json.dumps([browser_hit(), browser_hit(event_id="ORD-2")]).encode())
    events = TIKTOK.decode_browser(captured(PIXEL_URL, body, headers=[
        ("content-type", "text/plain"), ("content-encoding", "gzip")]))
    assert [e.event_id for e in events] == ["ORD-1", "ORD-2"]


# --- Events API answers --------------------------------------------------------------------


def test_good_v2_call_is_answered_ok() -> None:
    answer = server(v2_body())
    assert answer.status == 200 and answer.body["code"] == 0 and answer.body["message"] == "OK"
    assert answer.body["request_id"] and answer.body["data"] == {}
    assert answer.token == TOKEN and answer.token_location == "header"
    (event,) = answer.events
    assert (event.event_name, event.event_id, event.pixel_id) == ("CompletePayment", "ORD-1",
                                                                   PIXEL)
    assert event.value == 25.0 and "rejected_by_platform" not in event.extra
    assert event.extra["ttp"] == "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk"


@pytest.mark.parametrize("field,value,where", [
    ("email", ["john@example.com"], "data[0].user.email[0]"),
    ("email", "john@example.com", "data[0].user.email"),
    ("phone", ["+16505551234"], "data[0].user.phone[0]"),
])
def test_unhashed_email_or_phone_is_40062(field: str, value: Any, where: str) -> None:
    body = v2_body()
    body["data"][0]["user"][field] = value
    answer = server(body)
    assert answer.status == 200 and answer.body["code"] == 40062
    assert where in answer.body["message"]
    # the answer lands in reports: it names the field, never the customer's value
    assert "john@" not in answer.body["message"] and "6505551234" not in answer.body["message"]
    assert answer.events[0].extra["rejected_by_platform"].startswith("40062 ")


def test_hashed_upper_case_and_empty_values_pass() -> None:
    body = v2_body()
    body["data"][0]["user"].update(email=["A" * 64], phone="")
    assert server(body).body["code"] == 0


def test_missing_token_is_40104_and_authorization_is_named() -> None:
    answer = server(v2_body(), headers=[("Content-Type", "application/json")])
    assert answer.body["code"] == 40104 and answer.token is None
    answer = server(v2_body(), headers=[("Content-Type", "application/json"),
                                        ("Authorization", "Bearer x")])
    assert answer.body["code"] == 40104 and "Access-Token header" in answer.body["message"]
    assert answer.events[0].event_id == "ORD-1"  # decoded all the same


def test_token_answers_and_faults() -> None:
    request = captured(V2_URL, json.dumps(v2_body()))
    codes = {kind: TIKTOK.error_answer(kind, request) for kind in
             ("missing_token", "invalid_token", "expired_token", "429", "transient",
              "timeout", "500")}
    assert {k: (s, b["code"]) for k, (s, b) in codes.items()} == {
        "missing_token": (200, 40104), "invalid_token": (200, 40105),
        "expired_token": (200, 40102), "429": (200, 40100), "transient": (200, 50000),
        "timeout": (200, 50002), "500": (500, 50000)}
    assert set(TIKTOK.fault_kinds) >= {"500", "429", "transient", "expired_token", "timeout"}


def test_stale_event_time_is_rejected() -> None:
    answer = server(v2_body(event_time=int(time.time()) - 8 * 86400))
    assert answer.body["code"] == 40002
    assert "data[0].event_time" in answer.body["message"] and "8.0 days" in answer.body["message"]
    assert server(v2_body(event_time=int(time.time()) - 6 * 86400)).body["code"] == 0


@pytest.mark.parametrize("body,words", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1]", "JSON list"),
    (json.dumps(v2_body(event_time="1700000000")), "data[0].event_time"),
    (json.dumps({"event_source": "web", "data": [{"event": "X", "event_time": 1}]}),
     "event_source_id"),
    (json.dumps({**v2_body(), "data": []}), "data"),
    (json.dumps({**v2_body(), "data": ["a string"]}), "data[0]"),
], ids=["bad-json", "empty", "list", "time-as-string", "no-pixel", "no-events", "str-item"])
def test_malformed_calls_are_40002_and_never_raise(body: Any, words: str) -> None:
    answer = server(body)
    assert answer.status == 200 and answer.body["code"] == 40002, answer.body
    assert words in answer.body["message"]
    assert answer.events and all(e.extra.get("rejected_by_platform") for e in answer.events)


def test_huge_bodies() -> None:
    body = v2_body()
    body["data"] = body["data"] * 1001
    answer = server(body)
    assert answer.body["code"] == 40061 and len(answer.events) == 1001
    body = v2_body()
    body["data"][0]["properties"]["description"] = "x" * 5_000_000
    answer = server(body)
    assert answer.body["code"] == 0 and answer.events[0].event_id == "ORD-1"


def test_v1_sdk_shapes_and_their_paths() -> None:
    for name in ("pixel-track", "pixel-batch"):
        recorded = json.loads((FIXTURES / f"tiktok-business-api-sdk-1.0.1-{name}.json")
                              .read_text())
        url = "https://business-api.tiktok.com" + recorded["path"]
        assert TIKTOK.is_server_api("business-api.tiktok.com", recorded["path"])
        # the call arrives a minute after it was recorded: the recording's timestamp is
        # fixed, and TikTok refuses events more than 7 days old
        body = recorded["body"]
        stamp = (body["batch"][0] if "batch" in body else body)["timestamp"]
        arrival = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() + 60
        answer = server(recorded["body_text"], url=url, arrival=arrival)
        assert answer.body["code"] == 0
        (event,) = answer.events
        assert event.extra["ttclid"] == "E.C.P.testclickid123"
        assert event.extra["ip"] == "203.0.113.7"
        unhashed = copy.deepcopy(recorded["body"])
        user = unhashed["batch"][0]["context"]["user"] if "batch" in unhashed else \
            unhashed["context"]["user"]
        user["phone_number"] = "+16505551212"
        answer = server(unhashed, url=url, arrival=arrival)
        assert answer.body["code"] == 40062 and "phone_number" in answer.body["message"]
    assert TIKTOK.is_server_api(None, "/open_api/v1.3/event/track/")
    assert not TIKTOK.is_server_api("graph.facebook.com", "/open_api/v1.3/event/track/")
    assert not TIKTOK.is_server_api(None, "/v21.0/123/events")


def test_transient_and_answer_text() -> None:
    request = captured(V2_URL, json.dumps(v2_body()))
    for kind, transient in (("429", True), ("transient", True), ("timeout", True),
                            ("500", True), ("invalid_token", False)):
        status, body = TIKTOK.error_answer(kind, request)
        event = Event("tiktok", "server", PIXEL, "CompletePayment", "ORD-1", None, 0.0,
                      raw=captured(V2_URL, "{}"))
        event.raw.response_status, event.raw.response_body = status, json.dumps(body).encode()
        assert TIKTOK.is_transient(event) is transient, kind
        assert f"(code {body['code']})" in TIKTOK.answer_text(event)


def test_test_event_code_is_read() -> None:
    answer = server({**v2_body(), "test_event_code": "TEST123"})
    assert TIKTOK.test_event_code(answer.events[0]) == "TEST123"
    assert TIKTOK.test_event_code(server(v2_body()).events[0]) is None


# --- dedup ------------------------------------------------------------------------------------


def test_browser_and_server_share_the_key() -> None:
    (browser,) = decode(json.dumps(browser_hit()))
    (srv,) = server(v2_body()).events
    assert TIKTOK.dedup_key(browser) == TIKTOK.dedup_key(srv) == (PIXEL, "CompletePayment",
                                                                  "ORD-1")
    renamed = server(v2_body(event="Purchase")).events[0]
    assert TIKTOK.dedup_key(renamed) == TIKTOK.dedup_key(browser)
    assert TIKTOK.dedup_key(server(v2_body(event_id="")).events[0]) is None
    assert "event_id" in TIKTOK.dedup_rule() and "48 h" in TIKTOK.dedup_rule()
    assert not TIKTOK.deduplicates("Pageview") and TIKTOK.deduplicates("CompletePayment")


def test_name_variant() -> None:
    text = TIKTOK.name_variant("Purchase", "CompletePayment")
    assert text and "'Purchase'" in text and "'CompletePayment'" in text
    assert "use one name" in text
    assert TIKTOK.name_variant("CompletePayment", "Purchase")
    assert TIKTOK.name_variant("CompletePayment", "CompletePayment") is None
    assert TIKTOK.name_variant("AddToCart", "Purchase") is None


def test_fix_texts_in_tiktok_words() -> None:
    (browser,) = decode(json.dumps(browser_hit(event_id="")))
    (srv,) = server(v2_body(event_id="")).events
    assert "{event_id: ID}" in TIKTOK.fix("missing-event-id", browser)
    assert "_ttp" in TIKTOK.fix("missing-event-id", browser)
    assert "data[].event_id" in TIKTOK.fix("missing-event-id", srv)
    for code in ("near-miss-event-id", "event-name-mismatch", "wrong-pixel",
                 "server-event-missing", "browser-event-missing", "raw-pii-in-user-data",
                 "test-event-code", "server-call-rejected"):
        assert TIKTOK.fix(code, srv), code
    assert TIKTOK.fix("no-such-code") is None


# --- customer data and identity ------------------------------------------------------------------


@pytest.mark.parametrize("key,raw,normalized,digest", pii_rules.TEST_VECTORS)
def test_pii_vectors(key: str, raw: str, normalized: str, digest: str) -> None:
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == digest == hashlib.sha256(
        normalized.encode()).hexdigest()


def test_pii_rules() -> None:
    # the "+" split of section 10: TikTok's digest is not Meta's digits-only one
    assert pii_rules.hash_value("ph", "16505551234") != pii_rules.PHONE_WITHOUT_PLUS_SHA256
    assert pii_rules.normalize("phone_number", "0044 20 7946 0958") == "+442079460958"
    assert pii_rules.normalize("email", "  John.Doe@Example.COM ") == "john.doe@example.com"
    assert pii_rules.normalize("external_id", " Cust-42 ") == "cust-42"
    assert pii_rules.normalize("fn", " Mary Ann ") == "maryann"
    assert pii_rules.hash_value("ct", "San Francisco!") == "sanfrancisco"  # not hashed
    assert pii_rules.hash_value("em", "A" * 64) == "a" * 64  # already hashed: kept
    assert set(pii_rules.NEVER_HASHED) == {"ttp", "ttclid", "ip", "user_agent"}
    assert not any(pii_rules.PII_RULES[k]["hashed"] for k in pii_rules.NEVER_HASHED)
    assert {"em", "ph", "external_id"} <= set(pii_rules.HASHED_KEYS)


def test_expected_values_follow_tiktoks_rules() -> None:
    assert {"em", "ph", "external_id"} <= TIKTOK.hashed_keys
    assert "ct" not in TIKTOK.hashed_keys
    assert TIKTOK.expected_value("ph", "16505551234") == pii_rules.TEST_VECTORS[0][3]
    assert TIKTOK.expected_value("ct", "Paris") is None


def test_customer_values_for_each_shape() -> None:
    (v2,) = server(v2_body()).events
    assert TIKTOK.customer_values(v2) == {"em": [HEX], "ph": [HEX]}
    recorded = json.loads((FIXTURES / "tiktok-business-api-sdk-1.0.1-pixel-track.json")
                          .read_text())
    (v1,) = server(recorded["body_text"],
                   url="https://business-api.tiktok.com/open_api/v1.3/pixel/track/").events
    assert set(TIKTOK.customer_values(v1)) == {"em", "ph", "external_id"}
    (browser,) = decode(json.dumps(browser_hit()))
    assert TIKTOK.customer_values(browser) == {}  # the anonymous_id is not a customer key


def _pair(browser_extra: dict[str, Any], server_extra: dict[str, Any]) -> Pair:
    (browser,) = decode(json.dumps(browser_hit()))
    (srv,) = server(v2_body()).events
    browser.extra.update(browser_extra)
    srv.extra.update(server_extra)
    return Pair(browser, srv)


def test_identity_findings() -> None:
    ttp = "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk"
    assert TIKTOK.identity_findings(_pair({"ttp": ttp, "ttclid": "E.C.P.a"},
                                          {"ttp": ttp, "ttclid": "E.C.P.a"})) == []
    found = TIKTOK.identity_findings(_pair({"ttp": ttp, "ttclid": "E.C.P.a"},
                                           {"ttp": "other", "ttclid": "E.C.P.b"}))
    assert [f.code for f in found] == ["ttp-mismatch", "ttclid-mismatch"]
    assert found[0].severity == "error" and found[0].platform == "tiktok"
    assert len(found[0].events) == 2
    hashed = TIKTOK.identity_findings(_pair({"ttp": ttp}, {"ttp": pii_rules.sha256_hex(ttp)}))
    assert "SHA-256" in hashed[0].message
    pair = _pair({"ttp": ttp, "ttclid": "E.C.P.a"}, {"ttp": None, "ttclid": "E.C.P.b"})
    codes = [code for code, _, _ in identity.identity_problems(pair.browser, pair.server)]
    assert codes == ["ttp-missing", "ttclid-mismatch"]


def test_missing_ids_are_judged_over_the_capture() -> None:
    """The server copy of the page where the pixel first set _ttp cannot carry it: the
    page's request left before the cookie existed. On a later page it must."""
    ttp = "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk"
    first = _pair({"ttp": ttp, "ttclid": None}, {"ttp": None})
    later = _pair({"ttp": ttp, "ttclid": None}, {"ttp": None})
    later.browser.page_url = "https://shop.example/cart"
    later.browser.arrival_time = first.browser.arrival_time + 1
    events = [first.browser, first.server, later.browser, later.server]
    result = MatchResult(pairs=[first, later], events=events)
    found = TIKTOK.findings(result)
    assert [(f.code, f.events[0].page_url) for f in found] == [
        ("ttp-missing", "https://shop.example/cart")]
    assert found[0].severity == "warning"


def test_name_variant_finding_on_a_merged_pair() -> None:
    (browser,) = decode(json.dumps(browser_hit()))
    (srv,) = server(v2_body(event="Purchase")).events
    result = match_events([browser, srv], "tiktok")
    assert len(result.pairs) == 1
    (found,) = [f for f in TIKTOK.findings(result) if f.code == "event-name-variant"]
    assert "'CompletePayment'" in found.message and "use one name" in found.message


# --- over real sockets: urllib and TikTok's own SDK ------------------------------------------


@pytest.fixture
def sink() -> Iterator[ConversionSink]:
    with ConversionSink(EventStore()) as running:
        yield running


def _post(url: str, body: dict[str, Any], token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Access-Token": token} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def test_sink_answers_events_api_2_over_http(sink: ConversionSink) -> None:
    url = sink.url_for("tiktok") + "/open_api/v1.3/event/track/"
    status, body = _post(url, v2_body())
    assert status == 200 and body["code"] == 0
    bad = v2_body()
    bad["data"][0]["user"]["email"] = "john@example.com"
    status, body = _post(url, bad)
    assert status == 200 and body["code"] == 40062
    sink.expect_token(TOKEN)
    status, body = _post(url, v2_body(), token="tt-wrong")
    assert status == 200 and body["code"] == 40105
    status, body = _post(url, v2_body(), token=None)
    assert status == 200 and body["code"] == 40104
    events = sink.store.since(0)
    assert all(e.platform == "tiktok" and e.event_id == "ORD-1" for e in events)
    assert events[-3].extra["rejected_by_platform"].startswith("40062")
    assert sink.status_counts[200] == len(events)


def test_sink_answers_tiktoks_own_sdk(sink: ConversionSink) -> None:
    sdk = pytest.importorskip("business_api_client")
    from business_api_client.models import (
        PixelContext,
        PixelContextUser,
        PixelProperties,
        PixelTrackBody,
    )
    from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

    cfg = sdk.Configuration()
    cfg.host = sink.url_for("tiktok")
    api = sdk.EventCallbackApi(sdk.ApiClient(cfg))

    def body(email: str) -> Any:
        return PixelTrackBody(
            pixel_code=PIXEL, event="CompletePayment", event_id="purchase.ORD-9",
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            context=PixelContext(user=PixelContextUser(email=email, ttp="abc")),
            properties=PixelProperties(currency="USD", value=9.5))

    returned = api.pixel_track(TOKEN, body=body(pii_rules.hash_value("em", "a@b.example")))
    assert returned["request_id"]
    with pytest.raises(TiktokSDKError, match="Error Code: 40062"):
        api.pixel_track(TOKEN, body=body("a@b.example"))
    ok, rejected = sink.store.since(0)
    assert (ok.event_name, ok.event_id, ok.pixel_id, ok.value) == (
        "CompletePayment", "purchase.ORD-9", PIXEL, 9.5)
    assert ok.extra["api"] == "events-1.0" and ok.raw.header("SDK-Language") == "Py"
    assert rejected.extra["rejected_by_platform"].startswith("40062")


# --- the shop's tracker ------------------------------------------------------------------------


CUSTOMER = Customer(email=" John.Doe@Example.COM ", phone="+1 (650) 555-1212")
PURCHASE_DATA = {"content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                          "item_price": 12.5}],
                 "num_items": 2, "value": 25.0, "currency": "USD", "content_type": "product",
                 "order_id": "ORD-1"}


def _tracked() -> list[TrackedEvent]:
    return [TrackedEvent("PageView", "pageview.1", {}, "https://shop.example/thanks/ORD-1"),
            TrackedEvent("Purchase", "purchase.ORD-1", dict(PURCHASE_DATA),
                         "https://shop.example/thanks/ORD-1")]


def test_tracker_browser_calls() -> None:
    tracker = load_trackers()["tiktok"]
    config = TrackerConfig("tiktok", tracker.default_tag_id, tracker.real_api_url,
                           tracker.default_token)
    head = tracker.head(config, CUSTOMER)
    assert "https://analytics.tiktok.com/i18n/pixel/events.js" in head
    assert f"ttq.load('{tracker.default_tag_id}')" in head
    lines = tracker.browser_calls(config, _tracked(), ActiveFaults(), CUSTOMER)
    assert lines[0] == "ttq.page();" and lines[1].startswith("ttq.identify(")
    assert lines[2].startswith("ttq.track('CompletePayment', ")
    assert lines[2].endswith("{event_id: 'purchase.ORD-1'});")
    assert '"content_id": "sku-1"' in lines[2] and '"order_id": "ORD-1"' in lines[2]
    no_id = tracker.browser_calls(config, _tracked(), ActiveFaults({"browser_no_event_id": None}),
                                  CUSTOMER)
    assert "event_id" not in no_id[-1]
    assert len(tracker.browser_calls(config, _tracked(),
                                     ActiveFaults({"no_browser_purchase": None}), CUSTOMER)) == 1
    assert set(tracker.faults) >= {"id_suffix", "missing_event_id", "browser_no_event_id",
                                   "name_mapping", "unhashed_email", "phone_no_plus",
                                   "stale_event_time", "wrong_token", "no_server_purchase",
                                   "no_browser_purchase", "ttp_mismatch"}


@pytest.mark.parametrize("client", ["json", "tiktok-business-api-sdk"])
@pytest.mark.parametrize("fault,code", [
    ("", 0), ("unhashed_email", 40062), ("stale_event_time", 40002), ("wrong_token", 40105),
    ("name_mapping", 0), ("phone_no_plus", 0), ("ttp_mismatch", 0), ("id_suffix", 0),
    ("missing_event_id", 0),
])
def test_tracker_server_calls_reach_the_sink(sink: ConversionSink, client: str, fault: str,
                                             code: int) -> None:
    if client != "json":
        pytest.importorskip("business_api_client")
    tracker = load_trackers()["tiktok"]
    sink.expect_token(tracker.default_token)
    config = TrackerConfig("tiktok", tracker.default_tag_id, sink.url_for("tiktok"),
                           tracker.default_token, client)
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test",
                         cookies={"_ttp": "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk", "ttclid": "E.C.P.x"})
    faults = ActiveFaults({fault: None} if fault else {})
    (call,) = tracker.server_calls(config, _tracked(), faults, ctx, CUSTOMER)
    status, answer = call.send(10.0)
    assert status == 200 and json.loads(answer)["code"] == code, answer
    (event,) = sink.store.since(0)
    assert event.pixel_id == tracker.default_tag_id and event.value == 25.0
    assert event.extra["api"] == ("events-2.0" if client == "json" else "events-1.0")
    expected_name = "Purchase" if fault == "name_mapping" else "CompletePayment"
    assert event.event_name == expected_name
    expected_id = {"id_suffix": "purchase.ORD-1-server", "missing_event_id": None}.get(
        fault, "purchase.ORD-1")
    assert event.event_id == expected_id
    assert (event.extra["ttp"] == "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk") is (fault != "ttp_mismatch")
    phone = TIKTOK.customer_values(event)["ph"][0]
    plus = pii_rules.hash_value("ph", CUSTOMER.phone)
    assert (phone == plus) is (fault != "phone_no_plus")
    assert call.retryable(status, answer) is False


def test_tracker_retries_tiktoks_http_200_errors() -> None:
    from example_site.trackers.tiktok import retryable

    assert retryable(200, b'{"code": 50000}') and retryable(200, b'{"code": 40100}')
    assert retryable(None, b"") and retryable(503, b"")
    assert not retryable(200, b'{"code": 40105}') and not retryable(200, b"not json")


# --- the pixel stand-in in a real Chromium -------------------------------------------------------


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
    from example_site.trackers.tiktok import BASE_CODE

    _Page.html = ("<!doctype html><html><head><script>"
                  + BASE_CODE.replace("PIXEL_CODE", f"'{PIXEL}'") + """
ttq.page();
ttq.identify({email: ' John.Doe@Example.COM ', phone_number: '+1 (650) 555-1212'});
ttq.track('CompletePayment', {contents: [{content_id: 'sku-1', quantity: 2, price: 12.5}],
  content_type: 'product', value: 25, currency: 'USD', order_id: 'ORD-1'},
  {event_id: 'ORD-1'});
</script></head><body>thanks</body></html>""").encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/thanks?ttclid=E.C.P.Click42"
    server.shutdown()


@pytest.mark.browser
def test_stand_in_in_chromium(pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
                              shop_page: str) -> None:
    pixelcheck_page.goto(shop_page)
    event = pixelcheck.wait_for("CompletePayment", source="browser", platform="tiktok")
    assert (event.pixel_id, event.event_id, event.value) == (PIXEL, "ORD-1", 25)
    assert event.custom_data["currency"] == "USD"
    assert event.raw.header("content-type") == "text/plain;charset=UTF-8"
    assert event.extra["ttclid"] == "E.C.P.Click42"
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    assert event.extra["ttp"] == cookies["_ttp"] and len(cookies["_ttp"]) == 27
    assert cookies["ttclid"] == "E.C.P.Click42"
    assert event.user_data["email"] == pii_rules.hash_value("em", " John.Doe@Example.COM ")
    assert event.user_data["phone_number"] == pii_rules.hash_value("ph", "+1 (650) 555-1212")
    others = {e.event_name: e for e in pixelcheck.browser_events if e is not event}
    assert {"Pageview", "EnrichAM"} <= set(others)
    assert all(e.extra.get("not_a_conversion") for e in others.values())


# --- the shop's checkout with the TikTok tracker, in a real Chromium -------------------------


@pytest.fixture(scope="module", params=["json", "tiktok-business-api-sdk"])
def tiktok_shop(request: pytest.FixtureRequest, pixelcheck_sink: ConversionSink) -> Iterator[Any]:
    if request.param != "json":
        pytest.importorskip("business_api_client")
    from example_site import SiteProcess

    with SiteProcess(pixelcheck_sink.url, trackers={"tiktok": pixelcheck_sink.url_for("tiktok")},
                     tracker_clients={"tiktok": request.param}) as site:
        yield site


def _checkout(pixelcheck: Any, page: Any, context: Any, site: Any, faults: str | None) -> None:
    from example_site.journey import checkout, set_faults

    set_faults(context, site.url, faults)
    checkout(page, site.url)
    pixelcheck.wait_until(lambda events: {"browser", "server"} <= {
        e.source for e in events if e.platform == "tiktok" and e.event_name in
        ("CompletePayment", "Purchase")}, 10)


@pytest.mark.browser
def test_shop_checkout_deduplicates_on_tiktok(pixelcheck: Any, pixelcheck_page: Any,
                                              pixelcheck_context: Any, tiktok_shop: Any) -> None:
    from example_site.journey import Customer as JourneyCustomer

    _checkout(pixelcheck, pixelcheck_page, pixelcheck_context, tiktok_shop, None)
    typed = JourneyCustomer()
    pixelcheck.customer(typed, external_id=Customer(typed.email).customer_id)
    result = pixelcheck.match("tiktok")
    pairs = {p.browser.event_name: p for p in result.pairs}
    assert "CompletePayment" in pairs, result
    pair = pairs["CompletePayment"]
    assert pair.browser.extra["ttp"] == pair.server.extra["ttp"]
    assert not pair.server.extra.get("rejected_by_platform")
    codes = {f.code for f in pixelcheck.findings("tiktok")}
    assert not codes & {"ttp-mismatch", "ttp-missing", "server-call-rejected",
                        "near-miss-event-id", "event-name-variant", "raw-pii-in-user-data",
                        "unnormalized-hash", "cross-channel-hash-mismatch"}, codes
    # the pixel's page views and identify hits are kept, but never counted as unmerged
    assert not [e for e in result.browser_only if e.extra.get("not_a_conversion")]


@pytest.mark.browser
@pytest.mark.parametrize("fault,code", [
    ("ttp_mismatch", "ttp-mismatch"),
    ("name_mapping", "event-name-variant"),
    ("unhashed_email", "server-call-rejected"),
    ("id_suffix", "near-miss-event-id"),
    ("phone_no_plus", "unnormalized-hash"),
])
def test_shop_fault_on_tiktok_gives_its_finding(pixelcheck: Any, pixelcheck_page: Any,
                                                pixelcheck_context: Any, tiktok_shop: Any,
                                                fault: str, code: str) -> None:
    from example_site.journey import Customer as JourneyCustomer

    _checkout(pixelcheck, pixelcheck_page, pixelcheck_context, tiktok_shop, f"tiktok:{fault}")
    typed = JourneyCustomer()
    pixelcheck.customer(typed, external_id=Customer(typed.email).customer_id)
    found = [f for f in pixelcheck.findings("tiktok") if f.code == code]
    assert found, [f.code for f in pixelcheck.findings("tiktok")]
    if fault == "unhashed_email":
        assert "40062" in found[0].message + " ".join(found[0].details)
