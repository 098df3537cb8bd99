"""Record the browser samples: Reddit's base code + the pixelcheck stand-in of pixel.js
in a real Chromium, through the pixelcheck proxy, offline.

    .venv/bin/python pytest_pixelcheck/platforms/reddit/samples/record_browser.py

Writes ``browser-*.json`` next to this file: the exact request the proxy captured for
each hit (method, URL, headers, body), and what the decoder must read from it. The
page is served by a local http.server; the proxy answers alb.reddit.com (and the two
config hosts the library fetches) itself.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PIXEL = "a2_pixelcheck0rd1"
CLICK_ID = "pixelcheckClick1234567890"
STEMS = {"PageVisit": "browser-pagevisit", "Purchase": "browser-purchase",
         "InitiateCheckout": "browser-custom-initiatecheckout"}


def page_html(base_code: str) -> bytes:
    return f"""<!doctype html><html><head><title>thanks</title><script>
{base_code}
rdt('init', '{PIXEL}', {{optOut: false, useDecimalCurrencyValues: true,
  email: ' John.Doe+shop@Example.COM ', phoneNumber: '+1 (650) 555-1212',
  externalId: 'cust-42'}});
rdt('track', 'PageVisit', {{conversionId: 'pagevisit.1'}});
rdt('track', 'Custom', {{customEventName: 'InitiateCheckout', conversionId: 'checkout.1',
  currency: 'USD', value: 25.0, itemCount: 2, products: [{{id: 'sku-1'}}]}});
rdt('track', 'Purchase', {{conversionId: 'purchase.ORD-1', transactionId: 'ORD-1',
  currency: 'USD', value: 25.0, itemCount: 2, products: [{{id: 'sku-1'}}]}});
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


def main() -> None:
    from example_site.trackers.reddit import BASE_CODE
    from pytest_pixelcheck.harness import Harness

    _Page.body = page_html(BASE_CODE)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    harness = Harness().start()
    try:
        context = harness.browser().new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/thanks/ORD-1?rdt_cid={CLICK_ID}")
        harness.store.wait_until(
            lambda events: any(e.event_name == "Purchase" for e in events), 0, 10)
        events = harness.store.since(0)
        context.close()
    finally:
        harness.stop()
        server.shutdown()
    for event in events:
        stem = STEMS.get(event.event_name or "")
        if stem is None or event.raw is None:
            continue
        request = event.raw.to_dict()
        sample = {
            "kind": "browser",
            "source": ("recorded by samples/record_browser.py: Reddit's base code and "
                       "pixelcheck's pixel.js stand-in in headless Chromium, through the "
                       "pixelcheck proxy (the image GET as Chromium put it on the wire)"),
            "request": {"method": request["method"], "url": request["url"],
                        "headers": request["headers"], "body": request["body"],
                        "arrival_time": request["arrival_time"]},
            "expect": {
                "events": [{"event_name": event.event_name, "event_id": event.event_id,
                            "pixel_id": event.pixel_id}],
                "status": 200,
            },
        }
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
