"""Journeys that break "exactly once" in real life, in a real Chromium through the real
proxy and sink: each helper of pytest_pixelcheck.journeys against the clean shop (one
Purchase per platform) and against the shop fault that breaks it (a second conversion
under a new id, named by journey and platform)."""

from __future__ import annotations

import pytest

from example_site.journey import fill_checkout, set_faults
from pytest_pixelcheck import PixelcheckAssertionError, assert_exactly_once, journeys

pytestmark = pytest.mark.browser

CLEAN, BROKEN = None, "broken"


def _fails_naming(pixelcheck, journey: str, key: str | None) -> str:
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_exactly_once(pixelcheck, "Purchase", key=key, timeout=2)
    message = str(failure.value)
    flat = " ".join(message.split())
    assert message.startswith("assert_exactly_once('Purchase'"), message
    assert "[counted-more-than-once]" in message
    assert "meta counted Purchase" in flat and "2 times" in flat, message
    assert f"journey '{journey}' added a conversion" in flat, message
    # the fix in Meta's words
    assert "fbq('track'" in flat, message
    assert [f.code for f in failure.value.findings] == ["counted-more-than-once"]
    return message


@pytest.mark.parametrize("fault", [CLEAN, "thanks_refire_new_id"])
def test_reload_of_the_thank_you_page(pixelcheck, pixelcheck_page, run_checkout, fault):
    order_id = run_checkout(faults=fault)
    journeys.reload(pixelcheck, pixelcheck_page)
    if fault is CLEAN:
        counted = assert_exactly_once(pixelcheck, "Purchase", key=order_id)
        assert [len(c) for c in counted.values()] == [1]
        assert counted["meta"][0].sides == "browser + server"
    else:
        _fails_naming(pixelcheck, "reload", order_id)


@pytest.mark.parametrize("fault", [CLEAN, "thanks_refire_new_id"])
def test_thank_you_url_in_a_second_tab(pixelcheck, pixelcheck_page, run_checkout, fault):
    order_id = run_checkout(faults=fault)
    other = journeys.second_tab(pixelcheck, pixelcheck_page)
    assert other.url == pixelcheck_page.url
    if fault is CLEAN:
        assert_exactly_once(pixelcheck, "Purchase", key=order_id)
    else:
        _fails_naming(pixelcheck, "second_tab", order_id)


@pytest.mark.parametrize("fault", [CLEAN, "pageshow_refire"])
def test_back_forward_through_the_bfcache(pixelcheck, pixelcheck_page, run_checkout, fault):
    order_id = run_checkout(faults=fault)
    assert journeys.back_forward(pixelcheck, pixelcheck_page) is True
    if fault is CLEAN:
        assert_exactly_once(pixelcheck, "Purchase", key=order_id)
    else:
        _fails_naming(pixelcheck, "back_forward", order_id)


def test_back_forward_says_why_a_page_was_not_restored(pixelcheck, pixelcheck_page, shop):
    pixelcheck_page.goto(f"{shop.url}/product/sku-1")  # served no-store
    with pytest.raises(journeys.JourneyError, match="MainResourceHasCacheControlNoStore"):
        journeys.back_forward(pixelcheck, pixelcheck_page)
    assert journeys.back_forward(pixelcheck, pixelcheck_page, require_bfcache=False) is False


@pytest.mark.parametrize("fault", [CLEAN, "place_order_not_disabled"])
def test_double_submit_of_place_order(pixelcheck, pixelcheck_page, pixelcheck_context, shop,
                                      fault):
    set_faults(pixelcheck_context, shop.url, fault)
    fill_checkout(pixelcheck_page, shop.url)
    journeys.double_submit(pixelcheck, pixelcheck_page)
    pixelcheck_page.wait_for_url("**/thanks/**")
    if fault is CLEAN:
        assert_exactly_once(pixelcheck, "Purchase")
    else:
        # the second click placed a second order: a second Purchase with its own id
        message = _fails_naming(pixelcheck, "double_submit", None)
        assert "server only" in message


@pytest.mark.parametrize("fault", [CLEAN, "slow_fallback_beacon"])
def test_slow_network_on_the_way_to_the_thank_you_page(
        pixelcheck, pixelcheck_page, pixelcheck_context, shop, fault):
    set_faults(pixelcheck_context, shop.url, fault)
    fill_checkout(pixelcheck_page, shop.url)
    with journeys.slow_network(pixelcheck, pixelcheck_page, latency_ms=1200):
        pixelcheck_page.click("#place-order")
        pixelcheck_page.wait_for_url("**/thanks/**")
    order_id = pixelcheck_page.inner_text("#order-id")
    if fault is CLEAN:
        assert_exactly_once(pixelcheck, "Purchase", key=order_id)
    else:
        _fails_naming(pixelcheck, "slow_network", order_id)


@pytest.mark.parametrize("fault", [CLEAN, "offline_resend_new_id"])
def test_offline_then_online_on_the_thank_you_page(pixelcheck, pixelcheck_page, run_checkout,
                                                   fault):
    order_id = run_checkout(faults=fault)
    pixelcheck.wait_for("Purchase", source="browser")
    journeys.offline_then_online(pixelcheck, pixelcheck_page, offline_seconds=0.5)
    if fault is CLEAN:
        assert_exactly_once(pixelcheck, "Purchase", key=order_id)
    else:
        _fails_naming(pixelcheck, "offline_then_online", order_id)
