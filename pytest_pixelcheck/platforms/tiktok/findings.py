"""TikTok's own findings: what the core's checks cannot see because it takes TikTok's
rules to see it.

* ``event-name-variant``: the pixel and the Events API used TikTok's two spellings of
  one purchase (``CompletePayment`` / ``Purchase``). TikTok's dedup key treats them as
  one conversion (builds of the pixel map one to the other, PLATFORMS.md 2b), so the
  pair merged, but reports and optimization see two event names.
* the identity codes of ``identity.py`` (``_ttp`` and ttclid on both copies).

The codes register on import. The platform imports this module lazily:
``pytest_pixelcheck.findings`` imports the platform registry and cannot be imported
while the registry loads.
"""

from __future__ import annotations

from typing import Any

from ...findings import Finding, Severity, register_codes
from .identity import (
    MISMATCHES,
    MISSING,
    born_here,
    born_on_pages,
    identity_problems,
)
from .platform import FINDING_CODES, NAME, TIKTOK

CODES: dict[str, tuple[Severity, str]] = dict(FINDING_CODES)
register_codes(CODES)


def tiktok_findings(result: Any) -> list[Finding]:
    """Findings over one test's ``MatchResult`` (TikTok's pairs only): the name variant,
    and ids the server copy lacks (the pair's mismatches come from identity_findings)."""
    out: list[Finding] = []
    first_pages = born_on_pages(result.events)
    for pair in result.pairs:
        browser, server = pair.browser, pair.server
        if browser.platform != NAME:
            continue
        problems = identity_problems(browser, server,
                                     born_here=born_here(browser, first_pages))
        out += [Finding(code, message, fix, [browser, server], [], NAME, browser.event_name)
                for code, message, fix in problems if code in MISSING]
        sentence = TIKTOK.name_variant(browser.event_name, server.event_name)
        if sentence is not None:
            out.append(Finding(
                "event-name-variant", sentence,
                f"send one name from both sides: ttq.track('{browser.event_name}', ...) and "
                f"data[].event = '{browser.event_name}' (or '{server.event_name}' on both)",
                [browser, server], [f"browser event: {browser.event_name!r}",
                                    f"server event:  {server.event_name!r}"],
                NAME, browser.event_name))
    return out


def identity_findings(pair: Any) -> list[Finding]:
    """The _ttp / ttclid mismatches of one merged pair (``matching.Pair``)."""
    browser, server = pair.browser, pair.server
    return [Finding(code, message, fix, [browser, server], [], browser.platform,
                    browser.event_name)
            for code, message, fix in identity_problems(browser, server)
            if code in MISMATCHES]
