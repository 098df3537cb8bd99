"""The journey findings' fixes in each platform's own words: the tag call, library and
API field to change, never the core's neutral text."""

from __future__ import annotations

import pytest

from pytest_pixelcheck import Event, platforms
from pytest_pixelcheck.diagnosis import in_platform_words
from pytest_pixelcheck.findings import Finding

CODES = ("counted-more-than-once", "side-not-isolated", "blocked-not-covered",
         "tracked-before-consent", "server-event-without-consent", "not-fired-after-consent",
         "click-id-lost", "route-without-pageview")

#: per platform, per code: words the fix must use (its tag call, library, API field)
WORDS = {
    "meta": {
        "counted-more-than-once": ["fbq('track'", "eventID"],
        "side-not-isolated": ["block_browser('meta')", "fbevents.js"],
        "blocked-not-covered": ["Conversions API", "eventID"],
        "tracked-before-consent": ["fbq('consent', 'revoke')"],
        "server-event-without-consent": ["data_processing_options: ['LDU']"],
        "not-fired-after-consent": ["fbq('consent', 'grant')"],
        "click-id-lost": ["_fbc", "_fbp", "user_data.fbc"],
        "route-without-pageview": ["fbq('track', 'PageView')"],
    },
    "tiktok": {
        "counted-more-than-once": ["ttq.track('CompletePayment'", "event_id"],
        "side-not-isolated": ["block_browser('tiktok')", "events.js"],
        "blocked-not-covered": ["/open_api/v1.3/event/track/", "event_id"],
        "tracked-before-consent": ["ttq.holdConsent()"],
        "server-event-without-consent": ["Events API"],
        "not-fired-after-consent": ["ttq.grantConsent()", "ttq.track('CompletePayment'"],
        "click-id-lost": ["ttclid", "_ttp", "user.ttp"],
        "route-without-pageview": ["ttq.page()"],
    },
    "ga4": {
        "counted-more-than-once": ["transaction_id"],
        "side-not-isolated": ["block_browser('ga4')", "gtag/js"],
        "blocked-not-covered": ["/mp/collect", "transaction_id", "client_id"],
        "tracked-before-consent": ["gtag('consent', 'default'"],
        "server-event-without-consent": ["ad_user_data: 'DENIED'"],
        "not-fired-after-consent": ["gtag('consent', 'update'", "gtag('event', 'purchase'"],
        "click-id-lost": ["_ga", "client_id", "session_id", "gclid"],
        "route-without-pageview": ["gtag('event', 'page_view'"],
    },
    "snapchat": {
        "counted-more-than-once": ["snaptr('track'", "client_dedup_id"],
        "side-not-isolated": ["block_browser('snapchat')", "scevent.min.js"],
        "blocked-not-covered": ["Snap Conversions API", "client_dedup_id"],
        "tracked-before-consent": ["sc-static.net/scevent.min.js", "snaptr('init'"],
        "server-event-without-consent": ["Snap Conversions API"],
        "not-fired-after-consent": ["snaptr('track', 'PURCHASE'"],
        "click-id-lost": ["ScCid", "_scid", "user_data.sc_click_id", "user_data.sc_cookie1"],
        "route-without-pageview": ["snaptr('track', 'PAGE_VIEW')"],
    },
    "pinterest": {
        "counted-more-than-once": ["pintrk('track'", "event_id"],
        "side-not-isolated": ["block_browser('pinterest')", "s.pinimg.com/ct/core.js"],
        "blocked-not-covered": ["/v5/ad_accounts/", "data[].event_id"],
        "tracked-before-consent": ["s.pinimg.com/ct/core.js", "pintrk('load'"],
        "server-event-without-consent": ["opt_out_type: 'LDP'", "opt_out: true"],
        "not-fired-after-consent": ["pintrk('track', 'checkout'"],
        "click-id-lost": ["epik", "_epik", "user_data.click_id"],
        "route-without-pageview": ["pintrk('page')", "page_visit"],
    },
    "reddit": {
        "counted-more-than-once": ["rdt('track'", "conversionId"],
        "side-not-isolated": ["block_browser('reddit')", "redditstatic.com/ads/pixel.js"],
        "blocked-not-covered": ["conversion_events", "metadata.conversion_id"],
        "tracked-before-consent": ["redditstatic.com/ads/pixel.js", "rdt('init'"],
        "server-event-without-consent": ["user.data_processing_options", "LDU"],
        "not-fired-after-consent": ["rdt('track', 'Purchase'"],
        "click-id-lost": ["rdt_cid", "_rdt_uuid", "click_id", "user.uuid"],
        "route-without-pageview": ["rdt('track', 'PageVisit')"],
    },
    "linkedin": {
        "counted-more-than-once": ["lintrk('track'", "eventId"],
        "side-not-isolated": ["block_browser('linkedin')", "insight.min.js"],
        "blocked-not-covered": ["conversionEvents", "eventId"],
        "tracked-before-consent": ["insight.min.js", "_linkedin_data_partner_id"],
        "server-event-without-consent": ["conversionEvents"],
        "not-fired-after-consent": ["lintrk('track'"],
        "click-id-lost": ["li_fat_id", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID"],
        "route-without-pageview": ["Insight Tag", "lintrk('track'"],
    },
}

#: a browser event each platform's texts name (its own spelling of the purchase)
PURCHASES = {"meta": "Purchase", "tiktok": "CompletePayment", "ga4": "purchase",
             "snapchat": "PURCHASE", "pinterest": "checkout", "reddit": "Purchase",
             "linkedin": "Purchase"}


def _neutral(code: str, event: Event) -> str:
    finding = Finding(code, "m", "NEUTRAL", [event], [], event.platform, event.event_name)
    return in_platform_words([finding])[0].fix


@pytest.mark.parametrize("name", sorted(WORDS))
@pytest.mark.parametrize("code", CODES)
def test_each_journey_fix_speaks_the_platforms_words(name, code):
    event = Event(name, "browser", "1", PURCHASES[name], "x", 1.0, 1.0)
    if code == "route-without-pageview":
        event = None  # the finding has no event: the route fired none
    text = platforms.get(name).fix(code, event)
    assert text, f"{name} has no words for {code}"
    for word in WORDS[name][code]:
        assert word in text, (name, code, text)


@pytest.mark.parametrize("name", sorted(WORDS))
def test_side_not_isolated_names_the_side_that_leaked(name):
    server = Event(name, "server", "1", PURCHASES[name], "x", 1.0, 1.0)
    text = platforms.get(name).fix("side-not-isolated", server)
    assert f"pixelcheck_sink.refuse('{name}')" in text and "block_browser" not in text


def test_a_finding_gets_the_platforms_words_through_the_core():
    event = Event("reddit", "server", "1", "Purchase", "x", 1.0, 1.0)
    fix = _neutral("server-event-without-consent", event)
    assert fix != "NEUTRAL" and "user.data_processing_options" in fix
