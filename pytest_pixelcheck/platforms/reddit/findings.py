"""Reddit's own findings: what the core's checks cannot see because it takes Reddit's
rules to see it.

The pixel sends the SHA-256 of the conversion id the page passed (``m.conversionId``),
so the two sides are compared in that hashed form (``Event.event_id`` holds it on both
sides; what was sent is in ``extra["conversion_id"]``). The core compares ids as
strings, and two digests never "nearly" match, so the near misses the core finds for
other platforms are found here, in the hashed form:

* ``near-miss-event-id``: the server's plain id, once a suffix, prefix, case or
  whitespace difference is taken away, hashes to the pixel's value.
* ``event-name-mismatch``: the same conversion id, but one side a custom event and
  the other a standard one (same name, different ``tracking_type``).
* ``reddit-conversion-id-hashed-twice``: one side sent the SHA-256 of the other's
  hashed form (the page gave rdt an already hashed id, or the backend hashed a hash).
* ``reddit-conversion-id-hash-form``: they merge, but the pixel sent the id in the
  clear while the server sent its SHA-256 (a hand-built hit or an old build):
  whether Reddit compares those is unconfirmed.
* the identity codes of ``identity.py`` (``_rdt_uuid`` and ``rdt_cid`` on both copies).

The codes register on import. The platform imports this module lazily:
``pytest_pixelcheck.findings`` imports the platform registry and cannot be imported
while the registry loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...diagnosis import explain_id_difference, side_by_side
from ...events import Event
from ...findings import Finding, Severity, register_codes
from .identity import MISMATCHES, MISSING, born_here, first_seen, identity_problems
from .pii_rules import sha256_hex
from .platform import FINDING_CODES, NAME, type_key
from .texts import HASH_ONCE, fix_text

CODES: dict[str, tuple[Severity, str]] = dict(FINDING_CODES)
register_codes(CODES)

#: ids longer than this are not taken apart character by character (a real id is short)
_MAX_VARIANT_ID = 256


def reddit_findings(result: Any) -> list[Finding]:
    """Findings over one test's ``MatchResult`` (Reddit's events only)."""
    out: list[Finding] = []
    seen = first_seen(e for e in result.events if e.platform == NAME)
    for pair in result.pairs:
        browser, server = pair.browser, pair.server
        if browser.platform != NAME:
            continue
        born = born_here(browser, server, seen)
        out += [Finding(code, message, fix, [browser, server], [], NAME, browser.event_name)
                for code, message, fix in identity_problems(browser, server, born_here=born)
                if code in MISSING]
        if browser.extra.get("conversion_id_form") == "plain" and \
                server.extra.get("conversion_id_form") == "hashed":
            out.append(Finding(
                "reddit-conversion-id-hash-form",
                f"{browser.event_name}: the pixel sent m.conversionId in the clear "
                f"({browser.extra.get('conversion_id')!r}) and the server its SHA-256: they "
                "merge here because Reddit compares the hashed form, but Reddit's own pixel "
                "always sends the SHA-256, so this hit was built by hand or by an old build, "
                "and whether Reddit hashes a plain browser id is unconfirmed",
                "load Reddit's pixel.js and pass the plain id to rdt('track', NAME, "
                "{conversionId: ID}); send metadata.conversion_id as ID or its SHA-256",
                [browser, server], side_by_side(browser, server), NAME, browser.event_name))
    out += _unmerged(result)
    return out


def identity_findings(pair: Any) -> list[Finding]:
    """The _rdt_uuid / rdt_cid mismatches of one merged pair (``matching.Pair``)."""
    browser, server = pair.browser, pair.server
    return [Finding(code, message, fix, [browser, server], [], browser.platform,
                    browser.event_name)
            for code, message, fix in identity_problems(browser, server)
            if code in MISMATCHES]


def _mine(events: list[Event]) -> list[Event]:
    return [e for e in events if e.platform == NAME and e.decoded and e.event_id]


def _unmerged(result: Any) -> list[Finding]:
    """Each unmerged pixel event against the unmerged server events of its pixel: the
    first that is the same conversion under a mangled id or another type."""
    out: list[Finding] = []
    servers = _mine(result.server_only)
    for browser in _mine(result.browser_only):
        for server in servers:
            if server.pixel_id != browser.pixel_id:
                continue  # the core's wrong-pixel check compares ids across pixels
            finding = _relation(browser, server)
            if finding is not None:
                out.append(finding)
                servers.remove(server)
                break
    return out


def _relation(browser: Event, server: Event) -> Finding | None:
    name = browser.event_name or server.event_name or "event"
    events, details = [browser, server], side_by_side(browser, server)
    if type_key(browser) != type_key(server):
        if browser.event_id == server.event_id and browser.event_name == server.event_name:
            return Finding(
                "event-name-mismatch",
                f"{name}: browser and server carry the same conversion id, but one sends "
                f"tracking_type {browser.extra.get('tracking_type')!r} and the other "
                f"{server.extra.get('tracking_type_sent') or server.extra.get('tracking_type')!r}"
                ": Reddit deduplicates only events of the same type, and a custom event "
                "named like a standard one is not that standard event",
                fix_text("event-name-mismatch", browser), events, details, NAME, name)
        return None
    b_id, s_id = browser.event_id or "", server.event_id or ""
    if sha256_hex(b_id) == s_id:
        return Finding(
            "reddit-conversion-id-hashed-twice",
            f"{name}: the server's metadata.conversion_id is the SHA-256 of the pixel's "
            "m.conversionId, itself already the SHA-256 of the page's id: the backend hashed "
            "a hash, so Reddit never merges the two",
            HASH_ONCE, events, details, NAME, name)
    if sha256_hex(s_id) == b_id:
        return Finding(
            "reddit-conversion-id-hashed-twice",
            f"{name}: the pixel's m.conversionId is the SHA-256 of the server's conversion "
            "id in its hashed form: the page gave rdt('track', ...) an id it had already "
            "hashed and the pixel hashed it again, so Reddit never merges the two",
            HASH_ONCE, events, details, NAME, name)
    note = _near_miss(browser, server)
    if note is None:
        return None
    sent = server.extra.get("conversion_id")
    return Finding(
        "near-miss-event-id",
        f"{name}: the server's conversion_id {sent!r} is not the id the page gave the "
        f"pixel: {note}. The pixel sent the SHA-256 of its id ({b_id[:12]}…), Reddit compares "
        "the two in that form, and they differ",
        fix_text("near-miss-event-id", browser), events,
        details + [f"server conversion_id as sent: {sent!r}"], NAME, name)


def _near_miss(browser: Event, server: Event) -> str | None:
    """How the server's plain id differs from the page's, when taking a little off or
    changing case makes it the pixel's id; None when the two look unrelated."""
    sent = server.extra.get("conversion_id")
    if server.extra.get("conversion_id_form") != "plain" or not isinstance(sent, str):
        return None
    if browser.extra.get("conversion_id_form") == "plain":
        # a hand-built hit in the clear: compare the two as sent
        plain = browser.extra.get("conversion_id")
        return explain_id_difference(plain, sent) if isinstance(plain, str) else None
    target = browser.event_id
    for candidate in _variants(sent):
        if sha256_hex(candidate) == target:
            return explain_id_difference(candidate, sent)
    return None


def _variants(text: str) -> Iterator[str]:
    """The id with whitespace, case, or a prefix or suffix taken off, closest first."""
    yield from dict.fromkeys((text.strip(), text.lower(), text.upper(), text.strip().lower(),
                              text.strip().upper()))
    if len(text) > _MAX_VARIANT_ID:
        return
    for cut in range(1, len(text)):
        yield text[:-cut]  # the server id has an extra suffix
        yield text[cut:]   # ... or an extra prefix
