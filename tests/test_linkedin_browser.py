"""The example checkout with Meta and LinkedIn on both sides, in a real Chromium,
through the real proxy and sink: clean on both routes (base URL at
``pixelcheck_sink.url_for("linkedin")``, and api.linkedin.com through the proxy),
LinkedIn's official Python client on both routes, and each fault caught in
LinkedIn's words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from example_site import SiteProcess
from example_site.journey import Customer, checkout, set_faults
from example_site.trackers.linkedin import TRACKER, conversion_rules
from pytest_pixelcheck import assert_deduplicated
from pytest_pixelcheck.platforms.linkedin import LINKEDIN, ConversionRule
from pytest_pixelcheck.platforms.linkedin.pii_rules import sha256_hex

pytestmark = pytest.mark.browser

TOKEN = "EAAlinkedinTESTtoken0123456789"
CLICK = "AQFlinkedinAdClick-0123456789"
TIMING = {"server-event-late", "server-before-browser"}
CONVERSIONS = ("VIEW_CONTENT", "ADD_TO_CART", "START_CHECKOUT", "PURCHASE")


@pytest.fixture(autouse=True)
def shop_rules() -> Iterator[None]:
    """The shop's conversion rules, one per source and type, declared for this test
    only: LinkedIn sends rule ids, and the declaration names both copies alike."""
    rules = [ConversionRule(rule_id, name, source)  # type: ignore[arg-type]
             for rule_id, name, source in conversion_rules()]
    with LINKEDIN.rules.declared(rules, partner_id=TRACKER.default_tag_id):
        yield


@pytest.fixture(scope="session")
def shop_linkedin(pixelcheck_sink):
    """The shop tracking Meta and LinkedIn, LinkedIn's API base URL at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={"linkedin": pixelcheck_sink.url_for("linkedin")}) as site:
        yield site


@pytest.fixture(scope="session")
def shop_linkedin_via_proxy(pixelcheck_harness):
    """The same shop calling the real api.linkedin.com through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN,
                     trackers={"linkedin": None},
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def _run(page, context, site, faults=None, *, landing: str | None = None) -> str:
    set_faults(context, site.url, faults)
    if landing is not None:
        page.goto(site.url + landing)  # an ad click's landing page, before the journey
    return checkout(page, site.url, customer=Customer())


def _wait_for_purchase(pixelcheck, *, server: bool = True) -> None:
    """The thank-you page's last hits: its tag conversion and, unless the fault keeps
    it back, the backend's call (recorded whatever LinkedIn answered)."""
    pixelcheck.wait_for("PURCHASE", source="browser", platform="linkedin")
    if server:
        pixelcheck.wait_for("PURCHASE", source="server", platform="linkedin")


def _linkedin_text(findings) -> str:
    return "\n".join(f"{f.message} {f.fix} {' '.join(f.details)}" for f in findings)


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_clean_checkout_deduplicates_with_meta_on_both_routes(
        route, pixelcheck, pixelcheck_page, pixelcheck_context, request):
    site = request.getfixturevalue("shop_linkedin" if route == "sink"
                                   else "shop_linkedin_via_proxy")
    pixelcheck.customer(Customer(), external_id=None)
    order_id = _run(pixelcheck_page, pixelcheck_context, site)
    _wait_for_purchase(pixelcheck)
    pixelcheck.wait_for("Purchase", source="server", platform="meta")
    result = assert_deduplicated(pixelcheck)
    merged = {(p.browser.platform, p.browser.event_name) for p in result.pairs}
    assert {("meta", "Purchase")} | {("linkedin", name) for name in CONVERSIONS} <= merged, \
        pixelcheck.report()
    purchase = next(p for p in result.pairs
                    if p.browser.platform == "linkedin" and p.browser.event_name == "PURCHASE")
    assert purchase.browser.event_id == purchase.server.event_id == f"purchase.{order_id}"
    # two rules, one conversion: the tag's and the API's own rule, merged on eventId
    assert purchase.browser.extra["conversion_rule"] == "7100004"
    assert purchase.server.extra["conversion_rule"] == "8200004"
    assert purchase.browser.pixel_id == purchase.server.pixel_id == TRACKER.default_tag_id
    for pair in result.pairs:
        if pair.browser.platform == "linkedin":
            assert pair.server.raw.channel == route
            assert pair.server.raw.response_status == 201
    # the page's visit signal carried the email setUserData hashed in the browser
    visits = [e for e in pixelcheck.events if e.platform == "linkedin"
              and e.event_name == "PAGE_VISIT" and e.user_data.get("hem")]
    assert {e.user_data["hem"] for e in visits} == {sha256_hex("jane.doe@example.com")}
    own = [f for f in pixelcheck.findings("linkedin") if f.code not in TIMING]
    assert own == [], pixelcheck.report()
    stats = result.stats()
    assert stats[("linkedin", "PURCHASE")].dedup_rate == 1.0


def test_the_click_id_reaches_the_api_unchanged(pixelcheck, pixelcheck_page, pixelcheck_context,
                                                shop_linkedin):
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, shop_linkedin, landing=f"/?li_fat_id={CLICK}")
    _wait_for_purchase(pixelcheck)
    result = assert_deduplicated(pixelcheck, platform="linkedin")
    purchase = next(p for p in result.pairs if p.browser.event_name == "PURCHASE")
    assert purchase.server.extra["li_fat_id"] == CLICK
    assert CLICK in {e.extra.get("li_fat_id") for e in pixelcheck.events
                     if e.platform == "linkedin" and e.source == "browser"}
    assert not [f for f in pixelcheck.findings("linkedin") if f.code.startswith("li-fat-id")]


LINKEDIN_FAULTS = [
    # the ones every platform has
    ("linkedin:id_mismatch", "near-miss-event-id"),
    ("linkedin:missing_id", "missing-event-id"),
    ("linkedin:unhashed_pii", "server-call-rejected"),
    ("linkedin:stale_time", "server-call-rejected"),
    ("linkedin:bad_auth", "server-call-rejected"),
    ("linkedin:no_server_purchase", "server-event-missing"),
    # LinkedIn's own traps
    ("linkedin:seconds_time", "server-call-rejected"),
    ("linkedin:no_user_ids", "server-call-rejected"),
    ("linkedin:amount_number", "server-call-rejected"),
    ("linkedin:no_version_header", "server-call-rejected"),
    ("linkedin:hashed_names", "linkedin-hashed-user-info"),
    ("linkedin:tag_rule_on_server", "linkedin-rule-source-mismatch"),
]
#: what LinkedIn's answer or the finding must say, in LinkedIn's words
WORDS = {
    "linkedin:id_mismatch": "eventId",
    "linkedin:missing_id": "eventId",
    "linkedin:unhashed_pii": "SHA256_EMAIL",
    "linkedin:stale_time": "90 days",
    "linkedin:bad_auth": "Bearer",
    "linkedin:no_server_purchase": "conversionEvents",
    "linkedin:seconds_time": "milliseconds",
    "linkedin:no_user_ids": "userIds",
    "linkedin:amount_number": "amount",
    "linkedin:no_version_header": "LinkedIn-Version",
    "linkedin:hashed_names": "userInfo",
    "linkedin:tag_rule_on_server": "separate conversion rule",
}


@pytest.mark.parametrize(("fault", "code"), LINKEDIN_FAULTS, ids=[f for f, _ in LINKEDIN_FAULTS])
def test_linkedin_faults_are_caught_in_linkedins_words(
        fault, code, pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_sink,
        shop_linkedin):
    pixelcheck_sink.expect_token(TRACKER.default_token, platform="linkedin")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, shop_linkedin, fault)
    _wait_for_purchase(pixelcheck, server=fault != "linkedin:no_server_purchase")
    found = [f for f in pixelcheck.findings("linkedin") if f.platform == "linkedin"]
    assert code in [f.code for f in found], pixelcheck.report()
    text = _linkedin_text(found)
    assert "fbq" not in text and "eventID" not in text and "event_name" not in text
    assert WORDS[fault] in text, text
    # the fault touches the purchase only: the other conversions still merge
    merged = {p.browser.event_name for p in pixelcheck.match("linkedin").pairs}
    assert {"VIEW_CONTENT", "ADD_TO_CART", "START_CHECKOUT"} <= merged


def test_a_hashed_click_id_is_caught(pixelcheck, pixelcheck_page, pixelcheck_context,
                                     shop_linkedin):
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, shop_linkedin, "linkedin:li_fat_id_hashed",
         landing=f"/?li_fat_id={CLICK}")
    _wait_for_purchase(pixelcheck)
    found = [f for f in pixelcheck.findings("linkedin") if f.code == "li-fat-id-mismatch"]
    assert found and "SHA-256 of the browser's li_fat_id" in found[0].message, \
        pixelcheck.report()


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_linkedins_official_client_deduplicates_on_both_routes(
        route, pixelcheck, pixelcheck_page, pixelcheck_context, pixelcheck_harness):
    """linkedin-api-client's RestliClient.create, unchanged: its requests session is
    rebased to the sink, or goes to api.linkedin.com through the proxy with the
    session's CA (the client calls Session.send, which skips REQUESTS_CA_BUNDLE)."""
    pytest.importorskip("linkedin_api")
    sink = pixelcheck_harness.sink
    via_proxy = route == "proxy"
    with SiteProcess(sink.url, access_token=TOKEN,
                     trackers={"linkedin": None if via_proxy else sink.url_for("linkedin")},
                     tracker_clients={"linkedin": "linkedin-api-client"},
                     env=pixelcheck_harness.backend_env() if via_proxy else None) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site)
        server = pixelcheck.wait_for("PURCHASE", source="server", platform="linkedin")
        pixelcheck.wait_for("PURCHASE", source="browser", platform="linkedin")
        result = assert_deduplicated(pixelcheck, "PURCHASE", platform="linkedin")
    assert [p.server for p in result.pairs] == [server]
    assert server.raw.channel == route
    assert server.raw.header("user-agent", "").startswith("linkedin-api-python-client/")
    assert server.raw.header("x-restli-method") == "CREATE"
    assert server.raw.response_status == 201
    assert [f for f in pixelcheck.findings("linkedin") if f.code not in TIMING] == [], \
        pixelcheck.report()
