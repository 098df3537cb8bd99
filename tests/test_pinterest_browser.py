"""The example checkout with Meta and Pinterest on both sides, in a real Chromium, through
the real proxy and sink: clean on both routes (base URL at ``pixelcheck_sink.url_for``,
and the real api.pinterest.com through the proxy), each Pinterest fault caught in
Pinterest's own words, the _epik click id carried over, Pinterest's own Python SDK on
both routes, and the core.js stand-in's hits as Chromium puts them on the wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from example_site import SiteProcess
from example_site.journey import Customer, checkout, set_faults
from example_site.trackers.pinterest import BASE_CODE, TRACKER
from pytest_pixelcheck import assert_deduplicated
from pytest_pixelcheck.platforms.pinterest import pii_rules

pytestmark = [pytest.mark.browser,
              # the official SDK's generated client calls urllib3 1.26 APIs it deprecates
              pytest.mark.filterwarnings("ignore::DeprecationWarning:openapi_generated.*")]

TOKEN = "EAApinterestTESTtoken0123456789"
EPIK = "dj0yJnU9cGluQ2xpY2s0Mg"
TIMING = {"server-event-late", "server-before-browser"}


@pytest.fixture(scope="module")
def pin_shop(pixelcheck_sink: Any) -> Iterator[SiteProcess]:
    """The shop tracking Meta and Pinterest, the Conversions API's base URL at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={"pinterest": pixelcheck_sink.url_for("pinterest")}) as site:
        yield site


@pytest.fixture(scope="module")
def pin_shop_via_proxy(pixelcheck_harness: Any) -> Iterator[SiteProcess]:
    """The same shop calling the real api.pinterest.com (and Graph) through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN,
                     trackers={"pinterest": None},
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def _run(page: Any, context: Any, site: SiteProcess, faults: str | None = None,
         epik: str | None = None) -> str:
    set_faults(context, site.url, faults)
    if epik:
        # the visitor lands from a Pinterest ad: the tag keeps the click id in _epik
        page.goto(f"{site.url}/?epik={epik}")
    return checkout(page, site.url, customer=Customer())


def _wait_for_checkout(pixelcheck: Any, server: bool = True) -> None:
    """The thank-you page's last hits: the tag's checkout and the API's."""
    pixelcheck.wait_for("checkout", source="browser", platform="pinterest")
    if server:
        pixelcheck.wait_for("checkout", source="server", platform="pinterest")


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_a_clean_checkout_deduplicates_on_pinterest(route: str, pixelcheck: Any,
                                                    pixelcheck_page: Any,
                                                    pixelcheck_context: Any,
                                                    request: pytest.FixtureRequest) -> None:
    site = request.getfixturevalue("pin_shop" if route == "sink" else "pin_shop_via_proxy")
    pixelcheck.customer(Customer(), external_id=None)
    order_id = _run(pixelcheck_page, pixelcheck_context, site)
    _wait_for_checkout(pixelcheck)
    result = assert_deduplicated(pixelcheck)
    merged = {(p.browser.platform, p.browser.event_name, p.server.event_name)
              for p in result.pairs}
    assert {("meta", "Purchase", "Purchase"), ("pinterest", "checkout", "checkout"),
            ("pinterest", "pagevisit", "page_visit"), ("pinterest", "addtocart", "add_to_cart"),
            ("pinterest", "initiatecheckout", "initiate_checkout")} <= merged, \
        pixelcheck.report()
    pin = next(p for p in result.pairs if p.browser.platform == "pinterest"
               and p.browser.event_name == "checkout")
    assert pin.browser.event_id == pin.server.event_id == f"purchase.{order_id}"
    assert pin.browser.extra["endpoint"] == "user"
    assert pin.server.raw.channel == route
    assert not pin.server.extra.get("rejection")
    # every tag event went out twice (/user/ then /v3/) and counted once
    browser = [e for e in pixelcheck.browser_events if e.platform == "pinterest"]
    mirrors = [e for e in browser if e.extra.get("mirror_of")]
    assert mirrors and all(e.extra["endpoint"] == "v3" for e in mirrors)
    stats = result.stats()
    assert stats[("pinterest", "checkout")].browser == 1
    assert stats[("pinterest", "checkout")].dedup_rate == 1.0
    # Pinterest's customer data checked by its own rules, and right
    found = [f for f in pixelcheck.findings("pinterest") if f.code not in TIMING]
    assert found == [], pixelcheck.report()


PINTEREST_FAULTS = [
    ("pinterest:id_mismatch", "near-miss-event-id", "-server"),
    ("pinterest:missing_id", "server-call-rejected", "'event_id' is a required property"),
    ("pinterest:unhashed_pii", "server-call-rejected", "user_data.em[0] is not a SHA-256 hash"),
    ("pinterest:unhashed_pii", "raw-pii-in-user-data", "Pinterest wants it SHA-256 hashed"),
    ("pinterest:stale_time", "server-call-rejected", "days old"),
    ("pinterest:stale_time", "event-time-too-old", "Pinterest refuses"),
    ("pinterest:bad_auth", "server-call-rejected", "Authentication failed. (code 2)"),
    ("pinterest:no_server_purchase", "server-event-missing", "Pinterest Conversions API"),
    ("pinterest:phone_plus", "unnormalized-hash", "Pinterest's hash"),
    ("pinterest:tag_name_in_api", "pinterest-api-event-name-spelling", "'add_to_cart'"),
]


@pytest.mark.parametrize(("fault", "code", "words"), PINTEREST_FAULTS,
                         ids=[f"{f}-{c}" for f, c, _ in PINTEREST_FAULTS])
def test_pinterest_faults_are_caught_in_pinterests_words(
        fault: str, code: str, words: str, pixelcheck: Any, pixelcheck_page: Any,
        pixelcheck_context: Any, pixelcheck_sink: Any, pin_shop: SiteProcess) -> None:
    pixelcheck_sink.expect_token(TRACKER.default_token, platform="pinterest")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, pin_shop, fault)
    _wait_for_checkout(pixelcheck, server=fault not in ("pinterest:no_server_purchase",))
    if fault == "pinterest:tag_name_in_api":
        pixelcheck.wait_for("addtocart", source="server", platform="pinterest")
    found = [f for f in pixelcheck.findings() if f.platform == "pinterest"]
    mine = [f for f in found if f.code == code]
    assert mine, pixelcheck.report()
    text = "\n".join(f"{f.message} {f.fix} {' '.join(f.details)}" for f in mine)
    assert words in text, text
    everything = "\n".join(f"{f.message} {f.fix}" for f in found)
    assert "fbq" not in everything and "Meta" not in everything and "fbp" not in everything
    if code == "server-call-rejected":
        # the fix names Pinterest's own answer
        assert "Pinterest" in mine[0].fix or "401" in mine[0].fix or "400" in mine[0].fix


def test_the_epik_click_id_carries_over(pixelcheck: Any, pixelcheck_page: Any,
                                        pixelcheck_context: Any, pin_shop: SiteProcess) -> None:
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, pin_shop, epik=EPIK)
    _wait_for_checkout(pixelcheck)
    result = assert_deduplicated(pixelcheck, platform="pinterest")
    pin = next(p for p in result.pairs if p.browser.event_name == "checkout")
    assert pin.browser.extra["epik"] == pin.server.extra["click_id"] == EPIK
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    assert cookies["_epik"] == EPIK
    assert not [f for f in pixelcheck.findings("pinterest") if f.code.startswith("epik")]


@pytest.mark.parametrize("fault,code", [("click_id_hashed", "epik-mismatch"),
                                        ("no_click_id", "epik-missing")])
def test_a_lost_click_id_is_caught(fault: str, code: str, pixelcheck: Any,
                                   pixelcheck_page: Any, pixelcheck_context: Any,
                                   pin_shop: SiteProcess) -> None:
    _run(pixelcheck_page, pixelcheck_context, pin_shop, f"pinterest:{fault}", epik=EPIK)
    _wait_for_checkout(pixelcheck)
    found = [f for f in pixelcheck.findings("pinterest") if f.code == code]
    assert found, pixelcheck.report()
    assert "user_data.click_id" in found[0].fix


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_pinterests_official_sdk_deduplicates_on_both_routes(
        route: str, pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
        pixelcheck_harness: Any) -> None:
    """pinterest-api-sdk, unchanged: the base URL through its Configuration.host, or the
    real host through the proxy (Configuration.proxy and its CA from the environment)."""
    pytest.importorskip("pinterest.ads.conversion_events")
    sink = pixelcheck_harness.sink
    via_proxy = route == "proxy"
    with SiteProcess(sink.url, access_token=TOKEN,
                     trackers={"pinterest": None if via_proxy else sink.url_for("pinterest")},
                     tracker_clients={"pinterest": "pinterest-api-sdk"},
                     env=pixelcheck_harness.backend_env() if via_proxy else None) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site)
        server = pixelcheck.wait_for("checkout", source="server", platform="pinterest")
        pixelcheck.wait_for("checkout", source="browser", platform="pinterest")
        result = assert_deduplicated(pixelcheck, "checkout", platform="pinterest")
    assert [p.server for p in result.pairs] == [server]
    assert server.raw.channel == route
    assert server.raw.header("user-agent", "").startswith("pins-sdk/python/")
    assert server.raw.url.endswith("/events?test=False")
    found = [f for f in pixelcheck.findings("pinterest") if f.code not in TIMING]
    assert found == [], pixelcheck.report()


# --- the core.js stand-in alone, in a real Chromium -----------------------------------------


class _Page(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def tag_page() -> Iterator[str]:
    _Page.html = ("<!doctype html><html><head><script>" + BASE_CODE + """
pintrk('load', '2612345678901', {em: ' Jane.Doe@Example.com '});
pintrk('page');
pintrk('track', 'AddToCart', {event_id: 'add.1', value: 12.5, currency: 'USD',
  line_items: [{product_id: 'sku-1', product_quantity: 1}]});
pintrk('set', {em: 'F660AB912EC121D1B1E928A0BB4BC61B15F5AD44D5EFDC4E1C92A25E99B8E44A'});
pintrk('track', 'checkout', {event_id: 'ORD-1', value: 25, currency: 'USD',
  order_id: 'ORD-1'});
</script></head><body>thanks</body></html>""").encode()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/thanks?epik={EPIK}"
    server.shutdown()


def test_stand_in_in_chromium(pixelcheck: Any, pixelcheck_page: Any, pixelcheck_context: Any,
                              tag_page: str) -> None:
    pixelcheck_page.goto(tag_page)
    event = pixelcheck.wait_for("checkout", source="browser", platform="pinterest")
    # all six hits: three calls, each a /user/ hit and its /v3/ copy
    assert pixelcheck.wait_until(
        lambda events: len([e for e in events if e.platform == "pinterest"]) >= 6, 10)
    assert (event.extra["tag_id"], event.event_id, event.value) == ("2612345678901", "ORD-1", 25)
    assert event.extra["endpoint"] == "user" and event.raw.method == "GET"
    assert event.extra["epik"] == EPIK
    # a pre-hashed email passes through, lowercased
    assert event.user_data["em"] == pii_rules.TEST_VECTORS[0][3]
    hits = [e for e in pixelcheck.browser_events if e.platform == "pinterest"]
    # one /user/ hit per call (they run side by side, so they may arrive in any order);
    # each one's /v3/ copy follows it
    users = {e.event_name: e for e in hits if e.extra["endpoint"] == "user"}
    assert sorted(users) == ["AddToCart", "checkout", "init"]
    assert len([e for e in hits if e.extra["endpoint"] == "user"]) == 3
    assert not any(e.extra.get("mirror_of") for e in users.values())
    for user in users.values():
        (copy,) = [e for e in hits if e.extra["endpoint"] == "v3"
                   and e.event_name == user.event_name]
        assert copy.extra["mirror_of"] and copy.arrival_time >= user.arrival_time
    add = users["AddToCart"]
    assert add.user_data["em"] == pii_rules.hash_value("em", " Jane.Doe@Example.com ")
    assert users["init"].extra["not_a_conversion"]
    result = pixelcheck.match("pinterest")
    assert sorted(e.event_name for e in result.browser_only) == ["AddToCart", "checkout"]
    assert len(result.mirrors) == 3
