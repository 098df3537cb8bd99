"""The JSON report (``artifacts.build_report``) as one self-contained HTML page.

Inline CSS and inline SVG only: no scripts, fonts, images or network. Every value
from the report is HTML-escaped. Per test, a timeline puts the browser's events
on one lane and the server's on another, over one shared time axis; deduplicated
pairs are joined by a line and events named by a finding get a coloured ring.
When the run had a gate (``report["gate"]``), the header shows its verdict and the
dedup-rate colours follow its minimum; match-key coverage is shown per event name.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path
from typing import Any

from .pii import ABSENT, HASHED, NA, OK, OTHER, SOME, WRONG, column_label, match_keys
from .report import set_aside_notes

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}

# timeline geometry (SVG user units = CSS px at natural size)
WIDTH = 1160  # fits a 1280 px laptop window
LEFT, RIGHT = 78, 60  # lane names on the left; room for the last label
ROW = 15  # one row of labels
LANE_GAP = 64  # between the browser and server lanes
MIN_GAP = 13  # markers closer than this are nudged apart
CHAR_W = 6.4  # rough width of one 11 px label character
MAX_PUSH = 110  # how far a label may sit beside its marker
EDGE = 4  # labels keep this far inside the SVG's right edge
END_MARKER = 14  # a marker (with its ring) keeps this far inside it
ANCHOR_END_NEAR = 30  # a label this close to the edge is right-aligned (exact, whatever font)

# match-key coverage: the states (columns and their short names: pii.match_keys)
STATES = {  # character: (css class, meaning)
    OK: ("ok", "right"), HASHED: ("hashed", "sent, not checked (no known value)"),
    WRONG: ("wrong", "wrong"), OTHER: ("other", "another customer's"),
    SOME: ("some", "some events"), ABSENT: ("absent", "not sent"), NA: ("na", "n/a"),
}

CSS = """
* { box-sizing: border-box; }
body { margin: 0; padding: 16px 24px 40px; font: 14px/1.4 system-ui, -apple-system,
  "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2937; background: #f3f4f6; }
main { max-width: 1200px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 17px; margin: 0; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.muted { color: #6b7280; }
.card { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px;
  padding: 14px 16px; margin: 12px 0; }
.totals { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; }
.stat { border: 1px solid #e5e7eb; border-radius: 6px; padding: 5px 10px; min-width: 64px; }
.stat b { display: block; font-size: 18px; }
.stat span { color: #6b7280; font-size: 12px; }
.stat.bad b { color: #b91c1c; }
.stat.warn b { color: #b45309; }
.gate { margin-top: 10px; padding: 8px 12px; border-radius: 6px; border: 1px solid; }
.gate.passed { background: #f0fdf4; border-color: #86efac; color: #14532d; }
.gate.failed { background: #fef2f2; border-color: #fca5a5; color: #7f1d1d; }
.gate .verdict { font-size: 16px; font-weight: 800; letter-spacing: .03em; margin-right: 10px; }
.gate .thresholds span { margin-right: 14px; white-space: nowrap; }
.gate ul { margin: 4px 0 0; padding-left: 20px; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e5e7eb; text-align: right; }
th { font-size: 12px; color: #4b5563; font-weight: 600; }
th:first-child, td:first-child, th.l, td.l { text-align: left; }
td.low { background: #fee2e2; color: #991b1b; font-weight: 700; }
td.below { background: #fef3c7; color: #92400e; }
td.warn { color: #b45309; font-weight: 700; }
.tables { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; margin: 12px 0; }
.tables > .card { margin: 0; }
.coverage td, .coverage th { padding: 2px 6px; }
.coverage th[title] { cursor: help; }
.coverage th.k { text-align: center; }
.coverage td.kc { font: 13px/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  text-align: center; white-space: nowrap; }
.coverage td.kc:nth-child(2n) { background: #f9fafb; }
.coverage .sep { margin: 0 2px; }
.coverage.compact { font-size: 12px; }
.coverage.compact td, .coverage.compact th { padding: 1px 5px; }
.coverage.compact td.kc { font-size: 12px; }
.st-ok { color: #15803d; font-weight: 700; }
.st-wrong { color: #dc2626; font-weight: 700; }
.st-other { color: #c2410c; font-weight: 700; }
.st-some { color: #d97706; font-weight: 700; }
.st-hashed { color: #6b7280; }
.st-absent, .st-na, .kc .sep { color: #d1d5db; }
.cov-legend { font-size: 12px; color: #4b5563; margin-top: 6px; }
.cov-legend span { margin-right: 14px; white-space: nowrap; }
.cov-legend code, .test h3 code { font-size: 13px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; background: #e5e7eb; color: #374151; vertical-align: middle; }
.outcome-passed { background: #dcfce7; color: #166534; }
.outcome-failed, .outcome-error { background: #fee2e2; color: #991b1b; }
.outcome-skipped { background: #fef9c3; color: #854d0e; }
.set-aside { background: #e0e7ff; color: #3730a3; }
.notes { margin: 8px 0 0; padding-left: 18px; color: #374151; }
.sev-error { background: #fee2e2; color: #991b1b; }
.sev-warning { background: #fef3c7; color: #92400e; }
.sev-info { background: #e0f2fe; color: #075985; }
.test h2 code { font-size: 15px; word-break: break-all; }
.timeline { overflow-x: auto; margin-top: 8px; }
.timeline svg { display: block; font: 11px system-ui, -apple-system, "Segoe UI", Roboto,
  Helvetica, Arial, sans-serif; }
.findings { list-style: none; padding: 0; margin: 8px 0 0; }
.finding { border-left: 4px solid #9ca3af; padding: 6px 10px; margin: 6px 0;
  background: #f9fafb; }
.finding.error { border-color: #dc2626; }
.finding.warning { border-color: #f59e0b; }
.finding.info { border-color: #0ea5e9; }
.finding pre { margin: 4px 0; font-size: 12px; white-space: pre-wrap; }
.finding .fix { color: #065f46; }
.finding .refs { font-size: 12px; color: #6b7280; }
.legend svg { vertical-align: middle; }
.legend span { margin-right: 14px; white-space: nowrap; }
nav { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; }
nav .entry { white-space: nowrap; }
nav .badge { margin-left: 4px; }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _ok(status: Any) -> bool:
    return not isinstance(status, int) or 200 <= status < 300


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _stat(label: str, value: Any, bad: bool = False, warn: bool = False) -> str:
    cls = " bad" if bad else " warn" if warn else ""
    return f'<div class="stat{cls}"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


# --- summary --------------------------------------------------------------------------


def _gate(report: dict[str, Any]) -> dict[str, Any] | None:
    gate = report.get("gate")
    return gate if isinstance(gate, dict) else None


def _min_rate(report: dict[str, Any]) -> float | None:
    """The gate's minimum dedup rate, if the run had one."""
    value = (_gate(report) or {}).get("min_dedup_rate")
    return float(value) if isinstance(value, (int, float)) else None


def _rate_level(rate: Any, min_rate: float | None) -> str:
    """"" (fine), "below" (under 100% but not under the gate's minimum) or "low".

    Without a gate minimum every rate under 100% is low.
    """
    if not isinstance(rate, (int, float)) or rate >= 1:
        return ""
    return "low" if min_rate is None or rate < min_rate else "below"


def _rate_title(level: str, min_rate: float | None) -> str:
    if not level:
        return ""
    if min_rate is None:
        return "below 100%"
    return (f"below the gate's minimum of {_rate(min_rate)}" if level == "low"
            else f"below 100%, at or above the gate's minimum of {_rate(min_rate)}")


def _gate_banner(report: dict[str, Any]) -> str:
    gate = _gate(report)
    if gate is None:
        return ""
    reasons = gate.get("reasons") or []
    reasons = reasons if isinstance(reasons, list) else [reasons]
    passed = bool(gate.get("passed", not reasons))
    verdict = "passed" if passed else "failed"
    min_rate, fail_on = _min_rate(report), gate.get("fail_on")
    rate = report.get("summary", {}).get("dedup_rate")
    thresholds = [
        f"minimum dedup rate <b>{_rate(min_rate)}</b> (this run: {_rate(rate)})"
        if min_rate is not None else "no minimum dedup rate",
        f"fails on <b>{_e(fail_on)}</b> findings or worse" if fail_on
        else "findings do not fail it",
    ]
    items = "".join(f"<li>{_e(r)}</li>" for r in reasons)
    return (f'<div class="gate {verdict}" id="gate" data-verdict="{verdict}">'
            f'<span class="verdict">gate {verdict.upper()}</span>'
            f'<span class="thresholds">{"".join(f"<span>{t}</span>" for t in thresholds)}'
            f'</span>{f"<ul>{items}</ul>" if items else ""}</div>')


def _summary(report: dict[str, Any]) -> str:
    s = report.get("summary", {})
    answers = s.get("sink_answers", {})
    severities = s.get("findings_by_severity", {})
    rate = s.get("dedup_rate")
    level = _rate_level(rate, _min_rate(report))
    stats = [
        _stat("tests", s.get("tests", 0)),
        _stat("browser events", s.get("browser_events", 0)),
        _stat("server events", s.get("server_events", 0)),
        _stat("deduplicated", s.get("deduplicated", 0)),
        _stat("dedup rate", _rate(rate), bad=level == "low", warn=level == "below"),
        _stat("sink 2xx", answers.get("2xx", 0)),
        _stat("sink 4xx", answers.get("4xx", 0), bad=bool(answers.get("4xx"))),
        _stat("sink 5xx", answers.get("5xx", 0), bad=bool(answers.get("5xx"))),
    ]
    stats += [_stat(f"{sev} findings", severities.get(sev, 0), bad=sev == "error"
                    and bool(severities.get(sev)))
              for sev in sorted(set(severities) | {"error", "warning", "info"},
                                key=lambda v: -SEVERITY_RANK.get(v, -1))]
    notes = "".join(f"<li>{_e(n)}</li>" for n in set_aside_notes(s))
    return (f'<header id="summary" class="card"><h1>pytest-pixelcheck report</h1>'
            f'<div class="muted">generated {_e(report.get("generated_at"))} · report format '
            f'{_e(report.get("format"))} v{_e(report.get("version"))}</div>'
            f'{_gate_banner(report)}<div class="totals">{"".join(stats)}</div>'
            + (f'<ul class="notes" id="notes">{notes}</ul>' if notes else "")
            + "</header>")


def _dedup_table(rows: list[dict[str, Any]], min_rate: float | None = None) -> str:
    head = ("<tr><th>platform</th><th class=l>event</th><th>browser</th><th>server</th>"
            "<th>deduplicated</th><th>browser-only</th><th>server-only</th>"
            '<th title="copies beyond the first of one conversion from one side '
            '(double fires, resends)">extra</th><th>rate</th></tr>')
    body = []
    for r in rows:
        rate = r.get("dedup_rate")
        level = _rate_level(rate, min_rate)
        cells = "".join(f"<td>{_e(r.get(k, 0))}</td>" for k in (
            "browser", "server", "deduplicated", "browser_only", "server_only"))
        extra = r.get("extra") or 0
        title = _rate_title(level, min_rate)
        rate_attrs = f' class="rate {level}" title="{_e(title)}"' if level else ' class="rate"'
        body.append(
            f'<tr class="{level or "ok"}"><td>{_e(r.get("platform"))}</td>'
            f'<td class=l>{_e(r.get("event_name"))}</td>{cells}'
            f'<td class="extra{" warn" if extra else ""}">{_e(extra)}</td>'
            f'<td{rate_attrs}>{"⚠ " if level == "low" else ""}{_rate(rate)}</td></tr>')
    if not body:
        body.append('<tr><td colspan="9" class="muted">no events</td></tr>')
    gate = (f' <span class="muted">(gate minimum {_rate(min_rate)}: red below it, amber '
            "below 100%)</span>" if min_rate is not None else "")
    return (f'<section class="card"><h3 style="margin-top:0">deduplication by event name'
            f'{gate}</h3><table id="dedup-table"><thead>{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></section>')


def _codes_table(codes: dict[str, int]) -> str:
    if not codes:
        return ('<section class="card" id="findings-by-code"><h3 style="margin-top:0">'
                'findings by code</h3><p class="muted">no findings</p></section>')
    rows = "".join(f"<tr><td><code>{_e(c)}</code></td><td>{_e(n)}</td></tr>"
                   for c, n in codes.items())
    return ('<section class="card" id="findings-by-code"><h3 style="margin-top:0">findings by '
            f'code</h3><table><thead><tr><th>code</th><th>count</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></section>")


# --- match-key coverage ---------------------------------------------------------------


def _state(char: Any) -> str:
    char = str(char)[:1] or ABSENT
    cls = STATES.get(char, ("unknown", ""))[0]
    return f'<span class="st st-{cls}">{_e(char)}</span>'


def _coverage_cell(key: str, row: dict[str, Any]) -> str:
    sides = [row.get(side) if isinstance(row.get(side), dict) else {}
             for side in ("browser", "server")]
    b, s = (str(side.get(key) or ABSENT)[:1] for side in sides)
    title = (f"{key}: browser {STATES.get(b, ('', b))[1]} · "
             f"server {STATES.get(s, ('', s))[1]}")
    return (f'<td class="kc" data-key="{_e(key)}" title="{_e(title)}">'
            f'{_state(b)}<span class="sep">|</span>{_state(s)}</td>')


def _coverage_table(rows: list[dict[str, Any]], *, compact: bool = False,
                    table_id: str = "") -> str:
    keys = match_keys()
    heads = "".join(f'<th class="k" title="{_e(k)}">{_e(column_label(k))}</th>'
                    for k in keys)
    body = []
    for r in rows:
        counts = f"{_e(r.get('browser_events', 0))}|{_e(r.get('server_events', 0))}"
        body.append(f'<tr><td>{_e(r.get("platform"))}</td><td class=l>{_e(r.get("event_name"))}'
                    f'</td><td class="counts">{counts}</td>'
                    f'{"".join(_coverage_cell(k, r) for k in keys)}</tr>')
    ident = f' id="{table_id}"' if table_id else ""
    return (f'<table{ident} class="coverage{" compact" if compact else ""}"><thead><tr><th>platform'
            f'</th><th class=l>event</th><th title="browser|server events">events</th>{heads}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table>')


def _coverage_legend() -> str:
    spans = "".join(f"<span>{_state(char)} {_e(meaning)}</span>"
                    for char, (_, meaning) in STATES.items())
    return (f'<div class="cov-legend">per key, <code>browser|server</code>: {spans}'
            '</div>')


def _unchecked(customer_known: Any) -> str:
    return ("" if customer_known else ' <span class="muted">(no customer declared: hashes '
            "unchecked)</span>")


def _coverage_summary(summary: dict[str, Any]) -> str:
    rows = [r for r in summary.get("match_key_coverage") or [] if isinstance(r, dict)]
    if not rows:
        return ('<section class="card" id="coverage"><h3 style="margin-top:0">match-key '
                'coverage</h3><p class="muted">no match-key coverage in this report</p>'
                "</section>")
    return (f'<section class="card" id="coverage"><h3 style="margin-top:0">match-key coverage'
            f'{_unchecked(summary.get("customer_known"))}</h3>'
            f'{_coverage_table(rows, table_id="coverage-table")}'
            f"{_coverage_legend()}</section>")


def _test_coverage(test: dict[str, Any]) -> str:
    rows = [r for r in test.get("match_key_coverage") or [] if isinstance(r, dict)]
    if not rows:
        return ""
    return (f'<div class="test-coverage"><h3>match-key coverage'
            f'{_unchecked(test.get("customer_known"))} <a class="muted" href="#coverage">'
            f"legend</a></h3>{_coverage_table(rows, compact=True)}</div>")


def _nav(tests: list[dict[str, Any]]) -> str:
    if not tests:
        return '<section class="card"><p class="muted">no tests in this report</p></section>'
    links = []
    for i, t in enumerate(tests):
        n = len(t.get("findings") or [])
        outcome = str(t.get("outcome", ""))
        count = f' <span class="muted">({n} finding{"s" if n != 1 else ""})</span>' if n else ""
        links.append(f'<span class="entry"><a href="#test-{i}">{_e(t.get("nodeid"))}</a>'
                     f'<span class="badge outcome outcome-{_e(outcome)}">{_e(outcome)}</span>'
                     f"{count}</span>")
    return f'<nav class="card"><b>tests:</b> {"".join(links)}</nav>'


# --- timeline -------------------------------------------------------------------------


def _rows(items: list[tuple[float, float]], limit: float) -> list[tuple[int, float]]:
    """(row, centre x) per label, items being (marker x, width) in x order.

    A label goes in the first row where it fits over its marker or, moved by at
    most MAX_PUSH, beside its neighbour (a slanted leader line then points to it):
    right of its marker as a rule, left of it where it would cross ``limit``, the
    right edge of the drawing. No label's right end passes ``limit``.
    """
    ends: list[float] = []
    out = []
    for x, w in items:
        inside = min(x, limit - w / 2)  # over the marker, or shifted left to fit
        choice = None
        for row, end in enumerate(ends):
            centre = min(max(inside, end + 8 + w / 2), limit - w / 2)
            if centre - w / 2 >= end + 8 - 1e-6 and abs(centre - x) <= MAX_PUSH:
                choice = (row, centre)
                break
        if choice is None:
            choice = (len(ends), max(inside, w / 2 + 2))
            ends.append(0.0)
        row, centre = choice
        ends[row] = centre + w / 2
        out.append(choice)
    return out


def _label(event: dict[str, Any]) -> str:
    name = event.get("event_name") or ("undecodable" if event.get("error") else "?")
    status = (event.get("request") or {}).get("status")
    return f"{name} ({status})" if not _ok(status) else str(name)


def _label_width(event: dict[str, Any]) -> float:
    return len(_label(event)) * CHAR_W + 4


def _tooltip(event: dict[str, Any], t0: float) -> str:
    request = event.get("request") or {}
    custom = event.get("custom_data") or {}
    lines = [f"#{event.get('seq')} {event.get('source')} {event.get('platform')} "
             f"{event.get('event_name')}",
             f"event id: {event.get('event_id')}",
             f"arrived: +{(event.get('arrival_time') or t0) - t0:.3f} s"
             f" · event_time {event.get('event_time')}",
             f"pixel: {event.get('pixel_id')}"]
    if isinstance(custom, dict) and "value" in custom:
        lines.append(f"value: {custom.get('value')} {custom.get('currency') or ''}".rstrip())
    if request:
        lines.append(f"{request.get('method')} {request.get('url')} → {request.get('status')}")
    if event.get("error"):
        lines.append(f"error: {event['error']}")
    if event.get("blocked"):
        lines.append(f"blocked: {event['blocked']}")
    rejection = event.get("rejection")
    if rejection:
        reasons = rejection if isinstance(rejection, list) else [rejection]
        lines += [f"rejected: {r}" for r in reasons]
    return "\n".join(lines)


def _marker(source: str, x: float, y: float, classes: str) -> str:
    if "undecodable" in classes:
        return (f'<path d="M{x - 5:.1f} {y - 5:.1f}l10 10m0 -10l-10 10" stroke="#6b7280" '
                'stroke-width="3" fill="none"/>')
    if "rejected" in classes:
        fill, stroke = "#f97316", "#9a3412"
    elif "unpaired" in classes:
        fill, stroke = "#fff", "#2563eb" if source == "browser" else "#7c3aed"
    else:
        fill = stroke = "#2563eb" if source == "browser" else "#7c3aed"
    if source == "browser":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5.5" fill="{fill}" stroke="{stroke}" ' \
               'stroke-width="1.8"/>'
    return (f'<rect x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.8"/>')


RING = {"error": "#dc2626", "warning": "#f59e0b", "info": "#0ea5e9"}


def _timeline(test: dict[str, Any]) -> str:
    events = [e for e in test.get("events") or [] if isinstance(e, dict)]
    if not events:
        return '<div class="timeline"><p class="muted">no pixel or server events</p></div>'
    times = [e.get("arrival_time") for e in events if isinstance(e.get("arrival_time"),
                                                                   (int, float))]
    t0 = min(times) if times else 0.0
    span = (max(times) - t0) if times else 0.0
    span = span if span > 0 else 1.0
    step = _nice_step(span)
    span = math.ceil(span / step - 1e-9) * step
    plot_w = WIDTH - LEFT - RIGHT

    paired = {s for pair in test.get("pairs") or [] for s in pair}
    flagged: dict[Any, str] = {}
    for finding in test.get("findings") or []:
        sev = finding.get("severity", "info")
        for seq in finding.get("events") or []:
            if SEVERITY_RANK.get(sev, 0) >= SEVERITY_RANK.get(flagged.get(seq, ""), -1):
                flagged[seq] = sev

    # x per event: true time, nudged right where markers would overlap in a lane
    pos: dict[Any, tuple[float, float]] = {}
    lanes: dict[str, list[dict[str, Any]]] = {"browser": [], "server": []}
    for e in events:
        lanes["server" if e.get("source") == "server" else "browser"].append(e)
    for lane in lanes.values():
        lane.sort(key=lambda e: (e.get("arrival_time") or t0, e.get("seq") or 0))
        xs: list[float] = []
        for e in lane:
            x = LEFT + ((e.get("arrival_time") or t0) - t0) / span * plot_w
            xs.append(max(x, xs[-1] + MIN_GAP) if xs else x)
        # a bunch at the very end is nudged back left rather than off the drawing
        cap = WIDTH - END_MARKER
        if (len(xs) - 1) * MIN_GAP <= cap - LEFT:
            for i in reversed(range(len(xs))):
                cap = min(xs[i], cap)
                xs[i], cap = cap, cap - MIN_GAP
        for e, x in zip(lane, xs, strict=True):
            pos[id(e)] = (x, 0.0)
    # WIDTH wide, unless a lane has more markers than fit (then it scrolls)
    width = max(WIDTH, max(x for x, _ in pos.values()) + END_MARKER)
    limit = width - EDGE  # no label ends right of this
    label_rows = {source: _rows([(pos[id(e)][0], _label_width(e)) for e in lane], limit)
                  for source, lane in lanes.items()}
    n_up = max((r for r, _ in label_rows["browser"]), default=-1) + 1
    n_down = max((r for r, _ in label_rows["server"]), default=-1) + 1
    y_b = 12 + max(n_up, 1) * ROW + 10
    y_s = y_b + LANE_GAP
    y_axis = y_s + 14 + max(n_down, 1) * ROW + 4
    height = y_axis + 22
    lane_y = {"browser": y_b, "server": y_s}
    for source, lane in lanes.items():
        for e in lane:
            pos[id(e)] = (pos[id(e)][0], lane_y[source])
    by_seq = {e.get("seq"): e for e in events}

    out = [f'<svg width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
           f'aria-label="timeline of {len(events)} events">',
           f'<rect x="0" y="0" width="{width:.0f}" height="{y_b + LANE_GAP / 2:.0f}" '
           'fill="#eff6ff"/>',
           f'<rect x="0" y="{y_b + LANE_GAP / 2:.0f}" width="{width:.0f}" '
           f'height="{y_axis - y_b - LANE_GAP / 2:.0f}" fill="#f5f3ff"/>',
           f'<text x="8" y="{y_b + 4}" font-weight="600" fill="#1d4ed8">browser</text>',
           f'<text x="8" y="{y_s + 4}" font-weight="600" fill="#6d28d9">server</text>']
    # axis, grid and ticks
    out.append(f'<g class="axis"><line x1="{LEFT}" y1="{y_axis}" x2="{WIDTH - RIGHT}" '
               f'y2="{y_axis}" stroke="#6b7280"/>')
    ticks = int(round(span / step))
    for i in range(ticks + 1):
        x = LEFT + i * step / span * plot_w
        out.append(f'<line x1="{x:.1f}" y1="6" x2="{x:.1f}" y2="{y_axis + 4}" '
                   'stroke="#d1d5db" stroke-dasharray="2 3"/>'
                   f'<text x="{x:.1f}" y="{y_axis + 16}" text-anchor="middle" '
                   f'fill="#4b5563">{_num(i * step) if step >= 0.1 else f"{i * step:.3g}"} s'
                   "</text>")
    out.append("</g>")
    for source, lane in lanes.items():
        y = lane_y[source]
        end = max([WIDTH - RIGHT] + [pos[id(e)][0] for e in lane])
        out.append(f'<line x1="{LEFT}" y1="{y}" x2="{end:.0f}" y2="{y}" '
                   'stroke="#9ca3af"/>')
    # finding links between two events of one finding (e.g. a near-miss id)
    for finding in test.get("findings") or []:
        seqs = [s for s in finding.get("events") or [] if s in by_seq]
        sides = {by_seq[s].get("source") for s in seqs}
        if len(seqs) == 2 and sides == {"browser", "server"}:
            (x1, y1), (x2, y2) = (pos[id(by_seq[s])] for s in seqs)
            color = RING.get(finding.get("severity"), "#6b7280")
            out.append(f'<line class="finding-link" x1="{x1:.1f}" y1="{y1}" x2="{x2:.1f}" '
                       f'y2="{y2}" stroke="{color}" stroke-width="2" stroke-dasharray="5 4">'
                       f'<title>{_e(finding.get("code"))}</title></line>')
    # pair links
    for pair in test.get("pairs") or []:
        if len(pair) != 2 or pair[0] not in by_seq or pair[1] not in by_seq:
            continue
        (x1, y1), (x2, y2) = (pos[id(by_seq[s])] for s in pair)
        out.append(f'<line class="pair-link" data-pair="{_e(pair[0])}-{_e(pair[1])}" '
                   f'x1="{x1:.1f}" y1="{y1}" x2="{x2:.1f}" y2="{y2}" stroke="#16a34a" '
                   'stroke-width="1.6" stroke-opacity="0.85"/>')
    # labels with leader lines, then markers on top
    for source, lane in lanes.items():
        sign = -1 if source == "browser" else 1
        for e, (row, lx) in zip(lane, label_rows[source], strict=True):
            x, y = pos[id(e)]
            # text baseline; a label spans [baseline - 9, baseline + 2]
            ly = y - 11 - row * ROW if sign < 0 else y + 20 + row * ROW
            color = "#b91c1c" if flagged.get(e.get("seq")) == "error" else "#111827"
            if row or abs(lx - x) > 1:
                end = ly + 2 if sign < 0 else ly - 10
                out.append(f'<line class="leader" x1="{x:.1f}" y1="{y + sign * 6}" '
                           f'x2="{lx:.1f}" y2="{end}" stroke="#9ca3af" stroke-width="0.8"/>')
            # near an edge, pin the label's end there: exact whatever the font's widths
            half = _label_width(e) / 2
            if lx + half > limit - ANCHOR_END_NEAR:
                tx, anchor = min(lx + half, limit), "end"
            elif lx - half < EDGE:
                tx, anchor = max(lx - half, EDGE), "start"
            else:
                tx, anchor = lx, "middle"
            out.append(f'<text class="label" x="{tx:.1f}" y="{ly}" text-anchor="{anchor}" '
                       f'fill="{color}" stroke="#fff" stroke-width="3" paint-order="stroke">'
                       f'{_e(_label(e))}</text>')
    for source, lane in lanes.items():
        for e in lane:
            x, y = pos[id(e)]
            classes = ["event", source]
            if e.get("error"):
                classes.append("undecodable")
            if not _ok((e.get("request") or {}).get("status")) or e.get("rejection"):
                classes.append("rejected")
            if e.get("seq") not in paired:
                classes.append("unpaired")
            sev = flagged.get(e.get("seq"))
            ring = ""
            if sev:
                classes.append(f"flag-{sev}")
                ring = (f'<circle cx="{x:.1f}" cy="{y}" r="9.5" fill="none" '
                        f'stroke="{RING.get(sev, "#6b7280")}" stroke-width="2.5"/>')
            cls = " ".join(classes)
            out.append(f'<g class="{cls}" data-seq="{_e(e.get("seq"))}">'
                       f"<title>{_e(_tooltip(e, t0))}</title>{ring}"
                       f"{_marker(source, x, y, cls)}</g>")
    out.append("</svg>")
    return f'<div class="timeline">{"".join(out)}</div>'


def _event_ref(event: dict[str, Any] | None, seq: Any, t0: float) -> str:
    if event is None:
        return f"#{seq}"
    at = (event.get("arrival_time") or t0) - t0
    return (f"{event.get('source')} {event.get('event_name')} +{at:.3f} s "
            f"(id {event.get('event_id')})")


def _findings(test: dict[str, Any]) -> str:
    findings = test.get("findings") or []
    if not findings:
        return '<p class="muted">no findings</p>'
    events = {e.get("seq"): e for e in test.get("events") or [] if isinstance(e, dict)}
    times = [e.get("arrival_time") for e in events.values()
             if isinstance(e.get("arrival_time"), (int, float))]
    t0 = min(times) if times else 0.0
    items = []
    for f in findings:
        sev = str(f.get("severity", "info"))
        details = f.get("details") or []
        details = details if isinstance(details, list) else [details]
        refs = "; ".join(_event_ref(events.get(s), s, t0) for s in f.get("events") or [])
        items.append(
            f'<li class="finding {_e(sev)}" data-code="{_e(f.get("code"))}">'
            f'<span class="badge sev-{_e(sev)}"'
            + (f' title="default severity: {_e(f["default_severity"])} (pixelcheck_severity)">'
               f'{_e(sev)}*' if f.get("default_severity") else f'>{_e(sev)}')
            + f'</span> <code>{_e(f.get("code"))}'
            f'</code> {_e(f.get("message"))}'
            + (f'<pre>{_e(chr(10).join(map(str, details)))}</pre>' if details else "")
            + (f'<div class="fix"><b>fix:</b> {_e(f.get("fix"))}</div>' if f.get("fix") else "")
            + (f'<div class="refs">events: {_e(refs)}</div>' if refs else "")
            + "</li>")
    return f'<ul class="findings">{"".join(items)}</ul>'


def _test(index: int, test: dict[str, Any]) -> str:
    outcome = str(test.get("outcome", ""))
    events = [e for e in test.get("events") or [] if isinstance(e, dict)]
    browser = sum(1 for e in events if e.get("source") != "server")
    n_findings = len(test.get("findings") or [])
    facts = (f"{browser} browser · {len(events) - browser} server events · "
             f"{len(test.get('pairs') or [])} deduplicated pairs · {n_findings} finding"
             f"{'s' if n_findings != 1 else ''}")
    if test.get("expected_failure"):
        facts += (" · set aside from the summary: a negative test expecting "
                  + ", ".join(_e(c) for c in test.get("expected_codes") or []))
    aside = (' <span class="badge set-aside" title="pixelcheck_expect / expect_findings">'
             "expected-failure test</span>" if test.get("expected_failure") else "")
    return (f'<section class="test card" id="test-{index}" data-nodeid="{_e(test.get("nodeid"))}">'
            f'<h2><code>{_e(test.get("nodeid"))}</code> '
            f'<span class="badge outcome outcome-{_e(outcome)}">{_e(outcome)}</span>{aside}</h2>'
            f'<div class="muted">{facts}</div>{_timeline(test)}{_findings(test)}'
            f"{_test_coverage(test)}</section>")


def _legend() -> str:
    def swatch(body: str, w: int = 24) -> str:
        return f'<svg width="{w}" height="20" viewBox="0 0 {w} 20">{body}</svg>'

    items = [
        (swatch(_marker("browser", 12, 10, "")), "browser event"),
        (swatch(_marker("server", 12, 10, "")), "server event"),
        (swatch(_marker("browser", 12, 10, "unpaired")), "not deduplicated"),
        (swatch('<line x1="2" y1="18" x2="22" y2="2" stroke="#16a34a" stroke-width="1.6"/>'),
         "deduplicated pair"),
        (swatch('<line x1="2" y1="18" x2="22" y2="2" stroke="#dc2626" stroke-width="2" '
                'stroke-dasharray="5 4"/>'), "events of one finding"),
        (swatch(f'<circle cx="12" cy="10" r="7.5" fill="none" stroke="{RING["error"]}" '
                f'stroke-width="2.5"/>{_marker("browser", 12, 10, "")}'), "in an error finding"),
        (swatch(f'<circle cx="12" cy="10" r="7.5" fill="none" stroke="{RING["warning"]}" '
                f'stroke-width="2.5"/>{_marker("browser", 12, 10, "")}'), "in a warning"),
        (swatch(_marker("server", 12, 10, "rejected")), "rejected (non-2xx)"),
        (swatch(_marker("browser", 12, 10, "undecodable")), "undecodable"),
    ]
    spans = "".join(f"<span>{s} {_e(text)}</span>" for s, text in items)
    return (f'<section class="card legend" id="legend"><b>legend</b> {spans}<div class="muted">'
            "Time is seconds since the test's first request. Markers closer than their size "
            "are nudged apart; hover a marker for its exact time, id, value and errors."
            "</div></section>")


def _platform_matrix(rows: list[dict[str, Any]], min_rate: float | None = None) -> str:
    """Dedup rates as event name x platform, when more than one platform fired: each
    platform's own event names, so most cells of another platform's names are empty."""
    platforms = sorted({str(r.get("platform")) for r in rows})
    if len(platforms) < 2:
        return ""
    names = sorted({str(r.get("event_name")) for r in rows}, key=str.lower)
    cell = {(str(r.get("platform")), str(r.get("event_name"))): r for r in rows}
    head = "<tr><th class=l>event</th>" + "".join(
        f"<th>{_e(p)}</th>" for p in platforms) + "</tr>"
    body = []
    for name in names:
        cells = []
        for platform in platforms:
            row = cell.get((platform, name))
            if row is None:
                cells.append('<td class="muted">&nbsp;</td>')
                continue
            rate = row.get("dedup_rate")
            level = _rate_level(rate, min_rate)
            title = f"{platform} {name}: {row.get('deduplicated', 0)} merged of " \
                    f"{row.get('browser', 0)} browser / {row.get('server', 0)} server"
            cells.append(f'<td class="rate {level}" title="{_e(title)}">'
                         f'{_rate(rate) if rate is not None else "not merged"}</td>')
        body.append(f"<tr><td class=l>{_e(name)}</td>{''.join(cells)}</tr>")
    return (f'<section class="card"><h3 style="margin-top:0">dedup rate by platform and '
            f'event</h3><table id="platform-matrix"><thead>{head}</thead>'
            f'<tbody>{"".join(body)}</tbody></table></section>')


_LINE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
                 "#8c564b", "#e377c2")


def _chart(title: str, periods: list[str], lines: dict[str, list[Any]], *,
           percent: bool, alerts: dict[tuple[str, str], str]) -> str:
    """An inline SVG line chart: one line per platform, a dot per period (red with a
    tooltip where the period raised an alert)."""
    width, height, left, bottom, top = 640, 220, 48, 40, 24
    values = [v for series in lines.values() for v in series if v is not None]
    top_value = 1.0 if percent else max(values + [1])
    step = (width - left - 16) / max(len(periods) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / top_value)

    parts = [f'<svg class="chart" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{_e(title)}</title>',
             f'<text x="{left}" y="16" font-size="13" font-weight="600">{_e(title)}</text>']
    for fraction in (0, 0.5, 1):
        value = top_value * fraction
        label = f"{value:.0%}" if percent else f"{value:,.0f}"
        parts.append(f'<line x1="{left}" x2="{width - 8}" y1="{y(value):.1f}" '
                     f'y2="{y(value):.1f}" stroke="#ddd"/><text x="{left - 4}" '
                     f'y="{y(value) + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    every = max(1, len(periods) // 6)
    for i, period in enumerate(periods):
        if i % every == 0 or i == len(periods) - 1:
            anchor = "end" if i == len(periods) - 1 and i else "middle"
            parts.append(f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="10" '
                         f'text-anchor="{anchor}">{_e(period)}</text>')
    for n, (platform, series) in enumerate(sorted(lines.items())):
        colour = _LINE_COLOURS[n % len(_LINE_COLOURS)]
        points = [(x(i), y(v)) for i, v in enumerate(series) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(f'<polyline class="series" data-platform="{_e(platform)}" '
                         f'fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, v in enumerate(series):
            if v is None:
                continue
            alert = alerts.get((platform, periods[i]))
            label = f"{v:.0%}" if percent else f"{v:,}"
            tip = f"{platform} {periods[i]}: {label}" + (f" ALERT: {alert}" if alert else "")
            parts.append(f'<circle class="mark{" alert" if alert else ""}" cx="{x(i):.1f}" '
                         f'cy="{y(v):.1f}" r="{5 if alert else 3}" '
                         f'fill="{"#d00" if alert else colour}"><title>{_e(tip)}</title>'
                         '</circle>')
        parts.append(f'<text x="{width - 150}" y="{top + 14 * n}" font-size="11" '
                     f'fill="{colour}">&#9632; {_e(platform)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _dashboard(rows: list[dict[str, Any]]) -> str:
    """The daily (or hourly) dashboard: per event name, the dedup rate and the merged
    count over the periods, a line per platform."""
    if not rows:
        return ""
    periods = sorted({r["period"] for r in rows})
    names = sorted({r["event_name"] for r in rows})
    # first, every platform on one chart: its conversions of all event names together
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        total = totals.setdefault((r["platform"], r["period"]), [0, 0])
        total[0] += r["deduplicated"]
        total[1] += r.get("conversions") or 0
    platform_alerts = {(r["platform"], r["period"]): r["alert"] for r in rows if r.get("alert")}
    overall = {p: [totals[(p, d)][0] / totals[(p, d)][1]
                   if (p, d) in totals and totals[(p, d)][1] else None for d in periods]
               for p in sorted({r["platform"] for r in rows})}
    charts = ['<div class="chart-pair" data-event="*">'
              + _chart("every platform: dedup rate", periods, overall, percent=True,
                       alerts=platform_alerts) + "</div>"]
    for name in names:
        mine = [r for r in rows if r["event_name"] == name]
        at = {(r["platform"], r["period"]): r for r in mine}
        platforms_ = sorted({r["platform"] for r in mine})
        alerts = {(r["platform"], r["period"]): r["alert"] for r in mine if r.get("alert")}
        rates = {p: [at[(p, d)]["rate"] if (p, d) in at else None for d in periods]
                 for p in platforms_}
        merged = {p: [at[(p, d)]["deduplicated"] if (p, d) in at else None for d in periods]
                  for p in platforms_}
        charts.append(f'<div class="chart-pair" data-event="{_e(name)}">'
                      + _chart(f"{name}: dedup rate", periods, rates, percent=True,
                               alerts=alerts)
                      + _chart(f"{name}: deduplicated conversions", periods, merged,
                               percent=False, alerts=alerts) + "</div>")
    alerts_list = "".join(f"<li>{_e(r['period'])} {_e(r['platform'])} {_e(r['event_name'])}: "
                          f"{_e(r['alert'])}</li>" for r in rows if r.get("alert"))
    return ('<section class="card" id="dashboard"><style>#dashboard .chart-pair{display:flex;'
            'flex-wrap:wrap;gap:8px}</style><h3 style="margin-top:0">dashboard: '
            f'{len(periods)} period(s)</h3>'
            + (f'<ul class="alerts">{alerts_list}</ul>' if alerts_list else "")
            + "".join(charts) + "</section>")


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML document (no external resources)."""
    summary = report.get("summary", {})
    tests: list[dict[str, Any]] = list(report.get("tests") or [])
    body = "".join([
        _summary(report),
        '<div class="tables">',
        _dedup_table(list(summary.get("by_event") or []), _min_rate(report)),
        _codes_table(dict(summary.get("findings_by_code") or {})),
        "</div>",
        _platform_matrix(list(summary.get("by_event") or []), _min_rate(report)),
        _coverage_summary(summary),
        _dashboard(list(report.get("dashboard") or [])),
        _legend(),
        _nav(tests),
        *(_test(i, t) for i, t in enumerate(tests)),
    ])
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>pytest-pixelcheck report</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def write_html(path: str | Path, report: dict[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


__all__ = ["render_html", "write_html"]
