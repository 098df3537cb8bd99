"""The example shop's single-page checkout (/spa, routes by history.pushState), in a
real Chromium through the real proxy and sink: a PageView per route, a route change
that fires twice or not at all, and waiting across route changes."""

from __future__ import annotations

import pytest

from example_site.journey import set_faults
from pytest_pixelcheck import (
    PixelcheckAssertionError,
    assert_deduplicated,
    assert_exactly_once,
    assert_pageview_per_route,
)

pytestmark = pytest.mark.browser

ROUTES = ["spa-product", "spa-cart", "spa-checkout"]


def _browse(pixelcheck, page, shop, faults=None):
    set_faults(page.context, shop.url, faults)
    pixelcheck.watch_routes(page)
    page.goto(f"{shop.url}/spa")
    for button in ROUTES:
        page.click(f"#{button}")
    return page


def test_every_route_fires_one_pageview_and_the_checkout_counts_once(
        pixelcheck, pixelcheck_page, shop):
    page = _browse(pixelcheck, pixelcheck_page, shop)
    # wait_for counts across route changes: the shell loaded once, four PageViews came
    pixelcheck.wait_for("PageView", source="server", count=4)
    page.wait_for_url("**/spa/checkout")
    visits = assert_pageview_per_route(pixelcheck)
    assert sorted(visits) == sorted(
        f"{shop.url.split('//')[1]}{path}"
        for path in ("/spa", "/spa/product", "/spa/cart", "/spa/checkout"))
    page.click("#spa-place-order")
    purchase = pixelcheck.wait_for("Purchase", source="browser")
    page.wait_for_url(f"**/spa/thanks/{purchase.custom_data['order_id']}")
    assert_deduplicated(pixelcheck)
    assert_exactly_once(pixelcheck, "Purchase", key=purchase.custom_data["order_id"])
    assert_pageview_per_route(pixelcheck)
    assert pixelcheck.findings() == []


def test_a_route_change_that_fires_pageview_twice(pixelcheck, pixelcheck_page, shop):
    _browse(pixelcheck, pixelcheck_page, shop, "spa_double_pageview")
    pixelcheck.wait_for("PageView", source="server", count=4)
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pageview_per_route(pixelcheck, timeout=2)
    flat = " ".join(str(failure.value).split())
    assert "[duplicate-browser-trigger]" in flat
    assert "browser fired PageView id='pageview." in flat and "2 times" in flat
    assert "page: " in flat and "/spa/product" in flat
    assert {f.code for f in failure.value.findings} == {"duplicate-browser-trigger"}


def test_route_changes_without_a_pageview(pixelcheck, pixelcheck_page, shop):
    _browse(pixelcheck, pixelcheck_page, shop, "spa_no_route_pageview")
    pixelcheck.wait_for("PageView", source="server", count=4)
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_pageview_per_route(pixelcheck, timeout=1)
    flat = " ".join(str(failure.value).split())
    assert "[route-without-pageview]" in flat
    found = sorted(f.message.split()[1] for f in failure.value.findings)
    assert [r.rsplit("/", 1)[1] for r in found] == ["cart", "checkout", "product"]
    assert "fbq('track', 'PageView') on every route change" in flat


def test_no_watched_route_is_nothing_to_check(pixelcheck):
    with pytest.raises(PixelcheckAssertionError, match="watch_routes"):
        assert_pageview_per_route(pixelcheck)
