"""Reddit tracking for the shop: the Reddit Pixel (``rdt``) in the page and the
Conversions API from the backend.

Browser: Reddit's published base code loads pixel.js from www.redditstatic.com;
``rdt('init', PIXEL_ID, {...})`` carries the customer's match keys (raw: the pixel
canonicalizes and hashes them), and each shop event becomes an ``rdt('track', ...)``
with the shop's event id as ``conversionId``, the id Reddit deduplicates on (the pixel
sends its SHA-256). InitiateCheckout is no Reddit type: it goes out as a Custom event.

Server: Conversions API v3 (``POST /api/v3/pixels/{pixel_id}/conversion_events``,
``Authorization: Bearer``) as plain JSON, one event per call, with the same
``metadata.conversion_id`` in the clear (Reddit compares it to the pixel's hash), the
visitor's ``_rdt_uuid`` cookie as ``user.uuid`` and the ``rdt_cid`` click id. The
``json-v2.0`` client sends the older v2.0 shape instead. Reddit publishes no official
SDK for the Conversions API (FACTS.md), so these two are the shop's only senders.

Every event is sent from both sides, page visits too: Reddit merges any two events of
one type that share a conversion id.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from ..faults import ActiveFaults
from ..tracking import PURCHASE, Customer, RequestContext, TrackedEvent, js, js_str
from . import ServerCall, Tracker, TrackerConfig, json_call

# --- Reddit's canonicalization, written out here on purpose: the shop is the system
# under test, so it must not borrow the checker's rules (a shared bug would hide) ---


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str:
    """Lowercase; the username loses its +alias and every non-alphanumeric character."""
    text = value.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return text
    return re.sub(r"[^a-z0-9]", "", local.split("+", 1)[0]) + "@" + domain.strip()


def norm_phone(value: str) -> str:
    """E.164 with the '+', extension dropped."""
    text = value.strip()
    lower = text.lower()
    for word in ("ext", "x", "anexo", "#", "poste", "int"):
        if word in lower:
            text = text[:lower.index(word)]
            break
    digits = re.sub(r"[^0-9]", "", text)
    if digits.startswith("00") and not value.strip().startswith("+"):
        digits = digits[2:]  # the international call prefix, not part of the number
    return "+" + digits if digits else ""


def hashed(value: str, normalize: Callable[[str], str]) -> str | None:
    canonical = normalize(value)
    return sha256_hex(canonical) if canonical else None


#: the shop's (Meta-style) event names -> Reddit's event types; None: a Custom event
#: named like the shop's event
EVENT_TYPES: dict[str, str | None] = {
    "PageView": "PageVisit",
    "ViewContent": "ViewContent",
    "AddToCart": "AddToCart",
    "InitiateCheckout": None,
    PURCHASE: "Purchase",
}
V3_TYPES = {"PageVisit": "PAGE_VISIT", "ViewContent": "VIEW_CONTENT", "AddToCart": "ADD_TO_CART",
            "Purchase": "PURCHASE", "Custom": "CUSTOM"}
#: Reddit takes value/currency/itemCount only for these types (its event-metadata
#: article, via RudderStack's mapping); ViewContent and PageVisit carry none
WITH_AMOUNT = frozenset({"AddToCart", "Purchase", "Custom"})
JSON_V2 = "json-v2.0"
WRONG_TOKEN = "rdt-wrong-token-0000"
STALE_DAYS = 8

# Reddit's published base code (the loader that queues rdt calls until pixel.js
# arrives), kept in its shape so pixel-aware tooling recognises it.
BASE_CODE = (
    "!function(w,d){if(!w.rdt){var p=w.rdt=function(){p.sendEvent?p.sendEvent.apply(p,"
    "arguments):p.callQueue.push(arguments)};p.callQueue=[];var t=d.createElement(\"script\");"
    "t.src=\"https://www.redditstatic.com/ads/pixel.js\",t.async=!0;"
    "var s=d.getElementsByTagName(\"script\")[0];s.parentNode.insertBefore(t,s)}}"
    "(window,document);"
)


def _type_of(tracked: TrackedEvent) -> tuple[str, str | None] | None:
    """(Reddit type, custom name) of a shop event; None when the shop does not map it."""
    if tracked.name not in EVENT_TYPES:
        return None
    kind = EVENT_TYPES[tracked.name]
    return ("Custom", tracked.name) if kind is None else (kind, None)


def _products(custom_data: dict[str, Any]) -> list[dict[str, Any]]:
    contents = custom_data.get("contents")
    if isinstance(contents, list) and contents:
        return [{"id": str(c.get("id"))} for c in contents if isinstance(c, dict)]
    return [{"id": str(sku)} for sku in custom_data.get("content_ids") or []]


def _item_count(custom_data: dict[str, Any]) -> int:
    if isinstance(custom_data.get("num_items"), int):
        return int(custom_data["num_items"])
    contents = custom_data.get("contents")
    if isinstance(contents, list) and contents:
        return sum(int(c.get("quantity", 1)) for c in contents if isinstance(c, dict))
    return max(len(custom_data.get("content_ids") or []), 1)


def browser_metadata(tracked: TrackedEvent, kind: str, custom: str | None,
                     conversion_id: str | None) -> dict[str, Any]:
    """The second argument of ``rdt('track', ...)``."""
    data = tracked.custom_data
    meta: dict[str, Any] = {}
    if custom is not None:
        meta["customEventName"] = custom
    if conversion_id is not None:
        meta["conversionId"] = conversion_id
    if kind in WITH_AMOUNT and "value" in data:
        meta.update(currency=data.get("currency"), value=data.get("value"),
                    itemCount=_item_count(data))
    if kind != "PageVisit" and _products(data):
        meta["products"] = _products(data)
    if kind == "Purchase" and data.get("order_id"):
        meta["transactionId"] = str(data["order_id"])  # the pixel hashes it
    return meta


def _click_id(ctx: RequestContext) -> str | None:
    cookie = ctx.cookies.get("_rdt_cid")
    if cookie:
        return cookie
    url = ctx.page_url
    values = parse_qs(urlsplit(url).query).get("rdt_cid") if url else None
    return values[0] if values else None


def retryable(status: int | None, body: bytes) -> bool:
    """No answer, 5xx or 429; Reddit's 400 (invalid events) and 401 never get better."""
    return status is None or status >= 500 or status == 429


class RedditTracker(Tracker):
    platform = "reddit"
    faults = {
        "id_mismatch": "server Purchase metadata.conversion_id gets the suffix '-server'",
        "missing_id": "server Purchase has no metadata.conversion_id",
        "unhashed_pii": "server Purchase sends user.email and user.phone_number in the clear "
                        "(canonical, not hashed)",
        "stale_time": f"server Purchase event_at is {STALE_DAYS} days ago",
        "event_at_seconds": "server Purchase event_at is in Unix seconds, not milliseconds",
        "bad_auth": f"server Purchase is sent with Authorization: Bearer {WRONG_TOKEN}",
        "no_server_purchase": "backend does not send the Purchase",
        "no_browser_purchase": "thank-you page does not fire rdt('track', 'Purchase')",
        "browser_no_conversion_id": "browser Purchase is tracked without conversionId",
        "conversion_id_hashed_twice": "server Purchase conversion_id is the SHA-256 of the "
                                      "SHA-256 of the id",
        "purchase_as_custom": "server sends the Purchase as tracking_type CUSTOM named "
                              "'Purchase'",
        "uuid_mismatch": "server Purchase user.uuid is a new random uuid, not the _rdt_uuid "
                         "cookie",
        "missing_action_source": "server Purchase leaves out the required action_source",
    }
    default_tag_id = "a2_pixelcheck0rd1"
    default_token = "rdt-shop-conversion-token-0123456789"
    real_api_url = "https://ads-api.reddit.com"
    #: json: Conversions API v3; json-v2.0: the older v2.0 shape. No official SDK exists.
    clients = ("json", JSON_V2)

    # --- browser ---------------------------------------------------------------------

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        options: dict[str, Any] = {"optOut": False, "useDecimalCurrencyValues": True}
        if customer is not None:
            # raw values: the pixel canonicalizes and hashes match keys itself
            options["email"] = customer.email
            if customer.phone:
                options["phoneNumber"] = customer.phone
            options["externalId"] = customer.customer_id
        return BASE_CODE + f"\nrdt('init', {js_str(config.tag_id)}, {js(options)});"

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        lines: list[str] = []
        for tracked in events:
            mapped = _type_of(tracked)
            if mapped is None:
                continue  # not a Reddit type the shop maps
            kind, custom = mapped
            conversion_id: str | None = tracked.event_id
            if tracked.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                if "browser_no_conversion_id" in faults:
                    conversion_id = None
            meta = browser_metadata(tracked, kind, custom, conversion_id)
            lines.append(f"rdt('track', {js_str(kind)}, {js(meta)});")
        return lines

    # --- server ----------------------------------------------------------------------

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        v2 = config.client == JSON_V2
        for tracked in events:
            mapped = _type_of(tracked)
            if mapped is None:
                continue
            purchase = tracked.name == PURCHASE
            if purchase and "no_server_purchase" in faults:
                continue
            item = self.v3_event(tracked, *mapped, ctx, customer if purchase else None)
            token = config.token
            if purchase:
                self._purchase_faults(item, faults, customer)
                if "bad_auth" in faults:
                    token = WRONG_TOKEN
            kind = item["type"].get("custom_event_name") or item["type"]["tracking_type"]
            label = f"{kind} conversion_id={item.get('metadata', {}).get('conversion_id')!r}"
            headers = {"Authorization": f"Bearer {token}"}
            base = config.api_url.rstrip("/")
            pixel = quote(config.tag_id, safe="")
            if v2:
                url = f"{base}/api/v2.0/conversions/events/{pixel}"
                payload: dict[str, Any] = {"events": [as_v2(item)], "test_mode": False}
            else:
                url = f"{base}/api/v3/pixels/{pixel}/conversion_events"
                payload = {"data": {"events": [item]}}
            calls.append(ServerCall("reddit", label, json_call(url, payload, headers),
                                    retryable=retryable))
        return calls

    @staticmethod
    def v3_event(tracked: TrackedEvent, kind: str, custom: str | None, ctx: RequestContext,
                 customer: Customer | None) -> dict[str, Any]:
        """The correct Conversions API v3 ``events[]`` item for ``tracked``."""
        data = copy.deepcopy(tracked.custom_data)
        user: dict[str, Any] = {"ip_address": ctx.client_ip, "user_agent": ctx.user_agent}
        # _rdt_uuid and rdt_cid are identifiers: sent exactly as the browser has them
        rdt_uuid = ctx.cookies.get("_rdt_uuid")
        if rdt_uuid:
            user["uuid"] = rdt_uuid
        if customer is not None:
            user["email"] = hashed(customer.email, norm_email)
            phone = hashed(customer.phone, norm_phone) if customer.phone else None
            if phone:
                user["phone_number"] = phone
            user["external_id"] = hashed(customer.customer_id, str.strip)
        metadata: dict[str, Any] = {"conversion_id": tracked.event_id}
        if kind in WITH_AMOUNT and "value" in data:
            metadata.update(currency=data.get("currency"), value=float(data["value"]),
                            item_count=_item_count(data))
        if kind != "PageVisit" and _products(data):
            metadata["products"] = _products(data)
        type_: dict[str, Any] = {"tracking_type": V3_TYPES[kind]}
        if custom is not None:
            type_["custom_event_name"] = custom
        item: dict[str, Any] = {
            "event_at": int(tracked.event_time) * 1000,
            "action_source": "WEBSITE",
            "event_source_url": tracked.source_url,
            "type": type_,
            "metadata": metadata,
            "user": user,
        }
        click_id = _click_id(ctx)
        if click_id:
            item["click_id"] = click_id
        return item

    @staticmethod
    def _purchase_faults(item: dict[str, Any], faults: ActiveFaults,
                         customer: Customer | None) -> None:
        """Mutate a correct server Purchase into the faulty one ``faults`` ask for."""
        metadata: dict[str, Any] = item["metadata"]
        user: dict[str, Any] = item["user"]
        if "id_mismatch" in faults:
            metadata["conversion_id"] += "-server"
        if "missing_id" in faults:
            metadata.pop("conversion_id", None)
        if "conversion_id_hashed_twice" in faults and "conversion_id" in metadata:
            metadata["conversion_id"] = sha256_hex(sha256_hex(metadata["conversion_id"]))
        if "stale_time" in faults:
            item["event_at"] -= STALE_DAYS * 86400 * 1000
        if "event_at_seconds" in faults:
            item["event_at"] //= 1000
        if "purchase_as_custom" in faults:
            item["type"] = {"tracking_type": "CUSTOM", "custom_event_name": "Purchase"}
        if "uuid_mismatch" in faults:
            user["uuid"] = f"{int(item['event_at'])}.{uuid.uuid4()}"
        if "missing_action_source" in faults:
            item.pop("action_source", None)
        if customer is not None and "unhashed_pii" in faults:
            user["email"] = norm_email(customer.email)
            if customer.phone:
                user["phone_number"] = norm_phone(customer.phone)


def as_v2(item: dict[str, Any]) -> dict[str, Any]:
    """A v3 ``events[]`` item in v2.0's shape: ``event_at`` RFC 3339, ``event_type`` with
    the CamelCase type, ``event_metadata`` with ``value_decimal``."""
    v3_to_v2 = {v: k for k, v in V3_TYPES.items()}
    kind = dict(item.get("type") or {})
    if "tracking_type" in kind:
        kind["tracking_type"] = v3_to_v2.get(kind["tracking_type"], kind["tracking_type"])
    metadata = dict(item.get("metadata") or {})
    if "value" in metadata:
        metadata["value_decimal"] = metadata.pop("value")
    out: dict[str, Any] = {"event_type": kind, "event_metadata": metadata,
                           "user": dict(item.get("user") or {})}
    if "event_at" in item:
        when = datetime.fromtimestamp(item["event_at"] / 1000, tz=timezone.utc)
        out["event_at"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if item.get("click_id"):
        out["click_id"] = item["click_id"]
    return out


TRACKER = RedditTracker()
