"""TikTok: the browser Pixel (``ttq``, JSON beacons to analytics.tiktok.com) and the
Events API (2.0 ``/open_api/v1.3/event/track/``, legacy 1.0 ``/pixel/track/`` and
``/pixel/batch/`` on business-api.tiktok.com).

All of TikTok's wire facts live in this folder; FACTS.md says which are confirmed by
a real client or library and which are inferred from documentation.

Two TikTok habits shape this module:

* Errors come back with **HTTP 200** and the error in the body's ``code``
  (``{"code": 40105, "message": ..., "request_id": ..., "data": {}}``); TikTok's own
  SDK raises on ``code != 0``. Every event of a rejected call therefore carries
  ``extra["rejected_by_platform"]`` ("40105 Access token is incorrect...") so the
  core can tell it from an accepted one although the status is 2xx.
* Builds of the pixel map ``CompletePayment`` and ``Purchase`` onto each other, so
  the dedup key treats the two names as one conversion and ``name_variant`` says so.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from ...events import CapturedRequest, Event
from ...validation import Violation, validate
from ...wire import WireError, decompressed_body, json_body, path_of
from .. import CannedResponse, Platform, ServerAnswer, answer_json, stand_in_script
from . import identity
from .pii_rules import HASHED_KEYS, KEY_OF_FIELD, PII_RULES, hash_value, is_hashed, normalize

NAME = "tiktok"
HERE = Path(__file__).resolve().parent
API_HOST = "business-api.tiktok.com"
#: the pixel's collection hosts: the global one, the US data-residency one, and the
#: host the 2025 build posts EnrichIpv6 to (PLATFORMS.md 2b and 4)
COLLECTION_HOSTS = frozenset({"analytics.tiktok.com", "analytics.us.tiktok.com",
                              "analytics-ipv6.tiktokw.us"})
LIBRARY_HOSTS = frozenset({"analytics.tiktok.com", "analytics.us.tiktok.com"})
_COLLECTION_PATH = re.compile(r"^/api/v\d+/(?:pixel|track)(?:/(?P<sub>[A-Za-z_]+))?/?$")
#: the per-pixel loader the base code requests (sdk.js is the older name of it)
_LIBRARY_PATH = re.compile(r"^/i18n/pixel/(?:events|sdk)\.js$")
#: code the loader pulls in (static/main.<hash>.js, identify_<hash>.js, config)
_LIBRARY_PART = re.compile(r"^/i18n/pixel/.+\.js$")

V2_PATH = "/open_api/v1.3/event/track"
V1_TRACK_PATH = "/open_api/v1.3/pixel/track"
V1_BATCH_PATH = "/open_api/v1.3/pixel/batch"
SCHEMA_V2 = HERE / "schema_event_track.json"
SCHEMA_V1 = HERE / "schema_pixel_track.json"

MAX_EVENT_AGE_DAYS = 7  # unconfirmed for TikTok: see FACTS.md
MAX_BATCH = 1000

#: the two spellings builds of the pixel map onto each other (PLATFORMS.md 2b)
PURCHASE_NAMES = ("CompletePayment", "Purchase")
CANONICAL_NAME = {"Purchase": "CompletePayment"}
#: hits the pixel sends that are not conversions (lower case)
NOT_CONVERSIONS = {
    "pageview": "a page view (ttq.page()), not a conversion",
    "enricham": "the advanced-matching hit ttq.identify() sends, not a conversion",
    "enrichipv6": "the IPv6 enrichment hit of the 2025 pixel, not a conversion",
}

# TikTok's answer codes (the official SDK's tiktok_code.py)
OK = 0
PARAM_ERROR = 40002
INVALID_BATCH_SIZE = 40061
PII_NOT_HASHED = 40062
TOO_FREQUENT = 40100
TOKEN_EXPIRED = 40102
EMPTY_TOKEN = 40104
INVALID_TOKEN = 40105
SYSTEM_ERROR = 50000
SYSTEM_TIMEOUT = 50002
RETRYABLE_CODES = frozenset({TOO_FREQUENT, 40132, SYSTEM_ERROR, SYSTEM_TIMEOUT})

#: finding codes this platform adds, with (severity, title); ``findings.py`` registers
#: them with the core's catalogue when it is imported
FINDING_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "event-name-variant": ("warning", "browser and server use TikTok's two spellings of "
                                      "one event (CompletePayment / Purchase)"),
    **identity.IDENTITY_CODES,
}

#: the hashed keys the Events API refuses in the clear (40062); the other hashed keys
#: (external_id, names, zip) are only "should be hashed" in TikTok's texts
MUST_BE_HASHED = ("email", "phone", "phone_number")


def request_id() -> str:
    """Shaped like TikTok's: a UTC timestamp then hex."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(10).upper()


def envelope(code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """TikTok's answer body, for success and error alike."""
    return {"code": code, "message": message, "request_id": request_id(),
            "data": data if data is not None else {}}


def rejection_in(status: int | None, body: Any) -> str | None:
    """Why TikTok refused a call answered ``status`` / ``body``, or None when it took it:
    a non-2xx status, or HTTP 200 whose ``code`` is not 0 (TikTok's convention)."""
    code = body.get("code") if isinstance(body, dict) else None
    message = body.get("message") if isinstance(body, dict) else None
    if status is not None and not 200 <= status < 300:
        return f"HTTP {status}" + (f", {code} {message}" if code is not None else "")
    if code is None:
        return "answer without a code" if isinstance(body, dict) else None
    if code != OK:
        return f"{code} {message}"
    return None


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _id_text(value: Any) -> str | None:
    """An event id as sent: a non-empty string, or a number a page passed unquoted."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return _text(value)


def _iso_seconds(value: Any) -> float | None:
    """ISO-8601 (``2026-11-29T00:01:30.123Z``) or a number -> Unix seconds."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # TikTok reads a bare time as UTC
    return parsed.timestamp()


def _page_url(value: Any) -> str | None:
    """The pixel once sent ``context.page.url`` percent-encoded (OMNI's 2020 sample)."""
    text = _text(value)
    if text and re.match(r"^https?%3A", text, re.IGNORECASE):
        return unquote(text)
    return text


def canonical_name(name: str | None) -> str | None:
    return CANONICAL_NAME.get(name, name) if name is not None else None


class TikTok(Platform):
    name = NAME
    title = "TikTok"
    tag_name = "the TikTok Pixel (ttq)"
    api_name = "the Events API"
    server_hosts = frozenset({API_HOST})
    fault_kinds = ("500", "429", "transient", "expired_token", "timeout")
    secret_headers = frozenset({"access-token"})
    # TikTok takes the token only in the Access-Token header; these catch it where a
    # hand-written client misplaces it
    secret_params = frozenset({"access_token", "access-token"})
    max_event_age = MAX_EVENT_AGE_DAYS * 86400.0
    samples_dir = HERE / "samples"
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale; the server sample was recorded against another test pixel
    synthetic_sale = {"browser": "browser-completepayment.json",
                      "server": "server-2.0-event-track.json",
                      "server_same_shop": {"CPIXEL123": "CPIXEL0TIKTOK1234567",
                                           "E.C.P.testclickid123": "E.C.P.pixelcheckClick123",
                                           "2Xo1bQ8cTq7vXyZ0aBcDeFgHiJk":
                                               "exm5vvdWFL3MMJez8OduqGPDFlT"}}
    event_time_unit = "Unix seconds (data[].event_time)"
    #: TikTok's standard web events (the Pixel and Events API 2.0 share them)
    standard_events = (
        "AddPaymentInfo", "AddToCart", "AddToWishlist", "ApplicationApproval", "ClickButton",
        "CompletePayment", "CompleteRegistration", "Contact", "CustomizeProduct", "Download",
        "FindLocation", "InitiateCheckout", "Lead", "PlaceAnOrder", "Purchase", "Schedule",
        "Search", "StartTrial", "SubmitApplication", "SubmitForm", "Subscribe", "ViewContent",
    )
    #: finding codes this platform adds (``findings.py`` registers them when imported)
    finding_codes = FINDING_CODES

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        return host in COLLECTION_HOSTS and bool(_COLLECTION_PATH.match(path))

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        # The library reads a JSON envelope; sendBeacon ignores the answer anyway.
        body = json.dumps({"code": 0, "message": "OK", "data": {}}).encode()
        return CannedResponse(200, body, "application/json",
                              {"Access-Control-Allow-Origin": "*"})

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host not in LIBRARY_HOSTS:
            return None
        if _LIBRARY_PATH.match(path):
            script = stand_in_script(HERE / "events.js")
            return CannedResponse(200, script, "application/javascript; charset=utf-8")
        if _LIBRARY_PART.match(path):
            # the stand-in needs none of the code the real loader pulls in
            return CannedResponse(200, b"/* pixelcheck: TikTok pixel code not needed "
                                       b"offline */", "application/javascript")
        return None

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        match = _COLLECTION_PATH.match(path_of(request.url))
        sub = (match.group("sub") or "").lower() if match else ""
        try:
            payload = json_body(decompressed_body(request))
        except WireError as exc:
            event = self._browser_event(request)
            event.error = f"pixel hit body unreadable: {exc}"
            return [event]
        items: list[Any]
        if isinstance(payload, list):
            items = payload
        elif isinstance(payload, dict) and isinstance(payload.get("batch"), list):
            items = payload["batch"]
        else:
            items = [payload]
        if not items:
            event = self._browser_event(request)
            event.error = "pixel hit with an empty batch"
            return [event]
        return [self._browser_item(request, item, sub, payload) for item in items]

    def _browser_event(self, request: CapturedRequest) -> Event:
        return Event(platform=NAME, source="browser", pixel_id=None, event_name=None,
                     event_id=None, event_time=None, arrival_time=request.arrival_time,
                     raw=request)

    def _browser_item(self, request: CapturedRequest, item: Any, sub: str,
                      payload: Any) -> Event:
        event = self._browser_event(request)
        if not isinstance(item, dict):
            event.error = f"pixel hit body is a JSON {type(item).__name__}, not an object"
            return event
        outer = payload if isinstance(payload, dict) and payload is not item else {}
        context = item.get("context") if isinstance(item.get("context"), dict) else \
            (outer.get("context") if isinstance(outer.get("context"), dict) else {})
        name = item.get("event")
        event.event_name = name if isinstance(name, str) and name else None
        event.event_id = _id_text(item.get("event_id"))
        event.pixel_id = _text(_dig(context, "pixel", "code")) or _text(item.get("pixel_code")) \
            or _text(outer.get("pixel_code"))
        event.event_time_raw = item.get("timestamp")
        event.event_time = _iso_seconds(item.get("timestamp"))
        event.page_url = _page_url(_dig(context, "page", "url"))
        properties = item.get("properties")
        event.custom_data = properties if isinstance(properties, dict) else {}
        user = context.get("user")
        event.user_data = user if isinstance(user, dict) else {}
        event.extra = {
            "api": "pixel",
            "path": path_of(request.url),
            "message_id": item.get("message_id"),
            "referrer": _text(_dig(context, "page", "referrer")),
            # the _ttp cookie: context.user.anonymous_id in the stand-in (as in the real
            # builds' payloads we know of); other spellings are read too
            "ttp": _text(event.user_data.get("anonymous_id")) or
                   _text(event.user_data.get("ttp")) or _text(item.get("_ttp")),
            "ttclid": _text(_dig(context, "ad", "callback")) or
                      _text(event.user_data.get("ttclid")),
            "user_agent": _text(context.get("userAgent")) or request.header("user-agent"),
            "library": context.get("library"),
        }
        if "event_id" in event.custom_data and event.event_id is None:
            # a common slip: ttq.track(NAME, {..., event_id}) instead of the 3rd argument
            event.extra["event_id_in_properties"] = event.custom_data.get("event_id")
        reason = NOT_CONVERSIONS.get((event.event_name or "").lower())
        if reason is None and sub == "act" and event.event_id is None:
            reason = "an /api/v2/pixel/act interaction hit without an event id, not a conversion"
        if reason is not None:
            # Kept as an event (the proxy's traffic keeps the bytes too), never paired.
            event.extra["not_a_conversion"] = reason
            return event
        missing = [label for label, value in (("`event`", event.event_name),
                                              ("`context.pixel.code`", event.pixel_id))
                   if not value]
        if missing:
            event.error = (f"pixel hit without {' and '.join(missing)} (a malformed or "
                           "truncated beacon)")
        return event

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host != API_HOST and host not in ("127.0.0.1", "localhost"):
            return False
        return path.rstrip("/") in (V2_PATH, V1_TRACK_PATH, V1_BATCH_PATH)

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        path = path_of(request.url).rstrip("/")
        token = request.header("access-token")
        token_location = "header" if token is not None else None
        try:
            payload = json_body(decompressed_body(request))
        except WireError as exc:
            return self._unreadable(request, f"Events API body unreadable: {exc}",
                                    token, token_location)
        if not isinstance(payload, dict):
            return self._unreadable(
                request, f"Events API body is a JSON {type(payload).__name__}, not an object",
                token, token_location)

        if path == V2_PATH:
            events = self._v2_events(payload, request)
            schema, items_key = SCHEMA_V2, "data"
        else:
            events = self._v1_events(payload, request, batch=path == V1_BATCH_PATH)
            schema, items_key = SCHEMA_V1, "batch" if path == V1_BATCH_PATH else None
        if not events:
            # an empty batch still leaves a trace: the call happened and was refused
            pixel = _text(payload.get("event_source_id")) or _text(payload.get("pixel_code"))
            empty = self._server_event(request, pixel, 0, "events-2.0" if path == V2_PATH
                                       else "events-1.0")
            empty.error = f"`{items_key}` is an empty array: the call carried no event"
            events = [empty]

        def answer(code: int, message: str, violations: list[Any] | None = None
                   ) -> ServerAnswer:
            for event in events:
                event.extra["rejected_by_platform"] = f"{code} {message}"
                event.extra.setdefault("rejection", []).append(f"{code} {message}")
            return ServerAnswer(events, 200, envelope(code, message), token_location,
                                token, violations or [])

        # Authentication comes before the body, as at any API gateway. A body read
        # back from a backend's log never shows its header: nothing to check there.
        if request.channel != "log" and (not token or not token.strip()):
            hint = (" (the token goes in the Access-Token header, not Authorization)"
                    if request.header("authorization") else "")
            return answer(EMPTY_TOKEN, "Access token is null, you should set it in http "
                                       f"header.{hint}")
        items = payload.get(items_key) if items_key else None
        if isinstance(items, list) and len(items) > MAX_BATCH:
            return answer(INVALID_BATCH_SIZE,
                          f"Invalid batch size: {items_key} has {len(items)} events, at most "
                          f"{MAX_BATCH} are allowed per request")
        violations = validate(schema, payload)
        if violations:
            first = violations[0]
            return answer(PARAM_ERROR, self._param_message(first), violations)
        unhashed = self._unhashed(payload, path)
        if unhashed:
            where = ", ".join(unhashed[:3])
            return answer(PII_NOT_HASHED,
                          f"PII not hashed: {where} must be SHA-256 hashed (64 hex "
                          "characters) before sending")
        stale = self._too_old(events)
        if stale:
            # TikTok's code and text for a stale event_time are unconfirmed (FACTS.md)
            return answer(PARAM_ERROR, stale[0])
        bad = [e for e in events if e.error]
        if bad:
            return answer(PARAM_ERROR, f"Invalid parameters: {bad[0].error}")
        return ServerAnswer(events, 200, envelope(OK, "OK"), token_location, token)

    @staticmethod
    def _param_message(violation: Violation) -> str:
        return f"Invalid value for {violation.path or 'the request body'}: {violation.reason}"

    def _unreadable(self, request: CapturedRequest, reason: str, token: str | None,
                    token_location: str | None) -> ServerAnswer:
        event = Event(NAME, "server", None, None, None, None, request.arrival_time,
                      raw=request, error=reason)
        message = f"Invalid request body: {reason}"
        event.extra["rejected_by_platform"] = f"{PARAM_ERROR} {message}"
        return ServerAnswer([event], 200, envelope(PARAM_ERROR, message), token_location, token)

    def _server_event(self, request: CapturedRequest, pixel_id: str | None, index: int,
                      api: str) -> Event:
        event = Event(NAME, "server", pixel_id, None, None, None, request.arrival_time,
                      raw=request)
        event.extra = {"index": index, "api": api}
        return event

    def _v2_events(self, payload: dict[str, Any], request: CapturedRequest) -> list[Event]:
        pixel_id = _text(payload.get("event_source_id"))
        data = payload.get("data")
        if not isinstance(data, list):
            return [self._server_event(request, pixel_id, 0, "events-2.0")]
        events = []
        for index, item in enumerate(data):
            event = self._server_event(request, pixel_id, index, "events-2.0")
            events.append(event)
            if not isinstance(item, dict):
                event.error = f"data[{index}] is a {type(item).__name__}, not an event object"
                continue
            name = item.get("event")
            event.event_name = name if isinstance(name, str) and name else None
            event_id = item.get("event_id")
            event.event_id = str(event_id) if event_id not in (None, "") else None
            event.event_time_raw = item.get("event_time")
            raw_time = item.get("event_time")
            event.event_time = float(raw_time) if isinstance(raw_time, (int, float)) and \
                not isinstance(raw_time, bool) else None
            user = item.get("user")
            event.user_data = user if isinstance(user, dict) else {}
            properties = item.get("properties")
            event.custom_data = properties if isinstance(properties, dict) else {}
            event.page_url = _text(_dig(item, "page", "url"))
            event.extra.update({
                "event_source": payload.get("event_source"),
                "test_event_code": payload.get("test_event_code"),
                "partner_name": payload.get("partner_name"),
                "limited_data_use": item.get("limited_data_use"),
                "referrer": _text(_dig(item, "page", "referrer")),
                "ttp": _text(event.user_data.get("ttp")),
                "ttclid": _text(event.user_data.get("ttclid")),
                "ip": _text(event.user_data.get("ip")),
                "user_agent": _text(event.user_data.get("user_agent")),
            })
            if event.event_name is None:
                event.error = f"data[{index}] has no event name (`event`)"
        return events

    def _v1_events(self, payload: dict[str, Any], request: CapturedRequest, *,
                   batch: bool) -> list[Event]:
        pixel_id = _text(payload.get("pixel_code"))
        items = payload.get("batch") if batch else [payload]
        if not isinstance(items, list):
            return [self._server_event(request, pixel_id, 0, "events-1.0")]
        events = []
        for index, item in enumerate(items):
            event = self._server_event(request, pixel_id, index, "events-1.0")
            events.append(event)
            where = f"batch[{index}]" if batch else "the body"
            if not isinstance(item, dict):
                event.error = f"{where} is a {type(item).__name__}, not an event object"
                continue
            context = item.get("context") if isinstance(item.get("context"), dict) else {}
            name = item.get("event")
            event.event_name = name if isinstance(name, str) and name else None
            event_id = item.get("event_id")
            event.event_id = str(event_id) if event_id not in (None, "") else None
            event.event_time_raw = item.get("timestamp")
            event.event_time = _iso_seconds(item.get("timestamp"))
            user = context.get("user")
            event.user_data = user if isinstance(user, dict) else {}
            properties = item.get("properties")
            event.custom_data = properties if isinstance(properties, dict) else {}
            event.page_url = _page_url(_dig(context, "page", "url"))
            event.extra.update({
                "test_event_code": payload.get("test_event_code") or item.get("test_event_code"),
                "partner_name": payload.get("partner_name"),
                "referrer": _text(_dig(context, "page", "referrer")),
                "ttp": _text(event.user_data.get("ttp")),
                "ttclid": _text(_dig(context, "ad", "callback")),
                "ip": _text(context.get("ip")),
                "user_agent": _text(context.get("user_agent")),
            })
            if event.event_name is None:
                event.error = f"{where} has no event name (`event`)"
        return events

    @staticmethod
    def _unhashed(payload: dict[str, Any], path: str) -> list[str]:
        """Paths of email/phone values that are not 64-hex digests (never the values:
        they are customer data and the answer lands in reports)."""
        found: list[str] = []
        if path == V2_PATH:
            rows = [(f"data[{i}].user", _dig(item, "user"))
                    for i, item in enumerate(payload.get("data") or [])]
        elif path == V1_BATCH_PATH:
            rows = [(f"batch[{i}].context.user", _dig(item, "context", "user"))
                    for i, item in enumerate(payload.get("batch") or [])]
        else:
            rows = [("context.user", _dig(payload, "context", "user"))]
        for where, user in rows:
            if not isinstance(user, dict):
                continue
            for field in MUST_BE_HASHED:
                value = user.get(field)
                values = value if isinstance(value, list) else [value]
                for n, one in enumerate(values):
                    if one in (None, "") or is_hashed(one):
                        continue
                    suffix = f"[{n}]" if isinstance(value, list) else ""
                    found.append(f"{where}.{field}{suffix}")
        return found

    @staticmethod
    def _too_old(events: list[Event]) -> list[str]:
        out = []
        for event in events:
            if event.event_time is None or event.event_time > 1e11:
                continue  # milliseconds: the core's event-time-in-milliseconds says so
            age = event.arrival_time - event.event_time
            if age > MAX_EVENT_AGE_DAYS * 86400:
                field = "event_time" if event.extra.get("api") == "events-2.0" else "timestamp"
                index = event.extra.get("index", 0)
                where = f"data[{index}].{field}" if field == "event_time" else field
                out.append(f"Invalid value for {where}: {event.event_time_raw} is "
                           f"{age / 86400:.1f} days old; events must be reported within "
                           f"{MAX_EVENT_AGE_DAYS} days")
        return out

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 200, envelope(PARAM_ERROR, f"Invalid request body: {reason}")

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        # TikTok answers errors with HTTP 200 and the code in the body; only "500"
        # stands for a failure in front of the API (a gateway), which is a real 5xx.
        if kind == "missing_token":
            return 200, envelope(EMPTY_TOKEN,
                                 "Access token is null, you should set it in http header.")
        if kind == "invalid_token":
            return 200, envelope(INVALID_TOKEN, "Access token is incorrect or has been revoked.")
        if kind == "expired_token":
            return 200, envelope(TOKEN_EXPIRED, "Access token has expired.")
        if kind == "429":
            return 200, envelope(TOO_FREQUENT, "Request too frequent. Please retry later.")
        if kind == "transient":
            return 200, envelope(SYSTEM_ERROR, "System error. Please retry later.")
        if kind == "timeout":
            return 200, envelope(SYSTEM_TIMEOUT, "System timeout. Please retry later.")
        return 500, envelope(SYSTEM_ERROR, "System error. Please retry later.")

    def is_transient(self, event: Event) -> bool:
        if super().is_transient(event):
            return True
        body = answer_json(event)
        return body is not None and body.get("code") in RETRYABLE_CODES

    def answer_text(self, event: Event) -> str:
        body = answer_json(event)
        if body is None or "code" not in body:
            return super().answer_text(event)
        return f"{body.get('message')} (code {body.get('code')})"

    def test_event_code(self, event: Event) -> str | None:
        value = event.extra.get("test_event_code")
        return str(value) if value else None

    # --- dedup ------------------------------------------------------------------------

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if not event.event_id or event.event_name is None or \
                event.extra.get("not_a_conversion"):
            return None
        return (event.pixel_id, canonical_name(event.event_name), event.event_id)

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_rule(self) -> str:
        return ("TikTok merges a pixel event and an Events API event when pixel code "
                "(context.pixel.code = event_source_id), event and event_id are equal; "
                "pixel and API copies within 48 h merge")

    def deduplicates(self, event_name: str | None) -> bool:
        return (event_name or "").lower() not in NOT_CONVERSIONS

    def name_variant(self, browser_name: str | None, server_name: str | None) -> str | None:
        if browser_name != server_name and {browser_name, server_name} == set(PURCHASE_NAMES):
            return (f"TikTok's tag sent {browser_name!r} and the Events API {server_name!r}: "
                    "builds of the pixel map one to the other and TikTok counts them as one "
                    "conversion, but reports and optimization split them; use one name on "
                    "both sides")
        return None

    def journey_identity(self, event: Event) -> dict[str, str | None]:
        return {"_ttp": event.extra.get("ttp"), "ttclid": event.extra.get("ttclid")}

    def fix(self, code: str, event: Event | None = None) -> str | None:
        source = event.source if event is not None else None
        name = (event.event_name if event is not None else None) or "NAME"
        if code == "missing-event-id":
            if source == "browser":
                hint = ""
                if event is not None and event.extra.get("event_id_in_properties") is not None:
                    hint = (" (this hit has event_id inside the properties, where TikTok does "
                            "not read it)")
                return (f"pass the id as the 3rd argument: ttq.track('{name}', {{...}}, "
                        "{event_id: ID}), the same ID the server sends as data[].event_id"
                        f"{hint}. Without it TikTok can only fall back to the _ttp cookie, "
                        "which merges far less reliably")
            return ("send data[].event_id in the Events API call (event_id at the top level "
                    "in 1.0), the same value as the pixel's {event_id: ID}. Without it TikTok "
                    "falls back to the _ttp cookie (user.ttp), which merges far less reliably")
        if code == "side-not-isolated":
            if source == "server":
                return ("switch the Events API calls off too: pixelcheck_sink.refuse('tiktok'), "
                        "or the backend's own switch for its POST /open_api/v1.3/event/track/ "
                        "calls")
            return ("switch the TikTok Pixel off too: pixelcheck.block_browser('tiktok') drops "
                    "its analytics.tiktok.com hits, or an ad blocker hides "
                    "analytics.tiktok.com/i18n/pixel/events.js")
        if code == "server-event-without-consent":
            return ("for a visitor without consent send no Events API event (pixelcheck knows "
                    "no TikTok limited-use field to accept in its place)")
        if code == "not-fired-after-consent":
            return (f"when the visitor accepts, call ttq.grantConsent() and run the "
                    f"ttq.track('{name}', ...) calls the page held, not only on the next page")
        if code == "route-without-pageview":
            return ("call ttq.page() on every route change of the single-page app (the "
                    "router's after-navigation hook), once")
        if code == "tracked-before-consent":
            return ("hold the pixel until the visitor accepts: ttq.holdConsent() before "
                    "ttq.load(), ttq.grantConsent() on accept (ttq.revokeConsent() on deny)")
        if code == "click-id-lost":
            return ("keep ttclid and the _ttp cookie across every hop (send the shopper back "
                    "to the host they came on) and send them as user.ttp and "
                    "context.ad.callback / user.ttclid in the Events API call")
        if code == "blocked-not-covered":
            return (f"send {name} from the backend too (POST /open_api/v1.3/event/track/ with "
                    "the pixel's event_id), so visitors whose blocker hides the pixel count")
        if code == "counted-more-than-once":
            return (f"fire ttq.track('{name}', {{...}}, {{event_id: ID}}) once per order, or "
                    "with the same event_id on every view (the Events API's data[].event_id): "
                    "TikTok counts each new event_id as another conversion")
        if code == "near-miss-event-id":
            return ("use one id on both sides, byte for byte: the {event_id: ID} of "
                    f"ttq.track('{name}', {{...}}, {{event_id: ID}}) and data[].event_id of "
                    "the Events API call; build it once (e.g. from the order id) and hand it "
                    "to the page")
        if code == "event-name-mismatch":
            return ("use one event name on both sides: ttq.track('NAME', ...) and data[].event "
                    "must be equal and are case-sensitive (TikTok's standard names: "
                    "ViewContent, AddToCart, InitiateCheckout, CompletePayment, PlaceAnOrder)")
        if code == "wrong-pixel":
            return ("send the Events API call with event_source_id (pixel_code in 1.0) equal to "
                    "the pixel code the page loads with ttq.load('CODE')")
        if code == "server-event-missing":
            return (f"send {name} from the backend too (POST /open_api/v1.3/event/track/ with "
                    "the same event and event_id as the pixel), or stop expecting it")
        if code == "browser-event-missing":
            return (f"fire ttq.track('{name}', {{...}}, {{event_id: ID}}) on the page, with the "
                    "ID the backend sends as data[].event_id")
        if code == "raw-pii-in-user-data":
            return ("send user.email and user.phone as SHA-256 hex of the normalized value "
                    "(email trimmed and lowercased; phone E.164 with the '+', e.g. "
                    "+16505551234); TikTok refuses clear values with code 40062. In the "
                    "browser pass raw values to ttq.identify({email, phone_number}): the pixel "
                    "hashes them")
        if code == "test-event-code":
            return ("remove test_event_code (top level of the Events API body) outside a test "
                    "session: TikTok shows those events in Test Events only, they never count")
        if code == "server-call-rejected":
            return ("read the answer's code and message: TikTok answers errors with HTTP 200 and "
                    "a non-zero code (40002 a parameter, 40062 unhashed email/phone, 40104/"
                    "40105 the Access-Token header); a client must check code, not the status")
        return None

    # --- customer data ----------------------------------------------------------------

    #: email, phone, external_id, first/last name and zip travel as SHA-256 hex;
    #: city, state and country travel plain (pii_rules.PII_RULES)
    hashed_keys = frozenset(HASHED_KEYS)
    customer_fields = {field: key for field, key in KEY_OF_FIELD.items()
                       if key not in ("ttp", "ttclid", "ip", "user_agent")}
    digest_rule = staticmethod(hash_value)

    def normalize_customer(self, key: str, raw: str, country: str | None) -> str | None:
        return normalize(key, raw) if key in PII_RULES else None

    def identity_findings(self, pair: Any) -> list[Any]:
        return identity.identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        from .findings import tiktok_findings

        return tiktok_findings(result)

    # --- backend logs -----------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Events API body: 2.0 (``event_source_id`` + ``data``) or 1.0
        (``pixel_code`` + ``event`` or ``batch``), plus optional ``url`` and ``time``."""
        if isinstance(record.get("data"), list) and "event_source_id" in record:
            path = V2_PATH
        elif "pixel_code" in record and isinstance(record.get("batch"), list):
            path = V1_BATCH_PATH
        elif "pixel_code" in record and "event" in record:
            path = V1_TRACK_PATH
        else:
            return None
        url = record.get("url") or f"https://{API_HOST}{path}/"
        body = {k: v for k, v in record.items() if k not in ("url", "time")}
        when = record.get("time")
        if not isinstance(when, (int, float)):
            items = body.get("data") or body.get("batch") or [body]
            times = [_iso_seconds(i.get("event_time", i.get("timestamp")))
                     for i in items if isinstance(i, dict)]
            when = next((t for t in times if t is not None), 0.0)
        return CapturedRequest("POST", url, [("Content-Type", "application/json")],
                               json.dumps(body).encode(), float(when), "log",
                               original_host=API_HOST, response_status=200)


TIKTOK = TikTok()
