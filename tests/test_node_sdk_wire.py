"""What Meta's official Node SDK (facebook-nodejs-business-sdk) puts on the wire when the
shop sends through :class:`NodeSdkTransport`, seen by a plain local HTTP server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from example_site.node_client import NodeSdkTransport, node_sdk_available

UNAVAILABLE = node_sdk_available()
pytestmark = pytest.mark.skipif(UNAVAILABLE is not None, reason=str(UNAVAILABLE))

PIXEL_ID = "1234567890"
TOKEN = "EAAnodeSDKtestTOKEN0123456789"
API_VERSION = "v21.0"
OK_ANSWER = b'{"events_received":1,"messages":[],"fbtrace_id":"x"}'
REJECT_PIXEL = "4040404040"
REJECT_ANSWER = (b'{"error":{"message":"Invalid OAuth access token.","type":"OAuthException",'
                 b'"code":190,"fbtrace_id":"y"}}')

CUSTOMER = {
    "email": "Jane.Doe@Example.com",
    "phone": "+1 (650) 555-1212",
    "first_name": "Jane",
    "last_name": "Doe",
    "city": "San Francisco",
    "zip": "94103",
    "country": "US",
    "external_id": "cust-0123456789",
}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def purchase_event() -> dict[str, Any]:
    return {
        "event_name": "Purchase",
        "event_time": 1767225600,
        "event_id": "purchase.ORD-1001",
        "action_source": "website",
        "event_source_url": "http://127.0.0.1:8000/thanks/ORD-1001",
        "user_data": {
            "client_ip_address": "127.0.0.1",
            "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "fbp": "fb.1.1730578362123.1234567890",
            "fbc": "fb.1.1730578362123.AbCdEf",
            # hashed upstream; with a customer given the SDK's own hashes replace it
            "em": [sha256_hex("someone.else@example.com")],
        },
        "custom_data": {
            "value": 25.0,
            "currency": "USD",
            "content_ids": ["sku-1", "sku-2"],
            "contents": [{"id": "sku-1", "quantity": 1, "item_price": 10.0},
                         {"id": "sku-2", "quantity": 1, "item_price": 15.0}],
            "content_type": "product",
            "num_items": 2,
            "order_id": "ORD-1001",
        },
    }


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class GraphStandIn:
    """Records each request; answers like Graph (a 400 for REJECT_PIXEL)."""

    url: str
    arrivals: list[Arrival] = field(default_factory=list)


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphStandIn]:
    arrivals: list[Arrival] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrivals.append(Arrival(self.command, self.path, dict(self.headers.items()), body))
            rejected = f"/{REJECT_PIXEL}/" in self.path
            answer = REJECT_ANSWER if rejected else OK_ANSWER
            self.send_response(400 if rejected else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield GraphStandIn(f"http://{host}:{port}", arrivals)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def transport() -> Iterator[NodeSdkTransport]:
    with NodeSdkTransport() as sender:
        yield sender


def test_purchase_with_customer_as_the_sdk_sends_it(graph, transport):
    before = len(graph.arrivals)
    status, answer = transport.post(graph.url, API_VERSION, PIXEL_ID, TOKEN, purchase_event(),
                                    CUSTOMER, "TEST4242", timeout=10)
    assert (status, json.loads(answer)) == (200, json.loads(OK_ANSWER))
    assert len(graph.arrivals) == before + 1
    arrival = graph.arrivals[-1]

    assert arrival.method == "POST"
    url = urlsplit(arrival.path)
    assert url.path == f"/{API_VERSION}/{PIXEL_ID}/events"
    headers = {name.lower(): value for name, value in arrival.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("fbbizsdk-nodejs-v")

    body = json.loads(arrival.body)
    # the token travels twice: in the query string and in the JSON body
    assert parse_qs(url.query) == {"access_token": [TOKEN]}
    assert body["access_token"] == TOKEN
    assert body["test_event_code"] == "TEST4242"
    assert body["id"] == PIXEL_ID  # the AdsPixel node's id rides along
    assert isinstance(body["data"], list) and len(body["data"]) == 1
    event = body["data"][0]
    assert isinstance(event, dict)  # an object, not a JSON string inside the JSON
    assert event["event_id"] == "purchase.ORD-1001"
    assert event["event_name"] == "Purchase"
    assert event["event_time"] == 1767225600
    assert event["action_source"] == "website"

    user_data = event["user_data"]
    assert user_data["em"] == [sha256_hex("jane.doe@example.com")]
    # digits only: spaces, brackets, dashes and the "+" go, the country code 1 stays
    assert user_data["ph"] == [sha256_hex("16505551212")]
    assert user_data["fn"] == [sha256_hex("jane")]
    assert user_data["ln"] == [sha256_hex("doe")]
    assert user_data["ct"] == [sha256_hex("sanfrancisco")]
    assert user_data["zp"] == [sha256_hex("94103")]
    assert user_data["country"] == [sha256_hex("us")]
    # the Node SDK sends external_id as given: it does not hash it
    assert user_data["external_id"] == ["cust-0123456789"]
    for key in ("em", "ph", "fn", "ln", "ct", "zp", "country"):
        assert all(len(value) == 64 and int(value, 16) >= 0 for value in user_data[key]), key
    assert user_data["client_ip_address"] == "127.0.0.1"
    assert user_data["client_user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert user_data["fbp"] == "fb.1.1730578362123.1234567890"
    assert user_data["fbc"] == "fb.1.1730578362123.AbCdEf"

    custom_data = event["custom_data"]
    assert custom_data["value"] == 25.0
    assert custom_data["currency"] == "USD"
    assert custom_data["content_ids"] == ["sku-1", "sku-2"]
    assert custom_data["contents"][0] == {"id": "sku-1", "quantity": 1, "item_price": 10.0}
    assert custom_data["order_id"] == "ORD-1001"


def test_hashed_user_data_passes_through_without_a_customer(graph, transport):
    event = purchase_event()
    status, _ = transport.post(graph.url, API_VERSION, PIXEL_ID, TOKEN, event, None, None,
                               timeout=10)
    assert status == 200
    body = json.loads(graph.arrivals[-1].body)
    assert body["test_event_code"] is None
    assert body["data"][0]["user_data"]["em"] == event["user_data"]["em"]


def test_graph_error_keeps_status_and_body(graph, transport):
    status, answer = transport.post(graph.url, API_VERSION, REJECT_PIXEL, TOKEN,
                                    purchase_event(), None, None, timeout=10)
    assert status == 400
    assert json.loads(answer) == json.loads(REJECT_ANSWER)


def test_connection_error_has_no_status(transport):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status, message = transport.post(f"http://127.0.0.1:{port}", API_VERSION, PIXEL_ID, TOKEN,
                                     purchase_event(), None, None, timeout=5)
    assert status is None
    assert b"ECONNREFUSED" in message
    assert TOKEN.encode() not in message


def test_concurrent_posts_get_their_own_replies(graph, transport):
    pixels = [PIXEL_ID, REJECT_PIXEL] * 4
    results: dict[int, int | None] = {}

    def post(index: int, pixel: str) -> None:
        event = purchase_event()
        event["event_id"] = f"purchase.ORD-{index}"
        results[index], _ = transport.post(graph.url, API_VERSION, pixel, TOKEN, event,
                                           CUSTOMER, None, timeout=10)

    threads = [threading.Thread(target=post, args=(i, pixel)) for i, pixel in enumerate(pixels)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert results == {i: 200 if pixel == PIXEL_ID else 400 for i, pixel in enumerate(pixels)}
