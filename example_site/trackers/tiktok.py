"""TikTok tracking for the shop: the TikTok Pixel (``ttq``) in the page and the Events
API from the backend.

Browser: TikTok's published base code loads the pixel library from
analytics.tiktok.com; each shop event becomes a ``ttq`` call with the shop's event id
as ``{event_id}`` (the third argument), the id TikTok deduplicates on. PageView is
``ttq.page()``: TikTok counts page views from the pixel alone, so the backend sends
no copy of it.

Server: Events API 2.0 (``POST /open_api/v1.3/event/track/``, token in the
``Access-Token`` header) as plain JSON, or TikTok's own Python SDK
(``tiktok-business-api-sdk``), used unchanged; the SDK only knows the legacy 1.0
``/pixel/track/`` endpoint, so that client sends 1.0.

TikTok answers errors with HTTP 200 and a non-zero ``code`` in the body, so the
retry decision reads the body, not only the status.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..faults import ActiveFaults
from ..tracking import Customer, RequestContext, TrackedEvent, js, js_str, sha256_hex
from . import ServerCall, Tracker, TrackerConfig, json_call, proxy_for

PURCHASE = "Purchase"
#: the shop's (Meta-style) event names -> TikTok's standard events
EVENT_NAMES = {
    "ViewContent": "ViewContent",
    "AddToCart": "AddToCart",
    "InitiateCheckout": "InitiateCheckout",
    PURCHASE: "CompletePayment",
}
WRONG_TOKEN = "tt-wrong-token-0000"
SDK_CLIENT = "tiktok-business-api-sdk"
#: TikTok answer codes worth a retry: too frequent, system error, system timeout
RETRYABLE_CODES = {40100, 40132, 50000, 50002}

# TikTok's published pixel base code (the loader that queues ttq calls until
# events.js arrives), kept in its shape so pixel-aware tooling recognises it.
BASE_CODE = (
    "!function (w, d, t) {\n"
    "  w.TiktokAnalyticsObject=t;var ttq=w[t]=w[t]||[];ttq.methods=[\"page\",\"track\","
    "\"identify\",\"instances\",\"debug\",\"on\",\"off\",\"once\",\"ready\",\"alias\","
    "\"group\",\"enableCookie\",\"disableCookie\",\"holdConsent\",\"revokeConsent\","
    "\"grantConsent\"],ttq.setAndDefer=function(t,e){t[e]=function(){t.push([e].concat("
    "Array.prototype.slice.call(arguments,0)))}};for(var i=0;i<ttq.methods.length;i++)"
    "ttq.setAndDefer(ttq,ttq.methods[i]);ttq.instance=function(t){for(var e=ttq._i[t]||[],"
    "n=0;n<ttq.methods.length;n++)ttq.setAndDefer(e,ttq.methods[n]);return e},"
    "ttq.load=function(e,n){var r=\"https://analytics.tiktok.com/i18n/pixel/events.js\","
    "o=n&&n.partner;ttq._i=ttq._i||{},ttq._i[e]=[],ttq._i[e]._u=r,ttq._t=ttq._t||{},"
    "ttq._t[e]=+new Date,ttq._o=ttq._o||{},ttq._o[e]=n||{};n=document.createElement("
    "\"script\");n.type=\"text/javascript\",n.async=!0,n.src=r+\"?sdkid=\"+e+\"&lib=\"+t;"
    "e=document.getElementsByTagName(\"script\")[0];e.parentNode.insertBefore(n,e)};\n"
    "  ttq.load(PIXEL_CODE);\n"
    "}(window, document, 'ttq');"
)


# --- TikTok's normalization (email trimmed + lowercased, phone E.164 WITH the "+") --


def norm_email(value: str) -> str:
    return value.strip().lower()


def norm_phone(value: str) -> str:
    digits = re.sub(r"[^0-9]", "", value)
    if digits.startswith("00") and not value.strip().startswith("+"):
        digits = digits[2:]  # the international call prefix, not part of the number
    return ("+" + digits)[:15] if digits else ""


def norm_external_id(value: str) -> str:
    return value.strip().lower()


def _new_ttp() -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(27))


# --- custom data -> TikTok properties ------------------------------------------------


def properties(custom_data: dict[str, Any]) -> dict[str, Any]:
    """The shop's custom data as TikTok's ``properties``: contents with content_id /
    quantity / price, content_type "product", value, currency, order_id."""
    contents = [
        {"content_id": str(item.get("id")), "quantity": int(item.get("quantity", 1)),
         "price": item.get("item_price")}
        for item in custom_data.get("contents") or []
    ]
    if not contents:
        ids = custom_data.get("content_ids") or []
        # a single product page: its value is the price of one
        price = custom_data.get("value") if len(ids) == 1 else None
        contents = [{"content_id": str(cid), "quantity": 1,
                     **({"price": price} if price is not None else {})} for cid in ids]
    out: dict[str, Any] = {"contents": contents, "content_type": "product"}
    for key in ("value", "currency", "order_id"):
        if key in custom_data:
            out[key] = custom_data[key]
    return out


class TikTokTracker(Tracker):
    platform = "tiktok"
    faults = {
        "id_suffix": "server CompletePayment event_id gets the suffix '-server'",
        "missing_event_id": "server CompletePayment has no event_id",
        "browser_no_event_id": "browser CompletePayment is tracked without {event_id}",
        "name_mapping": "server sends the purchase as 'Purchase', the browser as "
                        "'CompletePayment'",
        "unhashed_email": "server CompletePayment user.email is the plain (normalized) email",
        "phone_no_plus": "server CompletePayment user.phone is the hash of the digits "
                         "without the '+'",
        "stale_event_time": "server CompletePayment event_time is 8 days ago",
        "wrong_token": f"server CompletePayment is sent with Access-Token {WRONG_TOKEN!r}",
        "no_server_purchase": "backend does not send CompletePayment",
        "no_browser_purchase": "thank-you page does not fire CompletePayment",
        "ttp_mismatch": "server CompletePayment user.ttp is a new random id, not the _ttp "
                        "cookie",
    }
    default_tag_id = "CPIXEL0TIKTOK1234567"
    default_token = "tt-shop-test-token-0123456789"
    real_api_url = "https://business-api.tiktok.com"
    clients = ("json", SDK_CLIENT)

    def __init__(self) -> None:
        self._sdk_clients: dict[tuple[str, str | None, str | None], Any] = {}
        self._sdk_lock = threading.Lock()

    # --- browser ---------------------------------------------------------------------

    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        return BASE_CODE.replace("PIXEL_CODE", js_str(config.tag_id))

    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        lines: list[str] = []
        for event in events:
            if event.name == "PageView":
                lines.append("ttq.page();")
                continue
            name = EVENT_NAMES.get(event.name)
            if name is None:
                continue  # not a TikTok standard event: the shop does not map it
            event_id: str | None = event.event_id
            if event.name == PURCHASE:
                if "no_browser_purchase" in faults:
                    continue
                if "browser_no_event_id" in faults:
                    event_id = None
                if customer is not None:
                    # raw values: the pixel normalizes and hashes them itself
                    lines.append("ttq.identify(" + js({
                        "email": customer.email,
                        "phone_number": customer.phone,
                        "external_id": customer.customer_id,
                    }) + ");")
            args = [js_str(name), js(properties(event.custom_data))]
            if event_id is not None:
                args.append("{event_id: " + js_str(event_id) + "}")
            lines.append(f"ttq.track({', '.join(args)});")
        return lines

    # --- server ----------------------------------------------------------------------

    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        calls = []
        for tracked in events:
            name = EVENT_NAMES.get(tracked.name)
            if name is None:
                continue  # PageView and unmapped events: the pixel's alone
            purchase = tracked.name == PURCHASE
            if purchase and "no_server_purchase" in faults:
                continue
            item = self._event(name, tracked, ctx, customer if purchase else None)
            token = config.token
            if purchase:
                self._purchase_faults(item, faults, ctx, customer)
                if "wrong_token" in faults:
                    token = WRONG_TOKEN
            label = f"{item['event']} id={item.get('event_id')!r}"
            if config.client == SDK_CLIENT:
                send = self._sdk_send(config, token, item)
            else:
                payload = {"event_source": "web", "event_source_id": config.tag_id,
                           "data": [item]}
                url = f"{config.api_url.rstrip('/')}/open_api/v1.3/event/track/"
                send = json_call(url, payload, {"Access-Token": token})
            calls.append(ServerCall("tiktok", label, send, retryable=retryable))
        return calls

    @staticmethod
    def _event(name: str, tracked: TrackedEvent, ctx: RequestContext,
               customer: Customer | None) -> dict[str, Any]:
        """The correct Events API 2.0 ``data[]`` item for ``tracked``."""
        user: dict[str, Any] = {"ip": ctx.client_ip, "user_agent": ctx.user_agent}
        # ttp and ttclid are identifiers: sent exactly as the browser has them
        ttp = ctx.cookies.get("_ttp")
        if ttp:
            user["ttp"] = ttp
        ttclid = ctx.cookies.get("ttclid") or _ttclid_in(ctx.page_url)
        if ttclid:
            user["ttclid"] = ttclid
        if customer is not None:
            user["email"] = [sha256_hex(norm_email(customer.email))]
            if customer.phone and norm_phone(customer.phone):
                user["phone"] = [sha256_hex(norm_phone(customer.phone))]
            user["external_id"] = [sha256_hex(norm_external_id(customer.customer_id))]
        return {
            "event": name,
            "event_time": tracked.event_time,
            "event_id": tracked.event_id,
            "user": user,
            "page": {"url": tracked.source_url},
            "properties": properties(copy.deepcopy(tracked.custom_data)),
        }

    @staticmethod
    def _purchase_faults(item: dict[str, Any], faults: ActiveFaults, ctx: RequestContext,
                         customer: Customer | None) -> None:
        """Mutate a correct server CompletePayment into the faulty one ``faults`` ask for."""
        user: dict[str, Any] = item["user"]
        if "id_suffix" in faults:
            item["event_id"] += "-server"
        if "missing_event_id" in faults:
            item.pop("event_id", None)
        if "name_mapping" in faults:
            item["event"] = "Purchase"
        if "stale_event_time" in faults:
            item["event_time"] -= 8 * 24 * 3600
        if "ttp_mismatch" in faults:
            user["ttp"] = _new_ttp()
        if customer is not None:
            if "unhashed_email" in faults:
                user["email"] = [norm_email(customer.email)]
            if "phone_no_plus" in faults and customer.phone:
                user["phone"] = [sha256_hex(norm_phone(customer.phone).lstrip("+"))]

    # --- TikTok's Python SDK (Events API 1.0 pixel/track) --------------------------------

    def _sdk_send(self, config: TrackerConfig, token: str, item: dict[str, Any]) -> Any:
        def send(timeout: float) -> tuple[int | None, bytes]:
            from business_api_client import EventCallbackApi
            from business_api_client.rest import ApiException
            from business_api_client.tiktok_business.tiktok_exceptions import TiktokSDKError

            api = EventCallbackApi(self._sdk_client(config.api_url))
            try:
                returned = api.pixel_track(token, body=self._pixel_track_body(config, item),
                                           _request_timeout=timeout)
            except TiktokSDKError as exc:
                # The SDK raised on a non-zero code of an HTTP 200 answer; the code and
                # message exist only in its text.
                return 200, _body_from_sdk_error(str(exc))
            except ApiException as exc:
                body = exc.body if isinstance(exc.body, bytes) else str(exc.body or "").encode()
                return exc.status, body
            except Exception as exc:  # urllib3 errors: no answer came
                return None, f"{type(exc).__name__}: {exc}".encode()
            data = returned if isinstance(returned, dict) else {}
            return 200, json.dumps({"code": 0, "message": "OK", **data}).encode()

        return send

    def _sdk_client(self, api_url: str) -> Any:
        """One ApiClient per origin and proxy (each starts a thread pool)."""
        from business_api_client import ApiClient, Configuration

        host = api_url.rstrip("/")
        proxy = proxy_for(host)
        ca = os.environ.get("SSL_CERT_FILE") if proxy else None
        key = (host, proxy, ca)
        with self._sdk_lock:
            client = self._sdk_clients.get(key)
            if client is None:
                # Configuration() is a copy of a class-wide default: configure this copy
                # and hand it to ApiClient, before the client exists (it builds its
                # urllib3 pool, with or without the proxy, at construction).
                cfg = Configuration()
                cfg.host = host
                if proxy:
                    # The SDK ignores HTTPS_PROXY; the proxy must be configured by hand,
                    # with its CA for the TLS it terminates.
                    cfg.proxy = proxy
                    if ca:
                        cfg.ssl_ca_cert = ca
                client = self._sdk_clients[key] = ApiClient(cfg)
        return client

    @staticmethod
    def _pixel_track_body(config: TrackerConfig, item: dict[str, Any]) -> Any:
        """The 2.0 item rebuilt as the SDK's 1.0 PixelTrackBody."""
        from business_api_client.models import (
            PixelContent,
            PixelContext,
            PixelContextAd,
            PixelContextPage,
            PixelContextUser,
            PixelProperties,
            PixelTrackBody,
        )

        user = item.get("user", {})

        def first(value: Any) -> str | None:
            return value[0] if isinstance(value, list) and value else value or None

        props = item.get("properties", {})
        when = datetime.fromtimestamp(item["event_time"], tz=timezone.utc)
        return PixelTrackBody(
            pixel_code=config.tag_id,
            event=item["event"],
            event_id=item.get("event_id"),
            timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            context=PixelContext(
                ad=PixelContextAd(callback=user.get("ttclid")) if user.get("ttclid") else None,
                ip=user.get("ip"),
                user_agent=user.get("user_agent"),
                page=PixelContextPage(url=item.get("page", {}).get("url")),
                user=PixelContextUser(email=first(user.get("email")),
                                      phone_number=first(user.get("phone")),
                                      external_id=first(user.get("external_id")),
                                      ttp=user.get("ttp")),
            ),
            properties=PixelProperties(
                contents=[PixelContent(content_id=c.get("content_id"),
                                       content_type=props.get("content_type"),
                                       price=c.get("price"), quantity=c.get("quantity"))
                          for c in props.get("contents", [])],
                currency=props.get("currency"),
                value=props.get("value"),
            ),
        )


def retryable(status: int | None, body: bytes) -> bool:
    """No answer, 5xx, 429, or TikTok's HTTP 200 with a retryable ``code``."""
    if status is None or status >= 500 or status == 429:
        return True
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return False
    return code in RETRYABLE_CODES


def _body_from_sdk_error(text: str) -> bytes:
    """``Error Code: 40105, message: ..., request_id: x`` -> TikTok's answer as JSON."""
    match = re.match(r"Error Code: (?P<code>-?\d+|None), message: (?P<message>.*?), "
                     r"request_id: (?P<rid>[^,]*)", text, re.DOTALL)
    if match is None:
        return json.dumps({"code": None, "message": text}).encode()
    code = match.group("code")
    return json.dumps({"code": int(code) if code != "None" else None,
                       "message": match.group("message"),
                       "request_id": match.group("rid")}).encode()



def _ttclid_in(url: str | None) -> str | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("ttclid")
    return values[0] if values else None


TRACKER = TikTokTracker()
