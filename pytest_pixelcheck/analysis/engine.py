"""The analyze engine: decoded rows in DuckDB, matched and counted there, and only the
conversions that need explaining decoded again in full for the diagnosis.

DuckDB keeps the rows in a database file of its own temporary folder, under a memory
limit, so a file larger than memory is streamed through and spilled rather than held.
The SQL it runs is in ``sql.py``, readable on its own (docs/analyze-at-scale.md shows
how to run it on a warehouse).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import duckdb

from .. import platforms
from ..artifacts import capture_lines
from ..diagnosis import DiagnosisSettings, diagnose
from ..events import Event
from ..findings import Finding
from ..matching import EventNameStats, MatchResult, match_events
from . import fastpath, sql
from .decoding import COLUMNS, NULL, BatchResult, decode, decode_lines, decode_requests, spool_line
from .reading import (
    UnreadableLine,
    first_line_problem,
    har_requests,
    kind_of,
    line_batches,
    parse_line,
)

#: below this many rows every event is decoded again and diagnosed in full, exactly as
#: the pytest plugin does; above it only the conversions the SQL marks as problems
FULL_DIAGNOSIS_ROWS = 50_000
BATCH_LINES = 5_000
#: above FULL_DIAGNOSIS_ROWS, about this many problem rows are diagnosed (a sample)
SAMPLE_ROWS = 20_000
#: rows from a Parquet export get line numbers of their own: file * this + line
_PARQUET_LINE_BASE = 1 << 32


@dataclass
class PeriodReport:
    """One period's (a day's, an hour's, or the whole input's) figures and findings."""

    period: str
    stats: list[EventNameStats]
    #: the events diagnosed: every event of the period, or only the problem ones
    result: MatchResult
    findings: list[Finding]
    #: True when ``result`` holds every event of the period
    complete: bool
    answers: dict[str, int] = field(default_factory=dict)
    #: platform -> problem rows per diagnosed one, when the findings come from a sample
    #: of the problem rows (each finding then stands for that many); {}: no sample
    weights: dict[str | None, float] = field(default_factory=dict)

    def weight(self, platform: str | None) -> float:
        return self.weights.get(platform, 1.0)

    @property
    def sampled(self) -> bool:
        return any(w != 1.0 for w in self.weights.values())

    @property
    def rate(self) -> float | None:
        conversions = sum(s.conversions for s in self.stats)
        return sum(s.deduplicated for s in self.stats) / conversions if conversions else None

    def conversions(self, platform: str | None, event_name: str | None) -> int:
        return sum(s.conversions for s in self.stats
                   if s.platform == platform and s.event_name == (event_name or "<no name>"))


@dataclass
class LoadSummary:
    files: int = 0
    rows: int = 0
    #: lines or entries that gave no event, by reason, with an example place
    unread: Counter[str] = field(default_factory=Counter)
    unread_example: dict[str, str] = field(default_factory=dict)
    #: events dropped as already read from an earlier file
    overlap: int = 0
    #: undecodable events by platform and reason
    undecodable: list[tuple[str, str, int]] = field(default_factory=list)
    #: events decoded by the platforms' SQL shapes (the rest: their Python decoders)
    fast_rows: int = 0
    #: what the reader had to do differently, for the report
    notes: list[str] = field(default_factory=list)


class Progress:
    """Lines decoded so far, on stderr, for inputs large enough to wait for."""

    def __init__(self, total: int, label: str = "decoding", threshold: int = 500,
                 write: Callable[[str], Any] | None = None) -> None:
        import sys

        self.total, self.label = total, label
        self.enabled = total >= threshold
        self.tty = sys.stderr.isatty()
        self._write = write or sys.stderr.write
        self._last = -1
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        percent = min(self.done * 100 // max(self.total, 1), 100)
        step = percent if self.tty else percent // 25 * 25
        if step == self._last:
            return
        self._last = step
        bar = "#" * (percent // 4) + "." * (25 - percent // 4)
        end = "\r" if self.tty and self.done < self.total else "\n"
        self._write(f"{self.label} [{bar}] {self.done}/{self.total}{end}")


def count_lines(path: str | Path) -> int:
    """Non-empty-ish line count for the progress bar (newlines; cheap, in binary)."""
    from .reading import open_text

    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        with open_text(path) as text:
            return sum(1 for _ in text)
    count = 0
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 22):
            count += chunk.count(b"\n")
    return count


def _gzipped(path: Path) -> bool:
    with open(path, "rb") as probe:
        return probe.read(2) == b"\x1f\x8b"


def _fetched(cursor: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[int, str]]]:
    """(line number, text) batches of a query's rows, blank lines left out."""
    while batch := cursor.fetchmany(BATCH_LINES):
        kept = [(int(n), str(line)) for n, line in batch if line.strip()]
        if kept:
            yield kept


class Engine:
    def __init__(self, settings: DiagnosisSettings | None = None, *, by: str = "all",
                 workers: int | None = None, memory_limit: str = "1GB",
                 full_diagnosis_rows: int = FULL_DIAGNOSIS_ROWS, exact: bool = False,
                 sample_rows: int | None = SAMPLE_ROWS) -> None:
        """``exact``: every line through the platforms' Python decoders (each server
        call validated against its schema), none through their SQL shapes.
        ``sample_rows``: above ``full_diagnosis_rows``, diagnose about this many of the
        problem rows (whole time buckets, the same share of every period and platform)
        and weigh each finding by its stratum; None: every problem row."""
        self.sample_rows = sample_rows
        self.settings = settings or DiagnosisSettings()
        self.fast = not exact
        self.by = by
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        self.full_diagnosis_rows = full_diagnosis_rows
        self._tmp = tempfile.TemporaryDirectory(prefix="pixelcheck-analyze-")
        self.folder = Path(self._tmp.name)
        self.con = duckdb.connect(str(self.folder / "analyze.duckdb"))
        self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.con.execute(f"SET temp_directory = '{self.folder / 'spill'}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("SET enable_progress_bar = false")  # stdout is the report's
        self.con.execute(sql.create_tables(COLUMNS))
        self.paths: list[Path] = []
        #: (file, line, events) of the problem rows, whose requests an export carries
        self._kept: list[tuple[int, int, list[Event]]] = []
        self.kinds: list[str] = []
        self.summary = LoadSummary()

    def close(self) -> None:
        self.con.close()
        self._tmp.cleanup()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- loading ------------------------------------------------------------------------

    def load(self, paths: Sequence[str | Path], progress: bool = True) -> LoadSummary:
        """Decode every file into the engine. A file that is no capture at all (its first
        line says so) raises ValueError before anything is read."""
        self.paths = [Path(p) for p in paths]
        self.kinds = [kind_of(p) for p in self.paths]
        platforms.forget_decoded()  # a pass over these files only
        for path, kind in zip(self.paths, self.kinds, strict=True):
            if kind == "lines":
                problem = first_line_problem(path)
                if problem:
                    raise ValueError(problem + " (add \"platform\": NAME to say whose it is)")
        # line files into the engine as they are (one column, file order), so the shapes
        # decode them in SQL; one DuckDB cannot read (not UTF-8) is read in Python
        for file_no, (path, kind) in enumerate(zip(self.paths, self.kinds, strict=True)):
            if kind == "lines":
                # in file order, so a row's number is its line's (costs time, not memory)
                self.con.execute("SET preserve_insertion_order = true")
                try:
                    self.con.execute(f"CREATE TABLE lines_{file_no} AS "
                                     + fastpath.read_lines(str(path), _gzipped(path)))
                except duckdb.Error as exc:
                    self.con.execute(f"DROP TABLE IF EXISTS lines_{file_no}")
                    self.kinds[file_no] = "lines-python"
                    self.summary.notes.append(
                        f"{path}: read line by line in Python, not by DuckDB "
                        f"({str(exc).splitlines()[0][:160]})")
                finally:
                    self.con.execute("SET preserve_insertion_order = false")
        total = sum(self._line_count(n) for n, k in enumerate(self.kinds)
                    if k.startswith("lines"))
        bar = Progress(total if progress else 0)
        shapes = platforms.sql_shapes() if self.fast else []
        for file_no, (path, kind) in enumerate(zip(self.paths, self.kinds, strict=True)):
            if kind == "parquet":
                self._load_parquet(file_no, path)
            elif kind == "har":
                self._spool(file_no, iter([decode_requests(file_no, har_requests(path))]))
            elif kind == "lines":
                table = f"lines_{file_no}"
                self.con.execute(fastpath.decode_statement(table, file_no, shapes))
                fast = self.con.execute("SELECT count(*) FROM fast_rows").fetchone()[0]
                self.summary.fast_rows += fast
                bar.add(fast)
                # the lines no shape took (an anti join: no scan of every line's text)
                rest = self.con.cursor().execute(
                    f"SELECT t.rowid + 1 AS n, t.line FROM {table} t "
                    "ANTI JOIN fast_rows f ON f.line_no = t.rowid + 1 "
                    "WHERE t.line IS NOT NULL ORDER BY n")
                self._spool(file_no, self._decoded_batches(file_no, _fetched(rest), bar))
            else:
                self._spool(file_no, self._decoded_batches(
                    file_no, line_batches(path, BATCH_LINES), bar))
        self.summary.files = len(self.paths)
        self.summary.overlap = self.con.execute(sql.finish_loading(
            len(self.paths) > 1, self.by, sql.max_ages(self.settings), self.settings)).fetchone()[0]
        self.summary.rows = self.con.execute("SELECT count(*) FROM ev").fetchone()[0]
        self.summary.undecodable = self.con.execute(sql.UNDECODABLE_BY_REASON).fetchall()
        return self.summary

    def _line_count(self, file_no: int) -> int:
        if self.kinds[file_no] == "lines":
            # (blank lines are NULL; a line of spaces counts here but gives nothing)
            return int(self.con.execute(
                f"SELECT count(line) FROM lines_{file_no}").fetchone()[0])
        return count_lines(self.paths[file_no])

    def _decoded_batches(self, file_no: int, batches: Iterator[list[tuple[int, str]]],
                         bar: Progress) -> Iterator[BatchResult]:
        first = next(batches, None)
        if first is None:
            return
        second = next(batches, None)
        if second is None or self.workers < 2:  # small: not worth starting workers
            for batch in (first, second, *batches) if second is not None else (first,):
                if batch is not None:
                    yield decode_lines(file_no, batch)
                    bar.add(len(batch))
            return
        # A bounded window of batches in flight: memory stays flat however long the file.
        # fork: the workers start without importing anything again, and from any script
        # (spawn would re-run an unguarded __main__); they never touch DuckDB
        method = "fork" if "fork" in get_all_start_methods() else "spawn"
        markers = platforms.ordered_markers()
        with ProcessPoolExecutor(self.workers, mp_context=get_context(method)) as pool:
            pending: list[tuple[int, Future[BatchResult]]] = []
            for batch in (first, second, *batches):
                if markers:
                    # a line whose decoding depends on the lines before it is decoded
                    # here, in file order: a worker sees only its own batches
                    ordered: list[tuple[int, str]] = []
                    parallel: list[tuple[int, str]] = []
                    for item in batch:
                        (ordered if any(m in item[1] for m in markers) else parallel
                         ).append(item)
                    if ordered:
                        yield decode_lines(file_no, ordered)
                        bar.add(len(ordered))
                        batch = parallel
                pending.append((len(batch), pool.submit(decode_lines, file_no, batch)))
                while len(pending) > 2 * self.workers:
                    size, future = pending.pop(0)
                    yield future.result()
                    bar.add(size)
            for size, future in pending:
                yield future.result()
                bar.add(size)

    def _spool(self, file_no: int, batches: Iterator[BatchResult]) -> None:
        """Rows into DuckDB through a CSV spool file: the engine reads it in bulk."""
        spool = self.folder / f"spool-{file_no}.csv"
        with open(spool, "w", newline="", encoding="utf-8") as out:
            for batch in batches:
                out.writelines(map(spool_line, batch.rows))
                for reason, count in batch.unread.items():
                    self.summary.unread[reason] += count
                    self.summary.unread_example.setdefault(
                        reason, f"{self.paths[file_no]}:{batch.unread_at[reason]}")
        self.con.execute(sql.insert_spool(str(spool), COLUMNS, NULL))
        spool.unlink()

    def _load_parquet(self, file_no: int, path: Path) -> None:
        pattern = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        self.con.execute(sql.insert_parquet(pattern, file_no, _PARQUET_LINE_BASE, COLUMNS))

    # --- matching, counting and diagnosing ----------------------------------------------

    def reports(self) -> list[PeriodReport]:
        """Per period: the counts from SQL, and the findings of the conversions that need
        explaining (all of them when the input is small enough)."""
        complete = self.summary.rows <= self.full_diagnosis_rows
        self.con.execute(sql.match_and_mark(self.settings, complete))
        stats: dict[str, list[EventNameStats]] = defaultdict(list)
        for period, *row in self.con.execute(sql.STATS).fetchall():
            stats[period].append(EventNameStats(*row))
        answers: dict[str, dict[str, int]] = defaultdict(lambda: {"2xx": 0, "4xx": 0,
                                                                  "5xx": 0})
        for period, klass, count in self.con.execute(sql.ANSWERS).fetchall():
            answers[period][klass] = count
        weights: dict[str, dict[str | None, float]] = defaultdict(dict)
        query = sql.PROBLEM_ROWS
        if not complete and self.sample_rows is not None:
            self.con.execute(sql.sample_problems(self.sample_rows))
            query = sql.SAMPLED_ROWS
            for period, platform, total, kept in self.con.execute(
                    sql.SAMPLE_WEIGHTS).fetchall():
                if kept:
                    weights[period][platform] = total / kept
        events = self._problem_events(query)
        by_period: dict[str, list[Event]] = defaultdict(list)
        for period, event in events:
            by_period[period].append(event)
        out = []
        for period in sorted(set(stats) | set(by_period)):
            result = match_events(by_period.get(period, []))
            findings = diagnose(result, self.settings)
            out.append(PeriodReport(period, stats.get(period, []), result, findings, complete,
                                    dict(answers[period]), weights.get(period, {})))
        return out

    def _problem_events(self, query: str = sql.PROBLEM_ROWS) -> list[tuple[str, Event]]:
        """The marked rows decoded again in full, each as its period's event."""
        wanted: dict[int, dict[int, dict[int, tuple[int, str]]]] = defaultdict(
            lambda: defaultdict(dict))
        for file_no, line_no, part, seq, period in self.con.execute(query).fetchall():
            wanted[file_no][line_no][part] = (seq, period)
        out: list[tuple[str, Event]] = []
        self._kept = []
        platforms.forget_decoded()  # decoded again from the first line wanted
        for file_no, lines in wanted.items():
            for line_no, events in self._redecode(file_no, lines):
                parts = lines[line_no]
                kept = []
                for part, event in enumerate(events):
                    if part in parts:
                        event.seq, period = parts[part]
                        out.append((period, event))
                        kept.append(event)
                if kept:
                    self._kept.append((file_no, line_no, kept))
        out.sort(key=lambda pe: pe[1].seq)
        return out

    def _redecode(self, file_no: int,
                  lines: dict[int, Any]) -> Iterator[tuple[int, list[Event]]]:
        kind = self.kinds[file_no]
        if kind == "lines":
            rows = self.con.cursor().execute(f"SELECT rowid + 1, line FROM lines_{file_no} "
                                    "WHERE rowid + 1 IN (SELECT unnest(?))", [sorted(lines)])
            for batch in _fetched(rows):
                for line_no, line in batch:
                    try:
                        source, request = parse_line(line.strip())
                    except UnreadableLine:
                        continue
                    yield line_no, decode(request, source)
        elif kind == "lines-python":
            for batch in line_batches(self.paths[file_no], BATCH_LINES):
                for line_no, line in batch:
                    if line_no in lines:
                        try:
                            source, request = parse_line(line)
                        except UnreadableLine:
                            continue
                        yield line_no, decode(request, source)
        elif kind == "har":
            for line_no, source, request in har_requests(self.paths[file_no]):
                if line_no in lines:
                    yield line_no, decode(request, source)
        else:
            for line_no, text in self.con.execute(sql.STORED_REQUESTS, [file_no]).fetchall():
                if line_no in lines:
                    source, request = parse_line(text)
                    yield line_no, decode(request, source)

    def _keep_requests(self, rows: list[tuple[int, int, str]]) -> None:
        """The decoded problem requests, as capture lines (secrets redacted, PII masked),
        for the Parquet export: what the findings need travels with the figures."""
        import csv

        spool = self.folder / "requests.csv"
        with open(spool, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(rows)
        self.con.execute(sql.insert_requests(str(spool)))
        spool.unlink()

    # --- dashboard and export -----------------------------------------------------------

    def series(self) -> list[tuple[Any, ...]]:
        """(period, platform, event name, browser, server, deduplicated, conversions,
        rate) rows."""
        return self.con.execute(sql.SERIES).fetchall()

    def export(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # the problem rows' requests, written (redacted and masked) only when exported
        rows = []
        for file_no, line_no, kept in self._kept:
            written = capture_lines(kept)
            if written:
                rows.append((file_no, line_no, written[0]))
        self._keep_requests(rows)
        self._kept = []
        self.con.execute(sql.export(str(folder), COLUMNS))
        return folder
