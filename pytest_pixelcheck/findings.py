"""The catalogue of ways deduplication breaks: codes, severities and the finding.

Each finding has a stable code, a severity, the events involved, one line on
what happened and one on what to change. Codes are part of the public API:
tests and CI filters match on them, so never rename one. The diagnosis that
finds them is ``diagnosis.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from .events import Event

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}

#: code -> (severity, title). The single list of what pixelcheck can report.
CATALOGUE: dict[str, tuple[Severity, str]] = {
    "undecodable-request": ("error", "a collection hit or server call could not be decoded"),
    "payload-too-deep": ("error", "a request's JSON is nested too deep to read"),
    "server-call-rejected": ("error", "the platform's API rejected a server call"),
    "transient-error-not-retried": ("error", "a transient API error was never retried"),
    "server-gave-up": ("error", "the backend stopped retrying and the event was lost"),
    "retried-after-error": ("info", "a server call failed and its same-id retry got through"),
    "near-miss-event-id": ("error", "browser and server ids almost match"),
    "event-name-mismatch": ("error", "the same conversion is named differently on each side"),
    "wrong-pixel": ("error", "the server sends to a different pixel than the browser"),
    "missing-event-id": ("error", "an event carries no event id, so it cannot deduplicate"),
    "server-event-missing": ("error", "the browser event has no server twin"),
    "server-event-undecodable": ("error", "the server twin arrived but could not be decoded"),
    "browser-event-missing": ("error", "the server event has no browser twin"),
    "duplicate-browser-trigger": ("error", "the browser fired the same event twice"),
    "duplicate-server-send": ("warning", "the backend sent the same event twice with one id"),
    "server-retry-new-id": ("error", "the backend re-sent an event under a new id"),
    "reused-event-id": ("error", "one event id is used for different conversions"),
    "server-event-late": ("warning", "the server event arrived long after the browser's"),
    "server-before-browser": ("warning", "the server event arrived before the browser's"),
    "event-time-too-old": ("error", "event_time is older than the platform accepts"),
    "event-time-in-future": ("error", "event_time lies in the future"),
    "event-time-in-milliseconds": ("error", "event_time is in milliseconds, seconds are due"),
    "payload-mismatch": ("warning", "value, currency or content ids differ between sides"),
}



def register_codes(codes: dict[str, tuple[Severity, str]]) -> None:
    """Checker modules (pii, sink validation, ...) add their own codes at import."""
    for code, entry in codes.items():
        if code in CATALOGUE and CATALOGUE[code] != entry:
            raise ValueError(f"finding code {code!r} is already registered differently")
        CATALOGUE[code] = entry


# --- per-code severity overrides ---------------------------------------------------------
#
# The CATALOGUE holds each code's default severity; a project may move codes up or down
# (pixelcheck_severity / --pixelcheck-severity / analyze --severity). The overrides live
# here, in one process-wide mapping read by ``Finding.severity``, so assertions, the gate
# and every report see the same severity without threading a policy through each call.
# It is set once per session: under xdist each worker and the controller parse the same
# option from their own config, so every process applies it.

_severity_overrides: dict[str, Severity] = {}


def default_severity(code: str) -> Severity:
    """The catalogue's severity of ``code``, before any override."""
    return CATALOGUE[code][0]


def effective_severity(code: str) -> Severity:
    """The severity ``code`` counts with in this session (override, else catalogue)."""
    return _severity_overrides.get(code) or CATALOGUE[code][0]


def severity_overrides() -> dict[str, Severity]:
    """The overrides in force (code -> severity); empty when none."""
    return dict(_severity_overrides)


def set_severity_overrides(overrides: dict[str, Severity] | None) -> None:
    """Replace the overrides in force (None or {} restores the catalogue's severities)."""
    _severity_overrides.clear()
    _severity_overrides.update(overrides or {})


@contextmanager
def severity_policy(overrides: dict[str, Severity] | None) -> Iterator[None]:
    """Apply ``overrides`` for a block (the CLI, tests), then restore the previous ones."""
    previous = severity_overrides()
    set_severity_overrides(overrides)
    try:
        yield
    finally:
        set_severity_overrides(previous)


def parse_severity_overrides(text: str | Iterable[str] | None) -> dict[str, Severity]:
    """``"payload-mismatch=error, server-event-late=info"`` (comma or newline separated;
    an ini list works too) -> {code: severity}. Raises ValueError naming the known codes
    or severities on a typo, so a misspelt code never silently keeps its default."""
    if text is None:
        return {}
    lines = [text] if isinstance(text, str) else list(text)
    entries = [e.strip() for line in lines for e in line.replace("\n", ",").split(",")]
    out: dict[str, Severity] = {}
    for entry in filter(None, entries):
        code, sep, severity = (part.strip() for part in entry.partition("="))
        if not sep or not code or not severity:
            raise ValueError(f"{entry!r} is not CODE=SEVERITY (e.g. payload-mismatch=error)")
        if code not in CATALOGUE:
            raise ValueError(f"unknown finding code {code!r}; known codes: "
                             + ", ".join(sorted(CATALOGUE)))
        severity = severity.lower()
        if severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {severity!r} for {code}; known severities: "
                             + ", ".join(sorted(SEVERITY_RANK, key=lambda s: SEVERITY_RANK[s],
                                                reverse=True)))
        out[code] = severity  # type: ignore[assignment]  # checked against SEVERITY_RANK
    return out


@dataclass(repr=False)  # the generated repr would print events' raw requests
class Finding:
    code: str
    message: str
    fix: str
    events: list[Event] = field(default_factory=list)
    #: extra lines shown under the message, e.g. the two ids side by side
    details: list[str] = field(default_factory=list)
    platform: str | None = None
    event_name: str | None = None

    @property
    def severity(self) -> Severity:
        """The effective severity: the session's override of the code, else the catalogue's."""
        return effective_severity(self.code)

    @property
    def title(self) -> str:
        return CATALOGUE[self.code][1]

    def involves(self, event_names: Iterable[str]) -> bool:
        """True when the finding concerns one of ``event_names``. A request that could
        not be decoded far enough to read a name may be any of them, so it counts."""
        names = set(event_names)
        return self.event_name in names or any(
            e.event_name in names or (not e.decoded and e.event_name is None)
            for e in self.events)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "details": self.details,
            "platform": self.platform,
            "event_name": self.event_name,
            "events": [e.seq for e in self.events],
            # readers of a report see that a project moved this code's severity
            **({"default_severity": default_severity(self.code)}
               if self.severity != default_severity(self.code) else {}),
        }

    def __repr__(self) -> str:
        from .redact import scrub_secrets
        from .report import shorten  # report imports this module

        seqs = ", ".join(str(e.seq) for e in self.events)
        secrets = set().union(*(e.secrets() for e in self.events))
        # scrubbed before it is shortened: a cut token would escape the patterns
        message = shorten(scrub_secrets(self.message, secrets), 120)
        return f"Finding({self.severity} {self.code} events=[{seqs}]: {message})"


def at_least(findings: Iterable[Finding], severity: Severity) -> list[Finding]:
    rank = SEVERITY_RANK[severity]
    return [f for f in findings if SEVERITY_RANK[f.severity] >= rank]


# The diagnosis moved to ``diagnosis.py``; imports from here keep working.
_MOVED = frozenset({"diagnose", "DiagnosisSettings", "explain_id_difference", "side_by_side",
                    "in_platform_words", "client_of"})


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        from . import diagnosis

        return getattr(diagnosis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
