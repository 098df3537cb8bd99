"""Re-record this folder's GA4 samples.

    python pytest_pixelcheck/platforms/ga4/samples/record_samples.py

1. The browser samples: headless Chromium, through the pixelcheck harness (proxy and
   the offline gtag.js stand-in), opens a local page with the standard gtag snippet,
   ``set user_data`` and a purchase; the hits are taken as the proxy captured them.
2. The server samples: the third-party ``ga4mp`` client (``pip install ga4mp==2.0.4``;
   Google publishes no Python Measurement Protocol SDK) posts a purchase and a
   validation call to the pixelcheck sink. Without ga4mp the existing files stay.
3. The hand-built samples, each saying what it was built from.

Local ports and Host/Origin/Referer headers are taken out, so no file names this
machine.
"""

from __future__ import annotations

import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
MEASUREMENT_ID = "G-PIXELCHECK1"
API_SECRET = "pixelcheck-ga4-api-secret"
#: arrival time of the hand-built samples (the recordings keep their own)
RECORDED_AT = 1795911914.0
UA_CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36")
PAGE = """<!doctype html><html><head><title>Thanks</title></head><body><h1>Thanks</h1>
<script>
(function (d, id) { var s = d.createElement('script'); s.async = true;
 s.src = 'https://www.googletagmanager.com/gtag/js?id=' + encodeURIComponent(id);
 (d.head || d.documentElement).appendChild(s); })(document, 'G-PIXELCHECK1');
window.dataLayer = window.dataLayer || [];
function gtag(){dataLayer.push(arguments);}
gtag('js', new Date());
gtag('config', 'G-PIXELCHECK1');
gtag('set', 'user_data', {email: ' John.Smith@GMail.com ', phone_number: '+1 (650) 555-1212',
  address: {first_name: 'John', last_name: 'Smith', city: 'Menlo Park',
            postal_code: '94025', country: 'US'}});
gtag('event', 'purchase', {transaction_id: 'ORD-1001', value: 37.5, currency: 'USD',
  items: [{item_id: 'sku-1', item_name: 'Mug', price: 12.5, quantity: 1},
          {item_id: 'sku-2', item_name: 'Tee', price: 25, quantity: 1}]});
</script></body></html>"""


def record_browser() -> tuple[dict[str, dict[str, Any]], str]:
    """The stand-in's hits by event name, and the client id gtag.js chose."""
    from pytest_pixelcheck import Harness

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Harness() as harness:
            context = harness.browser().new_context()
            mark = harness.store.mark()
            context.new_page().goto(f"http://127.0.0.1:{server.server_address[1]}/thanks")
            harness.store.wait_until(
                lambda events: sum(e.platform == "ga4" for e in events) >= 2, mark, 15)
            hits = {e.event_name or "?": e.raw.to_dict()
                    for e in harness.store.since(mark) if e.platform == "ga4" and e.raw}
            cookie = next(c["value"] for c in context.cookies() if c["name"] == "_ga")
            context.close()
    finally:
        server.shutdown()
    return hits, ".".join(cookie.split(".")[-2:])


def record_server(client_id: str) -> list[dict[str, Any]] | None:
    """ga4mp's purchase and validation calls as the sink received them (None: no ga4mp)."""
    try:
        from ga4mp import GtagMP  # type: ignore[import-not-found]
    except ImportError:
        print("ga4mp is not installed: the server_*_ga4mp samples are kept as they are")
        return None
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.sink import ConversionSink

    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    with ConversionSink(EventStore()) as sink:
        client = GtagMP(api_secret=API_SECRET, measurement_id=MEASUREMENT_ID,
                        client_id=client_id)
        client._base_domain = sink.url_for("ga4") + "/mp/collect"
        client._validation_domain = sink.url_for("ga4") + "/debug/mp/collect"
        items = [{"item_id": "sku-1", "item_name": "Mug", "price": 12.5, "quantity": 1},
                 {"item_id": "sku-2", "item_name": "Tee", "price": 25.0, "quantity": 1}]
        client.send([{"name": "purchase", "params": {
            "transaction_id": "ORD-1001", "value": 37.5, "currency": "USD", "items": items}}])
        client.send([{"name": "_badEventName", "params": {}}], validation_hit=True)
        return [r.to_dict() for r in sink.requests]


def _headers(recorded: dict[str, Any]) -> list[list[str]]:
    # Host/Origin/Referer name the local port of the recording
    return [[k, v] for k, v in recorded["headers"]
            if k.lower() not in ("host", "origin", "referer", "connection")]


def _write(name: str, kind: str, source: str, request: dict[str, Any],
           events: list[dict[str, Any]], status: int, **extra: Any) -> None:
    # when it arrived, so a replay judges time (72 h, event age) as the recording did
    request.setdefault("arrival_time", RECORDED_AT)
    data = {"kind": kind, "source": source, "request": request,
            "expect": {"events": events, "status": status, **extra}}
    (HERE / f"{name}.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n",
                                       encoding="utf-8")


def _event(name: str | None, event_id: str | None, pixel: str | None,
           **more: Any) -> dict[str, Any]:
    return {"event_name": name, "event_id": event_id, "pixel_id": pixel, **more}


def write_recorded(hits: dict[str, dict[str, Any]],
                   server: list[dict[str, Any]] | None, client_id: str) -> None:
    standin = ("recorded at the pixelcheck proxy: headless Chromium ran a page with the "
               "standard gtag snippet (config, set user_data, event purchase) and loaded "
               "pixelcheck's gtag.js stand-in (platforms/ga4/gtag.js); the page's local port "
               "was removed from dl and the Host/Origin/Referer headers")
    for event_name, file in (("purchase", "browser_purchase_standin"),
                             ("page_view", "browser_page_view_standin")):
        hit = hits[event_name]
        _write(file, "browser", standin,
               {"method": hit["method"], "url": re.sub(r"127\.0\.0\.1%3A\d+", "127.0.0.1",
                                                       hit["url"]),
                "headers": _headers(hit), "body": hit["body"],
                "arrival_time": hit["arrival_time"]},
               [_event(event_name, "ORD-1001" if event_name == "purchase" else None,
                       MEASUREMENT_ID, client_id=client_id)], 204)
    if server is None:
        return
    ga4mp = ("recorded at the pixelcheck sink: the third-party Python client ga4mp 2.0.4 "
             "(Adswerve; GtagMP.send) with its base domain pointed at the sink; the URL's "
             "host is written back to Google's")
    for call in server:
        parts = urlsplit(call["url"])
        request = {"method": call["method"],
                   "url": f"https://www.google-analytics.com{parts.path}?{parts.query}",
                   "headers": _headers(call), "body": call["body"],
                   "arrival_time": call["arrival_time"]}
        if parts.path.startswith("/debug"):
            _write("server_debug_bad_name_ga4mp", "server",
                   ga4mp + "; the event name is the one in Google's own validating-events "
                   "example", request,
                   [_event("_badEventName", None, MEASUREMENT_ID, rejected=True)], 200,
                   validation_codes=["NAME_INVALID"])
        else:
            _write("server_mp_purchase_ga4mp", "server", ga4mp, request,
                   [_event("purchase", "ORD-1001", MEASUREMENT_ID, client_id=client_id)], 204)


def write_hand_built(client_id: str) -> None:
    hand = ("hand-built from the parameters Google's gtag.js was observed sending "
            "(PLATFORMS.md 2b: en, tid, cid, sid, ep.transaction_id, epn.value, cu, pr1) and "
            "public GA4 hit tables; not a byte recording of Google's library")
    get_url = ("https://region1.google-analytics.com/g/collect?v=2&tid=G-ABC123XYZ"
               "&gtm=45je4a20v9&_p=1714651234567&gcs=G111&cid=123456789.1700000000&ul=en-us"
               "&sr=1920x1080&_s=3&sid=1700000500&sct=2&seg=1"
               "&dl=https%3A%2F%2Fshop.example%2Fthanks%2FT-77"
               "&dr=https%3A%2F%2Fshop.example%2Fcheckout&dt=Thank%20you&en=purchase&_et=1520"
               "&cu=EUR&ep.transaction_id=T-77&epn.value=59.9&epn.shipping=4.5"
               "&pr1=idSKU_1~nmRunning%20Shoes~pr59.9~qt1~brAcme")
    _write("browser_get_purchase", "browser", "GET form of a hit (image beacon); " + hand,
           {"method": "GET", "url": get_url, "headers": [["User-Agent", UA_CHROME]],
            "body": ""},
           [_event("purchase", "T-77", "G-ABC123XYZ", client_id="123456789.1700000000",
                   session_id="1700000500")], 204)
    multi_url = ("https://www.google-analytics.com/g/collect?v=2&tid=G-ABC123XYZ"
                 "&gtm=45je3c10&_p=998877&cid=123456789.1700000000&ul=en-us&sr=1920x1080"
                 "&sid=1700000500&sct=2&seg=1&dl=https%3A%2F%2Fshop.example%2Fcart&dt=Cart"
                 "&_s=4")
    multi_body = (
        "en=view_item&_et=310&cu=EUR&epn.value=59.9&pr1=idSKU_1~nmRunning%20Shoes~pr59.9\n"
        "en=add_to_cart&_et=95&cu=EUR&epn.value=119.8"
        "&pr1=idSKU_1~nmRunning%20Shoes~pr59.9~qt2\n"
        "en=begin_checkout&_et=40&cu=EUR&epn.value=119.8&ep.coupon=SPRING")
    _write("browser_post_multi_event", "browser",
           "older multi-event POST: shared parameters in the query, one event per body line "
           "(OMNI parsePostData splits a body starting with en= on whitespace); " + hand,
           {"method": "POST", "url": multi_url,
            "headers": [["User-Agent", UA_CHROME], ["Content-Type", "text/plain;charset=UTF-8"]],
            "body": multi_body},
           [_event("view_item", None, "G-ABC123XYZ"), _event("add_to_cart", None, "G-ABC123XYZ"),
            _event("begin_checkout", None, "G-ABC123XYZ")], 204)
    _write("browser_doubleclick_mirror", "browser",
           "the copy of a hit gtag.js also sends to stats.g.doubleclick.net (PLATFORMS.md 2b: "
           "'carries the same event: do not count it twice'); " + hand,
           {"method": "GET", "url": get_url.replace("region1.google-analytics.com",
                                                    "stats.g.doubleclick.net"),
            "headers": [["User-Agent", UA_CHROME]], "body": ""},
           [_event("purchase", "T-77", "G-ABC123XYZ", mirror=True)], 204)

    url = (f"https://www.google-analytics.com/mp/collect?measurement_id={MEASUREMENT_ID}"
           f"&api_secret={API_SECRET}")
    headers = [["Content-Type", "application/json"], ["User-Agent", "python-requests/2.32.3"]]
    hand_mp = ("hand-built Measurement Protocol body in the shape Google's sending-events and "
               "reference pages document")

    def mp(name: str, body: Any, events: list[dict[str, Any]], source: str,
           **extra: Any) -> None:
        _write(name, "server", source,
               {"method": "POST", "url": url, "headers": headers,
                "body": body if isinstance(body, str) else json.dumps(body)},
               events, 204, **extra)

    sale = {"transaction_id": "ORD-1", "value": 1.0, "currency": "USD"}
    mp("server_reserved_names",
       {"client_id": client_id,
        "events": [{"name": "session_start", "params": {"engagement_time_msec": 1}},
                   {"name": "ga_purchase", "params": sale}, {"name": "_purchase", "params": sale},
                   {"name": "purchase", "params": sale}]},
       [_event("session_start", None, MEASUREMENT_ID, rejected=True),
        _event("ga_purchase", None, MEASUREMENT_ID, rejected=True),
        _event("_purchase", None, MEASUREMENT_ID, rejected=True),
        _event("purchase", "ORD-1", MEASUREMENT_ID, rejected=False)],
       hand_mp + "; names from Google's reserved list, a reserved prefix, and the leading "
       "underscore of Google's own NAME_INVALID example",
       validation_codes=["NAME_RESERVED", "NAME_RESERVED", "NAME_INVALID"])
    mp("server_empty_transaction_id",
       {"client_id": client_id,
        "events": [{"name": "purchase", "params": {
            "transaction_id": "", "value": 37.5, "currency": "USD",
            "session_id": client_id.split(".")[1], "engagement_time_msec": 1}}]},
       [_event("purchase", "", MEASUREMENT_ID, rejected=False)],
       hand_mp + "; Google's help: 'Do not send an empty string as the transaction ID'")
    mp("server_malformed_json",
       '{"client_id": "' + client_id + '", "events": [{"name": "purchase",',
       [_event(None, None, MEASUREMENT_ID, error=True)],
       "a truncated body (a client that cut its write short); Google still answers 2xx")


def main() -> None:
    hits, client_id = record_browser()
    write_recorded(hits, record_server(client_id), client_id)
    write_hand_built(client_id)
    print(f"wrote {len(list(HERE.glob('*.json')))} samples to {HERE.name}/")


if __name__ == "__main__":
    main()
