"""GA4 (gtag.js + Measurement Protocol): decoders on recorded samples, the sink's
answers, dedup keys, Google's PII rules, GA4's findings, the shop's GA4 tracker, and
the gtag.js stand-in in real Chromium."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from example_site.faults import ActiveFaults
from example_site.trackers import TrackerConfig, load_trackers
from example_site.trackers.ga4 import (
    TRACKER,
    client_id_from_cookie,
    session_id_from_cookie,
)
from example_site.tracking import Customer, RequestContext, TrackedEvent
from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.findings import CATALOGUE, Finding
from pytest_pixelcheck.matching import Pair, match_events
from pytest_pixelcheck.platforms.ga4 import pii_rules
from pytest_pixelcheck.platforms.ga4.findings import ga4_findings
from pytest_pixelcheck.platforms.ga4.identity import identity_findings
from pytest_pixelcheck.platforms.ga4.platform import (
    DEBUG_PATH,
    MP_PATH,
    load_sample,
    sample_files,
)
from pytest_pixelcheck.sink import ConversionSink

GA4 = platforms.get("ga4")
CID = "2119006080.1795911914"
MP_URL = "https://www.google-analytics.com/mp/collect?measurement_id=G-X&api_secret=s3cret"


# --- helpers ------------------------------------------------------------------------------


def mp_request(body: Any, *, url: str = MP_URL, raw: bytes | None = None,
               arrival: float | None = None) -> CapturedRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return CapturedRequest("POST", url, [("Content-Type", "application/json")], data,
                           time.time() if arrival is None else arrival, "sink")


def hit(query: str, *, method: str = "GET", body: bytes = b"",
        host: str = "www.google-analytics.com") -> CapturedRequest:
    return CapturedRequest(method, f"https://{host}/g/collect?{query}",
                           [("User-Agent", "Mozilla/5.0 test")], body, time.time(), "proxy")


def purchase_body(txn: str | None = "ORD-1", *, client_id: str = CID, name: str = "purchase",
                  **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"value": 37.5, "currency": "USD", "session_id": "1795911914",
                              "engagement_time_msec": 1}
    if txn is not None:
        params["transaction_id"] = txn
    return {"client_id": client_id, "events": [{"name": name, "params": params}], **extra}


def server_events(body: Any, **kwargs: Any) -> list[Event]:
    return GA4.handle_server(mp_request(body, **kwargs)).events


def browser_purchase(txn: str = "ORD-1", cid: str = CID, sid: str = "1795911914") -> Event:
    [event] = GA4.decode_browser(hit(
        f"v=2&tid=G-X&cid={cid}&sid={sid}&en=purchase&ep.transaction_id={txn}"
        "&epn.value=37.5&cu=USD"))
    return event


def codes(findings: list[Finding]) -> list[str]:
    return [f.code for f in findings]


# --- recorded samples ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.stem)
def test_sample_decodes_as_expected(path):
    data, request = load_sample(path)
    expect = data["expect"]
    assert data["kind"] in ("browser", "server") and data["source"]
    if data["kind"] == "browser":
        assert GA4.is_collection(request.url.split("/")[2], "/g/collect")
        events = GA4.decode_browser(request)
        status = GA4.collection_response(request).status
        body: dict[str, Any] = {}
    else:
        answer = GA4.handle_server(request)
        events, status, body = answer.events, answer.status, answer.body
    assert status == expect["status"]
    assert len(events) == len(expect["events"])
    for event, want in zip(events, expect["events"], strict=True):
        assert (event.event_name, event.event_id, event.pixel_id) == (
            want["event_name"], want["event_id"], want["pixel_id"])
        assert bool(event.error) == want.get("error", False), event.error
        if "rejected" in want:
            assert bool(event.extra.get("rejected_by_platform")) == want["rejected"]
        if "mirror" in want:
            assert bool(event.extra.get("mirror_of")) == want["mirror"]
        for key in ("client_id", "session_id"):
            if key in want:
                assert event.extra[key] == want[key]
    if "validation_codes" in expect:
        if DEBUG_PATH in request.url:
            got = [m["validationCode"] for m in body["validationMessages"]]
        else:
            got = [m["validationCode"] for e in events
                   for m in e.extra.get("validation_messages", [])]
        assert got == expect["validation_codes"]


def test_stand_in_purchase_sample_carries_everything():
    data, request = load_sample(GA4.samples_dir / "browser_purchase_standin.json")
    [event] = GA4.decode_browser(request)
    assert request.method == "POST" and request.body == b""  # one event, all in the query
    assert event.custom_data["value"] == 37.5 and event.custom_data["currency"] == "USD"
    assert event.custom_data["transaction_id"] == "ORD-1001"
    assert event.custom_data["items"] == [
        {"item_id": "sku-1", "item_name": "Mug", "price": 12.5, "quantity": 1.0},
        {"item_id": "sku-2", "item_name": "Tee", "price": 25.0, "quantity": 1.0}]
    client_id = data["expect"]["events"][0]["client_id"]
    assert event.extra["client_id"] == client_id
    # a new visitor: the session started when the client id was minted
    assert event.extra["session_id"] == client_id.split(".")[1]
    assert event.page_url == "http://127.0.0.1/thanks"
    assert event.event_time == event.arrival_time  # hits carry no event time
    # user-provided data: base64url digests of Google-normalized values
    assert event.extra["customer_encoding"] == "base64url"
    values = GA4.customer_values(event)
    assert values["em"] == [pii_rules.hash_value("em", " John.Smith@GMail.com ")]
    assert values["ph"] == [pii_rules.hash_value("ph", "+1 (650) 555-1212")]
    assert values["fn"] == [pii_rules.hash_value("fn", "John")]
    assert values["ct"] == ["Menlo Park"] and values["country"] == ["US"]
    assert event.user_data["em"][0] == pii_rules.hash_value("em", "johnsmith@gmail.com",
                                                            "base64url")


def test_ga4mp_purchase_and_stand_in_purchase_deduplicate():
    """The recorded browser purchase and the ga4mp server purchase are one conversion."""
    events = []
    for name in ("browser_purchase_standin", "server_mp_purchase_ga4mp"):
        _, request = load_sample(GA4.samples_dir / f"{name}.json")
        events += (GA4.decode_browser(request) if name.startswith("browser")
                   else GA4.handle_server(request).events)
    result = match_events(events, "ga4")
    assert len(result.pairs) == 1 and not result.browser_only and not result.server_only
    # ga4mp sends its own session id (a number), not the browser's sid
    assert codes(identity_findings(result.pairs[0])) == ["session-id-not-from-browser"]


# --- browser decoder ----------------------------------------------------------------------


def test_get_hit_fields():
    _, request = load_sample(GA4.samples_dir / "browser_get_purchase.json")
    [event] = GA4.decode_browser(request)
    assert event.custom_data == {
        "currency": "EUR", "transaction_id": "T-77", "value": 59.9, "shipping": 4.5,
        "items": [{"item_id": "SKU_1", "item_name": "Running Shoes", "price": 59.9,
                   "quantity": 1.0, "item_brand": "Acme"}]}
    assert event.extra["consent"] == "G111" and event.extra["engagement_time_msec"] == "1520"
    assert event.page_url == "https://shop.example/thanks/T-77"


def test_multi_event_post_body_lines_merge_over_the_query():
    _, request = load_sample(GA4.samples_dir / "browser_post_multi_event.json")
    events = GA4.decode_browser(request)
    assert [e.event_name for e in events] == ["view_item", "add_to_cart", "begin_checkout"]
    assert {e.extra["client_id"] for e in events} == {"123456789.1700000000"}
    assert [e.extra["engagement_time_msec"] for e in events] == ["310", "95", "40"]
    assert [e.extra["batch_index"] for e in events] == [0, 1, 2]
    assert events[1].custom_data["items"][0]["quantity"] == 2.0
    assert events[2].custom_data["coupon"] == "SPRING"
    # CRLF lines and a line that overrides a shared parameter
    [a, b] = GA4.decode_browser(hit("v=2&tid=G-X&cid=1.2&en=ignored", method="POST",
                                    body=b"en=a&tid=G-Y\r\nen=b\r\n"))
    assert (a.event_name, a.pixel_id, b.event_name, b.pixel_id) == ("a", "G-Y", "b", "G-X")


def test_post_with_empty_body_is_one_event_from_the_query():
    [event] = GA4.decode_browser(hit("v=2&tid=G-X&cid=1.2&en=purchase&ep.transaction_id=T1",
                                     method="POST"))
    assert (event.event_name, event.event_id) == ("purchase", "T1")


def test_only_purchases_get_an_event_id():
    [view] = GA4.decode_browser(hit("v=2&tid=G-X&en=view_item&ep.transaction_id=T1"))
    [no_id] = GA4.decode_browser(hit("v=2&tid=G-X&en=purchase&epn.value=1"))
    [empty] = GA4.decode_browser(hit("v=2&tid=G-X&en=purchase&ep.transaction_id="))
    assert view.event_id is None and view.custom_data["transaction_id"] == "T1"
    assert no_id.event_id is None and empty.event_id == ""


@pytest.mark.parametrize("request_", [
    hit("v=2&en=purchase"),                                  # no tid
    hit("v=2&tid=G-X"),                                      # no en
    hit("", method="POST", body=b"\xff\xfe\x00garbage"),     # not UTF-8
    hit("v=2", method="POST", body=b"\x1f\x8b not gzip"),    # says gzip, is not
    CapturedRequest("POST", "https://www.google-analytics.com/g/collect", [], b"%%%\n&&&=",
                    time.time(), "proxy"),
], ids=["no-tid", "no-en", "not-utf8", "bad-gzip", "junk-lines"])
def test_malformed_hits_give_error_events_never_exceptions(request_):
    events = GA4.decode_browser(request_)
    assert events and all(e.error for e in events)


def test_gzip_body_and_odd_values_decode():
    body = gzip.compress(b"en=purchase&ep.transaction_id=T9&epn.value=abc&pr1=x~idA~qtZ")
    [event] = GA4.decode_browser(hit("v=2&tid=G-X", method="POST", body=body))
    assert event.event_id == "T9"
    assert event.custom_data["value"] == "abc"  # kept as sent: unparsable number
    assert event.custom_data["items"] == [{"item_id": "A", "quantity": "Z"}]


def test_user_data_sent_after_the_event_is_noted():
    [event] = GA4.decode_browser(hit("v=2&tid=G-X&en=purchase&em=tv.1~em."))
    assert "after the event" in event.extra["user_data_empty"]
    assert GA4.customer_values(event) == {}


def test_doubleclick_copy_is_answered_but_never_a_conversion():
    assert GA4.is_collection("stats.g.doubleclick.net", "/g/collect")
    [copy] = GA4.decode_browser(hit("v=2&tid=G-X&cid=1.2&en=purchase&ep.transaction_id=T1",
                                    host="stats.g.doubleclick.net"))
    assert copy.extra["mirror_of"] and GA4.dedup_key(copy) is None


def test_hosts_paths_and_library():
    for host in ("www.google-analytics.com", "analytics.google.com",
                 "region1.google-analytics.com", "region2.analytics.google.com"):
        assert GA4.is_collection(host, "/g/collect")
    assert not GA4.is_collection("www.google-analytics.com", "/mp/collect")
    assert not GA4.is_collection("evil-google-analytics.com.example", "/g/collect")
    assert not GA4.is_collection("www.facebook.com", "/g/collect")
    for host in (None, "www.google-analytics.com", "region1.google-analytics.com", "127.0.0.1"):
        assert GA4.is_server_api(host, MP_PATH) and GA4.is_server_api(host, DEBUG_PATH)
    assert not GA4.is_server_api("graph.facebook.com", MP_PATH)
    assert not GA4.is_server_api(None, "/g/collect")
    assert platforms.for_server_api("www.google-analytics.com", MP_PATH) is GA4
    assert platforms.for_collection("analytics.google.com", "/g/collect") is GA4
    library = GA4.library_response("www.googletagmanager.com", "/gtag/js")
    assert library is not None and b"/g/collect" in library.body
    assert GA4.library_response("www.googletagmanager.com", "/gtm.js") is None
    answer = GA4.collection_response(hit("v=2"))
    assert (answer.status, answer.body) == (204, b"")


# --- server: the Measurement Protocol -----------------------------------------------------


def test_good_purchase():
    when = time.time() - 3600
    answer = GA4.handle_server(mp_request(purchase_body(
        timestamp_micros=int(when * 1e6), user_id="cust-1",
        user_data={"sha256_email_address": [pii_rules.hash_value("em", "a@b.co")]})))
    assert (answer.status, answer.body, answer.token, answer.token_location) == (
        204, {}, "s3cret", "query")
    [event] = answer.events
    assert (event.source, event.pixel_id, event.event_name, event.event_id) == (
        "server", "G-X", "purchase", "ORD-1")
    assert event.event_time == pytest.approx(when, abs=1e-3)
    assert event.extra["client_id"] == CID and event.extra["session_id"] == "1795911914"
    assert "session_id" not in event.custom_data and event.custom_data["value"] == 37.5
    assert not event.extra.get("rejected_by_platform")
    assert "validation_messages" not in event.extra
    assert GA4.customer_values(event) == {"em": [pii_rules.hash_value("em", "a@b.co")],
                                          "external_id": ["cust-1"]}


def test_event_time_is_arrival_without_timestamp_micros_and_event_level_wins():
    [plain] = server_events(purchase_body())
    assert plain.event_time == plain.arrival_time and plain.event_time_raw is None
    body = purchase_body(timestamp_micros=1)
    body["events"][0]["timestamp_micros"] = int((time.time() - 60) * 1e6)
    [own] = server_events(body)
    assert not own.extra.get("rejected_by_platform")


def test_debug_endpoint_answers_validation_messages():
    url = MP_URL.replace(MP_PATH, DEBUG_PATH)
    answer = GA4.handle_server(mp_request(
        {"client_id": CID, "events": [{"name": "_badEventName", "params": {}},
                                      {"name": "purchase", "params": {"value": 1}}]}, url=url))
    assert answer.status == 200
    messages = answer.body["validationMessages"]
    assert messages[0] == {"fieldPath": "events", "validationCode": "NAME_INVALID",
                           "description": "Event at index: [0] has invalid name "
                                          "[_badEventName]. Names must start with an "
                                          "alphabetic character."}
    assert {m["validationCode"] for m in messages} == {"NAME_INVALID", "VALUE_REQUIRED"}
    # the validation server records nothing, whatever it says
    assert all("validation server" in e.extra["rejected_by_platform"] for e in answer.events)
    assert GA4.test_event_code(answer.events[0]) == DEBUG_PATH
    clean = GA4.handle_server(mp_request(purchase_body(), url=url))
    assert clean.body == {"validationMessages": []}


@pytest.mark.parametrize("body, words", [
    (purchase_body(name="_purchase"), "NAME_INVALID"),
    (purchase_body(name="session_start"), "NAME_RESERVED"),
    (purchase_body(name="google_purchase"), "NAME_RESERVED"),
    (purchase_body(name="a" * 41), "40 characters"),
    (purchase_body(timestamp_micros=int((time.time() - 80 * 3600) * 1e6)), "72 hours"),
    ({"events": purchase_body()["events"]}, "client_id"),
    ({"client_id": CID, "events": purchase_body()["events"] * 26}, "EXCEEDED_MAX_ENTITIES"),
], ids=["underscore", "reserved", "reserved-prefix", "too-long", "stale", "no-client-id",
        "26-events"])
def test_silently_dropped_events_are_answered_2xx_and_marked(body, words):
    answer = GA4.handle_server(mp_request(body))
    assert answer.status == 204 and answer.body == {}
    assert answer.events and all(words in e.extra["rejected_by_platform"]
                                 and "Google silently drops" in e.extra["rejected_by_platform"]
                                 for e in answer.events)
    assert all(e.decoded for e in answer.events)


def test_missing_api_secret_and_measurement_id_are_dropped():
    [no_secret] = GA4.handle_server(mp_request(
        purchase_body(), url=MP_URL.split("&")[0])).events
    assert "no api_secret" in no_secret.extra["rejected_by_platform"]
    [no_id] = GA4.handle_server(mp_request(
        purchase_body(), url=MP_URL.replace("measurement_id=G-X&", ""))).events
    assert "measurement_id" in no_id.extra["rejected_by_platform"]


def test_only_the_bad_event_of_a_batch_is_dropped():
    body = purchase_body()
    body["events"].append({"name": "ga_thing", "params": {}})
    good, bad = server_events(body)
    assert not good.extra.get("rejected_by_platform") and bad.extra["rejected_by_platform"]
    assert "validation_messages" not in good.extra


def test_rule_violations_that_keep_the_event_are_recorded():
    params = {f"p{i}": i for i in range(30)} | {"transaction_id": "T", "value": "12.00",
                                                "bad-name": 1, "ga_param": 2}
    [event] = server_events({"client_id": CID,
                             "events": [{"name": "purchase", "params": params}]})
    assert not event.extra.get("rejected_by_platform")
    got = {m["validationCode"] for m in event.extra["validation_messages"]}
    assert got == {"EXCEEDED_MAX_ENTITIES", "VALUE_INVALID", "VALUE_REQUIRED",
                   "NAME_INVALID", "NAME_RESERVED"}


@pytest.mark.parametrize("raw, words", [
    (b'{"client_id": "1.2", "events": [', "not valid JSON"),
    (b"", "empty"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"client_id": "1.2", "events": {}}', "events"),
    (b'{"client_id": "1.2", "events": []}', "events"),
], ids=["truncated", "empty", "not-utf8", "array", "events-object", "no-events"])
def test_undecodable_bodies_get_an_error_event_and_2xx(raw, words):
    answer = GA4.handle_server(mp_request(None, raw=raw))
    assert answer.status == 204
    [event] = answer.events
    assert event.error and words in event.error and "2xx" in event.error


def test_event_that_is_not_an_object():
    bad, good = server_events({"client_id": CID, "events": ["purchase",
                                                            purchase_body()["events"][0]]})
    assert bad.error and "events[0]" in bad.error and good.decoded


def test_huge_body_is_dropped_quickly():
    body = purchase_body()
    body["events"][0]["params"]["note"] = "x" * 200_000
    started = time.monotonic()
    [event] = server_events(body)
    assert time.monotonic() - started < 2
    assert "130kB" in event.extra["rejected_by_platform"]


def test_error_answers():
    request = mp_request(purchase_body())
    answer = GA4.handle_server(request)
    assert GA4.error_answer("invalid_token", request) == (204, {})
    assert "api_secret is not the expected one" in answer.events[0].extra["rejected_by_platform"]
    # an unrelated request marks nothing
    other = mp_request(purchase_body())
    GA4.error_answer("missing_token", other)
    # the validation server answers its messages whatever the secret
    debug = mp_request(purchase_body(name="_x"), url=MP_URL.replace(MP_PATH, DEBUG_PATH))
    [debug_event] = GA4.handle_server(debug).events
    status, body = GA4.error_answer("invalid_token", debug)
    assert status == 200 and body["validationMessages"][0]["validationCode"] == "NAME_INVALID"
    assert "validation server" in debug_event.extra["rejected_by_platform"]
    assert "api_secret" in debug_event.extra["rejected_by_platform"]
    for kind, status in (("500", 500), ("429", 429), ("timeout", 504), ("transient", 500)):
        assert GA4.error_answer(kind, request)[0] == status
    assert "500" in GA4.fault_kinds and "api_secret" in GA4.secret_params


# --- dedup --------------------------------------------------------------------------------


def test_dedup_keys():
    browser = browser_purchase()
    [server] = server_events(purchase_body())
    assert GA4.dedup_key(browser) == GA4.dedup_key(server) == ("G-X", "purchase", "ORD-1", CID)
    assert GA4.deduplicates("purchase") and not GA4.deduplicates("page_view")
    [view] = GA4.decode_browser(hit("v=2&tid=G-X&cid=1.2&en=page_view"))
    assert GA4.dedup_key(view) is None
    assert "transaction_id" in GA4.dedup_rule()
    result = match_events([browser, server], "ga4")
    assert len(result.pairs) == 1


def test_another_client_id_is_another_user_to_google():
    browser = browser_purchase()
    [server] = server_events(purchase_body(client_id="555.666"))
    result = match_events([browser, server], "ga4")
    assert not result.pairs and result.browser_only and result.server_only
    assert codes(ga4_findings(result)) == ["client-id-not-from-browser"]
    [finding] = ga4_findings(result)
    assert "counted twice" in finding.message and "_ga cookie" in finding.fix


def test_transaction_id_mismatch_is_left_to_the_core_near_miss():
    from pytest_pixelcheck.diagnosis import diagnose

    result = match_events([browser_purchase("ORD-1"),
                           *server_events(purchase_body("ORD-1-server"))], "ga4")
    assert "near-miss-event-id" in codes(diagnose(result))


# --- PII ----------------------------------------------------------------------------------


@pytest.mark.parametrize("key, raw, normalized, digest", pii_rules.TEST_VECTORS)
def test_pii_vectors(key, raw, normalized, digest):
    assert pii_rules.normalize(key, raw) == normalized
    assert pii_rules.hash_value(key, raw) == digest
    b64 = pii_rules.hash_value(key, raw, "base64url")
    assert "=" not in b64 and pii_rules.digest_bytes(b64) == bytes.fromhex(digest)


def test_pii_rules_details():
    assert pii_rules.hash_value("ph", "+1 650 555 1234").startswith("a2996076")
    assert pii_rules.normalize("em", "j.o.h.n@googlemail.com") == "john@googlemail.com"
    assert pii_rules.normalize("em", "j.o.h.n@example.com") == "j.o.h.n@example.com"
    assert pii_rules.normalize("street", " 1600 Amphitheatre Pkwy. ") == "1600 amphitheatre pkwy"
    assert pii_rules.hash_value("ct", " Menlo Park ") == "menlo park"  # never hashed
    assert pii_rules.hash_value("country", "us") == "US"
    assert pii_rules.hash_value("em", "  ") == "" and pii_rules.normalize("em", None) == ""
    with pytest.raises(ValueError):
        pii_rules.normalize("db", "19900101")
    with pytest.raises(ValueError):
        pii_rules.encode_digest(b"x", "base32")  # type: ignore[arg-type]


def test_digest_bytes_reads_every_encoding():
    digest = hashlib.sha256(b"test@test.com").digest()
    forms = [digest.hex(), digest.hex().upper(), base64.urlsafe_b64encode(digest).decode(),
             base64.urlsafe_b64encode(digest).decode().rstrip("="),
             base64.b64encode(digest).decode()]
    assert all(pii_rules.digest_bytes(f) == digest for f in forms)
    for not_a_digest in ("test@test.com", "abc", digest.hex()[:-2], 42, None,
                         base64.urlsafe_b64encode(b"x" * 31).decode()):
        assert pii_rules.digest_bytes(not_a_digest) is None
    assert pii_rules.digest_encoding(forms[3]) == "base64url"
    assert pii_rules.digest_encoding(forms[0]) == "hex"
    assert pii_rules.as_hex(forms[3]) == digest.hex() and pii_rules.as_hex("raw") == "raw"


# --- GA4's findings -----------------------------------------------------------------------


def test_new_codes_are_registered():
    for code in ("empty-transaction-id", "client-id-not-from-browser", "mp-silently-dropped",
                 "session-id-not-from-browser", "mp-validation-message"):
        assert code in CATALOGUE


def test_empty_transaction_id_finding():
    events = [browser_purchase(""), *server_events(purchase_body(""))]
    [finding] = [f for f in ga4_findings(match_events(events, "ga4"))
                 if f.code == "empty-transaction-id"]
    assert "collapses every purchase with an empty transaction_id into one" in finding.message
    assert "gtag('event', 'purchase'" in finding.fix and "params.transaction_id" in finding.fix
    assert len(finding.events) == 2 and finding.severity == "error"


def test_silently_dropped_finding_groups_by_reason():
    stale = int((time.time() - 80 * 3600) * 1e6)
    events = server_events(purchase_body(timestamp_micros=stale)) + \
        server_events(purchase_body(name="_purchase"))
    found = [f for f in ga4_findings(match_events(events, "ga4"))
             if f.code == "mp-silently-dropped"]
    assert len(found) == 2
    assert any("72 hours" in f.fix for f in found) and any("a letter first" in f.fix
                                                         for f in found)
    assert all("got a 2xx answer" in f.message for f in found)


def test_validation_message_finding_for_kept_events():
    events = server_events({"client_id": CID, "events": [
        {"name": "purchase", "params": {"transaction_id": "T", "value": 3}}]})
    [finding] = ga4_findings(match_events(events, "ga4"))
    assert finding.code == "mp-validation-message" and "currency" in finding.message


def test_identity_findings_on_a_pair():
    browser = browser_purchase(sid="111")
    [server] = server_events(purchase_body())
    [finding] = identity_findings(Pair(browser, server))
    assert finding.code == "session-id-not-from-browser" and "111" in finding.details[0]
    server.extra["client_id"] = "9.9"
    assert codes(identity_findings(Pair(browser, server)))[0] == "client-id-not-from-browser"
    del server.extra["session_id"]
    assert "no params.session_id" in identity_findings(Pair(browser, server))[1].message
    assert GA4.identity_findings(Pair(browser, server))


@pytest.mark.parametrize("code", ["near-miss-event-id", "missing-event-id",
                                  "server-event-missing", "browser-event-missing",
                                  "wrong-pixel", "test-event-code", "event-time-too-old",
                                  "duplicate-browser-trigger", "event-name-mismatch"])
def test_fixes_speak_ga4(code):
    text = GA4.fix(code, browser_purchase())
    assert text and any(word in text for word in ("gtag", "Measurement Protocol", "mp/collect",
                                                  "transaction_id", "timestamp_micros"))
    assert "fbq" not in text and "Conversions API" not in text
    assert GA4.fix("no-such-code") is None


# --- the shop's GA4 tracker ---------------------------------------------------------------


CONFIG = TrackerConfig("ga4", "G-PIXELCHECK1", "http://127.0.0.1:1/ga4", "s3cret")
SHOPPER = Customer(email="John.Smith@GMail.com", phone="+1 (650) 555-1212",
                   first_name="John", last_name="Smith", city="Menlo Park", zip="94025")


def shop_purchase(order_id: str = "ORD-7") -> TrackedEvent:
    return TrackedEvent("Purchase", f"purchase.{order_id}", {
        "content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                "item_price": 12.5}],
        "value": 25.0, "currency": "USD", "order_id": order_id}, "http://shop/thanks")


def test_tracker_is_found_and_describes_itself():
    assert load_trackers()["ga4"] is TRACKER
    assert TRACKER.default_tag_id == "G-PIXELCHECK1" and TRACKER.clients == ("json",)
    assert {"empty_transaction_id", "transaction_id_mismatch", "server_client_id_new",
            "wrong_api_secret", "no_server_purchase", "no_browser_purchase",
            "reserved_event_name", "stale_timestamp"} <= set(TRACKER.faults)


def test_tracker_browser_side():
    head = TRACKER.head(CONFIG, None)
    assert "https://www.googletagmanager.com/gtag/js?id=" in head
    assert "gtag('config', 'G-PIXELCHECK1');" in head
    view = TrackedEvent("ViewContent", "v1", {"content_ids": ["sku-1"], "value": 12.5,
                                              "currency": "USD"}, "http://shop/p")
    page = TrackedEvent("PageView", "p1", {}, "http://shop/p")
    calls = TRACKER.browser_calls(CONFIG, [page, view, shop_purchase()], ActiveFaults(),
                                  SHOPPER)
    assert len(calls) == 3  # no second page_view; user_data before the purchase
    assert calls[0].startswith("gtag('event', 'view_item'")
    assert calls[1].startswith("gtag('set', 'user_data'") and "John.Smith@GMail.com" in calls[1]
    assert '"transaction_id": "ORD-7"' in calls[2] and '"quantity": 2' in calls[2]
    faulty = TRACKER.browser_calls(CONFIG, [shop_purchase()],
                                   ActiveFaults({"empty_transaction_id": None}), None)
    assert faulty == ["gtag('event', 'purchase', {\"transaction_id\": \"\", \"currency\": "
                      "\"USD\", \"value\": 25.0, \"items\": [{\"item_id\": \"sku-1\", "
                      "\"price\": 12.5, \"quantity\": 2}]});"]
    assert TRACKER.browser_calls(CONFIG, [shop_purchase()],
                                 ActiveFaults({"no_browser_purchase": None}), None) == []


def test_cookie_parsers():
    assert client_id_from_cookie("GA1.1.2119006080.1795911914") == CID
    assert client_id_from_cookie("GA1.2.3") is None and client_id_from_cookie(None) is None
    assert session_id_from_cookie("GS1.1.1795911914.1.1.1795911914.0.0.0") == "1795911914"
    assert session_id_from_cookie("GS2.1.s1795911914$o3$g1$t1795912000$j0$l0$h0") == \
        "1795911914"
    assert session_id_from_cookie("junk") is None


def _server_body(faults: dict[str, str | None], cookies: dict[str, str] | None = None
                 ) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body the tracker would post (captured, not sent)."""
    sent: dict[str, Any] = {}
    ctx = RequestContext("127.0.0.1", "UA", cookies=cookies if cookies is not None else {
        "_ga": "GA1.1." + CID, "_ga_PIXELCHECK1": "GS1.1.1795911914.1.1.1795911914.0.0.0"})
    calls = TRACKER.server_calls(CONFIG, [shop_purchase()], ActiveFaults(faults), ctx, SHOPPER)
    if not calls:
        return "", {}
    [call] = calls
    import example_site.trackers as trackers_pkg

    original = trackers_pkg.urllib.request.urlopen

    def fake_urlopen(request: Any, timeout: float) -> Any:
        sent["url"], sent["body"] = request.full_url, json.loads(request.data)
        raise urllib.error.URLError("captured")

    trackers_pkg.urllib.request.urlopen = fake_urlopen
    try:
        call.send(1.0)
    finally:
        trackers_pkg.urllib.request.urlopen = original
    return sent["url"], sent["body"]


def test_tracker_server_purchase_reads_the_browser_cookies():
    url, body = _server_body({})
    assert url.startswith("http://127.0.0.1:1/ga4/mp/collect?measurement_id=G-PIXELCHECK1")
    assert "api_secret=s3cret" in url
    assert body["client_id"] == CID
    [event] = body["events"]
    assert event["name"] == "purchase" and event["params"]["transaction_id"] == "ORD-7"
    assert event["params"]["session_id"] == "1795911914"
    assert event["params"]["engagement_time_msec"] == 1
    assert body["user_data"]["sha256_email_address"] == [
        pii_rules.hash_value("em", SHOPPER.email)]
    assert body["user_data"]["sha256_phone_number"] == [
        pii_rules.hash_value("ph", SHOPPER.phone)]
    assert body["user_id"]
    # and the platform reads it back as the same conversion as the browser's
    [server] = GA4.handle_server(mp_request(body, url=url)).events
    assert not server.extra.get("validation_messages")
    assert GA4.customer_values(server)["fn"] == [pii_rules.hash_value("fn", "John")]


@pytest.mark.parametrize("fault, check", [
    ("empty_transaction_id", lambda b: b["events"][0]["params"]["transaction_id"] == ""),
    ("transaction_id_mismatch",
     lambda b: b["events"][0]["params"]["transaction_id"] == "ORD-7-server"),
    ("server_client_id_new", lambda b: b["client_id"] != CID),
    ("reserved_event_name", lambda b: b["events"][0]["name"] == "_purchase"),
    ("stale_timestamp", lambda b: time.time() - b["timestamp_micros"] / 1e6 > 79 * 3600),
])
def test_tracker_server_faults(fault, check):
    _, body = _server_body({fault: None})
    assert check(body)


def test_tracker_server_faults_without_a_body():
    assert _server_body({"no_server_purchase": None}) == ("", {})
    url, _ = _server_body({"wrong_api_secret": None})
    assert "api_secret=wrong-api-secret" in url
    _, body = _server_body({}, cookies={})  # no _ga cookie: a minted id, still sent
    assert body["client_id"] and "session_id" not in body["events"][0]["params"]


# --- over sockets: the sink -----------------------------------------------------------------


def _post(url: str, payload: Any) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=5) as response:
        return response.status, response.read()


def test_sink_answers_like_google_over_sockets():
    store = EventStore()
    with ConversionSink(store) as sink:
        base = sink.url_for("ga4")
        status, body = _post(base + "/mp/collect?measurement_id=G-X&api_secret=s",
                             purchase_body())
        assert (status, body) == (204, b"")
        status, body = _post(base + "/debug/mp/collect?measurement_id=G-X&api_secret=s",
                             purchase_body(name="_purchase"))
        assert status == 200
        assert json.loads(body)["validationMessages"][0]["validationCode"] == "NAME_INVALID"
        # a wrong api_secret: Google still answers 2xx, the events say it was dropped
        sink.expect_token("the-right-secret")
        status, body = _post(base + "/mp/collect?measurement_id=G-X&api_secret=s",
                             purchase_body("ORD-2"))
        assert (status, body) == (204, b"")
        sink.reset()
        # and an injected outage is a plain 5xx
        sink.fail_next(kind="500")
        with pytest.raises(urllib.error.HTTPError) as outage:
            _post(base + "/mp/collect?measurement_id=G-X&api_secret=s", purchase_body("ORD-3"))
        assert outage.value.code == 500
    good, debug, wrong, failed = store.since(0)
    assert (good.event_name, good.event_id, good.raw.response_status) == ("purchase", "ORD-1",
                                                                          204)
    assert not good.extra.get("rejected_by_platform")
    assert "validation server" in debug.extra["rejected_by_platform"]
    assert "api_secret is not the expected one" in wrong.extra["rejected_by_platform"]
    assert failed.raw.response_status == 500


# --- the gtag.js stand-in in real Chromium ------------------------------------------------


@pytest.fixture
def shop_page() -> Iterator[tuple[str, dict[str, str]]]:
    """A page with the tracker's gtag snippet and a purchase, served on 127.0.0.1."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?")[0], "not found").encode()
            self.send_response(200 if self.path.split("?")[0] in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", pages
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_stand_in_in_chromium_deduplicates_with_the_tracker_server_call(
        pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_sink, shop_page):
    base, pages = shop_page
    purchase = shop_purchase("ORD-2024")
    script = "\n".join([TRACKER.head(CONFIG, SHOPPER),
                        *TRACKER.browser_calls(CONFIG, [purchase], ActiveFaults(), SHOPPER)])
    pages["/thanks"] = (f"<!doctype html><title>Thanks</title><h1>Thanks</h1>"
                        f"<script>{script}</script>")
    pixelcheck_page.goto(f"{base}/thanks")

    event = pixelcheck.wait_for("purchase", source="browser", platform="ga4")
    assert event.decoded and event.event_id == "ORD-2024"
    assert event.custom_data["value"] == 25.0 and event.custom_data["currency"] == "USD"
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    assert event.extra["client_id"] == client_id_from_cookie(cookies["_ga"])
    assert event.extra["session_id"] == session_id_from_cookie(cookies["_ga_PIXELCHECK1"])
    assert GA4.customer_values(event)["em"] == [pii_rules.hash_value("em", SHOPPER.email)]
    assert pixelcheck.wait_for("page_view", source="browser", platform="ga4").decoded

    # the backend's Measurement Protocol purchase, built from the browser's cookies
    config = TrackerConfig("ga4", CONFIG.tag_id, pixelcheck_sink.url_for("ga4"), "s3cret")
    ctx = RequestContext("127.0.0.1", "UA", cookies=cookies)
    [call] = TRACKER.server_calls(config, [purchase], ActiveFaults(), ctx, SHOPPER)
    status, _ = call.send(5.0)
    assert status == 204
    server = pixelcheck.wait_for("purchase", source="server", platform="ga4")
    assert server.extra["client_id"] == event.extra["client_id"]

    result = pixelcheck.match("ga4")
    [pair] = [p for p in result.pairs if p.browser.event_name == "purchase"]
    assert pair.server is server and identity_findings(pair) == []
    assert ga4_findings(result) == []
