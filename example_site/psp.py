"""A stand-in payment provider on another host: the shop sends the shopper to its
/pay page, the shopper clicks Pay, the provider sends them back to the shop's return
URL. It runs in the shop's process on its own port, addressed as ``localhost`` (the
shop is ``127.0.0.1``): another host, with cookies of its own, as a real provider's."""

from __future__ import annotations

import threading
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PSP_HOST = "localhost"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ExamplePSP/0.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        back = query.get("return", "")
        if parts.path != "/pay" or not back.startswith("http"):
            self._send(404, "<p id='message'>No such payment</p>")
            return
        self._send(200, f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Pay - Example Payments</title></head><body>
<h1>Example Payments</h1>
<p>Order <span id="psp-order">{escape(query.get('order', ''))}</span>:
<span id="psp-amount">{escape(query.get('amount', ''))}</span></p>
<p><a id="pay" href="{escape(back)}">Pay</a></p>
</body></html>""")

    def _send(self, status: int, html: str) -> None:
        body = html.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)


class PaymentProvider:
    """``PaymentProvider().start()``; ``.url`` is its base (``http://localhost:PORT``)."""

    def __init__(self, bind: str = "127.0.0.1") -> None:
        self._httpd = ThreadingHTTPServer((bind, 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{PSP_HOST}:{self._httpd.server_address[1]}"

    def start(self) -> PaymentProvider:
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        name="example-psp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
