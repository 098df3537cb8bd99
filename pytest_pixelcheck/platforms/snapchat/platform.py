"""Snapchat: the Snap Pixel (``snaptr``, JSON beacons to tr.snapchat.com/p) and the Snap
Conversions API (v3 ``/v3/{PIXEL_ID}/events`` on tr.snapchat.com, and the legacy v2
``/v2/conversion`` that Snap's own Python SDK still sends).

All of Snap's wire facts live in this folder; FACTS.md says which are confirmed by a
real client or library and which are inferred from documentation.

Three Snap habits shape this module:

* One pixel request carries several events: ``{"ctx": {...}, "req": [{"t": {...}},
  ...]}``, one Event per ``req[i]``. The pixel also sends requests that are no
  conversion at all (an init POST to tr6.snapchat.com, the per-pixel config, the
  cookie-match iframe); they are kept as events marked ``not_a_conversion``.
* When the page gives no ``client_dedup_id`` the Snap Pixel fills ``cdid`` with a
  random ``"@-<uuid>"`` of its own. Such an id can never equal a server
  ``event_id``: the decoder keeps it aside (``extra["auto_dedup_id"]``) and the event
  counts as having no id; for PURCHASE Snap can still match on ``transaction_id``.
* Snap compares event names (``PURCHASE`` / ``purchase``) and ``action_source`` without
  regard to letter case, so the dedup key does too.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from ...events import CapturedRequest, Event
from ...validation import Violation, validate
from ...wire import (
    WireError,
    body_text,
    decompressed_body,
    json_body,
    loads,
    path_of,
    query_params,
)
from .. import CannedResponse, Platform, ServerAnswer, answer_json, stand_in_script
from . import identity, texts
from .pii_rules import HASHED_KEYS, KEY_OF_FIELD, hash_value, is_hashed

NAME = "snapchat"
HERE = Path(__file__).resolve().parent
API_HOST = "tr.snapchat.com"
#: Snap's staging host (SNAP-OAS servers); the v2 SDK knows it too
SHADOW_HOST = "tr-shadow.snapchat.com"
#: where the pixel sends: its collection host, and tr6 for the init call (PLATFORMS 2b)
COLLECTION_HOSTS = frozenset({API_HOST, "tr6.snapchat.com", SHADOW_HOST})
INIT_HOSTS = frozenset({"tr6.snapchat.com"})
LIBRARY_HOST = "sc-static.net"
LIBRARY_PATH = "/scevent.min.js"
_HIT_PATH = re.compile(r"^/p/?$")
_CONFIG_PATH = re.compile(r"^/config/\d+/(?P<pid>[^/]+)\.json$")
_COOKIE_MATCH_PATH = re.compile(r"^/cm/[a-z]+/?$")

_V3_PATH = re.compile(r"^/v3/(?P<pixel>[^/]+)/events(?P<validate>/validate)?/?$")
_V2_PATH = re.compile(r"^/v2/conversion(?P<validate>/validate)?/?$")
SCHEMA_V3 = HERE / "schema_v3_events.json"
SCHEMA_V2 = HERE / "schema_v2_conversion.json"

#: "Events may be at most 37 days old" (Snap's Conversions API introduction)
MAX_EVENT_AGE_DAYS = 37
#: v2: "up to 2000 events per batch" (the SDK's README); v3's limit is unconfirmed
MAX_BATCH = 2000
#: event_time values above this are milliseconds (Segment's v3 code sends Date.parse())
_MS_THRESHOLD = 1e11
#: action_source values seen in use, compared case-insensitively (FACTS.md)
ACTION_SOURCES = frozenset({"web", "website", "mobile_app", "app", "offline"})
#: pixelcheck's labels (not wire names) for the pixel's requests that carry no event,
#: so reports show what they are rather than "<no name>"
INIT_LABEL = "(pixel init)"
CONFIG_LABEL = "(pixel config)"
COOKIE_MATCH_LABEL = "(cookie match)"
#: what the pixel fills cdid with when the page passed no client_dedup_id
AUTO_ID_PREFIX = "@-"
#: the keys Snap refuses in the clear ("Unhashed PII"); the other hashed keys are only
#: "should be hashed" and are left to the PII checks
MUST_BE_HASHED_V3 = ("em", "ph")
MUST_BE_HASHED_V2 = ("hashed_email", "hashed_phone_number")

#: Snap's answer texts (success: reported in public implementation notes; the error
#: reasons: the Validate page's wording; codes and the 401 body: our choice)
OK_REASON = "Events have been processed successfully."
V2_OK_REASON = "All records processed"

#: finding codes this platform adds, with (severity, title); ``findings.py`` registers
#: them with the core's catalogue when it is imported
FINDING_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "snap-auto-dedup-id": ("error", "the Snap Pixel sent its own random cdid ('@-…'), which "
                                    "never equals a server event_id"),
    "snap-event-name-case": ("info", "browser and server spell one Snap event in different "
                                     "letter case"),
    "snap-cdid-shared": ("warning", "one client_dedup_id is used for different Snap events "
                                    "on the page"),
    **identity.IDENTITY_CODES,
}


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    return value if isinstance(value, str) and value != "" else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _seconds(value: Any) -> float | None:
    """An event time as sent (seconds or milliseconds, number or digits) -> seconds."""
    number = _number(value)
    if number is None:
        return None
    return number / 1000.0 if number > _MS_THRESHOLD else number


def _ids(value: Any) -> list[str]:
    """item_ids as the pixel or the v2 API sends them: a list, a JSON list in a string,
    or a comma-separated string."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if not isinstance(value, str) or not value.strip():
        return []
    text = value.strip()
    if text.startswith("["):
        try:
            loaded = loads(text)
        except ValueError:
            loaded = None
        if isinstance(loaded, list):
            return [str(v) for v in loaded]
        text = text.strip("[]")
    return [part.strip() for part in text.split(",") if part.strip()]


def click_id_in(url: str | None) -> str | None:
    """The ``ScCid`` parameter of a landing URL (the Snap ad click id)."""
    if not url:
        return None
    try:
        params = parse_qsl(urlsplit(url).query, keep_blank_values=False)
    except ValueError:
        return None
    return next((v for k, v in params if k == "ScCid" and v), None)


def canonical_name(name: str | None) -> str | None:
    return name.strip().upper() if isinstance(name, str) else None


def request_id() -> str:
    return str(uuid.uuid4())


def answer_body(valid: bool, reason: str, *, codes: list[str] | None = None,
                messages: list[str] | None = None, index: int | None = None
                ) -> dict[str, Any]:
    """Snap's v3 EventResponse: ``{status, reason}`` on success, plus ``event`` (the
    failing index) and ``errors{codes, error_msgs}`` on failure (SNAP-OAS)."""
    body: dict[str, Any] = {"status": "VALID" if valid else "INVALID", "reason": reason}
    if not valid:
        if index is not None:
            body["event"] = index
        body["errors"] = {"codes": codes or [], "error_msgs": messages or [reason]}
    return body


def v2_answer_body(ok: bool, reason: str, indexes: list[int] | None = None) -> dict[str, Any]:
    """The v2 Response the SDK models: ``{status, reason, error_records[]}``."""
    body: dict[str, Any] = {"status": "SUCCESS" if ok else "FAILED", "reason": reason}
    if not ok:
        body["error_records"] = [{"reason": reason, "record_indexes": indexes or [0]}]
    return body


class Snapchat(Platform):
    name = NAME
    title = "Snapchat"
    tag_name = "the Snap Pixel (snaptr)"
    api_name = "the Snap Conversions API"
    server_hosts = frozenset({API_HOST, SHADOW_HOST})
    fault_kinds = ("500", "429", "transient", "expired_token", "timeout")
    secret_headers = frozenset({"authorization"})
    secret_params = frozenset({"access_token"})
    max_event_age = MAX_EVENT_AGE_DAYS * 86400.0
    samples_dir = HERE / "samples"
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale; of the browser sample's batch, only its last event (the purchase)
    synthetic_sale = {"browser": "browser-page-view-and-purchase.json",
                      "server": "server-v3-json-purchase.json",
                      "browser_batch_key": "req"}
    event_time_unit = "Unix seconds (data[].event_time)"
    #: Snap's standard events (the pixel and the Snap Conversions API share them)
    standard_events = (
        "PAGE_VIEW", "VIEW_CONTENT", "ADD_CART", "START_CHECKOUT", "PURCHASE", "SIGN_UP",
        "ADD_BILLING", "SAVE", "SEARCH", "SUBSCRIBE", "AD_CLICK", "AD_VIEW",
        "COMPLETE_TUTORIAL", "INVITE", "LOGIN", "SHARE", "RESERVE", "ACHIEVEMENT_UNLOCKED",
        "ADD_TO_WISHLIST", "SPENT_CREDITS", "RATE", "START_TRIAL", "LIST_VIEW",
        "CUSTOM_EVENT_1", "CUSTOM_EVENT_2", "CUSTOM_EVENT_3", "CUSTOM_EVENT_4",
        "CUSTOM_EVENT_5",
    )
    finding_codes = FINDING_CODES

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        if host not in COLLECTION_HOSTS:
            return False
        return bool(_HIT_PATH.match(path) or _CONFIG_PATH.match(path)
                    or _COOKIE_MATCH_PATH.match(path))

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        path = path_of(request.url)
        cors = {"Access-Control-Allow-Origin": "*"}
        match = _CONFIG_PATH.match(path)
        if match:
            # the library reads its pixel's config; offline there is nothing to add
            body = json.dumps({"pixel_id": match.group("pid"), "pixelcheck": "offline"})
            return CannedResponse(200, body.encode(), "application/json", cors)
        if _COOKIE_MATCH_PATH.match(path):
            return CannedResponse(200, b"<!doctype html><title>cm</title>", "text/html")
        # sendBeacon ignores the answer; an empty 200 is what a beacon needs
        return CannedResponse(200, b"", "text/plain", cors)

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host != LIBRARY_HOST or path != LIBRARY_PATH:
            return None
        script = stand_in_script(HERE / "scevent.js")
        return CannedResponse(200, script, "application/javascript; charset=utf-8")

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        url = request.url
        path = path_of(url)
        host = (urlsplit(url).hostname or "").lower()
        match = _CONFIG_PATH.match(path)
        if match:
            event = self._browser_event(request)
            event.pixel_id = match.group("pid")
            event.event_name = CONFIG_LABEL
            event.extra = {"api": "pixel", "path": path,
                           "not_a_conversion": "the Snap Pixel's config fetch for its pixel, "
                                               "not a conversion"}
            return [event]
        if _COOKIE_MATCH_PATH.match(path):
            event = self._browser_event(request)
            event.pixel_id = dict(query_params(url)).get("pid") or None
            event.event_name = COOKIE_MATCH_LABEL
            event.extra = {"api": "pixel", "path": path,
                           "not_a_conversion": "the Snap Pixel's cookie-match frame "
                                               f"({path}), not a conversion"}
            return [event]
        try:
            items, ctx = self._hit_items(request)
        except WireError as exc:
            event = self._browser_event(request)
            event.error = f"Snap Pixel hit body unreadable: {exc}"
            return [event]
        if not items:
            event = self._browser_event(request)
            event.error = "Snap Pixel hit with an empty req array: it carried no event"
            return [event]
        return [self._browser_item(request, item, ctx, index, host, path)
                for index, item in enumerate(items)]

    def _hit_items(self, request: CapturedRequest) -> tuple[list[Any], dict[str, Any]]:
        """The ``req`` entries and the shared ``ctx`` of one hit: the 3.5x JSON body,
        or the older form-encoded one (one event, Omnibug's 1.4 sample), or a query."""
        body = decompressed_body(request)
        query = dict(query_params(request.url))
        text = body_text(body).strip() if body else ""
        if text.startswith("{") or text.startswith("["):
            payload = json_body(body)
            if isinstance(payload, list):
                return payload, {}
            if not isinstance(payload, dict):
                raise WireError(f"body is a JSON {type(payload).__name__}, not an object")
            ctx = payload.get("ctx") if isinstance(payload.get("ctx"), dict) else {}
            req = payload.get("req")
            if isinstance(req, list):
                return req, ctx
            if req is not None:
                raise WireError(f"`req` is a {type(req).__name__}, not an array")
            if "ev" in payload or "pid" in payload:  # one bare event object
                return [payload], ctx
            raise WireError("JSON body without `req` (expected {\"ctx\": ..., \"req\": [...]})")
        if text:
            fields = dict(parse_qsl(text, keep_blank_values=True))
            if not fields:
                raise WireError("body is neither JSON nor form-encoded parameters")
            return [{**query, **fields}], {}
        if query:
            return [query], {}
        raise WireError("body is empty")

    def _browser_event(self, request: CapturedRequest) -> Event:
        return Event(platform=NAME, source="browser", pixel_id=None, event_name=None,
                     event_id=None, event_time=None, arrival_time=request.arrival_time,
                     raw=request)

    def _browser_item(self, request: CapturedRequest, item: Any, ctx: dict[str, Any],
                      index: int, host: str, path: str) -> Event:
        event = self._browser_event(request)
        event.extra = {"api": "pixel", "path": path, "index": index}
        if not isinstance(item, dict):
            event.error = f"req[{index}] is a JSON {type(item).__name__}, not an object"
            return event
        hit = item.get("t") if isinstance(item.get("t"), dict) else item

        def get(key: str) -> Any:
            # the event's own field first, then the request's shared context
            return hit[key] if key in hit else ctx.get(key)

        name = get("ev")
        event.event_name = name if isinstance(name, str) and name else None
        event.pixel_id = _text(get("pid"))
        cdid = _text(get("cdid"))
        if cdid is not None and cdid.startswith(AUTO_ID_PREFIX):
            event.extra["auto_dedup_id"] = cdid
        else:
            event.event_id = cdid
        event.event_time_raw = get("ts")
        event.event_time = _seconds(get("ts"))
        event.page_url = _text(get("pl"))
        custom: dict[str, Any] = {}
        value = _number(get("e_pr"))
        if value is not None:
            custom["value"] = value
        for wire, key in (("e_cur", "currency"), ("e_tid", "transaction_id"),
                          ("e_ic", "item_category"), ("e_desc", "description"),
                          ("e_ss", "search_string"), ("e_sm", "sign_up_method"),
                          ("e_su", "success")):
            if _text(get(wire)) is not None:
                custom[key] = get(wire)
        item_ids = _ids(get("e_iids"))
        if item_ids:
            custom["content_ids"] = item_ids
        num_items = _number(get("e_ni"))
        if num_items is not None:
            custom["num_items"] = int(num_items)
        event.custom_data = custom
        event.user_data = {k: v for k, v in {**ctx, **hit}.items()
                           if isinstance(k, str) and k.startswith("u_")}
        transaction_id = _text(get("e_tid"))
        event.extra.update({
            "transaction_id": transaction_id,
            "u_c1": _text(get("u_c1")),
            "sc_click_id": click_id_in(event.page_url),
            "referrer": _text(get("rf")),
            "library_version": _text(get("v")),
        })
        if host in INIT_HOSTS:
            # Kept as an event (the proxy's traffic keeps the bytes too), never paired.
            event.event_name = event.event_name or INIT_LABEL
            event.extra["not_a_conversion"] = (f"the Snap Pixel's init call to {host}, not "
                                               "a conversion")
            return event
        missing = [label for label, v in (("`ev`", event.event_name),
                                          ("`pid`", event.pixel_id)) if not v]
        if missing:
            event.error = (f"Snap Pixel hit req[{index}] without {' and '.join(missing)} "
                           "(a malformed or truncated beacon)")
        return event

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host not in self.server_hosts and \
                host not in ("127.0.0.1", "localhost"):
            return False
        return bool(_V3_PATH.match(path) or _V2_PATH.match(path))

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        path = path_of(request.url)
        v3 = _V3_PATH.match(path)
        v2 = None if v3 else _V2_PATH.match(path)
        matched = v3 or v2
        validate_only = bool(matched and matched.group("validate"))
        query = dict(query_params(request.url))
        token, token_location = self._token(request, query)
        api = "v3" if v3 else "v2"
        pixel = v3.group("pixel") if v3 else None

        def fail(status: int, reason: str, events: list[Event], code: str,
                 violations: list[Any] | None = None, index: int | None = None
                 ) -> ServerAnswer:
            body = (answer_body(False, reason, codes=[code], index=index) if api == "v3"
                    else v2_answer_body(False, reason, [index or 0]))
            for event in events:
                event.extra.setdefault("rejection", []).append(f"{status} {reason}")
            return ServerAnswer(events, status, body, token_location, token, violations or [])

        try:
            payload = json_body(decompressed_body(request))
        except WireError as exc:
            event = self._server_event(request, pixel, 0, api)
            event.error = f"Snap Conversions API body unreadable: {exc}"
            return fail(400, f"Invalid request body: {exc}", [event], "INVALID_REQUEST")

        if api == "v3":
            events = self._v3_events(payload, request, pixel, query)
            schema = SCHEMA_V3
            items = payload.get("data") if isinstance(payload, dict) else None
        else:
            events = self._v2_events(payload, request)
            schema = SCHEMA_V2
            items = payload if isinstance(payload, list) else None
        for event in events:
            event.extra["endpoint"] = path
            if validate_only:
                # /validate answers like the real endpoint but never records anything
                event.extra["validate_only"] = True
                event.extra["rejected_by_platform"] = (
                    f"sent to {path}: Snap validates test events there and never records "
                    "them as conversions")

        # Authentication comes before the body, as at any API gateway. A body read back
        # from a backend's log never shows its token: nothing to check there.
        if request.channel != "log" and (not token or not token.strip()):
            status, body = self.error_answer("missing_token", request)
            for event in events:
                event.extra.setdefault("rejection", []).append(f"{status} {body['reason']}")
            return ServerAnswer(events, status, body, token_location, token)
        if isinstance(items, list) and len(items) > MAX_BATCH:
            return fail(400, f"Too many events: {len(items)} in one request, at most "
                             f"{MAX_BATCH} are allowed", events, "BATCH_TOO_LARGE")
        violations = validate(schema, payload)
        if violations:
            first = violations[0]
            return fail(400, self._violation_reason(first), events, "INVALID_FIELD",
                        violations, self._index_of(first))
        unhashed = self._unhashed(payload, api)
        if unhashed:
            where, index = unhashed[0]
            return fail(400, f"Unhashed PII: {where} must be a SHA-256 hex digest of the "
                             "normalized value", events, "UNHASHED_PII", index=index)
        for event in events:
            problem = self._event_problem(event)
            if problem is not None:
                code, reason = problem
                return fail(400, reason, events, code, index=event.extra.get("index", 0))
        if api == "v3":
            body = answer_body(True, OK_REASON)
            if validate_only:
                body = {"status": "VALID", "test_event": True, "reason": OK_REASON,
                        "event_logs": [{"event": e.extra.get("index", 0), "status": "VALID",
                                        "errors": {"codes": [], "error_msgs": []},
                                        "warnings": []} for e in events]}
        else:
            body = v2_answer_body(True, V2_OK_REASON)
        return ServerAnswer(events, 200, body, token_location, token)

    @staticmethod
    def _token(request: CapturedRequest, query: dict[str, str]
               ) -> tuple[str | None, str | None]:
        """v3 wants ``?access_token=`` (SNAP-OAS); v2 and some v3 users send
        ``Authorization: Bearer``. Either is read."""
        if query.get("access_token"):
            return query["access_token"], "query"
        auth = request.header("authorization")
        if auth:
            scheme, _, value = auth.strip().partition(" ")
            return (value.strip() if scheme.lower() == "bearer" else auth.strip()), "header"
        return None, None

    @staticmethod
    def _violation_reason(violation: Violation) -> str:
        if violation.reason.startswith("missing"):
            return f"Missing required field: {violation.path}"
        return f"Invalid field {violation.path or 'in the request body'}: {violation.reason}"

    @staticmethod
    def _index_of(violation: Violation) -> int | None:
        match = re.search(r"\[(\d+)\]", violation.path)
        return int(match.group(1)) if match else None

    def _event_problem(self, event: Event) -> tuple[str, str] | None:
        """Snap's per-event refusals that the schema cannot express, as (code, reason)."""
        index = event.extra.get("index", 0)
        where = f"data[{index}]" if event.extra.get("api") == "v3" else f"[{index}]"
        if event.error:
            return "INVALID_EVENT", f"Invalid event {where}: {event.error}"
        if event.event_time is not None:
            age = event.arrival_time - event.event_time
            if age > MAX_EVENT_AGE_DAYS * 86400:
                return ("TIMESTAMP_OUT_OF_RANGE",
                        f"Timestamp invalid or out of range: {where}.event_time "
                        f"{event.event_time_raw} is {age / 86400:.1f} days old; events may "
                        f"be at most {MAX_EVENT_AGE_DAYS} days old")
        if event.extra.get("api") == "v3":
            source = str(event.extra.get("action_source") or "").lower()
            if source and source not in ACTION_SOURCES:
                return ("INVALID_ACTION_SOURCE",
                        f"Invalid field {where}.action_source: "
                        f"{event.extra.get('action_source')!r} is not WEB, MOBILE_APP or "
                        "OFFLINE")
            user = event.user_data
            if not (user.get("em") or user.get("ph") or user.get("mobile_ad_id")
                    or user.get("madid") or (user.get("client_ip_address")
                                             and user.get("client_user_agent"))):
                return ("INSUFFICIENT_PII",
                        f"Insufficient PII: {where}.user_data needs em, ph, mobile_ad_id, "
                        "or both client_ip_address and client_user_agent")
            if source in ("web", "website") and not event.page_url:
                return ("MISSING_REQUIRED_FIELD",
                        f"Missing required field: {where}.event_source_url (required for "
                        "WEB events)")
        return None

    def _server_event(self, request: CapturedRequest, pixel_id: str | None, index: int,
                      api: str) -> Event:
        event = Event(NAME, "server", pixel_id, None, None, None, request.arrival_time,
                      raw=request)
        event.extra = {"index": index, "api": api}
        return event

    def _v3_events(self, payload: Any, request: CapturedRequest, pixel: str | None,
                   query: dict[str, str]) -> list[Event]:
        if not isinstance(payload, dict):
            event = self._server_event(request, pixel, 0, "v3")
            event.error = f"body is a JSON {type(payload).__name__}, not an object"
            return [event]
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            event = self._server_event(request, pixel, 0, "v3")
            event.error = ("`data` is missing or empty: the call carried no event"
                           if not data else "`data` is not an array")
            return [event]
        top_code = payload.get("test_event_code") or query.get("test_event_code")
        events = []
        for index, item in enumerate(data):
            event = self._server_event(request, pixel, index, "v3")
            events.append(event)
            if not isinstance(item, dict):
                event.error = f"data[{index}] is a {type(item).__name__}, not an event object"
                continue
            name = item.get("event_name")
            event.event_name = name if isinstance(name, str) and name else None
            event_id = item.get("event_id")
            event.event_id = _text(event_id)
            event.event_time_raw = item.get("event_time")
            raw_time = item.get("event_time")
            event.event_time = _seconds(raw_time) if isinstance(raw_time, (int, float)) \
                and not isinstance(raw_time, bool) else None
            user = item.get("user_data")
            event.user_data = user if isinstance(user, dict) else {}
            custom = item.get("custom_data")
            event.custom_data = custom if isinstance(custom, dict) else {}
            event.page_url = _text(item.get("event_source_url"))
            event.extra.update({
                "action_source": item.get("action_source"),
                "test_event_code": item.get("test_event_code") or top_code,
                "integration": item.get("integration"),
                "sc_cookie1": _text(event.user_data.get("sc_cookie1")),
                "sc_click_id": _text(event.user_data.get("sc_click_id")),
                "ip": _text(event.user_data.get("client_ip_address")),
                "user_agent": _text(event.user_data.get("client_user_agent")),
                "event_time_unit": ("milliseconds" if isinstance(raw_time, (int, float))
                                    and raw_time > _MS_THRESHOLD else "seconds"),
            })
            if event.event_name is None:
                event.error = f"data[{index}] has no event_name"
        return events

    def _v2_events(self, payload: Any, request: CapturedRequest) -> list[Event]:
        items = payload if isinstance(payload, list) else None
        if items is None and isinstance(payload, dict):
            items = [payload]  # a hand-built client posting one object
        if not items:
            event = self._server_event(request, None, 0, "v2")
            event.error = ("the body is an empty array: the call carried no event"
                           if isinstance(payload, list) else
                           f"body is a JSON {type(payload).__name__}, not an array of events")
            return [event]
        events = []
        for index, item in enumerate(items):
            event = self._server_event(request, None, index, "v2")
            events.append(event)
            if not isinstance(item, dict):
                event.error = f"[{index}] is a {type(item).__name__}, not an event object"
                continue
            event.pixel_id = _text(item.get("pixel_id")) or _text(item.get("snap_app_id"))
            name = item.get("event_type")
            event.event_name = name if isinstance(name, str) and name else None
            event.event_id = _text(item.get("client_dedup_id"))
            event.event_time_raw = item.get("timestamp")
            event.event_time = _seconds(item.get("timestamp"))
            event.page_url = _text(item.get("page_url"))
            event.user_data = {k: v for k, v in item.items()
                               if k.startswith("hashed_") or k in ("uuid_c1", "click_id",
                                                                    "user_agent")}
            custom: dict[str, Any] = {}
            value = _number(item.get("price"))
            if value is not None:
                custom["value"] = value
            for key in ("currency", "transaction_id", "item_category", "description",
                        "search_string", "sign_up_method"):
                if _text(item.get(key)) is not None:
                    custom[key] = item[key]
            ids = _ids(item.get("item_ids"))
            if ids:
                custom["content_ids"] = ids
            num_items = _number(item.get("number_items"))
            if num_items is not None:
                custom["num_items"] = int(num_items)
            event.custom_data = custom
            event.extra.update({
                "action_source": item.get("event_conversion_type"),
                "integration": item.get("integration"),
                "transaction_id": _text(item.get("transaction_id")),
                "sc_cookie1": _text(item.get("uuid_c1")),
                "sc_click_id": _text(item.get("click_id")),
                "user_agent": _text(item.get("user_agent")),
            })
            if event.event_name is None:
                event.error = f"[{index}] has no event_type"
        return events

    @staticmethod
    def _unhashed(payload: Any, api: str) -> list[tuple[str, int]]:
        """(path, event index) of each email/phone value that is not a 64-hex digest:
        the path, never the value (it is customer data and answers land in reports)."""
        found: list[tuple[str, int]] = []
        if api == "v3":
            data = payload.get("data") if isinstance(payload, dict) else None
            for index, item in enumerate(data if isinstance(data, list) else []):
                user = _dig(item, "user_data")
                if not isinstance(user, dict):
                    continue
                for field in MUST_BE_HASHED_V3:
                    value = user.get(field)
                    values = value if isinstance(value, list) else [value]
                    for n, one in enumerate(values):
                        if one in (None, "") or is_hashed(one):
                            continue
                        suffix = f"[{n}]" if isinstance(value, list) else ""
                        found.append((f"data[{index}].user_data.{field}{suffix}", index))
        else:
            items = payload if isinstance(payload, list) else []
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    continue
                for field in MUST_BE_HASHED_V2:
                    one = item.get(field)
                    if one not in (None, "") and not is_hashed(one):
                        found.append((f"[{index}].{field}", index))
        return found

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 400, answer_body(False, f"Invalid request body: {reason}",
                                codes=["INVALID_REQUEST"])

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        # Snap's bodies for these are unconfirmed (FACTS.md): the statuses are the usual
        # gateway ones, the bodies keep the EventResponse shape of every Snap answer.
        v2 = bool(_V2_PATH.match(path_of(request.url)))
        table = {
            "missing_token": (401, "Unauthorized: the access_token query parameter is "
                                   "missing", "MISSING_ACCESS_TOKEN"),
            "invalid_token": (401, "Unauthorized: the access token is invalid or has been "
                                   "revoked", "INVALID_ACCESS_TOKEN"),
            "expired_token": (401, "Unauthorized: the access token has expired; refresh it",
                              "EXPIRED_ACCESS_TOKEN"),
            "429": (429, "Too many requests: slow down and retry later", "RATE_LIMITED"),
            "transient": (503, "Service temporarily unavailable: retry later",
                          "SERVICE_UNAVAILABLE"),
            "timeout": (504, "Gateway timeout: retry later", "GATEWAY_TIMEOUT"),
        }
        status, reason, code = table.get(kind, (500, "Internal server error: retry later",
                                                "INTERNAL_ERROR"))
        if v2:
            return status, v2_answer_body(False, reason)
        return status, answer_body(False, reason, codes=[code])

    def answer_text(self, event: Event) -> str:
        body = answer_json(event)
        if body is None or "status" not in body:
            return super().answer_text(event)
        # v3 names its error codes; the v2 answer only repeats reasons per record
        codes = _dig(body, "errors", "codes")
        code_text = f" ({', '.join(str(c) for c in codes if c)})" if codes else ""
        return f"{body.get('status')}: {body.get('reason')}{code_text}"

    def test_event_code(self, event: Event) -> str | None:
        value = event.extra.get("test_event_code")
        return str(value) if value else None

    # --- dedup ------------------------------------------------------------------------

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if event.event_name is None or event.extra.get("not_a_conversion"):
            return None
        name = canonical_name(event.event_name)
        if event.event_id:
            return (event.pixel_id, name, event.event_id)
        # PURCHASE: "event_id can also map to your transaction_id" (BestPractices); a
        # pixel hit without its own client_dedup_id still merges on its transaction id
        transaction = event.extra.get("transaction_id")
        if event.source == "browser" and name == "PURCHASE" and transaction:
            return (event.pixel_id, name, transaction)
        return None

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_rule(self) -> str:
        return ("Snap merges a pixel event and a Snap Conversions API event of the same "
                "pixel when the pixel's client_dedup_id (cdid) equals data[].event_id and "
                "the event names match (letter case aside); for PURCHASE, event_id may also "
                "equal the pixel's transaction_id")

    def name_variant(self, browser_name: str | None, server_name: str | None) -> str | None:
        if browser_name and server_name and browser_name != server_name and \
                canonical_name(browser_name) == canonical_name(server_name):
            return (f"the Snap Pixel sent {browser_name!r} and the Snap Conversions API "
                    f"{server_name!r}: Snap compares event names without regard to letter "
                    "case and merged them, but reports list the spelling each side used; "
                    f"send {canonical_name(browser_name)!r} from both")
        return None

    def fix(self, code: str, event: Event | None = None) -> str | None:
        return texts.fix_text(code, event)

    # --- customer data ----------------------------------------------------------------

    #: every customer key travels as SHA-256 hex; sc_cookie1, sc_click_id, IP and
    #: User-Agent travel plain (pii_rules.PII_RULES)
    hashed_keys = frozenset(HASHED_KEYS)
    customer_fields = {field: key for field, key in KEY_OF_FIELD.items()
                       if key in HASHED_KEYS}
    digest_rule = staticmethod(hash_value)

    def identity_findings(self, pair: Any) -> list[Any]:
        return identity.identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        from .findings import snapchat_findings

        return snapchat_findings(result)

    # --- backend logs -----------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Snap Conversions API body, ``{"data": [...]}``, with the pixel id in
        ``pixel_id`` or a ``url`` (``https://tr.snapchat.com/v3/<PIXEL>/events``) and an
        optional ``time``. A v2 body is ``{"data": [...]}`` of events with
        ``event_type``. Meta reads plain ``{"data": [...]}`` lines first: give
        ``"platform": "snapchat"`` or the Snap URL to be sure the line lands here."""
        data = record.get("data")
        if not isinstance(data, list):
            return None
        url = record.get("url")
        items = [i for i in data if isinstance(i, dict)]
        is_v2 = any("event_type" in i for i in items)
        if isinstance(url, str) and (urlsplit(url).hostname or "") not in self.server_hosts:
            return None
        if not url:
            pixel = record.get("pixel_id") or next(
                (i.get("pixel_id") for i in items if i.get("pixel_id")), None)
            if pixel is None and not is_v2:
                return None
            url = (f"https://{API_HOST}/v2/conversion" if is_v2
                   else f"https://{API_HOST}/v3/{pixel}/events")
        body: Any = data if is_v2 else {k: v for k, v in record.items()
                                         if k not in ("url", "time", "pixel_id")}
        when = record.get("time")
        if not isinstance(when, (int, float)):
            times = [_seconds(i.get("event_time", i.get("timestamp"))) for i in items]
            when = next((t for t in times if t is not None), 0.0)
        return CapturedRequest("POST", url, [("Content-Type", "application/json")],
                               json.dumps(body).encode(), float(when), "log",
                               original_host=API_HOST, response_status=200)


SNAPCHAT = Snapchat()
