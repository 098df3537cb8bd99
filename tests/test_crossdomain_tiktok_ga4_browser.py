"""The payment-provider round trip of test_crossdomain_browser with the shop tracking
TikTok and GA4: ttclid and the _ttp cookie reach TikTok's Events API copy
(user.ttclid, user.ttp), and the _ga client id and session (the session the gclid
landed in: GA4 attributes a purchase to the ad click through them; the Measurement
Protocol has no gclid field) reach GA4's Measurement Protocol purchase. A return to
another host name loses them, and the click-id-lost finding names that hop, in each
platform's words."""

from __future__ import annotations

import pytest
from test_crossdomain_browser import _pay_round_trip as pay_round_trip

from example_site import SiteProcess

pytestmark = pytest.mark.browser

TOKEN = "EAAcrossdomainTESTtoken0123456789"
TTCLID = "E.C.P.crossdomainClick01"
GCLID = "Cj0KCQcrossdomainGclid01"


@pytest.fixture(scope="session")
def psp_shop_tt_ga4(pixelcheck_sink):
    """The payment-provider shop tracking TikTok and GA4 (and Meta, always on)."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={name: pixelcheck_sink.url_for(name)
                               for name in ("tiktok", "ga4")},
                     extra_args=["--payment-provider"]) as site:
        yield site


def _pay_round_trip(pixelcheck, page, shop, faults=None):
    order_id = pay_round_trip(pixelcheck, page, shop, faults,
                              landing_query=f"ttclid={TTCLID}&gclid={GCLID}")
    for platform, name in (("tiktok", "CompletePayment"), ("ga4", "purchase")):
        for source in ("browser", "server"):
            pixelcheck.wait_for(name, source=source, platform=platform)
    return order_id


def _copies(pixelcheck, platform, name):
    browser = next(e for e in pixelcheck.browser_events
                   if e.platform == platform and e.event_name == name)
    server = next(e for e in pixelcheck.server_events
                  if e.platform == platform and e.event_name == name)
    return browser, server


def _lost(pixelcheck, platform):
    return [f for f in pixelcheck.findings()
            if f.code == "click-id-lost" and f.platform == platform]


def test_ttclid_ttp_and_the_ga_client_survive_the_round_trip(
        pixelcheck, pixelcheck_page, psp_shop_tt_ga4):
    order_id = _pay_round_trip(pixelcheck, pixelcheck_page, psp_shop_tt_ga4)
    tt_landing = next(e for e in pixelcheck.browser_events if e.platform == "tiktok")
    assert tt_landing.extra["ttclid"] == TTCLID
    browser, server = _copies(pixelcheck, "tiktok", "CompletePayment")
    for copy in (browser, server):
        assert copy.extra["ttclid"] == TTCLID
        assert copy.extra["ttp"] == tt_landing.extra["ttp"]
    ga_landing = next(e for e in pixelcheck.browser_events if e.platform == "ga4")
    assert ga_landing.extra["gclid"] == GCLID  # read from the landing page's dl
    browser, server = _copies(pixelcheck, "ga4", "purchase")
    assert browser.event_id == server.event_id == order_id
    for copy in (browser, server):
        assert copy.extra["client_id"] == ga_landing.extra["client_id"]
        assert str(copy.extra["session_id"]) == ga_landing.extra["session_id"]
    assert [f for f in pixelcheck.findings() if f.code == "click-id-lost"] == []


def test_a_return_to_another_host_loses_them_and_names_the_hop(
        pixelcheck, pixelcheck_page, psp_shop_tt_ga4):
    _pay_round_trip(pixelcheck, pixelcheck_page, psp_shop_tt_ga4, "psp_return_other_host")
    shop_port = psp_shop_tt_ga4.url.rsplit(":", 1)[1]
    hop = f"/pay -> localhost:{shop_port}/"
    for platform, browser_key, server_key, words in (
            ("tiktok", "tiktok ttclid was lost", "carries no ttclid", "user.ttclid"),
            ("ga4", "ga4 _ga (client_id) was replaced", "carries another _ga (client_id)",
             "client_id")):
        lost = _lost(pixelcheck, platform)
        messages = " | ".join(f.message for f in lost)
        on_page = next((f for f in lost if f.message.startswith(browser_key)), None)
        assert on_page is not None, messages
        assert "on the hop localhost:" in on_page.message and hop in on_page.message
        assert f"the host changed from 127.0.0.1:{shop_port} to localhost:{shop_port}" in \
            on_page.message
        assert "send the shopper back to the host they came on" in on_page.fix
        assert words in on_page.fix, on_page.fix  # in the platform's words
        assert any(f.message.startswith("server ") and server_key in f.message
                   for f in lost), messages
    assert any(f.message.startswith("tiktok _ttp was replaced")
               for f in _lost(pixelcheck, "tiktok"))
