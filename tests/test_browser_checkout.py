"""The example checkout in a real headless Chromium, through the real proxy and sink."""

from __future__ import annotations

import re

import pytest

from pytest_pixelcheck import PixelcheckAssertionError, assert_deduplicated

pytestmark = pytest.mark.browser

# what the shop's pages fire during one checkout, in order
JOURNEY = ["PageView", "ViewContent", "PageView", "AddToCart", "PageView",
           "InitiateCheckout", "PageView", "Purchase"]


def test_clean_checkout_is_deduplicated(pixelcheck, run_checkout):
    order_id = run_checkout()
    result = assert_deduplicated(pixelcheck)

    assert sorted(p.browser.event_name for p in result.pairs) == sorted(JOURNEY)
    purchase = next(p for p in result.pairs if p.browser.event_name == "Purchase")
    assert purchase.browser.event_id == purchase.server.event_id == f"purchase.{order_id}"
    assert purchase.server.raw.channel == "sink"
    assert purchase.browser.custom_data["order_id"] == order_id
    # every hit the pages fired reached the proxy: none lost to a TLS handshake
    assert [e.event_name for e in pixelcheck.browser_events] == JOURNEY
    assert pixelcheck.findings() == []


def test_purchase_check_by_name_and_wait_for(pixelcheck, run_checkout):
    run_checkout()
    server_purchase = pixelcheck.wait_for("Purchase", source="server")
    browser_purchase = pixelcheck.wait_for("Purchase", source="browser")
    assert server_purchase.user_data["em"][0] == browser_purchase.user_data["em"]
    assert_deduplicated(pixelcheck, "Purchase")
    assert pixelcheck.match().rate("Purchase") == 1.0


def test_backend_through_the_proxy_reaches_the_same_decoding(
        pixelcheck, run_checkout, shop_via_proxy, pixelcheck_proxy):
    run_checkout(site=shop_via_proxy)
    result = assert_deduplicated(pixelcheck, "Purchase")
    purchase = next(p for p in result.pairs if p.browser.event_name == "Purchase")
    assert purchase.server.raw.channel == "proxy"
    assert purchase.server.raw.original_host == "graph.facebook.com"
    assert purchase.server.raw.url.startswith("https://graph.facebook.com/v21.0/1234567890/")
    assert not [f for f in pixelcheck_proxy.tls_failures if "graph.facebook.com" in (f[0] or "")]


def test_broken_ids_fail_with_both_ids_side_by_side(pixelcheck, run_checkout):
    order_id = run_checkout(faults="id_suffix")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_deduplicated(pixelcheck, "Purchase", timeout=2)
    message = str(failure.value)
    flat = " ".join(message.split())
    assert message.startswith("assert_deduplicated('Purchase') failed: 1 error "
                              "[near-miss-event-id]\n")
    assert "[near-miss-event-id]" in message
    assert f"browser: 'Purchase' id 'purchase.{order_id}'\n" in message
    assert f"server:  'Purchase' id 'purchase.{order_id}-server'\n" in message
    assert "the server id has the extra suffix '-server'" in flat
    assert "fix: pass one id to both sides" in flat
    assert [f.code for f in failure.value.findings] == ["near-miss-event-id"]
    # the events table shows the unmatched purchase on both sides
    order_number = order_id.split("-")[1]
    assert re.search(rf"^B Purchase +purchase.*{order_number} ", message, re.M)
    assert re.search(r"^S Purchase +- +purchase.*-server ", message, re.M)
    # pytest puts 8 columns of "E       " in front: the whole stays within 80
    assert max(len(line) for line in message.splitlines()) <= 72, message


def test_missing_server_event_says_which_side(pixelcheck, run_checkout):
    run_checkout(faults="no_server_purchase")
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_deduplicated(pixelcheck, "Purchase", timeout=1)
    flat = " ".join(str(failure.value).split())
    assert "[server-event-missing] browser Purchase" in flat
    assert "has no server twin" in flat


def test_a_browser_that_distrusts_the_proxy_is_reported(pixelcheck, pixelcheck_harness, shop):
    """Without the session CA's SPKI and without ignore_https_errors, Chromium refuses
    the proxy's certificates: the pixel library never loads, and pixelcheck says why."""
    from pytest_pixelcheck.browser import chromium_args

    session = pixelcheck_harness.browser()
    distrusting = session.playwright.chromium.launch(
        executable_path=session.location.executable_path,
        proxy={"server": pixelcheck_harness.proxy.url}, args=chromium_args(None))
    try:
        page = distrusting.new_context().new_page()
        page.goto(f"{shop.url}/product/sku-1")
        page.wait_for_load_state("networkidle")
    finally:
        distrusting.close()
    found = [f for f in pixelcheck.findings() if f.code == "proxy-not-trusted"]
    assert found, pixelcheck.report()
    assert "connect.facebook.net" in " ".join(f.message for f in found)
    assert pixelcheck.browser_events == []
