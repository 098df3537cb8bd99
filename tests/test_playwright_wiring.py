"""Completing pytest-playwright's launch and context args, watching its browsers, and
the browser-not-proxied finding, without a browser (those runs are in
test_pytest_playwright.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_pixelcheck import CATALOGUE, Event, EventStore, Pixelcheck, WaitTimeout
from pytest_pixelcheck.events import AppendLog
from pytest_pixelcheck.playwright_wiring import (
    SPKI_FLAG,
    PageRequests,
    browser_not_proxied,
    proxy_context_args,
    proxy_launch_args,
)
from pytest_pixelcheck.proxy import TrafficEntry

pytest_plugins = ["pytester"]

PROXY = "http://127.0.0.1:8899"


def test_launch_args_get_the_proxy_and_the_trust_flag_once() -> None:
    args: dict[str, Any] = {"headless": True}
    proxy_launch_args(args, PROXY, "SPKI=")
    proxy_launch_args(args, PROXY, "SPKI=")  # base fixture, then a conftest override
    assert args == {"headless": True, "proxy": {"server": PROXY},
                    "args": [SPKI_FLAG + "SPKI="]}


def test_launch_args_keep_what_the_user_set() -> None:
    theirs = {"server": "http://corporate:3128"}
    args: dict[str, Any] = {"proxy": theirs, "args": ["--lang=de", SPKI_FLAG + "THEIRS"]}
    proxy_launch_args(args, PROXY, "OURS")
    # Chromium reads the last copy of a switch only: one list holding both keys
    assert args == {"proxy": theirs, "args": ["--lang=de", SPKI_FLAG + "THEIRS,OURS"]}


def test_no_chromium_flag_for_other_browsers() -> None:
    args: dict[str, Any] = {}
    proxy_launch_args(args, PROXY, "SPKI=", chromium=False)
    assert args == {"proxy": {"server": PROXY}}


def test_context_args_trust_the_proxy_unless_the_user_said_otherwise() -> None:
    ours: dict[str, Any] = {"viewport": {"width": 1, "height": 2}}
    proxy_context_args(ours)
    assert ours == {"viewport": {"width": 1, "height": 2}, "ignore_https_errors": True}
    theirs = {"ignore_https_errors": False}
    proxy_context_args(theirs)
    assert theirs == {"ignore_https_errors": False}


def _entry(url: str) -> TrafficEntry:
    return TrafficEntry(started=time.time(), method="GET", url=url, request_headers=[],
                        request_body=b"")


def test_not_proxied_compares_urls_not_counts() -> None:
    page = ["http://127.0.0.1:5000/", "https://www.facebook.com/tr/?id=1&ev=Lead&eid=L1"]
    # Chromium's own background calls go through the proxy and must not hide the page
    noise = [_entry("https://update.googleapis.com/service/update2/json")]
    [finding] = browser_not_proxied(page, noise)
    assert finding.code == "browser-not-proxied" and finding.severity == "error"
    assert finding.details == [f"requested: {url}" for url in page]
    assert "2 URL(s)" in finding.message
    assert "pixelcheck_proxy.url" in finding.fix and "consent" not in finding.fix
    assert browser_not_proxied(page, [*noise, _entry(page[0])]) == []
    assert browser_not_proxied(["http://127.0.0.1:5000/#top"], [_entry(page[0])]) == []
    assert browser_not_proxied([], noise) == []


def test_a_refused_certificate_is_not_a_missing_proxy() -> None:
    # the browser did come to the proxy but distrusts its CA: proxy-not-trusted says so
    refused = [("shop.example", "The client does not trust the proxy's certificate")]
    assert browser_not_proxied(["https://shop.example/cart"], [], refused) == []
    assert browser_not_proxied(["https://other.example/"], [], refused) != []


def test_many_urls_are_summarised() -> None:
    urls = [f"http://127.0.0.1:5000/{n}" for n in range(5)]
    [finding] = browser_not_proxied(urls + urls, [])
    assert finding.details[-1] == "and 2 more URL(s)" and len(finding.details) == 4


def test_code_is_in_the_catalogue() -> None:
    assert CATALOGUE["browser-not-proxied"][0] == "error"


class _Context:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def on(self, event: str, listener: Any) -> None:
        assert event in ("request", "requestfailed", "close")
        if event == "request":
            self.listeners.append(listener)

    def fire(self, url: str) -> None:
        for listener in self.listeners:
            listener(type("Request", (), {"url": url})())


class _Browser:
    def new_context(self, **kwargs: Any) -> _Context:
        return _Context()

    def new_page(self, **kwargs: Any) -> Any:
        return type("Page", (), {"context": _Context()})()


def test_watched_browsers_log_network_urls_only() -> None:
    watch = PageRequests()
    browser = _Browser()
    watch.watch_browser(browser)
    watch.watch_browser(browser)  # the session's browser met twice: one listener
    context = browser.new_context()
    context.fire("http://127.0.0.1:5000/")
    context.fire("data:image/png;base64,AAAA")
    browser.new_page().context.fire("https://www.facebook.com/tr/?id=1")
    assert len(context.listeners) == 1
    assert watch.log.since() == ["http://127.0.0.1:5000/", "https://www.facebook.com/tr/?id=1"]


def _server(name: str, eid: str) -> Event:
    return Event("meta", "server", "1", name, eid, time.time(), time.time())


def test_not_proxied_heads_the_findings_and_the_wait() -> None:
    store = EventStore()
    log: AppendLog[str] = AppendLog()
    log.append("http://127.0.0.1:5000/earlier-test")
    capture = Pixelcheck(store)
    capture.watch_page_requests(log)
    assert capture.findings() == []
    store.add([_server("Lead", "L1")])
    log.append("http://127.0.0.1:5000/")
    assert capture.page_requests() == ["http://127.0.0.1:5000/"]
    codes = [f.code for f in capture.findings()]
    assert codes == ["browser-not-proxied", "browser-event-missing"]
    with pytest.raises(WaitTimeout, match=r"got 0\. Captured in this test: server Lead\. "
                                          r"Why: the test's browser requested 1 URL"):
        capture.wait_for("Lead", source="browser", timeout=0.05)


def test_an_unknown_mode_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--pixelcheck-playwright=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pixelcheck_playwright must be one of auto|off, not 'maybe'"])
