"""LinkedIn: the Insight Tag (``lintrk``, hits to px.ads.linkedin.com) and the
Conversions API (``POST https://api.linkedin.com/rest/conversionEvents``).

All of LinkedIn's wire facts live in this folder; FACTS.md says which are confirmed
by a real client or library and which are inferred, and from where.

Three LinkedIn habits shape this module:

* **No event names on the wire.** The tag sends a conversion rule id, the API a rule
  URN, and LinkedIn wants one rule per source, so the two copies of a purchase carry
  two different rule ids. Events take the name of their declared rule
  (``rules.py``), ``"conversion <rule id>"`` when nobody declared it.
* **Dedup is eventId within the ad account.** "If we receive an Insight Tag event and a
  Conversions API event from the same account with the same eventId, we discard the
  Conversions API event". The API call names no account, so the key is the
  ``eventId`` alone; an API rule declared under another account than the tag's
  partner id is reported by ``findings.py`` (``linkedin-other-account``).
* **Rest.li answers.** A single CREATE is answered ``201`` with an empty body; a
  ``BATCH_CREATE`` (header ``X-RestLi-Method``) ``200 {"elements": [{"status": 201},
  ...]}`` with each element's own status, so a refused element is refused inside a
  2xx answer (``extra["rejected_by_platform"]``). Errors are ``{"status", "message",
  ...}`` with 401, 400, 422 or 426.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import time
from pathlib import Path
from typing import Any, Literal, cast

from ...events import CapturedRequest, Event
from ...validation import Violation, validate
from ...wire import (
    WireError,
    body_text,
    decompressed_body,
    form_params,
    host_of,
    json_body,
    media_type,
    path_of,
    query_params,
)
from .. import TRANSPARENT_GIF, CannedResponse, Platform, ServerAnswer, answer_json, stand_in_script
from . import identity, pii_rules
from .rules import URN_PREFIX, RuleCatalogue, rule_id_of

NAME = "linkedin"
HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "schema_conversion_event.json"

API_HOST = "api.linkedin.com"
EVENTS_PATH = "/rest/conversionEvents"
#: the unversioned base the official client uses without version_string; the
#: Conversions API is not served there (FACTS.md)
UNVERSIONED_PATH = "/v2/conversionEvents"
#: px.ads.linkedin.com takes the hits; px4 gets a 1:1 copy with e_ipv6 (a third-party
#: HAR decoder, FACTS.md)
COLLECTION_HOST = re.compile(r"^(?:[a-z0-9-]+\.)?ads\.linkedin\.com$")
MIRROR_HOSTS = frozenset({"px4.ads.linkedin.com"})
LIBRARY_HOST = "snap.licdn.com"
_LIBRARY_PATH = re.compile(r"^/li\.lms-analytics/insight(?:\.beta|\.old)?\.min\.js$")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

MAX_EVENT_AGE_DAYS = 90
MAX_BATCH = 5000
PROTOCOL_VERSION = "2.0.0"
#: a LinkedIn-Version stays active about a year after its month (FACTS.md)
VERSION_LIFETIME_MONTHS = 12
_VERSION = re.compile(r"^(?P<year>\d{4})(?P<month>\d{2})(?:\.\d{2})?$")

#: /wa/ signal types and hits that are not conversions (what they are, for reports)
NOT_A_CONVERSION = "a page visit signal of the Insight Tag, not a conversion"
SIGNAL_NAMES = ("PAGE_VISIT", "CLICK", "FORM_SUBMIT", "SCROLL")

# LinkedIn's error bodies: {"status", "message"} plus, for auth, serviceErrorCode and
# code (LinkedIn's error-handling guide; the codes of 401 answers are inferred)
EMPTY_TOKEN = {"status": 401, "serviceErrorCode": 401, "message": "Empty oauth2_access_token"}
INVALID_TOKEN = {"status": 401, "serviceErrorCode": 65600, "code": "INVALID_ACCESS_TOKEN",
                 "message": "Invalid access token"}
EXPIRED_TOKEN = {"status": 401, "serviceErrorCode": 65602, "code": "EXPIRED_ACCESS_TOKEN",
                 "message": "The token used in the request has expired"}


#: finding codes this platform adds, with (severity, title); ``findings.py`` registers
#: them with the core's catalogue when it is imported
FINDING_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "linkedin-rule-source-mismatch": ("error", "a LinkedIn conversion rule declared for one "
                                               "source got the other source's events"),
    "linkedin-other-account": ("error", "the Conversions API rule belongs to another ad "
                                        "account than the Insight Tag's partner id"),
    "linkedin-hashed-user-info": ("warning", "LinkedIn's user.userInfo carries hashed names; "
                                             "LinkedIn matches them in clear text"),
    **identity.IDENTITY_CODES,
}


def error_body(status: int, message: str, code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "message": message}
    if code is not None:
        body["code"] = code
    return body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _id_text(value: Any) -> str | None:
    """An id as sent: a non-empty string, or a number a page passed unquoted."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    return _text(value)


def _ms_to_seconds(value: Any) -> float | None:
    """Epoch milliseconds (a number, or digits in a string) -> Unix seconds."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value) / 1000.0
    except (TypeError, ValueError):
        return None


def _pointer(path: str) -> str:
    """``user.userIds[0].idValue`` -> ``/user/userIds/0/idValue`` (Rest.li's paths)."""
    return "/" + re.sub(r"\[(\d+)\]", r"/\1", path).replace(".", "/") if path else "/"


def restli_message(violation: Violation) -> str:
    """A schema violation as Rest.li's validator words it."""
    reason = violation.reason
    if reason.startswith("missing"):
        reason = "field is required but not found and has no default value"
    return f"ERROR :: {_pointer(violation.path)} :: {reason}"


def decode_wa_body(request: CapturedRequest) -> tuple[Any, str]:
    """The JSON of a ``/wa/`` signal and how it travelled: ``"json"`` (one build) or
    ``"gzip+base64"`` (``/wa/?medium=fetch&fmt=g``, another build)."""
    body = decompressed_body(request)
    text = body_text(body).strip()
    if not text:
        raise WireError("body is empty")
    if text[:1] in ("{", "["):
        return json_body(text.encode()), "json"
    try:
        packed = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        unpacked = gzip.decompress(packed)
    except (binascii.Error, ValueError, OSError, EOFError) as exc:
        raise WireError(f"body is neither JSON nor base64 of gzip ({exc})") from None
    return json_body(unpacked), "gzip+base64"


def months_between(earlier: tuple[int, int], later: tuple[int, int]) -> int:
    return (later[0] - earlier[0]) * 12 + (later[1] - earlier[1])


class LinkedIn(Platform):
    name = NAME
    title = "LinkedIn"
    tag_name = "the LinkedIn Insight Tag (lintrk)"
    api_name = "LinkedIn's Conversions API (conversionEvents)"
    server_hosts = frozenset({API_HOST})
    fault_kinds = ("500", "429", "transient", "expired_token", "timeout")
    secret_headers = frozenset({"authorization"})
    # the token belongs in the Authorization header; these catch it where a
    # hand-written client misplaces it (LinkedIn's old v1 took oauth2_access_token)
    secret_params = frozenset({"oauth2_access_token", "access_token"})
    max_event_age = MAX_EVENT_AGE_DAYS * 86400.0
    samples_dir = HERE / "samples"
    #: analyze's synthetic captures (analysis/synthetic.py): the samples that stand for
    #: one sale; the server sample was recorded against another partner
    synthetic_sale = {"browser": "browser-collect-conversion.json",
                      "server": "server-sdk-create.json",
                      "server_same_shop": {"8200004": "7100004"}}
    event_time_unit = "epoch milliseconds (conversionHappenedAt)"
    #: LinkedIn's conversion types (a rule's ``type``): the names a declared rule takes
    standard_events = (
        "ADD_TO_CART", "DOWNLOAD", "INSTALL", "KEY_PAGE_VIEW", "LEAD", "PURCHASE", "SIGN_UP",
        "OTHER", "TALENT_LEAD", "JOB_APPLY", "SAVE", "START_CHECKOUT", "SCHEDULE",
        "VIEW_CONTENT", "VIEW_VIDEO", "ADD_BILLING_INFO", "BOOK_APPOINTMENT", "REQUEST_QUOTE",
        "SEARCH", "SUBSCRIBE", "AD_CLICK", "AD_VIEW", "COMPLETE_SIGNUP", "SUBMIT_APPLICATION",
        "PHONE_CALL", "INVITE", "LOGIN", "SHARE", "DONATE", "ADD_TO_LIST", "RATE",
        "START_TRIAL", "OUTBOUND_CLICK", "CONTACT", "MARKETING_QUALIFIED_LEAD",
        "SALES_QUALIFIED_LEAD",
    )
    #: only the email is hashed; names, country and the advertiser's ids travel plain
    hashed_keys = frozenset(pii_rules.HASHED_KEYS)

    #: finding codes this platform adds (``findings.py`` registers them when imported)
    finding_codes = FINDING_CODES

    def __init__(self) -> None:
        #: the conversion rules tests declared (names, sources, ad accounts)
        self.rules = RuleCatalogue()

    # --- browser side -----------------------------------------------------------------

    def is_collection(self, host: str, path: str) -> bool:
        if not COLLECTION_HOST.match(host):
            return False
        clean = path.rstrip("/")
        return clean in ("/collect", "/wa", "/attribution_trigger")

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        if path_of(request.url).rstrip("/") == "/wa":
            # fetch()ed; with credentials a CORS answer must name the origin
            origin = request.header("origin")
            headers = ({"Access-Control-Allow-Origin": origin,
                        "Access-Control-Allow-Credentials": "true"} if origin else
                       {"Access-Control-Allow-Origin": "*"})
            return CannedResponse(200, b"{}", "application/json", headers)
        return CannedResponse(200, TRANSPARENT_GIF, "image/gif")

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        if host != LIBRARY_HOST or not _LIBRARY_PATH.match(path):
            return None
        script = stand_in_script(HERE / "insight.js")
        return CannedResponse(200, script, "application/javascript; charset=utf-8")

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        try:
            path = path_of(request.url).rstrip("/")
            if path == "/wa":
                return [self._wa_event(request)]
            return self._collect_events(request, path)
        except Exception as exc:  # a malformed hit is an undecodable event, never a crash
            event = self._browser_event(request)
            event.error = f"Insight Tag hit unreadable: {type(exc).__name__}: {exc}"
            return [event]

    def _browser_event(self, request: CapturedRequest) -> Event:
        return Event(platform=NAME, source="browser", pixel_id=None, event_name=None,
                     event_id=None, event_time=None, arrival_time=request.arrival_time,
                     raw=request)

    def _collect_events(self, request: CapturedRequest, path: str) -> list[Event]:
        params = dict(query_params(request.url))
        if request.method.upper() == "POST" and request.body and \
                media_type(request) == "application/x-www-form-urlencoded":
            params.update(form_params(request, decompressed_body(request)))
        partners = [p.strip() for p in params.get("pid", "").split(",") if p.strip()]
        rule = params.get("conversionId") or None
        host = host_of(request.url)
        events = []
        for partner in partners or [None]:
            event = self._browser_event(request)
            event.pixel_id = partner
            event.event_time_raw = params.get("time")
            event.event_time = _ms_to_seconds(params.get("time")) or request.arrival_time
            event.page_url = params.get("url") or None
            event.extra = {
                "api": "insight-tag", "path": path, "params": params,
                "conversion_rule": rule, "partner_ids": partners,
                "li_fat_id": params.get("li_fat_id") or None,
                "format": params.get("fmt"), "tag_manager": params.get("tm"),
                "user_agent": request.header("user-agent"),
                "referrer": request.header("referer"),
            }
            if host in MIRROR_HOSTS or "e_ipv6" in params:
                # the copy of a hit the tag also sent to px.ads.linkedin.com
                event.extra["mirror_of"] = "px.ads.linkedin.com" + path
            events.append(event)
            if path == "/attribution_trigger" or rule is None:
                event.event_name = "PAGE_VISIT"
                event.extra["not_a_conversion"] = (
                    "an attribution ping of the Insight Tag, not a conversion"
                    if path == "/attribution_trigger" else
                    "a page view hit of the Insight Tag (no conversionId), not a conversion")
                if partner is None:
                    event.error = "Insight Tag hit without pid (the partner id)"
                continue
            event.event_name = self.rules.name_of(rule if rule.isdigit() else None)
            event_id = params.get("eventId")
            event.event_id = event_id or None
            if event_id == "":
                event.extra["event_id_empty"] = True
            if "event_id" in params and "eventId" not in params:
                # a hand-built hit: the tag itself puts lintrk's event_id in eventId
                event.extra["event_id_misplaced"] = params["event_id"]
            if partner is None:
                event.error = "conversion hit without pid (the Insight Tag partner id)"
            elif not rule.isdigit():
                event.error = f"conversionId {rule!r} is not a conversion rule id (digits)"
        return events

    def _wa_event(self, request: CapturedRequest) -> Event:
        event = self._browser_event(request)
        event.event_name = "PAGE_VISIT"
        event.extra = {"api": "insight-tag", "path": "/wa", "not_a_conversion": NOT_A_CONVERSION,
                       "user_agent": request.header("user-agent")}
        try:
            payload, encoding = decode_wa_body(request)
        except WireError as exc:
            event.error = f"Insight Tag /wa/ signal unreadable: {exc}"
            return event
        if not isinstance(payload, dict):
            event.error = f"Insight Tag /wa/ signal is a JSON {type(payload).__name__}"
            return event
        pids = payload.get("pids")
        partners = [str(p) for p in pids if _id_text(p)] if isinstance(pids, list) else []
        event.pixel_id = partners[0] if partners else None
        signal = _text(payload.get("signalType"))
        event.event_name = signal or "PAGE_VISIT"
        event.event_time_raw = payload.get("time")
        event.event_time = _ms_to_seconds(payload.get("time")) or request.arrival_time
        event.page_url = _text(payload.get("url"))
        hem = _text(payload.get("hem"))
        event.user_data = {"hem": hem} if hem else {}
        event.extra.update({
            "wa_encoding": encoding, "partner_ids": partners,
            "li_fat_id": _text(payload.get("liFatId")),
            "li_giant": _text(payload.get("liGiant")),
            "signal_request_id": _text(payload.get("websiteSignalRequestId")),
            "page_title": _text(payload.get("pageTitle")),
            "script_version": payload.get("scriptVersion"),
        })
        if signal and signal != "PAGE_VISIT":
            event.extra["not_a_conversion"] = (f"a {signal} signal of the Insight Tag, not a "
                                               "conversion")
        return event

    # --- server side ------------------------------------------------------------------

    def is_server_api(self, host: str | None, path: str) -> bool:
        if host is not None and host != API_HOST and host not in _LOOPBACK:
            return False
        return path.rstrip("/") in (EVENTS_PATH, UNVERSIONED_PATH)

    @staticmethod
    def _token(request: CapturedRequest) -> tuple[str | None, str | None]:
        header = request.header("authorization")
        if header is not None:
            scheme, _, value = header.strip().partition(" ")
            token = value.strip() if scheme.lower() == "bearer" else header.strip()
            return (token or None), "header"
        for key, value in query_params(request.url):
            if key in ("oauth2_access_token", "access_token"):
                return value or None, "query"
        return None, None

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        token, token_location = self._token(request)
        path = path_of(request.url).rstrip("/")
        batch = (request.header("x-restli-method") or "").strip().upper() == "BATCH_CREATE"

        def refuse(status: int, body: dict[str, Any], events: list[Event],
                   violations: list[Violation] | None = None) -> ServerAnswer:
            reason = f"HTTP {status}: {body.get('message')}"
            for event in events:
                event.extra.setdefault("rejection", []).append(reason)
            return ServerAnswer(events, status, body, token_location, token, violations or [])

        try:
            payload: Any = json_body(decompressed_body(request))
            problem = None
        except WireError as exc:
            payload, problem = None, str(exc)
        events = self._server_events(payload, request, batch=batch) if problem is None \
            else [self._server_event(request, 0, error=f"conversionEvents body unreadable: "
                                                      f"{problem}")]

        # The gateway's checks come first, as at any API: path, method, token, headers.
        if path == UNVERSIONED_PATH:
            return refuse(404, error_body(404, "Resource conversionEvents does not exist on "
                                               "the unversioned /v2 API; use /rest with a "
                                               "LinkedIn-Version header", "NOT_FOUND"), events)
        if request.method.upper() != "POST":
            return refuse(405, error_body(405, f"Method {request.method} is not allowed on "
                                               "conversionEvents"), events)
        # a body read back from a backend's log shows no headers: nothing to check there
        if request.channel != "log":
            if not token:
                return refuse(401, dict(EMPTY_TOKEN), events)
            refused = self._header_problem(request)
            if refused is not None:
                return refuse(refused[0], refused[1], events)
        if problem is not None:
            return refuse(400, error_body(400, f"Unable to parse the request body: {problem}"),
                          events)
        if batch:
            return self._batch_answer(payload, events, refuse, token, token_location)
        if isinstance(payload, dict) and isinstance(payload.get("elements"), list):
            return refuse(400, error_body(400, "The body holds elements[] but the call is a "
                                               "CREATE: send the header X-RestLi-Method: "
                                               "BATCH_CREATE for a batch"), events)
        status, body, violations = self._judge(payload, events[0], "")
        if status != 201:
            return refuse(status, body, events, violations)
        # 201 and no body, as LinkedIn answers a CREATE (its x-restli-id header is not
        # sent: the sink sets no headers; None makes the sink send an empty body)
        return ServerAnswer(events, 201, cast(dict[str, Any], None), token_location, token)

    def _header_problem(self, request: CapturedRequest) -> tuple[int, dict[str, Any]] | None:
        version = (request.header("linkedin-version") or "").strip()
        if not version:
            return 400, error_body(400, "A version must be present. Please specify a version "
                                        "by adding the LinkedIn-Version header.",
                                   "VERSION_MISSING")
        match = _VERSION.match(version)
        if match is None:
            return 400, error_body(400, f"Invalid LinkedIn-Version {version!r}: expected "
                                        "YYYYMM or YYYYMM.RR", "INVALID_VERSION")
        asked = (int(match["year"]), int(match["month"]))
        now = time.gmtime(request.arrival_time)
        age = months_between(asked, (now.tm_year, now.tm_mon))
        if not 1 <= asked[1] <= 12 or age < 0 or age > VERSION_LIFETIME_MONTHS:
            return 426, error_body(426, f"Requested version {version} is not active",
                                   "NONEXISTENT_VERSION")
        protocol = (request.header("x-restli-protocol-version") or "").strip()
        if protocol != PROTOCOL_VERSION:
            got = f"{protocol!r}" if protocol else "missing"
            return 400, error_body(400, f"X-Restli-Protocol-Version must be {PROTOCOL_VERSION}"
                                        f" for conversionEvents (got {got})")
        return None

    def _batch_answer(self, payload: Any, events: list[Event], refuse: Any,
                      token: str | None, token_location: str | None) -> ServerAnswer:
        elements = payload.get("elements") if isinstance(payload, dict) else None
        if not isinstance(elements, list) or not elements:
            return refuse(400, error_body(400, "BATCH_CREATE needs a non-empty elements[]"),
                          events)
        if len(elements) > MAX_BATCH:
            return refuse(400, error_body(400, f"elements[] has {len(elements)} conversion "
                                               f"events; at most {MAX_BATCH} per batch"),
                          events)
        results: list[dict[str, Any]] = []
        violations: list[Violation] = []
        for index, (item, event) in enumerate(zip(elements, events, strict=False)):
            status, body, found = self._judge(item, event, f"/elements/{index}")
            violations += found
            if status == 201:
                results.append({"status": 201})
                continue
            # refused inside a 200: the core must not count this element
            event.extra["rejected_by_platform"] = f"elements[{index}]: HTTP {status}: " \
                                                  f"{body.get('message')}"
            event.extra.setdefault("rejection", []).append(event.extra["rejected_by_platform"])
            results.append({"status": status, "error": body})
        return ServerAnswer(events, 200, {"elements": results}, token_location, token,
                            violations)

    def _judge(self, item: Any, event: Event, where: str
               ) -> tuple[int, dict[str, Any], list[Violation]]:
        """LinkedIn's verdict on one conversion event: (status, error body, violations)."""
        if not isinstance(item, dict):
            return 400, error_body(400, f"{where or 'The body'} must be a conversion event "
                                        "object"), []
        violations = validate(SCHEMA, item)
        if violations:
            messages = [restli_message(v).replace("ERROR :: /", f"ERROR :: {where}/", 1)
                        for v in violations]
            return 422, error_body(422, "\n".join(messages[:5])), violations
        unhashed = [f"{where}/user/userIds/{i}/idValue"
                    for i, uid in enumerate(item["user"]["userIds"])
                    if uid.get("idType") in pii_rules.HASHED_ID_TYPES
                    and not pii_rules.is_hashed(uid.get("idValue"))]
        if unhashed:
            return 422, error_body(422, f"ERROR :: {unhashed[0]} :: a SHA256_* idValue must "
                                        "be the SHA-256 hex digest (64 characters) of the "
                                        "normalized value"), []
        if event.event_time is not None:
            age = event.arrival_time - event.event_time
            if age > MAX_EVENT_AGE_DAYS * 86400:
                raw = event.event_time_raw
                hint = (" (10 digits: seconds? conversionHappenedAt is epoch milliseconds)"
                        if isinstance(raw, int) and raw < 1e11 else "")
                return 400, error_body(400, f"conversionHappenedAt {raw} is {age / 86400:.0f} "
                                            f"days ago; conversion events must be sent within "
                                            f"{MAX_EVENT_AGE_DAYS} days{hint}"), []
        return 201, {}, []

    def _server_event(self, request: CapturedRequest, index: int, *, batch: bool = False,
                      error: str | None = None) -> Event:
        event = Event(NAME, "server", None, None, None, None, request.arrival_time,
                      raw=request, error=error)
        event.extra = {"index": index, "api": "conversionEvents",
                       "method": "BATCH_CREATE" if batch else "CREATE",
                       "version": request.header("linkedin-version"),
                       "user_agent": request.header("user-agent")}
        return event

    def _server_events(self, payload: Any, request: CapturedRequest, *,
                       batch: bool) -> list[Event]:
        if batch:
            items = payload.get("elements") if isinstance(payload, dict) else None
            if not isinstance(items, list) or not items:
                return [self._server_event(request, 0, batch=True,
                                           error="BATCH_CREATE without a non-empty elements[]")]
        else:
            items = [payload]
        return [self._fill(self._server_event(request, index, batch=batch), item, index, batch)
                for index, item in enumerate(items)]

    def _fill(self, event: Event, item: Any, index: int, batch: bool) -> Event:
        where = f"elements[{index}]" if batch else "the body"
        if not isinstance(item, dict):
            event.error = f"{where} is a JSON {type(item).__name__}, not a conversion event"
            return event
        urn = item.get("conversion")
        rule = rule_id_of(urn)
        event.extra["conversion"] = urn
        event.extra["conversion_rule"] = rule
        event.event_name = self.rules.name_of(rule) if rule else None
        event.pixel_id = self.rules.partner_of(rule)
        event.event_id = _id_text(item.get("eventId"))
        event.event_time_raw = item.get("conversionHappenedAt")
        event.event_time = _ms_to_seconds(item.get("conversionHappenedAt"))
        user = item.get("user")
        event.user_data = user if isinstance(user, dict) else {}
        value = item.get("conversionValue")
        if isinstance(value, dict):
            try:
                amount: Any = float(value.get("amount"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                amount = value.get("amount")
            event.custom_data = {"value": amount, "currency": value.get("currencyCode")}
        ids = event.user_data.get("userIds")
        by_type: dict[str, str] = {}
        for uid in ids if isinstance(ids, list) else []:
            if isinstance(uid, dict) and isinstance(uid.get("idType"), str):
                by_type.setdefault(uid["idType"], str(uid.get("idValue") or ""))
        event.extra.update({
            "li_fat_id": by_type.get(pii_rules.CLICK_ID_TYPE) or None,
            "ip": by_type.get("PLAINTEXT_IP_ADDRESS") or None,
            "id_types": sorted(by_type),
        })
        if rule is None:
            event.error = (f"{where} has no conversion rule URN ({URN_PREFIX}<rule id>), "
                           f"got {urn!r}")
        return event

    def unreadable_answer(self, request: CapturedRequest,
                          reason: str) -> tuple[int, dict[str, Any]]:
        return 400, error_body(400, f"Unable to parse the request body: {reason}")

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        if kind == "missing_token":
            return 401, dict(EMPTY_TOKEN)
        if kind == "invalid_token":
            return 401, dict(INVALID_TOKEN)
        if kind == "expired_token":
            return 401, dict(EXPIRED_TOKEN)
        if kind == "429":
            return 429, error_body(429, "Resource level throttle APPLICATION DAY limit for "
                                        "calls to this resource is reached.",
                                   "TOO_MANY_REQUESTS")
        if kind == "timeout":
            return 504, error_body(504, "Gateway Timeout")
        if kind == "transient":
            return 503, error_body(503, "Service Unavailable")
        return 500, error_body(500, "Internal Server Error")

    def answer_text(self, event: Event) -> str:
        if event.extra.get("rejected_by_platform"):
            return f"200, but {event.extra['rejected_by_platform']}"
        body = answer_json(event)
        if body is None or "message" not in body:
            return super().answer_text(event)
        code = body.get("code") or body.get("serviceErrorCode")
        return f"{body.get('message')}" + (f" ({code})" if code else "")

    # --- dedup ------------------------------------------------------------------------

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        if not event.event_id or event.extra.get("not_a_conversion") or \
                event.extra.get("mirror_of"):
            return None
        # eventId alone: the API call names no ad account, and LinkedIn compares no
        # rule or name (each source has its own rule); the account is checked apart
        return (event.event_id,)

    @property
    def sql_shapes(self) -> tuple[Any, ...]:  # type: ignore[override]
        # built per call: the events' names and ad accounts come from the declared rules
        from .sql_shapes import shapes

        return shapes(self.rules)

    def dedup_rule(self) -> str:
        return ("LinkedIn keeps the Insight Tag copy and discards the Conversions API copy "
                "when both come from the same ad account with the same eventId (the tag's "
                "lintrk event_id = the API's eventId); the two copies use separate "
                "conversion rules by design")

    def deduplicates(self, event_name: str | None) -> bool:
        return event_name not in SIGNAL_NAMES

    def fix(self, code: str, event: Event | None = None) -> str | None:
        from .texts import fix_text

        return fix_text(code, event)

    # --- customer data ----------------------------------------------------------------

    def expected_value(self, key: str, raw: str) -> str | None:
        if key not in pii_rules.PII_RULES:
            return None
        return pii_rules.hash_value(key, raw) or None

    def customer_values(self, event: Event) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}

        def add(key: str, value: Any) -> None:
            if value not in (None, ""):
                out.setdefault(key, []).append(value)

        data = event.user_data or {}
        if event.source == "browser":
            add("em", data.get("hem"))
            return out
        ids = data.get("userIds")
        for uid in ids if isinstance(ids, list) else []:
            if isinstance(uid, dict) and uid.get("idType") == "SHA256_EMAIL":
                add("em", uid.get("idValue"))
        info = data.get("userInfo")
        if isinstance(info, dict):
            for field, key in pii_rules.KEY_OF_USER_INFO.items():
                add(key, info.get(field))
        external = data.get("externalIds")
        for value in external if isinstance(external, list) else []:
            add("external_id", value)
        return out

    def identity_findings(self, pair: Any) -> list[Any]:
        return identity.identity_findings(pair)

    def findings(self, result: Any) -> list[Any]:
        from .findings import linkedin_findings

        return linkedin_findings(result)

    # --- backend logs -----------------------------------------------------------------

    def from_backend_log(self, record: dict[str, Any]) -> CapturedRequest | None:
        """A logged conversionEvents body: one event (``conversion`` + ...) or a batch
        (``elements``), plus optional ``url`` and ``time`` (Unix seconds)."""
        elements = record.get("elements")
        batch = isinstance(elements, list) and any(
            isinstance(e, dict) and "conversion" in e for e in elements)
        if not batch and not str(record.get("conversion", "")).startswith(URN_PREFIX):
            return None
        body = {k: v for k, v in record.items() if k not in ("url", "time")}
        when = record.get("time")
        if not isinstance(when, (int, float)) or isinstance(when, bool):
            items = elements if batch else [body]
            times = [_ms_to_seconds(i.get("conversionHappenedAt")) for i in items
                     if isinstance(i, dict)]
            when = next((t for t in times if t is not None), 0.0)
        headers = [("Content-Type", "application/json")]
        if batch:
            headers.append(("X-RestLi-Method", "BATCH_CREATE"))
        return CapturedRequest("POST", record.get("url") or f"https://{API_HOST}{EVENTS_PATH}",
                               headers, json.dumps(body).encode(), float(when), "log",
                               original_host=API_HOST, response_status=201 if not batch else 200)


LINKEDIN = LinkedIn()
