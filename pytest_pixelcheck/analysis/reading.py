"""Reading analyze's inputs as a stream of requests: pixelcheck capture JSONL (plain or
gzip), backend logs (one JSON payload per line), and HAR files.

Lines are handed out in batches of raw text so decoding can run in worker processes;
only a HAR file, one JSON document, is read whole.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..artifacts import CAPTURE_FORMAT, _from_backend_log, _from_har
from ..events import CapturedRequest

#: what a line that yields no request is counted as
NOT_JSON = "not a JSON line"
NOT_A_REQUEST = "a pixelcheck capture line whose request is not readable"
NOT_RECOGNISED = "neither a pixelcheck capture line nor a server payload any platform recognises"


class UnreadableLine(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + (f" ({detail})" if detail else ""))
        self.reason = reason


def open_text(path: str | Path) -> IO[str]:
    """The file as text, gunzipped when it starts with gzip's magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def kind_of(path: str | Path) -> str:
    """"parquet", "har" or "lines"."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        return "parquet"
    with open_text(path) as text:
        head = text.read(400).lstrip()
    return "har" if head.startswith("{") and '"log"' in head[:200] else "lines"


def parse_line(line: str) -> tuple[str | None, CapturedRequest]:
    """(source hint, request) of one capture or backend-log line."""
    try:
        record: Any = json.loads(line)
    except ValueError as exc:
        raise UnreadableLine(NOT_JSON, exc.msg) from None
    if isinstance(record, dict) and record.get("format") == CAPTURE_FORMAT:
        try:
            return record.get("source"), CapturedRequest.from_dict(record["request"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UnreadableLine(NOT_A_REQUEST, f"{type(exc).__name__}: {exc}"[:200]) from None
    request = _from_backend_log(record) if isinstance(record, dict) else None
    if request is None:
        raise UnreadableLine(NOT_RECOGNISED)
    return "server", request


def line_batches(path: str | Path, size: int) -> Iterator[list[tuple[int, str]]]:
    """(line number, text) of the non-empty lines, ``size`` at a time."""
    batch: list[tuple[int, str]] = []
    with open_text(path) as text:
        for number, line in enumerate(text, 1):
            line = line.strip()
            if line:
                batch.append((number, line))
                if len(batch) >= size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def har_requests(path: str | Path) -> list[tuple[int, str | None, CapturedRequest]]:
    with open_text(path) as text:
        data = json.load(text)
    return [(number, source, request)
            for number, (source, request) in enumerate(_from_har(data), 1)]


def first_line_problem(path: str | Path) -> str | None:
    """Why a lines file is not one analyze reads (its first line says), or None."""
    for number, line in next(line_batches(path, 1), []):
        try:
            parse_line(line)
        except UnreadableLine as exc:
            return f"{path}:{number}: {exc}"
    return None
