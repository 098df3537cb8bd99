"""Token and configuration safety: leaked access tokens, test event codes that
must not ship, and pixels that should not fire.

Pure functions over captured events and proxy traffic; ``Pixelcheck.findings``
calls them with what the session knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .events import Event
from .findings import Finding, register_codes
from .proxy import TrafficEntry
from .redact import scrub
from .wire import host_of

register_codes({
    "exposed-access-token": ("error", "a server API access token reached the browser"),
    "test-event-code": ("warning", "server events carry their platform's test code"),
    "unexpected-pixel": ("error", "a pixel outside the allowed list fired"),
    "proxy-not-trusted": ("error", "the browser refused the proxy's certificate"),
})


def untrusted_proxy(tls_failures: Sequence[tuple[str | None, str]]) -> list[Finding]:
    """A refused certificate for a collection host means hits may be lost unseen.

    Only mitmproxy's definite verdict counts (the client answered "unknown ca" or
    "bad certificate"). Connections the client closed during the handshake, which
    mitmproxy says "may indicate" distrust, are Chromium's speculative preconnects
    here: they carry no request and lose nothing.
    """
    hosts: dict[str, str] = {}
    for sni, reason in tls_failures:
        if sni and "client does not trust the proxy's certificate for" in reason \
                and "may indicate" not in reason:
            hosts.setdefault(sni, reason)
    return [Finding(
        "proxy-not-trusted",
        f"the browser refused the pixelcheck proxy's certificate for {host}: requests to "
        "it fail before the proxy sees them, so hits may be missing from this test",
        "launch the browser through pixelcheck (pixelcheck_page / pixelcheck_browser), which "
        "trusts the session CA; for your own browser, pass "
        "--ignore-certificate-errors-spki-list with pixelcheck_proxy.ca_spki_sha256_base64",
        [], [f"mitmproxy: {reason}"],
    ) for host, reason in hosts.items()]


def exposed_tokens(traffic: Sequence[TrafficEntry], tokens: Iterable[str]) -> list[Finding]:
    """A token in anything the browser received or sent is an error.

    Calls the proxy handed to the sink are the backend's own and may carry it.
    """
    tokens = [t for t in tokens if t and len(t) >= 8]
    out = []
    for entry in traffic:
        if entry.handled_by == "sink":
            continue
        places = [("response", entry.response_text or ""), ("request URL", entry.url)]
        if entry.request_body and len(entry.request_body) < 5_000_000:
            places.append(("request body", entry.request_body.decode("utf-8", "replace")))
        for token in tokens:
            where = [name for name, text in places if token in text]
            if where:
                out.append(Finding(
                    "exposed-access-token",
                    f"the server API access token appears in the {where[0]} of "
                    f"{entry.method} {scrub(entry.url)}: anyone who opens the page can "
                    "send events to your pixel",
                    "keep the Conversions API token on the server only (environment or "
                    "secret store); never render it into HTML, JS or API responses, and "
                    "rotate the leaked one",
                    [], [f"also in: {', '.join(where[1:])}"] if len(where) > 1 else [],
                ))
    return out


def test_event_codes(events: Sequence[Event]) -> list[Finding]:
    """Server events carrying their platform's test-mode marker (Meta's
    test_event_code, TikTok's test_event_code, ...): fine in a test, wrong in
    production, where they never reach the ad reports."""
    from .diagnosis import _platform

    by_code: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        code = _platform(event).test_event_code(event) if event.source == "server" else None
        if code:
            by_code.setdefault((event.platform, code), []).append(event)
    return [Finding(
        "test-event-code",
        f"{len(found)} server event(s) carry the test code {code!r}: in production "
        f"{_platform(found[0]).title or platform} would file them as test events, not in "
        "your ad reporting",
        "take the test code out of the production configuration; set it only in test "
        "environments",
        found, [], found[0].platform, found[0].event_name,
    ) for (platform, code), found in by_code.items()]


def unexpected_pixels(events: Sequence[Event], allowed: Iterable[str]) -> list[Finding]:
    """With an allowlist, anything else that fires. Entries: a tag id (``1234567890``,
    ``G-ABC``), a collection host (``www.facebook.com``), or either scoped to one
    platform (``tiktok:CPIXEL1``, ``ga4:G-ABC``); a platform with no scoped entry is
    checked against the unscoped ones."""
    from . import platforms

    allowed = {a.strip() for a in allowed if a and a.strip()}
    if not allowed:
        return []
    names = {p.name for p in platforms.all_platforms()}
    scoped: dict[str, set[str]] = {}
    for entry in allowed:
        platform, sep, value = entry.partition(":")
        key = platform if sep and platform in names else ""
        scoped.setdefault(key, set()).add(value if key else entry)
    out: dict[tuple[str, str, str | None], list[Event]] = {}
    for event in events:
        if event.source != "browser":
            continue
        entries = scoped.get(event.platform) or scoped.get("", set())
        ids = {e for e in entries if "." not in e}
        hosts = {e.lower() for e in entries if "." in e}
        host = host_of(event.raw.url) if event.raw is not None else ""
        if (ids and event.pixel_id not in ids) or (hosts and host and host not in hosts):
            out.setdefault((event.platform, host, event.pixel_id), []).append(event)
    return [Finding(
        "unexpected-pixel",
        f"{platform} tag {pixel or '<none>'} at {host or 'an unknown host'} fired "
        f"{len(found)} event(s) ({', '.join(sorted({e.event_name or '?' for e in found}))}) "
        "but is not in the allowed list",
        "remove the stray tag (a leftover test pixel, an old agency tag) or add it to "
        "--pixelcheck-allowed-pixels (as PLATFORM:ID to scope it) if it is meant to fire",
        found, [f"allowed: {', '.join(sorted(allowed))}"], found[0].platform,
        found[0].event_name,
    ) for (platform, host, pixel), found in out.items()]
