"""The shop: a stdlib HTTP server with a cart, a checkout and Meta tracking on both sides."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import sys
import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from . import pages
from .capi_clients import PARAM_BUILDER_CLIENTS, param_builder_ids
from .faults import FAULT_COOKIE, FAULT_HEADER, ActiveFaults
from .pages import Line, Product
from .psp import PaymentProvider
from .trackers import ServerCall, TrackerConfig, load_trackers
from .tracking import (
    PURCHASE,
    CapiSend,
    CapiSender,
    Customer,
    RequestContext,
    TrackedEvent,
    browser_script,
    new_event_id,
    purchase_event_id,
    server_sends,
)

log = logging.getLogger("example_site")

SESSION_COOKIE = "shop_session"
#: the CMP's answer: "granted" or "denied"; absent, the banner asks
CONSENT_COOKIE = "shop_consent"
MAX_FORM_BYTES = 64 * 1024

PRODUCTS: dict[str, Product] = {
    "sku-1": Product("sku-1", "Blue Mug", Decimal("12.50")),
    "sku-2": Product("sku-2", "Red Scarf", Decimal("25.00")),
}


@dataclass
class ShopConfig:
    pixel_id: str = "1234567890"
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    access_token: str = "TEST_TOKEN"
    #: sent with every Conversions API call when set (the Events Manager test tool)
    test_event_code: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    http_timeout: float = 5.0
    retry_backoff: tuple[float, ...] = (0.2, 0.4)
    #: how long stop() waits for queued Conversions API calls
    drain_timeout: float = 3.0
    #: how the backend sends: capi_clients.CLIENTS (plain JSON, a form, Meta's SDKs)
    capi_client: str = "json"
    #: the other platforms the shop tracks, each with its tag id, API URL and client
    trackers: dict[str, TrackerConfig] = field(default_factory=dict)
    #: a minimal CMP: tags wait for the visitor's consent (cookie CONSENT_COOKIE)
    consent_banner: bool = False
    #: checkout pays on a payment provider's page on another host (example_site.psp)
    payment_provider: bool = False


@dataclass
class Session:
    cart: dict[str, int] = field(default_factory=dict)  # sku -> quantity, in add order
    #: adds not yet announced: the cart page fires one AddToCart per entry
    pending_adds: list[tuple[str, int]] = field(default_factory=list)

    def lines(self) -> list[Line]:
        return [Line(PRODUCTS[sku], qty) for sku, qty in self.cart.items()]


@dataclass
class Order:
    order_id: str
    customer: Customer
    lines: list[Line]
    purchase: TrackedEvent
    #: how often the thank-you page was shown: only the first view fires Purchase
    views: int = 0

    @property
    def total(self) -> Decimal:
        return sum((line.total for line in self.lines), Decimal(0))


class ShopState:
    """Sessions, orders and the order counter, shared by all handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: dict[str, Session] = {}
        self.orders: dict[str, Order] = {}
        # Order numbers start at a random base, as a real shop's never restart at 1:
        # two shop processes in one test session must not hand out the same ids.
        self._order_numbers = itertools.count(secrets.randbelow(900_000) * 10 + 1_000_001)

    def next_order_id(self) -> str:
        with self.lock:
            return f"ORD-{next(self._order_numbers)}"


def parse_cookies(header: str | None) -> dict[str, str]:
    """Lenient Cookie header parsing (SimpleCookie drops everything after one odd value)."""
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies.setdefault(name, value.strip())
    return cookies


def _money(amount: Decimal) -> float:
    return float(round(amount, 2))


def item_custom_data(product: Product, quantity: int = 1) -> dict[str, Any]:
    return {
        "content_ids": [product.sku],
        "content_type": "product",
        "value": _money(product.price * quantity),
        "currency": product.currency,
    }


def basket_custom_data(lines: list[Line]) -> dict[str, Any]:
    return {
        "content_ids": [line.product.sku for line in lines],
        "contents": [
            {"id": line.product.sku, "quantity": line.quantity,
             "item_price": _money(line.product.price)}
            for line in lines
        ],
        "num_items": sum(line.quantity for line in lines),
        "value": _money(sum((line.total for line in lines), Decimal(0))),
        "currency": lines[0].product.currency,
    }


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    shop: ShopServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A browser that navigates on resets its kept-alive connection, often while the
        # handler waits for the next request line: that is no error of the shop's.
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s left: %s", client_address, sys.exc_info()[1])
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "ExampleShop/0.1"
    # headers and body go out as two writes; with Nagle on, the body waited for the
    # browser's delayed ACK, 40 ms on every page
    disable_nagle_algorithm = True

    # --- request plumbing -------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    def _dispatch(self, method: str) -> None:
        self.shop = self.server.shop
        self.config = self.shop.config
        self.cookies = parse_cookies(self.headers.get("Cookie"))
        self.faults = ActiveFaults.parse(self.cookies.get(FAULT_COOKIE),
                                         self.headers.get(FAULT_HEADER))
        self._set_cookies: list[str] = []
        self._cache_control = "no-store"
        path = unquote(urlsplit(self.path).path)
        parts = [p for p in path.split("/") if p]
        try:
            if method == "GET" and path == "/":
                self._home()
            elif method == "GET" and len(parts) == 2 and parts[0] == "product":
                self._product(parts[1])
            elif method == "POST" and path == "/cart/add":
                self._cart_add()
            elif method == "GET" and path == "/cart":
                self._cart()
            elif method == "GET" and path == "/checkout":
                self._checkout()
            elif method == "POST" and path == "/checkout":
                self._place_order()
            elif method == "GET" and len(parts) == 2 and parts[0] == "thanks":
                self._thanks(parts[1])
            elif method == "GET" and path == "/payment/return":
                self._payment_return()
            elif method == "POST" and path == "/spa/api/pageview":
                self._spa_pageview()
            elif method == "POST" and path == "/spa/api/order":
                self._spa_order()
            elif method == "GET" and (path == "/spa" or path.startswith("/spa/")):
                self._spa()
            elif method == "GET" and path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._message(404, "Page not found")
        except Exception:
            log.exception("error handling %s %s", method, self.path)
            self._message(500, "Internal error")

    def _form(self) -> dict[str, str]:
        # capped: a test shop has no business reading huge bodies
        length = min(int(self.headers.get("Content-Length") or 0), MAX_FORM_BYTES)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}

    def _json(self) -> dict[str, Any]:
        length = min(int(self.headers.get("Content-Length") or 0), MAX_FORM_BYTES)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _session(self) -> Session:
        state = self.shop.state
        sid = self.cookies.get(SESSION_COOKIE, "")
        with state.lock:
            session = state.sessions.get(sid)
            if session is None:
                sid = secrets.token_hex(16)
                session = state.sessions[sid] = Session()
                self.cookies[SESSION_COOKIE] = sid
                self._set_cookies.append(f"{SESSION_COOKIE}={sid}; Path=/; HttpOnly; SameSite=Lax")
            return session

    def _page_url(self, path: str) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}{path}"

    def _context(self) -> RequestContext:
        fbp, fbc = self.cookies.get("_fbp") or None, self.cookies.get("_fbc") or None
        if self.config.capi_client in PARAM_BUILDER_CLIENTS:
            host = (self.headers.get("Host") or "").split(":")[0]
            query = self.path.partition("?")[2]
            fbp, fbc, cookies = param_builder_ids(host, query, dict(self.cookies),
                                                  self.headers.get("Referer"))
            self._set_cookies.extend(cookies)
        return RequestContext(
            client_ip=self.client_address[0],
            user_agent=self.headers.get("User-Agent", ""),
            fbp=fbp,
            fbc=fbc,
            cookies=dict(self.cookies),
            page_url=self._page_url(self.path),
            limited_use=self._consent() != "granted"
            and "server_ignores_consent" not in self.faults,
        )

    def _send(self, status: int, body: bytes, content_type: str,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # no-cache, not no-store, for the thank-you page: Chromium keeps no-store pages
        # out of the back-forward cache, and a real shop's confirmation is usually in it
        self.send_header("Cache-Control", self._cache_control)
        for cookie in self._set_cookies:
            self.send_header("Set-Cookie", cookie)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        try:
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as error:
            # the browser navigated on before the page was written (a fast test clicks
            # through): nobody is left to answer, and the shop did nothing wrong
            log.debug("client left before %s %s was answered: %s", self.command, self.path, error)
            self.close_connection = True

    def _redirect(self, location: str) -> None:
        self._send(303, b"", "text/plain", {"Location": location})

    def _message(self, status: int, text: str) -> None:
        self._render(text, pages.message_page(text), [], status=status)

    # --- tracking -----------------------------------------------------------------------

    def _render(
        self,
        title: str,
        body: str,
        events: list[TrackedEvent],
        *,
        browser_only: list[TrackedEvent] | None = None,
        customer: Customer | None = None,
        status: int = 200,
    ) -> None:
        """Send the page with its browser events, then queue the server copies."""
        script = browser_script(
            self.config.pixel_id, events + (browser_only or []), self.faults,
            customer=customer, access_token=self.config.access_token,
        )
        customer_for_tags = customer
        for name, config in self.config.trackers.items():
            tracker = load_trackers()[name]
            faults = self.faults.for_platform(name)
            calls = tracker.browser_calls(config, events + (browser_only or []), faults,
                                          customer_for_tags)
            script += ("<script>" + tracker.head(config, customer_for_tags) + "\n"
                       + "\n".join(calls) + "</script>")
        consent = self._consent()
        if consent != "granted" and "pixel_before_consent" not in self.faults:
            # denied: no tag at all; not answered yet: held as text/plain until accepted,
            # the way CMPs hold tags
            script = "" if consent == "denied" else script.replace(
                "<script>", '<script type="text/plain" data-consent="marketing">')
        if consent is None:
            body = pages.consent_banner(
                fire_held="no_fire_after_consent" not in self.faults) + body
        html = pages.layout(title, body, script).encode("utf-8")
        sends = self._server_sends(events)
        self._send(status, html, "text/html; charset=utf-8")
        # queued after the response is written: tracking never delays the page
        self.shop.submit(sends)

    def _consent(self) -> str | None:
        """"granted", "denied", or None while the banner asks; always "granted" in a
        shop without the banner."""
        if not self.config.consent_banner:
            return "granted"
        answer = self.cookies.get(CONSENT_COOKIE)
        return answer if answer in ("granted", "denied") else None

    def _server_sends(self, events: list[TrackedEvent], customer: Customer | None = None
                      ) -> list[CapiSend | ServerCall]:
        ctx = self._context()
        sends: list[CapiSend | ServerCall] = []
        for name, config in self.config.trackers.items():
            sends += load_trackers()[name].server_calls(
                config, events, self.faults.for_platform(name), ctx, customer)
        return sends + server_sends(
            events, self.faults, ctx,
            pixel_id=self.config.pixel_id,
            access_token=self.config.access_token,
            test_event_code=self.config.test_event_code,
            customer=customer,
            checkout_url=self._page_url("/checkout"),
            limited_use=ctx.limited_use,
        )

    def _page_view(self) -> TrackedEvent:
        return TrackedEvent("PageView", new_event_id("PageView"), {}, self._page_url(self.path))

    # --- pages --------------------------------------------------------------------------

    def _home(self) -> None:
        self._session()
        self._render("Products", pages.product_list(PRODUCTS.values()), [self._page_view()])

    def _product(self, sku: str) -> None:
        product = PRODUCTS.get(sku)
        if product is None:
            self._message(404, "No such product")
            return
        self._session()
        view = TrackedEvent("ViewContent", new_event_id("ViewContent"),
                            item_custom_data(product), self._page_url(self.path))
        self._render(product.name, pages.product_page(product), [self._page_view(), view])

    def _cart_add(self) -> None:
        form = self._form()
        product = PRODUCTS.get(form.get("sku", ""))
        if product is None:
            self._message(404, "No such product")
            return
        try:
            quantity = min(max(int(form.get("quantity", "1")), 1), 99)
        except ValueError:
            quantity = 1
        session = self._session()
        with self.shop.state.lock:
            session.cart[product.sku] = session.cart.get(product.sku, 0) + quantity
            session.pending_adds.append((product.sku, quantity))
        self._redirect("/cart")

    def _cart(self) -> None:
        session = self._session()
        with self.shop.state.lock:
            adds, session.pending_adds = session.pending_adds, []
            lines = session.lines()
        events = [self._page_view()]
        url = self._page_url(self.path)
        for sku, quantity in adds:
            events.append(TrackedEvent("AddToCart", new_event_id("AddToCart"),
                                       item_custom_data(PRODUCTS[sku], quantity), url))
        self._render("Cart", pages.cart_page(lines), events)

    def _checkout(self) -> None:
        session = self._session()
        with self.shop.state.lock:
            lines = session.lines()
        events = [self._page_view()]
        if lines:
            events.append(TrackedEvent("InitiateCheckout", new_event_id("InitiateCheckout"),
                                       basket_custom_data(lines), self._page_url(self.path)))
        self._render("Checkout", pages.checkout_page(
            lines, disable_on_submit="place_order_not_disabled" not in self.faults), events)

    def _place_order(self) -> None:
        form = self._form()
        session = self._session()
        with self.shop.state.lock:
            lines = session.lines()
        if not lines:
            self._redirect("/cart")
            return
        customer = Customer(
            email=form.get("email", ""),
            phone=form.get("phone", ""),
            first_name=form.get("first_name", ""),
            last_name=form.get("last_name", ""),
            city=form.get("city", ""),
            zip=form.get("zip", ""),
            country=form.get("country", "") or "US",
        )
        if not customer.email.strip():
            self._render("Checkout", pages.checkout_page(lines, "Email is required"), [],
                         status=400)
            return

        order_id = self.shop.state.next_order_id()
        location = f"/thanks/{order_id}"
        if "email_in_url" in self.faults:
            location += f"?email={quote(customer.email, safe='@')}"
        custom_data = basket_custom_data(lines)
        custom_data.update(content_type="product", order_id=order_id)
        purchase = TrackedEvent(PURCHASE, purchase_event_id(order_id), custom_data,
                                self._page_url(location))
        with self.shop.state.lock:
            # the cart empties when the confirmation is shown, as in many shops: a
            # second submit before that places a second order (the Place-order button
            # is disabled on submit against it)
            self.shop.state.orders[order_id] = Order(order_id, customer, lines, purchase)
        if self.shop.psp is not None:
            # paid on the provider's page; the order is confirmed (and the server
            # Purchase sent) when the provider sends the shopper back
            host = "localhost" if "psp_return_other_host" in self.faults else \
                (self.headers.get("Host") or "").split(":")[0]
            port = self.server.server_address[1]
            back = f"http://{host}:{port}/payment/return?order={order_id}"
            self._redirect(f"{self.shop.psp.url}/pay?" + urlencode(
                {"order": order_id, "amount": f"{custom_data['value']:.2f}", "return": back}))
            return
        sends = self._server_sends([purchase], customer)
        self._redirect(location)
        self.shop.submit(sends)

    def _payment_return(self) -> None:
        order_id = parse_qs(urlsplit(self.path).query).get("order", [""])[0]
        order = self.shop.state.orders.get(order_id)
        if order is None:
            self._message(404, "No such order")
            return
        # this request's cookies (_fbp, _fbc) are what the server copy can carry
        sends = self._server_sends([order.purchase], order.customer)
        self._redirect(f"/thanks/{order_id}")
        self.shop.submit(sends)

    def _thanks(self, order_id: str) -> None:
        order = self.shop.state.orders.get(order_id)
        if order is None:
            self._message(404, "No such order")
            return
        body = pages.thanks_page(order.order_id, order.total,
                                 order.lines[0].product.currency, order.customer.email)
        session = self._session()
        with self.shop.state.lock:
            order.views += 1
            first_view = order.views == 1
            if first_view:
                session.cart.clear()
                session.pending_adds.clear()
        # the server Purchase already went out when the order was placed; the browser's
        # fires on the first view only, so a reload or a second tab counts nothing again
        purchase = [order.purchase] if first_view else []
        if not first_view and "thanks_refire_new_id" in self.faults:
            purchase = [replace(order.purchase, event_id=new_event_id(PURCHASE))]
        self._cache_control = "private, no-cache"
        self._render("Thank you", body, [self._page_view()], browser_only=purchase,
                     customer=order.customer)


    # --- the single-page checkout (/spa): routes by history.pushState -----------------

    def _spa(self) -> None:
        """The shell of every /spa route: the router renders the route and fires a
        virtual PageView on each change, its server copy through /spa/api/pageview."""
        self._session()
        script = browser_script(self.config.pixel_id, [], self.faults)
        product = PRODUCTS["sku-1"]
        html = pages.layout("Quick checkout", pages.spa_body(
            product, double_pageview="spa_double_pageview" in self.faults,
            pageview_on_route="spa_no_route_pageview" not in self.faults), script)
        self._send(200, html.encode("utf-8"), "text/html; charset=utf-8")

    def _spa_pageview(self) -> None:
        data = self._json()
        event_id, url = str(data.get("event_id") or ""), str(data.get("url") or "")
        if not event_id.startswith("pageview.") or not url.startswith("http"):
            self._send_json(400, {"error": "event_id and url are required"})
            return
        sends = self._server_sends([TrackedEvent("PageView", event_id, {}, url)])
        self._send_json(200, {"ok": True})
        self.shop.submit(sends)

    def _spa_order(self) -> None:
        data = self._json()
        product = PRODUCTS["sku-1"]
        customer = Customer(email=str(data.get("email") or "spa@example.com"))
        order_id = self.shop.state.next_order_id()
        lines = [Line(product, 1)]
        custom_data = basket_custom_data(lines)
        custom_data.update(content_type="product", order_id=order_id)
        purchase = TrackedEvent(PURCHASE, purchase_event_id(order_id), custom_data,
                                self._page_url(f"/spa/thanks/{order_id}"))
        with self.shop.state.lock:
            self.shop.state.orders[order_id] = Order(order_id, customer, lines, purchase)
        sends = self._server_sends([purchase], customer)
        self._send_json(200, {"order_id": order_id, "event_id": purchase.event_id,
                              "custom_data": custom_data})
        self.shop.submit(sends)


class ShopServer:
    """The shop on a background thread: ``ShopServer(ShopConfig(...)).start()``."""

    def __init__(self, config: ShopConfig | None = None) -> None:
        self.config = config or ShopConfig()
        self.state = ShopState()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sender: CapiSender | None = None
        #: the payment provider's server, when checkout pays on its page
        self.psp: PaymentProvider | None = None

    def start(self) -> ShopServer:
        if self._httpd is not None:
            return self
        cfg = self.config
        if cfg.payment_provider:
            self.psp = PaymentProvider(cfg.host).start()
        self._sender = CapiSender(cfg.graph_url, cfg.api_version,
                                  timeout=cfg.http_timeout, backoff=cfg.retry_backoff,
                                  client=cfg.capi_client)
        httpd = _HTTPServer((cfg.host, cfg.port), _Handler)
        httpd.shop = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="example-shop",
                                        daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("ShopServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def submit(self, sends: list[CapiSend | ServerCall]) -> None:
        if self._sender is not None:
            for send in sends:
                self._sender.submit(send)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until queued Conversions API calls (delayed ones too) are done."""
        return self._sender.wait_idle(timeout) if self._sender is not None else True

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._sender is not None:
            self._sender.close(self.config.drain_timeout)
            self._sender = None
        if self.psp is not None:
            self.psp.stop()
            self.psp = None

    def __enter__(self) -> ShopServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
