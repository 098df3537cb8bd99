"""Pure logic behind the journeys: counting conversions per platform, the hop that lost
a click id, and consent timelines (the browser tests drive them for real)."""

from __future__ import annotations

from pytest_pixelcheck.consent import ConsentStep, consent_findings
from pytest_pixelcheck.crossdomain import _hop, lost_identities
from pytest_pixelcheck.events import CapturedRequest, Event
from pytest_pixelcheck.exactly_once import carries_key, count_conversions
from pytest_pixelcheck.matching import match_events


def _event(source, event_id, *, seq, status=200, name="Purchase", platform="meta", **extra):
    raw = CapturedRequest("POST", "https://graph.facebook.com/v21.0/1/events", [], b"", 0.0,
                          "sink", response_status=status if source == "server" else None)
    event = Event(platform, source, "1", name, event_id, 1.0, float(seq), raw=raw,
                  custom_data={"order_id": "ORD-1"}, extra=dict(extra))
    event.seq = seq
    return event


def test_copies_sharing_an_id_are_one_conversion_and_a_new_id_is_another():
    events = [_event("browser", "purchase.ORD-1", seq=0), _event("server", "purchase.ORD-1", seq=1),
              _event("browser", "purchase.ORD-1", seq=2),  # a re-fire with the same id
              _event("browser", "purchase.abc", seq=3)]     # a re-fire with a fresh id
    counted = count_conversions(events, "Purchase", key="ORD-1")
    assert [len(c.events) for c in counted["meta"]] == [3, 1]
    assert [c.sides for c in counted["meta"]] == ["browser + server", "browser only"]


def test_a_refused_or_blocked_copy_counts_nothing():
    events = [_event("server", "purchase.ORD-1", seq=0, status=500),
              _event("browser", "purchase.ORD-1", seq=1, blocked="pixelcheck.block_browser")]
    assert count_conversions(events, "Purchase") == {"meta": []}


def test_key_matches_the_id_or_an_order_field():
    assert carries_key(_event("browser", "purchase.ORD-1", seq=0), "ORD-1")
    assert carries_key(_event("browser", "purchase.abc", seq=0), "ORD-1")  # custom_data
    assert not carries_key(_event("browser", "purchase.abc", seq=0), "ORD-2")


def test_the_hop_is_the_navigation_into_the_host_that_lost_it():
    routes = ["http://127.0.0.1:1/product", "http://127.0.0.1:1/checkout",
              "http://localhost:2/pay?order=1", "http://localhost:1/payment/return",
              "http://localhost:1/thanks/ORD-1"]
    assert _hop(routes, "http://127.0.0.1:1/checkout", "http://localhost:1/thanks/ORD-1") == \
        "localhost:2/pay -> localhost:1/payment/return"


def test_a_changed_fbp_is_named_lost_with_the_hop():
    first = _event("browser", "pageview.1", seq=0, name="PageView", fbp="fb.1.1.1")
    first.page_url = "http://127.0.0.1:1/product"
    later = _event("browser", "purchase.ORD-1", seq=1, fbp="fb.1.2.2")
    later.page_url = "http://localhost:1/thanks/ORD-1"
    [finding] = lost_identities([first, later], [first.page_url, later.page_url])
    assert finding.code == "click-id-lost"
    assert "meta _fbp was replaced on the hop 127.0.0.1:1/product -> localhost:1/thanks" in \
        finding.message


def test_every_server_copy_that_lost_it_is_named_in_one_finding():
    """The thank-you page's PageView and Purchase both lost the cookie; which of the two
    reaches the sink first is a race, so the finding names both, in arrival order."""
    first = _event("browser", "pageview.1", seq=0, name="PageView", fbp="fb.1.1.1")
    first.page_url = "http://127.0.0.1:1/product"
    copies = [_event("server", "pageview.2", seq=1, name="PageView"),
              _event("server", "purchase.ORD-1", seq=2)]
    for copy in copies:
        copy.page_url = "http://localhost:1/thanks/ORD-1"
    [finding] = lost_identities([first, *copies], [first.page_url, copies[0].page_url])
    assert finding.message.startswith(
        "server PageView id='pageview.2' (and Purchase id='purchase.ORD-1') carries no "
        "_fbp, which the journey's pages had (127.0.0.1:1/product had it)"), finding.message
    assert finding.events == [first, *copies]


def test_without_a_consent_answer_nothing_is_judged():
    events = [_event("browser", "purchase.ORD-1", seq=0)]
    assert consent_findings(match_events(events), [], [], []) == []


def test_a_denial_makes_hits_findings_and_missing_browser_twins_moot():
    steps = [ConsentStep(False, 0, 0)]
    hit = _event("browser", "pageview.1", seq=1, name="PageView")
    server = _event("server", "purchase.ORD-1", seq=2, data_processing_options=["LDU"])
    found = consent_findings(match_events([hit, server]), [], steps, [])
    assert [f.code for f in found] == ["tracked-before-consent"]
    assert "after the visitor denied consent" in found[0].message
