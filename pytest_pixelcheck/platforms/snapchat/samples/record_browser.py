"""Record the browser samples: Snap's base code + the pixelcheck stand-in of
scevent.min.js in a real Chromium, through the pixelcheck proxy, offline.

    .venv/bin/python pytest_pixelcheck/platforms/snapchat/samples/record_browser.py

Writes ``browser-*.json`` next to this file: the exact request the proxy captured for
each hit (method, URL, headers, body), and what the decoder must read from it. The
pages are served by a local http.server; the proxy answers tr.snapchat.com itself.
The local origin (``http://127.0.0.1:<port>``) is replaced by ``https://shop.example``
in headers and body, so no file names this machine.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PIXEL = "a1b2c3d4-0000-4000-8000-5a9c0ffee001"
CLICK = "pixelcheck-ScCid-0123"
ORIGIN = "https://shop.example"

#: the thank-you page: init with the customer, a page view and a purchase with ids
THANKS = """
snaptr('init', '{pixel}', {{user_email: ' Jane.Doe@Example.com ',
                            user_phone_number: '+1 (650) 555-1212'}});
snaptr('track', 'PAGE_VIEW', {{client_dedup_id: 'pageview.rec1'}});
snaptr('track', 'PURCHASE', {{price: 25.0, currency: 'USD', transaction_id: 'ORD-1',
  item_ids: ['sku-1'], number_items: 2, client_dedup_id: 'purchase.ORD-1'}});
"""
#: a page that forgets client_dedup_id: the pixel fills cdid with its own '@-' id
NO_ID = """
snaptr('init', '{pixel}');
snaptr('track', 'PURCHASE', {{price: 12.5, currency: 'USD', transaction_id: 'ORD-2'}});
"""


class _Page(BaseHTTPRequestHandler):
    pages: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.pages.get(self.path.split("?")[0], b"")
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _html(base_code: str, calls: str) -> bytes:
    return ("<!doctype html><html><head><title>thanks</title><script>" + base_code
            + calls.format(pixel=PIXEL) + "</script></head><body>thanks</body></html>"
            ).encode()


def _portable(request: dict[str, Any], local: str) -> dict[str, Any]:
    """The recorded request with the local origin replaced (Content-Length kept true)."""
    body = request["body"].replace(local, ORIGIN)
    headers = []
    for key, value in request["headers"]:
        if key.lower() == "content-length":
            value = str(len(body.encode()))
        headers.append([key, re.sub(re.escape(local), ORIGIN, value)])
    return {"method": request["method"], "url": request["url"], "headers": headers,
            "body": body, "arrival_time": request["arrival_time"]}


def main() -> None:
    from example_site.trackers.snapchat import BASE_CODE
    from pytest_pixelcheck.harness import Harness

    _Page.pages = {"/thanks": _html(BASE_CODE, THANKS), "/no-id": _html(BASE_CODE, NO_ID)}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}"
    harness = Harness().start()
    try:
        context = harness.browser().new_context()
        page = context.new_page()
        page.goto(f"{local}/thanks?ScCid={CLICK}")
        harness.store.wait_until(lambda events: any(
            e.platform == "snapchat" and e.event_name == "PURCHASE" for e in events), 0, 10)
        page.goto(f"{local}/no-id")
        harness.store.wait_until(lambda events: sum(
            e.platform == "snapchat" and e.event_name == "PURCHASE" for e in events) >= 2,
            0, 10)
        events = [e for e in harness.store.since(0) if e.platform == "snapchat"]
        context.close()
    finally:
        harness.stop()
        server.shutdown()

    by_request: dict[int, list[Any]] = {}
    for event in events:
        if event.raw is not None:
            by_request.setdefault(id(event.raw), []).append(event)
    written: set[str] = set()
    for group in by_request.values():
        first = group[0]
        path = first.extra.get("path", "")
        names = [e.event_name for e in group]
        if "tr6.snapchat.com" in first.raw.url:
            stem = "browser-init-tr6"
        elif path.startswith("/config/"):
            stem = "browser-config"
        elif path.startswith("/cm/"):
            stem = "browser-cookie-match"
        elif names == ["PAGE_VIEW", "PURCHASE"]:
            stem = "browser-page-view-and-purchase"
        elif names == ["PURCHASE"] and first.extra.get("auto_dedup_id"):
            stem = "browser-purchase-auto-dedup-id"
        else:
            continue
        if stem in written:
            continue  # one of each: the second page's init/config repeat the first's
        written.add(stem)
        sample = {
            "kind": "browser",
            "source": ("recorded by samples/record_browser.py: Snap's base code and "
                       "pixelcheck's scevent.js stand-in in headless Chromium, through the "
                       "pixelcheck proxy (as Chromium put it on the wire; the local origin "
                       f"replaced by {ORIGIN})"),
            "request": _portable(first.raw.to_dict(), local),
            "expect": {
                "events": [{"event_name": e.event_name, "event_id": e.event_id,
                            "pixel_id": e.pixel_id} for e in group],
                "status": 200,
                "not_a_conversion": [bool(e.extra.get("not_a_conversion")) for e in group],
            },
        }
        target = HERE / f"{stem}.json"
        target.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", target.name)


if __name__ == "__main__":
    main()
