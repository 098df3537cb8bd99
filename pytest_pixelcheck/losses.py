"""Nothing lost without a word: pixel hits the browser itself failed, and hits that
reached pixelcheck but that the real endpoint would likely refuse.

Chromium can fail a request before it reaches any network (a burst of ``sendBeacon``
calls past its keepalive quota ends in ``net::ERR_INSUFFICIENT_RESOURCES``). The
proxy never sees those, so without Playwright's ``requestfailed`` event the verdict
would be "the pixel never fired it", which sends the reader to the wrong code.
Nothing here imports pytest or Playwright.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import platforms
from .events import KEPT_BODY_BYTES, AppendLog, CapturedRequest, Event
from .findings import Finding, register_codes

register_codes({
    "browser-request-failed": ("error", "the browser fired a pixel hit but failed to send it"),
    "url-too-long": ("warning", "a pixel hit's URL is longer than web servers accept"),
})

#: a request line longer than this is refused by common web servers (nginx's default
#: buffer for it is 8 KiB; many CDNs stop at 8 to 16 KiB) with 414 URI Too Long
URL_LENGTH_LIMIT = 8 * 1024

#: what to change for Chromium's usual network errors (net/base/net_error_list.h)
_NET_ERROR_FIXES = {
    "ERR_INSUFFICIENT_RESOURCES": (
        "Chromium refused it: too many requests (sendBeacon/keepalive) were in flight at "
        "once. Fire fewer hits at a time or batch them; a real visitor's browser refuses "
        "them the same way"),
    "ERR_ABORTED": (
        "the page cancelled it before it was sent, usually by navigating away: fire the "
        "hit before leaving the page, or with navigator.sendBeacon / fetch keepalive"),
    "ERR_BLOCKED_BY_CLIENT": (
        "an extension or the browser's content blocking stopped it (an ad blocker); "
        "test without one"),
    "ERR_PROXY_CONNECTION_FAILED": (
        "the browser could not reach the pixelcheck proxy; check that the session is "
        "still running"),
}
_GENERIC_FIX = ("the hit never reached the network, so the platform did not get it; the "
                "error names the cause in Chromium's words (net_error_list.h)")


@dataclass(repr=False)  # the URL and body can carry customer data
class FailedRequest:
    """A request the browser reported as failed (Playwright's ``requestfailed``)."""

    method: str
    url: str
    failure: str
    body: bytes | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    failed_at: float = field(default_factory=time.time)

    def __repr__(self) -> str:
        return f"FailedRequest({self.method} {urlsplit(self.url).hostname} {self.failure})"


class FailedRequests:
    """Watches browser contexts for failed requests; tests read theirs from a mark."""

    def __init__(self) -> None:
        self.log: AppendLog[FailedRequest] = AppendLog()
        self._open: list[Any] = []

    def watch_context(self, context: Any) -> None:
        # One watcher per context: the session's browser may also be launched from
        # pytest-playwright's Playwright, which the plugin watches too.
        if getattr(context, "_pixelcheck_failures_watched", False):
            return
        context._pixelcheck_failures_watched = True
        context.on("requestfailed", self._on_failed)
        self._open.append(context)
        context.on("close", lambda closed: self._open.remove(closed)
                   if closed in self._open else None)

    def flush(self) -> None:
        """Let Playwright deliver the failures it already knows of: its sync API hands
        out events only during a call, and a test may have made its last call before
        its beacons failed. One cheap round trip per open context does it."""
        for context in list(self._open):
            try:
                context.cookies()
            except Exception:  # closed meanwhile, or called off Playwright's thread
                pass

    def _on_failed(self, request: Any) -> None:
        url = str(request.url)
        if not url.startswith(("http://", "https://")):
            return
        try:
            body = request.post_data_buffer
        except Exception:  # a body Playwright cannot give
            body = None
        try:
            headers = list(request.headers.items())
        except Exception:
            headers = []
        self.log.append(FailedRequest(str(request.method), url, str(request.failure or
                                                                    "unknown error"),
                                      body, headers))


def failed_hits(failures: Sequence[FailedRequest], traffic: Sequence[Any]
                ) -> list[tuple[FailedRequest, platforms.Platform, list[Event]]]:
    """Collection hits among ``failures`` that never reached the proxy, each with its
    platform and the events it carried (decoded from what the browser would have sent).

    A request the proxy did record (one cancelled after it was sent) is no loss: each
    proxy entry with the same method, URL and body accounts for one failure.
    """
    # the proxy keeps a long body cut short: compare what both sides keep
    unclaimed: dict[tuple[str, str, bytes], int] = {}
    for entry in traffic:
        key = (entry.method, entry.url, (entry.request_body or b"")[:KEPT_BODY_BYTES])
        unclaimed[key] = unclaimed.get(key, 0) + 1
    found = []
    for failure in failures:
        parts = urlsplit(failure.url)
        platform = platforms.for_collection((parts.hostname or "").lower(), parts.path)
        if platform is None:
            continue
        key = (failure.method, failure.url, (failure.body or b"")[:KEPT_BODY_BYTES])
        if unclaimed.get(key, 0) > 0:
            unclaimed[key] -= 1
            continue
        captured = CapturedRequest(failure.method, failure.url, failure.headers,
                                   failure.body or b"", failure.failed_at, "browser")
        try:
            events = [e for e in platform.decode_browser(captured) if e.decoded]
        except Exception:  # what it carried is unknown; the failure still counts
            events = []
        found.append((failure, platform, events))
    return found


def explain_failed_hits(findings: list[Finding],
                        hits: Sequence[tuple[FailedRequest, platforms.Platform, list[Event]]]
                        ) -> list[Finding]:
    """``findings`` with each "never fired" verdict that a failed hit explains replaced
    by ``browser-request-failed``, plus one finding per network error for failed hits
    that explain no verdict (none is left unsaid)."""
    if not hits:
        return findings
    by_key: dict[tuple[Any, ...], list[FailedRequest]] = {}
    for failure, _, events in hits:
        for event in events:
            by_key.setdefault(_key(event), []).append(failure)
    used: set[int] = set()
    out = []
    for finding in findings:
        failures = by_key.get(_key(finding.events[0])) \
            if finding.code == "browser-event-missing" and finding.events else None
        if not failures:
            out.append(finding)
            continue
        server = finding.events[0]
        used.update(id(f) for f in failures)
        error = failures[0].failure
        out.append(Finding(
            "browser-request-failed",
            f"server {server.event_name} id={server.event_id!r} has no browser twin: the "
            f"page fired it, but the browser failed the request ({error}), so it never "
            "reached the network",
            _fix_for(error), finding.events,
            [f"request: {failures[0].method} {_short(failures[0].url)}",
             f"browser error: {error}"],
            finding.platform, finding.event_name,
        ))
    rest: dict[tuple[str, str], list[tuple[FailedRequest, list[Event]]]] = {}
    for failure, platform, events in hits:
        if id(failure) not in used:
            rest.setdefault((platform.name, failure.failure), []).append((failure, events))
    for (platform_name, error), group in rest.items():
        names = sorted({e.event_name or "?" for _, events in group for e in events})
        first = group[0][0]
        out.append(Finding(
            "browser-request-failed",
            f"{len(group)} {platform_name} pixel hit(s) were fired by the page but failed "
            f"in the browser ({error}) and never reached the network"
            + (f": {', '.join(names[:5])}" + (" ..." if len(names) > 5 else "")
               if names else ""),
            _fix_for(error), [],
            [f"request: {first.method} {_short(first.url)}", f"browser error: {error}"],
            platform_name, names[0] if len(names) == 1 else None,
        ))
    return out


def url_too_long(events: Sequence[Event], limit: int = URL_LENGTH_LIMIT) -> list[Finding]:
    """One finding per collection hit whose URL a real endpoint would likely refuse
    (the proxy accepted and recorded it, so nothing is lost here)."""
    seen: set[int] = set()
    out = []
    for event in events:
        raw = event.raw
        if event.source != "browser" or raw is None or id(raw) in seen or \
                len(raw.url) <= limit:
            continue
        seen.add(id(raw))
        out.append(Finding(
            "url-too-long",
            f"{event.platform} pixel hit {event.event_name or '<undecoded>'} has a "
            f"{len(raw.url):,}-character URL: web servers commonly refuse URLs over "
            f"{limit:,} characters (414 URI Too Long), so the platform may never count it",
            "send less in the URL (shorter custom data, fewer content ids), or send the "
            "hit as a POST body (the platform's tag does this with sendBeacon)",
            [event], [f"request: {raw.method} {_short(raw.url)}"], event.platform,
            event.event_name,
        ))
    return out


def _key(event: Event) -> tuple[Any, ...]:
    return (event.platform, event.event_name, event.event_id)


def _fix_for(error: str) -> str:
    name = error.rsplit("::", 1)[-1].strip()
    return _NET_ERROR_FIXES.get(name, _GENERIC_FIX)


def _short(url: str, width: int = 120) -> str:
    from .redact import scrub

    url = scrub(url)
    return url if len(url) <= width else url[: width - 3] + "..."
