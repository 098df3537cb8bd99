"""Pinterest's words for the fixes: the pintrk call and the Conversions API field to
change, for the core's finding codes (``Pinterest.fix``) and Pinterest's own findings."""

from __future__ import annotations

from typing import Any

from ...events import Event
from .. import answer_json

API_CALL = ("POST https://api.pinterest.com/v5/ad_accounts/<ad_account_id>/events with "
            "'Authorization: Bearer <conversion access token>'")
NAMES = ("the tag spells the events checkout, pagevisit, addtocart; the Conversions API "
         "checkout, page_visit, add_to_cart (Pinterest maps each tag name to its API name "
         "and nothing else)")
NORMALIZE = ("email trimmed and lowercased; phone digits only with the country code, no '+', "
             "spaces or leading zeros (16505551212); names lowercase; city lowercase without "
             "spaces or punctuation; state the two-letter code and country the ISO code, "
             "lowercase; zip digits only")


def _names(event: Event | None) -> tuple[str, str]:
    """(the tag's spelling, the API's) of the event a finding is about."""
    from .platform import API_TO_TAG, TAG_TO_API, squash

    name = event.event_name if event is not None and event.event_name else "checkout"
    api = TAG_TO_API.get(squash(name), name)
    return API_TO_TAG.get(api, squash(name) or name), api


def _answer(event: Event | None) -> dict[str, Any]:
    """The platform's answer body to this event's call ({} when there is none)."""
    return answer_json(event) or {}


def fix_text(code: str, event: Event | None = None) -> str | None:
    """The fix for a finding ``code`` in Pinterest's terms, or None for the core's text."""
    tag, api = _names(event)
    source = event.source if event is not None else None
    if code == "missing-event-id":
        if source == "server":
            return (f"send data[].event_id in the Conversions API call ({API_CALL}), the same "
                    f"value the page passes as {{event_id: ID}} to pintrk('track', '{tag}', "
                    "...); Pinterest refuses an event without it (400)")
        hint = ""
        if event is not None and event.extra.get("event_id_under"):
            hint = (f" (this hit has the id under {event.extra['event_id_under']!r}, where "
                    "Pinterest does not read it)")
        return (f"put the id in the event data: pintrk('track', '{tag}', {{event_id: ID, "
                f"...}}); the tag sends it inside `ed`, and the backend sends the same ID as "
                f"data[].event_id{hint}")
    if code in ("near-miss-event-id", "reused-event-id", "server-retry-new-id"):
        return (f"use one id on both sides, byte for byte: the event_id of pintrk('track', "
                f"'{tag}', {{event_id: ID, ...}}) and data[].event_id of the Conversions API "
                "call; build it once per conversion (e.g. from the order id) and hand it to the "
                "page")
    if code == "event-name-mismatch":
        return (f"send the tag's spelling from the page and the API's from the backend: {NAMES}"
                f"; here pintrk('track', '{tag}', ...) and data[].event_name '{api}'")
    if code == "wrong-pixel":
        return ("send the Conversions API call to the ad account that owns the tag the page "
                "loads with pintrk('load', TAG_ID)")
    if code == "server-event-missing":
        return (f"send {api} from the backend too ({API_CALL}, data[].event_name '{api}' and "
                "the tag's event_id), or stop expecting it")
    if code == "browser-event-missing":
        return (f"fire pintrk('track', '{tag}', {{event_id: ID, ...}}) on the page, after the "
                "base code's pintrk('load', TAG_ID), with the ID the backend sends as "
                "data[].event_id")
    if code == "raw-pii-in-user-data":
        return ("send user_data.em (and ph, fn, ln, ct, st, zp, country, external_id) as "
                f"arrays of SHA-256 hex of the normalized value: {NORMALIZE}. In the page give "
                "the raw email to pintrk('load', TAG_ID, {em: EMAIL}): the tag hashes it")
    if code == "unnormalized-hash":
        return f"normalize the way Pinterest documents it before hashing: {NORMALIZE}"
    if code == "cross-channel-hash-mismatch":
        return ("hash one normalized value on both sides: the tag hashes the email given to "
                "pintrk('load', TAG_ID, {em}) trimmed and lowercased, so the backend's "
                "user_data.em must be the SHA-256 of that same string")
    if code == "test-event-code":
        return ("drop ?test=true from the Conversions API URL outside a test session: Pinterest "
                "answers as usual but records none of these events")
    if code == "server-call-rejected":
        body = _answer(event)
        status = event.raw.response_status if event is not None and event.raw else None
        if status == 401:
            return ("send the conversion access token from Ads Manager as 'Authorization: "
                    "Bearer <token>' (Pinterest answers 401 code 2 'Authentication failed.' "
                    "to a missing, wrong or expired token, and reads no other place)")
        if status == 422:
            return ("fix what details.events[].error_message says for each failed event "
                    "(unhashed user_data, an event_time older than 7 days); the other events "
                    "of the call were processed")
        if status == 400 or body.get("code") == 4196:
            return ("fix the field the 400 'Invalid request: ...' names: data[] needs "
                    "event_name, action_source, event_time (Unix seconds), event_id and "
                    "user_data; custom_data.value is a string ('25.00') and custom_data allows "
                    "no other keys than Pinterest's")
        return ("read the answer's code and message (400 code 4196 names the field, 401 code 2 "
                "is the token, 422 lists each event's error_message) and make the backend log "
                "and act on non-2xx answers")
    if code == "event-time-too-old":
        return ("set data[].event_time to when the conversion happened, in Unix seconds, and "
                "send it within 7 days; do not replay stale events")
    if code == "event-time-in-milliseconds":
        return "data[].event_time is Unix seconds: int(time.time()), not milliseconds"
    if code == "event-time-in-future":
        return "data[].event_time must be in the past: use the server's UTC clock"
    if code == "counted-more-than-once":
        return (f"fire pintrk('track', '{tag}', {{event_id: ID, ...}}) once per order, or with "
                "the same event_id on every view (the Conversions API's data[].event_id): "
                "Pinterest counts each new event_id as another conversion")
    if code == "duplicate-browser-trigger":
        return (f"fire pintrk('track', '{tag}', ...) once per conversion: look for the event "
                "code on the page twice, a tag manager trigger bound twice, or a thank-you page "
                "that re-fires on reload")
    if code == "duplicate-server-send":
        return ("send each event once; a retry after an error must keep the same "
                "data[].event_id so Pinterest drops the copy")
    if code == "payload-mismatch":
        return ("build the tag's event data (value, currency, line_items) and the API's "
                "custom_data (value as a string, currency, content_ids) from the same order "
                "record")
    if code == "undecodable-request":
        if source == "server":
            return (f"fix the body of the Conversions API call: {API_CALL} and a JSON body "
                    "{\"data\": [{event_name, action_source, event_time, event_id, user_data, "
                    "custom_data}]}")
        return ("check the code that fires this hit: a Pinterest Tag hit needs event and tid, "
                "and ed/pd/ad must be JSON (a hand-built URL or a truncated hit)")
    if code == "side-not-isolated":
        if source == "server":
            return ("switch the Pinterest Conversions API calls off too: "
                    "pixelcheck_sink.refuse('pinterest'), or the backend's own switch for its "
                    "/v5/ad_accounts/<ad_account_id>/events calls")
        return ("switch the Pinterest Tag off too: pixelcheck.block_browser('pinterest') drops "
                "its ct.pinterest.com hits, or an ad blocker hides s.pinimg.com/ct/core.js")
    if code == "blocked-not-covered":
        return (f"send {api} from the backend too ({API_CALL}) with data[].event_id equal to "
                f"the event_id of pintrk('track', '{tag}', ...): visitors whose blocker hides "
                "the Pinterest Tag are then still counted")
    if code == "tracked-before-consent":
        return ("hold the Pinterest Tag until the visitor accepts: let the consent banner load "
                "https://s.pinimg.com/ct/core.js and run pintrk('load', ...), pintrk('page') "
                "and pintrk('track', ...) only on accept")
    if code == "server-event-without-consent":
        return ("for a visitor without consent send custom_data.opt_out_type: 'LDP' (Limited "
                "Data Processing) or opt_out: true with the Conversions API event, or send "
                "nothing")
    if code == "not-fired-after-consent":
        return (f"when the visitor accepts, run the pintrk('track', '{tag}', ...) calls the "
                "page held (the banner's accept callback must load core.js and fire them), "
                "not only on the next page")
    if code == "click-id-lost":
        return ("keep the epik click id (the _epik cookie) across every hop: send the shopper "
                "back to the host they came on, and read it from that request (or the order) "
                "into user_data.click_id of the Conversions API call, unhashed")
    if code == "route-without-pageview":
        return ("call pintrk('page') on every route change of the single-page app (the "
                "router's after-navigation hook), once: the tag's pagevisit is the "
                "Conversions API's page_visit")
    return None
