"""Consent, in a real Chromium through the real proxy and sink, against the example
shop's own consent banner (a minimal CMP): a visitor who denies, one who accepts
mid-journey, and the shop faults that break each."""

from __future__ import annotations

import pytest

from example_site.journey import set_faults
from pytest_pixelcheck import Pixelcheck, assert_deduplicated

pytestmark = pytest.mark.browser


def _codes(pixelcheck):
    return [f.code for f in pixelcheck.findings()]


def test_a_visitor_who_denies_gets_no_tag_and_limited_server_events(
        pixelcheck, run_checkout, cmp_shop):
    pixelcheck.consent(granted=False)
    order_id = run_checkout(site=cmp_shop)
    purchase = pixelcheck.wait_for("Purchase", source="server")
    assert purchase.event_id == f"purchase.{order_id}"
    assert purchase.extra["data_processing_options"] == ["LDU"]
    assert pixelcheck.browser_events == []
    assert not [t for t in pixelcheck.traffic() if "fbevents.js" in t.url]
    assert _codes(pixelcheck) == []


def test_server_events_without_the_limited_use_flag_after_a_denial(
        pixelcheck, run_checkout, cmp_shop):
    pixelcheck.consent(granted=False)
    run_checkout(site=cmp_shop, faults="server_ignores_consent")
    pixelcheck.wait_for("Purchase", source="server")
    [finding] = [f for f in pixelcheck.findings() if f.code == "server-event-without-consent"]
    assert finding.platform == "meta"
    assert "after the visitor denied consent" in finding.message
    assert "Purchase" in finding.message
    assert "data_processing_options" in finding.fix and "LDU" in finding.fix
    assert set(_codes(pixelcheck)) == {"server-event-without-consent"}


def test_tags_that_ignore_a_denial_are_tracked_before_consent(
        pixelcheck, run_checkout, cmp_shop):
    pixelcheck.consent(granted=False)
    run_checkout(site=cmp_shop, faults="pixel_before_consent")
    pixelcheck.wait_for("Purchase", source="browser")
    [finding] = [f for f in pixelcheck.findings() if f.code == "tracked-before-consent"]
    assert finding.platform == "meta"
    assert "loaded its library https://connect.facebook.net/en_US/fbevents.js" in \
        finding.message
    assert "Purchase" in finding.message and "after the visitor denied consent" in \
        finding.message


@pytest.mark.parametrize("fault", [None, "no_fire_after_consent"])
def test_consent_granted_mid_journey(pixelcheck, pixelcheck_page, pixelcheck_context,
                                     cmp_shop, fault):
    set_faults(pixelcheck_context, cmp_shop.url, fault)
    pixelcheck_page.goto(f"{cmp_shop.url}/product/sku-1")
    assert pixelcheck_page.locator("#consent-banner").is_visible()
    pixelcheck.wait_for("ViewContent", source="server")
    assert pixelcheck.browser_events == []  # held until the visitor answers
    pixelcheck.consent(granted=True)  # clicks Accept on the banner
    assert pixelcheck_page.locator("#consent-banner").count() == 0
    if fault is None:
        pixelcheck.wait_for("ViewContent", source="browser")
        assert_deduplicated(pixelcheck, ["PageView", "ViewContent"])
        assert _codes(pixelcheck) == []
    else:
        pixelcheck_page.wait_for_timeout(1000)
        found = [f for f in pixelcheck.findings() if f.code == "not-fired-after-consent"]
        assert sorted(f.event_name for f in found) == ["PageView", "ViewContent"]
        assert "/product/sku-1" in found[0].message
        assert "never fired once it was given" in found[0].message
        assert set(_codes(pixelcheck)) == {"not-fired-after-consent"}


def test_consent_without_a_wired_cmp_says_how_to_wire_it(pixelcheck):
    bare = Pixelcheck(pixelcheck.store)
    with pytest.raises(RuntimeError, match="pixelcheck_consent_hook fixture"):
        bare.consent(granted=False)


@pytest.mark.parametrize(("platform", "extra", "limited"), [
    ("meta", {"data_processing_options": ["LDU"]}, True),
    ("meta", {"data_processing_options": []}, False),
    ("ga4", {"consent": {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}}, True),
    ("ga4", {"consent": {"ad_user_data": "GRANTED"}}, False),
    ("tiktok", {}, False),
    ("reddit", {"user_data": {"data_processing_options": {"modes": ["LDU"]}}}, True),
    ("reddit", {"user_data": {"data_processing_options": {"modes": []}}}, False),
    ("pinterest", {"custom_data": {"opt_out_type": "LDP"}}, True),
    ("pinterest", {"opt_out": True}, True),
    ("pinterest", {"opt_out": False}, False),
    ("snapchat", {}, False),
    ("linkedin", {}, False),
])
def test_each_platforms_limited_use_flag(platform, extra, limited):
    from pytest_pixelcheck import Event, platforms

    fields = {k: extra.pop(k) for k in ("user_data", "custom_data") if k in extra}
    event = Event(platform, "server", "1", "Purchase", "x", 1.0, 1.0, extra=extra, **fields)
    assert platforms.get(platform).limited_use(event) is limited


@pytest.fixture(scope="session")
def cmp_shop_ga4(pixelcheck_sink):
    """The consent-banner shop tracking GA4 too (Measurement Protocol at the sink)."""
    from conftest import SHOP_TOKEN

    from example_site import SiteProcess

    with SiteProcess(pixelcheck_sink.url, access_token=SHOP_TOKEN,
                     trackers={"ga4": pixelcheck_sink.url_for("ga4")},
                     extra_args=["--consent-banner"]) as site:
        yield site


@pytest.mark.parametrize("fault", [None, "server_ignores_consent"])
def test_ga4_purchase_after_a_denial_needs_consent_mode(
        pixelcheck, run_checkout, cmp_shop_ga4, fault):
    pixelcheck.consent(granted=False)
    order_id = run_checkout(site=cmp_shop_ga4, faults=fault)
    purchase = pixelcheck.wait_for("purchase", source="server", platform="ga4")
    assert purchase.event_id == order_id
    assert not [e for e in pixelcheck.browser_events if e.platform == "ga4"]
    ga4 = [f for f in pixelcheck.findings() if f.platform == "ga4"]
    if fault is None:
        assert purchase.extra["consent"] == {"ad_user_data": "DENIED",
                                             "ad_personalization": "DENIED"}
        assert ga4 == []
    else:
        assert purchase.extra["consent"] is None
        [finding] = ga4
        assert finding.code == "server-event-without-consent"
        assert "purchase" in finding.message
        assert "after the visitor denied consent" in finding.message
        assert "ad_user_data" in finding.fix and "DENIED" in finding.fix
