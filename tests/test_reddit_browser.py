"""The example checkout with Meta and Reddit on both sides, in a real Chromium, through
the real proxy and sink: clean on both routes (the Conversions API base URL at the
sink, and the real ads-api.reddit.com through the proxy), and each of Reddit's faults
caught in Reddit's own words."""

from __future__ import annotations

from typing import Any

import pytest

from example_site import SiteProcess
from example_site.journey import Customer, checkout, set_faults
from example_site.trackers.reddit import TRACKER
from pytest_pixelcheck import assert_deduplicated
from pytest_pixelcheck.platforms.reddit.pii_rules import sha256_hex

pytestmark = pytest.mark.browser

TOKEN = "EAAredditTESTtoken0123456789"
#: the checkout's pages: product, cart, checkout, thank-you; each fires one PageVisit
PAGES = 4
TIMING = {"server-event-late", "server-before-browser"}


@pytest.fixture(scope="module")
def shop_reddit(pixelcheck_sink: Any) -> Any:
    """The shop tracking Meta and Reddit, Reddit's API base URL at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={"reddit": pixelcheck_sink.url_for("reddit")}) as site:
        yield site


@pytest.fixture(scope="module")
def shop_reddit_via_proxy(pixelcheck_harness: Any) -> Any:
    """The same shop calling the real ads-api.reddit.com (and Graph) through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN,
                     trackers={"reddit": None},
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def _run(page: Any, context: Any, site: Any, faults: str | None = None) -> str:
    set_faults(context, site.url, faults)
    return checkout(page, site.url, customer=Customer())


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_a_clean_checkout_deduplicates_on_reddit_and_meta(
        route: str, pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
        request: pytest.FixtureRequest) -> None:
    site = request.getfixturevalue("shop_reddit" if route == "sink" else "shop_reddit_via_proxy")
    pixelcheck.customer(Customer(), external_id=None)
    order_id = _run(pixelcheck_page, pixelcheck_context, site)
    # the thank-you page's last hits: its PageVisit and Purchase on both sides
    for source in ("browser", "server"):
        pixelcheck.wait_for("Purchase", source=source, platform="reddit")
        pixelcheck.wait_for("PageVisit", source=source, platform="reddit", count=PAGES)
        pixelcheck.wait_for("Purchase", source=source, platform="meta")
    result = assert_deduplicated(pixelcheck)
    merged = {(p.browser.platform, p.browser.event_name) for p in result.pairs}
    assert {("meta", "Purchase"), ("reddit", "Purchase"), ("reddit", "PageVisit"),
            ("reddit", "ViewContent"), ("reddit", "AddToCart"),
            ("reddit", "InitiateCheckout")} <= merged, pixelcheck.report()
    purchase = next(p for p in result.pairs
                    if p.browser.platform == "reddit" and p.browser.event_name == "Purchase")
    # the pixel sends the SHA-256 of the page's id, the shop's backend the id itself
    assert purchase.browser.event_id == purchase.server.event_id == \
        sha256_hex(f"purchase.{order_id}")
    assert purchase.server.extra["conversion_id"] == f"purchase.{order_id}"
    assert purchase.browser.extra["conversion_id_form"] == "hashed"
    assert purchase.server.extra["api"] == "conversions-v3"
    assert purchase.server.raw.channel == route
    assert purchase.server.raw.header("authorization") == f"Bearer {TRACKER.default_token}"
    # the visitor's _rdt_uuid reached the backend and went back to Reddit unchanged
    assert purchase.server.extra["uuid"].endswith("." + purchase.browser.extra["uuid"])
    custom = next(p for p in result.pairs if p.browser.platform == "reddit"
                  and p.browser.event_name == "InitiateCheckout")
    assert custom.browser.extra["tracking_type"] == custom.server.extra["tracking_type"] == \
        "Custom"
    assert [f for f in pixelcheck.findings() if f.code not in TIMING] == [], \
        pixelcheck.report()
    stats = result.stats()
    assert stats[("reddit", "Purchase")].dedup_rate == 1.0
    assert stats[("reddit", "PageVisit")].deduplicated == PAGES


def test_the_v2_client_deduplicates_too(pixelcheck: Any, pixelcheck_page: Any,
                                        pixelcheck_context: Any, pixelcheck_sink: Any) -> None:
    """The shop's json-v2.0 client: the older shape, Reddit's CamelCase types."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={"reddit": pixelcheck_sink.url_for("reddit")},
                     tracker_clients={"reddit": "json-v2.0"}) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site)
        server = pixelcheck.wait_for("Purchase", source="server", platform="reddit")
        pixelcheck.wait_for("Purchase", source="browser", platform="reddit")
        result = assert_deduplicated(pixelcheck, "Purchase", platform="reddit")
    assert [p.server for p in result.pairs] == [server]
    assert server.extra["api"] == "conversions-v2.0"
    assert "/api/v2.0/conversions/events/" in server.raw.url
    assert [f for f in pixelcheck.findings("reddit") if f.code not in TIMING] == [], \
        pixelcheck.report()


REDDIT_FAULTS = [
    ("id_mismatch", "near-miss-event-id"),
    ("missing_id", "missing-event-id"),
    ("unhashed_pii", "raw-pii-in-user-data"),
    ("stale_time", "server-call-rejected"),
    ("bad_auth", "server-call-rejected"),
    ("no_server_purchase", "server-event-missing"),
    ("conversion_id_hashed_twice", "reddit-conversion-id-hashed-twice"),
    ("purchase_as_custom", "event-name-mismatch"),
    ("uuid_mismatch", "reddit-uuid-mismatch"),
    ("missing_action_source", "server-call-rejected"),
]
#: what Reddit's own words in each finding must include
WORDS = {
    "id_mismatch": "'-server'",
    "stale_time": "168h0m0s",
    "bad_auth": "UNAUTHORIZED",
    "missing_action_source": "action_source",
    "missing_id": "conversion_id",
    "unhashed_pii": "SHA-256",
}


@pytest.mark.parametrize(("fault", "code"), REDDIT_FAULTS, ids=[f for f, _ in REDDIT_FAULTS])
def test_reddit_faults_are_caught_in_reddits_words(
        fault: str, code: str, pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
        pixelcheck_sink: Any, shop_reddit: Any) -> None:
    pixelcheck_sink.expect_token(TRACKER.default_token, platform="reddit")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, shop_reddit, f"reddit:{fault}")
    pixelcheck.wait_for("Purchase", source="browser", platform="reddit")
    if fault != "no_server_purchase":
        pixelcheck.wait_for("Purchase", source="server", platform="reddit")
    found = [f for f in pixelcheck.findings() if f.platform == "reddit"]
    assert code in [f.code for f in found], pixelcheck.report()
    text = "\n".join(f"{f.message} {f.fix} {' '.join(f.details)}" for f in found)
    assert "fbq" not in text and "graph.facebook" not in text and "Events Manager" not in text
    mine = [f for f in found if f.code == code]
    words = " ".join(f"{f.message} {f.fix} {' '.join(f.details)}" for f in mine)
    assert "rdt(" in words or "Reddit" in words, words
    if fault in WORDS:
        assert WORDS[fault] in words, words


def test_bad_auth_through_the_proxy_is_caught_too(
        pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any, pixelcheck_sink: Any,
        shop_reddit_via_proxy: Any) -> None:
    pixelcheck_sink.expect_token(TRACKER.default_token, platform="reddit")
    _run(pixelcheck_page, pixelcheck_context, shop_reddit_via_proxy, "reddit:bad_auth")
    server = pixelcheck.wait_for("Purchase", source="server", platform="reddit")
    assert server.raw.channel == "proxy" and server.raw.response_status == 401
    found = [f for f in pixelcheck.findings("reddit") if f.code == "server-call-rejected"]
    assert found and "UNAUTHORIZED" in found[0].message, pixelcheck.report()
