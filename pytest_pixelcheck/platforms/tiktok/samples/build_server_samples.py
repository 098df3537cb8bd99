"""Build the server samples from the requests TikTok's Python SDK put on the wire
(``fixtures/tiktok/clients``, recorded by ``record_tiktok_sdk.py``), plus bad variants
of them. Offline, no SDK needed:

    .venv/bin/python pytest_pixelcheck/platforms/tiktok/samples/build_server_samples.py

The recorder's URL (``http://127.0.0.1:<port>``) becomes TikTok's own origin, as a
proxied backend addresses it; everything else (headers in order, body bytes, the
``REDACTED`` token) stays as recorded. ``arrival_time`` is one second after the
event, so the 7-day age check gives the same answer on any day.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FIXTURES = HERE.parents[3] / "fixtures" / "tiktok" / "clients"
ORIGIN = "https://business-api.tiktok.com"
SDK = "tiktok-business-api-sdk-1.0.1"


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{SDK}-{name}.json").read_text(encoding="utf-8"))


def _headers(recorded: list[list[str]], body: str) -> list[list[str]]:
    out = []
    for key, value in recorded:
        if key.lower() == "host":
            value = "business-api.tiktok.com"
        elif key.lower() == "content-length":
            value = str(len(body.encode()))
        out.append([key, value])
    return out


def _sample(source: str, fixture: dict[str, Any], body_text: str, arrival: float,
            expect: dict[str, Any], headers: list[list[str]] | None = None) -> dict[str, Any]:
    return {
        "kind": "server",
        "source": source,
        "request": {
            "method": fixture["method"],
            "url": ORIGIN + fixture["path"],
            "headers": headers if headers is not None else _headers(fixture["headers"],
                                                                     body_text),
            "body": body_text,
            "arrival_time": arrival,
        },
        "expect": expect,
    }


def _purchase(code: int = 0, **overrides: Any) -> dict[str, Any]:
    expect = {"events": [{"event_name": "CompletePayment", "event_id": "purchase.ORD-1",
                          "pixel_id": "CPIXEL123"}], "status": 200, "code": code,
              "rejected": False}
    expect.update(overrides)
    return expect


def main() -> None:
    samples: dict[str, dict[str, Any]] = {}
    track = _fixture("pixel-track")
    samples["server-sdk-1.0-pixel-track"] = _sample(
        f"{SDK} EventCallbackApi.pixel_track (Events API 1.0), recorded on the wire by "
        "fixtures/tiktok/clients/record_tiktok_sdk.py; token REDACTED",
        track, track["body_text"], 1795910491.0, _purchase())
    batch = _fixture("pixel-batch")
    samples["server-sdk-1.0-pixel-batch"] = _sample(
        f"{SDK} EventCallbackApi.pixel_batch (Events API 1.0), recorded on the wire by "
        "fixtures/tiktok/clients/record_tiktok_sdk.py; token REDACTED",
        batch, batch["body_text"], 1795910492.0, _purchase())
    v2 = _fixture("event-track-via-call_api")
    samples["server-2.0-event-track"] = _sample(
        f"Events API 2.0 through {SDK}'s ApiClient.call_api (headers and serialisation "
        "are the SDK's; the body follows TikTok's documented 2.0 shape), recorded by "
        "fixtures/tiktok/clients/record_tiktok_sdk.py; token REDACTED",
        v2, v2["body_text"], 1795910492.0, _purchase())

    unhashed = copy.deepcopy(v2["body"])
    unhashed["data"][0]["user"]["email"] = "john.doe@example.com"
    text = json.dumps(unhashed)
    samples["server-2.0-unhashed-email"] = _sample(
        "the 2.0 sample with user.email in the clear (built from server-2.0-event-track)",
        v2, text, 1795910492.0, _purchase(40062, rejected=True))

    stale = copy.deepcopy(v2["body"])
    stale["data"][0]["event_time"] -= 8 * 86400
    text = json.dumps(stale)
    samples["server-2.0-stale-event-time"] = _sample(
        "the 2.0 sample with event_time 8 days before arrival (built from "
        "server-2.0-event-track); TikTok's code for this is unconfirmed",
        v2, text, 1795910492.0, _purchase(40002, rejected=True))

    headers = [[k, "Bearer REDACTED"] if k == "Access-Token" else [k, v]
               for k, v in _headers(v2["headers"], v2["body_text"])]
    headers = [["Authorization", v] if k == "Access-Token" else [k, v] for k, v in headers]
    samples["server-2.0-token-in-authorization"] = _sample(
        "the 2.0 sample with the token sent as 'Authorization: Bearer' instead of the "
        "Access-Token header (built from server-2.0-event-track)",
        v2, v2["body_text"], 1795910492.0, _purchase(40104, rejected=True), headers)

    broken = v2["body_text"][:200]
    samples["server-2.0-truncated-json"] = _sample(
        "the 2.0 sample cut after 200 bytes (built from server-2.0-event-track)",
        v2, broken, 1795910492.0,
        {"events": [{"event_name": None, "event_id": None, "pixel_id": None}],
         "status": 200, "code": 40002, "rejected": True, "undecodable": True})

    for stem, sample in samples.items():
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
