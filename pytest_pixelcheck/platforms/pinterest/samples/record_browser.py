"""Record the browser samples: Pinterest's base code + the pixelcheck stand-in of
core.js in a real Chromium, through the pixelcheck proxy, offline.

    .venv/bin/python pytest_pixelcheck/platforms/pinterest/samples/record_browser.py

Writes ``browser-*.json`` next to this file: the exact request the proxy captured for
each hit (method, URL, headers, body), and what the decoder must read from it. The page
is served by a local http.server on 127.0.0.1; its port is removed from the recording
(URL parameters and headers) so the samples do not change from run to run. The proxy
answers ct.pinterest.com itself.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
TAG = "2612345678901"
EPIK = "dj0yJnU9cGl4ZWxjaGVja0NsaWNrMTIz"
EMAIL = " Jane.Doe@Example.com "


def page_html(base_code: str) -> bytes:
    return f"""<!doctype html><html><head><title>thanks</title><script>
{base_code}
pintrk('load', '{TAG}', {{em: '{EMAIL}'}});
pintrk('page');
pintrk('track', 'checkout', {{event_id: 'purchase.ORD-1', value: 25, order_quantity: 2,
  currency: 'USD', order_id: 'ORD-1',
  line_items: [{{product_id: 'sku-1', product_price: 12.5, product_quantity: 2}}]}});
</script></head><body>thanks</body></html>""".encode()


class _Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _portless(text: str, port: int) -> str:
    """The page's origin without its ephemeral port, plain and percent-encoded."""
    for origin in (f"127.0.0.1:{port}", quote(f"127.0.0.1:{port}", safe="")):
        text = text.replace(origin, "127.0.0.1")
    return text


def main() -> None:
    from example_site.trackers.pinterest import BASE_CODE
    from pytest_pixelcheck.harness import Harness

    _Page.body = page_html(BASE_CODE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    harness = Harness().start()
    try:
        context = harness.browser().new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/thanks/ORD-1?epik={EPIK}")
        # init and checkout, each a /user/ hit and its /v3/ copy (they run side by side)
        harness.store.wait_until(
            lambda events: len({(e.event_name, e.extra.get("endpoint")) for e in events
                                if e.platform == "pinterest"}) >= 4, 0, 10)
        events = harness.store.since(0)
        context.close()
    finally:
        harness.stop()
        server.shutdown()
    stems = {("init", "user"): "browser-init-user", ("init", "v3"): "browser-init-v3-mirror",
             ("checkout", "user"): "browser-checkout-user",
             ("checkout", "v3"): "browser-checkout-v3-mirror"}
    for event in events:
        stem = stems.get((event.event_name or "", event.extra.get("endpoint")))
        if stem is None or event.raw is None:
            continue
        request = event.raw.to_dict()
        headers = [[k, _portless(v, port)] for k, v in request["headers"]
                   if k.lower() != "cookie"]
        sample = {
            "kind": "browser",
            "source": ("recorded by samples/record_browser.py: Pinterest's base code and "
                       "pixelcheck's core.js stand-in in headless Chromium, through the "
                       "pixelcheck proxy (the page's local port removed)"),
            "request": {"method": request["method"], "url": _portless(request["url"], port),
                        "headers": headers, "body": request["body"],
                        "arrival_time": request["arrival_time"]},
            "expect": {
                "events": [{"event_name": event.event_name, "event_id": event.event_id,
                            "pixel_id": event.pixel_id}],
                "status": event.raw.response_status,
                "not_a_conversion": bool(event.extra.get("not_a_conversion")),
                "mirror": bool(event.extra.get("mirror_of")),
                "tag_id": event.extra.get("tag_id"),
                "epik": event.extra.get("epik"),
            },
        }
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)
    missing = set(stems.values()) - {p.stem for p in HERE.glob("browser-*.json")}
    if missing:
        raise SystemExit(f"not recorded: {', '.join(sorted(missing))}")
    assert not re.search(r"127\.0\.0\.1:\d", json.dumps([p.read_text() for p in
                                                          HERE.glob("browser-*.json")]))


if __name__ == "__main__":
    main()
