"""A checkout that pays on a payment provider's page on another host and comes back, in
a real Chromium through the real proxy and sink: the click id and the cookies survive
the round trip and reach the server copy; a return to another host name loses them,
and the finding names that hop."""

from __future__ import annotations

import pytest

from example_site.journey import fill_checkout, set_faults
from pytest_pixelcheck import assert_deduplicated

pytestmark = pytest.mark.browser

FBCLID = "IwAR0clickid123"


def _pay_round_trip(pixelcheck, page, shop, faults=None, landing_query=f"fbclid={FBCLID}"):
    set_faults(page.context, shop.url, faults)
    pixelcheck.watch_routes(page)
    page.goto(f"{shop.url}/product/sku-1?{landing_query}")
    fill_checkout(page, shop.url)
    page.click("#place-order")
    page.wait_for_url("**/pay?**")
    assert page.url.startswith("http://localhost:")  # another host
    page.click("#pay")
    page.wait_for_url("**/thanks/**")
    return page.inner_text("#order-id")


def test_click_id_and_cookies_survive_the_payment_round_trip(
        pixelcheck, pixelcheck_page, psp_shop):
    order_id = _pay_round_trip(pixelcheck, pixelcheck_page, psp_shop)
    result = assert_deduplicated(pixelcheck, "Purchase")
    [pair] = result.pairs
    assert pair.server.event_id == f"purchase.{order_id}"
    landing = pixelcheck.browser_events[0]
    assert landing.extra["fbc"].endswith(f".{FBCLID}")
    for copy in (pair.browser, pair.server):
        assert copy.extra["fbc"] == landing.extra["fbc"]
        assert copy.extra["fbp"] == landing.extra["fbp"]
    assert any(r.startswith("http://localhost:") and "/pay?" in r for r in pixelcheck.routes)
    assert pixelcheck.findings() == []


def test_a_return_to_another_host_loses_them_and_names_the_hop(
        pixelcheck, pixelcheck_page, psp_shop):
    _pay_round_trip(pixelcheck, pixelcheck_page, psp_shop, "psp_return_other_host")
    pixelcheck.wait_for("Purchase", source="server")
    pixelcheck.wait_for("Purchase", source="browser")
    lost = [f for f in pixelcheck.findings() if f.code == "click-id-lost"]
    messages = " | ".join(f.message for f in lost)
    shop_port = psp_shop.url.rsplit(":", 1)[1]
    # the browser side: the hop back from the payment page into the other host name
    browser_fbc = next(f for f in lost if f.message.startswith("meta _fbc (fbclid) was lost"))
    assert "on the hop localhost:" in browser_fbc.message
    assert f"/pay -> localhost:{shop_port}/" in browser_fbc.message
    assert f"the host changed from 127.0.0.1:{shop_port} to localhost:{shop_port}" in \
        browser_fbc.message
    assert any(f.message.startswith("meta _fbp was replaced") for f in lost), messages
    # the server copy read the cookies of the return request, which had none
    # (the thank-you page's PageView and Purchase both did; either may arrive first)
    assert any(f.message.startswith("server ") and "Purchase id=" in f.message
               and "carries no _fbc (fbclid)" in f.message for f in lost), messages
    assert "send the shopper back to the host they came on" in browser_fbc.fix
    assert "user_data.fbc" in browser_fbc.fix  # in Meta's words
