"""analyze's SQL shapes give exactly the rows the platforms' Python decoders give.

Every recorded sample of every platform, and a synthetic capture of every platform's
sales with faults, are analyzed twice: with the shapes, and with ``exact=True`` (every
line through the Python decoders). Each line a shape took must have the same engine row
both ways, and each shape must take at least one line (a shape nothing reaches is a
shape nobody tested).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_pixelcheck import platforms
from pytest_pixelcheck.analysis import synthetic
from pytest_pixelcheck.analysis.decoding import COLUMNS
from pytest_pixelcheck.analysis.engine import Engine
from pytest_pixelcheck.artifacts import CAPTURE_FORMAT


def _sample_lines() -> list[str]:
    out = []
    for platform in platforms.all_platforms():
        folder = platform.samples_dir
        if folder is None:
            continue
        for path in sorted(Path(folder).glob("*.json")):
            sample: Any = json.loads(path.read_text())
            request = sample.get("request") if isinstance(sample, dict) else None
            if not isinstance(request, dict) or "url" not in request:
                continue
            kind = sample.get("kind")
            out.append(json.dumps({"format": CAPTURE_FORMAT,
                                   "source": kind if kind in ("browser", "server") else None,
                                   "platform": platform.name, "request": request}))
    return out


def _rows(path: Path, exact: bool) -> tuple[dict[int, tuple[Any, ...]], set[int], set[int]]:
    with Engine(exact=exact, workers=1) as engine:
        engine.load([path], progress=False)
        names = ", ".join(COLUMNS)
        rows = engine.con.execute(f"SELECT {names} FROM events").fetchall()
        taken = {n for (n,) in engine.con.execute("SELECT line_no FROM fast_rows").fetchall()}
        shapes = {s for (s,) in engine.con.execute("SELECT DISTINCT shape FROM fast_rows")
                  .fetchall()}
    by_line: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_line.setdefault(row[1], []).append(row)
    return {n: tuple(sorted(r, key=repr)) for n, r in by_line.items()}, taken, shapes


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fastpath") / "capture.jsonl"
    faults = synthetic.Faults(id_suffix=0.1, missing_server=0.05, late_server=0.05,
                              truncated_server=0.05)
    lines = list(synthetic.lines(synthetic.Plan(700, faults=faults, days=9)))
    path.write_text("\n".join(_sample_lines() + lines) + "\n")
    return path


def _check(capture: Path) -> None:
    fast, taken, used = _rows(capture, exact=False)
    exact, none, _ = _rows(capture, exact=True)
    assert not none
    assert taken, "no shape took a line"
    differing = {n: (fast.get(n), exact.get(n)) for n in sorted(taken)
                 if fast.get(n) != exact.get(n)}
    assert not differing, "\n".join(f"line {n}:\n  sql    {f}\n  python {p}"
                                    for n, (f, p) in list(differing.items())[:5])
    # and the lines no shape took are the Python decoders' in both runs
    assert {n: r for n, r in fast.items() if n not in taken} == \
        {n: r for n, r in exact.items() if n not in taken}
    shapes = platforms.sql_shapes()
    unused = [f"{s.platform} {s.source} #{i}" for i, s in enumerate(shapes) if i not in used]
    assert not unused, f"shapes that took no line: {unused}"


@pytest.mark.parametrize("name", [p.name for p in platforms.all_platforms() if p.sql_shapes])
def test_a_platforms_shapes_decode_as_its_python_decoder_does(
        name: str, capture: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = list(platforms.get(name).sql_shapes)
    monkeypatch.setattr(platforms, "sql_shapes", lambda: own)
    _check(capture)


def test_all_shapes_together_decode_as_the_python_decoders_do(capture: Path) -> None:
    _check(capture)


def test_a_file_duckdb_cannot_read_is_read_in_python_and_said(capture: Path,
                                                               tmp_path: Path) -> None:
    broken = tmp_path / "latin1.jsonl"
    broken.write_bytes(capture.read_bytes() + b"caf\xe9 is not UTF-8\n")
    with Engine(workers=1) as engine:
        summary = engine.load([broken], progress=False)
        rows = engine.con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert summary.fast_rows == 0 and rows > 0
    assert any("read line by line in Python" in note for note in summary.notes)
    assert summary.unread["not a JSON line"] == 1


def test_row_numbers_are_the_files_line_numbers(capture: Path, tmp_path: Path) -> None:
    """The lines go into DuckDB in file order: a finding's example points at its line."""
    blank_first = tmp_path / "capture.jsonl"
    blank_first.write_text("\n\n" + capture.read_text())
    texts = blank_first.read_text().splitlines()
    with Engine(workers=1) as engine:
        engine.load([blank_first], progress=False)
        got = engine.con.execute("SELECT rowid + 1, line FROM lines_0 WHERE line IS NOT NULL"
                                 ).fetchall()
    assert got and all(texts[n - 1] == line for n, line in got)


def test_the_command_says_how_many_events_sql_decoded_and_exact_turns_it_off(
        capture: Path) -> None:
    import subprocess
    import sys

    def analyze(*extra: str) -> str:
        done = subprocess.run([sys.executable, "-m", "pytest_pixelcheck.cli", "analyze",
                               str(capture), *extra], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode in (0, 1), done.stderr
        return done.stdout

    fast, exact = analyze(), analyze("--exact")
    assert "decoded in SQL)" in fast.splitlines()[0]
    assert "decoded in SQL" not in exact
    # the same figures either way
    assert fast.splitlines()[1:] == exact.splitlines()[1:]


def test_the_spool_keeps_a_text_that_reads_like_its_null_marker(tmp_path: Path) -> None:
    """Rows decoded in Python reach DuckDB through a CSV spool whose NULL marker is \\N:
    an event id that is literally \\N (or empty, or with quotes and commas) must stay
    that text, and only a missing value may become NULL."""
    import duckdb

    from pytest_pixelcheck.analysis import sql
    from pytest_pixelcheck.analysis.decoding import NULL, spool_line

    texts = ["\\N", "", 'a "quoted", id', "line\nbreak"]
    rows = []
    for n, text in enumerate([*texts, None]):
        row: list[str | None] = [None] * len(COLUMNS)
        row[:3] = ["0", str(n), "0"]
        row[list(COLUMNS).index("event_id")] = text
        rows.append(row)
    spool = tmp_path / "spool.csv"
    spool.write_text("".join(map(spool_line, rows)), encoding="utf-8")
    con = duckdb.connect()
    con.execute(sql.create_tables(COLUMNS))
    con.execute(sql.insert_spool(str(spool), COLUMNS, NULL))
    got = [e for (e,) in con.execute("SELECT event_id FROM events ORDER BY line_no").fetchall()]
    assert got == [*texts, None]


def test_a_line_that_names_a_key_twice_reads_as_python_reads_it(tmp_path: Path) -> None:
    """JSON with a repeated key: DuckDB reads the first, Python the last. A capture line
    (or its request) that repeats a key goes to the Python decoders."""
    lines = []
    for line in _sample_lines():
        record = json.loads(line)
        request = json.dumps(record["request"])
        # first a value Python will overwrite, then the line's own
        lines.append('{"test_id": "first", ' + line[1:])
        lines.append(line.replace(request, '{"arrival_time": 1.0, ' + request[1:]))
    path = tmp_path / "repeated.jsonl"
    path.write_text("\n".join(lines) + "\n")
    fast, taken, _ = _rows(path, exact=False)
    exact, _, _ = _rows(path, exact=True)
    assert fast == exact
