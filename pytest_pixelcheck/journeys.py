"""Journeys that break tracking in real life, one line each in a test.

Each helper drives a Playwright page the way a visitor does (a reload, the back
button, a double click, a second tab, a slow or dropped connection) and marks what
arrives meanwhile as that journey's (``Pixelcheck.journey``), so
``assert_exactly_once`` can name the journey that added a copy::

    order_id = checkout(page)
    journeys.reload(pixelcheck, page)
    journeys.back_forward(pixelcheck, page)
    assert_exactly_once(pixelcheck, "Purchase", key=order_id)

Every helper ends once the proxy has seen the page go quiet, so the hits the journey
caused were captured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from .capture import Pixelcheck

#: a journey is done once the proxy saw no new request for this long (Playwright's
#: networkidle can wait forever on a page that keeps a connection open)
_QUIET_SECONDS = 0.4
_MAX_SETTLE_SECONDS = 5.0


class JourneyError(RuntimeError):
    """A journey could not be driven as asked (no bfcache, no Chromium DevTools)."""


def _settle(pixelcheck: Pixelcheck, page: Any, *, navigating: bool = False) -> None:
    """Wait for the page to be loaded, then until the proxy has been quiet a moment,
    so the hits the journey caused were captured (bounded: a page that never goes
    quiet ends the wait after a few seconds).

    The document's own readyState is asked, not Playwright's load state: a page once
    restored from the back-forward cache never reports "load" to Playwright again.
    ``navigating``: a navigation may still be on its way; Playwright's wait follows it.
    """
    if navigating:
        page.wait_for_load_state()
    else:
        page.wait_for_function("() => document.readyState === 'complete'")
    waited, seen = 0.0, -1
    while waited < _MAX_SETTLE_SECONDS:
        count = len(pixelcheck.traffic())
        if count == seen:
            return
        seen = count
        page.wait_for_timeout(_QUIET_SECONDS * 1000)
        waited += _QUIET_SECONDS


def reload(pixelcheck: Pixelcheck, page: Any) -> Any:
    """Reload the page, as a visitor pressing F5 on a thank-you page does."""
    with pixelcheck.journey("reload"):
        page.reload()
        _settle(pixelcheck, page)
    return page


def second_tab(pixelcheck: Pixelcheck, page: Any, url: str | None = None) -> Any:
    """Open ``url`` (default: the page's own, e.g. the thank-you URL from an order
    e-mail) in a second tab of the same browser context; returns the new page."""
    with pixelcheck.journey("second_tab"):
        other = page.context.new_page()
        other.goto(url or page.url)
        _settle(pixelcheck, other)
    return other


def back_forward(pixelcheck: Pixelcheck, page: Any, away_url: str | None = None, *,
                 require_bfcache: bool = True) -> bool:
    """Leave the page for ``away_url`` (default: the site's home page) and come back
    with the back button; True when the page came back from the back-forward cache.

    In the bfcache the page is restored as it was, scripts are not re-run: only
    ``pageshow`` handlers fire, with ``event.persisted``. ``require_bfcache``: raise
    ``JourneyError`` with Chromium's reasons when the page was loaded afresh instead
    (a ``Cache-Control: no-store`` page, or a browser launched with bfcache off, as
    Playwright's default arguments do: pixelcheck's own browser turns it back on).
    """
    start = page.url
    reasons: list[str] = []
    cdp = _cdp(page)
    if cdp is not None:
        cdp.send("Page.enable")
        cdp.on("Page.backForwardCacheNotUsed",
               lambda params: reasons.extend(r["reason"]
                                             for r in params.get("notRestoredExplanations", [])))
    with pixelcheck.journey("back_forward"):
        page.evaluate("() => { window.__pixelcheckBeforeBack = true; }")
        parts = urlsplit(start)
        page.goto(away_url or f"{parts.scheme}://{parts.netloc}/")
        _settle(pixelcheck, page)
        # a page restored from bfcache fires no load event: wait for the commit only
        page.go_back(wait_until="commit")
        page.wait_for_url(start, wait_until="commit")
        restored = bool(page.evaluate("() => window.__pixelcheckBeforeBack === true"))
        _settle(pixelcheck, page)
    if cdp is not None:
        cdp.detach()
    if require_bfcache and not restored:
        why = ", ".join(dict.fromkeys(reasons)) or "Chromium gave no reason"
        raise JourneyError(
            f"back_forward: {start} was loaded again, not restored from the back-forward "
            f"cache ({why}); a no-store page never enters it, and Playwright launches "
            "Chromium with --disable-back-forward-cache unless told to drop that default "
            "(ignore_default_args). Pass require_bfcache=False to test the plain reload")
    return restored


def double_submit(pixelcheck: Pixelcheck, page: Any, selector: str = "#place-order", *,
                  gap_seconds: float = 0.15, latency_ms: int = 1000) -> None:
    """Click the submit button twice, ``gap_seconds`` apart, as an impatient shopper
    does while the first submit is on its way; returns once the next page loaded.

    The network is slowed by ``latency_ms`` meanwhile, so the second click lands
    before the next page arrives; both clicks are the button's own ``click()`` in the
    page, as Playwright's would wait for the pending navigation. A button the page
    disabled on the first submit ignores the second click, as it does a shopper's.
    """
    start = page.url
    with pixelcheck.journey("double_submit"):
        with _network_conditions(page, latency_ms=latency_ms):
            page.wait_for_selector(selector)
            page.evaluate("""([selector, gap]) => {
                const button = document.querySelector(selector);
                button.click();
                setTimeout(() => button.click(), gap);
            }""", [selector, gap_seconds * 1000])
            _wait_until_left(page, start)
        _settle(pixelcheck, page, navigating=True)


@contextmanager
def slow_network(pixelcheck: Pixelcheck, page: Any, *, latency_ms: int = 1500,
                 download_kbps: float | None = None,
                 upload_kbps: float | None = None) -> Iterator[None]:
    """Within the block, every request of ``page`` waits ``latency_ms`` more (and is
    capped at the given throughput), through Chromium's network emulation: a
    thank-you page on a poor mobile connection."""
    with pixelcheck.journey("slow_network"), \
            _network_conditions(page, latency_ms=latency_ms, download_kbps=download_kbps,
                                upload_kbps=upload_kbps):
        yield
        _settle(pixelcheck, page)


def offline_then_online(pixelcheck: Pixelcheck, page: Any, *, offline_seconds: float = 1.0,
                        while_offline: Callable[[], Any] | None = None) -> None:
    """Drop the browser's connection for ``offline_seconds`` (running ``while_offline``
    meanwhile, if given), then bring it back: the page sees ``offline`` and ``online``
    events, and hits fired meanwhile fail as on a train in a tunnel."""
    context = page.context
    with pixelcheck.journey("offline_then_online"):
        context.set_offline(True)
        try:
            if while_offline is not None:
                while_offline()
            page.wait_for_timeout(offline_seconds * 1000)
        finally:
            context.set_offline(False)
        page.wait_for_timeout(100)  # the page's online handlers run and fire
        _settle(pixelcheck, page)


def _wait_until_left(page: Any, start: str, attempts: int = 5) -> None:
    """Wait until the page committed another URL than ``start``; a navigation the
    second submit cancelled (ERR_ABORTED) is waited past."""
    from playwright.sync_api import Error as PlaywrightError

    for attempt in range(attempts):
        try:
            page.wait_for_url(lambda url: url != start, wait_until="commit")
            return
        except PlaywrightError:
            if attempt == attempts - 1:
                raise


def _cdp(page: Any) -> Any:
    """A DevTools session of ``page``, or None outside Chromium."""
    try:
        return page.context.new_cdp_session(page)
    except Exception:
        return None


@contextmanager
def _network_conditions(page: Any, *, latency_ms: float = 0,
                        download_kbps: float | None = None,
                        upload_kbps: float | None = None) -> Iterator[None]:
    cdp = _cdp(page)
    if cdp is None:
        raise JourneyError("network emulation needs Chromium's DevTools protocol "
                           "(page.context.new_cdp_session); this browser has none")

    def rate(kbps: float | None) -> float:
        return -1 if kbps is None else kbps * 1000 / 8  # bytes per second; -1: no cap

    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": latency_ms, "downloadThroughput": rate(download_kbps),
        "uploadThroughput": rate(upload_kbps)})
    try:
        yield
    finally:
        try:
            cdp.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": -1})
            cdp.detach()
        except Exception:  # the page closed meanwhile: nothing left to restore
            pass
