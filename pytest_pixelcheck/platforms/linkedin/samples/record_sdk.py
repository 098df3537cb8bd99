"""Record what LinkedIn's official Python client puts on the wire for the
Conversions API: ``linkedin-api-client``'s ``RestliClient.create`` and
``batch_create`` on ``/conversionEvents``, against a local capture server.

    .venv/bin/pip install linkedin-api-client==0.3.0
    .venv/bin/python pytest_pixelcheck/platforms/linkedin/samples/record_sdk.py

Writes ``server-sdk-create.json``, ``server-sdk-batch-create.json`` and
``server-sdk-unversioned-v2.json`` (``create`` without ``version_string``): the method,
path, headers in the order the client sent them and the body bytes, with the local
origin turned into LinkedIn's (as a proxied backend addresses it) and the token
replaced by ``REDACTED``. The client has no base-URL setting; the example shop's
tracker gives it a ``requests`` session that rewrites LinkedIn's origin, and so does
this script. ``build_server_samples.py`` derives the bad variants from these.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOKEN = "li-recording-token-0123456789"
#: a fixed clock: the event happened one second before it arrived
HAPPENED_MS = 1795910491000
ARRIVAL = 1795910492.0
LINKEDIN_VERSION = "202609"  # active on the arrival date (2026-11)
ORIGIN = "https://api.linkedin.com"


def conversion(rule: str, event_id: str, email_hash: str) -> dict[str, Any]:
    return {
        "conversion": f"urn:lla:llaPartnerConversion:{rule}",
        "conversionHappenedAt": HAPPENED_MS,
        "conversionValue": {"currencyCode": "USD", "amount": "25.0"},
        "eventId": event_id,
        "user": {
            "userIds": [
                {"idType": "SHA256_EMAIL", "idValue": email_hash},
                {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
                 "idValue": "AQFpixelcheckClickId-0123456789"},
                {"idType": "PLAINTEXT_IP_ADDRESS", "idValue": "203.0.113.7"},
            ],
            "userInfo": {"firstName": "John", "lastName": "Doe", "countryCode": "US"},
        },
    }


class _Capture(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.seen.append({"method": "POST", "path": self.path,
                          "headers": [[k, v] for k, v in self.headers.items()],
                          "body": body.decode("utf-8")})
        batch = self.headers.get("X-RestLi-Method") == "BATCH_CREATE"
        answer = json.dumps({"elements": [{"status": 201}] * len(
            json.loads(body)["elements"])}).encode() if batch else b""
        self.send_response(200 if batch else 201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    import requests
    from linkedin_api.clients.restli.client import RestliClient

    from pytest_pixelcheck.platforms.linkedin.pii_rules import sha256_hex

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = f"http://127.0.0.1:{server.server_address[1]}"

    class Rebased(requests.Session):
        def send(self, request: Any, **kwargs: Any) -> Any:
            request.url = request.url.replace(ORIGIN, local, 1)
            return super().send(request, **kwargs)

    client = RestliClient()
    client.session = Rebased()
    email = sha256_hex("john.doe@example.com")
    created = client.create(resource_path="/conversionEvents",
                            entity=conversion("8200004", "purchase.ORD-1", email),
                            access_token=TOKEN, version_string=LINKEDIN_VERSION)
    batch = client.batch_create(resource_path="/conversionEvents",
                                entities=[conversion("8200004", "purchase.ORD-1", email),
                                          conversion("8200003", "initiatecheckout.1a2b3c",
                                                     email)],
                                access_token=TOKEN, version_string=LINKEDIN_VERSION)
    # without version_string the client falls back to the unversioned /v2 base
    unversioned = client.create(resource_path="/conversionEvents",
                                entity=conversion("8200004", "purchase.ORD-1", email),
                                access_token=TOKEN)
    server.shutdown()
    assert created.status_code == 201 and batch.status_code == 200, (created, batch)
    assert unversioned.status_code == 201, unversioned
    client_name = f"linkedin-api-client {version('linkedin-api-client')}"
    for stem, seen, method in (("server-sdk-create", _Capture.seen[0], "create"),
                               ("server-sdk-batch-create", _Capture.seen[1], "batch_create"),
                               ("server-sdk-unversioned-v2", _Capture.seen[2], "create")):
        headers = [[k, "Bearer REDACTED" if k.lower() == "authorization" else
                    ("api.linkedin.com" if k.lower() == "host" else v)]
                   for k, v in seen["headers"]]
        body = seen["body"]
        # undeclared rules: "conversion <rule id>" (see rules.py)
        events = [{"event_name": "conversion " + e["conversion"].rsplit(":", 1)[1],
                   "event_id": e["eventId"], "pixel_id": None}
                  for e in (json.loads(body).get("elements") or [json.loads(body)])]
        unversioned = seen["path"].startswith("/v2/")
        version_arg = "no version_string" if unversioned else \
            f"version_string='{LINKEDIN_VERSION}'"
        status = 404 if unversioned else (200 if method == "batch_create" else 201)
        sample = {
            "kind": "server",
            "source": f"{client_name} RestliClient.{method}(resource_path='/conversionEvents', "
                      f"{version_arg}), recorded on the wire by samples/record_sdk.py; token "
                      "REDACTED" + ("; LinkedIn serves conversionEvents on /rest only, so the "
                                    "sink answers 404" if unversioned else ""),
            "request": {"method": seen["method"], "url": ORIGIN + seen["path"],
                        "headers": headers, "body": body, "arrival_time": ARRIVAL},
            "expect": {"events": events, "status": status, "rejected": unversioned},
        }
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
