"""What analyze prints at scale: findings grouped by code, platform and event name, and
the dashboard of counts and rates per period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..findings import SEVERITY_RANK, Finding
from ..redact import scrub
from ..report import WIDTH, shorten

#: examples shown per group of findings
EXAMPLES = 3
#: groups shown before the rest is summed up in one line (``--findings all`` shows all)
GROUPS_SHOWN = 8
#: a rate falling by at least this much since the previous period raises an alert
DEFAULT_ALERT_DROP = 0.05


@dataclass
class FindingGroup:
    code: str
    severity: str
    platform: str | None
    event_name: str | None
    findings: list[Finding] = field(default_factory=list)
    #: the findings this group stands for (more than ``len(findings)`` when they come
    #: from a sample of the problem rows)
    weighted: float = 0.0

    @property
    def count(self) -> int:
        return round(self.weighted) if self.weighted else len(self.findings)


def group_findings(findings: Sequence[Finding],
                   weight: Any = None) -> list[FindingGroup]:
    """Groups by (code, platform, event name), most severe then most frequent first.
    ``weight(platform)``: how many findings one stands for (a sample's), else 1."""
    groups: dict[tuple[Any, ...], FindingGroup] = {}
    for finding in findings:
        key = (finding.code, finding.platform, finding.event_name)
        if key not in groups:
            groups[key] = FindingGroup(finding.code, finding.severity, finding.platform,
                                       finding.event_name)
        groups[key].findings.append(finding)
        groups[key].weighted += weight(finding.platform) if weight else 1.0
    return sorted(groups.values(), key=lambda g: (-SEVERITY_RANK[g.severity], -g.count,
                                                  g.code, g.platform or "",
                                                  g.event_name or ""))


def grouped_text(findings: Sequence[Finding], conversions: Any, *,
                 limit: int | None = GROUPS_SHOWN, width: int = WIDTH,
                 weight: Any = None) -> str:
    """One line per group (count and share of that event's conversions), its fix, and
    up to three examples. ``conversions(platform, name)`` gives the share's base;
    ``weight(platform)`` what one finding stands for when they come from a sample
    (the counts are then estimates, written with ``~``)."""
    groups = group_findings(findings, weight)
    about = "~" if weight is not None and any(
        abs(weight(f.platform) - 1.0) > 1e-9 for f in findings) else ""
    if not groups:
        return "  (none)"
    lines = []
    shown = groups if limit is None else groups[:limit]
    for group in shown:
        base = conversions(group.platform, group.event_name)
        share = f"{group.count / base:.1%}" if base else "-"
        lines.append(f"  {group.severity:<7} [{group.code}] {group.platform or '-'} "
                     f"{group.event_name or '<no name>'}: {about}{group.count:,} "
                     f"({share} of conversions)")
        lines.append("    fix: " + _cut(scrub(group.findings[0].fix), width - 9))
        for example in group.findings[:EXAMPLES]:
            lines.append("    e.g. " + _cut(scrub(example.message), width - 9))
    rest = groups[len(shown):]
    if rest:
        lines.append(f"  ... and {len(rest)} more group(s), {about}"
                     f"{sum(g.count for g in rest):,} "
                     "finding(s): --findings all lists them")
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    """The start of a message: its subject and first words say most."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def dashboard_rows(series: Sequence[tuple[Any, ...]], drop: float = DEFAULT_ALERT_DROP,
                   min_rate: float | None = None) -> list[dict[str, Any]]:
    """Each (period, platform, event) row of ``Engine.series`` with the change of its
    rate since the previous period, and an alert when the rate fell by ``drop`` or more,
    or under ``min_rate``."""
    out: list[dict[str, Any]] = []
    previous: dict[tuple[str, str], float | None] = {}
    for period, platform, name, browser, server, dedup, conversions, rate in series:
        before = previous.get((platform, name))
        change = None if rate is None or before is None else rate - before
        alert = None
        if change is not None and change <= -drop:
            alert = f"rate fell {-change:.0%} since the previous period"
        if min_rate is not None and rate is not None and rate < min_rate:
            alert = f"rate {rate:.0%} is below {min_rate:.0%}"
        out.append({"period": period, "platform": platform, "event_name": name,
                    "browser": browser, "server": server, "deduplicated": dedup,
                    "conversions": conversions, "rate": rate, "change": change, "alert": alert})
        if rate is not None:
            previous[(platform, name)] = rate
    out.sort(key=lambda r: (r["period"], r["platform"], r["event_name"]))
    return out


def dashboard_text(rows: Sequence[dict[str, Any]]) -> str:
    header = (f"  {'period':<16} {'platform':<9} {'event':<18} {'browser':>9} {'server':>9} "
              f"{'dedup':>9} {'rate':>5} {'change':>6}")
    lines = [header, "  " + "-" * (len(header) - 2)]
    for row in rows:
        rate = "-" if row["rate"] is None else f"{row['rate']:.0%}"
        change = "" if row["change"] is None else f"{row['change']:+.0%}"
        lines.append(f"  {row['period']:<16} {row['platform']:<9} "
                     f"{shorten(row['event_name'], 18):<18} {row['browser']:>9,} "
                     f"{row['server']:>9,} {row['deduplicated']:>9,} {rate:>5} {change:>6}"
                     + (f"  ALERT: {row['alert']}" if row["alert"] else ""))
    return "\n".join(lines)
