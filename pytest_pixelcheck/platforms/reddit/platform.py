"""Reddit: the Reddit Pixel (``rdt``, image GETs to ``alb.reddit.com/rp.gif``) and the
Conversions API on ads-api.reddit.com: v3 ``POST /api/v3/pixels/{pixel_id}/conversion_events``
and the older v2.0 ``POST /api/v2.0/conversions/events/{account_id}`` (deprecated, not
sunset).

All of Reddit's wire facts live in this folder; FACTS.md says which were seen with
Reddit's own pixel.js and which are inferred from documentation or third-party code.

Three Reddit habits shape this module:

* **The pixel hashes the conversion id.** ``m.conversionId`` on the wire is the SHA-256
  hex of the id the page passed (``m.transactionId`` too). Reddit takes a server
  ``conversion_id`` plain or hashed, so both sides are compared in the hashed form:
  ``Event.event_id`` is that form on both sides (a 64-hex value as sent, anything else
  hashed here), and the value as sent stays in ``extra["conversion_id"]``.
* **One event type, three spellings.** The pixel says ``Purchase``, v3 ``PURCHASE``, v2.0
  ``Purchase``; custom events are ``Custom`` / ``CUSTOM`` plus a case-sensitive
  ``custom_event_name``. Every event is named by the pixel's spelling (a custom event by
  its custom name) and keyed by type, so the three meet.
* **One bad event fails the call.** An invalid event gets HTTP 400 ``{"message": "There
  were N invalid conversion events. None were processed.", "invalid_events":
  [{"error_message", "event_index"}]}`` and nothing of the call counts. Reddit has been
  seen listing ``invalid_events`` inside a 2xx answer as well; a recorded 2xx answer
  that does so marks those events ``extra["rejected_by_platform"]``.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote

from ...events import CapturedRequest, Event
from ...validation import Violation, validate
from ...wire import (
    WireError,
    decompressed_body,
    form_params,
    json_body,
    loads,
    path_of,
    query_params,
)
from .. import CannedResponse, Platform, ServerAnswer, stand_in_script
from . import identity
from .pii_rules import HASHED_KEYS, KEY_OF_FIELD, hash_value, is_hashed, sha256_hex

NAME = "reddit"
HERE = Path(__file__).resolve().parent
API_HOST = "ads-api.reddit.com"
#: the pixel's collection hit (PLATFORMS.md 2b: seen with three builds of pixel.js)
COLLECTION_HOST = "alb.reddit.com"
COLLECTION_PATH = "/rp.gif"
#: the library the base code loads, and the two configs it fetches (2b)
LIBRARY_HOST = "www.redditstatic.com"
LIBRARY_PATH = "/ads/pixel.js"
CONFIG_HOST = "pixel-config.reddit.com"
_CONFIG_PATH = re.compile(r"^/pixels/[^/]+/config/?$")
_TELEMETRY_PREFIX = "/ads/conversions-config/"

V3_PATH = re.compile(r"^/api/v3/pixels/(?P<pixel>[^/]+)/conversion_events/?$")
V2_PATH = re.compile(r"^/api/v2\.0/conversions/events/(?P<pixel>[^/]+)/?$")
SCHEMA_V3 = HERE / "schema_v3.json"
SCHEMA_V2 = HERE / "schema_v2.json"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: "event_at timestamp must be less than 168h0m0s old" / "not more than 5 minutes in
#: the future" (RudderStack's copy of Reddit's answer, and its own client-side check)
MAX_EVENT_AGE_HOURS = 168
MAX_FUTURE_MINUTES = 5
#: "1,000 events/request" (Reddit's v3 docs as captured by Segment)
MAX_BATCH = 1000

#: Reddit's event types in the pixel's (and v2.0's) spelling
STANDARD_EVENTS = ("PageVisit", "ViewContent", "Search", "AddToCart", "AddToWishlist", "Lead",
                   "Purchase", "SignUp", "Custom")
_BY_FOLDED = {name.lower(): name for name in STANDARD_EVENTS}
#: the pixel's spelling -> v3's UPPER_SNAKE_CASE
V3_TYPES = {"PageVisit": "PAGE_VISIT", "ViewContent": "VIEW_CONTENT", "Search": "SEARCH",
            "AddToCart": "ADD_TO_CART", "AddToWishlist": "ADD_TO_WISHLIST", "Lead": "LEAD",
            "Purchase": "PURCHASE", "SignUp": "SIGN_UP", "Custom": "CUSTOM"}

OK_MESSAGE = "Successfully processed {n} conversion events."
INVALID_MESSAGE = "There were {n} invalid conversion events. None were processed."
TOO_OLD = f"event_at timestamp must be less than {MAX_EVENT_AGE_HOURS}h0m0s old"
TOO_NEW = f"event_at timestamp must not be more than {MAX_FUTURE_MINUTES} minutes in the future"
NO_BEARER = "No bearer token provided"
NOT_AUTHORIZED = ("This server could not verify that you are authorized to access the "
                  "document you requested.")
UNAVAILABLE = "The service is currently unavailable. No conversion events were processed."

Severity = Literal["error", "warning", "info"]
#: finding codes this platform adds, (severity, title); ``findings.py`` registers them
FINDING_CODES: dict[str, tuple[Severity, str]] = {
    "reddit-conversion-id-hashed-twice": ("error", "one side sends the SHA-256 of an already "
                                                   "hashed conversion id"),
    "reddit-conversion-id-hash-form": ("warning", "the pixel sent the conversion id in the "
                                                  "clear and the server its SHA-256"),
    **identity.IDENTITY_CODES,
}


def canonical_type(name: Any) -> str | None:
    """``PURCHASE``, ``Purchase``, ``purchase``, ``ADD_TO_CART`` -> the pixel's spelling
    (``Purchase``, ``AddToCart``); None for a name that is no Reddit type."""
    if not isinstance(name, str):
        return None
    return _BY_FOLDED.get(re.sub(r"[\s_-]", "", name).lower())


def v3_type(name: Any) -> str | None:
    canonical = canonical_type(name)
    return V3_TYPES.get(canonical) if canonical else None


def type_key(event: Event) -> tuple[Any, ...]:
    """What must be equal besides the id: the type, and for custom events the name."""
    tracking = event.extra.get("tracking_type") or event.event_name
    custom = event.extra.get("custom_event_name") if tracking == "Custom" else None
    return (tracking, custom)


def conversion_key(value: Any) -> tuple[str | None, str | None, str | None]:
    """(hashed form, as sent, "hashed" | "plain") of a conversion id; Nones when absent.

    A 64-hex value is taken as already hashed (Reddit: "may be hashed (SHA-256) or
    unhashed"; the pixel always hashes); anything else is hashed exactly as sent.
    """
    if isinstance(value, bool) or value is None:
        return None, None, None
    text = str(value) if isinstance(value, (int, float)) else value
    if not isinstance(text, str) or text == "":
        return None, None, None
    if is_hashed(text):
        return text.strip().lower(), text, "hashed"
    return sha256_hex(text), text, "plain"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _rfc3339_seconds(value: Any) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _products(value: Any) -> Any:
    """``m.products`` is JSON text on the wire; the API sends a list."""
    if isinstance(value, str) and value.strip():
        try:
            return loads(value)
        except ValueError:
            return value
    return value if value not in (None, "") else None


def _product_ids(products: Any) -> list[str]:
    if not isinstance(products, list):
        return []
    return [str(p["id"]) for p in products if isinstance(p, dict) and p.get("id") not in (None, "")]


def _naming(tracking_type: Any, custom_name: Any) -> tuple[str | None, str | None, str | None]:
    """(event name, canonical type, custom name): a custom event is named by its custom
    name, a standard one by the pixel's spelling, an unknown type as sent."""
    custom = _text(custom_name)
    canonical = canonical_type(tracking_type)
    if canonical == "Custom":
        return custom or "Custom", canonical, custom
    if canonical is not None:
        return canonical, canonical, None
    sent = _text(tracking_type)
    return sent, sent, None


def _envelope_error(reason: str, explanation: str) -> dict[str, Any]:
    """Reddit's error body outside a validation answer (401, 429, 5xx): RudderStack's
    copies of Reddit's answers carry ``{"success": false, "error": {reason,
    explanation}}``."""
    return {"success": False, "error": {"reason": reason, "explanation": explanation}}


def rejection_in(status: int | None, body: Any) -> dict[int | None, str]:
    """Which events of a call Reddit refused, by index (None: every event), from an
    answer ``status`` / ``body``: a non-2xx status refuses all of them; a 2xx answer that
    lists ``invalid_events`` refuses those."""
    out: dict[int | None, str] = {}
    invalid = body.get("invalid_events") if isinstance(body, dict) else None
    if status is not None and not 200 <= status < 300:
        reason = _answer_words(body) or f"HTTP {status}"
        out[None] = f"HTTP {status}: {reason}"
        return out
    if isinstance(invalid, list):
        for entry in invalid:
            if not isinstance(entry, dict):
                continue
            index = entry.get("event_index")
            message = str(entry.get("error_message") or "listed in invalid_events")
            key = index if isinstance(index, int) and not isinstance(index, bool) else None
            out[key] = f"2xx, but Reddit listed it in invalid_events: {message}"
    return out


def _answer_words(body: Any) -> str | None:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return f"{error.get('reason')}: {error.get('explanation')}"
        data = body.get("data")
        # v2.0 answers {"message"}, v3 {"data": {"message"}}
        message = body.get("message") or (data.get("message") if isinstance(data, dict) else None)
        invalid = body.get("invalid_events")
        if isinstance(invalid, list) and invalid and isinstance(invalid[0], dict):
            return f"{message} ({invalid[0].get('error_message')})"
        return str(message) if message else None
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return None


class Reddit(Platform):
    name = NAME
    title = "Reddit"
    tag_name = "the Reddit Pixel (rdt)"
    api_name = "the Reddit Conversions API"
    limited_use_flag = ("user.data_processing_options: {modes: [\"LDU\"], country, region} "
                        "(Limited Data Use)")
    server_hosts = frozenset({API_HOST})
    fault_kinds = ("500", "429", "transient", "expired_token", "timeout")
    secret_headers = frozenset({"authorization"})
    secret_params = frozenset({"access_token", "conversion_token"})
    max_event_age = MAX_EVENT_AGE_HOURS * 3600.0
    future_tolerance = MAX_FUTURE_MINUTES * 60.0
    samples_dir = HERE / "samples"
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale; the server sample carries the plain id the pixel sends hashed
    synthetic_sale = {"browser": "browser-purchase.json", "server": "server-v3-purchase.json",
                      "server_plain_id": "purchase.ORD-1", "browser_hashes_ids": True,
                      "server_same_shop": {"8b2c5f0e-3c8d-4a47-9d3e-2a6f0c1b7e55":
                                           "0d712951-eb29-481f-9bb3-ce281f86a2c4"}}
    event_time_unit = "Unix milliseconds (v3 events[].event_at)"
    standard_events = STANDARD_EVENTS
    finding_codes = FINDING_CODES
    #: email, phone and external_id: Reddit takes them raw too, but recommends SHA-256
    hashed_keys = frozenset(HASHED_KEYS)
    # Reddit's digest: email canonicalized, phone in E.164 with the '+'
    digest_rule = staticmethod(hash_value)

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        return host == COLLECTION_HOST and path == COLLECTION_PATH

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host == LIBRARY_HOST and path == LIBRARY_PATH:
            script = stand_in_script(HERE / "pixel.js")
            return CannedResponse(200, script, "application/javascript; charset=utf-8")
        if host == LIBRARY_HOST and path.startswith(_TELEMETRY_PREFIX):
            # the telemetry config pixel.js fetches: nothing to configure offline
            return CannedResponse(200, b"{}", "application/json")
        if host == CONFIG_HOST and _CONFIG_PATH.match(path):
            # the per-pixel config: not a conversion, answered so nothing leaves the machine
            return CannedResponse(200, b"{}", "application/json")
        if host == LIBRARY_HOST and path.startswith("/ads/") and path.endswith(".js"):
            return CannedResponse(200, b"/* pixelcheck: Reddit pixel code not needed offline */",
                                  "application/javascript")
        return None

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        event = Event(NAME, "browser", None, None, None, None, request.arrival_time,
                      raw=request)
        try:
            params = self._hit_params(request)
        except WireError as exc:
            event.error = f"rp.gif hit unreadable: {exc}"
            return [event]
        try:
            self._read_hit(event, params, request)
        except Exception as exc:  # noqa: BLE001  (a decoder must never raise on bad input)
            event.error = f"rp.gif hit unreadable: {type(exc).__name__}: {exc}"
        return [event]

    @staticmethod
    def _hit_params(request: CapturedRequest) -> dict[str, str]:
        """The hit's parameters, first value of each (Reddit's own hits carry each once).
        A POST form body, which no build was seen sending, is read the same way."""
        params: dict[str, str] = {}
        for key, value in query_params(request.url):
            params.setdefault(key, value)
        if request.method.upper() == "POST" and request.body:
            for key, value in form_params(request, decompressed_body(request)):
                params.setdefault(key, value)
        return params

    def _read_hit(self, event: Event, params: dict[str, str], request: CapturedRequest) -> None:
        event.pixel_id = _text(params.get("id"))
        name, tracking, custom = _naming(params.get("event"), params.get("m.customEventName"))
        event.event_name = name
        hashed, sent, form = conversion_key(params.get("m.conversionId"))
        event.event_id = hashed
        ts = _number(params.get("ts"))
        event.event_time_raw = params.get("ts")
        event.event_time = ts / 1000.0 if ts is not None else request.arrival_time
        products = _products(params.get("m.products"))
        # m.valueDecimal carries the amount in currency units (the 2024 build sent
        # value=&valueDecimal=20); m.value is read when it is the only one
        value = _number(params.get("m.valueDecimal"))
        if value is None:
            value = _number(params.get("m.value"))
        custom_data: dict[str, Any] = {
            "value": value, "currency": _text(params.get("m.currency")),
            "item_count": _int(params.get("m.itemCount")), "products": products,
            "content_ids": _product_ids(products) or None,
            "transaction_id": _text(params.get("m.transactionId")),
        }
        event.custom_data = {k: v for k, v in custom_data.items() if v is not None}
        event.user_data = {key: params[key] for key in ("em", "pn", "external_id", "aaid", "idfa")
                           if _text(params.get(key))}
        event.page_url = request.header("referer")
        event.extra = {
            "api": "pixel",
            "tracking_type": tracking,
            "custom_event_name": custom,
            "conversion_id": sent,
            "conversion_id_form": form,
            "uuid": _text(params.get("uuid")),
            # no build was seen sending the click id; the stand-in (like Cloudflare's
            # Reddit component) sends it as click_id
            "click_id": _text(params.get("click_id")) or _text(params.get("rdt_cid")),
            "integration": _text(params.get("integration")),
            "partner": _text(params.get("partner")),
            "opt_out": _text(params.get("opt_out")),
            "data_processing": {k: params[k] for k in ("dpm", "dpcc", "dprc")
                                if _text(params.get(k))},
            "build": _text(params.get("v")),
            "user_agent": request.header("user-agent"),
        }
        missing = [label for label, value in (("`event`", params.get("event")),
                                              ("`id` (the pixel id)", event.pixel_id))
                   if not value]
        if missing:
            event.error = (f"rp.gif hit without {' and '.join(missing)} (a malformed or "
                           "hand-built hit)")

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host != API_HOST and host not in _LOOPBACK:
            return False
        return bool(V3_PATH.match(path) or V2_PATH.match(path))

    @staticmethod
    def _bearer(request: CapturedRequest) -> tuple[str | None, str | None]:
        """(token, where) of ``Authorization: Bearer <token>``; a header of another
        scheme carries no bearer token (Reddit: "No bearer token provided")."""
        header = request.header("authorization")
        if header is None:
            return None, None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "header"
        return token.strip(), "header"

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        path = path_of(request.url)
        match = V3_PATH.match(path)
        version = "v3" if match else "v2.0"
        match = match or V2_PATH.match(path)
        pixel = unquote(match.group("pixel")) if match else None
        token, token_location = self._bearer(request)
        try:
            payload = json_body(decompressed_body(request))
        except WireError as exc:
            payload, unreadable = None, f"JSON error: {exc}"
        else:
            unreadable = None if isinstance(payload, dict) else \
                f"JSON error: the body is a JSON {type(payload).__name__}, not an object"
        events = self._server_events(payload, request, pixel, version) if not unreadable else []

        def refuse(status: int, body: dict[str, Any], reason: str,
                   violations: list[Any] | None = None) -> ServerAnswer:
            # with no event to show, one stands for the call: undecodable when its body was
            # (or its envelope is) unreadable, otherwise a call that carried no event
            placeholder = unreadable or (reason if status != 401 else
                                         "the call carried no readable event")
            shown = events or [self._server_event(request, pixel, 0, version, error=placeholder)]
            for event in shown:
                event.extra["rejected_by_platform"] = f"HTTP {status}: {reason}"
            return ServerAnswer(shown, status, body, token_location, token, violations or [])

        # The gateway checks the token before it reads the body. A body read back from a
        # backend's log never shows its header: nothing to check there.
        if request.channel != "log" and token is None:
            hint = (" (Reddit wants Authorization: Bearer <conversion access token>)"
                    if token_location else "")
            return refuse(401, _envelope_error("UNAUTHORIZED", NO_BEARER), NO_BEARER + hint)
        if unreadable:
            return refuse(400, _envelope_error("BAD_REQUEST", unreadable), unreadable)
        items = self._items(payload, version)
        if isinstance(items, list) and len(items) > MAX_BATCH:
            reason = f"Bad Request: {len(items)} events; at most {MAX_BATCH} per request"
            return refuse(400, _envelope_error("BAD_REQUEST", reason), reason)
        schema = SCHEMA_V3 if version == "v3" else SCHEMA_V2
        violations = validate(schema, payload)
        per_event, envelope = self._split(violations, version)
        if envelope:
            first = envelope[0]
            reason = f"{first.path or 'body'}: {first.reason}"
            if version == "v3" and isinstance(payload, dict) and "data" not in payload and \
                    "events" in payload:
                reason += " (this is v2.0's shape; v3 wraps events in data)"
            return refuse(400, _envelope_error("BAD_REQUEST", reason), reason, violations)
        for event in events:
            if event.error:
                per_event.setdefault(event.extra["index"], []).insert(0, event.error)
                continue
            problem = self._clock_problem(event, version)
            if problem:
                per_event.setdefault(event.extra["index"], []).append(problem)
        if per_event:
            invalid = [{"error_message": messages[0], "event_index": index}
                       for index, messages in sorted(per_event.items())]
            body = {"message": INVALID_MESSAGE.format(n=len(invalid)), "invalid_events": invalid}
            for event in events:
                mine = per_event.get(event.extra["index"])
                why = mine[0] if mine else ("another event of this call was invalid, so none "
                                            "was processed")
                event.extra["rejected_by_platform"] = f"HTTP 400: {why}"
                event.extra["invalid_event_messages"] = mine or []
            return ServerAnswer(events, 400, body, token_location, token, violations)
        message = OK_MESSAGE.format(n=len(events))
        ok_body: dict[str, Any] = ({"data": {"message": message}} if version == "v3"
                                   else {"message": message})
        self._recorded_refusals(request, events)
        return ServerAnswer(events, 200, ok_body, token_location, token)

    @staticmethod
    def _items(payload: Any, version: str) -> Any:
        if not isinstance(payload, dict):
            return None
        if version == "v3":
            data = payload.get("data")
            return data.get("events") if isinstance(data, dict) else None
        return payload.get("events")

    @staticmethod
    def _split(violations: list[Violation], version: str
               ) -> tuple[dict[int, list[str]], list[Violation]]:
        """Schema violations by event index, and those of the envelope around them."""
        prefix = re.compile(r"^data\.events\[(\d+)\]" if version == "v3" else r"^events\[(\d+)\]")
        per_event: dict[int, list[str]] = {}
        envelope: list[Violation] = []
        for violation in violations:
            match = prefix.match(violation.path)
            if match:
                per_event.setdefault(int(match.group(1)), []).append(
                    f"{violation.path}: {violation.reason}")
            else:
                envelope.append(violation)
        return per_event, envelope

    @staticmethod
    def _clock_problem(event: Event, version: str) -> str | None:
        if event.event_time is None:
            return None
        age = event.arrival_time - event.event_time
        if age > MAX_EVENT_AGE_HOURS * 3600:
            raw = event.event_time_raw
            hint = ""
            if version == "v3" and isinstance(raw, (int, float)) and raw < 1e11:
                hint = (f" (event_at {raw} is Unix seconds; v3 wants milliseconds, so it "
                        "reads as January 1970)")
            return TOO_OLD + hint
        if -age > MAX_FUTURE_MINUTES * 60:
            return TOO_NEW
        return None

    def _server_event(self, request: CapturedRequest, pixel: str | None, index: int,
                      version: str, error: str | None = None) -> Event:
        event = Event(NAME, "server", pixel, None, None, None, request.arrival_time,
                      raw=request, error=error)
        event.extra = {"index": index, "api": f"conversions-{version}"}
        return event

    def _server_events(self, payload: Any, request: CapturedRequest, pixel: str | None,
                       version: str) -> list[Event]:
        items = self._items(payload, version)
        if not isinstance(items, list):
            return []
        envelope = payload.get("data") if version == "v3" else payload
        envelope = envelope if isinstance(envelope, dict) else {}
        events = []
        for index, item in enumerate(items):
            event = self._server_event(request, pixel, index, version)
            events.append(event)
            if not isinstance(item, dict):
                event.error = f"events[{index}] is a {type(item).__name__}, not an event object"
                continue
            self._read_item(event, item, envelope, version)
        return events

    def _read_item(self, event: Event, item: dict[str, Any], envelope: dict[str, Any],
                   version: str) -> None:
        index = event.extra["index"]
        kind = item.get("type" if version == "v3" else "event_type")
        kind = kind if isinstance(kind, dict) else {}
        name, tracking, custom = _naming(kind.get("tracking_type"), kind.get("custom_event_name"))
        event.event_name = name
        metadata = item.get("metadata" if version == "v3" else "event_metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        hashed, sent, form = conversion_key(metadata.get("conversion_id"))
        event.event_id = hashed
        if version == "v3":
            raw_time = item.get("event_at")
            number = _number(raw_time) if isinstance(raw_time, (int, float)) else None
            event.event_time = number / 1000.0 if number is not None else None
        else:
            raw_time = item.get("event_at", item.get("event_at_ms"))
            if isinstance(raw_time, (int, float)) and not isinstance(raw_time, bool):
                event.event_time = raw_time / 1000.0  # event_at_ms, or a number in event_at
            else:
                event.event_time = _rfc3339_seconds(raw_time)
        event.event_time_raw = raw_time
        if version == "v3":
            value = _number(metadata.get("value"))
        else:
            # v2.0: value_decimal in currency units; value in cents (RudderStack's v2.0
            # mapping multiplies by 100)
            value = _number(metadata.get("value_decimal"))
            cents = _number(metadata.get("value"))
            if value is None and cents is not None:
                value = cents / 100.0
        products = metadata.get("products")
        custom_data: dict[str, Any] = {
            "value": value, "currency": _text(metadata.get("currency")),
            "item_count": _int(metadata.get("item_count")),
            "products": products if isinstance(products, list) else None,
            "content_ids": _product_ids(products) or None,
        }
        event.custom_data = {k: v for k, v in custom_data.items() if v is not None}
        user = item.get("user")
        event.user_data = dict(user) if isinstance(user, dict) else {}
        event.page_url = _text(item.get("event_source_url"))
        test_id = _text(envelope.get("test_id"))
        if version == "v2.0" and envelope.get("test_mode") is True:
            test_id = test_id or "test_mode"
        event.extra.update({
            "tracking_type": tracking,
            "tracking_type_sent": kind.get("tracking_type"),
            "custom_event_name": custom,
            "conversion_id": sent,
            "conversion_id_form": form,
            "action_source": item.get("action_source"),
            "click_id": _text(item.get("click_id")),
            "uuid": _text(event.user_data.get("uuid")),
            "ip": _text(event.user_data.get("ip_address")),
            "user_agent": _text(event.user_data.get("user_agent")),
            "test_event_code": test_id,
            "partner": _text(envelope.get("partner")),
        })
        if event.event_name is None:
            where = "type.tracking_type" if version == "v3" else "event_type.tracking_type"
            event.error = f"events[{index}] has no event type (`{where}`)"

    @staticmethod
    def _recorded_refusals(request: CapturedRequest, events: list[Event]) -> None:
        """A recorded 2xx answer (a capture, a backend's log) that lists invalid_events
        refused those events although its status says success."""
        if not request.response_body:
            return
        try:
            body = json.loads(request.response_body)
        except ValueError:
            return
        status = request.response_status if request.response_status is not None else 200
        refused = rejection_in(status, body)
        for event in events:
            why = refused.get(event.extra.get("index"), refused.get(None))
            if why:
                event.extra["rejected_by_platform"] = why

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 400, _envelope_error("BAD_REQUEST", f"JSON error: {reason}")

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        if kind == "missing_token":
            return 401, _envelope_error("UNAUTHORIZED", NO_BEARER)
        if kind in ("invalid_token", "expired_token"):
            # conversion access tokens never expire; an expired OAuth token is refused
            # like any wrong one
            return 401, _envelope_error("UNAUTHORIZED", NOT_AUTHORIZED)
        if kind == "429":
            return 429, _envelope_error("TOO_MANY_REQUESTS",
                                        "Too many requests/events within timeframe.")
        if kind == "timeout":
            return 504, _envelope_error("GATEWAY_TIMEOUT", UNAVAILABLE)
        if kind == "transient":
            return 503, _envelope_error("SERVICE_UNAVAILABLE", UNAVAILABLE)
        return 500, _envelope_error("INTERNAL_SERVER_ERROR", UNAVAILABLE)

    def answer_text(self, event: Event) -> str:
        if event.raw is None or not event.raw.response_body:
            return event.extra.get("rejected_by_platform") or "(no answer body)"
        try:
            body: Any = json.loads(event.raw.response_body)
        except ValueError:
            body = event.raw.response_body.decode("utf-8", "replace")
        mine = event.extra.get("invalid_event_messages")
        if mine and isinstance(body, dict):
            return f"{body.get('message')} (events[{event.extra.get('index')}]: {mine[0]})"
        return _answer_words(body) or super().answer_text(event)

    def test_event_code(self, event: Event) -> str | None:
        value = event.extra.get("test_event_code")
        return str(value) if value else None

    # --- dedup ------------------------------------------------------------------------

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if not event.event_id or event.extra.get("not_a_conversion"):
            return None
        return (event.pixel_id, *type_key(event), event.event_id)

    def dedup_rule(self) -> str:
        return ("Reddit merges a pixel event and a Conversions API event of one pixel when "
                "the event type (and for Custom events the custom_event_name) is the same and "
                "the conversion ids match; the pixel sends m.conversionId as the SHA-256 of "
                "the page's id, so metadata.conversion_id matches when it is that id or that "
                "same SHA-256. Both copies must reach Reddit within 2 days")

    def limited_use(self, event: Event) -> bool:
        options = event.user_data.get("data_processing_options")
        modes = options.get("modes") if isinstance(options, dict) else None
        return isinstance(modes, list) and "LDU" in modes

    def fix(self, code: str, event: Event | None = None) -> str | None:
        from .texts import fix_text

        return fix_text(code, event)

    # --- customer data ----------------------------------------------------------------


    def customer_values(self, event: Event) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for field, value in event.user_data.items():
            key = KEY_OF_FIELD.get(field)
            if key not in HASHED_KEYS:
                continue  # uuid, ip, user agent, app ids: not customer match keys
            values = value if isinstance(value, list) else [value]
            kept = [v for v in values if v not in (None, "")]
            if kept:
                out.setdefault(key, []).extend(kept)
        return out

    def identity_findings(self, pair: Any) -> list[Any]:
        from .findings import identity_findings

        return identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        from .findings import reddit_findings

        return reddit_findings(result)

    # --- backend logs -----------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Conversions API body: v3 (``{"data": {"events": [...]}}``) or v2.0
        (``{"events": [{"event_type": ...}]}``). The pixel id lives in the URL, so the line
        needs ``url`` or ``pixel_id``; ``time``, ``status`` and ``answer`` (Reddit's reply)
        are optional: a 2xx answer that lists invalid_events marks those events refused."""
        data = record.get("data")
        if isinstance(data, dict) and isinstance(data.get("events"), list):
            version = "v3"
        elif isinstance(record.get("events"), list) and any(
                isinstance(e, dict) and "event_type" in e for e in record["events"]):
            version = "v2.0"
        else:
            return None
        pixel = str(record.get("pixel_id") or record.get("account_id") or "unknown")
        path = (f"/api/v3/pixels/{quote(pixel)}/conversion_events" if version == "v3"
                else f"/api/v2.0/conversions/events/{quote(pixel)}")
        url = record.get("url") if isinstance(record.get("url"), str) else \
            f"https://{API_HOST}{path}"
        meta = ("url", "time", "pixel_id", "account_id", "status", "answer")
        body = {k: v for k, v in record.items() if k not in meta}
        when = record.get("time")
        if not isinstance(when, (int, float)) or isinstance(when, bool):
            items = self._items(body, version) or []
            first = next((i for i in items if isinstance(i, dict)), {})
            raw = first.get("event_at", first.get("event_at_ms"))
            when = (raw / 1000.0 if isinstance(raw, (int, float)) and not isinstance(raw, bool)
                    else _rfc3339_seconds(raw)) or time.time()
        status = record.get("status") if isinstance(record.get("status"), int) else 200
        answer = record.get("answer")
        request = CapturedRequest("POST", url, [("Content-Type", "application/json")],
                                  json.dumps(body).encode(), float(when), "log",
                                  original_host=API_HOST, response_status=status)
        if answer is not None:
            request.response_body = (answer if isinstance(answer, str)
                                     else json.dumps(answer)).encode()
        return request


REDDIT = Reddit()
