"""LinkedIn tracking for the shop: the Insight Tag (``lintrk``) in the page and the
Conversions API from the backend.

Browser: LinkedIn's published base code loads insight.min.js from snap.licdn.com;
each shop event becomes ``window.lintrk('track', {conversion_id, event_id})`` with
the Insight Tag's own conversion rule and the shop's event id as ``event_id``, the id
LinkedIn deduplicates on. PageView is the tag's automatic page visit (not a
conversion: the backend sends no copy). On the thank-you page the customer's email
goes to ``lintrk('setUserData', {email})`` raw: the tag hashes it.

Server: ``POST /rest/conversionEvents`` with ``Authorization: Bearer``,
``LinkedIn-Version`` and ``X-Restli-Protocol-Version: 2.0.0``, one event per call, to
the **Conversions API's own rule** of the same type (LinkedIn wants a separate rule
per source), as plain JSON or through LinkedIn's official Python client
(``linkedin-api-client``, its ``RestliClient.create``), used unchanged: only its
``requests`` session is given the base URL and the CA the run needs.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..faults import ActiveFaults
from ..tracking import Customer, RequestContext, TrackedEvent, js, sha256_hex
from . import ServerCall, Tracker, TrackerConfig, json_call

PURCHASE = "Purchase"
#: the shop's event names -> LinkedIn's conversion types (the rules' names)
CONVERSION_TYPES = {
    "ViewContent": "VIEW_CONTENT",
    "AddToCart": "ADD_TO_CART",
    "InitiateCheckout": "START_CHECKOUT",
    PURCHASE: "PURCHASE",
}
#: one rule per source and type, as LinkedIn asks: the Insight Tag's ...
TAG_RULES = {"ViewContent": "7100001", "AddToCart": "7100002", "InitiateCheckout": "7100003",
             PURCHASE: "7100004"}
#: ... and the Conversions API's (conversionMethod CONVERSIONS_API)
API_RULES = {"ViewContent": "8200001", "AddToCart": "8200002", "InitiateCheckout": "8200003",
             PURCHASE: "8200004"}
URN = "urn:lla:llaPartnerConversion:"
REAL_ORIGIN = "https://api.linkedin.com"
WRONG_TOKEN = "li-wrong-token-0000"
SDK_CLIENT = "linkedin-api-client"
STALE_DAYS = 91

# LinkedIn's published Insight Tag base code, kept in its shape so tag-aware tooling
# recognises it.
BASE_CODE = (
    "_linkedin_partner_id = PARTNER_ID;\n"
    "window._linkedin_data_partner_ids = window._linkedin_data_partner_ids || [];\n"
    "window._linkedin_data_partner_ids.push(_linkedin_partner_id);\n"
    "(function(l) {\n"
    "if (!l){window.lintrk = function(a,b){window.lintrk.q.push([a,b])};\n"
    "window.lintrk.q=[]}\n"
    "var s = document.getElementsByTagName(\"script\")[0];\n"
    "var b = document.createElement(\"script\");\n"
    "b.type = \"text/javascript\";b.async = true;\n"
    "b.src = \"https://snap.licdn.com/li.lms-analytics/insight.min.js\";\n"
    "s.parentNode.insertBefore(b, s);})(window.lintrk);"
)


def api_version(now: float | None = None) -> str:
    """The LinkedIn-Version to send: two months back, so it is always released and far
    from its sunset (a pinned version expires after about a year, and the sink, like
    LinkedIn, answers an expired one with 426)."""
    when = time.gmtime(time.time() if now is None else now)
    months = when.tm_year * 12 + (when.tm_mon - 1) - 2
    return f"{months // 12:04d}{months % 12 + 1:02d}"


def conversion_rules() -> list[tuple[str, str, str]]:
    """(rule id, name, source) of every rule the shop uses: what a test declares to
    pixelcheck so both copies of a conversion carry one name."""
    rules = [(rule, CONVERSION_TYPES[name], "tag") for name, rule in TAG_RULES.items()]
    return rules + [(rule, CONVERSION_TYPES[name], "api") for name, rule in API_RULES.items()]


def click_id(ctx: RequestContext) -> str | None:
    """The visitor's LinkedIn click id: the Insight Tag's li_fat_id cookie, or the
    landing URL's parameter on the landing page itself (the cookie comes later)."""
    value = ctx.cookies.get("li_fat_id")
    if value:
        return value
    if ctx.page_url:
        found = parse_qs(urlsplit(ctx.page_url).query).get("li_fat_id")
        if found:
            return found[0]
    return None


def _ipv4(text: str) -> str | None:
    try:
        return text if ipaddress.ip_address(text).version == 4 else None
    except ValueError:
        return None


def _amount(value: Any) -> str:
    """LinkedIn wants the amount as a decimal string: 25 -> "25.0"."""
    return str(float(value))


class LinkedInTracker(Tracker):
    platform = "linkedin"
    faults = {
        "id_mismatch": "server PURCHASE eventId gets the suffix '-server'",
        "missing_id": "server PURCHASE has no eventId",
        "browser_no_event_id": "browser PURCHASE is tracked without event_id",
        "unhashed_pii": "server PURCHASE SHA256_EMAIL idValue is the plain (normalized) email",
        "stale_time": f"server PURCHASE conversionHappenedAt is {STALE_DAYS} days ago",
        "seconds_time": "server PURCHASE conversionHappenedAt in seconds instead of "
                        "milliseconds",
        "bad_auth": f"server PURCHASE is sent with the Bearer token {WRONG_TOKEN!r}",
        "no_version_header": "server PURCHASE is sent without the LinkedIn-Version header",
        "no_user_ids": "server PURCHASE user has userInfo but no userIds",
        "amount_number": "server PURCHASE conversionValue.amount is a number, not a string",
        "hashed_names": "server PURCHASE userInfo firstName/lastName are SHA-256 hashed",
        "li_fat_id_hashed": "server PURCHASE sends the SHA-256 of the li_fat_id click id",
        "tag_rule_on_server": "server PURCHASE goes to the Insight Tag's rule, not the "
                              "Conversions API's",
        "no_server_purchase": "backend does not send PURCHASE",
        "no_browser_purchase": "thank-you page does not fire PURCHASE",
    }
    default_tag_id = "5550001"
    default_token = "li-shop-test-token-0123456789"
    real_api_url = REAL_ORIGIN
    clients = ("json", SDK_CLIENT)

    # --- browser ---------------------------------------------------------------------

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        return BASE_CODE.replace("PARTNER_ID", js(config.tag_id))

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        lines: list[str] = []
        for event in events:
            rule = TAG_RULES.get(event.name)
            if rule is None:
                continue  # PageView: the tag's own page visit; others: not tracked
            options: dict[str, Any] = {"conversion_id": int(rule), "event_id": event.event_id}
            if event.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                if "browser_no_event_id" in faults:
                    options.pop("event_id")
                if customer is not None and customer.email:
                    # raw: the Insight Tag trims, lower-cases and hashes it itself
                    lines.append("window.lintrk('setUserData', " + js({"email": customer.email})
                                 + ");")
            lines.append("window.lintrk('track', " + js(options) + ");")
        return lines

    # --- server ----------------------------------------------------------------------

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        for tracked in events:
            if tracked.name not in API_RULES:
                continue
            purchase = tracked.name == PURCHASE
            if purchase and "no_server_purchase" in faults:
                continue
            item = self.conversion_event(tracked, ctx, customer if purchase else None)
            token, headers_ok = config.token, True
            if purchase:
                self._purchase_faults(item, faults, ctx, customer)
                if "bad_auth" in faults:
                    token = WRONG_TOKEN
                headers_ok = "no_version_header" not in faults
            label = f"{CONVERSION_TYPES[tracked.name]} eventId={item.get('eventId')!r}"
            version = api_version() if headers_ok else None
            if config.client == SDK_CLIENT:
                send = self._sdk_send(config.api_url, token, version, item)
            else:
                headers = {"Authorization": f"Bearer {token}",
                           "X-Restli-Protocol-Version": "2.0.0"}
                if version is not None:
                    headers["LinkedIn-Version"] = version
                url = f"{config.api_url.rstrip('/')}/rest/conversionEvents"
                send = json_call(url, item, headers)
            calls.append(ServerCall("linkedin", label, send))
        return calls

    @staticmethod
    def conversion_event(tracked: TrackedEvent, ctx: RequestContext,
                         customer: Customer | None) -> dict[str, Any]:
        """The correct conversionEvents body for ``tracked``."""
        user_ids: list[dict[str, str]] = []
        if customer is not None and customer.email:
            user_ids.append({"idType": "SHA256_EMAIL",
                             "idValue": sha256_hex(customer.email.strip().lower())})
        clicked = click_id(ctx)
        if clicked:
            # the click id exactly as the browser has it, never hashed
            user_ids.append({"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                             "idValue": clicked})
        ip = _ipv4(ctx.client_ip)
        if ip:
            user_ids.append({"idType": "PLAINTEXT_IP_ADDRESS", "idValue": ip})
        user: dict[str, Any] = {"userIds": user_ids}
        if customer is not None and customer.first_name and customer.last_name:
            # names in the clear: LinkedIn matches userInfo as typed
            user["userInfo"] = {"firstName": customer.first_name.strip(),
                                "lastName": customer.last_name.strip(),
                                "countryCode": (customer.country or "").strip().upper()}
        item: dict[str, Any] = {
            "conversion": URN + API_RULES[tracked.name],
            "conversionHappenedAt": tracked.event_time * 1000,
            "eventId": tracked.event_id,
            "user": user,
        }
        data = tracked.custom_data
        if data.get("value") is not None and data.get("currency"):
            item["conversionValue"] = {"currencyCode": str(data["currency"]).upper(),
                                       "amount": _amount(data["value"])}
        return item

    @staticmethod
    def _purchase_faults(item: dict[str, Any], faults: ActiveFaults, ctx: RequestContext,
                         customer: Customer | None) -> None:
        """Mutate a correct server PURCHASE into the faulty one ``faults`` ask for."""
        user: dict[str, Any] = item["user"]
        if "id_mismatch" in faults:
            item["eventId"] += "-server"
        if "missing_id" in faults:
            item.pop("eventId", None)
        if "stale_time" in faults:
            item["conversionHappenedAt"] -= STALE_DAYS * 86400 * 1000
        if "seconds_time" in faults:
            item["conversionHappenedAt"] //= 1000
        if "amount_number" in faults and "conversionValue" in item:
            item["conversionValue"]["amount"] = float(item["conversionValue"]["amount"])
        if "tag_rule_on_server" in faults:
            item["conversion"] = URN + TAG_RULES[PURCHASE]
        if "li_fat_id_hashed" in faults:
            for uid in user["userIds"]:
                if uid["idType"] == "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID":
                    uid["idValue"] = sha256_hex(uid["idValue"])
        if customer is not None:
            if "unhashed_pii" in faults:
                for uid in user["userIds"]:
                    if uid["idType"] == "SHA256_EMAIL":
                        uid["idValue"] = customer.email.strip().lower()
            if "hashed_names" in faults and "userInfo" in user:
                info = user["userInfo"]
                info["firstName"] = sha256_hex(info["firstName"].lower())
                info["lastName"] = sha256_hex(info["lastName"].lower())
        if "no_user_ids" in faults:
            user.pop("userIds", None)

    # --- LinkedIn's official Python client -------------------------------------------------

    def _sdk_send(self, api_url: str, token: str, version: str | None,
                  item: dict[str, Any]) -> Any:
        body = copy.deepcopy(item)

        def send(timeout: float) -> tuple[int | None, bytes]:
            from linkedin_api.clients.restli.client import RestliClient

            client = RestliClient()
            client.session = _session(api_url, timeout)
            try:
                # version_string=None makes the client use the unversioned /v2 base
                response = client.create(resource_path="/conversionEvents", entity=body,
                                         access_token=token, version_string=version)
            except Exception as exc:  # requests errors, the client's formatting error
                return None, f"{type(exc).__name__}: {exc}".encode()
            return response.status_code, response.response.content

        return send


def _session(api_url: str, timeout: float) -> Any:
    """A ``requests`` session for the official client, which has no base-URL or timeout
    setting: it rewrites LinkedIn's origin to ``api_url`` (the sink) and adds a
    timeout. ``RestliClient`` calls ``session.send`` itself, which applies the proxy
    from the environment but not ``REQUESTS_CA_BUNDLE``, so the CA is set here."""
    import requests

    class RebasedSession(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            origin = api_url.rstrip("/")
            if origin != REAL_ORIGIN and request.url.startswith(REAL_ORIGIN):
                request.url = origin + request.url[len(REAL_ORIGIN):]
            kwargs.setdefault("timeout", timeout)
            return super().send(request, **kwargs)

    session = RebasedSession()
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    if bundle:
        session.verify = bundle
    return session


TRACKER = LinkedInTracker()
