"""Snap's visitor identity on both copies of a conversion: the ``_scid`` cookie
(``user_data.sc_cookie1``) and the ad click id (``ScCid`` -> ``user_data.sc_click_id``).

Snap attributes a server event to a Snapchatter through ``sc_cookie1`` (the pixel's
first-party ``_scid`` cookie, sent unchanged) and ``sc_click_id`` (the ``ScCid``
landing-page parameter). A backend that hashes the cookie, mints its own, reads
another visitor's, or drops the click id makes its events count for nobody.

What the pixel hit shows, and what it does not: the hit carries ``u_c1``, but the
``_scid`` cookie value is **not** the ``u_c1`` value (PLATFORMS.md 2b), so the server's
``sc_cookie1`` is never compared with ``u_c1``. ``u_c1`` only tells the visitors
apart; the checks are on what the server sends across one visitor's events:

* ``sc-cookie1-hashed``: a 64-hex ``sc_cookie1`` is a digest, not the cookie.
* ``sc-cookie1-unstable``: the server copies of one visitor's events carry different
  ``sc_cookie1`` values (a backend generating one per event).
* ``sc-cookie1-missing``: the server copy has none although the pixel had set
  ``_scid`` on an earlier page (on the page where it first ran, the backend answered
  the request before the cookie existed: no fault).
* ``sc-click-id-mismatch`` / ``sc-click-id-missing``: against the ``ScCid`` the visitor
  landed with (read from the page URL ``pl`` of the visitor's hits).

This module stays free of the core's finding module (``findings.py`` beside it makes
the Findings and registers the codes): the platform registry imports this package
while ``pytest_pixelcheck.findings`` may itself still be importing the registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from .pii_rules import is_hashed, sha256_hex

#: code -> (severity, title); ``findings.py`` registers them with the core's catalogue
IDENTITY_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "sc-click-id-mismatch": ("error", "the server's sc_click_id is not the ScCid the visitor "
                                      "landed with"),
    "sc-click-id-missing": ("warning", "the visitor landed with a ScCid the server event "
                                       "does not carry"),
    "sc-cookie1-missing": ("warning", "the server event carries no sc_cookie1 although the "
                                      "Snap Pixel had set _scid"),
    "sc-cookie1-hashed": ("error", "the server's sc_cookie1 is a SHA-256 digest, not the "
                                   "_scid cookie"),
    "sc-cookie1-unstable": ("error", "the server sends another sc_cookie1 for one visitor "
                                     "than for the visitor's other events"),
}

#: codes one merged pair shows by itself (``identity_findings``)
PAIR_CODES = ("sc-click-id-mismatch", "sc-cookie1-hashed")
#: codes that need the whole capture (``Snapchat.findings``)
CAPTURE_CODES = ("sc-click-id-missing", "sc-cookie1-missing")

COOKIE1_FIX = ("read the _scid cookie from the visitor's own request and send it unchanged "
               "as user_data.sc_cookie1 (uuid_c1 in the v2 API): never hash it, never "
               "generate one on the server, never reuse another visitor's")
CLICK_FIX = ("keep the ScCid landing-page parameter for the visit (the Snap Pixel keeps it "
             "in the _scclid cookie) and send it unchanged as user_data.sc_click_id "
             "(click_id in the v2 API) with every later event")


def _shown(value: str) -> str:
    """Enough of an identifier to compare by eye; a whole id in a CI log is more than a
    reader needs."""
    return repr(value if len(value) <= 14 else value[:8] + "…" + value[-4:])


def identity_problems(browser: Any, server: Any, *, landing_click: str | None = None,
                      born_here: bool = True) -> list[tuple[str, str, str]]:
    """(code, message, fix) for each identity difference between the two copies.

    ``landing_click``: the ScCid the visitor landed with (when this hit's own page URL
    no longer has it). ``born_here``: the pixel first ran on this very page, so the
    backend's request left before ``_scid`` existed and cannot carry it.
    """
    name = browser.event_name or server.event_name or "event"
    out: list[tuple[str, str, str]] = []
    b_click = browser.extra.get("sc_click_id") or landing_click
    s_click = server.extra.get("sc_click_id") or None
    if b_click and s_click and b_click != s_click:
        hashed = sha256_hex(b_click) == str(s_click).strip().lower()
        why = ("it is the SHA-256 of the ScCid: sc_click_id must be sent as is" if hashed
               else "the backend sent another click id, or altered this one")
        out.append(("sc-click-id-mismatch",
                    f"server {name} sc_click_id {_shown(s_click)} is not the ScCid the "
                    f"visitor landed with, {_shown(b_click)}: {why}", CLICK_FIX))
    elif b_click and not s_click:
        out.append(("sc-click-id-missing",
                    f"the visitor landed with ScCid {_shown(b_click)} but server {name} sends "
                    "no user_data.sc_click_id", CLICK_FIX))
    s_cookie = server.extra.get("sc_cookie1") or None
    if s_cookie and is_hashed(s_cookie):
        out.append(("sc-cookie1-hashed",
                    f"server {name} sc_cookie1 {_shown(s_cookie)} is a 64-hex digest: Snap "
                    "wants the _scid cookie value itself, and never matches its hash",
                    COOKIE1_FIX))
    elif browser.extra.get("u_c1") and not s_cookie and not born_here:
        out.append(("sc-cookie1-missing",
                    f"server {name} carries no user_data.sc_cookie1, although the Snap Pixel "
                    "had set the _scid cookie on an earlier page of this visit", COOKIE1_FIX))
    return out


def _snap_browser(events: Iterable[Any]) -> list[Any]:
    return sorted((e for e in events if e.source == "browser" and e.platform == "snapchat"
                   and e.decoded), key=lambda e: (e.arrival_time, e.seq))


def landing_click_ids(events: Iterable[Any]) -> dict[str | None, str]:
    """Visitor (``u_c1``) -> the first ScCid seen in the page URL of its hits."""
    out: dict[str | None, str] = {}
    for event in _snap_browser(events):
        click = event.extra.get("sc_click_id")
        if click:
            out.setdefault(event.extra.get("u_c1"), click)
    return out


def first_pages(events: Iterable[Any]) -> dict[str, str | None]:
    """Visitor (``u_c1``) -> the page of the first hit that carried it: where the pixel
    first ran, and so where ``_scid`` was set."""
    out: dict[str, str | None] = {}
    for event in _snap_browser(events):
        visitor = event.extra.get("u_c1")
        if visitor:
            out.setdefault(visitor, event.page_url)
    return out


def _path_of(url: str | None) -> str | None:
    from urllib.parse import urlsplit

    return urlsplit(url).path if url else None


def capture_problems(result: Any) -> list[tuple[str, str, str, list[Any]]]:
    """(code, message, fix, events) over one test's Snap pairs: the missing ids, the
    click id against the landing ScCid, and an unstable sc_cookie1."""
    landing = landing_click_ids(result.events)
    pages = first_pages(result.events)
    pairs = [p for p in result.pairs if p.browser.platform == "snapchat"]
    out: list[tuple[str, str, str, list[Any]]] = []
    for pair in pairs:
        browser, server = pair.browser, pair.server
        visitor = browser.extra.get("u_c1")
        own_click = browser.extra.get("sc_click_id")
        first = pages.get(visitor) if visitor else None
        # the server copy of a page answers that page's request: compare paths, as the
        # landing URL's query (ScCid) is gone on later pages of the same path
        born_here = visitor is None or _path_of(first) == _path_of(browser.page_url)
        for code, message, fix in identity_problems(
                browser, server, landing_click=None if own_click else landing.get(visitor),
                born_here=born_here):
            if code in CAPTURE_CODES or (code == "sc-click-id-mismatch" and not own_click):
                out.append((code, message, fix, [browser, server]))
    out += _unstable_cookie1(pairs)
    return out


def _unstable_cookie1(pairs: list[Any]) -> list[tuple[str, str, str, list[Any]]]:
    by_visitor: dict[str, list[tuple[Any, str]]] = {}
    for pair in pairs:
        visitor = pair.browser.extra.get("u_c1")
        cookie = pair.server.extra.get("sc_cookie1")
        if visitor and cookie and not is_hashed(cookie):
            by_visitor.setdefault(visitor, []).append((pair, cookie))
    out = []
    for seen in by_visitor.values():
        counts = Counter(cookie for _, cookie in seen)
        if len(counts) < 2:
            continue
        # the value most of the visitor's events carry is the cookie; ties: the first
        top = max(counts.values())
        usual = next(cookie for _, cookie in seen if counts[cookie] == top)
        for pair, cookie in seen:
            if cookie == usual:
                continue
            name = pair.server.event_name or "event"
            out.append((
                "sc-cookie1-unstable",
                f"server {name} sc_cookie1 {_shown(cookie)} is not the {_shown(usual)} the "
                f"backend sent with this visitor's other events ({counts[usual]} of them): "
                "it generates an id per event or reads another visitor's cookie",
                COOKIE1_FIX, [pair.browser, pair.server]))
    return out


def identity_findings(pair: Any) -> list[Any]:
    """Findings on one merged pair (``matching.Pair``): a click id that differs from the
    one in this very hit's page URL, a hashed sc_cookie1. What needs the whole capture
    comes from ``Snapchat.findings(result)``."""
    from .findings import identity_findings as findings_of

    return findings_of(pair)
