"""Record the server samples from Pinterest's official Python SDK
(``pinterest-api-sdk``, with its generated client ``Pinterest-Generated-Client``), and
build bad variants of the recorded request:

    .venv/bin/pip install pinterest-api-sdk==0.2.7
    .venv/bin/python pytest_pixelcheck/platforms/pinterest/samples/record_sdk.py

The SDK is pointed (``Configuration(host=...)``) at a local server that records each
request byte for byte and answers 200 in Pinterest's shape. The recorded origin becomes
``https://api.pinterest.com``, as a proxied backend addresses it; everything else
(headers in order, body bytes, the ``REDACTED`` token) stays as the SDK sent it.
``arrival_time`` is one second after the event, so the 7-day age check gives the same
answer on any day. Run it from the repository's root: importing the SDK walks the
parent of the working directory looking for a ``config.json``.
"""

from __future__ import annotations

import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ORIGIN = "https://api.pinterest.com"
HOST = "api.pinterest.com"
SDK = "pinterest-api-sdk 0.2.7"
TOKEN = "REDACTED"
AD_ACCOUNT = "549755885175"
EVENT_TIME = 1795910490
HEX_EM = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
HEX_PH = "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
EPIK = "dj0yJnU9cGl4ZWxjaGVja0NsaWNrMTIz"

_recorded: list[dict[str, Any]] = []


class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        _recorded.append({"method": self.command, "path": self.path,
                          "headers": [[k, v] for k, v in self.headers.items()],
                          "body": body.decode("utf-8")})
        answer = json.dumps({"num_events_received": 1, "num_events_processed": 1,
                             "events": [{"status": "processed", "error_message": None,
                                         "warning_message": None}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


def _record(base: str, *, test: bool) -> dict[str, Any]:
    from openapi_generated.pinterest_client.configuration import Configuration
    from openapi_generated.pinterest_client.model.conversion_events_custom_data_contents import (  # noqa: E501
        ConversionEventsCustomDataContents,
    )
    from pinterest.ads.conversion_events import Conversion
    from pinterest.client import PinterestSDKClient

    client = PinterestSDKClient(configuration=Configuration(access_token=TOKEN,
                                                            host=base + "/v5"))
    event = Conversion.create_conversion_event(
        event_name="checkout", action_source="web", event_time=EVENT_TIME,
        event_id="purchase.ORD-1",
        user_data={"em": [HEX_EM], "ph": [HEX_PH], "client_ip_address": "203.0.113.7",
                   "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "click_id": EPIK},
        custom_data={"currency": "USD", "value": "25.00", "order_id": "ORD-1",
                     "content_ids": ["sku-1"], "num_items": 2,
                     "contents": [ConversionEventsCustomDataContents(
                         id="sku-1", item_price="12.50", quantity=2)]},
        event_source_url="https://shop.example/thanks/ORD-1")
    Conversion.send_conversion_events(ad_account_id=AD_ACCOUNT, conversion_events=[event],
                                      test=test, client=client)
    return _recorded[-1]


def _headers(recorded: list[list[str]], body: str) -> list[list[str]]:
    out = []
    for key, value in recorded:
        if key.lower() == "host":
            value = HOST
        elif key.lower() == "content-length":
            value = str(len(body.encode()))
        out.append([key, value])
    return out


def _sample(source: str, recorded: dict[str, Any], body: str, expect: dict[str, Any],
            headers: list[list[str]] | None = None, path: str | None = None
            ) -> dict[str, Any]:
    return {
        "kind": "server",
        "source": source,
        "request": {
            "method": recorded["method"],
            "url": ORIGIN + (path or recorded["path"]),
            "headers": headers if headers is not None else _headers(recorded["headers"],
                                                                     body),
            "body": body,
            "arrival_time": EVENT_TIME + 1.0,
        },
        "expect": expect,
    }


def _checkout(status: int = 200, event_id: str | None = "purchase.ORD-1",
              name: str = "checkout", **more: Any) -> dict[str, Any]:
    return {"events": [{"event_name": name, "event_id": event_id, "pixel_id": None}],
            "status": status, **more}


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        live = _record(base, test=False)
        test = _record(base, test=True)
    finally:
        server.shutdown()
    recorded_by = f"recorded on the wire by samples/record_sdk.py ({SDK}); token REDACTED"
    samples: dict[str, dict[str, Any]] = {
        "server-sdk-checkout": _sample(
            f"{SDK}: Conversion.send_conversion_events(test=False), {recorded_by}",
            live, live["body"], _checkout(query=live["path"].partition("?")[2])),
        "server-sdk-checkout-test-mode": _sample(
            f"{SDK}: Conversion.send_conversion_events(test=True), {recorded_by}",
            test, test["body"], _checkout(test_mode=True)),
    }
    body = json.loads(live["body"])

    def variant(stem: str, what: str, changed: Any, expect: dict[str, Any],
                headers: list[list[str]] | None = None, path: str | None = None) -> None:
        text = changed if isinstance(changed, str) else json.dumps(changed)
        samples[stem] = _sample(f"the SDK's checkout {what} (built from server-sdk-checkout)",
                                live, text, expect, headers, path)

    unhashed = copy.deepcopy(body)
    unhashed["data"][0]["user_data"]["em"] = ["jane.doe@example.com"]
    variant("server-unhashed-email", "with user_data.em in the clear", unhashed,
            _checkout(422, answer_code=422))
    stale = copy.deepcopy(body)
    stale["data"][0]["event_time"] -= 8 * 86400
    variant("server-stale-event-time", "with event_time 8 days before arrival", stale,
            _checkout(422, answer_code=422))
    no_id = copy.deepcopy(body)
    del no_id["data"][0]["event_id"]
    variant("server-missing-event-id", "without event_id", no_id,
            _checkout(400, event_id=None, answer_code=4196))
    number = copy.deepcopy(body)
    number["data"][0]["custom_data"]["value"] = 25.0
    variant("server-value-as-number", "with custom_data.value as a number", number,
            _checkout(400, answer_code=4196))
    spelled = copy.deepcopy(body)
    spelled["data"][0]["event_name"] = "addtocart"
    variant("server-tag-spelling-addtocart", "sent as 'addtocart' (the tag's spelling)",
            spelled, _checkout(name="addtocart", warning=True))
    no_auth = [[k, v] for k, v in _headers(live["headers"], live["body"])
               if k.lower() != "authorization"]
    variant("server-token-in-query", "with the token as ?access_token= instead of the "
            "Authorization header", live["body"], _checkout(401, answer_code=2), no_auth,
            path=live["path"].split("?")[0] + f"?access_token={TOKEN}")
    variant("server-no-authorization", "without the Authorization header", live["body"],
            _checkout(401, answer_code=2), no_auth)
    variant("server-truncated-json", "cut after 200 bytes", live["body"][:200],
            {"events": [{"event_name": None, "event_id": None, "pixel_id": None}],
             "status": 400, "answer_code": 4196, "undecodable": True})
    for stem, sample in samples.items():
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
