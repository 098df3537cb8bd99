"""Pinterest's click id on both copies of a conversion: ``epik``.

A visitor who clicks a Pinterest ad lands with ``?epik=<id>``; the tag keeps it in the
first-party ``_epik`` cookie, and the Conversions API takes it as
``user_data.click_id``, "the unique identifier stored in _epik cookie on your domain
or &epik= query parameter in the URL" (Pinterest's field text). It is an identifier,
never hashed. A backend that drops it, hashes it or sends another visitor's loses the
ad click the conversion came from.

The landing page's own request carries the epik in its URL, so even the server copy
of the very first page can send it: a missing click id is a fault on every page.

This module stays free of the core's finding module (``findings.py`` beside it makes
the Findings and registers the codes): the platform registry imports this package
while ``pytest_pixelcheck.findings`` may itself still be importing the registry.
"""

from __future__ import annotations

from typing import Any, Literal

from .pii_rules import sha256_hex

#: code -> (severity, title); ``findings.py`` registers them with the core's catalogue
IDENTITY_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "epik-mismatch": ("error", "the Conversions API click_id is not the browser's _epik "
                               "click id"),
    "epik-missing": ("warning", "the browser has an _epik click id the Conversions API "
                                "event does not carry as user_data.click_id"),
}


def _shown(value: str) -> str:
    """Enough of an id to compare by eye; a click id is no customer data, but a whole one
    in a CI log is more than a reader needs."""
    return repr(value if len(value) <= 12 else value[:8] + "…" + value[-3:])


def identity_problems(browser: Any, server: Any) -> list[tuple[str, str, str]]:
    """(code, message, fix) for each difference between the two copies' click ids."""
    name = browser.event_name or server.event_name or "event"
    b_epik = browser.extra.get("epik") or None
    s_click = server.extra.get("click_id") or None
    if not b_epik:
        return []
    if not s_click:
        return [(
            "epik-missing",
            f"the browser landed with epik {_shown(b_epik)} (the _epik cookie) but the "
            f"Conversions API {server.event_name or name} sends no user_data.click_id",
            "read the _epik cookie (or the epik= parameter of the landing URL) from the "
            "visitor's request and send it unchanged as data[].user_data.click_id: it ties "
            "the conversion to the Pinterest ad click",
        )]
    if s_click != b_epik:
        hashed = sha256_hex(b_epik) == s_click.strip().lower()
        why = ("it is the SHA-256 of the browser's _epik: click_id is sent as is, never "
               "hashed" if hashed else
               "the backend sent another visitor's click id, or an altered one")
        return [(
            "epik-mismatch",
            f"Conversions API {server.event_name or name} user_data.click_id "
            f"{_shown(s_click)} is not the browser's _epik {_shown(b_epik)}: {why}",
            "send the _epik cookie value of the visitor's own request, byte for byte, as "
            "data[].user_data.click_id; never hash, trim or re-encode it",
        )]
    return []


def identity_findings(pair: Any) -> list[Any]:
    """Findings on the click ids of one merged pair (``matching.Pair``)."""
    from .findings import identity_findings as findings_of

    return findings_of(pair)
