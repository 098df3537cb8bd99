"""No repr, str or pytest assertion explanation of a pixelcheck object shows a token
or raw customer data: not the URL's access_token, not the Access-Token or
Authorization header, not the body, not user_data."""

from __future__ import annotations

import dataclasses
import pprint
import time

import pytest

from pytest_pixelcheck import (
    CapturedRequest,
    Customer,
    Event,
    EventStore,
    Finding,
    Pixelcheck,
    match_events,
)
from pytest_pixelcheck.harness import HarnessConfig
from pytest_pixelcheck.matching import SideDuplicate
from pytest_pixelcheck.platforms import ServerAnswer
from pytest_pixelcheck.proxy import TrafficEntry
from pytest_pixelcheck.redact import known_secrets, request_secrets
from pytest_pixelcheck.reprs import explain_comparison

pytest_plugins = ["pytester"]

# Never remembered by a sink in this process: they must be masked by their place alone.
URL_TOKEN = "EAAreprTOKENquery123"
HEADER_TOKEN = "TTreprHEADER456"
BEARER_TOKEN = "pinREPRbearer789"
EMAIL = "jane.doe@example.com"
SECRETS = (URL_TOKEN, HEADER_TOKEN, BEARER_TOKEN, EMAIL)


def _request(token: str = URL_TOKEN) -> CapturedRequest:
    body = (f'{{"data": [{{"event_name": "Purchase", "user_data": {{"em": "{EMAIL}"}}}}], '
            f'"access_token": "{token}"}}').encode()
    return CapturedRequest(
        "POST", f"https://graph.facebook.com/v21.0/1234567890/events?access_token={token}",
        [("Content-Type", "application/json"), ("Access-Token", HEADER_TOKEN),
         ("Authorization", f"Bearer {BEARER_TOKEN}")],
        body, time.time(), "sink", response_status=200)


def _events() -> list[Event]:
    now = time.time()
    raw = _request()
    return [
        Event("meta", "browser", "1234567890", "Purchase", "ORD-1", now, now,
              custom_data={"value": 12.5, "currency": "EUR"}),
        Event("meta", "server", "1234567890", "Purchase", "ORD-1", now, now + 0.1,
              user_data={"em": EMAIL, "client_user_agent": "Mozilla/5.0"},
              custom_data={"value": 12.5, "currency": "EUR"}, raw=raw),
    ]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in: {text}"


def test_every_object_reprs_without_secrets_and_stays_useful():
    browser, server = _events()
    raw = server.raw
    assert raw is not None
    assert URL_TOKEN not in known_secrets()  # masked by structure, not by memory
    result = match_events([browser, server])
    store = EventStore()
    capture = Pixelcheck(store, test_id=f"test_checkout[{EMAIL}]")  # a parametrized id
    store.add([browser, server])  # numbers them: seq 0 and 1
    finding = Finding("pii-in-clear", f"the server Purchase carries {EMAIL} in the clear",
                      "hash it", [server], [f"url: {raw.url}"])
    objects = [
        raw, server, browser, result, result.pairs[0], finding,
        SideDuplicate("server", ("1234567890", "Purchase", "ORD-1"), [server, server]),
        ServerAnswer([server], 200, {"events_received": 1}, "query", URL_TOKEN),
        TrafficEntry(time.time(), "POST", raw.url, raw.headers, raw.body, 200,
                     handled_by="sink"),
        HarnessConfig(access_token=URL_TOKEN, late_after=9.0),
        Customer(email=EMAIL),
        capture,
    ]
    for obj in objects:
        for text in (repr(obj), str(obj), pprint.pformat(obj), pprint.pformat([obj, obj])):
            _assert_clean(text)
    # short and useful
    assert repr(raw) == ("CapturedRequest(POST https://graph.facebook.com/v21.0/1234567890/"
                         "events?access_token=***redacted*** "
                         f"{len(raw.body)} bytes status=200 via sink)")
    assert repr(server) == ("Event(meta server Purchase id='ORD-1' pixel=1234567890 seq=1 "
                            "value=12.5 EUR user_data=[em, client_user_agent] status=200)")
    assert repr(result) == "MatchResult(1 pair of 2 events)"
    assert repr(result.pairs[0]) == "Pair(meta Purchase id='ORD-1' browser seq=0 server seq=1)"
    assert repr(finding).startswith("Finding(error pii-in-clear events=[1]: the server "
                                    "Purchase carries j***@example.com")
    assert "late_after=9.0" in repr(HarnessConfig(access_token=URL_TOKEN, late_after=9.0))
    assert "token in query" in repr(objects[7])
    assert repr(capture) == ("Pixelcheck(test='test_checkout[j***@example.com]', 2 events: "
                             "1 browser, 1 server)")


def test_an_event_id_or_error_quoting_pii_or_its_token_is_masked():
    # e.g. a decoder error quoting the request: its token is known by its place there
    now = time.time()
    event = Event("meta", "server", "1", "Lead", EMAIL, now, now, raw=_request(),
                  error=f"cannot decode the body sent with token {URL_TOKEN} for {EMAIL}")
    _assert_clean(repr(event))
    assert "error='cannot decode the body sent with token ***redacted*** for " \
           "j***@example.com'" in repr(event)


def test_no_pixelcheck_dataclass_keeps_a_generated_repr():
    """pprint and pytest print a dataclass field by field when its repr is generated."""
    for cls in (CapturedRequest, Event, Finding, ServerAnswer, TrafficEntry, HarnessConfig):
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.repr is False, cls  # type: ignore[attr-defined]
        assert cls.__repr__.__qualname__ == f"{cls.__name__}.__repr__"


def test_structural_secrets_of_a_request():
    found = request_secrets(_request().url, _request().headers, _request().body)
    assert {URL_TOKEN, HEADER_TOKEN, BEARER_TOKEN, f"Bearer {BEARER_TOKEN}"} <= found


def test_a_comparison_of_two_events_names_fields_not_their_values():
    server = _events()[1]
    other = dataclasses.replace(server, raw=_request("EAAotherTOKEN000"),
                                user_data={"em": "john.roe@example.org"})
    lines = explain_comparison("==", server, other, verbose=2)
    text = "\n".join(lines)
    _assert_clean(text)
    assert "EAAotherTOKEN000" not in text and "john.roe@example.org" not in text
    assert "Differing attributes: user_data, raw" in text
    assert "  user_data: {'em': 'j***@example.com'" in text


FAILING = '''
import dataclasses
import time
from pytest_pixelcheck import CapturedRequest, Event

def fabricated():
    raw = CapturedRequest(
        "POST",
        "https://graph.facebook.com/v21.0/1234567890/events?access_token=EAAsecretTOKEN123",
        [("Content-Type", "application/json"), ("Access-Token", "TTsecret456"),
         ("Authorization", "Bearer pinSECRET789")],
        b'{"data": [{"user_data": {"em": "jane.doe@example.com"}}]}', time.time(), "sink",
        response_status=200)
    now = time.time()
    return Event("meta", "server", "1234567890", "Purchase", "ORD-1", now, now,
                 user_data={"em": "jane.doe@example.com"}, raw=raw)

def other(event):
    raw = dataclasses.replace(event.raw, url=event.raw.url.replace("EAAsecret", "EAAother"),
                              headers=[("Authorization", "Bearer pinOTHER0001")])
    return dataclasses.replace(event, raw=raw, user_data={"em": "john.roe@example.org"})

def test_server_events_empty(pixelcheck):
    pixelcheck.store.add([fabricated()])
    assert pixelcheck.server_events == []

def test_raw_is_none(pixelcheck):
    pixelcheck.store.add([fabricated()])
    [event] = pixelcheck.server_events
    assert event.raw is None

def test_two_events_equal(pixelcheck):
    pixelcheck.store.add([fabricated()])
    [event] = pixelcheck.server_events
    assert event == other(event)

def test_two_requests_equal(pixelcheck):
    pixelcheck.store.add([fabricated()])
    [event] = pixelcheck.server_events
    assert event.raw == other(event).raw

def test_match_and_findings(pixelcheck):
    pixelcheck.store.add([fabricated()])
    assert pixelcheck.findings() == [] or pixelcheck.match().ok
'''


@pytest.mark.parametrize("verbosity", ["-vv", "-v"])
def test_failed_assertions_show_no_token_and_no_raw_email(pytester, verbosity):
    pytester.makepyfile(test_leak=FAILING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", verbosity)
    result.assert_outcomes(failed=5)
    out = result.stdout.str() + result.stderr.str()
    for secret in ("EAAsecretTOKEN123", "TTsecret456", "pinSECRET789", "jane.doe@example.com",
                   "EAAotherTOKEN123", "pinOTHER0001", "john.roe@example.org"):
        assert secret not in out, f"{secret} leaked"
    # the failures still say what they are about
    result.stdout.fnmatch_lines([
        "E  *assert [[]Event(meta server Purchase id='ORD-1' pixel=1234567890 seq=0 "
        "user_data=[[]em] status=200)] == [[]]*",
    ])
    result.stdout.fnmatch_lines([
        "E  *assert CapturedRequest(POST https://graph.facebook.com/v21.0/1234567890/"
        "events?access_token=***redacted*** * bytes status=200 via sink) is None",
    ])
    result.stdout.fnmatch_lines(["E  *Differing attributes: user_data, raw"])
    result.stdout.fnmatch_lines(["E  *Differing attributes: url, headers"])
    assert "MatchResult(0 pairs, 1 server-only of 1 event)" in out
