"""Meta: the browser Pixel (``/tr`` hits) and the Conversions API (``/{pixel}/events``).

All of Meta's wire facts live here, so a change on Meta's side is one edit.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

from ...events import CapturedRequest, Event
from ...validation import validate
from ...wire import (
    PayloadTooDeep,
    WireError,
    decompressed_body,
    form_params,
    json_body,
    loads,
    media_type,
    path_of,
    query_params,
)
from .. import CannedResponse, Platform, ServerAnswer, answer_json, register, stand_in_script
from . import pii_rules
from .texts import fix_text

NAME = "meta"
SCHEMA = Path(__file__).with_name("schema_capi_request.json")
MAX_EVENT_AGE_DAYS = 7
GRAPH_HOST = "graph.facebook.com"
_PIXEL_HOST = re.compile(r"^(?:www\.(?:[a-z0-9-]+\.)?)?facebook\.com$")
_EVENTS_PATH = re.compile(r"^/v(?P<version>\d+(?:\.\d+)?)/(?P<pixel>[^/]+)/events/?$")
_LIBRARY_PATH = re.compile(r"^/(?:[a-z]{2}_[A-Z]{2}/)?fbevents\.js$|^/signals/config/")
_BRACKETED = re.compile(r"^(cd|ud)\[(.+)\]$")


def fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(15)


def graph_error(
    message: str,
    *,
    code: int = 100,
    subcode: int | None = None,
    title: str | None = None,
    user_msg: str | None = None,
    error_type: str = "OAuthException",
    transient: bool = False,
) -> dict[str, Any]:
    """Meta's Graph API error object, shaped as Meta sends it."""
    error: dict[str, Any] = {
        "message": message,
        "type": error_type,
        "code": code,
        "is_transient": transient,
        "fbtrace_id": fbtrace_id(),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if title is not None:
        error["error_user_title"] = title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    return {"error": error}


def _maybe_json(value: str) -> Any:
    """Pixel ``cd[content_ids]``/``cd[contents]`` carry JSON arrays as strings."""
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return loads(stripped)
        except ValueError:
            return value
    return value


def _preview(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _graph_error_of(event: Event) -> dict[str, Any]:
    """The Graph API error object the sink answered this event's call with, or {}."""
    error = (answer_json(event) or {}).get("error")
    return error if isinstance(error, dict) else {}


def _as_seconds(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _events_in_strings(data: list[Any]) -> tuple[list[Any], list[int]]:
    """Meta's own Python SDK (facebook-business) sends ``data`` as an array of JSON
    *strings*, one per event, and Meta accepts it: read them as the objects they are.
    Returns the items and the indexes that arrived as strings."""
    items, as_strings = [], []
    for index, item in enumerate(data):
        if isinstance(item, str) and item.lstrip()[:1] == "{":
            try:
                item = loads(item)
                as_strings.append(index)
            except PayloadTooDeep:
                raise  # the whole call is refused as too deep, never half read
            except ValueError:
                pass  # left a string: _server_event names the index and the shape
        items.append(item)
    return items, as_strings


class Meta(Platform):
    name = NAME
    title = "Meta"
    tag_name = "the Meta Pixel (fbq)"
    api_name = "the Conversions API"
    server_hosts = frozenset({GRAPH_HOST})
    secret_params = frozenset({"access_token", "appsecret_proof"})
    max_event_age = MAX_EVENT_AGE_DAYS * 86400.0
    standard_events = (
        "AddPaymentInfo", "AddToCart", "AddToWishlist", "CompleteRegistration", "Contact",
        "CustomizeProduct", "Donate", "FindLocation", "InitiateCheckout", "Lead", "PageView",
        "Purchase", "Schedule", "Search", "StartTrial", "SubmitApplication", "Subscribe",
        "ViewContent",
    )
    samples_dir = Path(__file__).with_name("samples")
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale, a browser hit and a server call
    synthetic_sale = {"browser": "browser_get_purchase_advanced_matching.json",
                      "server": "server_json_purchase.json"}

    def is_transient(self, event: Event) -> bool:
        """5xx and 429, and any answer whose Graph error says ``is_transient``."""
        if super().is_transient(event):
            return True
        return bool(_graph_error_of(event).get("is_transient"))

    def answer_text(self, event: Event) -> str:
        error = _graph_error_of(event)
        if not error:
            return super().answer_text(event)
        return str(error.get("error_user_title") or error.get("message") or error)

    limited_use_flag = ("data_processing_options: [\"LDU\"] (Limited Data Use, with "
                        "data_processing_options_country and _state)")

    def limited_use(self, event: Event) -> bool:
        options = event.extra.get("data_processing_options")
        return isinstance(options, list) and "LDU" in options

    def journey_identity(self, event: Event) -> dict[str, str | None]:
        return {"_fbp": event.extra.get("fbp"), "_fbc (fbclid)": event.extra.get("fbc")}

    def fix(self, code: str, event: Event | None = None) -> str | None:
        return fix_text(code, event)

    # --- customer data ----------------------------------------------------------------

    #: external_id travels raw or hashed: hashing it is only recommended
    hashed_keys = pii_rules.HASHED
    coverage_columns = {"fbp": "fbp", "fbc": "fbc", "client_ip_address": "ip",
                        "client_user_agent": "ua"}

    def normalize_customer(self, key: str, raw: str, country: str | None) -> str | None:
        return pii_rules.normalize(key, raw, country)

    def customer_forms(self, key: str, raw: str, country: str | None) -> list[str]:
        return pii_rules.acceptable_forms(key, raw, country)

    def normalization_mistakes(self, key: str, raw: str,
                               country: str | None) -> list[tuple[str, str]]:
        return pii_rules.mistakes(key, raw, country)

    @property
    def finding_codes(self) -> dict[str, Any]:
        """The codes of Meta's PII and identity checks (``pii_checks``), in the
        catalogue from the start; imported when the registry asks, once it has loaded."""
        from .pii_checks import CODES

        return CODES

    def check_customer_data(self, result: Any, customer: Any) -> list[Any] | None:
        """Meta's full checks: hashes against Meta's normalization, fbp/fbc, user agent,
        source URL and IP parity (``pii_checks``)."""
        from .pii_checks import check

        return check(result, customer)

    def match_key_coverage(self, result: Any, customer: Any) -> list[Any]:
        """Coverage from the marks of Meta's checks, with fbp, fbc, IP and user agent."""
        from .coverage import event_coverage

        return event_coverage(result, customer)

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Conversions API body: ``{"data": [...]}`` plus optional
        ``pixel_id``, ``url`` and ``time``; events may be JSON strings, as
        facebook-business sends them."""
        if not isinstance(record.get("data"), list):
            return None
        pixel = str(record.get("pixel_id") or "0")
        url = record.get("url") or f"https://{GRAPH_HOST}/v21.0/{pixel}/events"
        body = {k: v for k, v in record.items() if k not in ("url", "pixel_id", "time")}
        when = record.get("time")
        if when is None:
            items, _ = _events_in_strings(body["data"])
            times = [e.get("event_time") for e in items if isinstance(e, dict)]
            when = next((t for t in times if isinstance(t, (int, float))), 0)
        return CapturedRequest("POST", url, [("Content-Type", "application/json")],
                               json.dumps(body).encode(), float(when), "log",
                               original_host=GRAPH_HOST, response_status=200)

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        return bool(_PIXEL_HOST.match(host)) and path.rstrip("/") == "/tr"

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host != "connect.facebook.net" or not _LIBRARY_PATH.match(path):
            return None
        if path.startswith("/signals/config/"):
            return CannedResponse(200, b"/* pixelcheck: no remote config offline */",
                                  "application/javascript")
        script = stand_in_script(Path(__file__).with_name("fbevents.js"))
        return CannedResponse(200, script, "application/javascript; charset=utf-8")

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        event = Event(
            platform=NAME,
            source="browser",
            pixel_id=None,
            event_name=None,
            event_id=None,
            event_time=None,
            arrival_time=request.arrival_time,
            raw=request,
        )
        try:
            params = query_params(request.url)
            if request.method.upper() == "POST":
                params += form_params(request, decompressed_body(request))
        except WireError as exc:
            event.error = f"pixel hit body unreadable: {exc}"
            return [event]

        plain: dict[str, str] = {}
        for key, value in params:
            match = _BRACKETED.match(key)
            if match:
                target = event.custom_data if match.group(1) == "cd" else event.user_data
                target[match.group(2)] = _maybe_json(value)
            else:
                plain[key] = value
        event.pixel_id = plain.get("id") or None
        event.event_name = plain.get("ev")
        event.event_id = plain.get("eid")
        event.page_url = plain.get("dl")
        event.event_time_raw = plain.get("ts")
        ts = _as_seconds(plain.get("ts"))
        event.event_time = ts / 1000.0 if ts is not None else None
        event.extra = {
            "params": plain,
            "referrer": plain.get("rl"),
            "fbp": plain.get("fbp"),
            "fbc": plain.get("fbc"),
            "user_agent": request.header("user-agent"),
        }
        missing = [name for name in ("id", "ev") if not plain.get(name)]
        if missing:
            what = " and ".join(f"`{m}`" for m in missing)
            event.error = f"pixel hit without {what} (a malformed or truncated beacon)"
        return [event]

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host != GRAPH_HOST and host not in ("127.0.0.1", "localhost"):
            return False
        return bool(_EVENTS_PATH.match(path))

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        match = _EVENTS_PATH.match(path_of(request.url))
        pixel_id = match.group("pixel") if match else None
        api_version = match.group("version") if match else None
        token, token_location = None, None
        for key, value in query_params(request.url):
            if key == "access_token":
                token, token_location = value, "query"

        def rejected(reason: str, error: dict[str, Any]) -> ServerAnswer:
            event = Event(
                platform=NAME, source="server", pixel_id=pixel_id, event_name=None,
                event_id=None, event_time=None, arrival_time=request.arrival_time,
                raw=request, error=reason,
            )
            return ServerAnswer([event], 400, error, token_location, token)

        try:
            body = decompressed_body(request)
            payload, body_kind = self._payload(request, body)
        except WireError as exc:
            return rejected(
                f"Conversions API body unreadable: {exc}",
                graph_error(f"(#100) Invalid request body: {exc}", title="Invalid Request Body"),
            )
        if not isinstance(payload, dict):
            return rejected(
                "Conversions API body is not a JSON object",
                graph_error("(#100) The request body must be an object with a data field"),
            )
        if payload.get("access_token") and token is None:
            token, token_location = str(payload["access_token"]), body_kind
        data = payload.get("data")
        if isinstance(data, str):
            try:
                data = loads(data)
            except ValueError as exc:
                return rejected(
                    f"`data` is not a JSON array: {exc}",
                    graph_error("(#100) param data must be an array.",
                                title="Invalid data parameter"),
                )
        if not isinstance(data, list):
            return rejected(
                "`data` is missing or not an array",
                graph_error("(#100) param data must be an array.", title="Invalid data parameter"),
            )
        try:
            data, string_items = _events_in_strings(data)
        except PayloadTooDeep as exc:
            return rejected(f"a `data` item is unreadable: {exc}",
                            graph_error(f"(#100) Invalid parameter: {exc}",
                                        title="Invalid parameter"))
        events = [
            self._server_event(item, index, pixel_id, api_version, payload, request)
            for index, item in enumerate(data)
        ]
        for index in string_items:
            events[index].extra["data_item_encoding"] = "json-string"
        bad = [e for e in events if e.error]
        if bad or not events:
            reason = bad[0].error if bad else "`data` is an empty array"
            return ServerAnswer(
                events or [Event(NAME, "server", pixel_id, None, None, None,
                                 request.arrival_time, raw=request, error=reason)],
                400,
                graph_error(f"(#100) {reason}", title="Invalid parameter"),
                token_location,
                token,
            )
        checked = {k: v for k, v in payload.items() if k != "access_token"}
        checked["data"] = data
        violations = validate(SCHEMA, checked)
        too_old = self._too_old(events)
        if violations or too_old:
            # One invalid event rejects the whole batch, as Meta does.
            reasons = [str(v) for v in violations] + too_old
            for event in events:
                event.extra["rejection"] = reasons
            if too_old:
                error = graph_error(
                    "Invalid parameter", subcode=2804003, title="Event Timestamp Too Old",
                    user_msg=f"{too_old[0]}. Events must be sent within "
                             f"{MAX_EVENT_AGE_DAYS} days of when they occurred.")
            else:
                error = graph_error(f"(#100) {reasons[0]}", title="Invalid parameter",
                                    user_msg="; ".join(reasons[:5]))
            return ServerAnswer(events, 400, error, token_location, token, violations)
        answer = {"events_received": len(events), "messages": [], "fbtrace_id": fbtrace_id()}
        return ServerAnswer(events, 200, answer, token_location, token)

    @staticmethod
    def _too_old(events: list[Event]) -> list[str]:
        out = []
        for event in events:
            index = event.extra.get("index")
            if event.event_time is not None and event.event_time < 1e11 and \
                    event.arrival_time - event.event_time > MAX_EVENT_AGE_DAYS * 86400:
                days = (event.arrival_time - event.event_time) / 86400
                out.append(f"data[{index}].event_time: {event.event_time_raw} is "
                           f"{days:.1f} days old")
        return out

    def _payload(self, request: CapturedRequest, body: bytes) -> tuple[Any, str]:
        """The decoded body and its kind ("json" or "form")."""
        kind = media_type(request)
        looks_json = body.lstrip()[:1] in (b"{", b"[")
        if kind == "application/json" or (kind not in ("application/x-www-form-urlencoded",
                                                       "multipart/form-data") and looks_json):
            return json_body(body), "json"
        fields = dict(form_params(request, body))
        if not fields:
            raise WireError("body is empty" if not body else
                            f"body is neither JSON nor a form (Content-Type {kind or 'missing'})")
        return fields, "form"

    def _server_event(
        self,
        item: Any,
        index: int,
        pixel_id: str | None,
        api_version: str | None,
        payload: dict[str, Any],
        request: CapturedRequest,
    ) -> Event:
        event = Event(
            platform=NAME, source="server", pixel_id=pixel_id, event_name=None, event_id=None,
            event_time=None, arrival_time=request.arrival_time, raw=request,
        )
        if not isinstance(item, dict):
            shape = type(item).__name__
            if isinstance(item, str):
                shape = f"string {_preview(item)} that is not a JSON object"
            event.error = (f"data[{index}] is a {shape}; Meta expects an event object "
                           "(or, as facebook-business sends it, a JSON string of one)")
            return event
        name = item.get("event_name")
        event.event_name = name if isinstance(name, str) else None
        event_id = item.get("event_id")
        event.event_id = str(event_id) if event_id is not None else None
        event.event_time_raw = item.get("event_time")
        event.event_time = _as_seconds(item.get("event_time"))
        user_data = item.get("user_data")
        custom_data = item.get("custom_data")
        event.user_data = user_data if isinstance(user_data, dict) else {}
        event.custom_data = custom_data if isinstance(custom_data, dict) else {}
        url = item.get("event_source_url")
        event.page_url = url if isinstance(url, str) else None
        event.extra = {
            "index": index,
            "api_version": api_version,
            "action_source": item.get("action_source"),
            "test_event_code": payload.get("test_event_code"),
            "fbp": event.user_data.get("fbp"),
            "fbc": event.user_data.get("fbc"),
            "user_agent": event.user_data.get("client_user_agent"),
            "client_ip_address": event.user_data.get("client_ip_address"),
            "data_processing_options": item.get("data_processing_options"),
        }
        if event.event_name is None:
            event.error = f"data[{index}] has no event_name"
        elif event.event_time is None:
            event.error = f"data[{index}] ({event.event_name}) has no numeric event_time"
        return event

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 400, graph_error(f"(#100) Invalid request body: {reason}",
                                title="Invalid Request Body")

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        if kind == "expired_token":
            return 400, graph_error(
                "Error validating access token: Session has expired.", code=190, subcode=463)
        if kind == "invalid_token":
            return 400, graph_error("Invalid OAuth access token - Cannot parse access token",
                                    code=190)
        if kind == "missing_token":
            return 400, graph_error("An access token is required to request this resource.",
                                    code=190)
        if kind == "timeout":
            return 504, graph_error("The request timed out.", code=2, transient=True)
        if kind == "429":
            return 429, graph_error("(#17) User request limit reached", code=17,
                                    transient=True, error_type="OAuthException")
        if kind == "transient":
            return 500, graph_error("An unexpected error has occurred. Please retry your "
                                    "request later.", code=2, transient=True)
        return 500, graph_error("An unknown error has occurred.", code=1, transient=True)

    # --- dedup ------------------------------------------------------------------------

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if not event.event_id or event.event_name is None:
            return None
        return (event.pixel_id, event.event_name, event.event_id)

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_rule(self) -> str:
        return ("Meta merges a browser and a server event when pixel id, event name "
                "(`ev` = `event_name`) and event id (`eid` = `event_id`) are byte-for-byte equal")


META = register(Meta())
