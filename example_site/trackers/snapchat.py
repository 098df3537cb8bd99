"""Snapchat tracking for the shop: the Snap Pixel (``snaptr``) in the page and the Snap
Conversions API from the backend.

Browser: Snap's published base code loads the Snap Pixel from sc-static.net;
``snaptr('init', PIXEL_ID, {...})`` takes the customer's email and phone in the clear
on the thank-you page (the pixel hashes them), and each shop event becomes
``snaptr('track', NAME, {..., client_dedup_id: <the shop's event id>})``, the id Snap
deduplicates on.

Server: the Snap Conversions API v3 (``POST /v3/{PIXEL_ID}/events?access_token=...``)
as plain JSON, one call per event with the same event id, or Snap's own Python SDK
(``snap-business-sdk``), used unchanged: the SDK knows only the legacy v2 API
(``POST /v2/conversion``, Bearer token, ``client_dedup_id``, times in ms) and
normalizes and hashes the customer's values itself.

The backend speaks for the browser's visitor: ``sc_cookie1`` is the ``_scid`` cookie
the pixel set, ``sc_click_id`` the ``ScCid`` the visitor landed with (the pixel keeps
it in ``_scclid``), both sent exactly as the browser has them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import threading
import uuid
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..faults import ActiveFaults
from ..tracking import Customer, RequestContext, TrackedEvent, js, js_str
from . import ServerCall, Tracker, TrackerConfig, json_call, proxy_for

PURCHASE = "Purchase"
#: the shop's (Meta-style) event names -> Snap's standard events
EVENT_NAMES = {
    "PageView": "PAGE_VIEW",
    "ViewContent": "VIEW_CONTENT",
    "AddToCart": "ADD_CART",
    "InitiateCheckout": "START_CHECKOUT",
    PURCHASE: "PURCHASE",
}
WRONG_TOKEN = "snap-wrong-token-0000"
SDK_CLIENT = "snap-business-sdk"
STALE_DAYS = 38  # one day past Snap's 37-day limit

# Snap's published pixel base code (the loader that queues snaptr calls until
# scevent.min.js arrives), kept in its shape so pixel-aware tooling recognises it.
BASE_CODE = (
    "(function(e,t,n){if(e.snaptr)return;var a=e.snaptr=function()\n"
    "{a.handleRequest?a.handleRequest.apply(a,arguments):a.queue.push(arguments)};\n"
    "a.queue=[];var s='script';var r=t.createElement(s);r.async=!0;\n"
    "r.src=n;var u=t.getElementsByTagName(s)[0];\n"
    "u.parentNode.insertBefore(r,u);})(window,document,\n"
    "'https://sc-static.net/scevent.min.js');"
)


# --- Snap's normalization (email trimmed + lowercased; phone digits only, NO "+") -----


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str:
    return value.strip().lower()


def norm_phone(value: str) -> str:
    # digits with the country code; a leading 00 or trunk 0 is not part of the number
    return re.sub(r"[^0-9]", "", value).lstrip("0")


def norm_text(value: str) -> str:
    return value.strip().lower()


def norm_country(value: str) -> str:
    return re.sub(r"[^a-z]", "", value.lower())[:2]


def user_hashes(customer: Customer) -> dict[str, list[str]]:
    """user_data match keys as arrays of SHA-256 hex (empty fields left out)."""
    normalized = {
        "em": norm_email(customer.email),
        "ph": norm_phone(customer.phone),
        "fn": norm_text(customer.first_name),
        "ln": norm_text(customer.last_name),
        "ct": norm_text(customer.city),
        "zp": norm_text(customer.zip),
        "country": norm_country(customer.country),
        "external_id": norm_text(customer.customer_id),
    }
    return {key: [sha256_hex(value)] for key, value in normalized.items() if value}


def click_id_in(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("ScCid")
    return values[0] if values else None


# --- custom data -----------------------------------------------------------------------


def _content_ids(custom_data: dict[str, Any]) -> list[str]:
    ids = custom_data.get("content_ids")
    if ids:
        return [str(i) for i in ids]
    return [str(c.get("id")) for c in custom_data.get("contents") or []]


def pixel_params(custom_data: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    """The shop's custom data as snaptr('track') parameters."""
    params: dict[str, Any] = {}
    if "value" in custom_data:
        params["price"] = custom_data["value"]
    if "currency" in custom_data:
        params["currency"] = custom_data["currency"]
    ids = _content_ids(custom_data)
    if ids:
        params["item_ids"] = ids
    if "num_items" in custom_data:
        params["number_items"] = custom_data["num_items"]
    if "order_id" in custom_data:
        params["transaction_id"] = custom_data["order_id"]
    if event_id is not None:
        params["client_dedup_id"] = event_id
    return params


def custom_data(data: dict[str, Any]) -> dict[str, Any]:
    """The shop's custom data as Snap Conversions API v3 ``custom_data``."""
    out: dict[str, Any] = {}
    for key in ("currency", "value", "order_id", "num_items", "content_type"):
        if key in data:
            out[key] = data[key]
    ids = _content_ids(data)
    if ids:
        out["content_ids"] = ids
    contents = [{"id": str(c.get("id")), "quantity": c.get("quantity", 1),
                 "item_price": c.get("item_price")}
                for c in data.get("contents") or []]
    if contents:
        out["contents"] = [{k: v for k, v in c.items() if v is not None} for c in contents]
    return out


class SnapchatTracker(Tracker):
    platform = "snapchat"
    faults = {
        "id_mismatch": "server PURCHASE event_id gets the suffix '-server'",
        "missing_id": "server PURCHASE has no event_id",
        "unhashed_pii": "server PURCHASE user_data.em is the plain (normalized) email",
        "stale_time": f"server PURCHASE event_time is {STALE_DAYS} days ago",
        "bad_auth": f"server PURCHASE is sent with access_token {WRONG_TOKEN!r}",
        "no_server_purchase": "backend does not send PURCHASE",
        "no_browser_purchase": "thank-you page does not fire PURCHASE",
        "browser_no_dedup_id": "browser PURCHASE is tracked without client_dedup_id (the "
                               "Snap Pixel fills cdid with its own '@-<uuid>')",
        "phone_with_plus": "server PURCHASE ph is the hash of '+' and the digits (TikTok's "
                           "form), not of the digits alone",
        "scid_new": "server PURCHASE sc_cookie1 is a new random UUID, not the _scid cookie",
        "scid_hashed": "server PURCHASE sc_cookie1 is the SHA-256 of the _scid cookie",
        "click_id_lost": "server PURCHASE carries no sc_click_id",
        "name_lowercase": "server sends the purchase as 'purchase' (lower case)",
    }
    default_tag_id = "a1b2c3d4-0000-4000-8000-5a9c0ffee001"
    default_token = "snap-shop-test-token-0123456789"
    real_api_url = "https://tr.snapchat.com"
    clients = ("json", SDK_CLIENT)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # --- browser ---------------------------------------------------------------------

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        init = [js_str(config.tag_id)]
        if customer is not None:
            # raw values: the Snap Pixel normalizes and hashes them itself
            init.append(js({"user_email": customer.email,
                            "user_phone_number": customer.phone}))
        return BASE_CODE + f"\nsnaptr('init', {', '.join(init)});"

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        lines: list[str] = []
        for event in events:
            name = EVENT_NAMES.get(event.name)
            if name is None:
                continue  # not a Snap standard event: the shop does not map it
            event_id: str | None = event.event_id
            if event.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                if "browser_no_dedup_id" in faults:
                    event_id = None
            params = pixel_params(event.custom_data, event_id)
            lines.append(f"snaptr('track', {js_str(name)}, {js(params)});")
        return lines

    # --- server ----------------------------------------------------------------------

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        for tracked in events:
            name = EVENT_NAMES.get(tracked.name)
            if name is None:
                continue
            purchase = tracked.name == PURCHASE
            if purchase and "no_server_purchase" in faults:
                continue
            item = self._event(name, tracked, ctx, customer if purchase else None)
            token = config.token
            if purchase:
                self._purchase_faults(item, faults, customer)
                if "bad_auth" in faults:
                    token = WRONG_TOKEN
            label = f"{item['event_name']} id={item.get('event_id')!r}"
            if config.client == SDK_CLIENT:
                raw = customer if purchase and not _pii_faults(faults) else None
                send = self._sdk_send(config, token, item, raw)
            else:
                url = (f"{config.api_url.rstrip('/')}/v3/{quote(config.tag_id, safe='')}"
                       f"/events?access_token={quote(token, safe='')}")
                send = json_call(url, {"data": [item]})
            calls.append(ServerCall("snapchat", label, send))
        return calls

    @staticmethod
    def _event(name: str, tracked: TrackedEvent, ctx: RequestContext,
               customer: Customer | None) -> dict[str, Any]:
        """The correct Snap Conversions API v3 ``data[]`` item for ``tracked``."""
        user: dict[str, Any] = {"client_ip_address": ctx.client_ip,
                                "client_user_agent": ctx.user_agent}
        # identifiers, sent exactly as the browser has them
        scid = ctx.cookies.get("_scid")
        if scid:
            user["sc_cookie1"] = scid
        click = ctx.cookies.get("_scclid") or click_id_in(ctx.page_url)
        if click:
            user["sc_click_id"] = click
        if customer is not None:
            user.update(user_hashes(customer))
        return {
            "event_name": name,
            "event_time": tracked.event_time,
            "event_id": tracked.event_id,
            "action_source": "WEB",
            "event_source_url": tracked.source_url,
            "user_data": user,
            "custom_data": custom_data(copy.deepcopy(tracked.custom_data)),
        }

    @staticmethod
    def _purchase_faults(item: dict[str, Any], faults: ActiveFaults,
                         customer: Customer | None) -> None:
        """Mutate a correct server PURCHASE into the faulty one ``faults`` ask for."""
        user: dict[str, Any] = item["user_data"]
        if "id_mismatch" in faults:
            item["event_id"] += "-server"
        if "missing_id" in faults:
            item.pop("event_id", None)
        if "stale_time" in faults:
            item["event_time"] -= STALE_DAYS * 86400
        if "name_lowercase" in faults:
            item["event_name"] = item["event_name"].lower()
        if "scid_new" in faults:
            user["sc_cookie1"] = str(uuid.uuid4())
        if "scid_hashed" in faults and user.get("sc_cookie1"):
            user["sc_cookie1"] = sha256_hex(user["sc_cookie1"])
        if "click_id_lost" in faults:
            user.pop("sc_click_id", None)
        if customer is not None:
            if "unhashed_pii" in faults:
                user["em"] = [norm_email(customer.email)]
            if "phone_with_plus" in faults and norm_phone(customer.phone):
                user["ph"] = [sha256_hex("+" + norm_phone(customer.phone))]

    # --- Snap's Python SDK (the legacy v2 /v2/conversion) --------------------------------

    def _sdk_send(self, config: TrackerConfig, token: str, item: dict[str, Any],
                  customer: Customer | None) -> Any:
        def send(timeout: float) -> tuple[int | None, bytes]:
            from snap_business_sdk.exceptions import ApiException
            from snap_business_sdk.public.conversion_api import ConversionApi
            from snap_business_sdk.public.conversion_event import ConversionEvent

            api = self._sdk_api(config.api_url, token)
            event = ConversionEvent(**_sdk_fields(config, item, customer))
            # the SDK drops an event it cannot build (logging only): say so
            capi_events = ConversionApi.validate_and_create_events([event])
            if not capi_events:
                return None, b"snap-business-sdk could not build the event"
            try:
                answer = api.default_api.send_data(body=capi_events,
                                                   _request_timeout=timeout)
            except ApiException as exc:
                body = exc.body if isinstance(exc.body, bytes) else \
                    str(exc.body or "").encode()
                return exc.status, body
            except Exception as exc:  # urllib3 errors: no answer came
                return None, f"{type(exc).__name__}: {exc}".encode()
            return 200, json.dumps(answer.to_dict()).encode()

        return send

    def _sdk_api(self, api_url: str, token: str) -> Any:
        """A ConversionApi for this origin and token. The SDK recommends an instance per
        thread, and builds its urllib3 pool in the constructor: a fresh one per call."""
        from snap_business_sdk import rest
        from snap_business_sdk.public.conversion_api import ConversionApi

        host = api_url.rstrip("/")
        with self._lock:
            # its Configuration() sets the level of the process-wide urllib3 and SDK
            # loggers: one constructor at a time across the sender's threads
            api = ConversionApi(access_token=token, launchpad_url=host)
        proxy = proxy_for(host)
        if proxy:
            # The SDK ignores HTTPS_PROXY; the proxy (and the CA of the TLS it
            # terminates) must be set on its configuration, then the pool rebuilt.
            cfg = api.configuration
            cfg.proxy = proxy
            ca = os.environ.get("SSL_CERT_FILE")
            if ca:
                cfg.ssl_ca_cert = ca
            api.api_client.rest_client = rest.RESTClientObject(cfg)
        return api


# faults that hand-craft user_data: the hand-built hashes are what they test
PII_FAULTS = ("unhashed_pii", "phone_with_plus")


def _pii_faults(faults: ActiveFaults) -> bool:
    return any(name in faults for name in PII_FAULTS)


def _sdk_fields(config: TrackerConfig, item: dict[str, Any],
                customer: Customer | None) -> dict[str, Any]:
    """The v3 item as the SDK's v2 ConversionEvent arguments (every value a string, as
    its model types them). With ``customer`` the SDK normalizes and hashes the raw
    values itself; without, the item's digests go in as ``hashed_*``."""
    user = item.get("user_data", {})
    data = item.get("custom_data", {})
    fields: dict[str, Any] = {
        "pixel_id": config.tag_id,
        "event_type": item["event_name"],
        "event_conversion_type": "WEB",
        "timestamp": str(int(item["event_time"]) * 1000),
        "page_url": item.get("event_source_url"),
        "user_agent": user.get("client_user_agent"),
        "ip_address": user.get("client_ip_address"),
        "uuid_c1": user.get("sc_cookie1"),
        "click_id": user.get("sc_click_id"),
        "client_dedup_id": item.get("event_id"),
        "price": str(data["value"]) if "value" in data else None,
        "currency": data.get("currency"),
        "transaction_id": data.get("order_id"),
        "item_ids": ",".join(data.get("content_ids") or []) or None,
        "number_items": str(data["num_items"]) if "num_items" in data else None,
    }
    if customer is not None:
        fields.update(email=customer.email, phone_number=customer.phone,
                      first_name=customer.first_name, last_name=customer.last_name,
                      city=customer.city, zip=customer.zip)
    else:
        for key, field in (("em", "hashed_email"), ("ph", "hashed_phone_number"),
                           ("fn", "hashed_first_name_sha"), ("ln", "hashed_last_name_sha"),
                           ("ct", "hashed_city_sha"), ("zp", "hashed_zip")):
            if user.get(key):
                fields[field] = user[key][0]
    return {k: v for k, v in fields.items() if v not in (None, "")}



TRACKER = SnapchatTracker()
