"""Google Analytics 4: gtag.js collection hits (``/g/collect``) and the Measurement
Protocol (``/mp/collect``, ``/debug/mp/collect``).

All of GA4's wire facts live in this folder (FACTS.md says which are confirmed and
by what), so a change on Google's side is one edit. Two things set GA4 apart from
the other platforms and shape this module:

* **Google never says no.** ``/mp/collect`` answers 2xx to anything, even a body it
  throws away. The sink therefore answers 204 like Google, and the events Google
  would drop carry ``extra["rejected_by_platform"]`` (a sentence) so the findings can
  say so; rule violations that do not drop the event are in
  ``extra["validation_messages"]`` in Google's own shape.
* **Only purchases deduplicate**, on ``transaction_id``, and only within one user
  (Google's help: "only de-duplicates transactions with the same transaction ID
  from the same user"). Every other event is counted once per side, by design.
"""

from __future__ import annotations

import json
import re
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from ...events import CapturedRequest, Event
from ...validation import validate, validator
from ...wire import (
    WireError,
    body_text,
    decompressed_body,
    host_of,
    json_body,
    path_of,
    query_params,
)
from .. import CannedResponse, Platform, ServerAnswer, stand_in_script
from . import pii_rules

NAME = "ga4"
HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema_mp.json"
SAMPLES = HERE / "samples"

#: gtag.js collection hosts (PLATFORMS.md 2b: seen with Google's own builds)
COLLECTION_HOSTS = frozenset({"www.google-analytics.com", "analytics.google.com",
                              "region1.google-analytics.com"})
#: also *.google-analytics.com / *.analytics.google.com: Google's regional hosts
_COLLECTION_HOST = re.compile(
    r"^(?:[a-z0-9-]+\.)*(?:google-analytics\.com|analytics\.google\.com)$")
#: hosts that receive a copy of a hit gtag.js already sent to a collection host
MIRROR_HOSTS = frozenset({"stats.g.doubleclick.net"})
COLLECT_PATH = "/g/collect"
LIBRARY_HOST = "www.googletagmanager.com"
#: the Measurement Protocol's hosts (the proxy hands them to the sink)
SERVER_HOSTS = frozenset({"www.google-analytics.com", "region1.google-analytics.com"})
MP_PATH = "/mp/collect"
DEBUG_PATH = "/debug/mp/collect"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

#: timestamp_micros may backdate an event this far (the Measurement Protocol guide)
MAX_EVENT_AGE_HOURS = 72
#: "The post body must be smaller than 130kB" (the Measurement Protocol guide)
MAX_BODY_BYTES = 130_000
MAX_EVENTS = 25

#: the events GA4 merges across sources, on transaction_id
DEDUP_EVENTS = frozenset({"purchase"})
#: Google merges a transaction id only within one user: the dedup key carries the
#: client id, so a Measurement Protocol purchase under another client_id stays a
#: second purchase, as in GA4's reports. False: key on measurement id + transaction id.
DEDUP_PER_CLIENT = True

#: what every silently dropped event says, so findings can group them
DROPPED = "Google silently drops this"

# pr1=id<sku>~nm<name>~pr<price>~qt<qty>~...: two-letter keys of an item token
_ITEM_KEYS = {
    "id": "item_id", "nm": "item_name", "pr": "price", "qt": "quantity", "br": "item_brand",
    "ca": "item_category", "c2": "item_category2", "c3": "item_category3",
    "c4": "item_category4", "c5": "item_category5", "va": "item_variant",
    "cp": "coupon", "ds": "discount", "af": "affiliation", "lp": "index",
    "li": "item_list_id", "ln": "item_list_name", "lo": "location_id",
}
_ITEM_NUMBERS = ("price", "quantity", "discount", "index")
_PRODUCT_KEY = re.compile(r"^pr(\d+)$")
#: hit parameters kept in ``extra`` under readable names
_HIT_EXTRA = {
    "cid": "client_id", "sid": "session_id", "sct": "session_count", "seg": "session_engaged",
    "uid": "user_id", "_et": "engagement_time_msec", "gcs": "consent", "gcd": "consent_default",
    "v": "protocol_version", "_s": "hit_sequence", "dt": "page_title", "dr": "referrer",
    "_p": "page_load_id", "gtm": "tag_version", "ul": "language", "sr": "screen_resolution",
    "_dbg": "debug_mode", "_fv": "first_visit", "_ss": "session_start",
}


def _number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text  # kept as sent: a checker can see the unparsable value


def _parse_item(token: str) -> dict[str, Any]:
    """``id123~nmShirt~pr9.99~qt2`` -> {"item_id": "123", "item_name": "Shirt", ...}.

    Custom item parameters travel as ``k0name~v0value`` pairs."""
    item: dict[str, Any] = {}
    custom_keys: dict[str, str] = {}
    custom_values: dict[str, str] = {}
    for part in token.split("~"):
        if len(part) < 2:
            continue
        key, value = part[:2], part[2:]
        if key[0] in "kv" and key[1].isdigit():
            (custom_keys if key[0] == "k" else custom_values)[key[1]] = value
        else:
            name = _ITEM_KEYS.get(key, key)
            item[name] = _number(value) if name in _ITEM_NUMBERS else value
    for slot, name in custom_keys.items():
        item[name] = custom_values.get(slot, "")
    return item


def parse_user_data(text: str) -> dict[str, Any]:
    """``tv.1~em.<digest>~pn.<digest>~fn0.<digest>~co0.NO`` -> wire keys and values.

    Every key keeps a list (Google allows several emails/phones); ``tv`` is the
    format version."""
    out: dict[str, Any] = {}
    for token in text.split("~"):
        key, dot, value = token.partition(".")
        if not dot or not key:
            continue
        if key == "tv":
            out["tv"] = value
            continue
        out.setdefault(key, []).append(value)
    return out


def _micros_to_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number / 1_000_000


@dataclass(frozen=True)
class ValidationMessage:
    """One entry of ``/debug/mp/collect``'s ``validationMessages``, plus what pixelcheck
    needs to know: which event it concerns and whether Google drops that event."""

    field_path: str
    description: str
    code: str
    #: index in events[] (None: the whole request)
    index: int | None = None
    #: True when Google discards the event (or, with ``index`` None, the request)
    drops: bool = False

    def to_google(self) -> dict[str, str]:
        return {"fieldPath": self.field_path, "description": self.description,
                "validationCode": self.code}


def _schema_messages(payload: Any) -> list[ValidationMessage]:
    """The schema's verdict on a Measurement Protocol body, in Google's codes."""
    out: list[ValidationMessage] = []
    for error in sorted(validator(SCHEMA).iter_errors(payload), key=lambda e: list(
            map(str, e.absolute_path))):
        out.extend(_google_message(error))
    return out


def _google_message(error: Any) -> list[ValidationMessage]:
    path = list(error.absolute_path)
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                    for i, p in enumerate(path)) or "(body)"
    index = path[1] if len(path) >= 2 and path[0] == "events" and isinstance(path[1], int) \
        else None
    kind = error.validator
    schema_path = list(error.schema_path)
    instance = error.instance

    # an event's name: the event is dropped
    if index is not None and len(path) == 3 and path[2] == "name":
        name = instance
        if kind == "not":
            return [ValidationMessage(
                "events", f"Event at index: [{index}] has reserved name [{name}].",
                "NAME_RESERVED", index, True)]
        if kind == "pattern":
            if not str(name)[:1].isalpha():
                why = "Names must start with an alphabetic character."
            elif len(str(name)) > 40:
                why = "Names must be 40 characters or fewer."
            else:
                why = "Only alphanumeric characters and underscores are allowed."
            return [ValidationMessage(
                "events", f"Event at index: [{index}] has invalid name [{name}]. {why}",
                "NAME_INVALID", index, True)]
        return [ValidationMessage(f"events[{index}].name", f"Event at index: [{index}] has "
                                  f"a name that is not a string.", "VALUE_INVALID", index, True)]
    # a parameter or user property name (propertyNames reports the name as instance)
    if "propertyNames" in schema_path:
        code = "NAME_RESERVED" if kind == "not" else "NAME_INVALID"
        what = "reserved" if kind == "not" else "invalid"
        return [ValidationMessage(where, f"Parameter name [{instance}] at {where} is {what}.",
                                  code, index, False)]
    if kind == "required":
        missing = [p for p in error.validator_value
                   if not isinstance(instance, dict) or p not in instance]
        field = missing[0] if missing else "?"
        full = f"{where}.{field}" if path else field
        # no client_id or no events: nothing of the request is recorded; no name:
        # that event is; a purchase without transaction_id is kept (and never merged)
        drops = not path or (index is not None and len(path) == 2)
        return [ValidationMessage(full, f"Unable to find non-empty parameter [{field}] "
                                  f"value in request at {where}.", "VALUE_REQUIRED",
                                  index, drops)]
    if kind == "dependentRequired":
        needed = next(iter(error.validator_value.values()), ["?"])
        return [ValidationMessage(where, f"{where} must also carry {', '.join(needed)}.",
                                  "VALUE_REQUIRED", index, False)]
    if kind == "anyOf" and path and path[-2:-1] == ["items"]:
        return [ValidationMessage(where, f"Item at {where} needs item_id or item_name.",
                                  "VALUE_REQUIRED", index, False)]
    if kind in ("maxItems", "maxProperties"):
        if path == ["events"]:
            return [ValidationMessage("events", f"Request has [{len(instance)}] events; at "
                                      f"most {MAX_EVENTS} are allowed.",
                                      "EXCEEDED_MAX_ENTITIES", None, True)]
        count = len(instance)
        return [ValidationMessage(where, f"{where} has [{count}] entries; at most "
                                  f"{error.validator_value} are allowed.",
                                  "EXCEEDED_MAX_ENTITIES", index, False)]
    if kind == "minItems" and path == ["events"]:
        return [ValidationMessage("events", "Request has no events.", "VALUE_REQUIRED",
                                  None, True)]
    if kind in ("maxLength", "minimum", "maximum", "minLength"):
        return [ValidationMessage(where, f"Value at {where} is out of bounds "
                                  f"({error.message}).", "VALUE_OUT_OF_BOUNDS", index,
                                  path in (["client_id"],))]
    # wrong types: a body or events[] of the wrong shape loses everything, an event
    # that is not an object loses itself, a parameter of the wrong type is kept
    drops = path in ([], ["events"], ["client_id"]) or (index is not None and len(path) == 2)
    return [ValidationMessage(where, f"Value at {where} is invalid: {error.message}.",
                              "VALUE_INVALID", None if not path else index, drops)]


class GA4(Platform):
    name = NAME
    title = "Google Analytics 4"
    tag_name = "gtag.js"
    api_name = "the Measurement Protocol"
    server_hosts = SERVER_HOSTS
    # what the sink's fail_next can inject; Google's outages are plain 5xx/429
    fault_kinds = ("500", "429", "timeout")
    secret_headers = frozenset()
    secret_params = frozenset({"api_secret"})
    max_event_age = MAX_EVENT_AGE_HOURS * 3600.0
    samples_dir = SAMPLES
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale; the server sample was recorded with another client id
    synthetic_sale = {"browser": "browser_purchase_standin.json",
                      "server": "server_mp_purchase_ga4mp.json",
                      "server_same_shop": {"1795912411": "1795912410"}}
    event_time_unit = "Unix microseconds (timestamp_micros)"
    #: Google's recommended event names (lower case: GA4 names are case-sensitive)
    standard_events = (
        "add_payment_info", "add_shipping_info", "add_to_cart", "add_to_wishlist",
        "begin_checkout", "generate_lead", "login", "page_view", "purchase", "refund",
        "remove_from_cart", "search", "select_item", "select_promotion", "sign_up",
        "view_cart", "view_item", "view_item_list", "view_promotion",
    )
    #: customer keys GA4 hashes (city, region, postal code and country travel in clear)
    hashed_keys = frozenset(pii_rules.HASHED_KEYS)
    #: "google" names GA4's rules too (Google's normalization serves its other products)
    aliases = ("google",)

    def __init__(self) -> None:
        # error_answer gets only the request, yet a bad api_secret must mark that
        # request's events (Google answers it 2xx too): remember the last answers'
        # events by request, weakly, so nothing outlives its request
        self._recent: OrderedDict[
            int, tuple[weakref.ref[CapturedRequest], list[Event], dict[str, Any]]] = OrderedDict()
        self._recent_lock = threading.Lock()

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        if path.rstrip("/") != COLLECT_PATH:
            return False
        # doubleclick's copy is answered offline too, so the page never waits on it,
        # but its events are marked as copies (see decode_browser)
        return host in COLLECTION_HOSTS or host in MIRROR_HOSTS or \
            bool(_COLLECTION_HOST.match(host))

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        # Google answers /g/collect with 204 No Content and an empty body
        return CannedResponse(204, b"", "text/plain")

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host != LIBRARY_HOST:
            return None
        if path.rstrip("/") == "/gtag/js":
            script = stand_in_script(HERE / "gtag.js")
            return CannedResponse(200, script, "application/javascript; charset=utf-8")
        if path.startswith("/gtag/destination"):
            # newer gtag.js builds load a per-destination config; offline it is empty
            return CannedResponse(200, b"/* pixelcheck: no destination config offline */",
                                  "application/javascript")
        return None

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        host = host_of(request.url)
        try:
            shared = query_params(request.url)
            lines = self._body_lines(request) if request.method.upper() == "POST" else []
        except WireError as exc:
            return [self._browser_event(request, {}, error=f"gtag.js hit body unreadable: {exc}")]
        if not lines:
            hits = [dict(shared)]
        else:
            # the older multi-event POST: shared parameters in the query, one event
            # per body line; a line's own parameters win over the shared ones
            hits = [{**dict(shared), **dict(parse_qsl(line, keep_blank_values=True))}
                    for line in lines]
        events = []
        for index, params in enumerate(hits):
            event = self._browser_event(request, params)
            if len(hits) > 1:
                event.extra["batch_index"], event.extra["batch_size"] = index, len(hits)
            if host in MIRROR_HOSTS:
                # the same event gtag.js sent to google-analytics.com: never a second
                # conversion (PLATFORMS.md 2b)
                event.extra["mirror_of"] = "www.google-analytics.com/g/collect"
            events.append(event)
        return events

    @staticmethod
    def _body_lines(request: CapturedRequest) -> list[str]:
        body = decompressed_body(request)
        if not body.strip():
            return []
        # one event per line; Google's own lines never hold raw whitespace (values are
        # percent-encoded), so any whitespace separates them
        return [line for line in body_text(body).split() if line]

    def _browser_event(self, request: CapturedRequest, params: dict[str, str],
                       error: str | None = None) -> Event:
        event = Event(platform=NAME, source="browser", pixel_id=params.get("tid") or None,
                      event_name=params.get("en"), event_id=None,
                      # a hit carries no event time: Google stamps it on arrival
                      event_time=request.arrival_time, arrival_time=request.arrival_time,
                      raw=request, error=error)
        if error is not None:
            return event
        custom: dict[str, Any] = {}
        items: list[tuple[int, dict[str, Any]]] = []
        for key, value in params.items():
            if key.startswith("ep."):
                custom[key[3:]] = value
            elif key.startswith("epn."):
                custom[key[4:]] = _number(value)
            elif key == "cu":
                custom["currency"] = value
            elif (match := _PRODUCT_KEY.match(key)) is not None:
                items.append((int(match.group(1)), _parse_item(value)))
        if items:
            custom["items"] = [item for _, item in sorted(items, key=lambda pair: pair[0])]
        event.custom_data = custom
        event.page_url = params.get("dl") or None
        if event.event_name in DEDUP_EVENTS and "ep.transaction_id" in params:
            # "" is kept as "": Google merges every empty-id purchase into one
            event.event_id = params["ep.transaction_id"]
        event.extra = {name: params[key] for key, name in _HIT_EXTRA.items() if key in params}
        event.extra["params"] = params
        event.extra["user_agent"] = request.header("user-agent")
        # the ad click id arrives in the landing page's URL; GA4 ties it to the session
        # (cid + sid), so later hits and the Measurement Protocol carry no gclid
        landing = parse_qs(urlsplit(event.page_url or "").query)
        for click_key in ("gclid", "gbraid", "wbraid"):
            if landing.get(click_key):
                event.extra[click_key] = landing[click_key][0]
        if "em" in params:
            event.user_data = parse_user_data(params["em"])
            event.extra["customer_encoding"] = "base64url"
            if not any(v for k, vs in event.user_data.items() if k != "tv" for v in vs):
                event.extra["user_data_empty"] = (
                    "the hit carries an empty tv.1~em.: gtag('set', 'user_data', ...) ran "
                    "after the event, or its values were empty")
        missing = [name for name in ("en", "tid") if not params.get(name)]
        if missing:
            what = " and ".join(f"`{m}`" for m in missing)
            event.error = f"gtag.js hit without {what} (a malformed or truncated hit)"
        return event

    # --- server side ------------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Measurement Protocol body (``client_id`` or ``app_instance_id``, and
        ``events``), with ``measurement_id`` (or ``firebase_app_id``) and ``api_secret``
        as fields of the line or in a ``url``, and an optional ``time`` (Unix seconds).
        Google answers 2xx to anything, so the answer is left to the decoder's checks."""
        if not isinstance(record.get("events"), list) or not (
                "client_id" in record or "app_instance_id" in record):
            return None
        url = record.get("url")
        keys = ("measurement_id", "firebase_app_id", "api_secret")
        if not isinstance(url, str):
            if not (record.get("measurement_id") or record.get("firebase_app_id")):
                return None
            query = urlencode({k: str(record[k]) for k in keys if record.get(k)})
            url = f"https://www.google-analytics.com{MP_PATH}?{query}"
        body = {k: v for k, v in record.items() if k not in ("url", "time", *keys)}
        when = record.get("time")
        if not isinstance(when, (int, float)):
            micros = record.get("timestamp_micros")
            when = micros / 1e6 if isinstance(micros, (int, float)) else 0.0
        return CapturedRequest("POST", url, [("Content-Type", "application/json")],
                               json.dumps(body).encode(), float(when), "log",
                               original_host=urlsplit(url).hostname)

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host not in SERVER_HOSTS and host not in _LOOPBACK:
            return False
        return path.rstrip("/") in (MP_PATH, DEBUG_PATH)

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        debug = path_of(request.url).rstrip("/") == DEBUG_PATH
        query = dict(query_params(request.url))
        measurement_id = query.get("measurement_id") or query.get("firebase_app_id")
        token = query.get("api_secret")
        token_location = "query" if "api_secret" in query else None
        ok_status = 200 if debug else 204

        def answer(events: list[Event], messages: list[ValidationMessage]) -> ServerAnswer:
            body: dict[str, Any] = ({"validationMessages": [m.to_google() for m in messages]}
                                    if debug else {})
            for event in events:
                event.extra.setdefault("endpoint", DEBUG_PATH if debug else MP_PATH)
            self._remember(request, events, body)
            return ServerAnswer(events, ok_status, body, token_location, token)

        def undecodable(reason: str, code: str = "VALUE_INVALID") -> ServerAnswer:
            event = Event(NAME, "server", measurement_id, None, None, None,
                          request.arrival_time, raw=request,
                          error=f"{reason}; {DROPPED} (it answers 2xx all the same)")
            return answer([event], [ValidationMessage("", reason, code, None, True)])

        try:
            body = decompressed_body(request)
            payload = json_body(body)
        except WireError as exc:
            return undecodable(f"Measurement Protocol body unreadable: {exc}")
        if not isinstance(payload, dict):
            return undecodable("Measurement Protocol body is not a JSON object")
        raw_events = payload.get("events")
        if not isinstance(raw_events, list) or not raw_events:
            return undecodable("`events` is missing, empty or not an array", "VALUE_REQUIRED")

        events = [self._server_event(item, index, measurement_id, payload, request)
                  for index, item in enumerate(raw_events)]
        messages = _schema_messages(payload) + self._clock_messages(events)
        drops_all: list[str] = []
        if not measurement_id:
            messages.insert(0, ValidationMessage(
                "measurement_id", "Unable to find non-empty parameter [measurement_id] value "
                "in request.", "VALUE_REQUIRED", None, True))
        if len(body) >= MAX_BODY_BYTES:
            messages.insert(0, ValidationMessage(
                "", f"Request body is {len(body)} bytes; it must be smaller than 130kB.",
                "VALUE_OUT_OF_BOUNDS", None, True))
        if not debug and not token:
            drops_all.append("no api_secret was sent: " + DROPPED)
        if debug:
            # the validation server never records anything: whatever it says, these
            # events are not in GA4's reports
            drops_all.append(f"sent to the validation server {DEBUG_PATH}: Google validates "
                             "these events but never records them")
        for message in messages:
            if message.drops and message.index is None:
                drops_all.append(f"{message.field_path or 'body'}: {message.description} "
                                 f"({message.code}): {DROPPED}")
        for event in events:
            mine = [m for m in messages if m.index is None or m.index == event.extra["index"]]
            if mine:
                event.extra["validation_messages"] = [m.to_google() for m in mine]
            reasons = list(drops_all) + [
                f"{m.description} ({m.code}): {DROPPED}" for m in mine
                if m.drops and m.index is not None]
            if reasons:
                event.extra["rejected_by_platform"] = "; ".join(dict.fromkeys(reasons))
        answered = answer(events, messages)
        if any(e.extra.get("rejected_by_platform") for e in events):
            # nothing is refused on the wire, but these rules cost events
            answered.violations = validate(SCHEMA, payload)
        return answered

    def _server_event(self, item: Any, index: int, measurement_id: str | None,
                      payload: dict[str, Any], request: CapturedRequest) -> Event:
        event = Event(NAME, "server", measurement_id, None, None, None, request.arrival_time,
                      raw=request)
        client_id = payload.get("client_id", payload.get("app_instance_id"))
        user_data = payload.get("user_data")
        event.extra = {
            "index": index,
            "client_id": str(client_id) if client_id is not None else None,
            "user_id": payload.get("user_id"),
            "consent": payload.get("consent"),
            "non_personalized_ads": payload.get("non_personalized_ads"),
            "validation_behavior": payload.get("validation_behavior"),
            "user_agent": request.header("user-agent"),
            "test_event_code": None,
        }
        if isinstance(user_data, dict):
            event.user_data = dict(user_data)
            event.extra["customer_encoding"] = "hex"
        if not isinstance(item, dict):
            event.error = (f"events[{index}] is a {type(item).__name__}; Google expects an "
                           f"event object {{name, params}}; {DROPPED}")
            return event
        name = item.get("name")
        event.event_name = name if isinstance(name, str) else None
        params = item.get("params")
        params = params if isinstance(params, dict) else {}
        event.custom_data = {k: v for k, v in params.items()
                             if k not in ("session_id", "engagement_time_msec", "debug_mode")}
        for key in ("session_id", "engagement_time_msec", "debug_mode"):
            if key in params:
                event.extra[key] = params[key]
        if event.event_name in DEDUP_EVENTS and params.get("transaction_id") is not None:
            event.event_id = str(params["transaction_id"])
        page = params.get("page_location")
        event.page_url = page if isinstance(page, str) else None
        # an event's own timestamp_micros wins over the request's
        raw_time = item.get("timestamp_micros", payload.get("timestamp_micros"))
        event.event_time_raw = raw_time
        seconds = _micros_to_seconds(raw_time) if raw_time is not None else None
        event.event_time = seconds if seconds is not None else request.arrival_time
        if event.event_name is None:
            event.error = f"events[{index}] has no name; {DROPPED}"
        return event

    @staticmethod
    def _clock_messages(events: list[Event]) -> list[ValidationMessage]:
        out = []
        for event in events:
            if event.event_time_raw is None or event.event_time is None:
                continue
            age = event.arrival_time - event.event_time
            if age > MAX_EVENT_AGE_HOURS * 3600:
                index = event.extra["index"]
                out.append(ValidationMessage(
                    "timestamp_micros", f"Event at index: [{index}] has timestamp_micros "
                    f"[{event.event_time_raw}], {age / 3600:.0f} hours old; events can be "
                    f"backdated up to {MAX_EVENT_AGE_HOURS} hours.", "VALUE_OUT_OF_BOUNDS",
                    index, True))
            elif age < -300:
                index = event.extra["index"]
                out.append(ValidationMessage(
                    "timestamp_micros", f"Event at index: [{index}] has timestamp_micros "
                    f"[{event.event_time_raw}] in the future; it should only record the past.",
                    "VALUE_OUT_OF_BOUNDS", index, False))
        return out

    def _remember(self, request: CapturedRequest, events: list[Event],
                  body: dict[str, Any]) -> None:
        with self._recent_lock:
            self._recent[id(request)] = (weakref.ref(request), events, body)
            while len(self._recent) > 256:
                self._recent.popitem(last=False)

    def _answered(self, request: CapturedRequest) -> tuple[list[Event], dict[str, Any]]:
        """The events and answer body ``handle_server`` gave this very request."""
        with self._recent_lock:
            entry = self._recent.get(id(request))
        if entry is None or entry[0]() is not request:
            return [], {}
        return entry[1], entry[2]

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        # the Measurement Protocol answers 2xx whatever it drops
        return (200, {"validationMessages": [ValidationMessage(
            "", reason, "VALUE_INVALID", None, True).to_google()]}) \
            if path_of(request.url).rstrip("/") == DEBUG_PATH else (204, {})

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        if kind in ("invalid_token", "missing_token"):
            # Google accepts the call and drops the events without a word: answer the
            # same, and say it on the events so the findings can
            why = ("api_secret is not the expected one" if kind == "invalid_token"
                   else "no api_secret was sent")
            events, body = self._answered(request)
            for event in events:
                earlier = event.extra.get("rejected_by_platform")
                reason = f"{why}: {DROPPED} events"
                event.extra["rejected_by_platform"] = f"{earlier}; {reason}" if earlier else reason
            if path_of(request.url).rstrip("/") == DEBUG_PATH:
                # the validation server does not check the secret: same messages as ever
                return 200, body or {"validationMessages": []}
            return 204, {}
        if kind == "429":
            return 429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                   "message": "Too many requests"}}
        if kind == "timeout":
            return 504, {"error": {"code": 504, "message": "Gateway Timeout"}}
        # "500", "transient", "expired_token" (no such thing for an api_secret):
        # Google's own 5xx bodies are HTML pages; the sink answers JSON, so say it short
        return 500, {"error": {"code": 500, "message": "Internal Server Error"}}

    def test_event_code(self, event: Event) -> str | None:
        # GA4 has no test code: a call to the validation server is the test mode
        return DEBUG_PATH if event.extra.get("endpoint") == DEBUG_PATH else None

    def answer_text(self, event: Event) -> str:
        if event.extra.get("rejected_by_platform"):
            return f"2xx, and {event.extra['rejected_by_platform']}"
        return super().answer_text(event)

    # --- dedup ------------------------------------------------------------------------

    def deduplicates(self, event_name: str | None) -> bool:
        return event_name in DEDUP_EVENTS

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if event.event_name not in DEDUP_EVENTS or event.event_id is None:
            # other events are never merged; a purchase without transaction_id neither
            return None
        if event.extra.get("mirror_of"):
            return None
        key: tuple[Any, ...] = (event.pixel_id, event.event_name, event.event_id)
        if DEDUP_PER_CLIENT:
            key += (event.extra.get("client_id"),)
        return key

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_rule(self) -> str:
        return ("GA4 counts a purchase once per transaction_id: the gtag.js purchase and the "
                "Measurement Protocol purchase must carry the same non-empty transaction_id "
                "(and the same client_id, as Google merges only within one user); other "
                "events are never merged")

    def name_variant(self, browser_name: str | None, server_name: str | None) -> str | None:
        if browser_name and server_name and browser_name != server_name and \
                browser_name.lower() == server_name.lower() == "purchase":
            return ("GA4 event names are case-sensitive: only 'purchase' is the ecommerce "
                    "purchase that carries revenue and merges on transaction_id")
        return None

    limited_use_flag = ("consent: {ad_user_data: \"DENIED\", ad_personalization: "
                        "\"DENIED\"} in the Measurement Protocol body (consent mode)")

    def limited_use(self, event: Event) -> bool:
        consent = event.extra.get("consent")
        if event.extra.get("non_personalized_ads") is True:
            return True
        return isinstance(consent, dict) and "DENIED" in (
            str(consent.get("ad_user_data", "")).upper(),
            str(consent.get("ad_personalization", "")).upper())

    def journey_identity(self, event: Event) -> dict[str, str | None]:
        # the gclid's attribution lives in the session the landing page started: a
        # purchase under another client_id or session_id no longer belongs to the click
        session = event.extra.get("session_id")
        return {"_ga (client_id)": event.extra.get("client_id"),
                "_ga_<id> (session_id)": str(session) if session is not None else None}

    def fix(self, code: str, event: Event | None = None) -> str | None:
        from .texts import fix_text

        return fix_text(code, event)

    # --- customer data ----------------------------------------------------------------

    def normalize_customer(self, key: str, raw: str, country: str | None) -> str | None:
        if key not in pii_rules.HASHED_KEYS + pii_rules.PLAIN_KEYS:
            return None
        return pii_rules.normalize(key, raw)

    def expected_value(self, key: str, raw: str) -> str | None:
        try:
            return pii_rules.hash_value(key, raw) or None
        except ValueError:
            return None

    def customer_values(self, event: Event) -> dict[str, list[Any]]:
        """Common keys with hex digests (browser base64url digests converted, so a PII
        check compares like with like; the wire encoding is in
        ``extra["customer_encoding"]``); plain keys (ct, st, zp, country) as sent."""
        out: dict[str, list[Any]] = {}

        def add(key: str, value: Any) -> None:
            if value in (None, ""):
                return
            out.setdefault(key, []).append(
                pii_rules.as_hex(value) if key in pii_rules.HASHED_KEYS else value)

        data = event.user_data or {}
        if event.source == "browser":
            for wire_key, values in data.items():
                common = pii_rules.BROWSER_KEYS.get(wire_key.rstrip("0123456789"))
                if common is None or not isinstance(values, list):
                    continue
                for value in values:
                    add(common, value)
        else:
            for field in ("sha256_email_address", "sha256_phone_number"):
                values = data.get(field)
                for value in values if isinstance(values, list) else [values]:
                    add(pii_rules.SERVER_KEYS[field], value)
            addresses = data.get("address")
            for address in addresses if isinstance(addresses, list) else [addresses]:
                if isinstance(address, dict):
                    for field, value in address.items():
                        if field in pii_rules.SERVER_KEYS:
                            add(pii_rules.SERVER_KEYS[field], value)
            if event.extra.get("user_id"):
                add("external_id", event.extra["user_id"])
        return out

    def identity_findings(self, pair: Any) -> list[Any]:
        from .identity import identity_findings

        return identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        """GA4's own findings on a match result (see findings.py); a hook for the core."""
        from .findings import ga4_findings

        return ga4_findings(result)


def sample_files() -> list[Path]:
    return sorted(SAMPLES.glob("*.json"))


def load_sample(path: Path) -> tuple[dict[str, Any], CapturedRequest]:
    """A sample file and its request, ready for decode_browser/handle_server."""
    data = json.loads(path.read_text(encoding="utf-8"))
    request = CapturedRequest.from_dict({
        "arrival_time": time.time(),
        "channel": "proxy" if data["kind"] == "browser" else "sink",
        **data["request"],
    })
    return data, request
