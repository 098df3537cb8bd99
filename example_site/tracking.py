"""Meta Pixel (browser) and Conversions API (server) tracking for the shop.

Every page decides *what* happened as a list of :class:`TrackedEvent`. Two builders
turn that list into what each side sends, and they are the only places that look
at the active faults:

* :func:`browser_script` -> the ``<script>`` with the base code and ``fbq`` calls,
* :func:`server_sends` -> the Conversions API requests for :class:`CapiSender`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .faults import ActiveFaults

log = logging.getLogger("example_site")

PURCHASE = "Purchase"
HARDCODED_PURCHASE_ID = "purchase.1"
WRONG_PIXEL_ID = "9999999999"
WRONG_TOKEN = "EAAwrongtoken"
FAULT_TEST_EVENT_CODE = "TEST12345"

# Meta's standard base code, kept in its published shape so pixel-aware tooling
# recognises it.
BASE_CODE = (
    "!function(f,b,e,v,n,t,s){if(f.fbq)return;n=f.fbq=function(){n.callMethod?"
    "n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;"
    "n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;"
    "t.src=v;s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}(window, "
    "document,'script','https://connect.facebook.net/en_US/fbevents.js');"
)


def new_event_id(event_name: str) -> str:
    return f"{event_name.lower()}.{secrets.token_hex(6)}"


def purchase_event_id(order_id: str) -> str:
    # derived from the order so both sides (and a reload) agree without sharing state
    return f"purchase.{order_id}"


@dataclass
class TrackedEvent:
    """One business event, before either side's representation (and faults)."""

    name: str
    event_id: str
    custom_data: dict[str, Any]
    source_url: str
    event_time: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Customer:
    """Checkout form values exactly as typed."""

    email: str
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    city: str = ""
    zip: str = ""
    country: str = "US"

    @property
    def customer_id(self) -> str:
        digest = hashlib.sha1(self.email.strip().lower().encode()).hexdigest()
        return f"cust-{digest[:10]}"

    def browser_advanced_matching(self) -> dict[str, str]:
        # raw values: the pixel library normalizes and hashes them itself
        return {
            "em": self.email,
            "ph": self.phone,
            "fn": self.first_name,
            "ln": self.last_name,
            "ct": self.city,
            "zp": self.zip,
            "country": self.country,
            "external_id": self.customer_id,
        }


@dataclass
class RequestContext:
    """Who triggered the events: what the server knows about the browser."""

    client_ip: str
    user_agent: str
    fbp: str | None = None
    fbc: str | None = None
    #: the visitor's cookies as the request carried them (_ttp, _ga, ...)
    cookies: dict[str, str] = field(default_factory=dict)
    #: the URL of the page the request is for
    page_url: str | None = None
    #: the visitor did not consent (the banner's Deny, or no answer yet): server calls
    #: must carry each platform's limited-use flag
    limited_use: bool = False


# --- normalization per Meta's customer information parameter rules -----------------


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def norm_email(value: str) -> str:
    return value.strip().lower()


def norm_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    # "00" is the international call prefix, not part of the number
    return digits[2:] if digits.startswith("00") else digits


def norm_name(value: str) -> str:
    return value.strip().lower()


def norm_city(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalpha())


def norm_country(value: str) -> str:
    return "".join(ch for ch in value.lower() if ch.isalpha())[:2]


def norm_zip(value: str, country: str) -> str:
    zp = "".join(value.split()).lower()
    return zp[:5] if norm_country(country) == "us" else zp


def norm_external_id(value: str) -> str:
    return value.strip().lower()


def hashed_customer(customer: Customer) -> dict[str, str]:
    """Normalized SHA-256 hex of each customer key (empty fields are left out)."""
    normalized = {
        "em": norm_email(customer.email),
        "ph": norm_phone(customer.phone),
        "fn": norm_name(customer.first_name),
        "ln": norm_name(customer.last_name),
        "ct": norm_city(customer.city),
        "zp": norm_zip(customer.zip, customer.country),
        "country": norm_country(customer.country),
        "external_id": norm_external_id(customer.customer_id),
    }
    return {key: sha256_hex(value) for key, value in normalized.items() if value}


# --- browser side --------------------------------------------------------------------


def js(value: Any) -> str:
    """A JS literal safe inside an inline <script> (no '</script>' or '<!--' breakout)."""
    text = json.dumps(value, ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def js_str(text: str) -> str:
    """Single-quoted like Meta's snippets when the text is plain, JSON otherwise."""
    if text and all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in text):
        return f"'{text}'"
    return js(text)


def browser_script(
    pixel_id: str,
    events: list[TrackedEvent],
    faults: ActiveFaults,
    *,
    customer: Customer | None = None,
    access_token: str | None = None,
) -> str:
    """The page's ``<script>``: base code, ``init`` and one ``track`` per event."""
    init_args = [js_str(pixel_id)]
    if customer is not None:
        matching: dict[str, str] = customer.browser_advanced_matching()
        if "browser_unnormalized_am" in faults:
            matching["em"] = sha256_hex(customer.email)
        init_args.append(js(matching))
    lines = [BASE_CODE, f"fbq('init', {', '.join(init_args)});"]
    if "token_in_page" in faults and access_token is not None:
        lines.insert(0, f"var graphToken = {js(access_token)};")

    for event in events:
        custom_data = dict(event.custom_data)
        event_id: str | None = event.event_id
        copies, delay = 1, 0.0
        if event.name == PURCHASE:
            if "no_browser_purchase" in faults:
                continue
            if "hardcoded_event_id" in faults:
                event_id = HARDCODED_PURCHASE_ID
            if "browser_no_event_id" in faults:
                event_id = None
            if "browser_raw_email_cd" in faults and customer is not None:
                custom_data["email"] = customer.email
            if "double_browser_purchase" in faults:
                copies = 2
            if "browser_late" in faults:
                delay = faults.seconds("browser_late")
        args = [js_str(event.name), js(custom_data)]
        if event_id is not None:
            args.append("{eventID: " + js_str(event_id) + "}")
        call = f"fbq('track', {', '.join(args)});"
        if delay:
            call = f"setTimeout(function () {{ {call} }}, {int(delay * 1000)});"
        lines.extend([call] * copies)
        if event.name == PURCHASE:
            lines.extend(_journey_faults(pixel_id, custom_data, faults))
    return "<script>" + "\n".join(lines) + "</script>"


# a fresh id made in the browser, as a tag that generates its own event ids does
_FRESH_ID = "'purchase.' + Math.random().toString(16).slice(2, 14)"


def _journey_faults(pixel_id: str, custom_data: dict[str, Any],
                    faults: ActiveFaults) -> list[str]:
    """Thank-you page code that re-fires Purchase on one journey (back-forward cache,
    a slow or dropped connection), each time under a fresh id."""
    refire = f"fbq('track', 'Purchase', {js(custom_data)}, {{eventID: {_FRESH_ID}}});"
    lines = []
    if "pageshow_refire" in faults:
        lines.append("window.addEventListener('pageshow', function (e) { "
                     f"if (e.persisted) {{ {refire} }} }});")
    if "offline_resend_new_id" in faults:
        lines.append(f"window.addEventListener('online', function () {{ {refire} }});")
    if "slow_fallback_beacon" in faults:
        query = urlencode({"id": pixel_id, "ev": PURCHASE,
                           **{f"cd[{k}]": custom_data[k] for k in ("value", "currency",
                                                                    "order_id")
                              if k in custom_data}})
        lines.append("if (performance.now() > 1000) { new Image().src = "
                     f"{js('https://www.facebook.com/tr/?' + query + '&eid=')} + "
                     f"{_FRESH_ID}; }}")
    return lines


# --- server side ---------------------------------------------------------------------


@dataclass
class CapiSend:
    """One Conversions API request, ready for the sender."""

    pixel_id: str
    access_token: str
    event: dict[str, Any]
    test_event_code: str | None = None
    delay: float = 0.0
    retries: int = 2
    new_id_on_retry: bool = False
    #: the customer as typed, for clients that normalize and hash themselves (the SDKs)
    customer: Customer | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"data": [self.event]}
        if self.test_event_code:
            body["test_event_code"] = self.test_event_code
        return body


def server_sends(
    events: list[TrackedEvent],
    faults: ActiveFaults,
    ctx: RequestContext,
    *,
    pixel_id: str,
    access_token: str,
    test_event_code: str | None = None,
    customer: Customer | None = None,
    checkout_url: str | None = None,
    limited_use: bool = False,
) -> list[CapiSend]:
    """The Conversions API requests for ``events`` under ``faults``."""
    # transport faults: a misconfigured backend gets these wrong for every call
    pixel = WRONG_PIXEL_ID if "wrong_pixel" in faults else pixel_id
    token = WRONG_TOKEN if "wrong_token" in faults else access_token
    code = FAULT_TEST_EVENT_CODE if "test_event_code" in faults else test_event_code
    retries = 0 if "no_retry" in faults else 2
    new_id_on_retry = "retry_new_id" in faults

    sends: list[CapiSend] = []
    for tracked in events:
        purchase = tracked.name == PURCHASE
        if purchase and "no_server_purchase" in faults:
            continue
        event = _server_event(tracked, ctx, customer if purchase else None)
        if limited_use:
            # Meta's Limited Data Use: what a visitor without consent may be sent with
            event.update(data_processing_options=["LDU"], data_processing_options_country=0,
                         data_processing_options_state=0)
        if purchase:
            _apply_purchase_faults(event, faults, ctx, customer, checkout_url)
        delay = faults.seconds("server_delay") if purchase and "server_delay" in faults else 0.0
        send = CapiSend(pixel, token, event, code, delay, retries, new_id_on_retry,
                        customer if purchase and not _pii_faults(faults) else None)
        sends.append(send)
        if purchase and "server_retry_same_id" in faults:
            sends.append(copy.deepcopy(send))
        if purchase and "server_retry_new_id" in faults:
            again = copy.deepcopy(send)
            again.event["event_id"] = new_event_id(PURCHASE)
            sends.append(again)
    return sends


# faults that hand-craft user_data: the hand-built hashes are what they test
PII_FAULTS = ("raw_email", "unnormalized_email", "double_hash", "phone_plus", "phone_no_country")


def _pii_faults(faults: ActiveFaults) -> bool:
    return any(name in faults for name in PII_FAULTS)


def _server_event(
    tracked: TrackedEvent, ctx: RequestContext, customer: Customer | None
) -> dict[str, Any]:
    """The correct Conversions API event for ``tracked``."""
    user_data: dict[str, Any] = {
        "client_ip_address": ctx.client_ip,
        "client_user_agent": ctx.user_agent,
    }
    # fbp/fbc are identifiers, never hashed
    if ctx.fbp:
        user_data["fbp"] = ctx.fbp
    if ctx.fbc:
        user_data["fbc"] = ctx.fbc
    if customer is not None:
        user_data.update({key: [digest] for key, digest in hashed_customer(customer).items()})
    return {
        "event_name": tracked.name,
        "event_time": tracked.event_time,
        "event_id": tracked.event_id,
        "action_source": "website",
        "event_source_url": tracked.source_url,
        "user_data": user_data,
        "custom_data": copy.deepcopy(tracked.custom_data),
    }


def _apply_purchase_faults(
    event: dict[str, Any],
    faults: ActiveFaults,
    ctx: RequestContext,
    customer: Customer | None,
    checkout_url: str | None,
) -> None:
    """Mutate a correct server Purchase into the faulty one the active faults describe."""
    user_data: dict[str, Any] = event["user_data"]
    custom_data: dict[str, Any] = event["custom_data"]

    if "hardcoded_event_id" in faults:
        event["event_id"] = HARDCODED_PURCHASE_ID
    if "id_suffix" in faults:
        event["event_id"] += "-server"
    if "id_case" in faults:
        event["event_id"] = event["event_id"].upper()
    if "id_whitespace" in faults:
        event["event_id"] += " "
    if "server_no_event_id" in faults:
        del event["event_id"]
    if "name_case" in faults:
        event["event_name"] = PURCHASE.lower()
    if "name_alias" in faults:
        event["event_name"] = "Subscribe"

    if "stale_event_time" in faults:
        event["event_time"] -= 8 * 24 * 3600
    if "future_event_time" in faults:
        event["event_time"] += 3600
    if "event_time_ms" in faults:
        event["event_time"] = event["event_time"] * 1000

    if "value_mismatch" in faults:
        custom_data["value"] = round(custom_data["value"] + 1, 2)
    if "currency_mismatch" in faults:
        custom_data["currency"] = "EUR"
    if "content_ids_mismatch" in faults:
        custom_data["content_ids"] = [f"SKU_{cid}" for cid in custom_data["content_ids"]]

    if customer is not None:
        if "raw_email" in faults:
            user_data["em"] = [norm_email(customer.email)]
        if "unnormalized_email" in faults:
            user_data["em"] = [sha256_hex(customer.email)]
        if "double_hash" in faults:
            user_data["em"] = [sha256_hex(sha256_hex(norm_email(customer.email)))]
        if "phone_plus" in faults:
            user_data["ph"] = [sha256_hex(customer.phone.strip())]
        if "phone_no_country" in faults:
            digits = norm_phone(customer.phone)
            if len(digits) == 11 and digits.startswith("1"):
                digits = digits[1:]
            user_data["ph"] = [sha256_hex(digits)]
    if "hashed_fbp" in faults and ctx.fbp:
        user_data["fbp"] = sha256_hex(ctx.fbp)
    if "no_fbp" in faults:
        user_data.pop("fbp", None)
    if "wrong_user_agent" in faults:
        user_data["client_user_agent"] = "python-urllib"
    if "wrong_source_url" in faults and checkout_url:
        event["event_source_url"] = checkout_url


class CapiSender:
    """Posts :class:`CapiSend` jobs from background threads, never blocking a page.

    A few workers share one queue so a slow or timing-out Graph call does not hold
    up the next page's events; delayed jobs wait on a timer, not in a worker.
    """

    def __init__(
        self,
        graph_url: str,
        api_version: str,
        *,
        timeout: float = 5.0,
        backoff: tuple[float, ...] = (0.2, 0.4),
        workers: int = 4,
        client: str = "json",
    ) -> None:
        from .capi_clients import make_client

        self.graph_url = graph_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.client = make_client(client)
        self.timeout = timeout
        self.backoff = backoff
        self._queue: queue.Queue[CapiSend | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._timers: set[threading.Timer] = set()
        self._threads = [
            threading.Thread(target=self._work, name=f"capi-sender-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, send: Any) -> None:
        """Queue a ``CapiSend`` (Meta) or a ``trackers.ServerCall`` (the others)."""
        with self._idle:
            self._pending += 1
        if send.delay > 0:
            timer = threading.Timer(send.delay, self._enqueue_delayed, args=(send,))
            timer.daemon = True
            with self._idle:
                self._timers.add(timer)
            timer.start()
        else:
            self._queue.put(send)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted job (delayed ones included) has finished."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, drain_timeout: float = 3.0) -> None:
        if not self.wait_idle(drain_timeout):
            log.warning("stopping with %d Conversions API call(s) unsent", self._pending)
        with self._idle:
            for timer in self._timers:
                timer.cancel()
        for _ in self._threads:
            self._queue.put(None)
        self.client.close()

    def _enqueue_delayed(self, send: CapiSend) -> None:
        with self._idle:
            # a Timer runs its function in its own thread: that thread is the timer
            self._timers.discard(threading.current_thread())  # type: ignore[arg-type]
        self._queue.put(send)

    def _work(self) -> None:
        while True:
            send = self._queue.get()
            if send is None:
                return
            try:
                self._deliver(send)
            except Exception:  # a sender bug must never kill the worker
                log.exception("Conversions API send crashed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, send: Any) -> None:
        if not isinstance(send, CapiSend):
            self._deliver_call(send)
            return
        event = send.event
        for attempt in range(send.retries + 1):
            if attempt:
                time.sleep(self.backoff[min(attempt - 1, len(self.backoff) - 1)])
                if send.new_id_on_retry:
                    event["event_id"] = new_event_id(str(event.get("event_name", "event")))
            if not self._post_once(send, attempt):
                return
        log.warning("gave up on %s after %d attempt(s)", _label(event), send.retries + 1)

    def _deliver_call(self, call: Any) -> None:
        """Another platform's ``trackers.ServerCall``: the same retry policy, its own
        idea of what is worth retrying."""
        for attempt in range(call.retries + 1):
            if attempt:
                time.sleep(self.backoff[min(attempt - 1, len(self.backoff) - 1)])
            status, answer = call.send(self.timeout)
            level = logging.INFO if status is not None and status < 400 else logging.WARNING
            log.log(level, "%s %s -> %s (attempt %d): %s", call.platform, call.label,
                    status if status is not None else "no answer", attempt + 1, _short(answer))
            if not call.retryable(status, answer):
                return
        log.warning("gave up on %s %s after %d attempt(s)", call.platform, call.label,
                    call.retries + 1)

    def _post_once(self, send: CapiSend, attempt: int) -> bool:
        """One call through the configured client; True when worth retrying."""
        event = send.event
        status, answer = self.client.post(
            self.graph_url, self.api_version, send.pixel_id, send.access_token, event,
            send.customer, send.test_event_code, self.timeout)
        if status is None:
            log.warning("CAPI %s -> connection error (attempt %d): %s",
                        _label(event), attempt + 1, _short(answer))
            return True
        if status < 400:
            log.info("CAPI %s -> %s %s", _label(event), status, _short(answer))
            return False
        log.warning("CAPI %s -> HTTP %s (attempt %d): %s",
                    _label(event), status, attempt + 1, _short(answer))
        return status >= 500 or status == 429


def _label(event: dict[str, Any]) -> str:
    return f"{event.get('event_name')} id={event.get('event_id')!r}"


def _short(body: bytes, limit: int = 500) -> str:
    text = body.decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "..."
