"""Record the browser samples: LinkedIn's base code + the pixelcheck stand-in of
insight.min.js in a real Chromium, through the pixelcheck proxy, offline.

    .venv/bin/python pytest_pixelcheck/platforms/linkedin/samples/record_browser.py

Writes ``browser-*.json`` next to this file: the exact request the proxy captured for
each hit (method, URL, headers, body), and what the decoder must read from it. The
page is served by a local http.server; the proxy answers px.ads.linkedin.com itself.
The plain-JSON ``/wa/`` sample is the recorded signal as the other build sends it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PARTNER = "5550001"
RULE = "7100004"
CLICK = "AQFpixelcheckClickId-0123456789"
SOURCE = ("recorded by samples/record_browser.py: LinkedIn's base code and pixelcheck's "
          "insight.min.js stand-in in headless Chromium, through the pixelcheck proxy "
          "({how} as Chromium put it on the wire)")


def page_html(base_code: str) -> bytes:
    return f"""<!doctype html><html><head><title>Thanks</title><script>
{base_code}
window.lintrk('setUserData', {{email: ' John.Doe@Example.COM '}});
window.lintrk('track', {{conversion_id: {RULE}, event_id: 'purchase.ORD-1'}});
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


def _sample(event: Any, how: str, request: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = request or event.raw.to_dict()
    return {
        "kind": "browser",
        "source": SOURCE.format(how=how),
        "request": {"method": raw["method"], "url": raw["url"], "headers": raw["headers"],
                    "body": raw.get("body", ""), "arrival_time": raw["arrival_time"]},
        "expect": {
            "events": [{"event_name": event.event_name, "event_id": event.event_id,
                        "pixel_id": event.pixel_id}],
            "status": 200,
            "not_a_conversion": bool(event.extra.get("not_a_conversion")),
        },
    }


def main() -> None:
    from example_site.trackers.linkedin import BASE_CODE
    from pytest_pixelcheck.harness import Harness
    from pytest_pixelcheck.platforms.linkedin import LINKEDIN
    from pytest_pixelcheck.platforms.linkedin.platform import decode_wa_body

    _Page.body = page_html(BASE_CODE.replace("PARTNER_ID", f"'{PARTNER}'"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    harness = Harness().start()
    try:
        context = harness.browser().new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/thanks/ORD-1?li_fat_id={CLICK}")
        harness.store.wait_until(
            lambda events: {e.extra.get("path") for e in events} >= {"/wa", "/collect"}, 0, 10)
        events = harness.store.since(0)
        context.close()
    finally:
        harness.stop()
        server.shutdown()
    samples: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.raw is None or event.platform != "linkedin":
            continue
        if event.extra.get("path") == "/collect":
            samples["browser-collect-conversion"] = _sample(event, "an image GET")
        elif event.extra.get("path") == "/wa":
            samples["browser-wa-page-visit-gzip"] = _sample(event, "a fetch POST of base64 "
                                                                   "gzip JSON")
            # the other build's form of the same signal: plain JSON to /wa/
            payload, _ = decode_wa_body(event.raw)
            plain = event.raw.to_dict()
            plain["url"] = "https://px.ads.linkedin.com/wa/"
            plain["body"] = json.dumps(payload, separators=(",", ":"))
            plain["headers"] = [[k, str(len(plain["body"])) if k.lower() == "content-length"
                                 else v] for k, v in plain["headers"]]
            sample = _sample(event, "built from the gzip one", plain)
            sample["source"] = ("the recorded /wa/ signal (browser-wa-page-visit-gzip) re-sent "
                                "as plain JSON to /wa/, as one build of insight.min.js sends "
                                "it (built by samples/record_browser.py)")
            samples["browser-wa-page-visit-json"] = sample
    assert LINKEDIN.is_collection("px.ads.linkedin.com", "/wa/")
    for stem, sample in samples.items():
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
