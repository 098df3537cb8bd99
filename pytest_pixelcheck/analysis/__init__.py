"""``pixelcheck analyze`` at production scale: DuckDB counts and matches, the pytest
plugin's own matcher and diagnosis explain what needs explaining."""

from __future__ import annotations

from .engine import Engine, LoadSummary, PeriodReport

__all__ = ["Engine", "LoadSummary", "PeriodReport"]
