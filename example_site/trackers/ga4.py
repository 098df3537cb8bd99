"""Google Analytics 4 tracking for the shop: gtag.js in the page, the Measurement
Protocol from the backend.

What a typical GA4 shop does, and so what this tracker does:

* The page loads gtag.js with the standard snippet and maps the shop's events to
  GA4's recommended ones (PageView is the page_view ``config`` sends by itself).
* The backend sends **only the purchase**: GA4 merges a browser and a server copy of
  a purchase on ``transaction_id`` and of nothing else, so a server copy of
  view_item or add_to_cart would simply count twice. Server-side purchases exist
  to catch the orders whose thank-you page never fired (ad blockers, closed tabs).
* The server purchase speaks for the browser's visitor: ``client_id`` is read from
  the ``_ga`` cookie gtag.js set (its last two parts) and ``session_id`` from the
  ``_ga_<id>`` cookie, as Google asks ("client_id must have been used to send an
  event from gtag.js").
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from typing import Any
from urllib.parse import urlencode

from ..faults import ActiveFaults
from ..tracking import PURCHASE, Customer, RequestContext, TrackedEvent, js, js_str
from . import ServerCall, Tracker, TrackerConfig, json_call

log = logging.getLogger("example_site")

#: the shop's event names -> GA4's recommended event names (PageView: see head())
EVENT_NAMES = {
    "ViewContent": "view_item",
    "AddToCart": "add_to_cart",
    "InitiateCheckout": "begin_checkout",
    "Purchase": "purchase",
}
WRONG_API_SECRET = "wrong-api-secret"
STALE_HOURS = 80


def client_id_from_cookie(value: str | None) -> str | None:
    """``GA1.1.1234567890.1700000000`` -> ``1234567890.1700000000`` (gtag.js's cid)."""
    if not value:
        return None
    parts = value.strip().strip('"').split(".")
    return ".".join(parts[-2:]) if len(parts) >= 4 else None


def session_id_from_cookie(value: str | None) -> str | None:
    """The session id in a ``_ga_<id>`` cookie, both formats gtag.js has written:
    ``GS1.1.<sid>.<count>....`` and ``GS2.1.s<sid>$o<count>$...``."""
    if not value:
        return None
    text = value.strip().strip('"')
    if text.startswith("GS2."):
        match = re.search(r"(?:^|[.$])s(\d+)", text.split(".", 2)[-1])
        return match.group(1) if match else None
    parts = text.split(".")
    return parts[2] if len(parts) >= 3 and parts[0] == "GS1" and parts[2].isdigit() else None


def session_cookie_name(measurement_id: str) -> str:
    return "_ga_" + measurement_id.removeprefix("G-")


def new_client_id() -> str:
    """A client id minted on the server: exactly the mistake the fault shows."""
    return f"{random.randint(100_000_000, 2_147_483_647)}.{int(time.time())}"


def _items(custom_data: dict[str, Any]) -> list[dict[str, Any]]:
    """GA4 items from the shop's Meta-style custom data (contents, else content_ids)."""
    contents = custom_data.get("contents")
    if isinstance(contents, list) and contents:
        return [{"item_id": str(c.get("id")), "price": c.get("item_price"),
                 "quantity": c.get("quantity", 1)} for c in contents if isinstance(c, dict)]
    return [{"item_id": str(sku), "quantity": 1} for sku in custom_data.get("content_ids", [])]


def _params(event: TrackedEvent) -> dict[str, Any]:
    data = event.custom_data
    params: dict[str, Any] = {"currency": data.get("currency"), "value": data.get("value"),
                              "items": _items(data)}
    if event.name == PURCHASE:
        params = {"transaction_id": str(data.get("order_id", "")), **params}
    return {k: v for k, v in params.items() if v is not None}


def _norm_email(value: str) -> str:
    text = "".join(value.split()).lower()
    local, at, domain = text.rpartition("@")
    if at and domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + at + domain
    return text


def _norm_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        return ""
    if not value.strip().startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    return "+" + digits


def _norm_name(value: str) -> str:
    # Google: no digits or symbols, lower case, trimmed
    kept = "".join(ch for ch in value if ch.isalpha() or ch == " ")
    return " ".join(kept.split()).lower()


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def server_user_data(customer: Customer) -> dict[str, Any]:
    """Measurement Protocol ``user_data``: normalized, SHA-256 **hex** (Google's rules;
    city, postal code and country in clear)."""
    data: dict[str, Any] = {}
    if customer.email.strip():
        data["sha256_email_address"] = [_sha256_hex(_norm_email(customer.email))]
    phone = _norm_phone(customer.phone)
    if phone:
        data["sha256_phone_number"] = [_sha256_hex(phone)]
    first, last = _norm_name(customer.first_name), _norm_name(customer.last_name)
    address = {
        "sha256_first_name": _sha256_hex(first) if first else "",
        "sha256_last_name": _sha256_hex(last) if last else "",
        "city": _norm_name(customer.city),
        "postal_code": customer.zip.strip(),
        "country": customer.country.strip().upper()[:2],
    }
    address = {k: v for k, v in address.items() if v}
    if address:
        data["address"] = [address]
    return data


class GA4Tracker(Tracker):
    platform = "ga4"
    faults = {
        "empty_transaction_id": "purchase transaction_id is '' on both sides",
        "transaction_id_mismatch": "server purchase transaction_id gets the suffix '-server'",
        "server_client_id_new": "server purchase mints a new client_id instead of the _ga "
                                "cookie's",
        "wrong_api_secret": "all Measurement Protocol calls use api_secret 'wrong-api-secret'",
        "no_server_purchase": "backend does not send the purchase",
        "no_browser_purchase": "thank-you page does not fire the purchase",
        "reserved_event_name": "server sends the purchase as '_purchase'",
        "stale_timestamp": f"server purchase timestamp_micros is {STALE_HOURS} hours ago",
    }
    default_tag_id = "G-PIXELCHECK1"
    default_token = "pixelcheck-ga4-api-secret"
    real_api_url = "https://www.google-analytics.com"
    clients = ("json",)

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        tag = js_str(config.tag_id)
        return "\n".join([
            # the loader the official snippet puts in a <script async src=...> tag,
            # injected from JS because the shop renders one script block
            "(function (d, id) { var s = d.createElement('script'); s.async = true; "
            "s.src = 'https://www.googletagmanager.com/gtag/js?id=' + encodeURIComponent(id); "
            "(d.head || d.documentElement).appendChild(s); })(document, " + tag + ");",
            "window.dataLayer = window.dataLayer || [];",
            "function gtag(){dataLayer.push(arguments);}",
            # the snippet's gtag is a page global; say so when this block is wrapped
            "window.gtag = window.gtag || gtag;",
            "gtag('js', new Date());",
            # config sends the page_view: the shop's PageView is not fired again
            f"gtag('config', {tag});",
        ])

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        calls = []
        for event in events:
            name = EVENT_NAMES.get(event.name)
            if name is None:
                continue  # PageView: config's page_view already went out
            params = _params(event)
            if event.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                if "empty_transaction_id" in faults:
                    params["transaction_id"] = ""
                if customer is not None:
                    # user-provided data must be set before the event that carries it
                    calls.append("gtag('set', 'user_data', " + js(self._user_data(customer))
                                 + ");")
            calls.append(f"gtag('event', {js_str(name)}, {js(params)});")
        return calls

    @staticmethod
    def _user_data(customer: Customer) -> dict[str, Any]:
        # raw values: gtag.js normalizes and hashes them in the browser
        data: dict[str, Any] = {"email": customer.email}
        if customer.phone:
            data["phone_number"] = customer.phone
        address = {"first_name": customer.first_name, "last_name": customer.last_name,
                   "city": customer.city, "postal_code": customer.zip,
                   "country": customer.country}
        address = {k: v for k, v in address.items() if v}
        if address:
            data["address"] = address
        return data

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        secret = WRONG_API_SECRET if "wrong_api_secret" in faults else config.token
        url = (config.api_url.rstrip("/") + "/mp/collect?"
               + urlencode({"measurement_id": config.tag_id, "api_secret": secret}))
        for event in events:
            if event.name != PURCHASE or "no_server_purchase" in faults:
                continue
            body = self._purchase_body(config, event, faults, ctx, customer)
            label = (f"{body['events'][0]['name']} transaction_id="
                     f"{body['events'][0]['params'].get('transaction_id')!r}")
            calls.append(ServerCall("ga4", label, json_call(url, body)))
        return calls

    def _purchase_body(self, config: TrackerConfig, event: TrackedEvent, faults: ActiveFaults,
                       ctx: RequestContext, customer: Customer | None) -> dict[str, Any]:
        client_id = client_id_from_cookie(ctx.cookies.get("_ga"))
        if client_id is None or "server_client_id_new" in faults:
            if client_id is None:
                log.warning("GA4: no _ga cookie on the order request; minting a client_id "
                            "(the purchase will not join the visitor)")
            client_id = new_client_id()
        params = _params(event)
        if "empty_transaction_id" in faults:
            params["transaction_id"] = ""
        if "transaction_id_mismatch" in faults:
            params["transaction_id"] = str(params.get("transaction_id", "")) + "-server"
        session_id = session_id_from_cookie(
            ctx.cookies.get(session_cookie_name(config.tag_id)))
        if session_id is not None:
            params["session_id"] = session_id
        # Google shows a server event in Realtime and sessions only with these two
        params["engagement_time_msec"] = 1
        name = "_purchase" if "reserved_event_name" in faults else "purchase"
        when = event.event_time - (STALE_HOURS * 3600 if "stale_timestamp" in faults else 0)
        body: dict[str, Any] = {
            "client_id": client_id,
            "timestamp_micros": int(when * 1_000_000),
            "events": [{"name": name, "params": params}],
        }
        if ctx.limited_use:
            # consent mode for a visitor who did not consent: Google may keep the event
            # for measurement, but uses none of it for ads
            body["consent"] = {"ad_user_data": "DENIED", "ad_personalization": "DENIED"}
        if customer is not None:
            user_data = server_user_data(customer)
            if user_data:
                # Google takes user_data only together with a user_id
                body["user_id"] = customer.customer_id
                body["user_data"] = user_data
        return body


TRACKER = GA4Tracker()
