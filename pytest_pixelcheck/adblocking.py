"""Ad-blocker mode: a real filter list (Adblock Plus / EasyPrivacy syntax) applied in
the browser, where a blocker extension applies it.

Matching is Brave's adblock-rust engine (the ``adblock`` package), so a list behaves
as it does for real visitors: ``||host^``, ``$third-party``, ``$script``, ``@@``
exceptions and the rest. A request the list blocks is aborted in the browser with
``blockedbyclient``, the error a blocker gives, and never reaches the proxy: tag
libraries included, whose events then never fire at all. Blocked collection hits are
still decoded and kept, marked blocked, and every blocked request shows in the
test's traffic (HAR) as blocked.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import platforms
from .events import CapturedRequest, Event, EventStore
from .proxy import TrafficEntry
from .wire import host_of, path_of

#: Playwright's resource types -> the request types filter options name
_REQUEST_TYPES = {
    "document": "document", "stylesheet": "stylesheet", "image": "image", "media": "media",
    "font": "font", "script": "script", "xhr": "xmlhttprequest", "fetch": "xmlhttprequest",
    "websocket": "websocket", "ping": "ping", "beacon": "ping", "other": "other",
}


class FilterListError(ValueError):
    """A filter list could not be read or holds no network filter."""


def _engine(texts: Iterable[str]) -> Any:
    try:
        import adblock
    except ImportError:  # pragma: no cover - a declared dependency
        raise FilterListError(
            "ad-blocker mode needs the adblock package (Brave's adblock-rust): "
            "pip install adblock") from None
    # debug: the engine keeps each filter's text, which the report names
    filter_set = adblock.FilterSet(debug=True)
    for text in texts:
        filter_set.add_filter_list(text)
    return adblock.Engine(filter_set=filter_set)


def read_filter_lists(paths: Iterable[str | Path]) -> list[str]:
    texts = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FilterListError(f"cannot read filter list {path}: {exc}") from None
        rules = [line for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith(("!", "["))
                 and "##" not in line and "#@#" not in line]
        if not rules:
            raise FilterListError(f"filter list {path} holds no network filter (lines like "
                                  "||tracker.example^)")
        texts.append(text)
    if not texts:
        raise FilterListError("ad_blocker needs at least one filter list path")
    return texts


class AdBlocker:
    """Blocks what the filter lists block in one browser context (``install``), until
    ``remove`` (or the ``with`` block ends). ``blocked`` lists (url, filter) of each
    request it stopped."""

    def __init__(self, filter_lists: Iterable[str | Path], store: EventStore,
                 traffic: Any = None) -> None:
        self.paths = [Path(p) for p in filter_lists]
        self.engine = _engine(read_filter_lists(self.paths))
        self.store = store
        self.traffic = traffic
        self.blocked: list[tuple[str, str]] = []
        self._context: Any = None

    def matches(self, url: str, source_url: str, request_type: str) -> str | None:
        """The filter that blocks ``url`` (loaded by ``source_url``), or None."""
        result = self.engine.check_network_urls(url, source_url, request_type)
        if result.matched and not result.exception:
            return str(result.filter or "a filter of the list")
        return None

    def install(self, context: Any) -> AdBlocker:
        context.route("**/*", self._route)
        self._context = context
        return self

    def remove(self) -> None:
        if self._context is not None:
            try:
                self._context.unroute("**/*", self._route)
            except Exception:  # the context closed first: nothing left to unroute
                pass
            self._context = None

    def __enter__(self) -> AdBlocker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _route(self, route: Any, request: Any) -> None:
        url = request.url
        if not url.startswith(("http:", "https:")):
            route.fallback()
            return
        request_type = _REQUEST_TYPES.get(request.resource_type, "other")
        source = url
        try:
            frame = request.frame
            if request_type == "document" and frame.parent_frame is not None:
                request_type = "subdocument"
            if request_type != "document":
                source = frame.url or url
        except Exception:  # a service worker's request has no frame
            pass
        matched = self.matches(url, source, request_type)
        if matched is None:
            route.fallback()
            return
        self._record(request, matched)
        route.abort("blockedbyclient")

    def _record(self, request: Any, matched: str) -> None:
        self.blocked.append((request.url, matched))
        headers = list(request.headers.items())
        body = request.post_data_buffer or b""
        now = time.time()
        if self.traffic is not None:
            self.traffic.append(TrafficEntry(
                started=now, method=request.method, url=request.url, request_headers=headers,
                request_body=body, handled_by="blocked", error=f"ad blocker: {matched}",
                finished=now))
        platform = platforms.for_collection(host_of(request.url), path_of(request.url))
        if platform is None:
            return
        captured = CapturedRequest(method=request.method, url=request.url, headers=headers,
                                   body=body, arrival_time=now, channel="blocker")
        try:
            events = platform.decode_browser(captured)
        except Exception as exc:  # a decoder bug must not lose the hit
            events = [Event(platform.name, "browser", None, None, None, None, now,
                            raw=captured, error=f"decoder crashed: {exc!r}")]
        for event in events:
            event.extra["blocked"] = f"ad blocker: {matched}"
        self.store.add(events)
