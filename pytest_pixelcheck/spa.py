"""Single-page apps: one PageView per route.

A single-page checkout changes routes with ``history.pushState`` and fires a virtual
PageView on each change. ``Pixelcheck.watch_routes(page)`` records the routes the
page showed; ``assert_pageview_per_route`` checks each visit got its PageView, once.
A PageView fired twice on one route change (one id) is the diagnosis's
``duplicate-browser-trigger``.
"""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

from . import platforms
from .assertions import MESSAGE_WIDTH, PixelcheckAssertionError
from .capture import Pixelcheck
from .diagnosis import in_platform_words
from .events import Event
from .findings import Finding, register_codes
from .matching import blocked
from .report import count_severities, events_table, findings_text

register_codes({
    "route-without-pageview": ("error", "a route change fired no PageView"),
})


def _route(url: str | None) -> str:
    """A route as pages are told apart: host and path (query and fragment aside)."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path.rstrip('/') or '/'}"


def pageviews_by_route(events: list[Event], event_name: str = "PageView",
                       platform: str | None = None) -> dict[str, Counter[str]]:
    """route -> platform -> how many distinct browser PageViews it fired (copies that
    share a dedup key count once)."""
    seen: set[tuple[str, object]] = set()
    out: dict[str, Counter[str]] = {}
    for event in events:
        if event.source != "browser" or event.event_name != event_name or not event.decoded \
                or blocked(event) or (platform is not None and event.platform != platform):
            continue
        try:
            key = platforms.get(event.platform).dedup_key(event)
        except KeyError:
            key = None
        identity = (event.platform, key if key is not None else id(event))
        if identity in seen:
            continue
        seen.add(identity)
        out.setdefault(_route(event.page_url), Counter())[event.platform] += 1
    return out


def assert_pageview_per_route(
    pixelcheck: Pixelcheck,
    *,
    event_name: str = "PageView",
    platform: str | None = None,
    timeout: float | None = None,
) -> dict[str, int]:
    """Fail unless every route the watched page showed (``pixelcheck.watch_routes``)
    fired its PageView, on each platform that fires PageViews, once per visit; a
    PageView fired twice on one route change fails as ``duplicate-browser-trigger``.
    Returns visits per route."""
    __tracebackhide__ = True
    if not pixelcheck.routes:
        raise PixelcheckAssertionError(
            "assert_pageview_per_route: no route was watched: call "
            "pixelcheck.watch_routes(page) before the journey")
    timeout = pixelcheck.default_timeout if timeout is None else timeout
    visits = Counter(_route(url) for url in pixelcheck.routes)

    def fired() -> tuple[dict[str, Counter[str]], set[str]]:
        by_route = pageviews_by_route(pixelcheck.events, event_name, platform)
        names = {p for counts in by_route.values() for p in counts}
        return by_route, names

    def complete(_: list[Event]) -> bool:
        by_route, names = fired()
        return bool(names) and all(by_route.get(r, Counter())[p] >= n
                                   for r, n in visits.items() for p in names)

    pixelcheck.wait_until(complete, timeout)
    by_route, names = fired()
    missing = []
    for route, count in visits.items():
        for name in sorted(names) or ["any platform"]:
            got = by_route.get(route, Counter())[name]
            if got < count:
                missing.append((route, name, count, got))
    findings = [Finding(
        "route-without-pageview",
        f"route {route} was shown {count} time(s) but {name} got {got} {event_name}(s) "
        "from the page", "fire the PageView on every route change (the router's "
        "after-navigation hook), once, with its own event id", [], [],
        name if name != "any platform" else None, event_name)
        for route, name, count, got in missing]
    duplicates = [f for f in pixelcheck.findings(platform)
                  if f.code == "duplicate-browser-trigger" and f.involves([event_name])]
    findings += duplicates
    in_platform_words(findings)
    if not findings:
        return dict(visits)
    lines = [f"assert_pageview_per_route({event_name!r}) failed: {count_severities(findings)} "
             f"[{', '.join(dict.fromkeys(f.code for f in findings))}]"]
    lines.append("  routes: " + ", ".join(f"{r} x{n}" for r, n in visits.items()))
    lines.append(findings_text(findings, width=MESSAGE_WIDTH))
    lines.append("events captured in this test:")
    lines.append(events_table(pixelcheck.match(platform), width=MESSAGE_WIDTH))
    pixelcheck.failed_assertions += 1
    raise PixelcheckAssertionError("\n".join(lines), findings)
