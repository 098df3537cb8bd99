"""The site's own responses, seen by Playwright instead of the proxy.

With ``--pixelcheck-direct-site`` pixelcheck's browser sends loopback (the site under
test on 127.0.0.1) straight to the site: only tracking and other non-loopback hosts go
through mitmproxy, a Python proxy that costs every page of the journey a detour
(benchmarks/overhead.py). The exposed-token
scan still reads every page the site served: from Playwright's response events, with
bodies fetched only when a test's findings are computed, and only for text.
"""

from __future__ import annotations

import time
from typing import Any

from .events import AppendLog
from .proxy import _TEXT_TYPES, TrafficEntry
from .wire import host_of

#: hosts Chromium reaches without a proxy (its implicit bypass rules)
_LOOPBACK_PREFIXES = ("127.", "localhost", "[::1]", "::1")


def bypasses_proxy(url: str) -> bool:
    host = host_of(url)
    return host.startswith(_LOOPBACK_PREFIXES) or host.endswith(".localhost")


class SiteResponses:
    """Playwright responses of loopback URLs, from every context ``watch`` was given."""

    def __init__(self) -> None:
        self.log: AppendLog[Any] = AppendLog()
        self._entries: dict[int, TrafficEntry] = {}

    def watch(self, context: Any) -> None:
        context.on("response", self._on_response)

    def _on_response(self, response: Any) -> None:
        if bypasses_proxy(response.url):
            self.log.append((time.time(), response))

    def mark(self) -> int:
        return self.log.mark()

    def entries(self, mark: int = 0) -> list[TrafficEntry]:
        """The responses since ``mark`` as traffic entries (what the token scan and the
        HAR read), each read from the browser once."""
        return [self._entry(arrived, response) for arrived, response in self.log.since(mark)]

    def _entry(self, arrived: float, response: Any) -> TrafficEntry:
        cached = self._entries.get(id(response))
        if cached is not None:
            return cached
        request = response.request
        headers = list(response.headers.items())
        kind = response.headers.get("content-type", "").lower()
        body, error = b"", None
        if any(t in kind for t in _TEXT_TYPES):
            try:
                body = response.body()
            except Exception as exc:  # a closed context, a redirect: no body to scan
                error = f"body not available: {type(exc).__name__}"
        entry = TrafficEntry(
            started=arrived, method=request.method, url=response.url,
            request_headers=list(request.headers.items()),
            request_body=(request.post_data_buffer or b""), status=response.status,
            # the body Playwright hands over is decoded already
            response_headers=[(k, v) for k, v in headers if k.lower() != "content-encoding"],
            response_body=body, handled_by="site (browser, not proxied)", error=error,
            finished=arrived)
        self._entries[id(response)] = entry
        return entry
