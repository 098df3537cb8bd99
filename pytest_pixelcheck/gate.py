"""CI gating: turn a session's report into a pass/fail verdict with one clear line."""

from __future__ import annotations

from typing import Any

from .findings import SEVERITY_RANK


def gate_failures(report: dict[str, Any], *, min_dedup_rate: float | None = None,
                  fail_on: str | None = None) -> list[str]:
    """Why the session must fail (empty: it passes the gate)."""
    reasons = []
    summary = report["summary"]
    rate = summary.get("dedup_rate")
    if min_dedup_rate is not None and rate is not None and rate < min_dedup_rate:
        worst = sorted((row for row in summary["by_event"] if row["dedup_rate"] is not None
                        and row["dedup_rate"] < min_dedup_rate),
                       key=lambda row: row["dedup_rate"])[:3]
        detail = ", ".join(f"{row['event_name']} {row['dedup_rate']:.0%}" for row in worst)
        reasons.append(f"dedup rate {rate:.1%} is below the minimum {min_dedup_rate:.1%}"
                       + (f" (below it: {detail})" if detail else ""))
    if fail_on is not None:
        rank = SEVERITY_RANK[fail_on]
        counted = {sev: n for sev, n in summary["findings_by_severity"].items()
                   if SEVERITY_RANK.get(sev, 0) >= rank}
        if counted:
            what = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counted.items())
            reasons.append(f"{what} found (--pixelcheck-fail-on={fail_on})")
    return reasons


def apply_gate(report: dict[str, Any], *, min_dedup_rate: float | None = None,
               fail_on: str | None = None) -> list[str]:
    """``gate_failures``, recorded in the report as ``gate`` when a gate was asked for.

    One place for the pytest session and ``pixelcheck merge``, so a merged run of shards
    gets the verdict a single run would.
    """
    reasons = gate_failures(report, min_dedup_rate=min_dedup_rate, fail_on=fail_on)
    if min_dedup_rate is not None or fail_on is not None:
        report["gate"] = {"min_dedup_rate": min_dedup_rate, "fail_on": fail_on,
                          "passed": not reasons, "reasons": reasons}
    return reasons


def gate_line(reasons: list[str]) -> str:
    return "pixelcheck gate FAILED: " + "; ".join(reasons)
