"""LinkedIn's click id on both copies of a conversion: ``li_fat_id``.

A LinkedIn ad click lands with ``?li_fat_id=<uuid>``; the Insight Tag keeps it in a
first-party ``li_fat_id`` cookie (stape's tag keeps it 90 days) and its ``/wa/``
signals carry it as ``liFatId``. The Conversions API takes the same value as
``user.userIds[{idType: LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID, idValue}]``, **never
hashed**. A backend that drops it, hashes it or sends another visitor's loses the
ad click the conversion came from.

Free of the core's finding module (``findings.py`` beside it makes the Findings and
registers the codes): the registry imports this package while
``pytest_pixelcheck.findings`` may still be importing the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from .pii_rules import sha256_hex

NAME = "linkedin"
CLICK_PARAM = "li_fat_id"

#: code -> (severity, title); ``findings.py`` registers them with the core's catalogue
IDENTITY_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "li-fat-id-mismatch": ("error", "the Conversions API's LinkedIn click id (li_fat_id) is "
                                    "not the one the browser has"),
    "li-fat-id-missing": ("warning", "the browser has a LinkedIn click id (li_fat_id) the "
                                     "Conversions API event does not carry"),
}


def _shown(value: str) -> str:
    """Enough of an id to compare by eye, not a whole one in a CI log."""
    return repr(value if len(value) <= 12 else value[:8] + "…" + value[-3:])


def click_id_in_url(url: str | None) -> str | None:
    """The ``li_fat_id`` landing-page parameter of ``url``, if any."""
    if not url:
        return None
    try:
        params = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return None
    return next((v for k, v in params if k == CLICK_PARAM and v), None)


def browser_click_ids(events: Iterable[Any]) -> list[str]:
    """Every li_fat_id the browser showed in one test, in arrival order: the /wa/
    signals' liFatId, a collect hit's li_fat_id and a landing URL's parameter."""
    seen: dict[str, None] = {}
    for event in sorted(events, key=lambda e: (e.arrival_time, e.seq)):
        if event.platform != NAME or event.source != "browser" or not event.decoded:
            continue
        for value in (event.extra.get("li_fat_id"), click_id_in_url(event.page_url)):
            if value:
                seen.setdefault(str(value))
    return list(seen)


def identity_problems(browser_id: str | None, server_id: str | None,
                      name: str) -> list[tuple[str, str, str]]:
    """(code, message, fix) for the click ids of one conversion's two copies."""
    if not browser_id:
        return []
    if not server_id:
        return [(
            "li-fat-id-missing",
            f"the browser landed from a LinkedIn ad (li_fat_id {_shown(browser_id)}) but "
            f"the Conversions API {name} carries no LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
            "read the li_fat_id cookie (or the landing URL's li_fat_id parameter) and send "
            "it unchanged in user.userIds as {idType: 'LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID', "
            "idValue: <li_fat_id>}: LinkedIn ties the conversion to the ad click by it",
        )]
    if server_id == browser_id:
        return []
    hashed = sha256_hex(browser_id) == server_id.strip().lower()
    why = ("it is the SHA-256 of the browser's li_fat_id: this id travels unhashed"
           if hashed else "the backend sent another visitor's or a made-up id")
    return [(
        "li-fat-id-mismatch",
        f"the Conversions API {name} sends LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID "
        f"{_shown(server_id)}, not the browser's li_fat_id {_shown(browser_id)}: {why}",
        "send the li_fat_id of the visitor's own request, byte for byte, as idValue of "
        "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID; never hash, trim or regenerate it",
    )]


def server_click_id(server: Any) -> str | None:
    value = server.extra.get("li_fat_id")
    return str(value) if value else None


def identity_findings(pair: Any) -> list[Any]:
    """Findings on the click ids of one merged pair whose browser copy carries its own
    li_fat_id (a collect hit with the parameter). Pairs whose tag hit carries none are
    judged from the test's /wa/ signals by ``LinkedIn.findings``."""
    browser = pair.browser
    own = browser.extra.get("li_fat_id")
    if not own:
        return []
    from .findings import identity_findings_of

    return identity_findings_of(pair, str(own))
