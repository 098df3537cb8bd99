"""Build the bad server samples from the requests LinkedIn's official Python client put
on the wire (``server-sdk-create.json``, ``server-sdk-batch-create.json``, recorded by
``record_sdk.py``). Offline, no client needed:

    .venv/bin/python pytest_pixelcheck/platforms/linkedin/samples/build_server_samples.py

Each variant changes one thing LinkedIn refuses and keeps everything else as
recorded (headers in order, the ``REDACTED`` token, the arrival one second after the
conversion, so the 90-day check and the LinkedIn-Version check give the same answer
on any day).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DAY_MS = 86400 * 1000


def _load(stem: str) -> dict[str, Any]:
    return json.loads((HERE / f"{stem}.json").read_text(encoding="utf-8"))


def _variant(base: dict[str, Any], source: str, status: int, *, body: Any = None,
             text: str | None = None, headers: list[list[str]] | None = None,
             undecodable: bool = False) -> dict[str, Any]:
    sample = copy.deepcopy(base)
    request = sample["request"]
    if text is None and body is not None:
        text = json.dumps(body)
    if text is not None:
        request["body"] = text
    request["headers"] = [[k, str(len(request["body"].encode())) if k.lower() ==
                           "content-length" else v] for k, v in (headers or request["headers"])]
    sample["source"] = source
    sample["expect"]["status"] = status
    sample["expect"]["rejected"] = True
    if undecodable:
        sample["expect"]["events"] = [{"event_name": None, "event_id": None, "pixel_id": None}]
        sample["expect"]["undecodable"] = True
    return sample


def main() -> None:
    create = _load("server-sdk-create")
    batch = _load("server-sdk-batch-create")
    event = json.loads(create["request"]["body"])
    built = "built from server-sdk-create (linkedin-api-client's own request)"
    samples: dict[str, dict[str, Any]] = {}

    unhashed = copy.deepcopy(event)
    unhashed["user"]["userIds"][0]["idValue"] = "john.doe@example.com"
    samples["server-unhashed-email"] = _variant(
        create, f"SHA256_EMAIL idValue sent as the plain email ({built})", 422, body=unhashed)

    stale = copy.deepcopy(event)
    stale["conversionHappenedAt"] -= 91 * DAY_MS
    samples["server-stale-conversion-time"] = _variant(
        create, f"conversionHappenedAt 91 days before arrival ({built}); LinkedIn's status "
                "and text for this are unconfirmed", 400, body=stale)

    seconds = copy.deepcopy(event)
    seconds["conversionHappenedAt"] //= 1000
    samples["server-conversion-time-in-seconds"] = _variant(
        create, f"conversionHappenedAt in Unix seconds, which LinkedIn reads as milliseconds "
                f"in 1970 ({built})", 400, body=seconds)

    no_ids = copy.deepcopy(event)
    del no_ids["user"]["userIds"]
    samples["server-missing-user-ids"] = _variant(
        create, f"user with userInfo but no userIds, answered 422 as dev.to/aleksuix reports "
                f"({built})", 422, body=no_ids)

    number = copy.deepcopy(event)
    number["conversionValue"]["amount"] = 25.0
    samples["server-amount-number"] = _variant(
        create, f"conversionValue.amount as a JSON number instead of a string ({built})", 422,
        body=number)

    no_version = [h for h in create["request"]["headers"] if h[0].lower() != "linkedin-version"]
    samples["server-missing-linkedin-version"] = _variant(
        create, f"the request without its LinkedIn-Version header ({built})", 400,
        headers=no_version)

    sunset = [[k, "202401" if k.lower() == "linkedin-version" else v]
              for k, v in create["request"]["headers"]]
    samples["server-sunset-linkedin-version"] = _variant(
        create, f"LinkedIn-Version 202401, sunset long before the arrival date ({built})", 426,
        headers=sunset)

    no_auth = [h for h in create["request"]["headers"] if h[0].lower() != "authorization"]
    samples["server-missing-authorization"] = _variant(
        create, f"the request without its Authorization header ({built})", 401,
        headers=no_auth)

    samples["server-truncated-json"] = _variant(
        create, f"the body cut after 120 bytes ({built})", 400,
        text=create["request"]["body"][:120], undecodable=True)

    elements = json.loads(batch["request"]["body"])
    del elements["elements"][1]["user"]["userIds"]
    mixed = _variant(batch, "the batch with its second element missing user.userIds (built "
                            "from server-sdk-batch-create, linkedin-api-client's own request); "
                            "Rest.li answers 200 with a status per element", 200, body=elements)
    mixed["expect"]["rejected"] = [False, True]
    samples["server-batch-one-bad-element"] = mixed

    for stem, sample in samples.items():
        path = HERE / f"{stem}.json"
        path.write_text(json.dumps(sample, indent=1) + "\n", encoding="utf-8")
        print("wrote", path.name)


if __name__ == "__main__":
    main()
