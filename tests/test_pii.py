"""PII normalization, hashing checks, identity parity and match-key coverage (no browser).

Events are built as wire requests and decoded by the Meta platform module, so the
checks see exactly the shapes the proxy and sink produce (browser ``ud`` values
are strings, server ``user_data`` values lists).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from urllib.parse import urlencode

import pytest

from example_site.journey import Customer as JourneyCustomer
from pytest_pixelcheck import (
    CATALOGUE,
    PixelcheckAssertionError,
    assert_pii_hashed,
    check_pii,
    hash_value,
    mask,
    match_key_coverage,
    normalize,
)
from pytest_pixelcheck.capture import Pixelcheck
from pytest_pixelcheck.events import CapturedRequest, EventStore
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.pii import CODES, Customer, coverage_table, mask_text
from pytest_pixelcheck.platforms import get as platform

META = platform("meta")
NOW = time.time()
PIXEL = "1234567890"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
FBP = "fb.1.1730578362123.1116446470"
SHOP = "https://shop.example"
THANKS = f"{SHOP}/thanks/ORD-1001"
IP = "203.0.113.7"
_seq = itertools.count()

CUSTOMER = Customer(email="Jane.Doe@Example.com", phone="+1 (650) 555-1212",
                    first_name="Jane", last_name="Doe", city="Menlo Park", zip="94025",
                    country="US", external_id="cust-42")
HASHES = CUSTOMER.user_data()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hit(name="Purchase", eid="purchase.ORD-1001", *, ud=None, cd=None, dl=THANKS, fbp=FBP,
        fbc=None, ua=UA, at=0.0, rl=None, cookie=None):
    """A pixel hit as the browser sends it, decoded by the Meta module."""
    params = [("id", PIXEL), ("ev", name), ("eid", eid), ("dl", dl),
              ("ts", str(int((NOW + at) * 1000)))]
    if rl is not None:
        params.append(("rl", rl))
    if fbp is not None:
        params.append(("fbp", fbp))
    if fbc is not None:
        params.append(("fbc", fbc))
    for key, value in (cd or {}).items():
        params.append((f"cd[{key}]", value if isinstance(value, str) else json.dumps(value)))
    for key, value in (HASHES if ud is None else ud).items():
        params.append((f"ud[{key}]", value))
    headers = [("User-Agent", ua)] if ua else []
    if cookie:
        headers.append(("Cookie", cookie))
    request = CapturedRequest("GET", "https://www.facebook.com/tr/?" + urlencode(params),
                              headers, b"", NOW + at, "proxy")
    [event] = META.decode_browser(request)
    event.seq = next(_seq)
    return event


def call(name="Purchase", eid="purchase.ORD-1001", *, user_data=None, extra_ud=None, cd=None,
         url=THANKS, action_source="website", at=0.1, drop=()):
    """A Conversions API call as the backend sends it, decoded by the Meta module."""
    ud = {"client_ip_address": IP, "client_user_agent": UA, "fbp": FBP}
    ud.update({k: [v] for k, v in HASHES.items()} if user_data is None else user_data)
    ud.update(extra_ud or {})
    for key in drop:
        ud.pop(key, None)
    item = {"event_name": name, "event_time": int(NOW), "event_id": eid,
            "action_source": action_source, "user_data": ud,
            "custom_data": cd if cd is not None else {"value": 12.5, "currency": "USD"}}
    if url is not None:
        item["event_source_url"] = url
    request = CapturedRequest(
        "POST", f"https://graph.facebook.com/v21.0/{PIXEL}/events?access_token=T0KEN",
        [("Content-Type", "application/json")], json.dumps({"data": [item]}).encode(),
        NOW + at, "sink", response_status=200)
    [event] = META.handle_server(request).events
    event.seq = next(_seq)
    return event


def codes(*events, customer=None):
    return [f.code for f in check_pii(match_events(events), customer)]


def found(code, *events, customer=None):
    return [f for f in check_pii(match_events(events), customer) if f.code == code]


# --- normalization --------------------------------------------------------------------

# Meta's published examples (Conversions API, customer information parameters page):
# input, normalized form and expected SHA-256, quoted from the documentation.
META_VECTORS = [
    ("em", "John_Smith@gmail.com", None, "john_smith@gmail.com",
     "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    ("ph", "(650)555-1212", "US", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("fn", "Mary", None, "mary",
     "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    ("fn", "정", None, "정",
     "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
    ("fn", "Valéry", None, "valéry",
     "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
    ("db", "2/16/1997", None, "19970216",
     "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    ("country", "United States", None, "us",
     "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
    # Snapchat's Conversions API docs publish these with the same rules as Meta's
    ("em", "Person@Example.com", None, "person@example.com",
     "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"),
    ("ph", "+44 844 412 4653", None, "448444124653",
     "dc008fda46e2e64002cf2f82a4906236282d431c4f75e5b60bfe79fc48546383"),
]


@pytest.mark.parametrize("key, raw, country, normalized, digest", META_VECTORS,
                         ids=[f"{v[0]}-{v[1]}" for v in META_VECTORS])
def test_published_vectors(key, raw, country, normalized, digest):
    assert normalize(key, raw, country=country) == normalized
    assert hash_value(key, raw, country=country) == digest


def test_journey_default_phone_hashes_like_metas_example():
    # the shop's rule (digits only, no country code added) is right for this input:
    # the typed number carries its +1
    typed = JourneyCustomer()
    from example_site.tracking import norm_phone
    assert norm_phone(typed.phone) == normalize("ph", typed.phone) == "16505551212"
    assert hash_value("ph", typed.phone) == META_VECTORS[1][4]


# The rules of Meta's server-side SDK, facebook-python-business-sdk,
# facebook_business/adobjects/serverside/normalize.py (Normalize.normalize_field):
# lower().strip() for every field, a value already 64 hex passes through, ct/st drop
# [0-9.\s\-()], zp drops whitespace and keeps what is before "-", country keeps a-z,
# ph drops whitespace, "-", "(", ")" and a leading "+"/"00".
SDK_CASES = [
    ("em", "  John@Example.COM ", None, "john@example.com"),
    ("ct", "Menlo Park", None, "menlopark"),
    ("ct", " St. Louis ", None, "stlouis"),
    ("ct", "Winston-Salem (NC)", None, "winstonsalemnc"),
    ("st", " CA ", None, "ca"),
    ("st", "California", None, "ca"),  # Meta's docs: the 2-letter ANSI code
    ("zp", "94025-1234", None, "94025"),
    ("zp", " 94025 ", "US", "94025"),
    ("zp", "M1 1AE", "GB", "m11ae"),
    ("country", " US ", None, "us"),
    ("country", "u.s.", None, "us"),
    ("ph", "+1 (650) 555-1212", None, "16505551212"),
    ("ph", "001 650 555 1212", None, "16505551212"),
    ("ph", "(650) 555-1212", None, "6505551212"),  # no country given: none invented
    ("ph", "020 7946 0958", "GB", "442079460958"),
    ("fn", "  JANE ", None, "jane"),
    ("ln", "O'Brien", None, "o'brien"),
    ("db", "1997-02-16", None, "19970216"),
    ("db", "16.02.1997", None, "19970216"),
    ("db", "19970216", None, "19970216"),
    ("ge", "Female", None, "f"),
    ("ge", " M ", None, "m"),
    ("external_id", " Cust-42 ", None, "cust-42"),
    ("email", "A@B.co", None, "a@b.co"),  # attribute names work as well as keys
]


@pytest.mark.parametrize("key, raw, country, expected", SDK_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in SDK_CASES])
def test_sdk_rules(key, raw, country, expected):
    assert normalize(key, raw, country=country) == expected


def test_already_hashed_values_pass_through():
    digest = sha("jane@example.com")
    assert normalize("em", digest.upper()) == digest
    assert hash_value("em", digest) == digest


@pytest.mark.parametrize("key, raw", [("em", "not-an-email"), ("country", "Atlantis"),
                                      ("db", "32/13/1997"), ("ge", "x"), ("ph", "12")])
def test_values_that_cannot_be_normalized(key, raw):
    with pytest.raises(ValueError):
        normalize(key, raw)


def test_empty_and_unknown():
    assert normalize("em", "") == normalize("em", None) == normalize("em", "  ") == ""
    assert hash_value("em", "") == ""
    with pytest.raises(ValueError, match="unknown customer field"):
        normalize("shoe_size", "42")
    with pytest.raises(ValueError, match="no normalization rules"):
        normalize("em", "a@b.co", "myspace")
    with pytest.raises(TypeError):
        normalize("em", ["a@b.co"])


def test_platforms_hash_one_phone_differently():
    phone = "+1 (650) 555-1212"
    assert normalize("ph", phone, "tiktok") == normalize("ph", phone, "google") == "+16505551212"
    assert normalize("ph", "001 650 555 1212", "tiktok") == "+16505551212"
    assert hash_value("ph", phone, "tiktok") != hash_value("ph", phone, "meta")
    # Google drops the dots of gmail addresses; Meta keeps them
    assert normalize("em", "Jane.Doe@GMail.com", "google") == "janedoe@gmail.com"
    assert normalize("em", "Jane.Doe@GMail.com", "meta") == "jane.doe@gmail.com"


# --- masking --------------------------------------------------------------------------

@pytest.mark.parametrize("value, key, shown", [
    ("john@example.com", None, "j***@example.com"),
    (" John@Example.com ", "em", "J***@Example.com"),
    ("+1 (650) 555-1212", None, "+1 *** *** **12"),
    ("16505551212", "ph", "*** *** **12"),
    ("16505551212", None, "*** *** **12"),
    ("203.0.113.7", "client_ip_address", "203.0.113.***"),
    ("Jane", "fn", "J***"),
    (sha("x"), None, sha("x")[:8] + "…"),
    (None, None, "None"),
    ("", "em", "''"),
    (["a@b.co", 5], "em", "[a***@b.co, int 5***]"),
    ({"a": 1}, None, "{…1 keys}"),
])
def test_mask(value, key, shown):
    assert mask(value, key) == shown


def test_mask_cuts_long_values_and_masks_inside_text():
    assert len(mask("x" * 10_000)) < 80
    url = "https://shop.example/thanks?email=jane@example.com&tel=+1 650 555 1212"
    assert mask_text(url, 200) == ("https://shop.example/thanks?email=j***@example.com"
                                   "&tel=+1 *** *** **12")
    assert "jane@" not in mask(url) and mask(url).endswith("(70 chars)")


# --- the customer ---------------------------------------------------------------------

def test_customer_from_a_checkout_object_a_mapping_and_keywords():
    from_object = Customer.build(JourneyCustomer())
    assert from_object.email == "Jane.Doe@Example.com" and from_object.zip == "94025"
    from_mapping = Customer.build({"em": "a@b.co", "zip_code": 94025, "country": "US"})
    assert from_mapping.email == "a@b.co" and from_mapping.zip == "94025"
    assert Customer.build(from_mapping, phone="+1 650 555 1212").phone == "+1 650 555 1212"
    with pytest.raises(TypeError, match="unknown customer field"):
        Customer.build({"shoe": 42})
    assert from_mapping.keys == ["em", "zp", "country"]


def test_customer_never_shows_pii():
    shown = repr(CUSTOMER)
    assert "Jane.Doe" not in shown and "555" not in shown and "J***@Example.com" in shown
    with pytest.raises(ValueError) as bad:
        Customer(email="Jane.Doe@Example.com", date_of_birth="1997-13-45")
    assert "1997-13-45" not in str(bad.value)


def test_customer_verdicts_name_the_skipped_step():
    c = Customer(email="John@Example.com ", phone="+1 (650) 555-1212", zip="94025-1234",
                 city="Menlo Park", country="United States", date_of_birth="2/16/1997")
    assert c.verdict("em", sha("john@example.com")) == ("ok", "")
    assert c.verdict("em", sha("John@Example.com ")) == (
        "unnormalized", "not trimmed and not lowercased")
    assert c.verdict("em", sha("john@example.com ")) == ("unnormalized", "not trimmed")
    assert c.verdict("em", sha("John@Example.com")) == ("unnormalized", "not lowercased")
    assert c.verdict("em", sha(sha("john@example.com"))) == ("double", "")
    assert c.verdict("ph", sha("+1 (650) 555-1212")) == ("unnormalized",
                                                         "phone kept its +/spaces")
    assert c.verdict("ph", sha("+16505551212")) == ("unnormalized", "phone kept its +")
    assert c.verdict("ph", sha("6505551212")) == ("unnormalized", "missing country code")
    assert c.verdict("zp", sha("94025-1234"))[1] == "ZIP code not cut to 5 digits"
    assert c.verdict("ct", sha("menlo park"))[1] == "city kept its spaces/punctuation"
    assert c.verdict("country", sha("united states"))[1] == "country not an ISO code"
    assert c.verdict("db", sha("2/16/1997"))[1] == "date of birth not YYYYMMDD"
    assert c.verdict("em", sha("someone@else.com")) == ("other", "")
    assert c.verdict("fn", sha("jane")) == ("unknown", "")


# --- the checks -----------------------------------------------------------------------

def test_clean_pair_has_no_finding_with_or_without_customer():
    events = [hit(), call()]
    assert codes(*events) == []
    assert codes(*events, customer=CUSTOMER) == []


def test_catalogue_holds_the_pii_codes():
    for code, entry in CODES.items():
        assert CATALOGUE[code] == entry
    assert CATALOGUE["fbp-missing"][0] == "warning"
    assert CATALOGUE["source-url-mismatch"][0] == "warning"
    assert CATALOGUE["client-ip-missing"][0] == "warning"
    assert CATALOGUE["raw-pii-in-user-data"][0] == "error"


def test_raw_email_on_the_server():
    [finding] = found("raw-pii-in-user-data", hit(),
                      call(extra_ud={"em": ["jane.doe@example.com"]}), customer=CUSTOMER)
    assert "server Purchase user_data.em carries j***@example.com" in finding.message
    assert "never hashed" in finding.message and "jane.doe" not in finding.message
    assert [e.source for e in finding.events] == ["server"]
    assert finding.severity == "error" and "sha256" in finding.fix


def test_raw_values_in_the_browser_advanced_matching():
    ud = dict(HASHES, ph="+1 650 555 1212", fn="Jane")
    messages = [f.message for f in found("raw-pii-in-user-data", hit(ud=ud), call())]
    assert any("ud[ph] carries +1 *** *** **12" in m and "phone number" in m
               for m in messages)
    assert any("ud[fn] carries J***" in m for m in messages)


@pytest.mark.parametrize("value, words", [
    (sha("jane.doe@example.com").upper(), "upper-case hex"),
    (hashlib.md5(b"jane.doe@example.com").hexdigest(), "MD5"),
    (42, "a int, not a hex string"),
    ({"nested": "jane@example.com"}, "a dict, not a hex string"),
    ([["jane@example.com"]], "a list, not a hex string"),
    ("", "an empty string"),
    ("정", "in the clear"),
    ("x" * 10_000, "in the clear"),
])
def test_bad_user_data_values_are_findings_not_exceptions(value, words):
    ud = {"fn": value if isinstance(value, list) else [value]}
    [finding] = found("raw-pii-in-user-data", call(user_data=ud))
    assert words in finding.message
    assert len(finding.message) < 300
    assert "jane@example.com" not in finding.message


def test_empty_list_and_hash_of_empty_string():
    assert found("raw-pii-in-user-data", call(user_data={"em": []}))
    [empty] = found("hash-of-empty-value", call(user_data={"em": [sha("")]}))
    assert empty.severity == "warning" and "blank" in empty.message


def test_value_with_a_parameter_builder_appendix_is_a_hash():
    ud = {k: [v + ".ABcDEFGh"] for k, v in HASHES.items()}
    assert codes(call(user_data=ud), customer=CUSTOMER) == []


def test_external_id_may_travel_unhashed_but_not_as_an_email():
    assert codes(hit(ud={"external_id": "cust-42"}),
                 call(user_data={"external_id": ["cust-42"]}), customer=CUSTOMER) == []
    assert "raw-pii-in-user-data" in codes(call(user_data={"external_id": ["jane@example.com"]}))


@pytest.mark.parametrize("make, place", [
    (lambda: hit(dl=f"{THANKS}?email=Jane.Doe%40Example.com"), "page URL (dl)"),
    (lambda: hit(rl=f"{SHOP}/account?phone=%2B1%20650%20555%201212"), "referrer (rl)"),
    (lambda: hit(cd={"email": "Jane.Doe@Example.com", "value": 12.5}), "cd[email]"),
    (lambda: hit(cd={"contents": [{"id": "sku-1", "note": "call +44 20 7946 0958"}]}),
     "cd[contents][0].note"),
    (lambda: call(cd={"value": 1, "buyer": {"phone": "16505551212"}}),
     "custom_data.buyer.phone"),
    (lambda: call(url=f"{THANKS}?email=jane.doe@example.com"), "event_source_url"),
    (lambda: call(extra_ud={"email": "jane.doe@example.com"}), "user_data.email"),
])
def test_pii_in_clear(make, place):
    [finding] = found("pii-in-clear", make())
    assert place in finding.message
    assert "jane.doe@" not in finding.message.lower() and "555 1212" not in finding.message


def test_the_customers_own_digits_count_even_without_phone_formatting():
    event = hit(dl=f"{THANKS}?ref=6505551212")
    assert not found("pii-in-clear", event)
    [finding] = found("pii-in-clear", event, customer=CUSTOMER)
    assert "the customer's phone (+1 *** *** **12)" in finding.message


def test_ids_prices_and_timestamps_are_not_pii():
    cd = {"order_id": "ORD-1000001", "value": 1234567.89, "content_ids": ["1234567890123"],
          "contents": [{"id": "sku-1", "quantity": 1, "item_price": 12.5}],
          "ts": "1730578362123", "version": "2.9.156"}
    assert codes(hit(cd=cd, dl=f"{SHOP}/thanks/ORD-1000001?utm=spring-2025-1234567"),
                 call(cd=cd, url=f"{SHOP}/thanks/ORD-1000001")) == []


@pytest.mark.parametrize("typed, sent, label", [
    ("Jane.Doe@Example.com", "Jane.Doe@Example.com", "not lowercased"),
    ("jane.doe@example.com ", "jane.doe@example.com ", "not trimmed"),
    (" Jane.Doe@Example.com", " Jane.Doe@Example.com", "not trimmed and not lowercased"),
])
def test_unnormalized_email(typed, sent, label):
    sent = sha(sent)
    customer = Customer.build(CUSTOMER, email=typed)
    [finding] = found("unnormalized-hash", hit(), call(extra_ud={"em": [sent]}),
                      customer=customer)
    assert finding.message.endswith(label)
    assert finding.details == ["expected the hash of j***@example.com"]
    # without the customer nobody can tell it from another person's hash
    assert not found("unnormalized-hash", hit(), call(extra_ud={"em": [sent]}))


@pytest.mark.parametrize("sent, label", [
    ("+1 (650) 555-1212", "phone kept its +/spaces"),
    ("+16505551212", "phone kept its +"),
    ("6505551212", "missing country code"),
])
def test_unnormalized_phone(sent, label):
    [finding] = found("unnormalized-hash", call(extra_ud={"ph": [sha(sent)]}),
                      customer=CUSTOMER)
    assert finding.message.endswith(label)
    assert "expected the hash of 1********12" in finding.details[0]


def test_double_hashed():
    [finding] = found("double-hashed", hit(ud=dict(HASHES, em=sha(HASHES["em"]))), call(),
                      customer=CUSTOMER)
    assert "browser Purchase ud[em] is hashed twice" in finding.message


@pytest.mark.parametrize("key, value", [
    ("fbp", sha(FBP)), ("client_ip_address", sha(IP)), ("client_user_agent", sha(UA)),
    ("fbc", sha("fb.1.1.abc")), ("fbp", hashlib.md5(FBP.encode()).hexdigest()),
])
def test_hashed_when_must_not_be(key, value):
    [finding] = found("hashed-when-must-not-be", hit(), call(extra_ud={key: value}))
    assert f"user_data.{key} is a hex digest" in finding.message
    if value == sha(FBP):
        assert finding.details == ["it is the SHA-256 of the browser's _fbp cookie"]
    # one bug, one finding: a hashed fbp is not also reported as a mismatch
    assert not found("fbp-mismatch", hit(), call(extra_ud={key: value}))


def test_hashed_fbc_in_the_browser():
    assert found("hashed-when-must-not-be", hit(fbc=sha("x")))


def test_cross_channel_mismatch_without_and_with_customer():
    browser, server = hit(), call(extra_ud={"em": [sha("Jane.Doe@Example.com")]})
    [blind] = found("cross-channel-hash-mismatch", browser, server)
    assert "different em hashes" in blind.message and "right" not in blind.message
    assert {e.source for e in blind.events} == {"browser", "server"}
    [known] = found("cross-channel-hash-mismatch", browser, server, customer=CUSTOMER)
    assert known.message.endswith("the browser's em is right")
    assert "server: not lowercased" in known.details[0]
    assert "make the server hash" in known.fix


def test_raw_value_is_not_also_a_cross_channel_mismatch():
    got = codes(hit(), call(extra_ud={"em": ["jane.doe@example.com"]}))
    assert got == ["raw-pii-in-user-data"]


def test_fbp_mismatch_and_missing():
    [mismatch] = found("fbp-mismatch", hit(), call(extra_ud={"fbp": "fb.1.1.999"}))
    assert mismatch.details[1].endswith("fb.1.1.999")
    landing = hit("PageView", "pv1", dl=f"{SHOP}/product/sku-1", at=0)
    [missing] = found("fbp-missing", landing, call("PageView", "pv1", url=f"{SHOP}/product/sku-1",
                                                   at=0.1),
                      hit(at=5), call(at=5.1, drop=["fbp"]))
    assert missing.severity == "warning" and "Purchase" in missing.message


def test_fbp_missing_on_the_page_that_created_the_cookie_is_fine():
    # the server handled the first page's request before the pixel set _fbp
    landing = f"{SHOP}/product/sku-1"
    assert codes(hit("PageView", "pv1", dl=landing),
                 call("PageView", "pv1", url=landing, drop=["fbp"])) == []


def test_fbp_from_the_cookie_when_the_hit_has_no_parameter():
    browser = hit(fbp=None, cookie=f"_fbp={FBP}; other=1")
    assert codes(browser, call()) == []
    assert found("fbp-mismatch", browser, call(extra_ud={"fbp": "fb.1.2.3"}))


FBCLID = "IwAR2xYz_AbC-dEf123"
LANDING = f"{SHOP}/?fbclid={FBCLID}"
FBC = f"fb.1.1730578362000.{FBCLID}"


def test_fbc_built_from_the_fbclid_passes():
    events = [hit("PageView", "pv", dl=LANDING, fbc=FBC, at=0),
              call("PageView", "pv", url=LANDING, at=0.1),  # could not know the cookie yet
              hit(fbc=FBC, at=3), call(at=3.1, extra_ud={"fbc": FBC})]
    assert codes(*events) == []
    appendix = FBC + ".ABcDEFGh"  # Meta's parameter builder adds one
    assert codes(hit("PageView", "pv", dl=LANDING, fbc=appendix)) == []


def test_fbc_invalid_cases():
    altered = f"fb.1.1730578362000.{FBCLID.lower()}"
    [case] = found("fbc-invalid", hit("PageView", "pv", dl=LANDING, fbc=altered))
    assert "letter case" in case.message
    [gone] = found("fbc-invalid", hit("PageView", "pv", dl=LANDING, fbc=None))
    assert "no fbc" in gone.message
    events = [hit("PageView", "pv", dl=LANDING, fbc=FBC, at=0), hit(fbc=FBC, at=3)]
    [server_lost] = found("fbc-invalid", *events, call(at=3.1))
    assert "server Purchase carries no fbc" in server_lost.message
    [server_altered] = found("fbc-invalid", *events, call(at=3.1, extra_ud={"fbc": altered}))
    assert "not the browser's _fbc" in server_altered.message
    assert found("fbc-invalid", hit(fbc="garbage"))


def test_user_agent_mismatch():
    [finding] = found("user-agent-mismatch", hit(),
                      call(extra_ud={"client_user_agent": "python-urllib/3.11"}))
    assert finding.details[1].endswith("python-urllib/3.11")
    assert finding.severity == "error"


def test_source_url_mismatch_and_equivalent_urls():
    [finding] = found("source-url-mismatch", hit(), call(url=f"{SHOP}/checkout"))
    assert finding.severity == "warning" and finding.details[1].endswith("/checkout")
    same = hit(dl="HTTPS://shop.example:443/thanks/ORD-1001/#top")
    assert not found("source-url-mismatch", same, call())


def test_client_ip_missing_only_for_website_events():
    [finding] = found("client-ip-missing", call(drop=["client_ip_address"]))
    assert finding.severity == "warning"
    assert not found("client-ip-missing", call(drop=["client_ip_address"],
                                               action_source="physical_store"))


def test_findings_group_events_with_the_same_problem():
    events = [hit("PageView", "pv", dl=f"{THANKS}?email=a@b.co"), hit(dl=f"{THANKS}?email=a@b.co")]
    [finding] = found("pii-in-clear", *events)
    assert finding.message.startswith("browser PageView, Purchase page URL (dl)")
    assert len(finding.events) == 2


def test_ten_kilobyte_values_are_scanned():
    # speed is measured in benchmarks/, never asserted here: this checks it completes
    big = "a" * 10_000 + "@" + "b" * 10_000
    events = [hit(cd={"blob": big}, dl=f"{THANKS}?q={'9' * 10_000}", ud={"em": big}),
              call(cd={"blob": big}, extra_ud={"fn": [big], "email": big})]
    assert check_pii(match_events(events), CUSTOMER)


def test_a_large_capture_is_checked_whole():
    events = []
    for i in range(600):
        events += [hit("PageView", f"pv{i}", ud={}, dl=f"{SHOP}/p/{i}", at=i),
                   call("PageView", f"pv{i}", user_data={}, url=f"{SHOP}/p/{i}", at=i + 0.1)]
    assert check_pii(match_events(events), CUSTOMER) == []
    coverage = match_key_coverage(match_events(events), CUSTOMER)
    assert coverage.name("PageView").browser_events == 600


# --- coverage -------------------------------------------------------------------------

def test_coverage_of_a_clean_pair():
    result = match_events([hit("PageView", "pv", ud={}), call("PageView", "pv", user_data={}),
                           hit(), call()])
    coverage = match_key_coverage(result, CUSTOMER)
    purchase = coverage.name("Purchase")
    keys = ["em", "ph", "fn", "ln", "ct", "zp", "country", "external_id", "fbp"]
    assert purchase.right("browser") == keys + ["client_user_agent"]
    assert purchase.right("server") == keys + ["client_ip_address", "client_user_agent"]
    assert coverage.name("PageView").sent("server") == ["fbp", "client_ip_address",
                                                        "client_user_agent"]
    table = coverage_table(coverage)
    lines = table.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[1].split() == ["event", "em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp",
                                "co", "xid", "fbp", "fbc", "ip", "ua"]
    assert lines[3].split()[:3] == ["Purchase", "++", "++"]
    assert "match-key coverage" in lines[0] and "EMQ" not in table


def test_coverage_without_customer_and_with_wrong_values():
    result = match_events([hit(), call(extra_ud={"em": ["jane.doe@example.com"]})])
    blind = match_key_coverage(result)
    assert blind.name("Purchase").browser["ph"] == "h"
    assert blind.name("Purchase").server["em"] == "x"
    assert "no customer declared" in blind.table()
    other = Customer(email="someone@else.com")
    assert match_key_coverage(result, other).name("Purchase").browser["em"] == "?"


# --- assertion and capture ------------------------------------------------------------

def _capture(*events):
    store = EventStore()
    pixelcheck = Pixelcheck(store)
    store.add(events)
    return pixelcheck


def test_assert_pii_hashed_passes_clean_and_returns_coverage():
    pixelcheck = _capture(hit(), call())
    coverage = assert_pii_hashed(pixelcheck, CUSTOMER, timeout=0)
    assert coverage.customer_known and coverage.name("Purchase").wrong("server") == []


def test_assert_pii_hashed_failure_message():
    pixelcheck = _capture(hit(dl=f"{THANKS}?email=Jane.Doe%40Example.com"),
                          call(extra_ud={"em": [sha("Jane.Doe@Example.com")],
                                         "client_user_agent": "curl/8"}))
    pixelcheck.customer(JourneyCustomer())
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pii_hashed(pixelcheck, timeout=0)
    message = str(failure.value)
    assert message.startswith("assert_pii_hashed(every event) failed: 4 errors")
    assert {f.code for f in failure.value.findings} == {
        "unnormalized-hash", "cross-channel-hash-mismatch", "pii-in-clear",
        "user-agent-mismatch"}
    assert "match-key coverage:" in message
    assert max(len(line) for line in message.splitlines()) <= 80
    for secret in ("Jane.Doe@Example.com", "jane.doe@example.com", "555-1212"):
        assert secret not in message
    # the customer= argument wins over the declared one
    with pytest.raises(PixelcheckAssertionError) as other:
        assert_pii_hashed(pixelcheck, Customer(email="x@y.co"), timeout=0)
    assert "unnormalized-hash" not in [f.code for f in other.value.findings]


def test_assert_pii_hashed_scope_and_severity():
    pixelcheck = _capture(hit("PageView", "pv", dl=f"{SHOP}/a"),
                          call("PageView", "pv", url=f"{SHOP}/b"), hit(), call())
    assert_pii_hashed(pixelcheck, timeout=0)  # a warning does not fail by default
    with pytest.raises(PixelcheckAssertionError, match="source-url-mismatch"):
        assert_pii_hashed(pixelcheck, timeout=0, fail_on="warning")
    assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=0, fail_on="warning")
    with pytest.raises(PixelcheckAssertionError, match="no 'Lead' event was captured"):
        assert_pii_hashed(pixelcheck, event_name="Lead", timeout=0)
    with pytest.raises(PixelcheckAssertionError, match="no event was captured at all"):
        assert_pii_hashed(_capture(), timeout=0)


def test_findings_of_a_capture_include_pii_most_severe_first():
    pixelcheck = _capture(hit(), call(drop=["client_ip_address"],
                                      extra_ud={"em": ["jane.doe@example.com"]}))
    got = [f.code for f in pixelcheck.findings()]
    assert got == ["raw-pii-in-user-data", "client-ip-missing"]
    assert pixelcheck.known_customer is None
    declared = pixelcheck.customer(email="Jane.Doe@Example.com")
    assert pixelcheck.known_customer is declared
    assert "never hashed" in pixelcheck.findings()[0].message


def test_merged_coverage_keeps_some_events():
    from pytest_pixelcheck.pii import MATCH_KEYS, merge_coverage

    def row(state):
        return {"platform": "meta", "event_name": "PageView",
                "browser": {k: state for k in MATCH_KEYS}, "server": {k: "." for k in MATCH_KEYS},
                "browser_events": 1, "server_events": 1}

    merged = merge_coverage([row("~"), row("~")], True)
    assert merged.names[0].browser["em"] == "~"
    assert merge_coverage([row("~"), row("x")], True).names[0].browser["em"] == "x"
    assert merge_coverage([row("+"), row("+")], True).names[0].browser["em"] == "+"
