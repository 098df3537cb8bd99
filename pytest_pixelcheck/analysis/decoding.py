"""Decoding requests into engine rows through each platform's own decoder, a batch at
a time (in worker processes when there are many), so the engine receives columns in
bulk instead of being fed one row at a time.

Each row keeps where it came from (file, line, position in the request), so the few
events a report explains can be decoded again in full later.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from .. import platforms
from ..artifacts import CAPTURE_FORMAT
from ..diagnosis import _ids
from ..events import CapturedRequest, Event
from ..matching import _key, _merges, accepted
from .fastpath import key_text
from .reading import UnreadableLine, parse_line

#: the capture format's name, safe to put in SQL
CAPTURE_FORMAT_SQL = CAPTURE_FORMAT.replace("'", "")

#: the engine's columns, in spool order
COLUMNS: dict[str, str] = {
    "file_no": "INTEGER", "line_no": "BIGINT", "part": "INTEGER",
    "platform": "VARCHAR", "source": "VARCHAR", "pixel_id": "VARCHAR",
    "event_name": "VARCHAR", "event_id": "VARCHAR", "dedup_key": "VARCHAR",
    "event_time": "DOUBLE", "arrival_time": "DOUBLE", "value": "DOUBLE",
    "currency": "VARCHAR", "status": "INTEGER", "state": "VARCHAR", "error": "VARCHAR",
    # what tells two conversions apart (diagnosis._identity): the engine hashes them
    "order_id": "VARCHAR", "content_ids": "VARCHAR", "page": "VARCHAR",
}
#: NULL in the spool: bare, while every text is quoted (so a text that reads ``\\N`` stays
#: text; the spool is read with ``allow_quoted_nulls = false``)
NULL = "\\N"

#: what a decoded event is to the matcher: merged by key, or set aside and why
OK, NO_KEY, UNDECODABLE, REJECTED, UNMERGED, MIRROR = (
    "ok", "nokey", "undecodable", "rejected", "unmerged", "mirror")
NOT_TRACKING = "not a pixel hit or conversion API call"


def state_of(event: Event) -> str:
    """The same sorting match_events does, one event at a time."""
    if not event.decoded:
        return UNDECODABLE
    if event.extra.get("mirror_of"):
        return MIRROR
    if not accepted(event):
        return REJECTED
    if not _merges(event):
        return UNMERGED
    return OK if _key(event) is not None else NO_KEY


def decode(request: CapturedRequest, source: str | None) -> list[Event]:
    try:
        return platforms.decode_request(request, source)
    except Exception as exc:  # one odd line must not end the analysis
        return [Event("unknown", "server" if source == "server" else "browser", None, None,
                      None, None, request.arrival_time, raw=request,
                      error=f"decoder crashed: {exc}")]


def identity_parts(event: Event) -> list[str | None]:
    """Order id, content ids and page (without query or fragment), as the engine stores
    them: with the value, what tells two conversions apart (``diagnosis._identity``),
    so a server call re-sent under a new id shares them with the original."""
    order = event.custom_data.get("order_id")
    page = (event.page_url or "").split("?", 1)[0].split("#", 1)[0]
    return [_text(order), "\x1f".join(_ids(event.custom_data)), page]


def spool_line(row: Sequence[str | None]) -> str:
    """One row as a spool CSV line: texts quoted, None as the bare NULL marker (the csv
    module cannot quote some fields and leave others bare)."""
    return ",".join(NULL if field is None else '"' + field.replace('"', '""') + '"'
                    for field in row) + "\n"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(value: Any) -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return repr(number) if number == number and abs(number) != float("inf") else None


def rows_of(file_no: int, line_no: int, events: Sequence[Event]) -> list[list[str | None]]:
    out = []
    for part, event in enumerate(events):
        key = _key(event) if event.decoded else None
        status = event.raw.response_status if event.raw is not None else None
        out.append([
            str(file_no), str(line_no), str(part), event.platform, event.source,
            _text(event.pixel_id), _text(event.event_name), _text(event.event_id),
            _text(key_text(key)),
            _number(event.event_time), repr(float(event.arrival_time)),
            _number(event.custom_data.get("value")),
            _text(event.custom_data.get("currency")),
            _text(status), state_of(event), _text(event.error), *identity_parts(event),
        ])
    return out


class BatchResult:
    """Rows of one batch, and what did not become a row, counted by reason."""

    def __init__(self) -> None:
        self.rows: list[list[str | None]] = []
        self.unread: Counter[str] = Counter()
        #: first line number per unread reason, to point at an example
        self.unread_at: dict[str, int] = {}

    def skip(self, reason: str, line_no: int) -> None:
        self.unread[reason] += 1
        self.unread_at.setdefault(reason, line_no)


def decode_lines(file_no: int, batch: Sequence[tuple[int, str]]) -> BatchResult:
    """Rows of a batch of capture or backend-log lines (a worker process runs this)."""
    out = BatchResult()
    for line_no, line in batch:
        try:
            source, request = parse_line(line)
        except UnreadableLine as exc:
            out.skip(exc.reason, line_no)
            continue
        events = decode(request, source)
        if not events:
            out.skip(NOT_TRACKING, line_no)
        out.rows += rows_of(file_no, line_no, events)
    return out


def decode_requests(file_no: int,
                    requests: Iterable[tuple[int, str | None, CapturedRequest]]) -> BatchResult:
    """Rows of requests already read (a HAR file's entries)."""
    out = BatchResult()
    for line_no, source, request in requests:
        events = decode(request, source)
        if not events:
            out.skip(NOT_TRACKING, line_no)
        out.rows += rows_of(file_no, line_no, events)
    return out
