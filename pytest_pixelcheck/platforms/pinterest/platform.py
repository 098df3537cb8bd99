"""Pinterest: the Pinterest Tag (``pintrk``, GET hits to ct.pinterest.com) and the
Conversions API v5 (``POST /v5/ad_accounts/{ad_account_id}/events`` on
api.pinterest.com).

All of Pinterest's wire facts live in this folder; FACTS.md says which are confirmed by
a real client or library and which are inferred from documentation.

Four Pinterest habits shape this module:

* **Two hits per tag event.** The tag first calls ``ct.pinterest.com/user/`` with the
  event and, only when that answer is JSON, sends the same event again to ``/v3/``.
  The ``/user/`` hit is the event; a ``/v3/`` that follows it is marked
  ``extra["mirror_of"]`` so the core counts the pair once. A ``/v3/`` with no
  ``/user/`` before it (an older capture) is the event itself. ``pintrk('page')`` goes
  out as ``event=init``, which is no conversion.
* **Two spellings of one event.** The tag writes ``checkout``, ``pagevisit``,
  ``addtocart``; the API wants ``checkout``, ``page_visit``, ``add_to_cart``. The dedup
  key maps both onto the API's name; an API call that uses the tag's spelling does not
  merge and gets its own finding.
* **No shared account id on the wire.** The tag sends its tag id (``tid``), the API
  call names an ad account; nothing on either wire links the two. ``pixel_id`` is
  therefore None on both sides (the ids are kept in ``extra["tag_id"]`` and
  ``extra["ad_account_id"]``) and the dedup key is event name + ``event_id``.
* **Classic HTTP errors** with ``{"code", "message"}`` bodies: 400 code 4196,
  401 code 2 "Authentication failed.", 422 "Not all events were successfully
  processed." with each event's ``error_message``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from ...events import CapturedRequest, Event
from ...validation import validate, validator
from ...wire import (
    WireError,
    body_text,
    decompressed_body,
    host_of,
    json_body,
    loads,
    path_of,
    query_params,
)
from .. import TRANSPARENT_GIF, CannedResponse, Platform, ServerAnswer, answer_json, stand_in_script
from . import identity
from .pii_rules import HASHED_KEYS, OTHER_HASHED_FIELDS, hash_value, is_hashed

NAME = "pinterest"
HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
SCHEMA = HERE / "schema_conversion_events.json"

COLLECTION_HOST = "ct.pinterest.com"
#: ct.pinterest.com paths: the event hits and the tag's telemetry
HIT_PATHS = {"/v3": "v3", "/user": "user", "/stats": "stats"}
LIBRARY_HOST = "s.pinimg.com"
LIBRARY_PATH = "/ct/core.js"
#: code core.js pulls in (ct/lib/main.<hash>.js): the stand-in needs none of it
_LIBRARY_PART = re.compile(r"^/ct/lib/[^/]+\.js$")

API_HOST = "api.pinterest.com"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_EVENTS_PATH = re.compile(r"^/v5/ad_accounts/(?P<account>[^/]+)/events/?$")
#: the OpenAPI description's ad_account_id: digits, at most 18
_AD_ACCOUNT = re.compile(r"^\d{1,18}$")

MAX_EVENT_AGE_DAYS = 7  # our choice: Pinterest documents no limit (FACTS.md)
MAX_BATCH = 1000
#: how long after its /user/ hit a /v3/ hit still counts as that hit's copy (seconds)
MIRROR_WINDOW = 30.0

#: the Conversions API's event names (the OpenAPI description, 2025)
API_EVENTS = (
    "add_payment_info", "add_to_cart", "add_to_wishlist", "app_install", "checkout",
    "custom", "initiate_checkout", "lead", "page_visit", "search", "signup", "subscribe",
    "view_category", "view_content", "watch_video",
)
#: the tag's spelling (letters only, lower case) -> the API's name. Pinterest's docs
#: map "Name in API" to "Name in Tag" (add_to_cart <-> AddToCart); the tag's code and
#: its hits write them lower case (checkout, pagevisit, addtocart).
TAG_TO_API: dict[str, str] = {re.sub(r"[^a-z]", "", name): name for name in API_EVENTS}
#: the API's name -> the spelling a page passes to pintrk('track', ...)
API_TO_TAG: dict[str, str] = {api: tag for tag, api in TAG_TO_API.items()}
#: tag hits that are no conversion (letters only, lower case)
NOT_CONVERSIONS = {
    "init": "the page-load hit pintrk('page') sends (event=init), not a conversion",
}

# Pinterest's answer codes (the OpenAPI description of events/create)
INVALID_REQUEST = 4196
AUTH_FAILED = 2
RATE_LIMITED = 8
RAMPED_DOWN = 4197
#: our choice: the description gives 422 a DetailedError but no code (FACTS.md)
NOT_ALL_PROCESSED = 422
AUTH_MESSAGE = "Authentication failed."
INVALID_MESSAGE = "The request was invalid."
NOT_ALL_MESSAGE = "Not all events were successfully processed."
RATE_MESSAGE = ("This request exceeded a rate limit. This can happen if the client exceeds "
                "one of the published rate limits within a short time window.")
RAMPED_MESSAGE = ("The endpoint has been ramped down and is currently not accepting any "
                  "traffic.")

#: finding codes this platform adds, with (severity, title); ``findings.py`` registers
#: them with the core's catalogue when it is imported
FINDING_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "pinterest-api-event-name-spelling": (
        "error", "the Conversions API call spells the event the tag's way (addtocart, not "
                 "add_to_cart), so Pinterest cannot merge it"),
    "pinterest-checkout-without-order-id": (
        "warning", "a Pinterest checkout carries no order_id, which Pinterest uses to "
                   "deduplicate"),
    "pinterest-offline-not-deduplicated": (
        "warning", "an action_source 'offline' event shares its event_id with a tag event; "
                   "Pinterest never deduplicates offline events"),
    **identity.IDENTITY_CODES,
}


def squash(name: str | None) -> str:
    """Letters and digits only, lower case: how the tag's names compare."""
    return re.sub(r"[^a-z0-9]", "", (name or "").lower())


def tag_canonical(name: str | None) -> str | None:
    """The API's name for an event name as the tag sent it (``pagevisit`` ->
    ``page_visit``). Tag names compare without case or separators, so ``AddToCart`` and
    ``add_to_cart`` both map to ``add_to_cart``; a name Pinterest does not know (a
    user-defined event) stays as itself, squashed."""
    if name is None:
        return None
    key = squash(name)
    return TAG_TO_API.get(key, key)


def canonical_name(event: Event) -> str | None:
    """The event's name as the dedup key compares it: the tag's mapped onto the API's,
    the API's exactly as sent (the API knows no other spelling)."""
    if event.source == "browser":
        return tag_canonical(event.event_name)
    return event.event_name


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _id_text(value: Any) -> str | None:
    """An event id as sent: a non-empty string, or a number a page passed unquoted."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return _text(value)


def _json_param(text: str | None) -> tuple[Any, str | None]:
    """(parsed value, problem) of a JSON query parameter (``ed``, ``pd``, ``ad``)."""
    if text is None or text == "":
        return None, None
    try:
        return loads(text), None
    except ValueError as exc:
        return None, f"is not JSON ({exc})"


def _epik_in(url: str | None) -> str | None:
    if not url:
        return None
    try:
        values = parse_qs(urlsplit(url).query).get("epik")
    except ValueError:
        return None
    return values[0] if values else None


class Pinterest(Platform):
    name = NAME
    title = "Pinterest"
    tag_name = "the Pinterest Tag (pintrk)"
    api_name = "the Pinterest Conversions API"
    limited_use_flag = ("custom_data.opt_out_type: \"LDP\" (Limited Data Processing) or "
                        "opt_out: true")
    server_hosts = frozenset({API_HOST})
    fault_kinds = ("500", "429", "transient", "expired_token", "timeout")
    secret_headers = frozenset({"authorization"})
    # Pinterest reads the token only from "Authorization: Bearer"; these catch it where
    # a hand-written client misplaces it
    secret_params = frozenset({"access_token"})
    max_event_age = MAX_EVENT_AGE_DAYS * 86400.0
    samples_dir = SAMPLES
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale, a browser hit and a server call
    #: a /v3/ hit is a mirror only after its /user/ hit was decoded (``_take_user_hit``)
    ordered_markers = (COLLECTION_HOST,)
    synthetic_sale = {"browser": "browser-checkout-user.json",
                      "server": "server-sdk-checkout.json"}
    event_time_unit = "Unix seconds (data[].event_time)"
    #: the API's event names, to suggest the right spelling
    standard_events = API_EVENTS
    #: finding codes this platform adds (``findings.py`` registers them when imported)
    finding_codes = FINDING_CODES

    def __init__(self) -> None:
        # /user/ hits seen lately: (tid, event, ed) -> arrival times; a /v3/ hit with
        # the same parameters that follows one is its copy. The proxy decodes on one
        # thread, but a replay or a test may decode from another.
        self._user_hits: OrderedDict[tuple[str, str, str], list[float]] = OrderedDict()
        self._user_lock = threading.Lock()

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        return host == COLLECTION_HOST and path.rstrip("/") in HIT_PATHS

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        kind = HIT_PATHS.get(path_of(request.url).rstrip("/"))
        if kind == "user":
            # The tag reads this answer with fetch(credentials: include): JSON, and CORS
            # for the page's own origin (a credentialed request may not get "*")
            origin = request.header("origin")
            headers = {"Access-Control-Allow-Origin": origin or "*"}
            if origin:
                headers["Access-Control-Allow-Credentials"] = "true"
                headers["Vary"] = "Origin"
            return CannedResponse(200, b'{"status":"success"}', "application/json", headers)
        if kind == "stats":
            return CannedResponse(200, b"{}", "application/json",
                                  {"Access-Control-Allow-Origin": "*"})
        return CannedResponse(200, TRANSPARENT_GIF, "image/gif")

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host != LIBRARY_HOST:
            return None
        if path == LIBRARY_PATH:
            script = stand_in_script(HERE / "core.js")
            return CannedResponse(200, script, "application/javascript; charset=utf-8")
        if _LIBRARY_PART.match(path):
            return CannedResponse(200, b"/* pixelcheck: Pinterest tag code not needed "
                                       b"offline */", "application/javascript")
        return None

    def forget_decoded(self) -> None:
        """Forget the /user/ hits seen so far (a new pass over a capture)."""
        with self._user_lock:
            self._user_hits.clear()

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        kind = HIT_PATHS.get(path_of(request.url).rstrip("/"), "v3")
        event = Event(platform=NAME, source="browser", pixel_id=None, event_name=None,
                      event_id=None, event_time=None, arrival_time=request.arrival_time,
                      raw=request)
        event.extra = {"endpoint": kind, "path": path_of(request.url)}
        if kind == "stats":
            # the tag's telemetry POST: kept (its bytes are in the traffic anyway), never
            # an event of the shop's
            event.extra["not_a_conversion"] = "the tag's telemetry (POST /stats/)"
            return [event]
        try:
            params = dict(query_params(request.url))
            if request.method.upper() == "POST" and request.body:
                # the hits are GETs; a POST with a form body is read the same way
                body = body_text(decompressed_body(request))
                if "=" in body and not body.lstrip().startswith("{"):
                    params.update(dict(query_params("?" + body)))
        except (WireError, ValueError) as exc:
            event.error = f"Pinterest tag hit unreadable: {exc}"
            return [event]
        self._fill_browser(event, params, request)
        if kind == "user":
            self._remember_user_hit(event, params, request.arrival_time)
        elif kind == "v3" and self._take_user_hit(params, request.arrival_time):
            # the second copy of a hit the tag already sent to /user/ (PLATFORMS.md 2b)
            event.extra["mirror_of"] = f"{COLLECTION_HOST}/user/"
        return [event]

    def _fill_browser(self, event: Event, params: dict[str, str],
                      request: CapturedRequest) -> None:
        name = params.get("event")
        event.event_name = name if name else None
        event.extra["tag_id"] = params.get("tid") or None
        problems: list[str] = []
        ed, problem = _json_param(params.get("ed"))
        if problem:
            problems.append(f"`ed` {problem}")
        pd, problem = _json_param(params.get("pd"))
        if problem:
            problems.append(f"`pd` {problem}")
        ad, problem = _json_param(params.get("ad"))
        if problem:
            problems.append(f"`ad` {problem}")
        ed = ed if isinstance(ed, dict) else {}
        pd = pd if isinstance(pd, dict) else {}
        ad = ad if isinstance(ad, dict) else {}
        event.custom_data = dict(ed)
        if "content_ids" not in event.custom_data:
            # the API's content_ids, from the tag's line_items, so payloads compare
            items = ed.get("line_items")
            items = [items] if isinstance(items, dict) else items
            ids = [str(i["product_id"]) for i in items or [] if isinstance(i, dict)
                   and i.get("product_id") not in (None, "")]
            if ids:
                event.custom_data["content_ids"] = ids
                event.extra["content_ids_from"] = "ed.line_items[].product_id"
        event.event_id = _id_text(ed.get("event_id"))
        event.user_data = {k: v for k, v in pd.items() if k == "em"}
        event.page_url = _text(ad.get("loc"))
        event.extra.update({
            "partner_data": pd,
            "ad": ad,
            "referrer": _text(ad.get("ref")),
            # the _epik click id: the stand-in's epik parameter; any other place a build
            # may put it; else the landing URL itself
            "epik": params.get("epik") or _text(ad.get("epik")) or _epik_in(event.page_url),
            "user_agent": request.header("user-agent"),
        })
        cb = params.get("cb")
        event.event_time_raw = cb
        try:
            event.event_time = float(cb) / 1000.0 if cb else request.arrival_time
        except ValueError:
            event.event_time = request.arrival_time
        if "event_id" not in ed:
            for key in ("eventID", "eventId", "event-id"):
                if key in ed:
                    # a common slip: the id under another key, where Pinterest does not
                    # read it
                    event.extra["event_id_under"] = key
        reason = NOT_CONVERSIONS.get(squash(event.event_name))
        if reason is None and event.extra["endpoint"] == "user" and not event.event_name:
            reason = "a /user/ lookup without an event, not a conversion"
        if reason is not None:
            event.extra["not_a_conversion"] = reason
            if problems:
                event.error = "Pinterest tag hit with " + "; ".join(problems)
            return
        missing = [label for label, value in (("`event`", event.event_name),
                                              ("`tid`", event.extra["tag_id"])) if not value]
        if missing:
            problems.insert(0, f"no {' and no '.join(missing)}")
        if problems:
            event.error = ("Pinterest tag hit with " + "; ".join(problems)
                           + " (a hand-built or truncated hit)")

    @staticmethod
    def _hit_key(params: dict[str, str]) -> tuple[str, str, str]:
        return (params.get("tid", ""), params.get("event", ""), params.get("ed", ""))

    def _remember_user_hit(self, event: Event, params: dict[str, str], when: float) -> None:
        key = self._hit_key(params)
        with self._user_lock:
            self._user_hits.setdefault(key, []).append(when)
            self._user_hits.move_to_end(key)
            while len(self._user_hits) > 512:
                self._user_hits.popitem(last=False)

    def _take_user_hit(self, params: dict[str, str], when: float) -> bool:
        key = self._hit_key(params)
        with self._user_lock:
            times = self._user_hits.get(key)
            if not times:
                return False
            for index, seen in enumerate(times):
                if 0 <= when - seen <= MIRROR_WINDOW:
                    del times[index]
                    if not times:
                        del self._user_hits[key]
                    return True
        return False

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host != API_HOST and host not in _LOOPBACK:
            return False
        return bool(_EVENTS_PATH.match(path))

    @staticmethod
    def _token(request: CapturedRequest) -> tuple[str | None, str | None, str | None]:
        """(token, where it was, why it does not authenticate or None)."""
        header = request.header("authorization")
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip(), "header", None
            return (header.strip() or None, "header",
                    "the Authorization header is not 'Bearer <conversion access token>'")
        query = dict(query_params(request.url))
        if "access_token" in query:
            return (query["access_token"] or None, "query",
                    "the token was sent as ?access_token=; Pinterest reads it only from "
                    "the 'Authorization: Bearer <token>' header")
        return None, None, "no Authorization header was sent"

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        match = _EVENTS_PATH.match(path_of(request.url))
        account = match.group("account") if match else None
        query = dict(query_params(request.url))
        # the official Python client sends the flag as "?test=True"
        test = str(query.get("test", "")).strip().lower() in ("true", "1")
        token, token_location, auth_problem = self._token(request)
        events: list[Event] = []

        def refuse(status: int, code: int, message: str, violations: list[Any] | None = None,
                   why: str | None = None, details: Any = None) -> ServerAnswer:
            body: dict[str, Any] = {"code": code, "message": message}
            if details is not None:
                body["details"] = details
            for event in events:
                event.extra.setdefault("rejection", []).append(why or f"{code} {message}")
            return ServerAnswer(events, status, body, token_location, token, violations or [])

        try:
            payload = json_body(decompressed_body(request))
            readable = True
        except WireError as exc:
            events.append(self._server_event(request, account, 0, test,
                                             error=f"Conversions API body unreadable: {exc}"))
            payload, readable = None, False
        # a JSON null is read, and is no object either
        if readable and not isinstance(payload, dict):
            events.append(self._server_event(
                request, account, 0, test,
                error=f"Conversions API body is a JSON {type(payload).__name__}, not an "
                      "object with `data`"))
        if isinstance(payload, dict):
            events = self._server_events(payload, request, account, test)

        # Authentication comes before the body at Pinterest's gateway; the events were
        # decoded all the same so a report can say which ones were refused. A body read
        # back from a backend's log never shows its header: nothing to check there.
        if request.channel != "log" and auth_problem is not None:
            return refuse(401, AUTH_FAILED, AUTH_MESSAGE, why=f"401: {auth_problem}")
        if not isinstance(payload, dict):
            reason = events[0].error or "the body is not a JSON object"
            return refuse(400, INVALID_REQUEST, f"Invalid request: {reason}")
        if account is not None and not _AD_ACCOUNT.match(account):
            return refuse(400, INVALID_REQUEST, f"Invalid request: ad_account_id {account!r} "
                                                "is not a number of at most 18 digits")
        message = self._schema_message(payload)
        if message is not None:
            return refuse(400, INVALID_REQUEST, f"Invalid request: {message}",
                          validate(SCHEMA, payload))

        statuses = [self._event_status(event) for event in events]
        processed = sum(1 for s in statuses if s["status"] == "processed")
        answer = {"num_events_received": len(events), "num_events_processed": processed,
                  "events": statuses}
        for event, status in zip(events, statuses, strict=True):
            event.extra["answer"] = status
            if status["warning_message"]:
                event.extra["warning_message"] = status["warning_message"]
        if processed < len(events):
            for event, status in zip(events, statuses, strict=True):
                event.extra.setdefault("rejection", []).append(
                    f"422: {status['error_message']}" if status["error_message"] else
                    "422: this event was processed, but the call as a whole was answered "
                    "422")
            return ServerAnswer(events, 422, {"code": NOT_ALL_PROCESSED,
                                              "message": NOT_ALL_MESSAGE, "details": answer},
                                token_location, token)
        return ServerAnswer(events, 200, answer, token_location, token)

    def _server_event(self, request: CapturedRequest, account: str | None, index: int,
                      test: bool, error: str | None = None) -> Event:
        event = Event(NAME, "server", None, None, None, None, request.arrival_time,
                      raw=request, error=error)
        event.extra = {"index": index, "ad_account_id": account,
                       "test_event_code": "?test=true" if test else None}
        return event

    def _server_events(self, payload: dict[str, Any], request: CapturedRequest,
                       account: str | None, test: bool) -> list[Event]:
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            what = "is an empty array" if isinstance(data, list) else "is missing"
            return [self._server_event(request, account, 0, test,
                                       error=f"`data` {what}: the call carried no event")]
        events = []
        for index, item in enumerate(data):
            event = self._server_event(request, account, index, test)
            events.append(event)
            if not isinstance(item, dict):
                event.error = f"data[{index}] is a {type(item).__name__}, not an event object"
                continue
            name = item.get("event_name")
            event.event_name = name if isinstance(name, str) and name else None
            event.event_id = _id_text(item.get("event_id"))
            raw_time = item.get("event_time")
            event.event_time_raw = raw_time
            event.event_time = float(raw_time) if isinstance(raw_time, (int, float)) and \
                not isinstance(raw_time, bool) else None
            user = item.get("user_data")
            event.user_data = user if isinstance(user, dict) else {}
            custom = item.get("custom_data")
            event.custom_data = custom if isinstance(custom, dict) else {}
            event.page_url = _text(item.get("event_source_url"))
            event.extra.update({
                "action_source": item.get("action_source"),
                "partner_name": item.get("partner_name"),
                "opt_out": item.get("opt_out"),
                "click_id": _text(event.user_data.get("click_id")),
                "client_ip_address": _text(event.user_data.get("client_ip_address")),
                "user_agent": _text(event.user_data.get("client_user_agent")),
            })
            if event.event_name is None:
                event.error = f"data[{index}] has no event_name"
        return events

    @staticmethod
    def _schema_message(payload: dict[str, Any]) -> str | None:
        """The first schema error, worded the way Pinterest's 400s read ("Invalid
        request: Additional properties are not allowed ('x' was unexpected)"), with the
        field's path; never a customer's value."""
        errors = sorted(validator(SCHEMA).iter_errors(payload),
                        key=lambda e: [str(p) for p in e.absolute_path])
        if not errors:
            return None
        error = errors[0]
        parts = list(error.absolute_path)
        where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p))
                        for i, p in enumerate(parts))
        if error.validator in ("maxItems", "minItems") and isinstance(error.instance, list):
            # jsonschema's own text repeats the whole list, customer data included
            count = len(error.instance)
            limit = error.validator_value
            text = (f"{parts[-1] if parts else 'data'} has {count} items, "
                    + (f"at most {limit} are allowed" if error.validator == "maxItems"
                       else f"at least {limit} needed"))
        elif error.validator == "anyOf" and parts and parts[-1] == "user_data":
            text = ("user_data needs at least one of em, hashed_maids, or client_ip_address "
                    "together with client_user_agent")
        elif "user_data" in parts and error.validator in ("type", "enum"):
            # the value is a customer's: name the field and the type only
            expected = error.validator_value
            expected = " or ".join(expected) if isinstance(expected, list) else expected
            text = f"{parts[-1] if parts else 'value'} is not of type {expected!r}"
        else:
            text = error.message
        return f"{text} at {where}" if where else text

    def _event_status(self, event: Event) -> dict[str, Any]:
        """Pinterest's per-event answer: processed or failed, with its messages."""
        errors: list[str] = []
        warnings: list[str] = []
        index = event.extra.get("index", 0)
        if event.error:
            errors.append(event.error)
        age = (event.arrival_time - event.event_time) if event.event_time is not None else 0
        if event.event_time is not None and event.event_time < 1e11 and \
                age > MAX_EVENT_AGE_DAYS * 86400:
            errors.append(f"data[{index}].event_time {event.event_time_raw} is "
                          f"{age / 86400:.1f} days old; events must be sent within "
                          f"{MAX_EVENT_AGE_DAYS} days of when they happened")
        for field in (*HASHED_KEYS, *OTHER_HASHED_FIELDS):
            values = event.user_data.get(field)
            for n, value in enumerate(values if isinstance(values, list) else []):
                if value not in (None, "") and not is_hashed(value):
                    # the path only: the value is customer data and answers land in reports
                    errors.append(f"data[{index}].user_data.{field}[{n}] is not a SHA-256 "
                                  "hash; hash the normalized value and send its 64-character "
                                  "hex digest")
        name = event.event_name
        if name is not None and name not in API_EVENTS:
            hint = ""
            if squash(name) in TAG_TO_API:
                hint = (f"; {name!r} is the Pinterest Tag's spelling, the Conversions API's "
                        f"is {TAG_TO_API[squash(name)]!r}")
            warnings.append(f"event_name {name!r} is not a standard event; it is reported "
                            "only if mapped as an advertiser-defined event" + hint)
        return {"status": "failed" if errors else "processed",
                "error_message": "; ".join(errors) if errors else None,
                "warning_message": "; ".join(warnings) if warnings else None}

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 400, {"code": INVALID_REQUEST, "message": f"Invalid request: {reason}"}

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        if kind in ("missing_token", "invalid_token", "expired_token"):
            return 401, {"code": AUTH_FAILED, "message": AUTH_MESSAGE}
        if kind == "429":
            return 429, {"code": RATE_LIMITED, "message": RATE_MESSAGE}
        if kind == "transient":
            return 503, {"code": RAMPED_DOWN, "message": RAMPED_MESSAGE}
        if kind == "timeout":
            return 504, {"code": 504, "message": "Gateway Timeout"}
        return 500, {"code": 500, "message": "Internal Server Error"}

    def answer_text(self, event: Event) -> str:
        body = answer_json(event)
        if body is None or "code" not in body:
            return super().answer_text(event)
        text = f"{body.get('message')} (code {body.get('code')})"
        details = body.get("details")
        statuses = details.get("events") if isinstance(details, dict) else None
        index = event.extra.get("index")
        if isinstance(statuses, list) and isinstance(index, int) and index < len(statuses):
            own = statuses[index]
            if isinstance(own, dict) and own.get("error_message"):
                text += f": {own['error_message']}"
        return text

    def test_event_code(self, event: Event) -> str | None:
        value = event.extra.get("test_event_code")
        return str(value) if value else None

    # --- dedup ------------------------------------------------------------------------

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if not event.event_id or event.event_name is None or \
                event.extra.get("not_a_conversion") or event.extra.get("mirror_of"):
            return None
        if event.source == "server" and event.extra.get("action_source") == "offline":
            # "events that took place offline cannot be deduplicated" (Pinterest)
            return None
        return (canonical_name(event), event.event_id)

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        from .sql_shapes import SHAPES

        return SHAPES

    def dedup_rule(self) -> str:
        return ("Pinterest merges a tag event and a Conversions API event when the event_id "
                "(inside the tag's event data, data[].event_id in the API) is equal and the "
                "event is the same, the tag spelling its names checkout / pagevisit / "
                "addtocart and the API checkout / page_visit / add_to_cart; events with "
                "action_source 'offline' are never merged")

    def deduplicates(self, event_name: str | None) -> bool:
        return squash(event_name) not in NOT_CONVERSIONS

    def name_variant(self, browser_name: str | None, server_name: str | None) -> str | None:
        """A sentence when a tag event and an API event fail to merge only because the API
        call spells the name another way than Pinterest's API name for the tag's event
        (``addtocart`` or ``AddToCart`` for ``add_to_cart``). The documented pairs
        (pagevisit / page_visit) merge and get no sentence."""
        if not browser_name or not server_name:
            return None
        wanted = tag_canonical(browser_name)
        if wanted is None or server_name == wanted or squash(server_name) != squash(wanted):
            return None
        return (f"the tag sent {browser_name!r} and the Conversions API {server_name!r}: the "
                f"API spells this event {wanted!r}, so Pinterest takes {server_name!r} for "
                "another (advertiser-defined) event and never merges the two copies")

    def limited_use(self, event: Event) -> bool:
        return event.extra.get("opt_out") is True or \
            event.custom_data.get("opt_out_type") == "LDP"

    def fix(self, code: str, event: Event | None = None) -> str | None:
        from .texts import fix_text

        return fix_text(code, event)

    # --- customer data ----------------------------------------------------------------

    #: every customer key Pinterest takes is SHA-256 hex (pii_rules.PII_RULES)
    hashed_keys = frozenset(HASHED_KEYS)
    # the tag's pd.em and the API's user_data arrays use the common names themselves
    customer_fields = {key: key for key in HASHED_KEYS}
    # Pinterest's digest: phone digits only, without '+'
    digest_rule = staticmethod(hash_value)

    def identity_findings(self, pair: Any) -> list[Any]:
        return identity.identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        from .findings import pinterest_findings

        return pinterest_findings(result)

    # --- backend logs -----------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged Conversions API body ``{"data": [...]}``, plus optional
        ``ad_account_id`` (else 0), ``url`` and ``time``. Meta's body has the same shape
        and Meta is asked first: give such a line ``"platform": "pinterest"``."""
        data = record.get("data")
        if not isinstance(data, list):
            return None
        account = str(record.get("ad_account_id") or "0")
        url = record.get("url") or f"https://{API_HOST}/v5/ad_accounts/{account}/events"
        body = {k: v for k, v in record.items() if k not in ("url", "time", "ad_account_id")}
        when = record.get("time")
        if not isinstance(when, (int, float)):
            times = [i.get("event_time") for i in data if isinstance(i, dict)]
            when = next((t for t in times if isinstance(t, (int, float))), 0.0)
        return CapturedRequest("POST", url, [("Content-Type", "application/json")],
                               json.dumps(body).encode(), float(when), "log",
                               original_host=host_of(url) or API_HOST, response_status=200)


PINTEREST = Pinterest()
