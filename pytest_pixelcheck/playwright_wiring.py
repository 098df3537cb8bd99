"""pytest-playwright's browser through the pixelcheck proxy, and the finding for a
test whose browser went around it.

pytest-playwright builds its browser from two dicts, ``browser_type_launch_args``
and ``browser_context_args``. The plugin's ``pytest_fixture_setup`` wrapper hands
them here to be completed in place, so whatever a user's conftest overrides (a
viewport, an executable) stays and only what is missing is added. Nothing here
imports pytest.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .events import AppendLog
from .findings import Finding, register_codes
from .losses import FailedRequests
from .proxy import TrafficEntry

register_codes({
    "browser-not-proxied": ("error", "the test's browser did not go through the pixelcheck "
                                     "proxy"),
})

#: values of the pixelcheck_playwright setting
PLAYWRIGHT_MODES = ("auto", "off")

#: pytest-playwright fixtures whose values the plugin completes or watches
PLAYWRIGHT_FIXTURES = frozenset({"browser_type_launch_args", "browser_context_args", "browser",
                                 "playwright"})

SPKI_FLAG = "--ignore-certificate-errors-spki-list="


def proxy_launch_args(args: MutableMapping[str, Any], proxy_url: str, ca_spki: str | None,
                      *, chromium: bool = True) -> None:
    """Route a browser launch through the proxy and trust the session CA, in place.

    At launch, not per context: the browser fixture is launched once per session, and
    a launch-level proxy also covers contexts a test makes with ``browser.new_context()``.
    A proxy the user set is theirs to keep (the browser-not-proxied finding then says
    why nothing was captured). The SPKI flag is Chromium's; without it Chromium refuses
    the proxy's certificates on some connections even in ignore_https_errors contexts.
    """
    args.setdefault("proxy", {"server": proxy_url})
    if not (chromium and ca_spki):
        return
    flags = list(args.get("args") or [])
    for index, flag in enumerate(flags):
        if isinstance(flag, str) and flag.startswith(SPKI_FLAG):
            # Chromium reads only the last copy of a switch: extend the user's list.
            if ca_spki not in flag[len(SPKI_FLAG):].split(","):
                flags[index] = f"{flag},{ca_spki}"
            break
    else:
        flags.append(SPKI_FLAG + ca_spki)
    args["args"] = flags


def proxy_context_args(args: MutableMapping[str, Any]) -> None:
    """Let contexts accept the proxy's certificates, in place (for browsers the SPKI
    flag does not apply to); a user's explicit ``ignore_https_errors`` stays."""
    args.setdefault("ignore_https_errors", True)


class PageRequests:
    """The http(s) URLs that watched browser contexts requested, session-wide; a test
    reads its own from the mark taken when it began."""

    def __init__(self) -> None:
        self.log: AppendLog[str] = AppendLog()
        #: requests those contexts failed (browser-request-failed)
        self.failed = FailedRequests()

    def watch_playwright(self, playwright: Any) -> None:
        """Watch every browser launched or connected through this Playwright: also one a
        test launches itself from pytest-playwright's ``playwright`` fixture."""
        for name in ("chromium", "firefox", "webkit"):
            browser_type = getattr(playwright, name, None)
            if browser_type is None or getattr(browser_type, "_pixelcheck_watched", False):
                continue
            for method in ("launch", "connect", "connect_over_cdp"):
                _after(browser_type, method, self.watch_browser)
            _after(browser_type, "launch_persistent_context", self.watch_context)
            browser_type._pixelcheck_watched = True

    def watch_browser(self, browser: Any) -> None:
        """Watch every context the browser makes from now on (pytest-playwright's
        ``context`` and ``page``, and a test's own ``browser.new_context()``).

        Playwright has no "context created" event, so the two factory methods of this
        one Browser object are wrapped, as pytest-playwright wraps ``context.close``.
        """
        if getattr(browser, "_pixelcheck_watched", False):
            return
        _after(browser, "new_context", self.watch_context)
        # new_page makes its context inside Playwright, out of reach of the wrapper
        # above; nothing is requested before the page is returned.
        _after(browser, "new_page", lambda page: self.watch_context(page.context))
        browser._pixelcheck_watched = True

    def watch_context(self, context: Any) -> None:
        context.on("request", self._on_request)
        self.failed.watch_context(context)

    def _on_request(self, request: Any) -> None:
        url = str(request.url)
        # data:, blob: and about: never touch the network, so no proxy sees them.
        if url.startswith(("http://", "https://")):
            self.log.append(url)


# Launch-level on purpose: a context-level proxy= with ignore_https_errors=True also
# captures, but Chromium then still refuses some handshakes (a false proxy-not-trusted).
WIRING_FIX = (
    "route the browser through the pixelcheck proxy: use pytest-playwright's page, "
    "context or browser with pixelcheck_playwright = auto (the default), or the "
    "pixelcheck_page fixture. A browser of your own (or pytest-playwright's "
    "browser_type_launch_args when pixelcheck_playwright is off) needs, at launch, "
    "proxy={'server': pixelcheck_proxy.url} and "
    "args=['--ignore-certificate-errors-spki-list=' + "
    "pixelcheck_proxy.ca_spki_sha256_base64]; its contexts then need nothing"
)


def browser_not_proxied(requested: Sequence[str], traffic: Sequence[TrafficEntry],
                        tls_failures: Sequence[tuple[str | None, str]] = (),
                        *, shown: int = 3) -> list[Finding]:
    """One finding when the watched browser requested URLs and not one of them reached
    the proxy during the test.

    URLs are compared, not counts: the proxy also carries Chromium's background calls
    and pixelcheck's own page, which must not hide an unproxied page beside them. A
    host whose TLS handshake with the proxy failed (``tls_failures``) did reach it:
    that browser is proxied but distrusts the CA, which proxy-not-trusted reports.
    """
    if not requested:
        return []
    through_proxy = {_without_fragment(entry.url) for entry in traffic}
    refused = {host.lower() for host, _ in tls_failures if host}
    if any(_without_fragment(url) in through_proxy or _host(url) in refused
           for url in requested):
        return []
    unique = list(dict.fromkeys(requested))
    details = [f"requested: {url}" for url in unique[:shown]]
    if len(unique) > shown:
        details.append(f"and {len(unique) - shown} more URL(s)")
    return [Finding(
        "browser-not-proxied",
        f"the test's browser requested {len(unique)} URL(s) but none went through the "
        "pixelcheck proxy: nothing it fired could be captured, so missing browser events "
        "say nothing about the page",
        WIRING_FIX, [], details,
    )]


def not_proxied_hint(requested: Sequence[str], traffic: Sequence[TrafficEntry],
                     tls_failures: Sequence[tuple[str | None, str]] = ()) -> str:
    """For a timed-out wait: the sentence naming the cause when the browser went around
    the proxy, else ""."""
    found = browser_not_proxied(requested, traffic, tls_failures)
    return f" Why: {found[0].message}. Fix: {found[0].fix}." if found else ""


def _after(owner: Any, method: str, then: Callable[[Any], None]) -> None:
    """Wrap ``owner.method`` (on this one object) to hand what it returns to ``then``."""
    original = getattr(owner, method, None)
    if original is None:
        return

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        then(made)
        return made

    setattr(owner, method, wrapped)


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
