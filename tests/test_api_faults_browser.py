"""A sink that behaves like the real Conversions API, in real-browser checkouts:
wrong tokens, stale events, failed calls and how the backend retries, leaked
tokens and test event codes."""

from __future__ import annotations

import pytest
from conftest import SHOP_TOKEN

from pytest_pixelcheck import PixelcheckAssertionError, assert_deduplicated

pytestmark = pytest.mark.browser


def purchase_findings(pixelcheck, code):
    return [f for f in pixelcheck.findings() if f.code == code
            and any(e.event_name == "Purchase" for e in f.events)]


def settle_on(pixelcheck, code, timeout=8):
    """Wait until the finding shows up (the backend's retries take a moment)."""
    pixelcheck.wait_until(lambda events: bool(purchase_findings(pixelcheck, code)), timeout)
    found = purchase_findings(pixelcheck, code)
    assert found, pixelcheck.report()
    return found[0]


def test_wrong_token_is_answered_with_code_190(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.expect_token(SHOP_TOKEN)
    run_checkout(faults="wrong_token")
    finding = settle_on(pixelcheck, "server-call-rejected")
    assert any("the access token is not the one this test expects" in d
               for d in finding.details)
    server = [e for e in finding.events if e.source == "server"][0]
    assert server.raw.response_status == 400
    assert b'"code": 190' in server.raw.response_body
    with pytest.raises(PixelcheckAssertionError, match="server-call-rejected"):
        assert_deduplicated(pixelcheck, "Purchase", timeout=0.5)


def test_right_token_passes(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.expect_token(SHOP_TOKEN)
    run_checkout()
    assert_deduplicated(pixelcheck, "Purchase")


def test_stale_event_time_is_rejected_like_meta(pixelcheck, run_checkout):
    run_checkout(faults="stale_event_time")
    finding = settle_on(pixelcheck, "server-call-rejected")
    assert any("days old" in d for d in finding.details), finding.details
    server = [e for e in finding.events if e.source == "server"][0]
    assert b"2804003" in server.raw.response_body


def test_transient_error_never_retried(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.fail_next(1, kind="500", event_name="Purchase")
    run_checkout(faults="no_retry")
    # the server copy goes out when the order is placed, before the thank-you page:
    # wait for the browser copy too, so the finding can pair them
    pixelcheck.wait_for("Purchase", source="browser")
    finding = settle_on(pixelcheck, "transient-error-not-retried")
    assert {e.source for e in finding.events} == {"browser", "server"}
    assert "the browser copy has no server twin" in finding.message


def test_retry_with_the_same_id_gets_through(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.fail_next(1, kind="429", event_name="Purchase")
    run_checkout()
    settle_on(pixelcheck, "retried-after-error")
    assert_deduplicated(pixelcheck, "Purchase")


def test_retry_without_a_stable_id(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.fail_next(1, kind="transient", event_name="Purchase")
    run_checkout(faults="retry_new_id")
    finding = settle_on(pixelcheck, "server-retry-new-id")
    assert "and answered 500" in finding.message
    assert "the retry used a new id" in finding.message


def test_backend_gives_up_after_repeated_errors(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.fail_next(3, kind="500", event_name="Purchase")
    run_checkout()
    # the shop tries three times in all
    pixelcheck.wait_for("Purchase", source="server", count=3, timeout=8)
    finding = settle_on(pixelcheck, "server-gave-up")
    assert "failed 3 times" in finding.message
    assert [d.split(":")[0] for d in finding.details[:3]] == ["attempt 1", "attempt 2",
                                                              "attempt 3"]


def test_token_rendered_into_the_page_is_an_error(pixelcheck, run_checkout):
    run_checkout(faults="token_in_page")
    found = [f for f in pixelcheck.findings() if f.code == "exposed-access-token"]
    assert found, pixelcheck.report()
    # one finding per page that carried it, the thank-you page among them
    assert any("/thanks/" in f.message for f in found)
    assert all(SHOP_TOKEN not in f.message for f in found)
    assert SHOP_TOKEN not in pixelcheck.report()
    assert found[0].message.startswith("the server API access token appears in the response of GET http://127.0.0.1:")


def test_test_event_code_is_a_warning(pixelcheck, run_checkout):
    run_checkout(faults="test_event_code")
    pixelcheck.wait_for("Purchase", source="server")
    found = [f for f in pixelcheck.findings() if f.code == "test-event-code"]
    assert found and found[0].severity == "warning"
    assert "TEST12345" in found[0].message


def test_pixel_outside_the_allowlist(pixelcheck, run_checkout):
    pixelcheck.allowed_pixels = {"555"}
    run_checkout()
    found = [f for f in pixelcheck.findings() if f.code == "unexpected-pixel"]
    assert found and "meta tag 1234567890 at www.facebook.com fired" in found[0].message
    pixelcheck.allowed_pixels = {"1234567890", "www.facebook.com"}
    assert not [f for f in pixelcheck.findings() if f.code == "unexpected-pixel"]


def test_sink_counters_per_test(pixelcheck, pixelcheck_sink, run_checkout):
    pixelcheck_sink.fail_next(1, kind="500", event_name="Purchase")
    run_checkout()
    settle_on(pixelcheck, "retried-after-error")
    assert pixelcheck.sink_answers() == {"2xx": 8, "4xx": 0, "5xx": 1}
