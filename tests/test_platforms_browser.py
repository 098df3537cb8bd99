"""The example checkout with Meta, TikTok and GA4 on both sides, in a real Chromium,
through the real proxy and sink: clean, and with each platform's faults caught in
that platform's words. Both routes: base URLs at ``pixelcheck_sink.url_for(name)``,
and the real hosts through the proxy."""

from __future__ import annotations

import pytest

from example_site import SiteProcess
from example_site.journey import Customer, checkout, set_faults
from pytest_pixelcheck import PixelcheckAssertionError, assert_deduplicated

pytestmark = pytest.mark.browser

TOKEN = "EAAplatformsTESTtoken0123456789"
PLATFORMS = ("tiktok", "ga4")


@pytest.fixture(scope="session")
def shop_all(pixelcheck_sink):
    """The shop tracking every platform, each API's base URL at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={name: pixelcheck_sink.url_for(name)
                               for name in PLATFORMS}) as site:
        yield site


@pytest.fixture(scope="session")
def shop_all_via_proxy(pixelcheck_harness):
    """The same shop calling every platform's real host through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN,
                     trackers=dict.fromkeys(PLATFORMS),
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def _run(page, context, site, faults=None) -> str:
    set_faults(context, site.url, faults)
    return checkout(page, site.url, customer=Customer())


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_every_platform_deduplicates_on_a_clean_checkout(
        route, pixelcheck, pixelcheck_page, pixelcheck_context, request):
    site = request.getfixturevalue("shop_all" if route == "sink" else "shop_all_via_proxy")
    pixelcheck.customer(Customer(), external_id=None)
    order_id = _run(pixelcheck_page, pixelcheck_context, site)
    # the last hits of the thank-you page: assert_deduplicated settles on what is there
    for platform, name in (("tiktok", "CompletePayment"), ("ga4", "purchase")):
        for source in ("browser", "server"):
            pixelcheck.wait_for(name, source=source, platform=platform)
    result = assert_deduplicated(pixelcheck)
    merged = {(p.browser.platform, p.browser.event_name) for p in result.pairs}
    assert {("meta", "Purchase"), ("tiktok", "CompletePayment"),
            ("ga4", "purchase")} <= merged, pixelcheck.report()
    ga4 = next(p for p in result.pairs if p.browser.platform == "ga4")
    assert ga4.browser.event_id == ga4.server.event_id == order_id
    for pair in result.pairs:
        assert pair.server.raw.channel == route
    # each platform's customer data checked by its own rules, and right
    timing = {"server-event-late", "server-before-browser"}
    assert [f for f in pixelcheck.findings() if f.code not in timing] == [], \
        pixelcheck.report()
    stats = result.stats()
    for platform in ("meta", "tiktok", "ga4"):
        purchase = next(s for (p, _), s in stats.items()
                        if p == platform and s.deduplicated)
        assert purchase.dedup_rate == 1.0


GA4_FAULTS = [
    ("ga4:empty_transaction_id", "empty-transaction-id"),
    ("ga4:transaction_id_mismatch", "near-miss-event-id"),
    ("ga4:server_client_id_new", "client-id-not-from-browser"),
    ("ga4:no_server_purchase", "server-event-missing"),
    ("ga4:wrong_api_secret", "mp-silently-dropped"),
]


@pytest.mark.parametrize(("fault", "code"), GA4_FAULTS, ids=[f for f, _ in GA4_FAULTS])
def test_ga4_faults_are_caught_in_ga4_words(
        fault, code, pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_sink,
        shop_all):
    # GA4 answers a wrong api_secret with 2xx like any other: only a sink that knows
    # the right one can tell
    pixelcheck_sink.expect_token("pixelcheck-ga4-api-secret", platform="ga4")
    _run(pixelcheck_page, pixelcheck_context, shop_all, fault)
    # every fault keeps the page's purchase hit: without waiting for it, "every event"
    # could settle on the earlier pages alone (gtag sends it after the page loaded)
    pixelcheck.wait_for("purchase", source="browser", platform="ga4")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_deduplicated(pixelcheck, platform="ga4", timeout=3)
    codes = [f.code for f in failure.value.findings]
    assert code in codes, str(failure.value)
    assert "fbq" not in str(failure.value)


TIKTOK_FAULTS = [
    ("tiktok:id_suffix", "near-miss-event-id"),
    ("tiktok:missing_event_id", "missing-event-id"),
    ("tiktok:unhashed_email", "server-call-rejected"),
    ("tiktok:phone_no_plus", "unnormalized-hash"),
    ("tiktok:wrong_token", "server-call-rejected"),
    ("tiktok:no_server_purchase", "server-event-missing"),
]


@pytest.mark.parametrize(("fault", "code"), TIKTOK_FAULTS, ids=[f for f, _ in TIKTOK_FAULTS])
def test_tiktok_faults_are_caught_in_tiktok_words(
        fault, code, pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_sink,
        shop_all):
    from example_site.trackers.tiktok import TRACKER

    pixelcheck_sink.expect_token(TRACKER.default_token, platform="tiktok")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, shop_all, fault)
    pixelcheck.wait_for("CompletePayment", source="browser", platform="tiktok")
    found = [f for f in pixelcheck.findings() if f.platform == "tiktok"]
    assert code in [f.code for f in found], pixelcheck.report()
    text = "\n".join(f"{f.message} {f.fix}" for f in found)
    assert "fbq" not in text and "Conversions API" not in text


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_tiktoks_official_sdk_deduplicates_on_both_routes(
        route, pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_harness):
    """tiktok-business-api-sdk 1.0.1, unchanged: base URL through its Configuration.host,
    or the real host through the proxy (its cfg.proxy and CA from the environment)."""
    sink = pixelcheck_harness.sink
    via_proxy = route == "proxy"
    with SiteProcess(sink.url, access_token=TOKEN,
                     trackers={"tiktok": None if via_proxy else sink.url_for("tiktok")},
                     tracker_clients={"tiktok": "tiktok-business-api-sdk"},
                     env=pixelcheck_harness.backend_env() if via_proxy else None) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site)
        server = pixelcheck.wait_for("CompletePayment", source="server", platform="tiktok")
        pixelcheck.wait_for("CompletePayment", source="browser", platform="tiktok")
        result = assert_deduplicated(pixelcheck, "CompletePayment", platform="tiktok")
    assert [p.server for p in result.pairs] == [server]
    assert server.raw.channel == route
    assert server.raw.header("user-agent", "").startswith("Swagger-Codegen")
    assert "/open_api/v1.3/pixel/track/" in server.raw.url
    timing = {"server-event-late", "server-before-browser"}
    assert [f for f in pixelcheck.findings("tiktok") if f.code not in timing] == [], \
        pixelcheck.report()


def test_one_assertion_checks_every_platform_and_groups_its_findings(
        pixelcheck, pixelcheck_page, pixelcheck_context, shop_all):
    _run(pixelcheck_page, pixelcheck_context, shop_all,
         ["tiktok:id_suffix", "ga4:transaction_id_mismatch"])
    for platform, name in (("tiktok", "CompletePayment"), ("ga4", "purchase")):
        pixelcheck.wait_for(name, source="browser", platform=platform)
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_deduplicated(pixelcheck, timeout=3)
    message = str(failure.value)
    assert "\n  TikTok:\n" in message and "\n  Google Analytics 4:\n" in message, message
    tiktok = message.index("\n  TikTok:\n")
    ga4 = message.index("\n  Google Analytics 4:\n")
    first, second = sorted((tiktok, ga4))
    assert "near-miss-event-id" in message[first:second]
    assert "near-miss-event-id" in message[second:]


def test_a_checkout_with_all_seven_platforms_deduplicates(
        pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_sink):
    from example_site.trackers import load_trackers

    others = sorted(load_trackers())
    assert set(others) == {"tiktok", "ga4", "snapchat", "pinterest", "reddit", "linkedin"}
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={name: pixelcheck_sink.url_for(name) for name in others}) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site)
        # every tag's last hit and server twin in hand: merged pairs on every platform
        everyone = {"meta", *others}
        assert pixelcheck.wait_until(
            lambda evs: everyone <= {e.platform for e in evs if e.source == "server"}
            and everyone <= {e.platform for e in evs if e.source == "browser"}, 10)
        result = assert_deduplicated(pixelcheck)
    assert everyone <= {p.browser.platform for p in result.pairs}, pixelcheck.report()
    timing = {"server-event-late", "server-before-browser"}
    assert [f for f in pixelcheck.findings() if f.code not in timing] == [], \
        pixelcheck.report()
