"""The example checkout with Meta and Snapchat on both sides, in a real Chromium,
through the real proxy and sink: clean on both routes (the Snap Conversions API's base
URL at ``pixelcheck_sink.url_for("snapchat")``, and the real tr.snapchat.com through
the proxy), and each Snap fault caught in Snap's own words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from example_site import SiteProcess
from example_site.journey import Customer, checkout, set_faults
from pytest_pixelcheck import assert_deduplicated

pytestmark = pytest.mark.browser

TOKEN = "EAAsnapTESTtoken0123456789"
CLICK = "pixelcheck-ScCid-browser-01"
TIMING = {"server-event-late", "server-before-browser"}


@pytest.fixture(scope="module")
def snap_shop(pixelcheck_sink: Any) -> Iterator[Any]:
    """The shop tracking Meta and Snapchat, the Snap API's base URL at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=TOKEN,
                     trackers={"snapchat": pixelcheck_sink.url_for("snapchat")}) as site:
        yield site


@pytest.fixture(scope="module")
def snap_shop_via_proxy(pixelcheck_harness: Any) -> Iterator[Any]:
    """The same shop calling graph.facebook.com and tr.snapchat.com through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=TOKEN,
                     trackers={"snapchat": None},
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


def _run(page: Any, context: Any, site: Any, faults: str | None = None, *,
         click: bool = False) -> str:
    set_faults(context, site.url, faults)
    if click:
        # the visitor arrives from a Snap ad: ScCid on the landing URL
        page.goto(f"{site.url}/?ScCid={CLICK}")
    return checkout(page, site.url, customer=Customer())


def _wait_for_purchase(pixelcheck: Any, sources: tuple[str, ...] = ("browser", "server"),
                       server_name: str = "PURCHASE") -> None:
    for source in sources:
        name = server_name if source == "server" else "PURCHASE"
        pixelcheck.wait_for(name, source=source, platform="snapchat")


def _snap_text(findings: list[Any]) -> str:
    return "\n".join(f"{f.message} {f.fix} {' '.join(f.details)}" for f in findings)


def _in_snap_words(text: str) -> None:
    """No Meta vocabulary: 'Conversions API' only as the Snap Conversions API."""
    assert "fbq" not in text
    assert "Conversions API" not in re.sub(r"Snap(?:'s)? Conversions API", "", text), text


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_clean_checkout_deduplicates_on_both_routes(route: str, pixelcheck: Any,
                                                    pixelcheck_page: Any,
                                                    pixelcheck_context: Any,
                                                    request: pytest.FixtureRequest) -> None:
    site = request.getfixturevalue("snap_shop" if route == "sink" else "snap_shop_via_proxy")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, site, click=True)
    _wait_for_purchase(pixelcheck)
    result = assert_deduplicated(pixelcheck)
    merged = {(p.browser.platform, p.browser.event_name) for p in result.pairs}
    assert {("meta", "Purchase"), ("snapchat", "PURCHASE"), ("snapchat", "PAGE_VIEW"),
            ("snapchat", "VIEW_CONTENT"), ("snapchat", "ADD_CART"),
            ("snapchat", "START_CHECKOUT")} <= merged, pixelcheck.report()
    snap = [p for p in result.pairs if p.browser.platform == "snapchat"]
    for pair in snap:
        assert pair.server.raw.channel == route
        assert pair.server.extra["api"] == "v3"
    purchase = next(p for p in snap if p.browser.event_name == "PURCHASE")
    # the customer's hashes agree across the two sides and the click id came along
    assert purchase.browser.user_data["u_hem"] == purchase.server.user_data["em"][0]
    assert purchase.browser.user_data["u_hpn"] == purchase.server.user_data["ph"][0]
    assert purchase.server.extra["sc_click_id"] == CLICK
    cookies = {c["name"]: c["value"] for c in pixelcheck_context.cookies()}
    assert purchase.server.extra["sc_cookie1"] == cookies["_scid"]
    # the pixel's own cookie1 is not the _scid value, and nothing complains about that
    assert purchase.browser.extra["u_c1"] != cookies["_scid"]
    found = [f for f in pixelcheck.findings("snapchat") if f.code not in TIMING]
    assert found == [], pixelcheck.report()
    # the pixel's init, config and cookie-match requests are kept, never unmerged
    extras = [e for e in pixelcheck.browser_events
              if e.platform == "snapchat" and e.extra.get("not_a_conversion")]
    assert extras and not [e for e in result.browser_only if e.extra.get("not_a_conversion")]
    stats = result.stats()
    assert stats[("snapchat", "PURCHASE")].dedup_rate == 1.0


SNAP_FAULTS = [
    ("snapchat:id_mismatch", "near-miss-event-id"),
    ("snapchat:missing_id", "missing-event-id"),
    ("snapchat:unhashed_pii", "server-call-rejected"),
    ("snapchat:stale_time", "server-call-rejected"),
    ("snapchat:bad_auth", "server-call-rejected"),
    ("snapchat:no_server_purchase", "server-event-missing"),
    ("snapchat:browser_no_dedup_id", "snap-auto-dedup-id"),
    ("snapchat:phone_with_plus", "unnormalized-hash"),
    ("snapchat:scid_new", "sc-cookie1-unstable"),
    ("snapchat:scid_hashed", "sc-cookie1-hashed"),
    ("snapchat:click_id_lost", "sc-click-id-missing"),
    ("snapchat:name_lowercase", "snap-event-name-case"),
]


@pytest.mark.parametrize(("fault", "code"), SNAP_FAULTS, ids=[f for f, _ in SNAP_FAULTS])
def test_snap_faults_are_caught_in_snap_words(fault: str, code: str, pixelcheck: Any,
                                              pixelcheck_page: Any, pixelcheck_context: Any,
                                              pixelcheck_sink: Any, snap_shop: Any) -> None:
    from example_site.trackers.snapchat import TRACKER

    pixelcheck_sink.expect_token(TRACKER.default_token, platform="snapchat")
    pixelcheck.customer(Customer(), external_id=None)
    _run(pixelcheck_page, pixelcheck_context, snap_shop, fault, click=True)
    sources = ("browser",) if fault.endswith("no_server_purchase") else ("browser", "server")
    _wait_for_purchase(pixelcheck, sources,
                       "purchase" if fault.endswith("name_lowercase") else "PURCHASE")
    found = [f for f in pixelcheck.findings() if f.platform == "snapchat"]
    assert code in [f.code for f in found], pixelcheck.report()
    _in_snap_words(_snap_text(found))
    hit = next(f for f in found if f.code == code)
    if fault.endswith(("unhashed_pii", "stale_time", "bad_auth")):
        # the rejection quotes Snap's own answer
        why = {"unhashed_pii": "Unhashed PII", "stale_time": "Timestamp invalid or out of "
               "range", "bad_auth": "Unauthorized"}[fault.split(":")[1]]
        assert why in _snap_text([hit]), _snap_text([hit])
    if fault.endswith("name_lowercase"):
        # Snap compares names without regard to case: the pair merged all the same
        result = pixelcheck.match("snapchat")
        assert any(p.browser.event_name == "PURCHASE" and p.server.event_name == "purchase"
                   for p in result.pairs)


@pytest.mark.parametrize("route", ["sink", "proxy"])
def test_snaps_official_sdk_deduplicates_on_both_routes(route: str, pixelcheck: Any,
                                                        pixelcheck_page: Any,
                                                        pixelcheck_context: Any,
                                                        pixelcheck_harness: Any) -> None:
    """snap-business-sdk 1.0.0, unchanged (legacy v2 API): base URL through its
    launchpad_url, or the real host through the proxy (its configuration's proxy and
    CA set from the environment)."""
    pytest.importorskip("snap_business_sdk")
    sink = pixelcheck_harness.sink
    via_proxy = route == "proxy"
    with SiteProcess(sink.url, access_token=TOKEN,
                     trackers={"snapchat": None if via_proxy else sink.url_for("snapchat")},
                     tracker_clients={"snapchat": "snap-business-sdk"},
                     env=pixelcheck_harness.backend_env() if via_proxy else None) as site:
        pixelcheck.customer(Customer(), external_id=None)
        _run(pixelcheck_page, pixelcheck_context, site, click=True)
        server = pixelcheck.wait_for("PURCHASE", source="server", platform="snapchat")
        pixelcheck.wait_for("PURCHASE", source="browser", platform="snapchat")
        result = assert_deduplicated(pixelcheck, "PURCHASE", platform="snapchat")
    assert [p.server for p in result.pairs] == [server]
    assert server.raw.channel == route
    assert server.raw.header("user-agent", "").startswith("BusinessSDK/Python")
    assert "/v2/conversion" in server.raw.url and server.extra["api"] == "v2"
    assert [f for f in pixelcheck.findings("snapchat") if f.code not in TIMING] == [], \
        pixelcheck.report()
