"""Every fault the example shop can reproduce, in a real browser, yields its finding.

One running shop serves the clean flow and every fault: the fault is a cookie
of the test's own browser context.
"""

from __future__ import annotations

import pytest

from pytest_pixelcheck import (
    PixelcheckAssertionError,
    assert_deduplicated,
    assert_no_duplicate_triggers,
)
from pytest_pixelcheck.findings import CATALOGUE

pytestmark = pytest.mark.browser

# fault -> the finding code it must produce; the finding must involve Purchase
DEDUP_FAULTS = {
    "id_suffix": "near-miss-event-id",
    "id_case": "near-miss-event-id",
    "id_whitespace": "near-miss-event-id",
    "name_case": "event-name-mismatch",
    "name_alias": "event-name-mismatch",
    "server_no_event_id": "missing-event-id",
    "browser_no_event_id": "missing-event-id",
    "double_browser_purchase": "duplicate-browser-trigger",
    "server_retry_same_id": "duplicate-server-send",
    "server_retry_new_id": "server-retry-new-id",
    "no_browser_purchase": "browser-event-missing",
    "no_server_purchase": "server-event-missing",
    "server_delay:5": "server-event-late",
    "browser_late:3": "server-before-browser",
    "stale_event_time": "event-time-too-old",
    "future_event_time": "event-time-in-future",
    "event_time_ms": "event-time-in-milliseconds",
    "value_mismatch": "payload-mismatch",
    "currency_mismatch": "payload-mismatch",
    "content_ids_mismatch": "payload-mismatch",
    "wrong_pixel": "wrong-pixel",
}

# findings that need both copies of the purchase in view
PAIR_CODES = {"near-miss-event-id", "event-name-mismatch", "wrong-pixel",
              "server-event-late", "server-before-browser", "payload-mismatch"}


def _purchase_findings(pixelcheck, code):
    return [f for f in pixelcheck.findings() if f.code == code
            and any((e.event_name or "").lower() in ("purchase", "subscribe") for e in f.events)]


@pytest.mark.parametrize("fault, code", DEDUP_FAULTS.items(), ids=list(DEDUP_FAULTS))
def test_fault_yields_its_finding(pixelcheck, run_checkout, fault, code):
    order_id = run_checkout(faults=fault)
    if code in ("server-event-missing", "browser-event-missing"):
        # absence can only be shown by waiting; give the missing copy its chance
        pixelcheck.wait_until(lambda events: False, 2)
    else:
        # wait for the evidence itself (a late copy, a retry) instead of sleeping
        timeout = 10 if fault.startswith(("server_delay", "browser_late")) else 5
        pixelcheck.wait_until(lambda events: bool(_purchase_findings(pixelcheck, code)),
                              timeout)
    found = _purchase_findings(pixelcheck, code)
    assert found, f"{fault}: no {code} finding.\n{pixelcheck.report()}"
    finding = found[0]
    sources = {e.source for e in finding.events}
    if code in PAIR_CODES:
        assert sources == {"browser", "server"}, finding
    assert finding.fix and finding.message
    if code in ("near-miss-event-id", "missing-event-id", "duplicate-browser-trigger",
                "server-event-missing"):
        assert any(order_id in (e.event_id or "") or order_id in str(e.custom_data)
                   for e in finding.events)

    severity = CATALOGUE[code][0]
    if severity == "error":
        with pytest.raises(PixelcheckAssertionError) as failure:
            assert_deduplicated(pixelcheck, "Purchase", timeout=0.5)
        assert code in [f.code for f in failure.value.findings]
    else:
        assert_deduplicated(pixelcheck, "Purchase", timeout=0.5)
        with pytest.raises(PixelcheckAssertionError):
            assert_deduplicated(pixelcheck, "Purchase", timeout=0.5, fail_on="warning")


def test_hardcoded_event_id_across_two_orders(pixelcheck, run_checkout):
    first = run_checkout(faults="hardcoded_event_id")
    second = run_checkout(faults="hardcoded_event_id", sku="sku-2")
    assert first != second
    pixelcheck.wait_for("Purchase", source="server", count=2)
    found = [f for f in pixelcheck.findings() if f.code == "reused-event-id"]
    assert found, pixelcheck.report()
    orders = {e.custom_data.get("order_id") for f in found for e in f.events}
    assert {first, second} <= orders
    with pytest.raises(PixelcheckAssertionError, match="reused-event-id"):
        assert_deduplicated(pixelcheck, "Purchase", timeout=0.5)


def test_clean_flow_has_no_error_and_no_warning(pixelcheck, run_checkout):
    run_checkout()
    assert_deduplicated(pixelcheck, fail_on="warning")
    assert pixelcheck.findings() == []


def test_assert_no_duplicate_triggers(pixelcheck, run_checkout):
    run_checkout(faults="double_browser_purchase")
    pixelcheck.wait_for("Purchase", source="browser", count=2)
    with pytest.raises(PixelcheckAssertionError) as failure:
        assert_no_duplicate_triggers(pixelcheck, "Purchase")
    message = " ".join(str(failure.value).split())
    assert "[duplicate-browser-trigger] browser fired Purchase" in message
    assert "2 times" in message and "trigger bound twice" in message
    # the server side sent it once: checking the server side passes
    assert_no_duplicate_triggers(pixelcheck, "Purchase", source="server")
    assert_no_duplicate_triggers(pixelcheck, "PageView")
