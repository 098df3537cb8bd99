"""Loading recorded requests from fixtures/."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_pixelcheck.events import CapturedRequest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def recorded(name: str) -> CapturedRequest:
    """``recorded("meta/server_json_purchase")`` -> the request as captured."""
    return CapturedRequest.from_dict(json.loads((FIXTURES / f"{name}.json").read_text()))
