"""TikTok's browser identity on both copies of a conversion: the _ttp cookie and ttclid.

TikTok attributes a server event to a visitor through ``user.ttp`` (the pixel's
``_ttp`` cookie) and ``user.ttclid`` (the ad click id from the landing URL). When
``event_id`` is missing TikTok even falls back to ``_ttp`` to deduplicate. A backend
that sends a different ttp (a freshly generated one, a hashed one, another
visitor's) or loses the click id makes its events count for somebody else.

This module stays free of the core's finding module (``findings.py`` beside it makes
the Findings and registers the codes): the platform registry imports this package
while ``pytest_pixelcheck.findings`` may itself still be importing the registry.
"""

from __future__ import annotations

from typing import Any, Literal

from .pii_rules import sha256_hex

#: code -> (severity, title); ``findings.py`` registers them with the core's catalogue
IDENTITY_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "ttp-mismatch": ("error", "the server's user.ttp is not the browser's _ttp cookie"),
    "ttp-missing": ("warning", "the server event carries no ttp although the browser has a "
                               "_ttp cookie"),
    "ttclid-mismatch": ("error", "the server's ttclid is not the click id the browser "
                                 "landed with"),
    "ttclid-missing": ("warning", "the browser landed with a ttclid the server event does "
                                  "not carry"),
}

def _shown(value: str) -> str:
    """Enough of an identifier to compare by eye; these are ids, not customer data,
    but a whole ttclid in a CI log is still more than a reader needs."""
    return repr(value if len(value) <= 12 else value[:8] + "…" + value[-3:])


def identity_problems(browser: Any, server: Any, *, born_here: frozenset[str] = frozenset()
                      ) -> list[tuple[str, str, str]]:
    """(code, message, fix) for each identity difference between the two copies.

    ``born_here``: the ids ("ttp", "ttclid") the pixel first set on this very page. The
    backend answers the page's request, which left the browser before the pixel set
    them, so it cannot have them: their absence on the server is no fault.
    """
    name = browser.event_name or server.event_name or "event"
    out: list[tuple[str, str, str]] = []
    b_ttp, s_ttp = browser.extra.get("ttp") or None, server.extra.get("ttp") or None
    if b_ttp and not s_ttp and "ttp" not in born_here:
        out.append((
            "ttp-missing",
            f"server {name} carries no user.ttp; the browser's _ttp cookie is {_shown(b_ttp)}",
            "read the _ttp cookie from the visitor's request and send it unchanged as "
            "data[].user.ttp (Events API 2.0) or context.user.ttp (1.0): TikTok matches the "
            "visitor by it and falls back to it when event_id is missing",
        ))
    elif b_ttp and s_ttp and b_ttp != s_ttp:
        hashed = sha256_hex(b_ttp) == s_ttp.strip().lower()
        why = ("it is the SHA-256 of the browser's _ttp: ttp must be sent as is, never hashed"
               if hashed else "the backend sent another visitor's or a freshly generated id")
        out.append((
            "ttp-mismatch",
            f"server {name} user.ttp {_shown(s_ttp)} is not the browser's _ttp cookie "
            f"{_shown(b_ttp)}: {why}",
            "send the _ttp cookie value of the visitor's own request, byte for byte; do not "
            "generate one on the server and do not hash it",
        ))
    b_click, s_click = browser.extra.get("ttclid") or None, server.extra.get("ttclid") or None
    if b_click and not s_click and "ttclid" not in born_here:
        out.append((
            "ttclid-missing",
            f"the browser landed with ttclid {_shown(b_click)} but server {name} sends no "
            "user.ttclid",
            "keep the ttclid landing-page parameter (or the pixel's ttclid cookie) and send it "
            "as data[].user.ttclid (2.0) or context.ad.callback (1.0), unchanged",
        ))
    elif b_click and s_click and b_click != s_click:
        out.append((
            "ttclid-mismatch",
            f"server {name} ttclid {_shown(s_click)} is not the click id the browser landed "
            f"with, {_shown(b_click)}",
            "send the ttclid exactly as it arrived in the landing URL: it is case-sensitive "
            "and starts with 'E.C.P.'; never hash, trim or re-encode it",
        ))
    return out


MISMATCHES = ("ttp-mismatch", "ttclid-mismatch")
MISSING = ("ttp-missing", "ttclid-missing")


def born_on_pages(events: Any) -> dict[tuple[str, str], str | None]:
    """(id name, value) -> the page of the first browser hit that carried it."""
    first: dict[tuple[str, str], str | None] = {}
    for event in sorted(events, key=lambda e: (e.arrival_time, e.seq)):
        if event.source != "browser" or event.platform != "tiktok":
            continue
        for key in ("ttp", "ttclid"):
            value = event.extra.get(key)
            if value:
                first.setdefault((key, value), event.page_url)
    return first


def born_here(browser: Any, first_pages: dict[tuple[str, str], str | None]) -> frozenset[str]:
    return frozenset(key for key in ("ttp", "ttclid")
                     if browser.extra.get(key) and
                     first_pages.get((key, browser.extra[key])) == browser.page_url)


def identity_findings(pair: Any) -> list[Any]:
    """Findings on the _ttp / ttclid values of one merged pair (``matching.Pair``): the
    mismatches. Missing ids need the whole capture (was the cookie set on this very
    page?) and come from ``TikTok.findings(result)``."""
    from .findings import identity_findings as findings_of

    return findings_of(pair)
