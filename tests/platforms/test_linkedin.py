"""LinkedIn (Insight Tag + Conversions API): the decoder on recorded samples and bad
input, the Conversions API's answers, the conversion rule catalogue, the dedup key,
the PII rules, the click id, LinkedIn's own findings, the sink over real sockets
(urllib and LinkedIn's official Python client), and the shop's tracker."""

from __future__ import annotations

import base64
import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.trackers.linkedin import (
    API_RULES,
    TAG_RULES,
    TRACKER,
    api_version,
    conversion_rules,
)
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.findings import CATALOGUE
from pytest_pixelcheck.matching import MatchResult, Pair, match_events
from pytest_pixelcheck.pii import Customer as PiiCustomer
from pytest_pixelcheck.pii import check_pii
from pytest_pixelcheck.platforms.linkedin import (
    LINKEDIN,
    UNDECLARED,
    ConversionRule,
    identity,
    pii_rules,
)
from pytest_pixelcheck.platforms.linkedin.findings import linkedin_findings
from pytest_pixelcheck.platforms.linkedin.platform import SCHEMA
from pytest_pixelcheck.platforms.linkedin.rules import RULES_ENV, rule_id_of
from pytest_pixelcheck.platforms.linkedin.texts import fix_text
from pytest_pixelcheck.sink import ConversionSink
from pytest_pixelcheck.validation import validate

SAMPLES = sorted(Path(LINKEDIN.samples_dir or ".").glob("*.json"))
PARTNER = "5550001"
TOKEN = "li-test-token-0123456789"
EMAIL_HASH = pii_rules.sha256_hex("john.doe@example.com")
CLICK = "AQFpixelcheckClickId-0123456789"
API_URL = "https://api.linkedin.com/rest/conversionEvents"
COLLECT = "https://px.ads.linkedin.com/collect"


@pytest.fixture
def shop_rules() -> Iterator[None]:
    rules = [ConversionRule(rule_id, name, source)  # type: ignore[arg-type]
             for rule_id, name, source in conversion_rules()]
    with LINKEDIN.rules.declared(rules, partner_id=PARTNER):
        yield


# --- helpers ----------------------------------------------------------------------------


def headers(**overrides: str | None) -> list[tuple[str, str]]:
    base = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}",
            "LinkedIn-Version": api_version(), "X-Restli-Protocol-Version": "2.0.0"}
    base.update(overrides)
    return [(k, v) for k, v in base.items() if v is not None]


def conversion(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "conversion": "urn:lla:llaPartnerConversion:8200004",
        "conversionHappenedAt": int(time.time() * 1000) - 1000,
        "conversionValue": {"currencyCode": "USD", "amount": "25.0"},
        "eventId": "purchase.ORD-1",
        "user": {"userIds": [{"idType": "SHA256_EMAIL", "idValue": EMAIL_HASH},
                             {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                              "idValue": CLICK}],
                 "userInfo": {"firstName": "John", "lastName": "Doe", "countryCode": "US"}},
    }
    item.update(fields)
    return item


def captured(url: str, body: bytes | str = b"", *, method: str = "POST",
             hdrs: list[tuple[str, str]] | None = None, arrival: float | None = None,
             channel: str = "proxy") -> CapturedRequest:
    data = body.encode() if isinstance(body, str) else body
    return CapturedRequest(method, url, hdrs if hdrs is not None else headers(), data,
                           time.time() if arrival is None else arrival, channel)


def server(body: Any, **kw: Any):
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return LINKEDIN.handle_server(captured(kw.pop("url", API_URL), text, **kw))


def collect(query: str) -> list[Event]:
    return LINKEDIN.decode_browser(captured(f"{COLLECT}?{query}", method="GET", hdrs=[]))


def wa(payload: Any, *, packed: bool = True) -> list[Event]:
    text = json.dumps(payload)
    if packed:
        body = base64.b64encode(gzip.compress(text.encode())).decode()
        url = "https://px.ads.linkedin.com/wa/?medium=fetch&fmt=g"
    else:
        body, url = text, "https://px.ads.linkedin.com/wa/"
    return LINKEDIN.decode_browser(captured(url, body, hdrs=[("content-type", "text/plain")]))


def tag_hit(event_id: str = "purchase.ORD-1", rule: str = "7100004",
            partner: str = PARTNER) -> Event:
    (event,) = collect(f"v=2&fmt=js&pid={partner}&conversionId={rule}&eventId={event_id}"
                       f"&time={int(time.time() * 1000)}&url=https%3A%2F%2Fshop.example%2Fthanks")
    return event


def api_event(**fields: Any) -> Event:
    answer = server(conversion(**fields))
    assert answer.status == 201, answer.body
    return answer.events[0]


# --- registration and recorded samples --------------------------------------------------


def test_the_package_registers_linkedin() -> None:
    assert platforms.get("linkedin") is LINKEDIN
    assert LINKEDIN.title == "LinkedIn" and LINKEDIN.server_hosts == {"api.linkedin.com"}
    assert "authorization" in LINKEDIN.secret_headers
    assert LINKEDIN.max_event_age == 90 * 86400
    for code in LINKEDIN.finding_codes:
        assert code in CATALOGUE


def test_samples_cover_what_the_brief_asks() -> None:
    names = {p.stem for p in SAMPLES}
    assert {"browser-collect-conversion", "browser-wa-page-visit-gzip",
            "browser-wa-page-visit-json", "server-sdk-create", "server-sdk-batch-create",
            "server-unhashed-email", "server-stale-conversion-time",
            "server-missing-user-ids", "server-missing-authorization"} <= names


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_sample_decodes_and_is_answered_as_recorded(path: Path) -> None:
    sample = json.loads(path.read_text(encoding="utf-8"))
    request = CapturedRequest.from_dict({**sample["request"], "channel": "proxy"})
    expect = sample["expect"]
    if sample["kind"] == "browser":
        events = LINKEDIN.decode_browser(request)
        assert LINKEDIN.collection_response(request).status == expect["status"]
        assert all(bool(e.extra.get("not_a_conversion")) == expect["not_a_conversion"]
                   for e in events)
    else:
        answer = LINKEDIN.handle_server(request)
        events = answer.events
        assert answer.status == expect["status"], answer.body
        rejected = [not 200 <= answer.status < 300 or bool(e.extra.get("rejected_by_platform"))
                    for e in events]
        want = expect["rejected"]
        assert rejected == (want if isinstance(want, list) else [want] * len(events))
    got = [{"event_name": e.event_name, "event_id": e.event_id, "pixel_id": e.pixel_id}
           for e in events]
    assert got == expect["events"]
    assert all(e.decoded for e in events) != bool(expect.get("undecodable"))


def test_the_recorded_conversion_hit_is_the_2b_wire_shape() -> None:
    sample = json.loads((LINKEDIN.samples_dir / "browser-collect-conversion.json").read_text())
    request = CapturedRequest.from_dict(sample["request"])
    assert request.method == "GET"
    keys = [k for k, _ in parse_qsl(request.url.split("?", 1)[1])]
    assert keys == ["v", "fmt", "pid", "conversionId", "eventId", "time", "url"]
    (event,) = LINKEDIN.decode_browser(request)
    assert event.extra["conversion_rule"] == "7100004"
    assert abs(event.event_time - request.arrival_time) < 5
    assert event.page_url.endswith("/thanks/ORD-1?li_fat_id=" + CLICK)
    # the conversion hit carries no customer data: the email rides in /wa/ only
    assert event.user_data == {} and LINKEDIN.customer_values(event) == {}


@pytest.mark.parametrize("stem", ["browser-wa-page-visit-gzip", "browser-wa-page-visit-json"])
def test_the_recorded_page_visit_carries_the_browser_hashed_email(stem: str) -> None:
    sample = json.loads((LINKEDIN.samples_dir / f"{stem}.json").read_text())
    (event,) = LINKEDIN.decode_browser(CapturedRequest.from_dict(sample["request"]))
    # the stand-in hashed ' John.Doe@Example.COM ' as LinkedIn's rule says
    assert event.user_data == {"hem": EMAIL_HASH}
    assert event.user_data["hem"] == pii_rules.hash_value("em", " John.Doe@Example.COM ")
    assert LINKEDIN.customer_values(event) == {"em": [EMAIL_HASH]}
    assert event.extra["li_fat_id"] == CLICK
    assert event.extra["wa_encoding"] == ("gzip+base64" if stem.endswith("gzip") else "json")
    assert event.extra["not_a_conversion"] and LINKEDIN.dedup_key(event) is None


def test_the_sdk_sample_carries_the_clients_own_headers() -> None:
    sample = json.loads((LINKEDIN.samples_dir / "server-sdk-create.json").read_text())
    request = CapturedRequest.from_dict(sample["request"])
    assert request.header("x-restli-protocol-version") == "2.0.0"
    assert request.header("x-restli-method") == "CREATE"
    assert request.header("user-agent") == "linkedin-api-python-client/0.3.0"
    assert request.header("authorization") == "Bearer REDACTED"
    batch = json.loads((LINKEDIN.samples_dir / "server-sdk-batch-create.json").read_text())
    assert dict(batch["request"]["headers"])["X-RestLi-Method"] == "BATCH_CREATE"
    assert json.loads(batch["request"]["body"]).keys() == {"elements"}


# --- browser decoder ----------------------------------------------------------------------


def test_collection_hosts_and_paths() -> None:
    for host, path in [("px.ads.linkedin.com", "/collect"), ("px.ads.linkedin.com", "/collect/"),
                       ("px.ads.linkedin.com", "/wa/"), ("px4.ads.linkedin.com", "/collect"),
                       ("px.ads.linkedin.com", "/attribution_trigger")]:
        assert LINKEDIN.is_collection(host, path), (host, path)
    for host, path in [("snap.licdn.com", "/li.lms-analytics/insight.min.js"),
                       ("px.ads.linkedin.com", "/"), ("www.linkedin.com", "/collect"),
                       ("api.linkedin.com", "/rest/conversionEvents")]:
        assert not LINKEDIN.is_collection(host, path), (host, path)


def test_library_stand_in() -> None:
    script = LINKEDIN.library_response("snap.licdn.com", "/li.lms-analytics/insight.min.js")
    assert script is not None and b"lintrk" in script.body and b"setUserData" in script.body
    assert b"conversionId=" in script.body and b"medium=fetch&fmt=g" in script.body
    assert LINKEDIN.library_response("snap.licdn.com", "/other.js") is None
    assert LINKEDIN.library_response("connect.facebook.net", "/en_US/fbevents.js") is None


def test_collection_answers() -> None:
    image = LINKEDIN.collection_response(captured(f"{COLLECT}?pid=1", method="GET"))
    assert image.content_type == "image/gif"
    signal = LINKEDIN.collection_response(captured(
        "https://px.ads.linkedin.com/wa/", "{}", hdrs=[("Origin", "http://127.0.0.1:5000")]))
    assert signal.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:5000"


def test_a_conversion_hit_is_named_by_its_declared_rule(shop_rules: None) -> None:
    event = tag_hit()
    assert (event.event_name, event.event_id, event.pixel_id) == ("PURCHASE", "purchase.ORD-1",
                                                                  PARTNER)
    assert event.decoded and not event.extra.get("not_a_conversion")


def test_an_undeclared_rule_is_a_conversion() -> None:
    assert tag_hit().event_name == f"{UNDECLARED} 7100004" == "conversion 7100004"
    assert api_event().event_name == "conversion 8200004"
    assert LINKEDIN.rules.name_of(None) == "conversion"


def test_a_hit_for_two_partners_is_two_events() -> None:
    events = collect("v=2&fmt=js&pid=111,222&conversionId=7100004&eventId=e1&time=1")
    assert [e.pixel_id for e in events] == ["111", "222"]


@pytest.mark.parametrize("query,reason", [
    ("v=2&fmt=js&pid=123&url=https%3A%2F%2Fx&time=1583871950665", "no conversionId"),
    ("pid=123&fmt=gif", "noscript image"),
], ids=["page-view", "noscript"])
def test_page_views_are_kept_but_never_paired(query: str, reason: str) -> None:
    (event,) = collect(query)
    assert event.decoded and event.extra["not_a_conversion"], reason
    assert LINKEDIN.dedup_key(event) is None


def test_attribution_pings_and_mirrors_are_no_second_conversion() -> None:
    (ping,) = LINKEDIN.decode_browser(captured(
        "https://px.ads.linkedin.com/attribution_trigger?pid=1&time=1", method="GET"))
    assert ping.extra["not_a_conversion"]
    (mirror,) = LINKEDIN.decode_browser(captured(
        "https://px4.ads.linkedin.com/collect?v=2&fmt=js&pid=1&conversionId=7&eventId=e"
        "&e_ipv6=abc", method="GET"))
    assert mirror.extra["mirror_of"] and LINKEDIN.dedup_key(mirror) is None
    result = match_events([tag_hit("e"), mirror])
    assert result.mirrors == [mirror]


def test_the_event_id_of_a_hit() -> None:
    (empty,) = collect("pid=1&conversionId=7&eventId=&time=1")
    assert empty.event_id is None and empty.extra["event_id_empty"]
    (misplaced,) = collect("pid=1&conversionId=7&event_id=x&time=1")
    assert misplaced.event_id is None and misplaced.extra["event_id_misplaced"] == "x"


@pytest.mark.parametrize("url,body", [
    (f"{COLLECT}?conversionId=7&eventId=e", b""),
    (f"{COLLECT}?pid=1&conversionId=abc", b""),
    ("https://px.ads.linkedin.com/wa/", b""),
    ("https://px.ads.linkedin.com/wa/?medium=fetch&fmt=g", b"not base64 at all!"),
    ("https://px.ads.linkedin.com/wa/?medium=fetch&fmt=g",
     base64.b64encode(b"not gzip")),
    ("https://px.ads.linkedin.com/wa/", b"[1, 2]"),
    ("https://px.ads.linkedin.com/wa/", b"\xff\xfe\x00"),
    ("https://px.ads.linkedin.com/wa/", b'{"pids": ['),
], ids=["no-pid", "bad-rule", "empty-wa", "not-base64", "not-gzip", "array", "not-utf8",
        "truncated"])
def test_malformed_hits_are_undecodable_never_a_crash(url: str, body: bytes) -> None:
    (event,) = LINKEDIN.decode_browser(captured(url, body, hdrs=[]))
    assert event.error and event.platform == "linkedin" and event.source == "browser"


def test_wa_signals_in_both_builds() -> None:
    payload = {"pids": [123], "signalType": "CLICK", "url": "https://shop.example/",
               "time": 1795910491000, "hem": EMAIL_HASH, "liFatId": CLICK}
    for packed in (True, False):
        (event,) = wa(payload, packed=packed)
        assert event.event_name == "CLICK" and event.pixel_id == "123"
        assert event.extra["not_a_conversion"] and not LINKEDIN.deduplicates("CLICK")
        assert event.event_time == pytest.approx(1795910491.0)


# --- the Conversions API's answers ----------------------------------------------------------


def test_a_correct_create_is_answered_201_with_no_body(shop_rules: None) -> None:
    answer = server(conversion())
    assert answer.status == 201 and answer.body is None and answer.token == TOKEN
    (event,) = answer.events
    assert (event.event_name, event.event_id, event.pixel_id) == ("PURCHASE", "purchase.ORD-1",
                                                                  PARTNER)
    assert event.extra["conversion_rule"] == "8200004" and event.extra["li_fat_id"] == CLICK
    assert event.custom_data == {"value": 25.0, "currency": "USD"}
    assert abs(event.event_time - time.time()) < 5


@pytest.mark.parametrize("hdrs,status,code", [
    (headers(Authorization=None), 401, None),
    (headers(Authorization="Bearer "), 401, None),
    (headers(**{"LinkedIn-Version": None}), 400, "VERSION_MISSING"),
    (headers(**{"LinkedIn-Version": "2026-11"}), 400, "INVALID_VERSION"),
    (headers(**{"LinkedIn-Version": "202301"}), 426, "NONEXISTENT_VERSION"),
    (headers(**{"LinkedIn-Version": "209912"}), 426, "NONEXISTENT_VERSION"),
    (headers(**{"X-Restli-Protocol-Version": None}), 400, None),
], ids=["no-auth", "empty-bearer", "no-version", "bad-version", "sunset-version",
        "future-version", "no-protocol"])
def test_the_gateways_answers(hdrs: list[tuple[str, str]], status: int,
                              code: str | None) -> None:
    answer = server(conversion(), hdrs=hdrs)
    assert answer.status == status and answer.body["status"] == status, answer.body
    assert answer.body.get("code") == code
    assert answer.events[0].extra["rejection"]


@pytest.mark.parametrize("change,status,words", [
    (lambda e: e["user"]["userIds"][0].update(idValue="john.doe@example.com"), 422,
     "/user/userIds/0/idValue"),
    (lambda e: e["user"].pop("userIds"), 422, "/user/userIds :: field is required"),
    (lambda e: e.pop("conversion"), 422, "/conversion :: field is required"),
    (lambda e: e.pop("conversionHappenedAt"), 422, "/conversionHappenedAt"),
    (lambda e: e["conversionValue"].update(amount=25.0), 422, "/conversionValue/amount"),
    (lambda e: e["user"]["userInfo"].pop("lastName"), 422, "/user/userInfo/lastName"),
    (lambda e: e.update(conversion="8200004"), 422, "/conversion"),
    (lambda e: e.update(conversionHappenedAt=int(time.time() * 1000) - 91 * 86400000), 400,
     "within 90 days"),
    (lambda e: e.update(conversionHappenedAt=int(time.time())), 400, "seconds?"),
], ids=["unhashed-email", "no-user-ids", "no-rule", "no-time", "amount-number",
        "user-info-without-last-name", "rule-not-urn", "stale", "seconds"])
def test_linkedins_answers_to_bad_events(change: Any, status: int, words: str) -> None:
    item = conversion()
    change(item)
    answer = server(item)
    assert answer.status == status, answer.body
    assert words in answer.body["message"]
    assert answer.events[0].extra["rejection"]


def test_empty_user_ids_are_accepted() -> None:
    """The dev.to report: userIds: [] with userInfo is what LinkedIn wants."""
    item = conversion()
    item["user"]["userIds"] = []
    assert server(item).status == 201


def test_a_batch_answers_each_element() -> None:
    good, bad = conversion(), conversion(eventId="e2")
    del bad["user"]["userIds"]
    answer = server({"elements": [good, bad]},
                    hdrs=headers(**{"X-RestLi-Method": "BATCH_CREATE"}))
    assert answer.status == 200
    assert [e["status"] for e in answer.body["elements"]] == [201, 422]
    first, second = answer.events
    assert not first.extra.get("rejected_by_platform")
    assert "elements[1]: HTTP 422" in second.extra["rejected_by_platform"]
    result = match_events(answer.events)
    assert result.rejected == [second]
    assert "elements[1]" in LINKEDIN.answer_text(second)


@pytest.mark.parametrize("body,words", [
    ({"elements": []}, "non-empty elements"),
    ({"elements": [conversion()] * 5001}, "at most 5000"),
    ({"nope": 1}, "non-empty elements"),
], ids=["empty", "too-many", "no-elements"])
def test_bad_batches_are_refused_whole(body: Any, words: str) -> None:
    answer = server(body, hdrs=headers(**{"X-RestLi-Method": "BATCH_CREATE"}))
    assert answer.status == 400 and words in answer.body["message"]


def test_elements_without_the_batch_header_are_refused() -> None:
    answer = server({"elements": [conversion()]})
    assert answer.status == 400 and "BATCH_CREATE" in answer.body["message"]


def test_other_methods_paths_and_bodies() -> None:
    assert LINKEDIN.handle_server(captured(API_URL, method="GET")).status == 405
    unversioned = server(conversion(), url="https://api.linkedin.com/v2/conversionEvents")
    assert unversioned.status == 404 and "/rest" in unversioned.body["message"]
    for body in ("{\"conversion\": ", "", "[]", "\"text\""):
        answer = server(body)
        assert answer.status in (400, 422), (body, answer.body)
    (truncated,) = server("{\"conversion\": ").events
    assert truncated.error and "unreadable" in truncated.error


def test_server_api_hosts_and_paths() -> None:
    assert LINKEDIN.is_server_api("api.linkedin.com", "/rest/conversionEvents")
    assert LINKEDIN.is_server_api(None, "/rest/conversionEvents/")
    assert LINKEDIN.is_server_api("127.0.0.1", "/rest/conversionEvents")
    assert not LINKEDIN.is_server_api("api.linkedin.com", "/rest/conversions")
    assert not LINKEDIN.is_server_api("graph.facebook.com", "/rest/conversionEvents")


def test_error_answers_and_their_texts() -> None:
    request = captured(API_URL, "{}")
    for kind in (*LINKEDIN.fault_kinds, "invalid_token", "missing_token"):
        status, body = LINKEDIN.error_answer(kind, request)
        assert status >= 400 and body["status"] == status and body["message"], kind
    assert LINKEDIN.error_answer("invalid_token", request) == (
        401, {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
              "message": "Invalid access token"})
    event = api_event()
    event.raw.response_status, event.raw.response_body = 401, json.dumps(
        LINKEDIN.error_answer("invalid_token", request)[1]).encode()
    assert LINKEDIN.answer_text(event) == "Invalid access token (INVALID_ACCESS_TOKEN)"
    assert not LINKEDIN.is_transient(event)
    event.raw.response_status = 429
    assert LINKEDIN.is_transient(event)
    assert LINKEDIN.test_event_code(event) is None


def test_a_backend_log_line_is_read_without_headers(shop_rules: None) -> None:
    single = LINKEDIN.from_backend_log(conversion())
    assert single is not None and single.channel == "log"
    answer = LINKEDIN.handle_server(single)
    assert answer.status == 201 and answer.events[0].event_name == "PURCHASE"
    batch = LINKEDIN.from_backend_log({"elements": [conversion(), conversion(eventId="e2")],
                                       "time": 1795910492})
    assert batch is not None and batch.arrival_time == 1795910492
    assert [e.event_id for e in LINKEDIN.handle_server(batch).events] == ["purchase.ORD-1",
                                                                          "e2"]
    assert LINKEDIN.from_backend_log({"data": []}) is None
    assert LINKEDIN.from_backend_log({"conversion": "something else"}) is None


# --- the rule catalogue -----------------------------------------------------------------------


def test_declared_rules_name_both_copies_and_are_restored() -> None:
    with LINKEDIN.rules.declared({"7100004": "PURCHASE"}, source="tag", partner_id="9"):
        assert tag_hit().event_name == "PURCHASE"
        assert api_event().pixel_id == "9"  # the default account of undeclared rules
        assert LINKEDIN.rules.get("7100004").source == "tag"
    assert tag_hit().event_name == "conversion 7100004" and api_event().pixel_id is None


def test_rules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RULES_ENV, "7100004=PURCHASE:tag, 8200004=PURCHASE:api, junk, x=y")
    assert tag_hit().event_name == api_event().event_name == "PURCHASE"
    assert LINKEDIN.rules.get("8200004").source == "api"
    assert LINKEDIN.rules.get("x") is None


def test_rule_ids_of_urns() -> None:
    assert rule_id_of("urn:lla:llaPartnerConversion:123") == "123"
    assert rule_id_of(123) == "123"
    for bad in (None, True, "urn:li:sponsoredAccount:1", "abc"):
        assert rule_id_of(bad) is None


# --- dedup ------------------------------------------------------------------------------------


def test_the_tag_and_the_api_copy_pair_on_event_id_across_two_rules(shop_rules: None) -> None:
    browser, api = tag_hit(), api_event()
    assert browser.extra["conversion_rule"] != api.extra["conversion_rule"]
    assert LINKEDIN.dedup_key(browser) == LINKEDIN.dedup_key(api) == ("purchase.ORD-1",)
    result = match_events([browser, api])
    assert [(p.browser, p.server) for p in result.pairs] == [(browser, api)]
    assert "eventId" in LINKEDIN.dedup_rule() and "same ad account" in LINKEDIN.dedup_rule()


def test_no_key_without_an_event_id() -> None:
    assert LINKEDIN.dedup_key(api_event(eventId="")) is None
    item = conversion()
    del item["eventId"]
    assert LINKEDIN.dedup_key(server(item).events[0]) is None


def test_one_event_id_for_two_conversions_is_one_for_linkedin(shop_rules: None) -> None:
    """LinkedIn compares eventId alone within the account: an id reused for another
    conversion type on the other side still merges (and so loses a conversion)."""
    checkout_hit = tag_hit(rule="7100003")
    purchase = api_event()
    assert len(match_events([checkout_hit, purchase]).pairs) == 1


def test_the_core_sees_a_near_miss_in_linkedins_words(shop_rules: None) -> None:
    result = match_events([tag_hit(), api_event(eventId="purchase.ORD-1-server")])
    (finding,) = [f for f in diagnose(result) if f.code == "near-miss-event-id"]
    assert "eventId" in finding.fix and "lintrk" in finding.fix and "fbq" not in finding.fix


# --- PII ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "raw", "normalized", "wire"), pii_rules.TEST_VECTORS)
def test_pii_vectors(key: str, raw: str, normalized: str, wire: str) -> None:
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == wire
    assert LINKEDIN.expected_value(key, raw) == wire


def test_what_is_hashed_and_what_is_not() -> None:
    assert LINKEDIN.hashed_keys == {"em"}
    assert LINKEDIN.expected_value("ph", "+16505551234") is None  # LinkedIn has no phone
    assert pii_rules.hash_value("em", EMAIL_HASH.upper()) == EMAIL_HASH
    with pytest.raises(KeyError):
        pii_rules.hash_value("ph", "1")


def test_customer_values_of_an_api_event() -> None:
    event = api_event(user={"userIds": [{"idType": "SHA256_EMAIL", "idValue": EMAIL_HASH},
                                        {"idType": "PLAINTEXT_IP_ADDRESS",
                                         "idValue": "203.0.113.7"}],
                            "userInfo": {"firstName": "John", "lastName": "Doe",
                                         "countryCode": "US"},
                            "externalIds": ["cust-42"]})
    assert LINKEDIN.customer_values(event) == {"em": [EMAIL_HASH], "fn": ["John"],
                                               "ln": ["Doe"], "country": ["US"],
                                               "external_id": ["cust-42"]}


def test_the_core_checks_the_email_by_linkedins_rule() -> None:
    customer = PiiCustomer.build(email=" John.Doe@Example.com ")
    right = api_event()
    wrong = api_event(eventId="e2", user={"userIds": [{
        "idType": "SHA256_EMAIL", "idValue": pii_rules.sha256_hex(" John.Doe@Example.com ")}]})
    raw = server(conversion(eventId="e3", user={"userIds": [{
        "idType": "SHA256_EMAIL", "idValue": "john.doe@example.com"}]})).events[0]
    codes = {(f.code, f.events[0].event_id)
             for f in check_pii(MatchResult(events=[right, wrong, raw]), customer)}
    assert ("unnormalized-hash", "e2") in codes and ("raw-pii-in-user-data", "e3") in codes
    assert not {c for c in codes if c[1] == "purchase.ORD-1"}


# --- identity and LinkedIn's own findings ----------------------------------------------------


def test_identity_problems() -> None:
    assert identity.identity_problems(None, "x", "PURCHASE") == []
    assert identity.identity_problems(CLICK, CLICK, "PURCHASE") == []
    ((code, message, fix),) = identity.identity_problems(CLICK, None, "PURCHASE")
    assert code == "li-fat-id-missing" and "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID" in fix
    ((code, message, _),) = identity.identity_problems(CLICK, pii_rules.sha256_hex(CLICK), "P")
    assert code == "li-fat-id-mismatch" and "SHA-256 of the browser's li_fat_id" in message
    ((code, message, _),) = identity.identity_problems(CLICK, "other", "P")
    assert code == "li-fat-id-mismatch" and "another visitor's" in message


def test_the_click_id_of_the_page_visit_is_compared_with_the_apis(shop_rules: None) -> None:
    (visit,) = wa({"pids": [int(PARTNER)], "signalType": "PAGE_VISIT", "liFatId": CLICK,
                   "url": "https://shop.example/", "time": 1})
    browser = tag_hit()
    hashed = conversion()
    hashed["user"]["userIds"][1]["idValue"] = pii_rules.sha256_hex(CLICK)
    (api,) = server(hashed).events
    result = match_events([visit, browser, api])
    assert [f.code for f in linkedin_findings(result)] == ["li-fat-id-mismatch"]
    assert LINKEDIN.identity_findings(result.pairs[0]) == []  # the tag hit has none itself
    # a collect hit that carries li_fat_id itself is judged pair by pair
    (own,) = collect(f"pid={PARTNER}&conversionId=7100004&eventId=purchase.ORD-1&time=1"
                     f"&li_fat_id={CLICK}")
    pair = Pair(own, api)
    assert [f.code for f in LINKEDIN.identity_findings(pair)] == ["li-fat-id-mismatch"]


def test_the_click_id_in_a_landing_url_counts() -> None:
    (hit,) = collect("pid=1&conversionId=7&eventId=e&url=https%3A%2F%2Fs.example%2F%3Fli_fat_id"
                     f"%3D{CLICK}")
    assert identity.browser_click_ids([hit]) == [CLICK]


def test_a_rule_used_by_the_other_source_is_said(shop_rules: None) -> None:
    wrong = api_event(conversion="urn:lla:llaPartnerConversion:7100004")
    (finding,) = linkedin_findings(match_events([tag_hit(), wrong]))
    assert finding.code == "linkedin-rule-source-mismatch"
    assert "separate conversion rule" in finding.message and "7100004" in finding.message


def test_a_rule_of_another_account_is_said() -> None:
    rules = [ConversionRule("7100004", "PURCHASE", "tag"),
             ConversionRule("8200004", "PURCHASE", "api", partner_id="999")]
    with LINKEDIN.rules.declared(rules, partner_id=PARTNER):
        result = match_events([tag_hit(), api_event()])
        (finding,) = linkedin_findings(result)
    assert finding.code == "linkedin-other-account" and "999" in finding.message


def test_hashed_names_are_said() -> None:
    event = api_event(user={"userIds": [], "userInfo": {
        "firstName": pii_rules.sha256_hex("john"), "lastName": "Doe"}})
    (finding,) = linkedin_findings(MatchResult(events=[event]))
    assert finding.code == "linkedin-hashed-user-info" and "firstName" in finding.message


@pytest.mark.parametrize("code", ["near-miss-event-id", "missing-event-id", "event-name-mismatch",
                                  "wrong-pixel", "server-event-missing", "browser-event-missing",
                                  "raw-pii-in-user-data", "unnormalized-hash",
                                  "server-call-rejected", "event-time-too-old",
                                  "event-time-in-milliseconds", "duplicate-browser-trigger",
                                  "transient-error-not-retried", "undecodable-request"])
def test_fixes_are_in_linkedins_words(code: str) -> None:
    for event in (tag_hit(), api_event()):
        text = fix_text(code, event)
        assert text and "fbq" not in text and "event_name" not in text
        assert any(word in text for word in ("lintrk", "eventId", "conversionEvents",
                                             "LinkedIn", "SHA256_EMAIL", "conversionHappenedAt"))
    assert fix_text("test-event-code") is None


@pytest.mark.parametrize("status,body,words", [
    (401, {"status": 401, "message": "Invalid access token"}, "Bearer"),
    (426, {"status": 426, "message": "Requested version 202301 is not active"},
     "LinkedIn-Version"),
    (422, {"status": 422, "message": "ERROR :: /user/userIds :: field is required"}, "userIds"),
    (422, {"status": 422, "message": "ERROR :: /user/userIds/0/idValue :: a SHA256_* idValue"},
     "SHA256_EMAIL"),
    (400, {"status": 400, "message": "conversionHappenedAt 1 is 9 days ago"}, "milliseconds"),
], ids=["401", "426", "422-user-ids", "422-hash", "400-time"])
def test_a_rejected_calls_fix_reads_linkedins_answer(status: int, body: dict[str, Any],
                                                     words: str) -> None:
    event = api_event()
    event.raw.response_status, event.raw.response_body = status, json.dumps(body).encode()
    assert words in fix_text("server-call-rejected", event)


def test_an_undeclared_rules_fix_points_to_the_declaration() -> None:
    text = fix_text("server-event-missing", tag_hit())
    assert "PIXELCHECK_LINKEDIN_RULES" in text and "conversion 7100004" not in text


def test_a_seconds_time_is_said_in_the_fix() -> None:
    event = server(conversion(conversionHappenedAt=int(time.time()))).events[0]
    assert "multiply by 1000" in fix_text("event-time-too-old", event)


# --- the sink over real sockets --------------------------------------------------------------


@pytest.fixture
def sink() -> Iterator[ConversionSink]:
    with ConversionSink(EventStore()) as running:
        yield running


def post(url: str, body: Any, hdrs: list[tuple[str, str]]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers=dict(hdrs))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_sink_answers_like_linkedin_over_urllib(sink: ConversionSink) -> None:
    url = sink.url_for("linkedin") + "/rest/conversionEvents"
    assert post(url, conversion(), headers()) == (201, b"")
    sink.expect_token("the-right-token", platform="linkedin")
    status, body = post(url, conversion(eventId="e2"), headers())
    assert status == 401 and json.loads(body)["code"] == "INVALID_ACCESS_TOKEN"
    sink.expect_token(None, platform="linkedin")
    status, body = post(url, {"elements": [conversion(eventId="e3")]},
                        headers(**{"X-RestLi-Method": "BATCH_CREATE"}))
    assert status == 200 and json.loads(body) == {"elements": [{"status": 201}]}
    status, body = post(url, conversion(eventId="e4"), headers(**{"LinkedIn-Version": None}))
    assert status == 400 and json.loads(body)["code"] == "VERSION_MISSING"
    sink.fail_next(1, kind="429", platform="linkedin")
    status, _ = post(url, conversion(eventId="e5"), headers())
    assert status == 429
    events = sink.store.since(0)
    assert [e.event_id for e in events] == ["purchase.ORD-1", "e2", "e3", "e4", "e5"]
    assert [e.raw.response_status for e in events] == [201, 401, 200, 400, 429]
    assert all(e.platform == "linkedin" and e.raw.channel == "sink" for e in events)


def test_the_official_client_against_the_sink(sink: ConversionSink) -> None:
    pytest.importorskip("linkedin_api")
    import requests
    from linkedin_api.clients.restli.client import RestliClient

    local = sink.url_for("linkedin")

    class Rebased(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace("https://api.linkedin.com", local, 1)
            return super().send(request, **kwargs)

    client = RestliClient()
    client.session = Rebased()
    created = client.create(resource_path="/conversionEvents", entity=conversion(),
                            access_token=TOKEN, version_string=api_version())
    assert created.status_code == 201 and created.entity is None
    batch = client.batch_create(resource_path="/conversionEvents",
                                entities=[conversion(eventId="b1"), conversion(eventId="b2")],
                                access_token=TOKEN, version_string=api_version())
    assert [e.status for e in batch.elements] == [201, 201]
    unversioned = client.create(resource_path="/conversionEvents", entity=conversion(),
                                access_token=TOKEN)
    assert unversioned.status_code == 404
    sink.expect_token("the-right-token", platform="linkedin")
    refused = client.create(resource_path="/conversionEvents", entity=conversion(),
                            access_token=TOKEN, version_string=api_version())
    assert refused.status_code == 401
    agents = {e.raw.header("user-agent") for e in sink.store.since(0)}
    assert agents == {"linkedin-api-python-client/0.3.0"}


# --- the shop's tracker -----------------------------------------------------------------------


def _ctx(**cookies: str) -> RequestContext:
    return RequestContext("203.0.113.7", "Mozilla/5.0", cookies=cookies,
                          page_url="https://shop.example/thanks/ORD-1")


CUSTOMER = Customer(email=" Jane.Doe@Example.com ", phone="+1 650 555 1212", first_name="Jane",
                    last_name="Doe", country="us")
PURCHASE_EVENT = TrackedEvent("Purchase", "purchase.ORD-1", {"value": 25, "currency": "usd"},
                              "https://shop.example/thanks/ORD-1", event_time=1795910491)


def test_the_tracker_is_loaded_with_its_clients() -> None:
    assert load_trackers()["linkedin"] is TRACKER
    assert TRACKER.clients == ("json", "linkedin-api-client")
    for fault in ("id_mismatch", "missing_id", "unhashed_pii", "stale_time", "bad_auth",
                  "no_server_purchase"):
        assert fault in TRACKER.faults
    assert {r for r, _, s in conversion_rules() if s == "tag"} == set(TAG_RULES.values())
    assert {r for r, _, s in conversion_rules() if s == "api"} == set(API_RULES.values())


def test_the_trackers_conversion_event_is_what_linkedin_takes() -> None:
    item = TRACKER.conversion_event(PURCHASE_EVENT, _ctx(li_fat_id=CLICK), CUSTOMER)
    assert validate(SCHEMA, item) == []
    assert item["conversion"] == "urn:lla:llaPartnerConversion:8200004"
    assert item["conversionHappenedAt"] == 1795910491000
    assert item["conversionValue"] == {"currencyCode": "USD", "amount": "25.0"}
    ids = {u["idType"]: u["idValue"] for u in item["user"]["userIds"]}
    assert ids["SHA256_EMAIL"] == LINKEDIN.expected_value("em", CUSTOMER.email)
    assert ids["LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID"] == CLICK
    assert item["user"]["userInfo"] == {"firstName": "Jane", "lastName": "Doe",
                                        "countryCode": "US"}


@pytest.mark.parametrize("fault,check", [
    ("id_mismatch", lambda i: i["eventId"] == "purchase.ORD-1-server"),
    ("missing_id", lambda i: "eventId" not in i),
    ("unhashed_pii", lambda i: i["user"]["userIds"][0]["idValue"] == "jane.doe@example.com"),
    ("stale_time", lambda i: i["conversionHappenedAt"] == 1795910491000 - 91 * 86400000),
    ("seconds_time", lambda i: i["conversionHappenedAt"] == 1795910491),
    ("no_user_ids", lambda i: "userIds" not in i["user"]),
    ("amount_number", lambda i: i["conversionValue"]["amount"] == 25.0),
    ("hashed_names", lambda i: pii_rules.is_hashed(i["user"]["userInfo"]["firstName"])),
    ("tag_rule_on_server", lambda i: i["conversion"].endswith(":7100004")),
    ("li_fat_id_hashed", lambda i: i["user"]["userIds"][1]["idValue"] ==
     pii_rules.sha256_hex(CLICK)),
])
def test_each_fault_breaks_the_purchase_as_described(fault: str, check: Any) -> None:
    item = TRACKER.conversion_event(PURCHASE_EVENT, _ctx(li_fat_id=CLICK), CUSTOMER)
    TRACKER._purchase_faults(item, ActiveFaults({fault: None}), _ctx(), CUSTOMER)
    assert check(item), item


def test_the_trackers_calls() -> None:
    config = TrackerConfig("linkedin", TRACKER.default_tag_id, "http://127.0.0.1:1/linkedin",
                           TRACKER.default_token)
    page_view = TrackedEvent("PageView", "pageview.1", {}, "https://shop.example/")
    lines = TRACKER.browser_calls(config, [page_view, PURCHASE_EVENT], ActiveFaults({}),
                                  CUSTOMER)
    assert lines == [
        "window.lintrk('setUserData', {\"email\": \" Jane.Doe@Example.com \"});",
        "window.lintrk('track', {\"conversion_id\": 7100004, \"event_id\": \"purchase.ORD-1\"});"]
    head = TRACKER.head(config, None)
    assert '_linkedin_partner_id = "5550001"' in head and "insight.min.js" in head
    calls = TRACKER.server_calls(config, [page_view, PURCHASE_EVENT], ActiveFaults({}), _ctx(),
                                 CUSTOMER)
    assert [c.label for c in calls] == ["PURCHASE eventId='purchase.ORD-1'"]
    none = TRACKER.server_calls(config, [PURCHASE_EVENT],
                                ActiveFaults({"no_server_purchase": None}), _ctx(), CUSTOMER)
    assert none == []


def test_the_api_version_is_always_active() -> None:
    for now in (time.time(), 1795910492.0, 1704067200.0):
        version = api_version(now)
        request = captured(API_URL, json.dumps(conversion()), arrival=now,
                           hdrs=headers(**{"LinkedIn-Version": version}))
        assert LINKEDIN._header_problem(request) is None, version
    assert api_version(1704067200.0) == "202311"  # 2024-01: two months back


def test_samples_are_plain_data_without_secrets() -> None:
    for path in SAMPLES:
        text = path.read_text()
        assert "li-recording-token" not in text and TOKEN not in text
        json.loads(text)
