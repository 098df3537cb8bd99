"""Pinterest tracking for the shop: the Pinterest Tag (``pintrk``) in the page and the
Conversions API v5 from the backend.

Browser: Pinterest's published base code loads ``https://s.pinimg.com/ct/core.js``;
``pintrk('load', TAG_ID, {em})`` gives it the customer's raw email (the tag hashes it),
``pintrk('page')`` sends the page-load hit, and each shop event becomes
``pintrk('track', NAME, {event_id, ...})`` with the shop's event id inside the event
data, where Pinterest reads the id it deduplicates on. The tag spells its events
``pagevisit``, ``addtocart``, ``initiatecheckout``, ``checkout``; the API spells the
same events ``page_visit``, ``add_to_cart``, ``initiate_checkout``, ``checkout``. A
product page sends one page visit, carrying the product (Pinterest's advice for
product pages), rather than a bare page visit and a second one for the product.

Server: ``POST /v5/ad_accounts/<ad account>/events`` with ``Authorization: Bearer``,
as plain JSON or through Pinterest's own Python SDK (``pinterest-api-sdk``), used
unchanged. ``custom_data.value`` is a string, as Pinterest's API wants it. The
``_epik`` cookie (or the landing URL's ``epik``) goes out as ``user_data.click_id``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..faults import ActiveFaults
from ..tracking import Customer, RequestContext, TrackedEvent, js, js_str
from . import ServerCall, Tracker, TrackerConfig, json_call, proxy_for

PURCHASE = "Purchase"
#: the shop's (Meta-style) event names -> Pinterest's Conversions API names
API_NAMES = {
    "PageView": "page_visit",
    "ViewContent": "page_visit",
    "AddToCart": "add_to_cart",
    "InitiateCheckout": "initiate_checkout",
    PURCHASE: "checkout",
}
#: the API's names -> the spelling the page passes to pintrk('track', ...)
TAG_NAMES = {
    "page_visit": "pagevisit",
    "add_to_cart": "addtocart",
    "initiate_checkout": "initiatecheckout",
    "checkout": "checkout",
}
#: the shop's ad account (the id shape Pinterest uses: digits)
AD_ACCOUNT_ID = "549755885175"
WRONG_TOKEN = "pina-wrong-token-0000"
SDK_CLIENT = "pinterest-api-sdk"
STALE_DAYS = 8

# Pinterest's published base code (the loader that queues pintrk calls until core.js
# arrives), kept in its shape so tag-aware tooling recognises it.
BASE_CODE = (
    "!function(e){if(!window.pintrk){window.pintrk = function () {\n"
    "window.pintrk.queue.push(Array.prototype.slice.call(arguments))};var\n"
    "n=window.pintrk;n.queue=[],n.version=\"3.0\";var\n"
    "t=document.createElement(\"script\");t.async=!0,t.src=e;var\n"
    "r=document.getElementsByTagName(\"script\")[0];\n"
    "r.parentNode.insertBefore(t,r)}}(\"https://s.pinimg.com/ct/core.js\");"
)


# --- Pinterest's normalization (its API field texts): phone digits only, no "+" -----


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str:
    return value.strip().lower()


def norm_phone(value: str) -> str:
    """Digits with the country code, no symbols and no leading zeros (no "+")."""
    return re.sub(r"[^0-9]", "", value).lstrip("0")


def norm_name(value: str) -> str:
    return value.strip().lower()


def norm_city(value: str) -> str:
    return re.sub(r"[\W_]", "", value.strip().lower())


def norm_zip(value: str) -> str:
    text = value.strip().lower()
    if re.search(r"[a-z]", text):
        return re.sub(r"[^a-z0-9]", "", text)
    return re.sub(r"[^0-9]", "", text)


def norm_country(value: str) -> str:
    return re.sub(r"[^a-z]", "", value.strip().lower())


def hashed_user_data(customer: Customer) -> dict[str, list[str]]:
    """The customer's match keys as Pinterest wants them: arrays of SHA-256 hex."""
    fields = {
        "em": norm_email(customer.email),
        "ph": norm_phone(customer.phone),
        "fn": norm_name(customer.first_name),
        "ln": norm_name(customer.last_name),
        "ct": norm_city(customer.city),
        "zp": norm_zip(customer.zip),
        "country": norm_country(customer.country),
        "external_id": customer.customer_id.strip(),
    }
    return {key: [sha256_hex(value)] for key, value in fields.items() if value}


def _money(value: Any) -> str:
    """custom_data.value and item_price: Pinterest takes them as strings."""
    try:
        return f"{float(value):.2f}"
    except (TypeError, ValueError):
        return str(value)


def _lines(custom_data: dict[str, Any]) -> list[dict[str, Any]]:
    """(id, quantity, price) of each product in the shop's Meta-style custom data."""
    contents = custom_data.get("contents")
    if isinstance(contents, list) and contents:
        return [{"id": str(c.get("id")), "quantity": int(c.get("quantity", 1)),
                 "price": c.get("item_price")} for c in contents if isinstance(c, dict)]
    ids = custom_data.get("content_ids") or []
    # a product page: its value is the price of one
    price = custom_data.get("value") if len(ids) == 1 else None
    return [{"id": str(sku), "quantity": 1, "price": price} for sku in ids]


def tag_event_data(tracked: TrackedEvent, with_id: bool = True) -> dict[str, Any]:
    """The event data of pintrk('track', NAME, {...}): the id Pinterest deduplicates on,
    then value, currency, order and line items in the tag's own keys."""
    data = tracked.custom_data
    out: dict[str, Any] = {"event_id": tracked.event_id} if with_id else {}
    for key in ("value", "currency", "order_id"):
        if data.get(key) is not None:
            out[key] = data[key]
    lines = _lines(data)
    if lines:
        out["order_quantity"] = data.get("num_items") or sum(li["quantity"] for li in lines)
        out["line_items"] = [
            {"product_id": li["id"], "product_quantity": li["quantity"],
             **({"product_price": li["price"]} if li["price"] is not None else {})}
            for li in lines]
    return out


def api_custom_data(tracked: TrackedEvent) -> dict[str, Any]:
    """The API's custom_data: value and item_price as strings, content_ids, contents."""
    data = tracked.custom_data
    out: dict[str, Any] = {}
    if data.get("currency"):
        out["currency"] = data["currency"]
    if data.get("value") is not None:
        out["value"] = _money(data["value"])
    lines = _lines(data)
    if lines:
        out["content_ids"] = [li["id"] for li in lines]
        out["contents"] = [{"id": li["id"], "quantity": li["quantity"],
                            **({"item_price": _money(li["price"])}
                               if li["price"] is not None else {})} for li in lines]
        out["num_items"] = int(data.get("num_items") or sum(li["quantity"] for li in lines))
    if data.get("order_id"):
        out["order_id"] = str(data["order_id"])
    return out


def pinterest_events(events: list[TrackedEvent]) -> list[TrackedEvent]:
    """The shop's events Pinterest tracks, the same list for both sides: a product page's
    PageView folds into its ViewContent (one page visit, carrying the product)."""
    has_product = any(e.name == "ViewContent" for e in events)
    return [e for e in events if e.name in API_NAMES
            and not (e.name == "PageView" and has_product)]


def _epik_in(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("epik")
    return values[0] if values else None


class PinterestTracker(Tracker):
    platform = "pinterest"
    faults = {
        "id_mismatch": "server checkout event_id gets the suffix '-server'",
        "missing_id": "server checkout has no event_id (Pinterest answers 400)",
        "browser_no_event_id": "browser checkout is tracked without event_id",
        "unhashed_pii": "server checkout user_data.em is the plain (normalized) email",
        "phone_plus": "server checkout user_data.ph is the hash of the phone with its '+'",
        "stale_time": f"server checkout event_time is {STALE_DAYS} days ago",
        "bad_auth": f"server checkout is sent with the token {WRONG_TOKEN!r}",
        "token_in_query": "all Conversions API calls send the token as ?access_token= "
                          "instead of 'Authorization: Bearer' (json client)",
        "no_server_purchase": "backend does not send checkout",
        "no_browser_purchase": "thank-you page does not fire checkout",
        "tag_name_in_api": "server sends AddToCart as 'addtocart' (the tag's spelling), not "
                           "'add_to_cart'",
        "value_as_number": "server checkout custom_data.value is a number, not a string",
        "click_id_hashed": "all server calls send the SHA-256 of the _epik cookie as "
                           "click_id",
        "no_click_id": "all server calls omit user_data.click_id",
        "test_mode": "all Conversions API calls carry ?test=true",
        "offline_source": "server checkout is sent with action_source 'offline'",
    }
    default_tag_id = "2612345678901"
    default_token = "pina-shop-test-token-0123456789"
    real_api_url = "https://api.pinterest.com"
    clients = ("json", SDK_CLIENT)

    def __init__(self) -> None:
        self._sdk_clients: dict[tuple[str, str | None, str | None, str], Any] = {}
        self._sdk_lock = threading.Lock()

    # --- browser ---------------------------------------------------------------------

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        load = f"pintrk('load', {js_str(config.tag_id)}"
        if customer is not None and customer.email.strip():
            # the raw email: the tag trims, lowercases and hashes it in the browser
            load += ", " + js({"em": customer.email})
        return "\n".join([BASE_CODE, load + ");", "pintrk('page');"])

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        lines: list[str] = []
        for event in pinterest_events(events):
            with_id = True
            if event.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                with_id = "browser_no_event_id" not in faults
            name = TAG_NAMES[API_NAMES[event.name]]
            lines.append(f"pintrk('track', {js_str(name)}, "
                         f"{js(tag_event_data(event, with_id))});")
        return lines

    # --- server ----------------------------------------------------------------------

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        for tracked in pinterest_events(events):
            purchase = tracked.name == PURCHASE
            if purchase and "no_server_purchase" in faults:
                continue
            item = self.event(tracked, ctx, customer if purchase else None)
            token = config.token
            self._all_calls_faults(item, faults, ctx)
            if purchase:
                self._purchase_faults(item, faults, customer)
                if "bad_auth" in faults:
                    token = WRONG_TOKEN
            elif tracked.name == "AddToCart" and "tag_name_in_api" in faults:
                item["event_name"] = "addtocart"
            label = f"{item['event_name']} id={item.get('event_id')!r}"
            test = "test_mode" in faults
            if config.client == SDK_CLIENT:
                send = self._sdk_send(config, token, item, test)
            else:
                query: dict[str, str] = {"test": "true"} if test else {}
                headers = {"Authorization": f"Bearer {token}"}
                if "token_in_query" in faults:
                    query["access_token"] = token
                    headers = {}
                url = (f"{config.api_url.rstrip('/')}/v5/ad_accounts/{AD_ACCOUNT_ID}/events"
                       + (f"?{urlencode(query)}" if query else ""))
                send = json_call(url, {"data": [item]}, headers)
            calls.append(ServerCall("pinterest", label, send))
        return calls

    @staticmethod
    def event(tracked: TrackedEvent, ctx: RequestContext,
              customer: Customer | None) -> dict[str, Any]:
        """The correct ``data[]`` item for ``tracked``."""
        user: dict[str, Any] = {}
        if customer is not None:
            user.update(hashed_user_data(customer))
        user.update(client_ip_address=ctx.client_ip, client_user_agent=ctx.user_agent)
        # the click id is an identifier: sent exactly as the browser has it
        epik = ctx.cookies.get("_epik") or _epik_in(ctx.page_url)
        if epik:
            user["click_id"] = epik
        item: dict[str, Any] = {
            "event_name": API_NAMES[tracked.name],
            "action_source": "web",
            "event_time": tracked.event_time,
            "event_id": tracked.event_id,
            "event_source_url": tracked.source_url,
            "user_data": user,
        }
        custom = api_custom_data(tracked)
        if custom:
            item["custom_data"] = custom
        return item

    @staticmethod
    def _all_calls_faults(item: dict[str, Any], faults: ActiveFaults,
                          ctx: RequestContext) -> None:
        user: dict[str, Any] = item["user_data"]
        if "no_click_id" in faults:
            user.pop("click_id", None)
        elif "click_id_hashed" in faults and user.get("click_id"):
            user["click_id"] = sha256_hex(user["click_id"])

    @staticmethod
    def _purchase_faults(item: dict[str, Any], faults: ActiveFaults,
                         customer: Customer | None) -> None:
        """Mutate a correct server checkout into the faulty one ``faults`` ask for."""
        if "id_mismatch" in faults:
            item["event_id"] += "-server"
        if "missing_id" in faults:
            item.pop("event_id", None)
        if "stale_time" in faults:
            item["event_time"] -= STALE_DAYS * 86400
        if "offline_source" in faults:
            item["action_source"] = "offline"
        custom = item.get("custom_data", {})
        if "value_as_number" in faults and "value" in custom:
            custom["value"] = float(custom["value"])
        user = item["user_data"]
        if customer is not None:
            if "unhashed_pii" in faults:
                user["em"] = [norm_email(customer.email)]
            if "phone_plus" in faults and customer.phone:
                user["ph"] = [sha256_hex("+" + norm_phone(customer.phone))]

    # --- Pinterest's Python SDK ----------------------------------------------------------

    def _sdk_send(self, config: TrackerConfig, token: str, item: dict[str, Any],
                  test: bool) -> Any:
        def send(timeout: float) -> tuple[int | None, bytes]:
            from openapi_generated.pinterest_client.exceptions import (
                ApiException,
                OpenApiException,
            )
            from pinterest.ads.conversion_events import Conversion

            try:
                event = self._sdk_event(item)
            except OpenApiException as exc:
                # the SDK refuses to build the event (a missing event_id, a number where
                # it types a string): nothing is sent
                return None, f"the SDK refused the event: {exc}".encode()
            try:
                response = Conversion.send_conversion_events(
                    ad_account_id=AD_ACCOUNT_ID, conversion_events=[event], test=test,
                    client=self._sdk_client(config.api_url, token), _request_timeout=timeout)
            except ApiException as exc:
                body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
                return exc.status, body
            except Exception as exc:  # urllib3 errors: no answer came
                return None, f"{type(exc).__name__}: {exc}".encode()
            return 200, json.dumps(response.to_dict()).encode()

        return send

    @staticmethod
    def _sdk_event(item: dict[str, Any]) -> Any:
        """The data[] item rebuilt with the SDK's Conversion.create_conversion_event."""
        from openapi_generated.pinterest_client.model.conversion_events_custom_data_contents import (  # noqa: E501
            ConversionEventsCustomDataContents,
        )
        from pinterest.ads.conversion_events import Conversion

        custom = dict(item.get("custom_data", {}))
        if "contents" in custom:
            custom["contents"] = [ConversionEventsCustomDataContents(**c)
                                  for c in custom["contents"]]
        extra = {k: v for k, v in item.items() if k not in (
            "event_name", "action_source", "event_time", "event_id", "user_data",
            "custom_data")}
        return Conversion.create_conversion_event(
            event_name=item["event_name"], action_source=item["action_source"],
            event_time=item["event_time"], event_id=item.get("event_id"),
            user_data=dict(item["user_data"]), custom_data=custom, **extra)

    def _sdk_client(self, api_url: str, token: str) -> Any:
        """One client per origin, proxy and token (each holds its own connection pool)."""
        from openapi_generated.pinterest_client.configuration import Configuration
        from pinterest.client import PinterestSDKClient

        host = api_url.rstrip("/") + "/v5"
        proxy = proxy_for(host)
        ca = os.environ.get("SSL_CERT_FILE") if proxy else None
        key = (host, proxy, ca, token)
        with self._sdk_lock:
            client = self._sdk_clients.get(key)
            if client is None:
                cfg = Configuration(access_token=token, host=host)
                if proxy:
                    # The SDK ignores HTTPS_PROXY: the proxy, and its CA for the TLS it
                    # terminates, are set on the Configuration before the client exists
                    # (it builds its urllib3 pool at construction)
                    cfg.proxy = proxy
                    if ca:
                        cfg.ssl_ca_cert = ca
                client = self._sdk_clients[key] = PinterestSDKClient(configuration=cfg)
        return client



TRACKER = PinterestTracker()
