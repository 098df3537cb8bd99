"""Reddit (Reddit Pixel + Conversions API): the decoder on recorded samples and on odd
input, the Conversions API answers (v3 and v2.0), the dedup key in the hashed form, the
PII rules, identity and conversion-id findings, the sink over real sockets, the shop's
tracker, and the pixel stand-in in a real Chromium."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.trackers.reddit import TRACKER, as_v2, retryable
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.findings import CATALOGUE
from pytest_pixelcheck.matching import Pair, match_events
from pytest_pixelcheck.platforms.reddit import REDDIT, identity, pii_rules
from pytest_pixelcheck.platforms.reddit.findings import reddit_findings
from pytest_pixelcheck.platforms.reddit.platform import canonical_type, conversion_key
from pytest_pixelcheck.sink import ConversionSink

SAMPLES = sorted(Path(REDDIT.samples_dir or ".").glob("*.json"))
PIXEL = "a2_pixelcheck0rd1"
TOKEN = "rdt-test-token-0123456789"
HIT_URL = "https://alb.reddit.com/rp.gif"
V3_URL = f"https://ads-api.reddit.com/api/v3/pixels/{PIXEL}/conversion_events"
V2_URL = f"https://ads-api.reddit.com/api/v2.0/conversions/events/{PIXEL}"
HEX = "a" * 64
UUID = "8b2c5f0e-3c8d-4a47-9d3e-2a6f0c1b7e55"
COOKIE = f"1795910400123.{UUID}"


# --- helpers ----------------------------------------------------------------------------


def hit(**params: Any) -> CapturedRequest:
    """An rp.gif hit with the 2025 build's parameters, ``params`` on top."""
    base: dict[str, Any] = {
        "ts": "1795910490000", "id": PIXEL, "event": "Purchase", "m.itemCount": "1",
        "m.value": "", "m.valueDecimal": "25", "m.currency": "USD",
        "m.transactionId": pii_rules.sha256_hex("ORD-1"), "m.customEventName": "",
        "m.products": '[{"id":"sku-1"}]', "m.conversionId": pii_rules.sha256_hex("ORD-1"),
        "uuid": UUID, "aaid": "", "em": HEX, "pn": "", "external_id": "", "idfa": "",
        "integration": "reddit", "partner": "", "opt_out": "0", "sh": "720", "sw": "1280",
        "v": "rdt_00917691", "dpm": "", "dpcc": "", "dprc": ""}
    base.update(params)
    query = urlencode({k: v for k, v in base.items() if v is not None})
    return CapturedRequest("GET", f"{HIT_URL}?{query}", [("User-Agent", "Mozilla/5.0")], b"",
                           1795910491.0, "proxy")


def decode(request: CapturedRequest) -> Event:
    (event,) = REDDIT.decode_browser(request)
    return event


def v3_item(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event_at": int(time.time() * 1000), "action_source": "WEBSITE",
        "event_source_url": "https://shop.example/thanks/ORD-1",
        "type": {"tracking_type": "PURCHASE"},
        "metadata": {"conversion_id": "ORD-1", "currency": "USD", "value": 25.0,
                     "item_count": 1, "products": [{"id": "sku-1"}]},
        "user": {"email": HEX, "uuid": COOKIE, "ip_address": "203.0.113.7",
                 "user_agent": "Mozilla/5.0"},
        "click_id": "click-1"}
    item.update(fields)
    return item


def v3_body(*items: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {"data": {"events": list(items) or [v3_item()], **envelope}}


def server(body: Any, url: str = V3_URL, *, token: str | None = TOKEN,
           headers: list[tuple[str, str]] | None = None, arrival: float | None = None
           ) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    if headers is None:
        headers = [("Content-Type", "application/json")]
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
    request = CapturedRequest("POST", url, headers, data,
                              arrival if arrival is not None else time.time(), "proxy")
    return REDDIT.handle_server(request)


def sample_request(data: dict[str, Any]) -> CapturedRequest:
    raw = data["request"]
    return CapturedRequest(raw["method"], raw["url"], [tuple(h) for h in raw["headers"]],
                           raw["body"].encode(), float(raw.get("arrival_time") or time.time()),
                           "proxy")


# --- registration and samples ---------------------------------------------------------------


def test_the_package_registers_reddit() -> None:
    assert platforms.get("reddit") is REDDIT
    assert REDDIT.server_hosts == {"ads-api.reddit.com"}
    for code in REDDIT.finding_codes:
        assert code in CATALOGUE and code.startswith("reddit-")


def test_samples_cover_what_the_brief_asks() -> None:
    names = {p.stem for p in SAMPLES}
    assert {"browser-purchase", "browser-pagevisit", "browser-custom-initiatecheckout",
            "server-v3-purchase", "server-v2.0-purchase", "server-v3-stale-event-at",
            "server-v3-no-bearer-token", "server-v3-missing-action-source",
            "server-v3-unhashed-email", "server-v3-truncated-json"} <= names
    # no path of the machine that recorded them, and only Reddit's own origins
    local = {str(Path(__file__).resolve().parents[2]), str(Path.home())}
    for path in SAMPLES:
        text = path.read_text()
        assert not any(folder in text for folder in local), path.name
        url = json.loads(text)["request"]["url"]
        assert url.startswith(("https://alb.reddit.com/", "https://ads-api.reddit.com/")), url


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_sample_decodes_and_is_answered_as_recorded(path: Path) -> None:
    data = json.loads(path.read_text())
    request = sample_request(data)
    if data["kind"] == "browser":
        events = REDDIT.decode_browser(request)
        status = 200
    else:
        answer = REDDIT.handle_server(request)
        events, status = answer.events, answer.status
        json.dumps(answer.body)  # plain data, as the sink sends it
    got = [{k: getattr(e, k) for k in ("event_name", "event_id", "pixel_id")} for e in events]
    assert got == data["expect"]["events"]
    assert status == data["expect"]["status"]


def test_browser_purchase_sample_fields() -> None:
    data = json.loads((REDDIT.samples_dir / "browser-purchase.json").read_text())
    event = decode(sample_request(data))
    assert event.decoded and event.source == "browser"
    assert event.event_id == pii_rules.sha256_hex("purchase.ORD-1")
    assert event.extra["conversion_id_form"] == "hashed"
    assert event.custom_data["transaction_id"] == pii_rules.sha256_hex("ORD-1")
    assert (event.value, event.custom_data["currency"], event.custom_data["item_count"]) == (
        25.0, "USD", 2)
    assert event.custom_data["content_ids"] == ["sku-1"]
    assert event.user_data["em"] == pii_rules.hash_value("em", " John.Doe+shop@Example.COM ")
    assert event.user_data["pn"] == pii_rules.hash_value("ph", "+1 (650) 555-1212")
    assert event.user_data["external_id"] == pii_rules.hash_value("external_id", "cust-42")
    assert event.extra["click_id"] == "pixelcheckClick1234567890"
    assert len(event.extra["uuid"]) == 36 and event.extra["build"] == "rdt_pxchk001"
    assert event.raw.header("sec-fetch-dest") == "image" and event.raw.method == "GET"
    # the 2025 build's parameters, in its order
    keys = [k.split("=")[0] for k in event.raw.url.split("?", 1)[1].split("&")]
    assert keys[:26] == ["ts", "id", "event", "m.itemCount", "m.value", "m.valueDecimal",
                         "m.currency", "m.transactionId", "m.customEventName", "m.products",
                         "m.conversionId", "uuid", "aaid", "em", "pn", "external_id", "idfa",
                         "integration", "partner", "opt_out", "sh", "sw", "v", "dpm", "dpcc",
                         "dprc"]


# --- the browser side ---------------------------------------------------------------------


def test_collection_and_library_hosts() -> None:
    assert REDDIT.is_collection("alb.reddit.com", "/rp.gif")
    assert not REDDIT.is_collection("alb.reddit.com", "/snoo.js")
    assert not REDDIT.is_collection("www.reddit.com", "/rp.gif")
    script = REDDIT.library_response("www.redditstatic.com", "/ads/pixel.js")
    assert script is not None and b"alb.reddit.com/rp.gif" in script.body
    for host, path in (("pixel-config.reddit.com", f"/pixels/{PIXEL}/config"),
                       ("www.redditstatic.com",
                        f"/ads/conversions-config/v1/pixel/config/{PIXEL}_telemetry")):
        config = REDDIT.library_response(host, path)
        assert config is not None and config.content_type == "application/json"
        assert platforms.for_collection(host, path) is None  # never a conversion
    assert REDDIT.library_response("www.redditstatic.com", "/ads/v2/other.js") is not None
    assert REDDIT.library_response("www.reddit.com", "/ads/pixel.js") is None
    assert platforms.for_collection("alb.reddit.com", "/rp.gif") is REDDIT


def test_hit_fields_and_the_2024_build_shape() -> None:
    # Omnibug's 2024 hit: amounts in m.valueDecimal, m.value and the ids empty
    event = decode(hit(event="AddToCart", **{"m.itemCount": "2", "m.valueDecimal": "20",
                                             "m.conversionId": "", "m.transactionId": "",
                                             "em": "", "v": "rdt_c9439d84"}))
    assert event.decoded and event.event_name == "AddToCart" and event.event_id is None
    assert event.value == 20.0 and event.custom_data["item_count"] == 2
    assert event.user_data == {} and event.event_time == 1795910490.0
    assert REDDIT.dedup_key(event) is None  # no conversion id: nothing to merge on
    # m.value alone is read when m.valueDecimal is empty
    assert decode(hit(**{"m.valueDecimal": "", "m.value": "12.5"})).value == 12.5


def test_plain_browser_conversion_id_is_hashed_for_the_key() -> None:
    event = decode(hit(**{"m.conversionId": "ORD-1"}))
    assert event.event_id == pii_rules.sha256_hex("ORD-1")
    assert event.extra["conversion_id"] == "ORD-1"
    assert event.extra["conversion_id_form"] == "plain"
    upper = decode(hit(**{"m.conversionId": pii_rules.sha256_hex("ORD-1").upper()}))
    assert upper.event_id == pii_rules.sha256_hex("ORD-1")


def test_event_types_and_custom_names() -> None:
    custom = decode(hit(event="Custom", **{"m.customEventName": "InitiateCheckout"}))
    assert custom.event_name == "InitiateCheckout"
    assert (custom.extra["tracking_type"], custom.extra["custom_event_name"]) == (
        "Custom", "InitiateCheckout")
    assert decode(hit(event="Custom")).event_name == "Custom"
    assert decode(hit(event="purchase")).event_name == "Purchase"
    unknown = decode(hit(event="Checkout"))
    assert unknown.decoded and unknown.event_name == "Checkout"
    assert [canonical_type(n) for n in ("PAGE_VISIT", "ADD_TO_WISHLIST", "SignUp", "x")] == [
        "PageVisit", "AddToWishlist", "SignUp", None]


@pytest.mark.parametrize("params", [
    {"event": ""}, {"id": ""}, {"event": None, "id": None}, {"ts": "soon"},
    {"m.products": "[not json"}, {"m.itemCount": "two"}, {"m.valueDecimal": "NaN-ish"},
])
def test_malformed_hits_never_raise(params: dict[str, Any]) -> None:
    event = decode(hit(**params))
    if not params.get("event", "x") or not params.get("id", "x"):
        assert not event.decoded and "rp.gif hit without" in (event.error or "")
    else:
        assert event.decoded


@pytest.mark.parametrize("body,headers", [
    (b"\xff\xfe\x00", [("Content-Type", "application/x-www-form-urlencoded")]),
    (b"not gzip", [("Content-Encoding", "gzip")]),
    (b"event=Purchase&id=a2_x", [("Content-Type", "application/x-www-form-urlencoded")]),
])
def test_post_bodies_never_raise(body: bytes, headers: list[tuple[str, str]]) -> None:
    request = CapturedRequest("POST", HIT_URL, headers, body, time.time(), "proxy")
    (event,) = REDDIT.decode_browser(request)
    assert event.platform == "reddit" and (event.decoded or event.error)


# --- the Conversions API ----------------------------------------------------------------------


def test_good_v3_call_is_answered_like_reddit() -> None:
    answer = server(v3_body())
    assert answer.status == 200
    assert answer.body == {"data": {"message": "Successfully processed 1 conversion events."}}
    (event,) = answer.events
    assert (event.event_name, event.pixel_id) == ("Purchase", PIXEL)
    assert event.event_id == pii_rules.sha256_hex("ORD-1")
    assert event.extra["conversion_id"] == "ORD-1" and event.extra["api"] == "conversions-v3"
    assert (event.extra["uuid"], event.extra["click_id"]) == (COOKIE, "click-1")
    assert event.value == 25.0 and event.custom_data["content_ids"] == ["sku-1"]
    assert answer.token == TOKEN and answer.token_location == "header"
    assert not event.extra.get("rejected_by_platform")


def test_good_v2_call_is_answered_like_reddit() -> None:
    item = as_v2(v3_item())
    item["event_metadata"]["value_decimal"] = 25.0
    answer = server({"events": [item], "test_mode": False}, V2_URL)
    assert answer.status == 200
    assert answer.body == {"message": "Successfully processed 1 conversion events."}
    (event,) = answer.events
    assert event.event_name == "Purchase" and event.extra["api"] == "conversions-v2.0"
    assert event.event_time == pytest.approx(v3_item()["event_at"] / 1000, abs=2)
    # v2.0's integer value is in cents; event_at_ms is milliseconds
    cents = {"events": [{"event_at_ms": int(time.time() * 1000),
                         "event_type": {"tracking_type": "AddToCart"},
                         "event_metadata": {"conversion_id": "c-1", "value": 1250}}]}
    (added,) = server(cents, V2_URL).events
    assert added.value == 12.5 and added.event_name == "AddToCart"


def test_missing_or_wrong_scheme_token_is_401() -> None:
    missing = server(v3_body(), token=None)
    assert missing.status == 401
    assert missing.body == {"success": False, "error": {"reason": "UNAUTHORIZED",
                                                        "explanation": "No bearer token provided"}}
    basic = server(v3_body(), headers=[("Authorization", TOKEN)])
    assert basic.status == 401 and "Bearer" in basic.events[0].extra["rejected_by_platform"]
    assert all(e.extra["rejected_by_platform"].startswith("HTTP 401") for e in missing.events)


@pytest.mark.parametrize("shift_ms,words", [
    (-8 * 86400 * 1000, "less than 168h0m0s old"),
    (30 * 60 * 1000, "not be more than 5 minutes in the future"),
])
def test_event_at_outside_the_window_is_an_invalid_event(shift_ms: int, words: str) -> None:
    item = v3_item()
    item["event_at"] += shift_ms
    answer = server(v3_body(item))
    assert answer.status == 400
    assert answer.body["message"] == ("There were 1 invalid conversion events. None were "
                                      "processed.")
    (entry,) = answer.body["invalid_events"]
    assert entry["event_index"] == 0 and words in entry["error_message"]
    assert "HTTP 400" in answer.events[0].extra["rejected_by_platform"]


def test_event_at_in_seconds_is_named() -> None:
    answer = server(v3_body(v3_item(event_at=int(time.time()))))
    assert answer.status == 400 and "Unix seconds" in answer.body["invalid_events"][0][
        "error_message"]


@pytest.mark.parametrize("mutate,words", [
    (lambda i: i.pop("action_source"), "action_source: missing"),
    (lambda i: i.update(type={"tracking_type": "CUSTOM"}), "custom_event_name: missing"),
    (lambda i: i.update(type={"tracking_type": "Purchase"}), "is not one of"),
    (lambda i: i["metadata"].update(value="25"), "metadata.value"),
    (lambda i: i.pop("event_at"), "event_at: missing"),
])
def test_a_missing_required_field_is_an_invalid_event(mutate: Any, words: str) -> None:
    item = v3_item()
    mutate(item)
    answer = server(v3_body(item))
    assert answer.status == 400, answer.body
    assert words in answer.body["invalid_events"][0]["error_message"]
    assert answer.violations


def test_one_bad_event_fails_the_whole_batch() -> None:
    bad = v3_item()
    bad.pop("action_source")
    answer = server(v3_body(v3_item(), bad))
    assert answer.status == 400
    assert [e["event_index"] for e in answer.body["invalid_events"]] == [1]
    good, refused = answer.events
    assert "none was processed" in good.extra["rejected_by_platform"]
    assert "action_source" in refused.extra["rejected_by_platform"]
    assert "events[1]" in REDDIT.answer_text(_answered(refused, answer))


def _answered(event: Event, answer: Any) -> Event:
    assert event.raw is not None
    event.raw.response_status = answer.status
    event.raw.response_body = json.dumps(answer.body).encode()
    return event


def test_unhashed_pii_is_accepted_as_reddit_does() -> None:
    answer = server(v3_body(v3_item(user={"email": "jane@example.com",
                                          "phone_number": "+16505551212"})))
    assert answer.status == 200
    values = REDDIT.customer_values(answer.events[0])
    assert values == {"em": ["jane@example.com"], "ph": ["+16505551212"]}


@pytest.mark.parametrize("body,words", [
    (b"{not json", "JSON error"), (b"", "JSON error"), (b"[1, 2]", "not an object"),
    (json.dumps({"events": [as_v2(v3_item())]}).encode(), "v2.0's shape"),
    (json.dumps({"data": {"events": []}}).encode(), "data.events"),
    (json.dumps({"data": {"events": ["x"]}}).encode(), "not an event object"),
])
def test_malformed_calls_are_400_and_never_raise(body: bytes, words: str) -> None:
    answer = server(body)
    assert answer.status == 400
    text = json.dumps(answer.body) + " ".join(str(e.error) for e in answer.events)
    assert words in text, text
    assert answer.events and all(e.extra.get("rejected_by_platform") for e in answer.events)


def test_more_than_1000_events_is_a_bad_request() -> None:
    answer = server(v3_body(*[v3_item() for _ in range(1001)]))
    assert answer.status == 400 and answer.body["error"]["reason"] == "BAD_REQUEST"


def test_error_answers_and_their_words() -> None:
    request = CapturedRequest("POST", V3_URL, [], b"{}", time.time(), "sink")
    assert REDDIT.error_answer("invalid_token", request) == (401, {
        "success": False, "error": {"reason": "UNAUTHORIZED", "explanation": (
            "This server could not verify that you are authorized to access the document "
            "you requested.")}})
    for kind, status in (("429", 429), ("500", 500), ("transient", 503), ("timeout", 504),
                         ("expired_token", 401), ("missing_token", 401)):
        got, body = REDDIT.error_answer(kind, request)
        assert got == status and body["success"] is False
    event = server(v3_body()).events[0]
    event.raw.response_status = 429
    event.raw.response_body = json.dumps(REDDIT.error_answer("429", request)[1]).encode()
    assert REDDIT.is_transient(event)
    assert REDDIT.answer_text(event) == ("TOO_MANY_REQUESTS: Too many requests/events within "
                                         "timeframe.")


def test_test_ids_are_test_event_codes() -> None:
    (event,) = server(v3_body(v3_item(), test_id="t2_test123")).events
    assert REDDIT.test_event_code(event) == "t2_test123"
    item = as_v2(v3_item())
    (legacy,) = server({"events": [item], "test_mode": True}, V2_URL).events
    assert REDDIT.test_event_code(legacy) == "test_mode"
    assert REDDIT.test_event_code(server(v3_body()).events[0]) is None


def test_a_recorded_2xx_answer_listing_invalid_events_refuses_those() -> None:
    record = {**v3_body(v3_item(), v3_item()), "pixel_id": PIXEL, "status": 200,
              "answer": {"data": {"message": "Successfully processed 1 conversion events."},
                         "invalid_events": [{"error_message": "bad value", "event_index": 1}]}}
    request = REDDIT.from_backend_log(record)
    assert request is not None and request.url == V3_URL and request.channel == "log"
    answer = REDDIT.handle_server(request)
    first, second = answer.events
    assert not first.extra.get("rejected_by_platform")
    assert "invalid_events: bad value" in second.extra["rejected_by_platform"]
    result = match_events(answer.events)
    assert result.rejected == [second]


def test_backend_log_lines() -> None:
    v2 = REDDIT.from_backend_log({"events": [as_v2(v3_item())], "account_id": PIXEL})
    assert v2 is not None and v2.url == V2_URL
    (event,) = platforms.decode_request(v2, "server")
    assert event.event_name == "Purchase" and event.pixel_id == PIXEL
    assert REDDIT.from_backend_log({"data": [1]}) is None
    assert REDDIT.from_backend_log({"event_name": "Purchase"}) is None


# --- dedup ------------------------------------------------------------------------------------


def test_browser_hash_and_server_plain_or_hashed_share_the_key() -> None:
    browser = decode(hit())
    plain = server(v3_body()).events[0]
    hashed = server(v3_body(v3_item(metadata={"conversion_id": pii_rules.sha256_hex(
        "ORD-1")}))).events[0]
    legacy = server({"events": [as_v2(v3_item())]}, V2_URL).events[0]
    keys = {REDDIT.dedup_key(e) for e in (browser, plain, hashed, legacy)}
    assert len(keys) == 1 and None not in keys
    result = match_events([browser, plain])
    assert len(result.pairs) == 1 and result.ok


def test_type_custom_name_and_pixel_are_part_of_the_key() -> None:
    browser = decode(hit())
    other_type = server(v3_body(v3_item(type={"tracking_type": "ADD_TO_CART"}))).events[0]
    as_custom = server(v3_body(v3_item(type={"tracking_type": "CUSTOM",
                                              "custom_event_name": "Purchase"}))).events[0]
    other_pixel = server(v3_body(), V3_URL.replace(PIXEL, "a2_other")).events[0]
    keys = [REDDIT.dedup_key(e) for e in (browser, other_type, as_custom, other_pixel)]
    assert len(set(keys)) == 4
    custom_a = decode(hit(event="Custom", **{"m.customEventName": "Signup"}))
    custom_b = decode(hit(event="Custom", **{"m.customEventName": "signup"}))
    assert REDDIT.dedup_key(custom_a) != REDDIT.dedup_key(custom_b)  # case-sensitive
    assert REDDIT.deduplicates("PageVisit") and "SHA-256" in REDDIT.dedup_rule()


def test_conversion_key_forms() -> None:
    assert conversion_key(None) == (None, None, None)
    assert conversion_key("") == (None, None, None)
    assert conversion_key(True) == (None, None, None)
    assert conversion_key(42) == (pii_rules.sha256_hex("42"), "42", "plain")
    assert conversion_key(" ORD-1")[0] != conversion_key("ORD-1")[0]  # hashed as sent
    assert conversion_key(HEX.upper()) == (HEX, HEX.upper(), "hashed")


# --- Reddit's own findings --------------------------------------------------------------------


def _findings(*events: Event) -> list[Any]:
    return reddit_findings(match_events(list(events)))


def test_a_suffixed_server_id_is_a_near_miss_in_the_hashed_form() -> None:
    browser = decode(hit())
    suffixed = server(v3_body(v3_item(metadata={"conversion_id": "ORD-1-server"}))).events[0]
    (finding,) = _findings(browser, suffixed)
    assert finding.code == "near-miss-event-id" and "'-server'" in finding.message
    prefixed = server(v3_body(v3_item(metadata={"conversion_id": "shop:ORD-1"}))).events[0]
    assert "prefix 'shop:'" in _findings(browser, prefixed)[0].message
    spaced = server(v3_body(v3_item(metadata={"conversion_id": "ORD-1 "}))).events[0]
    assert "whitespace" in _findings(browser, spaced)[0].message
    unrelated = server(v3_body(v3_item(metadata={"conversion_id": "XYZ-9"}))).events[0]
    assert _findings(browser, unrelated) == []


def test_hashed_twice_on_either_side() -> None:
    browser = decode(hit())
    twice = pii_rules.sha256_hex(pii_rules.sha256_hex("ORD-1"))
    server_twice = server(v3_body(v3_item(metadata={"conversion_id": twice}))).events[0]
    (finding,) = _findings(browser, server_twice)
    assert finding.code == "reddit-conversion-id-hashed-twice" and "backend" in finding.message
    page_twice = decode(hit(**{"m.conversionId": twice}))
    (finding,) = _findings(page_twice, server(v3_body()).events[0])
    assert finding.code == "reddit-conversion-id-hashed-twice" and "page" in finding.message


def test_plain_pixel_id_with_a_hashed_server_id_merges_with_a_warning() -> None:
    browser = decode(hit(**{"m.conversionId": "ORD-1"}))
    hashed = server(v3_body(v3_item(metadata={"conversion_id": pii_rules.sha256_hex(
        "ORD-1")}))).events[0]
    result = match_events([browser, hashed])
    assert len(result.pairs) == 1
    assert [f.code for f in reddit_findings(result)] == ["reddit-conversion-id-hash-form"]
    # the pixel's own form (hashed) with a plain server id is Reddit's documented case
    assert _findings(decode(hit()), server(v3_body()).events[0]) == []


def test_a_custom_event_named_like_a_standard_one_is_a_name_mismatch() -> None:
    as_custom = server(v3_body(v3_item(type={"tracking_type": "CUSTOM",
                                              "custom_event_name": "Purchase"}))).events[0]
    (finding,) = _findings(decode(hit()), as_custom)
    assert finding.code == "event-name-mismatch" and "'CUSTOM'" in finding.message


def _pair(browser_extra: dict[str, Any], server_extra: dict[str, Any]) -> Pair:
    browser = decode(hit())
    plain = server(v3_body()).events[0]
    browser.extra.update(browser_extra)
    plain.extra.update(server_extra)
    return Pair(browser, plain)


def test_identity_mismatches_on_a_pair() -> None:
    assert REDDIT.identity_findings(_pair({}, {})) == []
    other = REDDIT.identity_findings(_pair({}, {"uuid": "1.0b1e0000-0000-4000-8000-000000000000"}))
    assert [f.code for f in other] == ["reddit-uuid-mismatch"]
    hashed = REDDIT.identity_findings(_pair({}, {"uuid": pii_rules.sha256_hex(UUID)}))
    assert "never hashed" in hashed[0].message
    bare = REDDIT.identity_findings(_pair({}, {"uuid": UUID}))  # the UUID part alone is fine
    assert bare == []
    click = REDDIT.identity_findings(_pair({"click_id": "c1"}, {"click_id":
                                                              pii_rules.sha256_hex("c1")}))
    assert [f.code for f in click] == ["reddit-click-id-mismatch"]
    assert "SHA-256" in click[0].message


def test_missing_ids_are_judged_against_when_the_browser_got_them() -> None:
    browser = decode(hit())
    item = v3_item(user={})
    del item["click_id"]
    late = server(v3_body(item)).events[0]
    browser.extra["click_id"] = "c1"
    # the server copy happened after the pixel's first hit with the uuid: it could have it
    browser.event_time = late.event_time - 60
    codes = [f.code for f in _findings(browser, late)]
    assert codes == ["reddit-uuid-missing", "reddit-click-id-missing"]
    # ... but not when the pixel first set them after the server copy (a first page)
    browser.event_time = late.event_time + 1
    assert _findings(browser, late) == []


# --- PII ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "raw", "normalized", "digest"), pii_rules.TEST_VECTORS)
def test_pii_vectors(key: str, raw: str, normalized: str, digest: str) -> None:
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == digest
    assert REDDIT.expected_value(key, raw) == digest


def test_pii_rules() -> None:
    assert pii_rules.norm_email(" Jane.Doe@Example.com ") == "janedoe@example.com"
    assert pii_rules.norm_email("not-an-address") == "not-an-address"
    assert pii_rules.norm_phone("+1 (650) 555-1212 ext. 7") == "+16505551212"
    assert pii_rules.norm_phone("0044 20 7946 0958") == "+442079460958"
    assert pii_rules.norm_phone("") == ""
    assert pii_rules.hash_value("ph", "16505551234") != pii_rules.PHONE_WITHOUT_PLUS_SHA256
    assert pii_rules.hash_value("idfa", "ab-cd") == pii_rules.sha256_hex("AB-CD")
    assert pii_rules.hash_value("uuid", COOKIE) == COOKIE
    assert pii_rules.hash_value("em", HEX.upper()) == HEX
    assert REDDIT.hashed_keys == {"em", "ph", "external_id"}
    assert REDDIT.expected_value("ct", "Menlo Park") is None


def test_customer_values_for_each_side() -> None:
    browser = decode(hit(pn=HEX, external_id=HEX, idfa=HEX))
    assert REDDIT.customer_values(browser) == {"em": [HEX], "ph": [HEX], "external_id": [HEX]}
    api = server(v3_body(v3_item(user={"email": HEX, "phone_number": "", "uuid": COOKIE,
                                       "aaid": HEX}))).events[0]
    assert REDDIT.customer_values(api) == {"em": [HEX]}


def test_fix_texts_are_in_reddits_words() -> None:
    event = decode(hit())
    codes = ["missing-event-id", "near-miss-event-id", "event-name-mismatch", "wrong-pixel",
             "server-event-missing", "browser-event-missing", "raw-pii-in-user-data",
             "unnormalized-hash", "cross-channel-hash-mismatch", "test-event-code",
             "server-call-rejected", "event-time-too-old", "event-time-in-future",
             "duplicate-browser-trigger", "payload-mismatch", "server-retry-new-id"]
    for code in codes:
        text = REDDIT.fix(code, event)
        assert text and "fbq" not in text and "event_id" not in text, code
        assert "rdt(" in text or "conversion" in text.lower() or "Reddit" in text, code
    assert REDDIT.fix("no-such-code", event) is None


# --- over real sockets ------------------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[ConversionSink]:
    with ConversionSink(EventStore()) as running:
        yield running


def _post(url: str, body: Any, token: str | None = TOKEN) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json",
               **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sink_answers_the_conversions_api_over_http(sink: ConversionSink) -> None:
    base = sink.url_for("reddit")
    status, body = _post(f"{base}/api/v3/pixels/{PIXEL}/conversion_events", v3_body())
    assert status == 200 and body["data"]["message"].startswith("Successfully processed 1")
    status, body = _post(f"{base}/api/v2.0/conversions/events/{PIXEL}",
                         {"events": [as_v2(v3_item())]})
    assert status == 200 and "message" in body
    stale = v3_item()
    stale["event_at"] -= 8 * 86400 * 1000
    status, body = _post(f"{base}/api/v3/pixels/{PIXEL}/conversion_events", v3_body(stale))
    assert status == 400 and body["invalid_events"][0]["event_index"] == 0
    sink.expect_token(TOKEN, platform="reddit")
    status, body = _post(f"{base}/api/v3/pixels/{PIXEL}/conversion_events", v3_body(),
                         token="wrong")
    assert status == 401 and body["error"]["reason"] == "UNAUTHORIZED"
    sink.fail_next(1, kind="429", platform="reddit")
    status, body = _post(f"{base}/api/v3/pixels/{PIXEL}/conversion_events", v3_body())
    assert status == 429
    events = sink.store.since(0)
    assert [e.raw.response_status for e in events] == [200, 200, 400, 401, 429]
    assert all(e.platform == "reddit" and e.event_name == "Purchase" for e in events)
    assert len(match_events(events).rejected) == 3
    # another path on Reddit's host is no Conversions API call
    status, _ = _post(f"{base}/api/v3/pixels/{PIXEL}/other", v3_body())
    assert status == 404


def test_no_official_client_exists_so_the_shop_sends_json() -> None:
    assert load_trackers()["reddit"] is TRACKER
    assert TRACKER.clients == ("json", "json-v2.0")
    assert TRACKER.default_tag_id.startswith("a2_") and TRACKER.real_api_url == (
        "https://ads-api.reddit.com")


# --- the shop's tracker -----------------------------------------------------------------------


CUSTOMER = Customer(email=" John.Doe+shop@Example.COM ", phone="+1 (650) 555-1212")
PURCHASE_DATA = {"content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                          "item_price": 12.5}],
                 "num_items": 2, "value": 25.0, "currency": "USD", "content_type": "product",
                 "order_id": "ORD-1"}


def _tracked() -> list[TrackedEvent]:
    url = "https://shop.example/thanks/ORD-1"
    return [TrackedEvent("PageView", "pageview.1", {}, url),
            TrackedEvent("InitiateCheckout", "initiatecheckout.1", dict(PURCHASE_DATA), url),
            TrackedEvent("Purchase", "purchase.ORD-1", dict(PURCHASE_DATA), url)]


def _config(api_url: str = "https://ads-api.reddit.com", client: str = "json") -> TrackerConfig:
    return TrackerConfig("reddit", TRACKER.default_tag_id, api_url, TRACKER.default_token, client)


def test_tracker_browser_calls() -> None:
    head = TRACKER.head(_config(), CUSTOMER)
    assert "https://www.redditstatic.com/ads/pixel.js" in head
    assert f"rdt('init', '{TRACKER.default_tag_id}', " in head
    assert '"email": " John.Doe+shop@Example.COM "' in head and '"externalId": "cust-' in head
    assert "email" not in TRACKER.head(_config(), None)
    page, custom, purchase = TRACKER.browser_calls(_config(), _tracked(), ActiveFaults(),
                                                   CUSTOMER)
    assert page == "rdt('track', 'PageVisit', {\"conversionId\": \"pageview.1\"});"
    assert custom.startswith("rdt('track', 'Custom', ")
    assert '"customEventName": "InitiateCheckout"' in custom
    assert '"conversionId": "purchase.ORD-1"' in purchase and '"transactionId": "ORD-1"' in purchase
    assert '"value": 25.0' in purchase and '"itemCount": 2' in purchase
    no_id = TRACKER.browser_calls(_config(), _tracked(),
                                  ActiveFaults({"browser_no_conversion_id": None}), CUSTOMER)
    assert "conversionId" not in no_id[-1]
    gone = TRACKER.browser_calls(_config(), _tracked(), ActiveFaults({"no_browser_purchase": None}),
                                 CUSTOMER)
    assert len(gone) == 2
    assert set(TRACKER.faults) >= {"id_mismatch", "missing_id", "unhashed_pii", "stale_time",
                                   "bad_auth", "no_server_purchase"}


_FAULT_STATUSES = [
    ("", 200), ("id_mismatch", 200), ("missing_id", 200), ("unhashed_pii", 200),
    ("stale_time", 400), ("bad_auth", 401), ("conversion_id_hashed_twice", 200),
    ("purchase_as_custom", 200), ("uuid_mismatch", 200), ("event_at_seconds", 400),
]


# event_at in seconds is a v3 mistake only: v2.0 sends an RFC 3339 string
@pytest.mark.parametrize(("client", "fault", "status"),
                         [("json", f, s) for f, s in _FAULT_STATUSES]
                         + [("json-v2.0", f, s) for f, s in _FAULT_STATUSES
                            if f != "event_at_seconds"])
def test_tracker_server_calls_reach_the_sink(sink: ConversionSink, client: str, fault: str,
                                             status: int) -> None:
    sink.expect_token(TRACKER.default_token, platform="reddit")
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test",
                         cookies={"_rdt_uuid": COOKIE, "_rdt_cid": "click-1"})
    faults = ActiveFaults({fault: None} if fault else {})
    calls = TRACKER.server_calls(_config(sink.url_for("reddit"), client), _tracked(), faults,
                                 ctx, CUSTOMER)
    assert len(calls) == 3  # PageVisit, the Custom InitiateCheckout, Purchase
    answered = [call.send(10.0) for call in calls]
    assert [s for s, _ in answered[:2]] == [200, 200]
    got, answer = answered[2]
    assert got == status, answer
    assert calls[2].retryable(got, answer) is False
    page, custom, purchase = sink.store.since(0)
    assert (page.event_name, custom.event_name) == ("PageVisit", "InitiateCheckout")
    assert custom.extra["tracking_type"] == "Custom"
    assert page.extra["api"] == ("conversions-v3" if client == "json" else "conversions-v2.0")
    expected_id = {"id_mismatch": "purchase.ORD-1-server", "missing_id": None,
                   "conversion_id_hashed_twice": pii_rules.sha256_hex(pii_rules.sha256_hex(
                       "purchase.ORD-1"))}.get(fault, "purchase.ORD-1")
    assert purchase.extra["conversion_id"] == expected_id
    assert purchase.event_name == "Purchase" and purchase.pixel_id == TRACKER.default_tag_id
    assert (purchase.extra["uuid"] == COOKIE) is (fault != "uuid_mismatch")
    assert purchase.extra["click_id"] == "click-1" and purchase.value == 25.0
    values = REDDIT.customer_values(purchase)
    if fault == "unhashed_pii":
        assert values["em"] == ["johndoe@example.com"] and values["ph"] == ["+16505551212"]
    else:
        assert values["em"] == [pii_rules.hash_value("em", CUSTOMER.email)]
        assert values["ph"] == [pii_rules.hash_value("ph", CUSTOMER.phone)]
        assert values["external_id"] == [pii_rules.hash_value("external_id",
                                                              CUSTOMER.customer_id)]


def test_tracker_retries_only_what_can_get_better() -> None:
    assert retryable(None, b"") and retryable(503, b"") and retryable(429, b"")
    assert not retryable(400, b'{"invalid_events": []}') and not retryable(401, b"")


def test_tracker_v2_shape() -> None:
    item = TRACKER.v3_event(_tracked()[2], "Purchase", None,
                            RequestContext("203.0.113.7", "UA"), None)
    legacy = as_v2(item)
    assert legacy["event_type"] == {"tracking_type": "Purchase"}
    assert legacy["event_metadata"]["value_decimal"] == 25.0
    assert legacy["event_at"].endswith("Z") and "T" in legacy["event_at"]
    custom = as_v2(copy.deepcopy({**item, "type": {"tracking_type": "CUSTOM",
                                                   "custom_event_name": "X"}}))
    assert custom["event_type"] == {"tracking_type": "Custom", "custom_event_name": "X"}


# --- the pixel stand-in in a real Chromium ----------------------------------------------------


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
    from example_site.trackers.reddit import BASE_CODE

    _Page.html = ("<!doctype html><html><head><script>" + BASE_CODE + f"""
rdt('init', '{PIXEL}', {{email: ' Al.ice$+Apple@Example.Com ', phoneNumber: '+15554441234',
  externalId: 'customer12345'}});
rdt('track', 'PageVisit');
rdt('track', 'Purchase', {{conversionId: 'purchase.ORD-7', transactionId: 'ORD-7',
  currency: 'USD', value: 25, itemCount: 2, products: [{{id: 'sku-1', name: 'Mug'}}]}});
</script></head><body>thanks</body></html>""").encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/thanks?rdt_cid=Click42"
    server.shutdown()


@pytest.mark.browser
def test_stand_in_in_chromium(pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
                              shop_page: str) -> None:
    pixelcheck_page.goto(shop_page)
    # the hits left before the load event goto waited for: nothing pending
    # (two image requests in flight at once: either may reach the proxy first, and
    # did, once in a run of the browser tests with -n 1)
    names = [e.event_name for e in pixelcheck.browser_events if e.platform == "reddit"]
    assert sorted(names) == ["PageVisit", "Purchase"]
    event = pixelcheck.wait_for("Purchase", source="browser", platform="reddit")
    assert (event.pixel_id, event.value) == (PIXEL, 25.0)
    assert event.event_id == pii_rules.sha256_hex("purchase.ORD-7")
    assert event.custom_data["products"] == [{"id": "sku-1", "name": "Mug"}]
    # Reddit's documented vectors, hashed in the browser
    assert event.user_data["em"] == pii_rules.TEST_VECTORS[0][3]
    assert event.user_data["pn"] == pii_rules.TEST_VECTORS[2][3]
    assert event.user_data["external_id"] == pii_rules.TEST_VECTORS[3][3]
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    stamp, _, uuid_part = cookies["_rdt_uuid"].partition(".")
    assert stamp.isdigit() and len(stamp) == 13 and uuid_part == event.extra["uuid"]
    assert cookies["_rdt_cid"] == "Click42" == event.extra["click_id"]
    page_visit = next(e for e in pixelcheck.browser_events if e.event_name == "PageVisit")
    assert page_visit.event_id is None and page_visit.decoded
    served = {(e.url.split("?")[0], e.handled_by) for e in pixelcheck.traffic()}
    assert ("https://www.redditstatic.com/ads/pixel.js", "library") in served
    assert (f"https://pixel-config.reddit.com/pixels/{PIXEL}/config", "library") in served
    assert any("/ads/conversions-config/" in url and how == "library" for url, how in served)
    assert all(how != "blocked" for _, how in served)


def test_identity_helpers() -> None:
    assert identity.uuid_part(COOKIE) == UUID and identity.uuid_part(UUID) == UUID
    browser = decode(hit())
    seen = identity.first_seen([browser])
    assert seen[("uuid", UUID)] == browser.event_time
