"""Matching and diagnosis on synthetic and recorded events (pure logic, no browser)."""

from __future__ import annotations

import itertools

import pytest
from recorded import recorded

from pytest_pixelcheck import platforms
from pytest_pixelcheck.diagnosis import DiagnosisSettings, diagnose, explain_id_difference
from pytest_pixelcheck.events import CapturedRequest, Event, EventStore
from pytest_pixelcheck.matching import match_events, settled
from pytest_pixelcheck.report import events_table, shorten

NOW = 1_790_000_000.0
_seq = itertools.count()


def ev(source, name, eid, *, at=0.0, pixel="1", value=None, order=None, status=200,
       event_time=None, **custom):
    data = dict(custom)
    if value is not None:
        data["value"] = value
    if order is not None:
        data["order_id"] = order
    raw = CapturedRequest("POST" if source == "server" else "GET", "https://x/", [], b"",
                          NOW + at, "sink", response_status=status)
    event = Event("meta", source, pixel, name, eid,
                  NOW + at if event_time is None else event_time, NOW + at,
                  custom_data=data, raw=raw)
    event.seq = next(_seq)
    return event


def codes(events, **settings):
    return [f.code for f in diagnose(match_events(events), DiagnosisSettings(**settings))]


def test_empty_capture():
    result = match_events([])
    assert result.ok and result.pairs == [] and result.stats() == {}
    assert diagnose(result) == []
    assert events_table(result) == "  (no events captured)"
    assert not settled([])


def test_many_events_with_the_same_name_pair_by_id():
    events = [ev("browser", "PageView", f"pv{i}", at=i) for i in range(5)]
    events += [ev("server", "PageView", f"pv{i}", at=4 - i + 0.1) for i in range(5)]
    result = match_events(events)
    assert len(result.pairs) == 5 and result.ok
    assert all(p.browser.event_id == p.server.event_id for p in result.pairs)
    assert result.rate("PageView") == 1.0


def test_interleaved_orders_pair_independently():
    events = [ev("browser", "Purchase", "o1", at=0, value=10, order="o1"),
              ev("browser", "Purchase", "o2", at=0.1, value=20, order="o2"),
              ev("server", "Purchase", "o2", at=0.2, value=20, order="o2"),
              ev("server", "Purchase", "o1", at=0.3, value=10, order="o1")]
    result = match_events(events)
    assert sorted(p.browser.event_id for p in result.pairs) == ["o1", "o2"]
    assert codes(events) == []


def test_one_side_only_and_rates():
    events = [ev("browser", "Purchase", "o1"), ev("server", "Purchase", "o1"),
              ev("browser", "Purchase", "o2"), ev("server", "Lead", "l1")]
    result = match_events(events)
    stats = result.stats()
    assert stats[("meta", "Purchase")].dedup_rate == 0.5
    assert stats[("meta", "Lead")].server_only == 1
    assert sorted(codes(events)) == ["browser-event-missing", "server-event-missing"]


def test_same_side_copies_are_duplicates_not_pairs():
    events = [ev("browser", "Purchase", "o1", at=0), ev("browser", "Purchase", "o1", at=1),
              ev("server", "Purchase", "o1", at=0.5)]
    result = match_events(events)
    assert len(result.pairs) == 1 and len(result.duplicates) == 1
    assert codes(events) == ["duplicate-browser-trigger"]


def test_rejected_server_copy_does_not_count():
    events = [ev("browser", "Purchase", "o1"), ev("server", "Purchase", "o1", status=400)]
    result = match_events(events)
    assert result.pairs == [] and len(result.rejected) == 1
    [finding] = diagnose(result)
    assert finding.code == "server-call-rejected"
    assert "the browser copy has no server twin" in finding.message
    assert [e.source for e in finding.events] == ["browser", "server"]


@pytest.mark.parametrize("statuses, expected", [
    ([500, 200], "retried-after-error"),
    ([429, 503, 200], "retried-after-error"),
    ([500], "transient-error-not-retried"),
    ([500, 500, 500], "server-gave-up"),
    ([400, 400], "server-call-rejected"),
])
def test_what_happened_to_failed_server_calls(statuses, expected):
    events = [ev("browser", "Purchase", "o1")]
    events += [ev("server", "Purchase", "o1", at=0.1 * (i + 1), status=s)
               for i, s in enumerate(statuses)]
    found = diagnose(match_events(events))
    assert [f.code for f in found] == [expected]
    assert found[0].details or expected == "retried-after-error"


def test_retry_with_new_id_after_an_error():
    events = [ev("browser", "Purchase", "o1", value=5, order="o1"),
              ev("server", "Purchase", "o1", at=0.1, value=5, order="o1", status=500),
              ev("server", "Purchase", "o1-b", at=0.3, value=5, order="o1")]
    [finding] = diagnose(match_events(events))
    assert finding.code == "server-retry-new-id"
    assert "first sent as 'o1' and answered 500" in finding.message
    assert [e.event_id for e in finding.events] == ["o1", "o1", "o1-b"]


def test_exact_bytes_whitespace_and_case_do_not_match():
    events = [ev("browser", "Purchase", "A1"), ev("server", "Purchase", "a1 ")]
    assert match_events(events).pairs == []
    assert codes(events) == ["near-miss-event-id"]


@pytest.mark.parametrize("browser_id, server_id, expected", [
    ("12345", "12345-server", "the server id has the extra suffix '-server'"),
    ("12345", "srv-12345", "the server id has the extra prefix 'srv-'"),
    ("order-1-web", "order-1", "the browser id has the extra suffix '-web'"),
    ("ORD-1", "ord-1", "they differ only in letter case"),
    ("ORD-1", " ORD-1", "whitespace (server has leading whitespace)"),
    ("ORD-1", "ORD-1\n", "whitespace (server has trailing whitespace)"),
    ("purchase.ORD-1001", "purchase.ORD-1002", "they first differ at character 17"),
    ("abc", "xyz", None),
    ("pv.1a2b3c", "pv.9f8e7d", None),
])
def test_near_miss_explanations(browser_id, server_id, expected):
    text = explain_id_difference(browser_id, server_id)
    if expected is None:
        assert text is None
    else:
        assert expected in text


def test_name_mismatch_with_same_id_is_not_also_reported_missing():
    events = [ev("browser", "Lead", "x1"), ev("server", "CompleteRegistration", "x1")]
    found = diagnose(match_events(events))
    assert [f.code for f in found] == ["event-name-mismatch"]
    assert "'Lead'" in found[0].message and "'CompleteRegistration'" in found[0].message


def test_missing_ids_point_at_the_counterpart():
    events = [ev("browser", "Purchase", "o1"), ev("server", "Purchase", None)]
    [finding] = diagnose(match_events(events))
    assert finding.code == "missing-event-id"
    assert "the server Purchase has no event id" in finding.message
    assert finding.details == ["the browser Purchase has id 'o1'"]


def test_wrong_pixel():
    events = [ev("browser", "Purchase", "o1", pixel="1"),
              ev("server", "Purchase", "o1", pixel="2")]
    assert codes(events) == ["wrong-pixel"]


def test_retry_with_new_id_is_told_apart_from_a_second_order():
    retry = [ev("browser", "Purchase", "o1", value=5, order="o1"),
             ev("server", "Purchase", "o1", at=0.1, value=5, order="o1"),
             ev("server", "Purchase", "o1-retry", at=0.3, value=5, order="o1")]
    assert codes(retry) == ["server-retry-new-id"]
    retry_first = [retry[0], retry[2], retry[1]]  # a second worker sent the copy first
    retry[2].arrival_time, retry[1].arrival_time = NOW + 0.05, NOW + 0.3
    assert codes(retry_first) == ["server-retry-new-id"]
    both_unpaired = [retry[1], retry[2]]
    assert sorted(codes(both_unpaired)) == ["browser-event-missing", "server-retry-new-id"]
    second_order = retry[:2] + [ev("server", "Purchase", "o2", at=0.3, value=7, order="o2")]
    assert codes(second_order) == ["browser-event-missing"]


def test_without_an_order_id_two_customers_are_two_conversions_not_a_retry():
    """LinkedIn's payload carries no order id: two sales of the same thing at the same
    price differ only in the customer. A suffixed id beside them is a near miss, and
    the other sale is no 'retry' of it; the same customer sent twice still is one."""
    def sale(source, eid, email, at, pixel="1"):
        event = ev(source, "Purchase", eid, at=at, value=25, pixel=pixel)
        event.user_data = {"em": email} if source == "server" else {}
        return event

    first = [sale("browser", "o1", "a", 0), sale("server", "o1", "a", 0.1)]
    suffixed = [sale("browser", "o2", "b", 60), sale("server", "o2-server", "b", 60.1)]
    blocked = [sale("server", "o3", "c", 120.1)]  # its pixel was blocked in the browser
    assert sorted(codes(first + suffixed + blocked)) == ["browser-event-missing",
                                                         "near-miss-event-id"]
    resent = first + [sale("server", "o1-retry", "a", 0.3)]
    assert codes(resent) == ["server-retry-new-id"]


def test_a_side_that_names_no_pixel_still_gets_its_near_miss():
    """LinkedIn's API call names the conversion, not the Insight Tag's partner id."""
    events = [ev("browser", "Purchase", "o1", pixel="5550001"),
              ev("server", "Purchase", "o1-server", pixel=None)]
    assert codes(events) == ["near-miss-event-id"]


def test_reused_id_within_a_test_and_across_tests():
    within = [ev("browser", "Purchase", "p1", order="o1"),
              ev("browser", "Purchase", "p1", at=1, order="o2"),
              ev("server", "Purchase", "p1", order="o1")]
    assert codes(within) == ["reused-event-id"]
    earlier = ev("browser", "Purchase", "p1", order="o0")
    earlier.test_id = "test_a"
    now = [ev("browser", "Purchase", "p1", order="o9"), ev("server", "Purchase", "p1")]
    for event in now:
        event.test_id = "test_b"
    found = diagnose(match_events(now), earlier_events=[earlier])
    assert [f.code for f in found] == ["reused-event-id"]
    assert "already used in test_a" in found[0].message


@pytest.mark.parametrize("delay, expected", [(0.2, []), (5.0, ["server-event-late"]),
                                             (-2.0, ["server-before-browser"]),
                                             (-0.5, [])])
def test_timing_thresholds(delay, expected):
    events = [ev("browser", "Purchase", "o1", at=10), ev("server", "Purchase", "o1",
                                                         at=10 + delay)]
    assert codes(events, late_after=3, race_tolerance=1) == expected


@pytest.mark.parametrize("event_time, expected", [
    (NOW - 8 * 86400, "event-time-too-old"),
    (NOW + 3600, "event-time-in-future"),
    (NOW * 1000, "event-time-in-milliseconds"),
])
def test_event_time_checks(event_time, expected):
    events = [ev("browser", "Purchase", "o1"),
              ev("server", "Purchase", "o1", event_time=event_time)]
    assert codes(events) == [expected]


def test_payload_disagreement_compares_numbers_and_ids_loosely():
    same = [ev("browser", "Purchase", "o1", value="25", currency="usd",
               content_ids=["b", "a"]),
            ev("server", "Purchase", "o1", value=25.0, currency="USD", content_ids=["a", "b"])]
    assert codes(same) == []
    differ = [ev("browser", "Purchase", "o1", value="25", currency="USD"),
              ev("server", "Purchase", "o1", value=26, currency="EUR")]
    [finding] = diagnose(match_events(differ))
    assert finding.code == "payload-mismatch" and finding.severity == "warning"
    assert finding.details == ["value: browser '25' / server 26",
                               "currency: browser 'USD' / server 'EUR'"]


def test_undecodable_events_from_recorded_requests_are_findings():
    meta = platforms.get("meta")
    events = meta.decode_browser(recorded("meta/browser_get_missing_ev"))
    events += meta.handle_server(recorded("meta/server_truncated_json")).events
    for i, event in enumerate(events):
        event.seq = i
    found = diagnose(match_events(events))
    assert [f.code for f in found].count("undecodable-request") == 2
    assert any("not valid JSON" in f.message for f in found)


def test_recorded_pair_matches():
    meta = platforms.get("meta")
    [browser] = meta.decode_browser(recorded("meta/browser_get_purchase_advanced_matching"))
    [server] = meta.handle_server(recorded("meta/server_json_purchase")).events
    browser.seq, server.seq = 0, 1
    result = match_events([browser, server])
    assert len(result.pairs) == 1
    assert [f.code for f in diagnose(result)] in ([], ["server-before-browser"],
                                                  ["server-event-late"])


def test_shorten_keeps_both_ends():
    assert shorten("purchase.ORD-1001-server", 12) == "purch…server"
    assert shorten("abcdefghij", 5) == "ab…ij"
    assert shorten("short", 10) == "short"
    assert shorten(None, 3) == "-"


def test_store_wait_until_wakes_on_arrival():
    import threading

    store = EventStore()
    mark = store.mark()
    timer = threading.Timer(0.05, lambda: store.add([ev("browser", "Lead", "l")]))
    timer.start()
    assert store.wait_until(lambda events: len(events) == 1, mark, timeout=5)
    assert not store.wait_until(lambda events: len(events) == 2, mark, timeout=0.05)


def test_late_server_call_of_an_earlier_test_is_set_aside():
    from pytest_pixelcheck.capture import Pixelcheck

    store = EventStore()
    store.current_test = "test_a"
    store.add([ev("browser", "Purchase", "o1"), ev("server", "Purchase", "o1", status=500)])
    store.current_test = "test_b"
    later = Pixelcheck(store, test_id="test_b")
    store.add([ev("server", "Purchase", "o1", at=2),  # test_a's backend still retrying
               ev("browser", "Lead", "l1", at=2), ev("server", "Lead", "l1", at=2)])
    assert [e.event_name for e in later.events] == ["Lead", "Lead"]
    assert [f.code for f in later.findings()] == ["late-from-earlier-test"]
    # server-only ids that no earlier browser fired stay in the test that got them
    store.add([ev("server", "Signup", "s1", at=3)])
    store.current_test = "test_c"
    third = Pixelcheck(store, test_id="test_c")
    store.add([ev("server", "Signup", "s1", at=4)])
    assert [e.event_name for e in third.events] == ["Signup"]


def test_refused_proxy_certificate_is_reported_but_early_closes_are_not():
    from pytest_pixelcheck.safety import untrusted_proxy

    found = untrusted_proxy([
        ("www.facebook.com", "connection closed early"),
        ("www.facebook.com", "The client does not trust the proxy's certificate for "
                             "www.facebook.com (sslv3 alert bad certificate)"),
        ("www.facebook.com", "The client disconnected during the handshake. If this happens "
                             "consistently for www.facebook.com, this may indicate that the "
                             "client does not trust the proxy's certificate."),
    ])
    assert [f.code for f in found] == ["proxy-not-trusted"]
    assert "www.facebook.com" in found[0].message


def test_a_thousand_sales_each_side_settle_and_diagnose_without_comparing_all_pairs():
    """Near misses come from an index (normalised ids, nearest same-named neighbours in
    time), so unmatched events cost a bounded number of comparisons each, never one per
    unmatched pair (a million here)."""
    from pytest_pixelcheck.nearmiss import COMPARISONS, NEIGHBOURS

    n = 1000
    events = [ev("browser", "Purchase", f"ORD-{i}", at=i * 0.5, value=i, order=f"o{i}")
              for i in range(n)]
    # half the backend's ids carry a suffix; the other half are unrelated to the tag's
    events += [ev("server", "Purchase", f"ORD-{i}-server" if i % 2 else f"txn{i * 7919}",
                  at=i * 0.5 + 0.2, value=i, order=f"o{i}") for i in range(n)]
    before = COMPARISONS.comparisons
    assert not settled(events)
    findings = diagnose(match_events(events))
    compared = COMPARISONS.comparisons - before
    near = [f for f in findings if f.code == "near-miss-event-id"]
    assert len(near) == n // 2
    assert all("extra suffix '-server'" in f.message for f in near)
    assert sum(f.code == "server-event-missing" for f in findings) == n // 2
    assert sum(f.code == "browser-event-missing" for f in findings) == n // 2
    assert compared <= n * (2 * NEIGHBOURS + 2), compared


def test_an_undecodable_server_call_explains_one_nearby_browser_event_not_all():
    """In production logs one unreadable call is not the missing twin of every sale of
    the day: the browser event near it in time claims it, the others are missing."""
    near = ev("browser", "Purchase", "o1", at=0)
    far = ev("browser", "Purchase", "o2", at=7200)
    broken = Event("meta", "server", "1", None, None, None, NOW + 1.0,
                   raw=CapturedRequest("POST", "https://x/", [], b"{", NOW + 1.0, "sink",
                                       response_status=400),
                   error="Conversions API body unreadable: body is not valid JSON")
    broken.seq = next(_seq)
    findings = diagnose(match_events([near, far, broken]))
    by_code = {f.code: f for f in findings if f.code.startswith("server-event")}
    assert by_code["server-event-undecodable"].events[0] is near
    assert by_code["server-event-missing"].events == [far]
