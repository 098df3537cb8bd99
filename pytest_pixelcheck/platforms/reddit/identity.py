"""Reddit's browser identity on both copies of a conversion: the ``_rdt_uuid`` cookie
and the ``rdt_cid`` click id.

Reddit matches a Conversions API event to a visitor through ``user.uuid`` (the
pixel's ``_rdt_uuid`` cookie, ``{timestamp}.{uuid}``; Reddit takes the whole value
or the UUID part alone) and ``click_id`` (the ``rdt_cid`` parameter of the ad click's
landing URL). Without a conversion id it even deduplicates on the session (uuid).
A backend that sends another uuid (a freshly generated one, a hashed one) or loses
the click id makes its conversions count for nobody's ad click.

This module stays free of the core's finding module (``findings.py`` beside it makes
the Findings): the registry imports this package while ``pytest_pixelcheck.findings``
may itself still be importing the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from .pii_rules import sha256_hex

NAME = "reddit"

#: code -> (severity, title); registered with the core's catalogue at start
IDENTITY_CODES: dict[str, tuple[Literal["error", "warning", "info"], str]] = {
    "reddit-uuid-mismatch": ("error", "the server's user.uuid is not the browser's _rdt_uuid "
                                      "cookie"),
    "reddit-uuid-missing": ("warning", "the server event carries no user.uuid although the "
                                       "browser has an _rdt_uuid cookie"),
    "reddit-click-id-mismatch": ("error", "the server's click_id is not the rdt_cid the "
                                          "browser landed with"),
    "reddit-click-id-missing": ("warning", "the browser landed with an rdt_cid the server "
                                           "event does not carry"),
}
MISMATCHES = ("reddit-uuid-mismatch", "reddit-click-id-mismatch")
MISSING = ("reddit-uuid-missing", "reddit-click-id-missing")
KEYS = ("uuid", "click_id")


def uuid_part(value: str) -> str:
    """``1684189007728.7c73f2ae-…`` -> ``7c73f2ae-…``: the cookie's UUID, which is what
    the pixel sends and what Reddit compares (a bare UUID stays as it is)."""
    text = value.strip()
    return text.rsplit(".", 1)[1] if "." in text else text


def _shown(value: str) -> str:
    """Enough of an identifier to compare by eye (ids, not customer data, but a whole
    click id in a CI log is more than a reader needs)."""
    return repr(value if len(value) <= 14 else value[:8] + "…" + value[-4:])


def identity_problems(browser: Any, server: Any, *, born_here: frozenset[str] = frozenset()
                      ) -> list[tuple[str, str, str]]:
    """(code, message, fix) for each identity difference between the two copies.

    ``born_here``: the ids ("uuid", "click_id") that first appeared in the browser
    after the server's copy happened: the backend handled the request before the pixel
    set the cookie, so it could not have them, and their absence is no fault.
    """
    name = browser.event_name or server.event_name or "event"
    out: list[tuple[str, str, str]] = []
    b_uuid, s_uuid = browser.extra.get("uuid") or None, server.extra.get("uuid") or None
    if b_uuid and not s_uuid and "uuid" not in born_here:
        out.append((
            "reddit-uuid-missing",
            f"server {name} carries no user.uuid; the browser's _rdt_uuid is {_shown(b_uuid)}",
            "read the _rdt_uuid cookie from the visitor's request and send it unchanged as "
            "events[].user.uuid (the whole value or its UUID part): Reddit matches the "
            "visitor by it, and deduplicates on it when a conversion id is missing",
        ))
    elif b_uuid and s_uuid and uuid_part(s_uuid) != uuid_part(b_uuid):
        hashed = s_uuid.strip().lower() in {sha256_hex(b_uuid), sha256_hex(uuid_part(b_uuid))}
        why = ("it is the SHA-256 of the browser's uuid: user.uuid is an identifier Reddit "
               "wants as is, never hashed" if hashed else
               "the backend sent another visitor's or a freshly generated uuid")
        out.append((
            "reddit-uuid-mismatch",
            f"server {name} user.uuid {_shown(s_uuid)} is not the browser's _rdt_uuid "
            f"{_shown(b_uuid)}: {why}",
            "send the _rdt_uuid cookie of the visitor's own request as events[].user.uuid, "
            "byte for byte (Reddit matches the visitor by it, and deduplicates on it when a "
            "conversion id is missing); never generate one on the server and never hash it",
        ))
    b_click = browser.extra.get("click_id") or None
    s_click = server.extra.get("click_id") or None
    if b_click and not s_click and "click_id" not in born_here:
        out.append((
            "reddit-click-id-missing",
            f"the browser landed with rdt_cid {_shown(b_click)} but server {name} sends no "
            "click_id",
            "keep the rdt_cid landing-page parameter (or a first-party cookie holding it) and "
            "send it as events[].click_id, unchanged: it is Reddit's strongest attribution "
            "signal",
        ))
    elif b_click and s_click and b_click != s_click:
        hashed = s_click.strip().lower() == sha256_hex(b_click)
        why = ("it is the SHA-256 of the click id; click_id must travel as is" if hashed
               else "it is not the click id of this visit")
        out.append((
            "reddit-click-id-mismatch",
            f"server {name} click_id {_shown(s_click)} is not the rdt_cid the browser landed "
            f"with, {_shown(b_click)}: {why}",
            "send the rdt_cid exactly as it arrived in the landing URL as events[].click_id "
            "(Reddit attributes the conversion to the ad click by it); never hash, trim or "
            "re-encode it",
        ))
    return out


def _moment(event: Any) -> float:
    """When the event happened: its own time where it has one (the pixel's ``ts``, the
    API's ``event_at``), else when it arrived."""
    return event.event_time if event.event_time is not None else event.arrival_time


def first_seen(events: Iterable[Any]) -> dict[tuple[str, str], float]:
    """(id name, value) -> when the first pixel hit carrying it happened."""
    first: dict[tuple[str, str], float] = {}
    for event in events:
        if event.source != "browser" or event.platform != NAME:
            continue
        for key in KEYS:
            value = event.extra.get(key)
            if value:
                moment = _moment(event)
                if moment < first.get((key, value), float("inf")):
                    first[(key, value)] = moment
    return first


def born_here(browser: Any, server: Any, seen: dict[tuple[str, str], float]
              ) -> frozenset[str]:
    """The ids the browser did not have yet when the server's copy happened.

    The backend sends its copy while it answers the page; the pixel sets _rdt_uuid (and
    keeps rdt_cid) only once that page runs. So an id whose first hit came at or after
    the server event's own time was not there for the backend to read. (A server time in
    whole seconds makes this lenient within a second, never strict.)
    """
    when = _moment(server)
    return frozenset(key for key in KEYS
                     if browser.extra.get(key)
                     and seen.get((key, browser.extra[key]), float("inf")) >= when)
