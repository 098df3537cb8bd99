"""Record the server samples against the pixelcheck sink, offline:

    .venv/bin/python pytest_pixelcheck/platforms/snapchat/samples/record_server.py

1. Snap's official Python SDK (``pip install snap-business-sdk==1.0.0``), unchanged:
   ``ConversionApi`` + ``ConversionEvent`` (it normalizes and hashes the raw values
   itself) posting a PURCHASE to the legacy ``/v2/conversion`` and to
   ``/v2/conversion/validate``. Snap publishes no v3 client for Python or Node.
2. The shop's own json client (``example_site.trackers.snapchat``) posting a v3
   PURCHASE to ``/v3/{PIXEL_ID}/events``.
3. Bad variants of the v3 recording, each saying what it was built from.

The sink's local URL becomes Snap's own origin, as a proxied backend addresses it;
the access token is the literal ``REDACTED``. ``arrival_time`` is one second after the
event, so the 37-day age check gives the same answer on any day.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ORIGIN = "https://tr.snapchat.com"
PIXEL = "a1b2c3d4-0000-4000-8000-5a9c0ffee001"
TOKEN = "REDACTED"
SDK = "snap-business-sdk-1.0.0"
EVENT_TIME = 1795910491  # seconds; the recordings' arrival is one second later
UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/124.0.0.0 Safari/537.36")
SCID = "5e3c2a57-98a4-4b1e-a1f2-0c7d3b9e6f10"
CLICK = "pixelcheck-ScCid-0123"


def _portable(request: Any, local: str) -> dict[str, Any]:
    """The captured request at Snap's origin, Host and Content-Length true to it."""
    parts = urlsplit(request.url)
    path = parts.path.removeprefix("/snapchat")
    url = ORIGIN + path + (f"?{parts.query}" if parts.query else "")
    body = request.body.decode("utf-8")
    headers = []
    for key, value in request.headers:
        if key.lower() == "host":
            value = urlsplit(ORIGIN).hostname or value
        elif key.lower() == "content-length":
            value = str(len(body.encode()))
        headers.append([key, value.replace(local, ORIGIN)])
    return {"method": request.method, "url": url, "headers": headers, "body": body,
            "arrival_time": float(EVENT_TIME + 1)}


def _sample(source: str, request: dict[str, Any], expect: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "server", "source": source, "request": request, "expect": expect}


def _expect(status: int, name: str | None = "PURCHASE", event_id: str | None = "purchase.ORD-1",
            pixel: str | None = PIXEL, **more: Any) -> dict[str, Any]:
    return {"events": [{"event_name": name, "event_id": event_id, "pixel_id": pixel}],
            "status": status, **more}


def record_sdk(sink: Any) -> dict[str, dict[str, Any]]:
    """The official SDK's v2 PURCHASE and its validate call, as the sink received them."""
    from snap_business_sdk.public.conversion_api import ConversionApi
    from snap_business_sdk.public.conversion_event import ConversionEvent

    local = sink.url
    api = ConversionApi(access_token=TOKEN, launchpad_url=sink.url_for("snapchat"))

    def event() -> Any:
        return ConversionEvent(
            pixel_id=PIXEL, event_type="PURCHASE", event_conversion_type="WEB",
            timestamp=str(EVENT_TIME * 1000), uuid_c1=SCID, click_id=CLICK,
            email=" Jane.Doe@Example.com ", phone_number="+1 (650) 555-1212",
            ip_address="203.0.113.7", user_agent=UA, first_name="Jane", last_name="Doe",
            city="Menlo Park", zip="94025", page_url="https://shop.example/thanks/ORD-1",
            price="25.0", currency="USD", transaction_id="ORD-1", item_ids="sku-1",
            number_items="2", client_dedup_id="purchase.ORD-1")

    out: dict[str, dict[str, Any]] = {}
    mark = sink.requests.mark()
    api.send_event_sync(event())
    (request,) = sink.requests.since(mark)
    out["server-v2-sdk-purchase"] = _sample(
        f"{SDK} ConversionApi.send_event_sync (Snap's official Python SDK; it knows only "
        "the legacy v2 API), recorded on the wire by samples/record_server.py; token "
        "REDACTED", _portable(request, local), _expect(200))
    mark = sink.requests.mark()
    api.send_test_event(event())
    (request,) = sink.requests.since(mark)
    out["server-v2-sdk-validate"] = _sample(
        f"{SDK} ConversionApi.send_test_event (POST /v2/conversion/validate), recorded on "
        "the wire by samples/record_server.py; Snap validates and never records it",
        _portable(request, local), _expect(200, rejected=True))
    return out


def record_json(sink: Any) -> dict[str, Any]:
    """The shop's json client: a v3 PURCHASE, as the sink received it."""
    from example_site.faults import ActiveFaults
    from example_site.journey import Customer
    from example_site.trackers import TrackerConfig
    from example_site.trackers.snapchat import TRACKER
    from example_site.tracking import RequestContext, TrackedEvent

    config = TrackerConfig("snapchat", PIXEL, sink.url_for("snapchat"), TOKEN)
    tracked = TrackedEvent(
        "Purchase", "purchase.ORD-1",
        {"content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                  "item_price": 12.5}],
         "num_items": 2, "value": 25.0, "currency": "USD", "content_type": "product",
         "order_id": "ORD-1"},
        "https://shop.example/thanks/ORD-1", EVENT_TIME)
    ctx = RequestContext("203.0.113.7", UA, cookies={"_scid": SCID, "_scclid": CLICK},
                         page_url="https://shop.example/checkout")
    (call,) = TRACKER.server_calls(config, [tracked], ActiveFaults(), ctx, Customer())
    mark = sink.requests.mark()
    status, _ = call.send(10.0)
    assert status == 200, status
    (request,) = sink.requests.since(mark)
    return _portable(request, sink.url)


def variants(v3: dict[str, Any]) -> dict[str, dict[str, Any]]:
    body = json.loads(v3["body"])
    out: dict[str, dict[str, Any]] = {}

    def with_body(new: Any, url: str | None = None) -> dict[str, Any]:
        text = new if isinstance(new, str) else json.dumps(new)
        request = copy.deepcopy(v3)
        request["body"] = text
        if url is not None:
            request["url"] = url
        request["headers"] = [[k, str(len(text.encode()))] if k.lower() == "content-length"
                              else [k, v] for k, v in request["headers"]]
        return request

    out["server-v3-json-purchase"] = _sample(
        "the shop's json client (example_site/trackers/snapchat.py) posting a v3 PURCHASE, "
        "recorded on the wire by samples/record_server.py; token REDACTED", v3,
        _expect(200))
    unhashed = copy.deepcopy(body)
    unhashed["data"][0]["user_data"]["em"] = ["jane.doe@example.com"]
    out["server-v3-unhashed-email"] = _sample(
        "server-v3-json-purchase with user_data.em in the clear", with_body(unhashed),
        _expect(400, reason="Unhashed PII"))
    stale = copy.deepcopy(body)
    stale["data"][0]["event_time"] -= 38 * 86400
    out["server-v3-stale-event-time"] = _sample(
        "server-v3-json-purchase with event_time 38 days before arrival (Snap: at most 37)",
        with_body(stale), _expect(400, reason="Timestamp invalid or out of range"))
    missing = copy.deepcopy(body)
    del missing["data"][0]["action_source"]
    out["server-v3-missing-action-source"] = _sample(
        "server-v3-json-purchase without the required action_source", with_body(missing),
        _expect(400, reason="Missing required field: data[0].action_source"))
    no_token = with_body(body, v3["url"].split("?")[0])
    out["server-v3-missing-token"] = _sample(
        "server-v3-json-purchase without the access_token query parameter (the 401 body is "
        "our choice: Snap's is unconfirmed)", no_token, _expect(401))
    inside = copy.deepcopy(body)
    inside["data"][0]["event_name"] = "purchase"
    inside["data"][0]["action_source"] = "web"
    inside["data"][0]["test_event_code"] = "PIXELCHECK_TEST"
    out["server-v3-lowercase-test-code-in-event"] = _sample(
        "server-v3-json-purchase as stape's Snapchat tag writes it: lower-case event_name "
        "and action_source, test_event_code inside the event", with_body(inside),
        _expect(200, name="purchase", test_event_code="PIXELCHECK_TEST"))
    out["server-v3-truncated-json"] = _sample(
        "server-v3-json-purchase cut after 120 bytes", with_body(v3["body"][:120]),
        _expect(400, name=None, event_id=None, undecodable=True))
    return out


def main() -> None:
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.sink import ConversionSink

    samples: dict[str, dict[str, Any]] = {}
    with ConversionSink(EventStore()) as sink:
        try:
            samples.update(record_sdk(sink))
        except ImportError:
            print("snap-business-sdk is not installed: the SDK samples stay as they are")
        samples.update(variants(record_json(sink)))
    for stem, sample in samples.items():
        target = HERE / f"{stem}.json"
        target.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", target.name)


if __name__ == "__main__":
    main()
