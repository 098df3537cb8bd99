"""Pinterest (Pinterest Tag + Conversions API v5): the decoder on recorded samples and on
malformed hits, the /user/ + /v3/ pairs, the Conversions API answers, the dedup key and
name mapping, the PII rules, the _epik identity checks, the sink over real sockets
(urllib and Pinterest's own SDK) and the shop's tracker."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.findings import CATALOGUE
from pytest_pixelcheck.matching import Pair, match_events
from pytest_pixelcheck.platforms.pinterest import PINTEREST, identity, pii_rules
from pytest_pixelcheck.platforms.pinterest.platform import tag_canonical
from pytest_pixelcheck.sink import ConversionSink

# the official SDK's generated client calls urllib3 1.26 APIs it deprecates
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:openapi_generated.*")

SAMPLES = sorted(Path(PINTEREST.samples_dir or ".").glob("*.json"))
TOKEN = "pina-test-token-0123456789"
TAG = "2612345678901"
ACCOUNT = "549755885175"
API_URL = f"https://api.pinterest.com/v5/ad_accounts/{ACCOUNT}/events"
HEX = "a" * 64
EPIK = "dj0yJnU9Q2xpY2sxMjM"


# --- helpers ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_user_hits() -> Iterator[None]:
    """Each test decides which /user/ hits the decoder has seen."""
    PINTEREST.forget_decoded()
    yield
    PINTEREST.forget_decoded()


def hit_url(path: str = "/v3/", **params: Any) -> str:
    query: dict[str, Any] = {
        "event": "checkout",
        "ed": json.dumps({"event_id": "purchase.ORD-1", "value": 25, "currency": "USD",
                          "order_id": "ORD-1", "order_quantity": 2,
                          "line_items": [{"product_id": "sku-1", "product_price": 12.5,
                                          "product_quantity": 2}]}),
        "tid": TAG,
        "pd": json.dumps({"em": HEX}),
        "ad": json.dumps({"loc": "https://shop.example/thanks/ORD-1", "ref": "", "if": False,
                          "sh": 720, "sw": 1280}),
        "cb": "1795913901123",
    }
    query.update(params)
    return f"https://ct.pinterest.com{path}?" + urlencode(
        {k: v for k, v in query.items() if v is not None})


def decode(url: str, arrival: float | None = None, method: str = "GET",
           body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> list[Event]:
    return PINTEREST.decode_browser(CapturedRequest(
        method, url, headers or [], body, arrival if arrival is not None else time.time(),
        "proxy"))


def event_item(**fields: Any) -> dict[str, Any]:
    item = {"event_name": "checkout", "action_source": "web", "event_time": int(time.time()),
            "event_id": "purchase.ORD-1", "event_source_url": "https://shop.example/thanks",
            "user_data": {"em": [HEX], "ph": [HEX], "client_ip_address": "203.0.113.7",
                          "client_user_agent": "Mozilla/5.0", "click_id": EPIK},
            "custom_data": {"currency": "USD", "value": "25.00", "order_id": "ORD-1",
                            "content_ids": ["sku-1"], "num_items": 2,
                            "contents": [{"id": "sku-1", "item_price": "12.50",
                                          "quantity": 2}]}}
    item.update(fields)
    return item


def server(body: Any, *, url: str = API_URL, token: str | None = TOKEN,
           headers: list[tuple[str, str]] | None = None, arrival: float | None = None):
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    data = text.encode() if isinstance(text, str) else text
    if headers is None:
        headers = [("Content-Type", "application/json")]
        if token is not None:
            headers.append(("Authorization", f"Bearer {token}"))
    request = CapturedRequest("POST", url, headers, data,
                              arrival if arrival is not None else time.time(), "proxy")
    answer = PINTEREST.handle_server(request)
    # as the sink does: the status is the request's before anyone reads the events
    request.response_status = answer.status
    return answer


def load(name: str) -> tuple[dict[str, Any], CapturedRequest]:
    sample = json.loads((PINTEREST.samples_dir / f"{name}.json").read_text(encoding="utf-8"))
    return sample, CapturedRequest.from_dict({**sample["request"], "channel": "proxy"})


# --- recorded samples ---------------------------------------------------------------------


def test_the_package_registers_pinterest() -> None:
    assert platforms.get("pinterest") is PINTEREST
    assert PINTEREST.title == "Pinterest" and PINTEREST.server_hosts == {"api.pinterest.com"}
    assert "authorization" in PINTEREST.secret_headers
    for code in ("pinterest-api-event-name-spelling", "epik-mismatch", "epik-missing",
                 "pinterest-checkout-without-order-id", "pinterest-offline-not-deduplicated"):
        assert code in CATALOGUE


def test_samples_cover_what_the_brief_asks() -> None:
    names = {p.stem for p in SAMPLES}
    assert {"browser-checkout-user", "browser-checkout-v3-mirror", "browser-init-user",
            "server-sdk-checkout", "server-sdk-checkout-test-mode", "server-unhashed-email",
            "server-stale-event-time", "server-missing-event-id",
            "server-no-authorization"} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_decodes_and_is_answered_as_recorded(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    request = CapturedRequest.from_dict({**sample["request"], "channel": "proxy"})
    expect = sample["expect"]
    if sample["kind"] == "browser":
        if expect["mirror"]:
            # a /v3/ copy is a copy only after its /user/ hit
            _, user = load(path.stem.replace("-v3-mirror", "-user"))
            PINTEREST.decode_browser(user)
        events = PINTEREST.decode_browser(request)
        assert PINTEREST.collection_response(request).status == expect["status"]
        assert all(bool(e.extra.get("not_a_conversion")) == expect["not_a_conversion"]
                   for e in events)
        assert all(bool(e.extra.get("mirror_of")) == expect["mirror"] for e in events)
        assert all(e.extra["tag_id"] == expect["tag_id"] for e in events)
        assert all(e.extra["epik"] == expect["epik"] for e in events)
    else:
        answer = PINTEREST.handle_server(request)
        events = answer.events
        assert answer.status == expect["status"], answer.body
        if "answer_code" in expect:
            assert answer.body["code"] == expect["answer_code"]
        if expect.get("test_mode"):
            assert all(PINTEREST.test_event_code(e) for e in events)
        if expect.get("warning"):
            assert answer.body["events"][0]["warning_message"]
    got = [{"event_name": e.event_name, "event_id": e.event_id, "pixel_id": e.pixel_id}
           for e in events]
    assert got == expect["events"]
    assert all(e.decoded for e in events) != bool(expect.get("undecodable"))


def test_browser_checkout_sample_fields() -> None:
    _, request = load("browser-checkout-user")
    (event,) = PINTEREST.decode_browser(request)
    assert event.value == 25 and event.custom_data["currency"] == "USD"
    assert event.custom_data["order_id"] == "ORD-1"
    assert event.custom_data["content_ids"] == ["sku-1"]  # from line_items
    assert event.page_url == "http://127.0.0.1/thanks/ORD-1?epik=" + event.extra["epik"]
    assert abs(event.event_time - event.raw.arrival_time) < 5
    # the stand-in hashed pintrk('load', TAG, {em}) the way Pinterest wants it
    assert event.user_data == {"em": pii_rules.hash_value("em", " Jane.Doe@Example.com ")}
    assert PINTEREST.customer_values(event) == {"em": [event.user_data["em"]]}
    assert PINTEREST.dedup_key(event) == ("checkout", "purchase.ORD-1")


def test_the_sdk_sample_is_what_the_sdk_sends() -> None:
    sample, request = load("server-sdk-checkout")
    assert request.header("user-agent") == "pins-sdk/python/v0.2.7"
    assert request.header("authorization") == "Bearer REDACTED"
    assert request.url.endswith("/events?test=False")
    body = json.loads(request.body)
    # the client sends null for every optional field it was not given
    assert body["data"][0]["partner_name"] is None and body["data"][0]["app_id"] is None
    answer = PINTEREST.handle_server(request)
    (event,) = answer.events
    assert PINTEREST.test_event_code(event) is None  # test=False is no test
    assert event.extra["click_id"] == "dj0yJnU9cGl4ZWxjaGVja0NsaWNrMTIz"
    assert event.extra["ad_account_id"] == ACCOUNT
    assert answer.token == "REDACTED" and answer.token_location == "header"


# --- browser decoder ------------------------------------------------------------------------


def test_collection_hosts_and_paths() -> None:
    for path in ("/v3/", "/v3", "/user/", "/user", "/stats/"):
        assert PINTEREST.is_collection("ct.pinterest.com", path), path
    for host, path in [("ct.pinterest.com", "/"), ("ct.pinterest.com", "/ct.html"),
                       ("s.pinimg.com", "/ct/core.js"), ("www.pinterest.com", "/v3/")]:
        assert not PINTEREST.is_collection(host, path), (host, path)


def test_library_stand_in_and_its_parts() -> None:
    core = PINTEREST.library_response("s.pinimg.com", "/ct/core.js")
    assert core is not None and b"pintrk" in core.body and b"/user/?" in core.body
    part = PINTEREST.library_response("s.pinimg.com", "/ct/lib/main.55e552f1.js")
    assert part is not None and part.status == 200 and b"pintrk" not in part.body
    assert PINTEREST.library_response("s.pinimg.com", "/images/x.png") is None
    assert PINTEREST.library_response("connect.facebook.net", "/en_US/fbevents.js") is None


def test_answers_to_the_hits() -> None:
    user = CapturedRequest("GET", hit_url("/user/"), [("Origin", "http://127.0.0.1:8000")],
                           b"", 0.0, "proxy")
    answer = PINTEREST.collection_response(user)
    assert answer.content_type == "application/json" and json.loads(answer.body)
    # the tag reads it with credentials: the page's origin, never "*"
    assert answer.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    assert answer.headers["Access-Control-Allow-Credentials"] == "true"
    v3 = CapturedRequest("GET", hit_url("/v3/"), [], b"", 0.0, "proxy")
    assert PINTEREST.collection_response(v3).content_type == "image/gif"


def test_a_user_hit_and_its_v3_copy_count_once() -> None:
    now = time.time()
    (user,) = decode(hit_url("/user/"), now)
    (copy_,) = decode(hit_url("/v3/"), now + 0.05)
    assert not user.extra.get("mirror_of") and copy_.extra["mirror_of"]
    assert PINTEREST.dedup_key(copy_) is None
    result = match_events([user, copy_])
    assert result.mirrors == [copy_] and result.browser_only == [user]
    (row,) = result.stats().values()
    assert row.browser == 1
    # a second /v3/ of the same parameters has no /user/ left to copy: it is a hit
    (again,) = decode(hit_url("/v3/"), now + 0.1)
    assert not again.extra.get("mirror_of")


def test_a_lone_v3_or_user_hit_is_the_hit() -> None:
    (v3,) = decode(hit_url("/v3/"))
    assert not v3.extra.get("mirror_of") and PINTEREST.dedup_key(v3)
    (user,) = decode(hit_url("/user/"))
    assert PINTEREST.dedup_key(user) == ("checkout", "purchase.ORD-1")
    # a /v3/ long after its /user/ is no copy of it
    now = time.time()
    decode(hit_url("/user/", cb="1"), now)
    (late,) = decode(hit_url("/v3/", cb="1"), now + 120)
    assert not late.extra.get("mirror_of")


def test_omnibug_hits_are_read() -> None:
    """OMNI's real hits (PLATFORMS.md 6): init with pd, a checkout without event_id, and
    the older /user/ lookup with nothing but tid and cb."""
    init = ("https://ct.pinterest.com/v3/?tid=abc123&pd=%7B%22em%22%3A%22f660ab912ec121d1b1e928"
            "a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a%22%7D&event=init&ad=%7B%22loc%22%3A%22"
            "https%3A%2F%2Fwww.example.com%2F%22%2C%22ref%22%3A%22%22%2C%22if%22%3Afalse%2C%22"
            "sh%22%3A1440%2C%22sw%22%3A2560%7D&cb=1583538016603")
    (event,) = decode(init)
    assert event.decoded and event.extra["not_a_conversion"]
    assert event.user_data["em"] == pii_rules.TEST_VECTORS[0][3]
    assert event.page_url == "https://www.example.com/"
    assert event.event_time == pytest.approx(1583538016.603)
    (checkout,) = decode(hit_url(ed=json.dumps({"value": 116, "order_quantity": 2,
                                                "currency": "USD"})))
    assert checkout.decoded and checkout.event_id is None
    assert PINTEREST.dedup_key(checkout) is None
    (lookup,) = decode("https://ct.pinterest.com/user/?tid=1235871753249&cb=1233538014046")
    assert lookup.decoded and lookup.extra["not_a_conversion"]


def test_telemetry_is_no_event() -> None:
    (stats,) = decode("https://ct.pinterest.com/stats/", method="POST", body=b'{"x":1}')
    assert stats.decoded and stats.extra["not_a_conversion"] and stats.event_name is None
    assert not match_events([stats]).browser_only


def test_event_id_under_another_key_is_noticed() -> None:
    (event,) = decode(hit_url(ed=json.dumps({"eventID": "purchase.ORD-1", "value": 1})))
    assert event.event_id is None and event.extra["event_id_under"] == "eventID"
    assert "'eventID'" in PINTEREST.fix("missing-event-id", event)


@pytest.mark.parametrize("url", [
    hit_url(ed="{not json"),
    hit_url(pd="[1"),
    hit_url(ad="nope"),
    hit_url(event=None),
    hit_url(tid=None),
    hit_url(ed=json.dumps(["a list"]), pd=json.dumps("a string")),
    hit_url(ed=json.dumps({"event_id": {"nested": 1}, "line_items": "x"})),
    hit_url(cb="yesterday"),
    "https://ct.pinterest.com/v3/",
    "https://ct.pinterest.com/v3/?%zz=%%&&==",
    "https://ct.pinterest.com/user/?event=checkout",
], ids=["bad-ed", "bad-pd", "bad-ad", "no-event", "no-tid", "wrong-types", "odd-ed",
        "bad-cb", "empty", "garbage", "user-no-tid"])
def test_browser_decoder_never_raises(url: str) -> None:
    events = decode(url)
    assert events and all(isinstance(e, Event) and e.source == "browser" for e in events)
    for event in events:
        assert event.decoded or isinstance(event.error, str)


def test_malformed_hits_say_why() -> None:
    (bad,) = decode(hit_url(ed="{not json"))
    assert "`ed` is not JSON" in bad.error
    (nameless,) = decode(hit_url(event=None))
    assert "no `event`" in nameless.error
    (post,) = decode("https://ct.pinterest.com/v3/", method="POST",
                     body=b"\xff\xfe garbage")
    assert not post.decoded
    form = urlencode({"event": "checkout", "tid": TAG,
                      "ed": json.dumps({"event_id": "x"})}).encode()
    (posted,) = decode("https://ct.pinterest.com/v3/", method="POST", body=form)
    assert posted.decoded and posted.event_id == "x"


# --- Conversions API answers ---------------------------------------------------------------


def test_good_call_is_answered_like_pinterest() -> None:
    answer = server({"data": [event_item()]})
    assert answer.status == 200
    assert answer.body == {"num_events_received": 1, "num_events_processed": 1,
                           "events": [{"status": "processed", "error_message": None,
                                       "warning_message": None}]}
    assert answer.token == TOKEN and answer.token_location == "header"
    (event,) = answer.events
    assert (event.event_name, event.event_id, event.pixel_id) == ("checkout", "purchase.ORD-1",
                                                                   None)
    assert event.value == "25.00" and event.extra["click_id"] == EPIK
    assert event.extra["ad_account_id"] == ACCOUNT


@pytest.mark.parametrize("headers,why", [
    ([("Content-Type", "application/json")], "no Authorization header"),
    ([("Authorization", TOKEN)], "not 'Bearer"),
    ([("Authorization", "Bearer ")], "not 'Bearer"),
    ([("Authorization", f"Basic {TOKEN}")], "not 'Bearer"),
], ids=["none", "no-scheme", "empty", "basic"])
def test_bad_auth_is_401_code_2(headers: list[tuple[str, str]], why: str) -> None:
    answer = server({"data": [event_item()]}, headers=headers)
    assert answer.status == 401
    assert answer.body == {"code": 2, "message": "Authentication failed."}
    (event,) = answer.events
    assert event.event_id == "purchase.ORD-1"  # decoded all the same
    assert why in event.extra["rejection"][0]


def test_token_in_the_query_is_401_and_named() -> None:
    answer = server({"data": [event_item()]}, url=API_URL + "?access_token=" + TOKEN,
                    headers=[("Content-Type", "application/json")])
    assert answer.status == 401 and answer.body["code"] == 2
    assert answer.token == TOKEN and answer.token_location == "query"
    assert "Authorization: Bearer" in answer.events[0].extra["rejection"][0]


def test_missing_required_field_is_400_4196() -> None:
    item = event_item()
    del item["event_id"]
    answer = server({"data": [item]})
    assert answer.status == 400 and answer.body["code"] == 4196
    assert answer.body["message"] == ("Invalid request: 'event_id' is a required property "
                                      "at data[0]")
    assert [str(v) for v in answer.violations] == ["data[0].event_id: missing (required)"]
    (event,) = answer.events
    assert event.event_id is None and not match_events([event]).server_only


def test_unhashed_pii_is_422_naming_the_field_not_the_value() -> None:
    item = event_item()
    item["user_data"]["em"] = ["jane.doe@example.com"]
    item["user_data"]["ph"] = ["+1 650 555 1212"]
    answer = server({"data": [item]})
    assert answer.status == 422 and answer.body["code"] == 422
    assert answer.body["message"] == "Not all events were successfully processed."
    details = answer.body["details"]
    assert details["num_events_received"] == 1 and details["num_events_processed"] == 0
    message = details["events"][0]["error_message"]
    assert "data[0].user_data.em[0] is not a SHA-256 hash" in message
    assert "user_data.ph[0]" in message
    # the answer lands in reports: it names the field, never the customer's value
    assert "jane" not in json.dumps(answer.body) and "650" not in json.dumps(answer.body)
    text = PINTEREST.answer_text(_answered(answer))
    assert "(code 422)" in text and "user_data.em[0]" in text


def _answered(answer: Any) -> Event:
    event = answer.events[0]
    event.raw.response_status = answer.status
    event.raw.response_body = json.dumps(answer.body).encode()
    return event


def test_stale_event_time_is_422() -> None:
    answer = server({"data": [event_item(event_time=int(time.time()) - 8 * 86400)]})
    assert answer.status == 422
    assert "8.0 days old" in answer.body["details"]["events"][0]["error_message"]
    assert server({"data": [event_item(event_time=int(time.time()) - 6 * 86400)]}).status \
        == 200


def test_a_batch_with_one_bad_event_processes_the_rest() -> None:
    bad = event_item(event_id="purchase.ORD-2")
    bad["user_data"]["em"] = ["not-a-hash"]
    answer = server({"data": [event_item(), bad]})
    assert answer.status == 422
    assert [e["status"] for e in answer.body["details"]["events"]] == ["processed", "failed"]
    assert answer.body["details"]["num_events_processed"] == 1


@pytest.mark.parametrize("change,words", [
    (lambda i: i["custom_data"].update(value=25.0), "at data[0].custom_data.value"),
    (lambda i: i["custom_data"].update(category_name="x"),
     "Additional properties are not allowed ('category_name' was unexpected)"),
    (lambda i: i.update(user_data={}), "user_data needs at least one of em"),
    (lambda i: i["user_data"].update(em="jane@example.com"),
     "em is not of type 'array' at data[0].user_data.em"),
    (lambda i: i.update(action_source="website"), "at data[0].action_source"),
    (lambda i: i.update(event_time="1700000000"), "at data[0].event_time"),
], ids=["value-number", "extra-key", "no-match-key", "em-string", "action-source",
        "time-string"])
def test_schema_violations_are_400(change: Any, words: str) -> None:
    item = event_item()
    change(item)
    answer = server({"data": [item]})
    assert answer.status == 400 and answer.body["code"] == 4196, answer.body
    assert words in answer.body["message"]
    assert "jane@" not in answer.body["message"]


@pytest.mark.parametrize("body,words", [
    (b"{not json", "not valid JSON"),
    (b"", "empty"),
    (b"[1]", "JSON list"),
    (json.dumps({"data": []}), "data"),
    (json.dumps({"events": [event_item()]}), "data"),
    (json.dumps({"data": ["a string"]}), "data[0]"),
    (gzip.compress(b"{}")[:10], "Content-Encoding"),
], ids=["bad-json", "empty", "list", "no-events", "wrong-key", "str-item", "bad-gzip"])
def test_malformed_calls_are_400_and_never_raise(body: Any, words: str) -> None:
    headers = [("Content-Type", "application/json"), ("Authorization", f"Bearer {TOKEN}")]
    if words == "Content-Encoding":
        headers.append(("Content-Encoding", "gzip"))
    answer = server(body, headers=headers)
    assert answer.status == 400 and answer.body["code"] == 4196, answer.body
    assert words in answer.body["message"]
    assert answer.events


def test_ad_account_and_batch_limits() -> None:
    answer = server({"data": [event_item()]},
                    url="https://api.pinterest.com/v5/ad_accounts/act_123/events")
    assert answer.status == 400 and "ad_account_id" in answer.body["message"]
    answer = server({"data": [event_item()] * 1001})
    assert answer.status == 400 and len(answer.events) == 1001
    assert "data has 1001 items, at most 1000 are allowed" in answer.body["message"]


def test_non_standard_names_are_processed_with_a_warning() -> None:
    answer = server({"data": [event_item(event_name="addtocart")]})
    assert answer.status == 200
    warning = answer.body["events"][0]["warning_message"]
    assert "'addtocart' is the Pinterest Tag's spelling" in warning and "'add_to_cart'" in warning
    answer = server({"data": [event_item(event_name="my_event")]})
    assert answer.status == 200 and "not a standard event" in \
        answer.body["events"][0]["warning_message"]


@pytest.mark.parametrize("query,marked", [("?test=true", True), ("?test=True", True),
                                          ("?test=False", False), ("", False)])
def test_test_mode_is_read(query: str, marked: bool) -> None:
    (event,) = server({"data": [event_item()]}, url=API_URL + query).events
    assert bool(PINTEREST.test_event_code(event)) is marked


def test_paths_and_hosts() -> None:
    assert PINTEREST.is_server_api("api.pinterest.com", f"/v5/ad_accounts/{ACCOUNT}/events")
    assert PINTEREST.is_server_api(None, f"/v5/ad_accounts/{ACCOUNT}/events/")
    assert not PINTEREST.is_server_api("api.pinterest.com", "/v5/boards")
    assert not PINTEREST.is_server_api("graph.facebook.com", f"/v5/ad_accounts/{ACCOUNT}/events")
    assert not PINTEREST.is_server_api(None, "/v21.0/123/events")
    assert platforms.for_server_api(None, f"/v5/ad_accounts/{ACCOUNT}/events") is PINTEREST


def test_injected_faults_and_retry_advice() -> None:
    request = CapturedRequest("POST", API_URL, [], b"{}", 0.0, "proxy")
    answers = {kind: PINTEREST.error_answer(kind, request) for kind in
               ("missing_token", "invalid_token", "expired_token", "429", "transient",
                "timeout", "500")}
    assert {k: (s, b["code"]) for k, (s, b) in answers.items()} == {
        "missing_token": (401, 2), "invalid_token": (401, 2), "expired_token": (401, 2),
        "429": (429, 8), "transient": (503, 4197), "timeout": (504, 504), "500": (500, 500)}
    for kind, transient in (("429", True), ("transient", True), ("500", True),
                            ("invalid_token", False)):
        status, body = answers[kind]
        event = Event("pinterest", "server", None, "checkout", "x", None, 0.0,
                      raw=CapturedRequest("POST", API_URL, [], b"{}", 0.0, "proxy",
                                          response_status=status,
                                          response_body=json.dumps(body).encode()))
        assert PINTEREST.is_transient(event) is transient, kind
        assert f"(code {body['code']})" in PINTEREST.answer_text(event)


# --- dedup ------------------------------------------------------------------------------------


def test_the_tag_and_the_api_spellings_share_a_key() -> None:
    for tag, api in (("checkout", "checkout"), ("pagevisit", "page_visit"),
                     ("addtocart", "add_to_cart"), ("AddToCart", "add_to_cart"),
                     ("initiatecheckout", "initiate_checkout")):
        (browser,) = decode(hit_url(event=tag))
        (srv,) = server({"data": [event_item(event_name=api)]}).events
        assert PINTEREST.dedup_key(browser) == PINTEREST.dedup_key(srv) == (api,
                                                                           "purchase.ORD-1")
        assert len(match_events([browser, srv]).pairs) == 1
    assert tag_canonical("my custom event") == "mycustomevent"


def test_the_api_spelled_like_the_tag_does_not_merge() -> None:
    (browser,) = decode(hit_url(event="addtocart"))
    (srv,) = server({"data": [event_item(event_name="addtocart")]}).events
    result = match_events([browser, srv])
    assert not result.pairs and result.browser_only and result.server_only
    sentence = PINTEREST.name_variant("addtocart", "addtocart")
    assert sentence and "'add_to_cart'" in sentence
    assert PINTEREST.name_variant("AddToCart", "AddToCart")
    assert PINTEREST.name_variant("pagevisit", "page_visit") is None  # the documented pair
    assert PINTEREST.name_variant("checkout", "page_visit") is None
    found = [f for f in PINTEREST.findings(result)
             if f.code == "pinterest-api-event-name-spelling"]
    assert len(found) == 1 and found[0].events == [browser, srv]
    assert "data[].event_name 'add_to_cart'" in found[0].fix
    assert "pintrk('track', 'addtocart'" in found[0].fix
    # the same raw name on both sides: the core sees a lone copy on each side, only
    # Pinterest's rules tell why
    codes = {f.code for f in diagnose(result)}
    assert "pinterest-api-event-name-spelling" in codes
    (srv,) = server({"data": [event_item(event_name="AddToCart")]}).events
    codes = {f.code for f in diagnose(match_events([browser, srv]))}
    assert {"pinterest-api-event-name-spelling", "event-name-mismatch"} <= codes


def test_a_lone_api_event_in_the_tag_spelling_is_named() -> None:
    (srv,) = server({"data": [event_item(event_name="pagevisit", event_id="pv.1")]}).events
    (found,) = [f for f in PINTEREST.findings(match_events([srv]))
                if f.code == "pinterest-api-event-name-spelling"]
    assert "'page_visit'" in found.message


def test_offline_events_never_merge() -> None:
    (browser,) = decode(hit_url())
    (srv,) = server({"data": [event_item(action_source="offline")]}).events
    assert PINTEREST.dedup_key(srv) is None
    result = match_events([browser, srv])
    assert not result.pairs
    codes = [f.code for f in PINTEREST.findings(result)]
    assert "pinterest-offline-not-deduplicated" in codes


def test_dedup_rule_and_what_merges() -> None:
    rule = PINTEREST.dedup_rule()
    assert "event_id" in rule and "page_visit" in rule and "offline" in rule
    assert not PINTEREST.deduplicates("init") and PINTEREST.deduplicates("checkout")
    (srv,) = server({"data": [event_item(event_id="")]}).events
    assert PINTEREST.dedup_key(srv) is None


def test_checkout_without_order_id() -> None:
    item = event_item()
    del item["custom_data"]["order_id"]
    (srv,) = server({"data": [item]}).events
    (browser,) = decode(hit_url())
    found = [f for f in PINTEREST.findings(match_events([browser, srv]))
             if f.code == "pinterest-checkout-without-order-id"]
    assert len(found) == 1 and found[0].events == [srv]
    assert "order_id" in found[0].fix


def test_fix_texts_in_pinterests_words() -> None:
    (browser,) = decode(hit_url(ed=json.dumps({"value": 1})))
    (srv,) = server({"data": [event_item()]}).events
    assert "pintrk('track', 'checkout', {event_id: ID" in PINTEREST.fix("missing-event-id",
                                                                         browser)
    assert "data[].event_id" in PINTEREST.fix("missing-event-id", srv)
    for code in ("near-miss-event-id", "event-name-mismatch", "server-event-missing",
                 "browser-event-missing", "raw-pii-in-user-data", "unnormalized-hash",
                 "cross-channel-hash-mismatch", "test-event-code", "server-call-rejected",
                 "event-time-too-old", "payload-mismatch", "undecodable-request"):
        text = PINTEREST.fix(code, srv)
        assert text and "fbq" not in text and "Meta" not in text, code
    assert "page_visit" in PINTEREST.fix("event-name-mismatch", srv)
    assert "no '+'" in PINTEREST.fix("unnormalized-hash", srv)
    assert PINTEREST.fix("no-such-code") is None


# --- customer data and identity ------------------------------------------------------------------


@pytest.mark.parametrize("key,raw,normalized,digest", pii_rules.TEST_VECTORS)
def test_pii_vectors(key: str, raw: str, normalized: str, digest: str) -> None:
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == digest == hashlib.sha256(
        normalized.encode()).hexdigest()


def test_pii_rules() -> None:
    # the "+" split of section 10: Pinterest hashes the digits, TikTok the E.164 with "+"
    assert pii_rules.hash_value("ph", "+16505551234") != pii_rules.PHONE_WITH_PLUS_SHA256
    assert pii_rules.normalize("ph", "0044 20 7946 0958") == "442079460958"
    assert pii_rules.normalize("ct", "Menlo Park!") == "menlopark"
    assert pii_rules.normalize("st", " CA ") == "ca"
    assert pii_rules.normalize("zp", "94025-1234") == "940251234"
    assert pii_rules.normalize("country", "US") == "us"
    assert pii_rules.normalize("ge", "Female") == "f"
    assert pii_rules.normalize("db", "1990-4-7") == "19900407"
    assert pii_rules.normalize("fn", " Mary ") == "mary"
    assert pii_rules.hash_value("em", "A" * 64) == "a" * 64  # already hashed: kept
    assert pii_rules.hash_value("click_id", EPIK) == EPIK  # never hashed
    assert set(pii_rules.HASHED_KEYS) == {"em", "ph", "fn", "ln", "ct", "st", "zp",
                                          "country", "ge", "db", "external_id"}


def test_expected_values_and_customer_values() -> None:
    assert PINTEREST.hashed_keys == frozenset(pii_rules.HASHED_KEYS)
    assert PINTEREST.expected_value("ph", "+1 (650) 555-1234") == pii_rules.TEST_VECTORS[3][3]
    assert PINTEREST.expected_value("click_id", EPIK) is None
    (srv,) = server({"data": [event_item()]}).events
    assert PINTEREST.customer_values(srv) == {"em": [HEX], "ph": [HEX]}
    (browser,) = decode(hit_url())
    assert PINTEREST.customer_values(browser) == {"em": [HEX]}


def _pair(epik: str | None, click_id: str | None) -> Pair:
    (browser,) = decode(hit_url(epik=epik))
    user = dict(event_item()["user_data"], click_id=click_id)
    (srv,) = server({"data": [event_item(user_data=user)]}).events
    return Pair(browser, srv)


def test_identity_findings() -> None:
    assert PINTEREST.identity_findings(_pair(EPIK, EPIK)) == []
    assert PINTEREST.identity_findings(_pair(None, None)) == []
    (other,) = PINTEREST.identity_findings(_pair(EPIK, "dj0other"))
    assert other.code == "epik-mismatch" and other.severity == "error"
    assert other.platform == "pinterest" and len(other.events) == 2
    (hashed,) = PINTEREST.identity_findings(_pair(EPIK, pii_rules.sha256_hex(EPIK)))
    assert "SHA-256" in hashed.message and "never hashed" in hashed.message
    (missing,) = PINTEREST.identity_findings(_pair(EPIK, None))
    assert missing.code == "epik-missing" and missing.severity == "warning"
    assert "user_data.click_id" in missing.fix
    # the landing URL alone is enough for the browser side
    (browser,) = decode(hit_url(ad=json.dumps({"loc": f"https://shop.example/?epik={EPIK}"})))
    assert browser.extra["epik"] == EPIK
    codes = [c for c, _, _ in identity.identity_problems(browser, _pair(None, None).server)]
    assert codes == ["epik-missing"]


def test_from_backend_log() -> None:
    record = {"data": [event_item()], "ad_account_id": ACCOUNT, "time": 1795910491.0}
    request = PINTEREST.from_backend_log(record)
    assert request is not None and request.channel == "log"
    assert request.url == API_URL and request.arrival_time == 1795910491.0
    answer = PINTEREST.handle_server(request)
    assert answer.status == 200  # a log line shows no header: nothing to check there
    assert answer.events[0].event_id == "purchase.ORD-1"
    assert PINTEREST.from_backend_log({"event": "x"}) is None


# --- over real sockets: urllib and Pinterest's own SDK ------------------------------------------


@pytest.fixture
def sink() -> Iterator[ConversionSink]:
    with ConversionSink(EventStore()) as running:
        yield running


def _post(url: str, body: dict[str, Any], token: str | None = TOKEN) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json",
               **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sink_answers_over_http(sink: ConversionSink) -> None:
    url = sink.url_for("pinterest") + f"/v5/ad_accounts/{ACCOUNT}/events"
    status, body = _post(url, {"data": [event_item()]})
    assert status == 200 and body["num_events_processed"] == 1
    bad = event_item()
    bad["user_data"]["em"] = ["jane@example.com"]
    status, body = _post(url, {"data": [bad]})
    assert status == 422 and body["details"]["events"][0]["status"] == "failed"
    no_id = event_item()
    del no_id["event_id"]
    status, body = _post(url, {"data": [no_id]})
    assert status == 400 and body["code"] == 4196
    sink.expect_token(TOKEN, platform="pinterest")
    status, body = _post(url, {"data": [event_item()]}, token="pina-wrong")
    assert status == 401 and body == {"code": 2, "message": "Authentication failed."}
    status, body = _post(url, {"data": [event_item()]}, token=None)
    assert status == 401 and body["code"] == 2
    # the sink's own URL, without the platform prefix, routes by path too
    status, body = _post(sink.url + f"/v5/ad_accounts/{ACCOUNT}/events",
                         {"data": [event_item()]})
    assert status == 200
    events = sink.store.since(0)
    assert all(e.platform == "pinterest" for e in events)
    assert [e.raw.response_status for e in events] == [200, 422, 400, 401, 401, 200]
    assert not match_events(events[1:5]).server_only  # the refused ones never count


def test_sink_answers_pinterests_own_sdk(sink: ConversionSink) -> None:
    pytest.importorskip("pinterest.ads.conversion_events")
    from openapi_generated.pinterest_client.configuration import Configuration
    from openapi_generated.pinterest_client.exceptions import (
        ApiException,
        UnauthorizedException,
    )
    from pinterest.ads.conversion_events import Conversion
    from pinterest.client import PinterestSDKClient

    client = PinterestSDKClient(configuration=Configuration(
        access_token=TOKEN, host=sink.url_for("pinterest") + "/v5"))

    def event(em: str) -> Any:
        return Conversion.create_conversion_event(
            event_name="checkout", action_source="web", event_time=int(time.time()),
            event_id="purchase.ORD-9", custom_data={"currency": "USD", "value": "9.50"},
            user_data={"em": [em], "client_ip_address": "203.0.113.7",
                       "client_user_agent": "Mozilla/5.0"})

    response = Conversion.send_conversion_events(
        ad_account_id=ACCOUNT, conversion_events=[event(pii_rules.hash_value("em", "a@b.co"))],
        client=client)
    assert response.num_events_processed == 1 and response.events[0].status == "processed"
    with pytest.raises(ApiException) as refused:
        Conversion.send_conversion_events(ad_account_id=ACCOUNT,
                                          conversion_events=[event("a@b.co")], client=client)
    assert refused.value.status == 422
    sink.expect_token("another-token", platform="pinterest")
    with pytest.raises(UnauthorizedException):
        Conversion.send_conversion_events(
            ad_account_id=ACCOUNT, conversion_events=[event(HEX)], client=client)
    ok, rejected, unauthorized = sink.store.since(0)
    assert (ok.event_name, ok.event_id, ok.value) == ("checkout", "purchase.ORD-9", "9.50")
    assert ok.raw.header("user-agent", "").startswith("pins-sdk/python/")
    assert rejected.raw.response_status == 422 and unauthorized.raw.response_status == 401


# --- the shop's tracker ------------------------------------------------------------------------


CUSTOMER = Customer(email=" Jane.Doe@Example.com ", phone="+1 (650) 555-1212",
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
    tracker = load_trackers()["pinterest"]
    assert tracker.clients == ("json", "pinterest-api-sdk")
    config = TrackerConfig("pinterest", tracker.default_tag_id, tracker.real_api_url,
                           tracker.default_token)
    head = tracker.head(config, CUSTOMER)
    assert "https://s.pinimg.com/ct/core.js" in head
    assert f"pintrk('load', '{tracker.default_tag_id}', " in head and "Jane.Doe" in head
    assert head.rstrip().endswith("pintrk('page');")
    assert "{\"em\"" not in tracker.head(config, None)
    lines = tracker.browser_calls(config, _tracked(), ActiveFaults(), CUSTOMER)
    assert lines[0] == "pintrk('track', 'pagevisit', {\"event_id\": \"pageview.1\"});"
    assert lines[1].startswith("pintrk('track', 'checkout', {\"event_id\": \"purchase.ORD-1\"")
    assert '"order_id": "ORD-1"' in lines[1] and '"product_id": "sku-1"' in lines[1]
    no_id = tracker.browser_calls(config, _tracked(), ActiveFaults({"browser_no_event_id": None}),
                                  CUSTOMER)
    assert "event_id" not in no_id[-1]
    assert len(tracker.browser_calls(config, _tracked(),
                                     ActiveFaults({"no_browser_purchase": None}), CUSTOMER)) == 1
    # a product page sends one page visit, carrying the product
    product = [TrackedEvent("PageView", "pv.2", {}, "u"),
               TrackedEvent("ViewContent", "vc.2", {"content_ids": ["sku-1"], "value": 12.5,
                                                    "currency": "USD"}, "u")]
    (visit,) = tracker.browser_calls(config, product, ActiveFaults(), None)
    assert "'pagevisit'" in visit and '"vc.2"' in visit and '"sku-1"' in visit
    assert set(tracker.faults) >= {"id_mismatch", "missing_id", "unhashed_pii", "stale_time",
                                   "bad_auth", "no_server_purchase", "tag_name_in_api"}


@pytest.mark.parametrize("client", ["json", "pinterest-api-sdk"])
@pytest.mark.parametrize("fault,status", [
    ("", 200), ("id_mismatch", 200), ("missing_id", 400), ("unhashed_pii", 422),
    ("stale_time", 422), ("bad_auth", 401), ("phone_plus", 200), ("click_id_hashed", 200),
    ("test_mode", 200), ("token_in_query", 401), ("value_as_number", 400),
])
def test_tracker_server_calls_reach_the_sink(sink: ConversionSink, client: str, fault: str,
                                             status: int) -> None:
    if client != "json":
        pytest.importorskip("pinterest.ads.conversion_events")
    tracker = load_trackers()["pinterest"]
    sink.expect_token(tracker.default_token, platform="pinterest")
    config = TrackerConfig("pinterest", tracker.default_tag_id, sink.url_for("pinterest"),
                           tracker.default_token, client)
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test", cookies={"_epik": EPIK})
    faults = ActiveFaults({fault: None} if fault else {})
    (call,) = tracker.server_calls(config, _tracked()[1:], faults, ctx, CUSTOMER)
    got, answer = call.send(10.0)
    sdk_refuses = client != "json" and fault in ("missing_id", "value_as_number")
    if sdk_refuses:
        # the SDK types event_id and value as strings and sends nothing else
        assert got is None and b"SDK refused" in answer and not sink.store.since(0)
        return
    if client != "json" and fault == "token_in_query":
        status = 200  # the SDK always sends the Authorization header
    assert got == status, answer
    (event,) = sink.store.since(0)
    assert event.event_name == "checkout" and event.extra["ad_account_id"] == ACCOUNT
    expected_id = {"id_mismatch": "purchase.ORD-1-server", "missing_id": None}.get(
        fault, "purchase.ORD-1")
    assert event.event_id == expected_id
    assert float(event.value) == 25.0
    assert (event.extra["click_id"] == EPIK) is (fault != "click_id_hashed")
    phone = PINTEREST.customer_values(event)["ph"][0]
    assert (phone == pii_rules.hash_value("ph", CUSTOMER.phone)) is (fault != "phone_plus")
    assert bool(PINTEREST.test_event_code(event)) is (fault == "test_mode")
    if status == 200:
        values = PINTEREST.customer_values(event)
        for key in ("em", "fn", "ln", "ct", "zp", "country"):
            raw = {"em": CUSTOMER.email, "fn": CUSTOMER.first_name, "ln": CUSTOMER.last_name,
                   "ct": CUSTOMER.city, "zp": CUSTOMER.zip, "country": CUSTOMER.country}[key]
            assert values[key] == [PINTEREST.expected_value(key, raw)], key


def test_tracker_sends_the_add_to_cart_in_the_tag_spelling_under_its_fault(
        sink: ConversionSink) -> None:
    tracker = load_trackers()["pinterest"]
    config = TrackerConfig("pinterest", tracker.default_tag_id, sink.url_for("pinterest"),
                           tracker.default_token)
    add = TrackedEvent("AddToCart", "addtocart.1", {"content_ids": ["sku-1"], "value": 12.5,
                                                    "currency": "USD"}, "u")
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 test")
    for faults, name in ((ActiveFaults(), "add_to_cart"),
                         (ActiveFaults({"tag_name_in_api": None}), "addtocart")):
        (call,) = tracker.server_calls(config, [add], faults, ctx, None)
        assert call.send(10.0)[0] == 200
        assert sink.store.since(0)[-1].event_name == name
