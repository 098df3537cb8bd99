"""The Conversions API JSON Schema on payloads kept in fixtures/meta/payloads."""

from __future__ import annotations

import json
import time

import pytest
from recorded import FIXTURES

from pytest_pixelcheck import platforms
from pytest_pixelcheck.events import CapturedRequest
from pytest_pixelcheck.platforms.meta.platform import SCHEMA
from pytest_pixelcheck.validation import validate

PAYLOADS = FIXTURES / "meta" / "payloads"


def payload(name):
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("valid_*.json")))
def test_valid_payloads_pass(name):
    assert validate(SCHEMA, payload(name)) == []


@pytest.mark.parametrize("name, expected", [
    ("invalid_missing_action_source", ["data[0].action_source: missing (required)"]),
    ("invalid_website_without_source_url", ["data[0].event_source_url: missing (required)"]),
    ("invalid_website_without_user_agent",
     ["data[0].user_data.client_user_agent: missing (required)"]),
    ("invalid_wrong_types", ['data[0].custom_data.value: must be number or string, got dict '
                             '{"amount": 25}',
                             'data[0].event_time: must be integer, got str '
                             '"2026-11-28T10:00:00Z"']),
    ("invalid_action_source_value", ['data[0].action_source: "web" is not one of website, '
                                     'email, app, phone_call, chat, physical_store, '
                                     'system_generated, business_messaging, other']),
    ("invalid_data_not_array", ["data: must be array, got dict"]),
    ("invalid_empty_user_data", [
        "data[0].user_data: is empty; send at least one customer information parameter",
        "data[0].user_data.client_user_agent: missing (required)"]),
])
def test_invalid_payloads_name_the_field_and_the_reason(name, expected):
    found = [str(v) for v in validate(SCHEMA, payload(name))]
    for line in expected:
        assert any(f.startswith(line) for f in found), (line, found)


def test_more_than_1000_events():
    event = payload("valid_website_purchase")["data"][0]
    found = [str(v) for v in validate(SCHEMA, {"data": [event] * 1001})]
    assert found == ["data: has 1001 items, at most 1000 allowed"]


def _call(body):
    return CapturedRequest("POST", "http://127.0.0.1:1/v21.0/1234567890/events?access_token=t",
                           [("Content-Type", "application/json")],
                           json.dumps(body).encode(), time.time(), "sink")


def test_the_sink_answers_violations_like_meta():
    body = payload("invalid_missing_action_source")
    body["data"][0]["event_time"] = int(time.time())
    answer = platforms.get("meta").handle_server(_call(body))
    assert answer.status == 400
    error = answer.body["error"]
    assert error["code"] == 100 and error["type"] == "OAuthException"
    assert "data[0].action_source: missing (required)" in error["message"]
    # the batch is rejected as a whole; events keep the reason for the finding
    assert answer.events[0].extra["rejection"] == ["data[0].action_source: missing (required)"]


def test_stale_event_time_gets_subcode_2804003():
    body = payload("valid_website_purchase")
    body["data"][0]["event_time"] = int(time.time()) - 8 * 86400
    answer = platforms.get("meta").handle_server(_call(body))
    assert answer.status == 400
    assert answer.body["error"]["error_subcode"] == 2804003
    assert answer.body["error"]["error_user_title"] == "Event Timestamp Too Old"
    assert "8.0 days old" in answer.events[0].extra["rejection"][0]
