"""Identity parity of a merged GA4 purchase: the Measurement Protocol copy must speak
for the same browser (``client_id`` = gtag.js ``cid``) and, to join its session
rather than open a new one, carry the same ``session_id`` (= ``sid``).

A purchase that pairs has the same client id by construction while the dedup key
carries it (``platform.DEDUP_PER_CLIENT``); the check stays for the day it does not.
"""

from __future__ import annotations

from typing import Any

from ...findings import Finding
from .findings import CODES  # noqa: F401  (registers the codes used below)
from .platform import NAME
from .texts import CLIENT_ID


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    # session ids travel as strings from the browser and often as numbers from servers
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def identity_findings(pair: Any) -> list[Finding]:
    browser, server = pair.browser, pair.server
    if browser.platform != NAME or server.platform != NAME:
        return []
    out: list[Finding] = []
    label = f"{browser.event_name} transaction_id={browser.event_id!r}"
    b_cid, s_cid = _text(browser.extra.get("client_id")), _text(server.extra.get("client_id"))
    if b_cid and s_cid != b_cid:
        out.append(Finding(
            "client-id-not-from-browser",
            f"{label}: the Measurement Protocol client_id {s_cid!r} is not the browser's cid "
            f"{b_cid!r}: the Measurement Protocol purchase lands as a separate, unattributed "
            "user", CLIENT_ID, [browser, server],
            [f"browser cid: {b_cid}", f"server client_id: {s_cid}"], NAME, browser.event_name,
        ))
    b_sid, s_sid = _text(browser.extra.get("session_id")), _text(server.extra.get("session_id"))
    if b_sid and s_sid != b_sid:
        what = (f"carries session_id {s_sid!r}, not the browser's sid {b_sid!r}" if s_sid
                else "carries no params.session_id")
        out.append(Finding(
            "session-id-not-from-browser",
            f"{label}: the Measurement Protocol purchase {what}: GA4 files it outside the "
            "visit that led to it (no source, no landing page; not in Realtime)",
            "read the session id from the _ga_<measurement id without G-> cookie "
            "(GS1.1.<session id>...., or GS2.1.s<session id>$...) and send it as "
            "events[].params.session_id, with engagement_time_msec",
            [browser, server], [f"browser sid: {b_sid}", f"server session_id: {s_sid}"],
            NAME, browser.event_name,
        ))
    return out
