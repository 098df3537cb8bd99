"""PII hashing and identity parity in a real browser: every PII fault of the example
shop yields its finding, and the clean checkout passes ``assert_pii_hashed``.

The journey's default customer is messy on purpose (capitals, "+1 (650) ..."):
un-normalized hashes only differ from right ones for messy input.
"""

from __future__ import annotations

import pytest

from example_site.journey import Customer as JourneyCustomer
from example_site.tracking import Customer as ShopCustomer
from pytest_pixelcheck import PixelcheckAssertionError, assert_pii_hashed
from pytest_pixelcheck.findings import CATALOGUE
from pytest_pixelcheck.platforms.meta.pii_checks import REPORTED_CODES as PII_CODES

pytestmark = pytest.mark.browser

# fault -> (the finding code it must produce, words its message must contain)
PII_FAULTS = {
    "raw_email": ("raw-pii-in-user-data", "user_data.em carries j***@example.com"),
    "unnormalized_email": ("unnormalized-hash", "not lowercased"),
    "phone_plus": ("unnormalized-hash", "phone kept its +/spaces"),
    "phone_no_country": ("unnormalized-hash", "missing country code"),
    "double_hash": ("double-hashed", "hashed twice"),
    "hashed_fbp": ("hashed-when-must-not-be", "user_data.fbp"),
    "email_in_url": ("pii-in-clear", "J***@Example.com"),
    "browser_raw_email_cd": ("pii-in-clear", "cd[email]"),
    "browser_unnormalized_am": ("unnormalized-hash", "Purchase ud[em] is the SHA-256"),
    "no_fbp": ("fbp-missing", "carries no fbp"),
    "wrong_user_agent": ("user-agent-mismatch", "client_user_agent"),
    "wrong_source_url": ("source-url-mismatch", "event_source_url"),
}


def _declare(pixelcheck):
    """The journey's customer, plus the external id the shop derives from the email."""
    typed = JourneyCustomer()
    return pixelcheck.customer(typed, external_id=ShopCustomer(typed.email).customer_id)


def _found(pixelcheck, code):
    return [f for f in pixelcheck.findings() if f.code == code]


def _no_pii_in(text):
    typed = JourneyCustomer()
    for secret in (typed.email, typed.email.lower(), typed.phone, "6505551212",
                   "555-1212", typed.city):
        assert secret not in text, f"{secret!r} shown unmasked"


@pytest.mark.parametrize("fault", list(PII_FAULTS))
def test_pii_fault_yields_its_finding(pixelcheck, run_checkout, fault):
    code, words = PII_FAULTS[fault]
    run_checkout(faults=fault)
    _declare(pixelcheck)
    pixelcheck.wait_until(lambda events: bool(_found(pixelcheck, code)), 5)
    found = _found(pixelcheck, code)
    assert found, f"{fault}: no {code} finding.\n{pixelcheck.report()}"
    assert any(words in f.message for f in found), [f.message for f in found]
    assert all(f.fix and f.message for f in found)
    assert any(any(e.event_name == "Purchase" for e in f.events) for f in found)

    if CATALOGUE[code][0] == "error":
        with pytest.raises(PixelcheckAssertionError) as failure:
            assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=1)
        assert code in [f.code for f in failure.value.findings]
    else:
        assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=1)
        with pytest.raises(PixelcheckAssertionError) as failure:
            assert_pii_hashed(pixelcheck, event_name="Purchase", timeout=1,
                              fail_on="warning")
    message = str(failure.value)
    assert "match-key coverage" in message
    assert max(len(line) for line in message.splitlines()) <= 80, message
    _no_pii_in(message)
    _no_pii_in(pixelcheck.report())


def test_cross_channel_mismatch_names_the_right_side(pixelcheck, run_checkout):
    run_checkout(faults="unnormalized_email")
    pixelcheck.wait_for("Purchase", source="server")
    pixelcheck.wait_for("Purchase", source="browser")
    # without a customer: the two sides disagree, nobody can say who is right
    blind = _found(pixelcheck, "cross-channel-hash-mismatch")
    assert blind and "right" not in blind[0].message
    assert not _found(pixelcheck, "unnormalized-hash")

    _declare(pixelcheck)
    [mismatch] = _found(pixelcheck, "cross-channel-hash-mismatch")
    assert "the browser's em is right" in mismatch.message
    assert {e.source for e in mismatch.events} == {"browser", "server"}
    assert any("server: not lowercased" in d for d in mismatch.details)


def test_clean_checkout_passes_and_covers_every_key(pixelcheck, run_checkout):
    run_checkout()
    typed = JourneyCustomer()
    coverage = assert_pii_hashed(
        pixelcheck, customer={"email": typed.email, "phone": typed.phone,
                              "first_name": typed.first_name, "last_name": typed.last_name,
                              "city": typed.city, "zip": typed.zip, "country": typed.country,
                              "external_id": ShopCustomer(typed.email).customer_id})
    assert not [f for f in pixelcheck.findings() if f.code in PII_CODES]
    purchase = coverage.name("Purchase")
    assert purchase is not None
    keys = ["em", "ph", "fn", "ln", "ct", "zp", "country", "external_id", "fbp",
            "client_user_agent"]
    assert set(keys) <= set(purchase.right("browser")), coverage.table()
    assert set(keys + ["client_ip_address"]) <= set(purchase.right("server")), coverage.table()
    assert purchase.wrong("browser") == purchase.wrong("server") == []
    table = coverage.table()
    assert max(len(line) for line in table.splitlines()) <= 80
    assert any(line.split()[:3] == ["Purchase", "++", "++"] for line in table.splitlines())


def test_shop_phone_rule_agrees_with_meta_for_the_default_phone(pixelcheck, run_checkout):
    # the shop keeps digits only and adds no country code: right here, because the
    # typed number carries its +1
    run_checkout()
    server = pixelcheck.wait_for("Purchase", source="server")
    customer = _declare(pixelcheck)
    assert server.user_data["ph"] == [customer.hashed("ph")]
    assert customer.hashed("ph") == (
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")  # Meta's example


def test_fbclid_landing_sets_fbc_on_both_sides(pixelcheck, run_checkout, pixelcheck_page,
                                                shop):
    fbclid = "IwAR2xYz_AbC-dEf123"  # mixed case: it must arrive unaltered
    pixelcheck_page.goto(f"{shop.url}/?fbclid={fbclid}")
    run_checkout()
    _declare(pixelcheck)
    coverage = assert_pii_hashed(pixelcheck, timeout=5)
    server = pixelcheck.wait_for("Purchase", source="server")
    assert server.user_data["fbc"].endswith("." + fbclid)
    assert coverage.name("Purchase").right("server")  # type: ignore[union-attr]
    assert "fbc" in coverage.name("Purchase").right("server")  # type: ignore[union-attr]
    assert not [f for f in pixelcheck.findings() if f.code in PII_CODES]
