"""Finding a Chromium and driving it through the proxy with Playwright."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .losses import FailedRequests

BROWSER_ENV = "PIXELCHECK_BROWSER"

# Chromium reads only the last --disable-features: this list replaces the one Playwright
# passes, so it repeats Playwright's (its chromiumSwitches.ts; without them Chromium
# asks clients2.google.com for the time and www.google.com for AI Mode at start-up)
# before adding pixelcheck's own.
_PLAYWRIGHT_DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync", "DestroyProfileOnBrowserClose", "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable", "LensOverlay", "MediaRouter", "PaintHolding",
    "ThirdPartyStoragePartitioning", "AvoidCorsURLLoaderRestartOnRedirect",
    "OptimizationHints", "NetworkTimeServiceQuerying", "AimEnabled", "PreconnectToSearch",
)
DISABLED_FEATURES = (
    *_PLAYWRIGHT_DISABLED_FEATURES,
    # phone-home services: autofill's server, translation, Cast discovery, feeds, the
    # certificate-transparency list updater
    "AutofillServerCommunication", "Translate", "DialMediaRouteProvider",
    "InterestFeedContentSuggestions", "CertificateTransparencyComponentUpdater",
    # one renderer per page, not per site (Snapchat's cookie-match iframe cost a process)
    "IsolateOrigins", "site-per-process",
    # the address bar's WebUI popups (chrome://omnibox-popup.top-chrome/ and its AI-mode
    # page): Chromium 156 renders both for every context's window, headless or not, and
    # they cost about as much CPU as the shop's own pages
    "WebUIOmniboxPopup", "WebUIOmniboxAimPopup",
)

# Keep Chromium from calling home: offline those connections only fail, and online they
# would leave the machine (the proxy answers them itself either way).
QUIET_FLAGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--safebrowsing-disable-auto-update",
    "--disable-component-extensions-with-background-pages",
    "--disable-breakpad",
    "--no-pings",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
    "--disable-site-isolation-trials",
)

# For a Chromium whose default context has no proxy (one that opens local reports and
# charts, a browser server whose contexts each get the proxy): every host name but the
# loopback ones fails without a DNS lookup. Chromium still asks for hosts of its own
# (accounts.google.com once per context), and a page may name others.
NO_DNS = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"

SYSTEM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserNotFound(RuntimeError):
    pass


@dataclass
class BrowserLocation:
    executable_path: str | None  # None: Playwright's own managed build
    how: str


def find_chromium(explicit: str | None = None, playwright: Any = None) -> BrowserLocation:
    """Where users have a Chromium: an explicit path, Playwright's install, the system.

    ``playwright``: a running Playwright to ask (starting a second one inside a
    session that already has one, e.g. pytest-playwright's, is avoided).
    """
    explicit = explicit or os.environ.get(BROWSER_ENV)
    if explicit:
        path = shutil.which(explicit) or explicit
        if not Path(path).is_file():
            raise BrowserNotFound(
                f"--pixelcheck-browser / {BROWSER_ENV} names {explicit!r}, which is not a file")
        return BrowserLocation(path, f"given, {path}")
    managed = _playwright_managed_chromium(playwright)
    if managed:
        return BrowserLocation(None, f"Playwright's install, {managed}")
    for name in SYSTEM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return BrowserLocation(found, f"system, {found}")
    raise BrowserNotFound(
        "no Chromium found. Install one: `python -m playwright install chromium`, "
        "or as root on Debian/Ubuntu `apt-get install -y chromium`, or pass "
        f"--pixelcheck-browser=/path/to/chromium (or set {BROWSER_ENV})."
    )


def _playwright_managed_chromium(playwright: Any = None) -> str | None:
    try:
        if playwright is not None:
            path = playwright.chromium.executable_path
        else:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as pw:
                path = pw.chromium.executable_path
    except Exception:
        return None
    return path if path and Path(path).is_file() else None


def chromium_args(ca_spki: str | None, extra: tuple[str, ...] = ()) -> list[str]:
    args = list(QUIET_FLAGS)
    if ca_spki:
        args.append(f"--ignore-certificate-errors-spki-list={ca_spki}")
    args.extend(extra)
    return args


class BrowserSession:
    """One Chromium for the session, routed through the proxy; contexts per test."""

    def __init__(
        self,
        proxy_url: str,
        ca_spki: str | None,
        *,
        location: BrowserLocation | None = None,
        headless: bool = True,
        playwright: Any = None,
        slow_mo: float = 0,
        extra_args: tuple[str, ...] = (),
        connect: str | None = None,
        proxy_loopback: bool = True,
        site_responses: Any = None,
    ) -> None:
        self.proxy_url = proxy_url
        #: ws:// endpoint of a Playwright browser server (a grid) to use instead of
        #: launching Chromium here
        self.connect = connect
        #: send the site on loopback through the proxy too; False: only non-loopback
        #: hosts go through it, and ``site_responses`` sees the site's responses
        self.proxy_loopback = proxy_loopback
        #: a SiteResponses each context reports the site's (unproxied) responses to
        self.site_responses = site_responses
        self.ca_spki = ca_spki
        self.location = location
        self.headless = headless
        self.slow_mo = slow_mo
        self.extra_args = extra_args
        self._playwright = playwright
        self._owns_playwright = playwright is None
        self._manager: Any = None
        self.browser: Any = None
        self.startup_seconds: float | None = None
        #: requests this browser's contexts failed (browser-request-failed findings)
        self.failed_requests = FailedRequests()

    def start(self) -> BrowserSession:
        started = time.perf_counter()
        if self._playwright is None:
            from playwright.sync_api import sync_playwright

            self._manager = sync_playwright()
            self._playwright = self._manager.start()
        if self.connect:
            # Launch flags (the proxy, the CA's SPKI) belong to whoever started that
            # browser; every context gets the proxy instead (new_context), and trusts the
            # proxy's certificates through ignore_https_errors.
            self.browser = self._playwright.chromium.connect(self.connect, slow_mo=self.slow_mo)
            self.location = BrowserLocation(None, f"remote, {self.connect}")
            self.startup_seconds = time.perf_counter() - started
            return self
        if self.location is None:
            self.location = find_chromium(playwright=self._playwright)
        if self.proxy_loopback:
            # Playwright adds <-loopback> to the bypass list itself, so the site
            # under test on 127.0.0.1 goes through the proxy as well.
            routing: dict[str, Any] = {"proxy": {"server": self.proxy_url}}
            extra = self.extra_args
        else:
            # Chromium's own flag keeps its implicit bypass of loopback: the site goes
            # direct, every other host (tracking, and anything else: nothing leaves the
            # machine) through the proxy. The token scan reads the site's responses from
            # Playwright's events instead (site_traffic.py).
            routing = {}
            extra = (f"--proxy-server={self.proxy_url}", *self.extra_args)
        self.browser = self._playwright.chromium.launch(
            executable_path=self.location.executable_path,
            headless=self.headless,
            slow_mo=self.slow_mo,
            args=chromium_args(self.ca_spki, extra),
            **routing,
            # Playwright turns the back-forward cache off; real browsers have it, and a
            # page restored from it (journeys.back_forward) is where pixels re-fire
            ignore_default_args=["--disable-back-forward-cache"],
        )
        self.startup_seconds = time.perf_counter() - started
        return self

    @property
    def playwright(self) -> Any:
        """The running Playwright (to launch another browser in the same thread)."""
        return self._playwright

    def new_context(self, **kwargs: Any) -> Any:
        kwargs.setdefault("ignore_https_errors", True)
        if self.connect:
            kwargs.setdefault("proxy", {"server": self.proxy_url})
        context = self.browser.new_context(**kwargs)
        self.failed_requests.watch_context(context)
        if self.site_responses is not None and not self.proxy_loopback and not self.connect:
            self.site_responses.watch(context)
        return context

    def stop(self) -> None:
        if self.browser is not None:
            try:
                self.browser.close()
            finally:
                self.browser = None
        if self._owns_playwright and self._manager is not None:
            self._manager.__exit__(None, None, None)
            self._manager = None
            self._playwright = None

    def __enter__(self) -> BrowserSession:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
