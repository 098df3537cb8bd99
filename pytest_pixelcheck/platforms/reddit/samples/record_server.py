"""Record the server samples: the shop's Reddit tracker sends its Conversions API calls
(v3 with the ``json`` client, v2.0 with ``json-v2.0``) over a real socket to a
pixelcheck sink, and the bytes the sink received become samples, plus bad variants of
the v3 call. Offline:

    .venv/bin/python pytest_pixelcheck/platforms/reddit/samples/record_server.py

Reddit publishes no official Conversions API client (FACTS.md), so the shop's own
urllib client is the real sender here. The sink's URL becomes Reddit's origin, as a
proxied backend addresses it; the headers keep their order, the token is REDACTED,
and ``arrival_time`` is one second after the event, so the 168-hour check gives the
same answer on any day.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ORIGIN = "https://ads-api.reddit.com"
TOKEN = "REDACTED"
EVENT_TIME = 1795910490  # the samples' fixed clock (2026-11-29 00:01:30 UTC)
ARRIVAL = EVENT_TIME + 1.0
UUID_COOKIE = "1795910400123.8b2c5f0e-3c8d-4a47-9d3e-2a6f0c1b7e55"
CLICK_ID = "pixelcheckClick1234567890"


def _record(client: str) -> dict[str, Any]:
    """The request the tracker's ``client`` put on the wire for the shop's Purchase."""
    from example_site.faults import ActiveFaults
    from example_site.trackers import TrackerConfig
    from example_site.trackers.reddit import TRACKER
    from example_site.tracking import Customer, RequestContext, TrackedEvent
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.sink import ConversionSink

    purchase = TrackedEvent(
        "Purchase", "purchase.ORD-1",
        {"content_ids": ["sku-1"], "contents": [{"id": "sku-1", "quantity": 2,
                                                  "item_price": 12.5}],
         "num_items": 2, "value": 25.0, "currency": "USD", "content_type": "product",
         "order_id": "ORD-1"},
        "https://shop.example/thanks/ORD-1", EVENT_TIME)
    customer = Customer(email=" John.Doe+shop@Example.COM ", phone="+1 (650) 555-1212")
    ctx = RequestContext("203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) pixelcheck-sample",
                         cookies={"_rdt_uuid": UUID_COOKIE, "_rdt_cid": CLICK_ID})
    with ConversionSink(EventStore()) as sink:
        config = TrackerConfig("reddit", TRACKER.default_tag_id, sink.url_for("reddit"), TOKEN,
                               client)
        (call,) = TRACKER.server_calls(config, [purchase], ActiveFaults(), ctx, customer)
        status, answer = call.send(10.0)
        assert status == 200, answer
        (request,) = sink.requests.since(0)
    parts = urlsplit(request.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    body = request.body.decode()
    headers = [[k, ORIGIN.removeprefix("https://") if k.lower() == "host" else v]
               for k, v in request.headers]
    return {"method": request.method, "url": ORIGIN + path, "headers": headers, "body": body}


def _with_body(recorded: dict[str, Any], body: Any, *, drop: tuple[str, ...] = ()
               ) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    headers = [[k, str(len(text.encode())) if k.lower() == "content-length" else v]
               for k, v in recorded["headers"] if k.lower() not in drop]
    return {**recorded, "headers": headers, "body": text}


def _sample(name: str, source: str, request: dict[str, Any], events: list[dict[str, Any]],
            status: int) -> tuple[str, dict[str, Any]]:
    return name, {"kind": "server", "source": source,
                  "request": {**request, "arrival_time": ARRIVAL},
                  "expect": {"events": events, "status": status}}


def main() -> None:
    from example_site.trackers.reddit import TRACKER
    from pytest_pixelcheck.platforms.reddit.pii_rules import sha256_hex

    pixel = TRACKER.default_tag_id
    purchase = [{"event_name": "Purchase", "event_id": sha256_hex("purchase.ORD-1"),
                 "pixel_id": pixel}]
    shop = ("the shop's json client (example_site/trackers/reddit.py, urllib; no official "
            "Reddit client exists) recorded on the wire by samples/record_server.py; token "
            "REDACTED")
    v3 = _record("json")
    v2 = _record("json-v2.0")
    body = json.loads(v3["body"])
    samples = [
        _sample("server-v3-purchase", f"Conversions API v3: {shop}", v3, purchase, 200),
        _sample("server-v2.0-purchase", f"Conversions API v2.0 (json-v2.0 client): {shop}",
                v2, purchase, 200),
    ]

    stale = copy.deepcopy(body)
    stale["data"]["events"][0]["event_at"] -= 8 * 86400 * 1000
    samples.append(_sample("server-v3-stale-event-at",
                           "the recorded v3 call with event_at 8 days back: Reddit answers 400 "
                           "'event_at timestamp must be less than 168h0m0s old'",
                           _with_body(v3, stale), purchase, 400))
    samples.append(_sample("server-v3-no-bearer-token",
                           "the recorded v3 call without its Authorization header: 401 No "
                           "bearer token provided", _with_body(v3, body, drop=("authorization",)),
                           purchase, 401))
    no_source = copy.deepcopy(body)
    del no_source["data"]["events"][0]["action_source"]
    samples.append(_sample("server-v3-missing-action-source",
                           "the recorded v3 call without the required action_source: 400, "
                           "one invalid event, none processed", _with_body(v3, no_source),
                           purchase, 400))
    raw_email = copy.deepcopy(body)
    raw_email["data"]["events"][0]["user"]["email"] = "johndoe@example.com"
    samples.append(_sample("server-v3-unhashed-email",
                           "the recorded v3 call with user.email in the clear: Reddit accepts "
                           "unhashed match keys (200); pixelcheck reports the raw email",
                           _with_body(v3, raw_email), purchase, 200))
    custom = copy.deepcopy(body)
    custom["data"]["events"][0]["type"] = {"tracking_type": "CUSTOM",
                                           "custom_event_name": "InitiateCheckout"}
    custom["data"]["events"][0]["metadata"]["conversion_id"] = "checkout.1"
    samples.append(_sample("server-v3-custom-event",
                           "the recorded v3 call as a CUSTOM event named InitiateCheckout",
                           _with_body(v3, custom),
                           [{"event_name": "InitiateCheckout",
                             "event_id": sha256_hex("checkout.1"), "pixel_id": pixel}], 200))
    samples.append(_sample("server-v3-v2-shape",
                           "the v2.0 body posted to the v3 path: 400, events must sit in data",
                           _with_body(v3, json.loads(v2["body"])), [
                               {"event_name": None, "event_id": None, "pixel_id": pixel}], 400))
    samples.append(_sample("server-v3-truncated-json",
                           "the recorded v3 call cut short: 400, the body is no JSON",
                           _with_body(v3, v3["body"][: len(v3["body"]) // 2]),
                           [{"event_name": None, "event_id": None, "pixel_id": pixel}], 400))
    for name, sample in samples:
        path = HERE / f"{name}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
