"""pytest-pixelcheck: prove that browser pixel events and server conversion API
events deduplicate, in a real browser, through a real proxy and sink."""

from .assertions import (
    PixelcheckAssertionError,
    assert_deduplicated,
    assert_no_duplicate_triggers,
)
from .capture import Pixelcheck, WaitTimeout
from .events import CapturedRequest, Event, EventStore
from .findings import CATALOGUE, DiagnosisSettings, Finding
from .harness import Harness, HarnessConfig
from .matching import MatchResult, Pair, match_events

__all__ = [
    "CATALOGUE",
    "CapturedRequest",
    "DiagnosisSettings",
    "Event",
    "EventStore",
    "Finding",
    "Harness",
    "HarnessConfig",
    "MatchResult",
    "Pair",
    "Pixelcheck",
    "PixelcheckAssertionError",
    "WaitTimeout",
    "assert_deduplicated",
    "assert_no_duplicate_triggers",
    "match_events",
]

__version__ = "0.1.0"
