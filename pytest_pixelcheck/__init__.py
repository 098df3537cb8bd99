"""pytest-pixelcheck: prove that browser pixel events and server conversion API
events deduplicate, in a real browser, through a real proxy and sink."""

from .assertions import (
    PixelcheckAssertionError,
    assert_deduplicated,
    assert_exactly_once,
    assert_no_duplicate_triggers,
    assert_pii_hashed,
    assert_server_covers_blocked,
    expect_findings,
)
from .capture import Pixelcheck, WaitTimeout
from .diagnosis import DiagnosisSettings
from .events import CapturedRequest, Event, EventStore
from .findings import CATALOGUE, Finding
from .harness import Harness, HarnessConfig
from .matching import MatchResult, Pair, match_events
from .pii import (
    Customer,
    MatchKeyCoverage,
    check_pii,
    coverage_table,
    hash_value,
    mask,
    match_key_coverage,
    normalize,
)
from .spa import assert_pageview_per_route

__all__ = [
    "CATALOGUE",
    "CapturedRequest",
    "Customer",
    "DiagnosisSettings",
    "Event",
    "EventStore",
    "Finding",
    "Harness",
    "HarnessConfig",
    "MatchKeyCoverage",
    "MatchResult",
    "Pair",
    "Pixelcheck",
    "PixelcheckAssertionError",
    "WaitTimeout",
    "assert_deduplicated",
    "assert_exactly_once",
    "assert_no_duplicate_triggers",
    "assert_pageview_per_route",
    "assert_pii_hashed",
    "assert_server_covers_blocked",
    "expect_findings",
    "check_pii",
    "coverage_table",
    "hash_value",
    "mask",
    "match_events",
    "match_key_coverage",
    "normalize",
]

__version__ = "0.1.0"
