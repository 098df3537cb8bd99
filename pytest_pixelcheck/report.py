"""Text rendering of one test's events and findings, readable at 80 columns.

The table puts each conversion on one row: browser copy left, server copy
right, so a missing or mismatched side is visible at a glance.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .events import Event
from .findings import Finding
from .matching import EventNameStats, MatchResult
from .redact import redact

WIDTH = 80
_MARKS = {
    "pair": "=",
    "browser_only": "B",
    "server_only": "S",
    "extra": "D",
    "rejected": "R",
    "undecodable": "?",
    "blocked": "K",
}
LEGEND = "=merged  B browser only  S server only  D extra copy  R rejected  ?undecodable"


def wrap(text: str, width: int = WIDTH, **kwargs: Any) -> list[str]:
    """textwrap.wrap that never splits a finding code or a hyphenated word."""
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False,
                         **kwargs)


def shorten(text: str | None, width: int) -> str:
    """Cut in the middle so both ends of an id stay visible (suffixes matter)."""
    if text is None:
        return "-"
    text = text.replace("\n", "\\n")
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + text[-tail:]


def _value(event: Event | None) -> str:
    if event is None:
        return ""
    value = event.custom_data.get("value")
    if value is None:
        return "-"
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value)


@dataclass
class _Row:
    mark: str
    name: str
    browser: Event | None
    server: Event | None

    @property
    def first_seq(self) -> int:
        return min(e.seq for e in (self.browser, self.server) if e is not None)


def _rows(result: MatchResult) -> list[_Row]:
    rows = [_Row(_MARKS["pair"], p.browser.event_name or "", p.browser, p.server)
            for p in result.pairs]
    rows += [_Row(_MARKS["browser_only"], e.event_name or "", e, None)
             for e in result.browser_only]
    rows += [_Row(_MARKS["server_only"], e.event_name or "", None, e)
             for e in result.server_only]
    for dup in result.duplicates:
        for extra in dup.events[1:]:
            rows.append(_Row(_MARKS["extra"], extra.event_name or "",
                             extra if dup.source == "browser" else None,
                             extra if dup.source == "server" else None))
    rows += [_Row(_MARKS["rejected"], e.event_name or "", None, e) for e in result.rejected]
    rows += [_Row(_MARKS["blocked"], e.event_name or "", e if e.source == "browser" else None,
                  e if e.source == "server" else None) for e in result.blocked]
    for event in result.undecodable:
        rows.append(_Row(_MARKS["undecodable"], event.event_name or "<undecodable>",
                         event if event.source == "browser" else None,
                         event if event.source == "server" else None))
    rows.sort(key=lambda r: r.first_seq)
    return rows


def events_table(result: MatchResult, *, width: int = WIDTH, values: bool | None = None) -> str:
    """The test's events, browser and server side by side, paired rows aligned.

    Below 80 columns (inside pytest's ``E   `` prefix) the value column gives its
    room to the ids, which matter more there.
    """
    if not result.events:
        return "  (no events captured)"
    values = width >= WIDTH if values is None else values
    start = min(e.arrival_time for e in result.events)
    # name, browser id, time, server id, time, value (browser / server)
    id_width = max(12, (width - (43 if values else 33)) // 2)
    header = (f"  {'name':<16} {'browser id':<{id_width}} {'t':>5} "
              f"{'server id':<{id_width}} {'t':>5}" + (f" {'value b/s':>9}" if values else ""))
    lines = [header, "  " + "-" * (len(header) - 2)]

    def when(event: Event | None) -> str:
        if event is None:
            return ""
        offset = event.arrival_time - start
        return f"{offset:4.2f}s" if offset < 10 else f"{offset:4.1f}s"

    def ident(event: Event | None) -> str:
        if event is None:
            return "-"
        if event.error:
            return "<undecodable>"
        if event.event_id is None:
            return "<no id>"
        # repr only when the id has spaces or odd characters that matter
        shown = event.event_id if event.event_id.isprintable() and " " not in event.event_id \
            and event.event_id else repr(event.event_id)
        return shorten(shown, id_width)

    for row in _rows(result):
        value = f"{_value(row.browser) or '·'}/{_value(row.server) or '·'}"
        lines.append(
            f"{row.mark} {shorten(row.name, 16):<16} {ident(row.browser):<{id_width}} "
            f"{when(row.browser):>5} {ident(row.server):<{id_width}} {when(row.server):>5}"
            + (f" {shorten(value, 9):>9}" if values else "")
        )
    legend = LEGEND + ("  K blocked on purpose" if result.blocked else "")
    lines += wrap(legend.replace("  ", "\u00a0\u00a0").replace(" ", "\u00a0")
                  .replace("\u00a0\u00a0", "  "), width, initial_indent="  ",
                  subsequent_indent="  ")
    lines = [line.replace("\u00a0", " ") for line in lines]
    return "\n".join(lines)


def findings_text(findings: Sequence[Finding], *, width: int = WIDTH) -> str:
    """Findings, most severe first; one fix line for a run of the same code. Findings
    of several platforms are grouped under each platform's name, in order of their
    most severe finding."""
    if not findings:
        return "  no findings"
    by_platform: dict[str | None, list[Finding]] = {}
    for finding in findings:
        by_platform.setdefault(finding.platform, []).append(finding)
    if len(by_platform) > 1:
        parts = []
        for platform, group in by_platform.items():
            parts.append(f"  {_platform_title(platform)}:")
            parts.append(_findings_lines(group, width))
        return "\n".join(parts)
    return _findings_lines(findings, width)


def _platform_title(name: str | None) -> str:
    from . import platforms

    if name is None:
        return "the harness"
    try:
        return platforms.get(name).title or name
    except KeyError:
        return name


def _findings_lines(findings: Sequence[Finding], width: int) -> str:
    lines: list[str] = []
    for index, finding in enumerate(findings):
        head = f"{finding.severity.upper()} [{finding.code}] {finding.message}"
        lines += wrap(redact(head), width, initial_indent="  ",
                               subsequent_indent="      ")
        for detail in finding.details:
            lines += wrap(redact(detail), width, initial_indent="      ",
                                   subsequent_indent="        ")
        following = findings[index + 1] if index + 1 < len(findings) else None
        if following is not None and (following.code, following.fix) == \
                (finding.code, finding.fix):
            continue
        run = 1
        while index - run >= 0 and (findings[index - run].code, findings[index - run].fix) \
                == (finding.code, finding.fix):
            run += 1
        label = "fix: " if run == 1 else f"fix (the {run} above): "
        lines += wrap(label + finding.fix, width, initial_indent="      ",
                               subsequent_indent="        ")
    return "\n".join(lines)


def count_severities(findings: Iterable[Finding]) -> str:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    parts = [f"{n} {sev}{'s' if n != 1 else ''}" for sev in ("error", "warning", "info")
             if (n := counts.get(sev))]
    return ", ".join(parts) or "none"


def stats_table(stats: Iterable[EventNameStats], *, width: int = WIDTH) -> str:
    """Per platform and event name: browser, server, merged, extra copies,
    one-side-only, rate. Rows sorted by platform and name, so runs compare."""
    header = (f"  {'platform':<8} {'event':<18} {'browser':>7} {'server':>6} "
              f"{'dedup':>5} {'extra':>5} {'b-only':>6} {'s-only':>6} {'rate':>5}")
    lines = [header, "  " + "-" * (len(header) - 2)]
    for row in sorted(stats, key=lambda s: (s.platform, s.event_name)):
        rate = "-" if row.dedup_rate is None else f"{row.dedup_rate:.0%}"
        lines.append(
            f"  {row.platform:<8} {shorten(row.event_name, 18):<18} {row.browser:>7} "
            f"{row.server:>6} {row.deduplicated:>5} {row.extra:>5} {row.browser_only:>6} "
            f"{row.server_only:>6} {rate:>5}"
        )
    return "\n".join(lines)


def test_report(result: MatchResult, findings: Sequence[Finding], *, title: str = "") -> str:
    parts = []
    if title:
        parts.append(title)
    parts.append("events captured in this test:")
    parts.append(events_table(result))
    parts.append(f"findings ({count_severities(findings)}):")
    parts.append(findings_text(findings))
    return "\n".join(parts)


def session_summary(report: dict[str, Any], *, verbose: bool = False) -> str:
    """The end-of-run summary: platform x event table, findings by code, sink answers;
    with ``verbose``, one line per test as well."""
    summary = report["summary"]
    rows = [EventNameStats(**{k: v for k, v in row.items() if k != "dedup_rate"})
            for row in summary["by_event"]]
    rate = summary["dedup_rate"]
    lines = [stats_table(rows),
             f"  total: {summary['browser_events']} browser, {summary['server_events']} "
             f"server, {summary['deduplicated']} deduplicated"
             + (f", dedup rate {rate:.1%}" if rate is not None else "")
             + f" over {summary['tests'] - summary.get('set_aside', 0)} test(s)"]
    answers = summary["sink_answers"]
    lines.append(f"  sink answers: {answers.get('2xx', 0)} 2xx, {answers.get('4xx', 0)} 4xx, "
                 f"{answers.get('5xx', 0)} 5xx")
    codes = summary["findings_by_code"]
    if codes:
        text = "  findings: " + ", ".join(f"{code} x{n}" for code, n in codes.items())
        lines += wrap(text, WIDTH, subsequent_indent="    ")
    lines += [line for text in set_aside_notes(summary)
              for line in wrap(text, WIDTH, initial_indent="  ", subsequent_indent="    ")]
    if summary.get("match_key_coverage"):
        from .pii import merge_coverage

        coverage = merge_coverage(summary["match_key_coverage"], summary["customer_known"])
        lines.append(coverage_table_text(coverage))
    if verbose:
        for test in report["tests"]:
            found = ", ".join(sorted({f["code"] for f in test["findings"]})) or "no findings"
            pairs = len(test["pairs"])
            answers = test.get("sink_answers") or {}
            sink = (f"; sink {answers.get('2xx', 0)}/{answers.get('4xx', 0)}/"
                    f"{answers.get('5xx', 0)} (2xx/4xx/5xx)" if any(answers.values()) else "")
            aside = (f"; set aside, expects {', '.join(test.get('expected_codes') or [])}"
                     if test.get("expected_failure") else "")
            lines.append(f"  {test['outcome']:<7} {test['nodeid']}: {len(test['events'])} "
                         f"events, {pairs} pairs{sink}; {found}{aside}")
    return "\n".join(lines)


def set_aside_notes(summary: dict[str, Any]) -> list[str]:
    """What the session's figures leave out or count with a changed severity, one
    sentence each (the terminal summary and the HTML report both show them)."""
    notes = []
    overrides = summary.get("severity_overrides") or {}
    if overrides:
        notes.append("severity overrides (pixelcheck_severity): "
                     + ", ".join(f"{code}={sev}" for code, sev in sorted(overrides.items())))
    n = summary.get("set_aside", 0)
    if n:
        notes.append(f"{n} test{'s' if n != 1 else ''} set aside as expected-failure tests "
                     "(pixelcheck_expect / expect_findings): not counted in the rates, "
                     "findings or gate")
    caught = summary.get("caught_assertion_tests") or []
    if caught:
        shown = ", ".join(caught[:3]) + (f" and {len(caught) - 3} more" if len(caught) > 3
                                         else "")
        one = len(caught) == 1
        notes.append(f"{len(caught)} passed test{'' if one else 's'} caught a failed "
                     f"pixelcheck assertion (pytest.raises?) and still count{'s' if one else ''}"
                     " in the rates, findings and gate: mark negative tests "
                     "@pytest.mark.pixelcheck_expect(CODE, ...) or use expect_findings() to "
                     f"set them aside ({shown})")
    return notes


def coverage_table_text(coverage: Any) -> str:
    return "\n".join("  " + line if not line.startswith(" ") else line
                     for line in coverage.table().splitlines())


def markdown_summary(report: dict[str, Any]) -> str:
    """The session table as Markdown, for a CI job's summary page (GitHub's
    GITHUB_STEP_SUMMARY): the gate verdict first, then the figures the terminal shows."""
    summary = report["summary"]
    rate = summary["dedup_rate"]
    lines = ["## pixelcheck", ""]
    gate = report.get("gate")
    if gate:
        lines += ["**gate passed**" if gate["passed"] else
                  "**gate FAILED**: " + _md("; ".join(gate["reasons"])), ""]
    counted = summary["tests"] - summary.get("set_aside", 0)
    lines += [f"{summary['browser_events']} browser, {summary['server_events']} server, "
              f"{summary['deduplicated']} deduplicated"
              + (f", dedup rate **{rate:.1%}**" if rate is not None else "")
              + f" over {counted} test(s)", "",
              "| platform | event | browser | server | dedup | extra | b-only | s-only | rate |",
              "|---|---|--:|--:|--:|--:|--:|--:|--:|"]
    for row in summary["by_event"]:
        shown = "-" if row["dedup_rate"] is None else f"{row['dedup_rate']:.0%}"
        lines.append(f"| {_md(row['platform'])} | {_md(row['event_name'])} | {row['browser']} "
                     f"| {row['server']} | {row['deduplicated']} | {row['extra']} "
                     f"| {row['browser_only']} | {row['server_only']} | {shown} |")
    answers = summary["sink_answers"]
    lines += ["", f"sink answers: {answers.get('2xx', 0)} 2xx, {answers.get('4xx', 0)} 4xx, "
                  f"{answers.get('5xx', 0)} 5xx"]
    if summary["findings_by_code"]:
        lines += ["", "| finding | count |", "|---|--:|"]
        lines += [f"| `{code}` | {n} |" for code, n in summary["findings_by_code"].items()]
    failed = [t["nodeid"] for t in report["tests"] if t["outcome"] == "failed"]
    if failed:
        lines += ["", "failed: " + ", ".join(f"`{_md(n)}`" for n in failed)]
    lines += ["", *(f"_{_md(note)}_" for note in set_aside_notes(summary))]
    return "\n".join(lines).rstrip() + "\n"


def _md(text: str) -> str:
    """Table-safe: a pipe would end the cell, a newline the row."""
    return redact(str(text)).replace("|", "\\|").replace("\n", " ")


def append_markdown_summary(path: str, report: dict[str, Any]) -> None:
    # appended: a job's summary file collects every step's contribution
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(markdown_summary(report) + "\n")
