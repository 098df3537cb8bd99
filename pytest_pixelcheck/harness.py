"""The session's moving parts wired together: store, proxy, sink, browser.

Shared by the pytest plugin and the ``pixelcheck`` command, so both capture the
same way. Nothing here imports pytest.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from . import ca
from .browser import BrowserSession, find_chromium
from .ca import LOCAL_NO_PROXY, ensure_ca
from .capture import Pixelcheck
from .diagnosis import DiagnosisSettings
from .events import EventStore
from .listen import check_listen_host, check_port_free, is_loopback, port_error, url_host
from .proxy import PixelProxy, ProxyError
from .redact import MASK, install_log_redaction, remember_secret
from .serve import Attachment
from .sink import ConversionSink
from .site_traffic import SiteResponses


@dataclass(repr=False)  # the generated repr would print access_token
class HarnessConfig:
    browser_path: str | None = None
    headless: bool = True
    #: serve the offline stand-ins of platform JS libraries (fbevents.js)
    serve_libraries: bool = True
    #: let requests to hosts pixelcheck does not serve go to the network (off: the
    #: proxy answers them itself and nothing leaves the machine)
    allow_upstream: bool = False
    default_timeout: float = 5.0
    fail_on: str = "error"
    late_after: float = 3.0
    race_tolerance: float = 2.0
    slow_mo: float = 0.0
    #: the token server calls must carry (None: any)
    access_token: str | None = None
    #: pixel ids and/or collection hosts allowed to fire (empty: any)
    allowed_pixels: tuple[str, ...] = ()
    #: 0: any free port (tests); fixed ports let a separately started backend find them
    proxy_port: int = 0
    sink_port: int = 0
    #: where both listen; a non-loopback address needs ``allow_remote`` and a token
    listen_host: str = "127.0.0.1"
    allow_remote: bool = False
    #: a CA folder that outlives the run (``pixelcheck ca --export``); None: a fresh CA
    ca_dir: str | None = None
    #: ws:// endpoint of a Playwright browser server to use instead of a local Chromium
    connect: str | None = None
    #: the proxy's URL as that remote browser reaches it (default: the local URL)
    connect_proxy: str | None = None
    #: send the site on loopback through the proxy too (the default); False: it goes
    #: direct, only other hosts through the proxy, and Playwright's response events feed
    #: the exposed-token scan (faster; see benchmarks/README.md for what stops it being
    #: the default)
    proxy_loopback: bool = True

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={MASK if f.name == 'access_token' and value else repr(value)}"
            for f in fields(self) if (value := getattr(self, f.name)) != f.default)
        return f"HarnessConfig({shown})"


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own initial value


def keep_large_blocks_returnable() -> None:
    """Keep glibc from holding freed request bodies.

    glibc raises its mmap threshold after each large free (up to 32 MiB): from then on
    multi-megabyte bodies come from the heap, which fragments and does not shrink.
    Fixed at glibc's initial 128 KiB, each large body gets its own mapping, returned to
    the system when freed (benchmarks/storm.py). A MALLOC_MMAP_THRESHOLD_ the user set
    wins; other C libraries are left alone.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):  # not glibc
        pass


class Harness:
    def __init__(self, config: HarnessConfig | None = None) -> None:
        self.config = config or HarnessConfig()
        check_listen_host(self.config.listen_host, allow_remote=self.config.allow_remote,
                          access_token=self.config.access_token)
        self.store = EventStore()
        self.proxy = PixelProxy(self.store, serve_libraries=self.config.serve_libraries,
                                listen_host=self.config.listen_host,
                                listen_port=self.config.proxy_port,
                                confdir=self.config.ca_dir and ensure_ca(
                                    self.config.ca_dir).parent,
                                allow_upstream=self.config.allow_upstream)
        self.sink = ConversionSink(self.store, host=self.config.listen_host,
                                   port=self.config.sink_port)
        self.sink.require_token = not is_loopback(self.config.listen_host)
        self._browser: BrowserSession | None = None
        self._started = False
        #: the site's responses that bypass the proxy, seen by the browser
        self.site_responses = SiteResponses()
        #: the ``pixelcheck serve`` whose captured calls join each test's (``attach``)
        self.attachment: Attachment | None = None

    def attach(self, url: str, token: str | None = None) -> Attachment:
        """Stream the server calls a ``pixelcheck serve`` at ``url`` captures into each
        test's capture (a staging backend configured once with that serve's sink)."""
        self.attachment = Attachment(url, self.store, token=token).connect()
        return self.attachment

    def start(self) -> Harness:
        if not self._started:
            install_log_redaction()
            host = self.config.listen_host
            check_port_free(host, self.config.proxy_port, "proxy", "--pixelcheck-proxy-port")
            check_port_free(host, self.config.sink_port, "sink", "--pixelcheck-sink-port")
            keep_large_blocks_returnable()
            try:
                self.proxy.start()
            except ProxyError as exc:
                if not self.config.proxy_port:
                    raise
                raise port_error(host, self.config.proxy_port, "proxy",
                                 "--pixelcheck-proxy-port", exc) from None
            self.sink.default_token = self.config.access_token
            remember_secret(self.config.access_token)
            try:
                self.sink.start()
            except (OSError, SystemExit) as exc:  # werkzeug exits on a taken port
                self.proxy.stop()
                raise port_error(host, self.config.sink_port, "sink",
                                 "--pixelcheck-sink-port", exc) from None
            # The proxy hands graph.facebook.com calls to the sink's decoding.
            self.proxy.sink_address = self.sink.address
            self._write_ca_bundle()
            self._started = True
        return self

    def browser(self, playwright: Any = None) -> BrowserSession:
        """The session's Chromium, launched on first use."""
        if self._browser is None:
            self.start()
            session = BrowserSession(
                (self.config.connect_proxy or self.proxy.url) if self.config.connect
                else self.proxy.url,
                self.proxy.ca_spki_sha256_base64,
                location=(find_chromium(self.config.browser_path)
                          if self.config.browser_path else None),
                headless=self.config.headless,
                playwright=playwright,
                slow_mo=self.config.slow_mo,
                connect=self.config.connect,
                proxy_loopback=self.config.proxy_loopback,
                site_responses=self.site_responses,
            )
            self._browser = session.start()
        return self._browser

    def settings(self) -> DiagnosisSettings:
        return DiagnosisSettings(late_after=self.config.late_after,
                                 race_tolerance=self.config.race_tolerance)

    def capture(self, test_id: str | None = None) -> Pixelcheck:
        # Faults and token a previous test injected into the sink end with it.
        self.sink.reset()
        self.proxy.blocked_platforms.clear()
        self.store.current_test = test_id
        if self.attachment is not None:
            self.attachment.begin(test_id)
        return Pixelcheck(self.store, test_id=test_id, settings=self.settings(),
                          default_timeout=self.config.default_timeout,
                          fail_on=self.config.fail_on, proxy=self.proxy, sink=self.sink,
                          allowed_pixels=self.config.allowed_pixels,
                          site_responses=self.site_responses)

    @property
    def ca_bundle_path(self) -> Path:
        """The session CA plus the usual public roots, for a backend behind the proxy."""
        return self.proxy.confdir / "ca-bundle.pem"

    def backend_env(self, host: str | None = None, *, ca_bundle: str | None = None,
                    ca_cert: str | None = None) -> dict[str, str]:
        """Environment for a backend whose HTTPS calls should go through the proxy.

        ``host``: the name the backend reaches this machine by, for a backend that is
        not our child: ``"host.docker.internal"`` in a container, a staging host's
        address for this runner. ``ca_bundle``/``ca_cert``: where the backend sees the
        exported CA (``pixelcheck ca --export``), e.g. its mount path in the container;
        by default this machine's paths.
        """
        proxy_url, sink_url = self.proxy.url, self.sink.url
        no_proxy: tuple[str, ...] = LOCAL_NO_PROXY
        if host is not None:
            shown = url_host(host)
            proxy_url = f"http://{shown}:{self.proxy.port}"
            sink_url = f"http://{shown}:{self.sink.port}"
            no_proxy = (*LOCAL_NO_PROXY, host)  # the sink itself is reached directly
        return ca.backend_env(proxy_url, sink_url,
                              ca_bundle or str(self.ca_bundle_path),
                              ca_cert or str(self.proxy.ca_cert_path), no_proxy)

    def startup_seconds(self) -> dict[str, float | None]:
        return {
            "proxy": self.proxy.startup_seconds,
            "sink": self.sink.startup_seconds,
            "browser": self._browser.startup_seconds if self._browser else None,
        }

    def close_browser(self) -> None:
        if self._browser is not None:
            self._browser.stop()
            self._browser = None

    def stop(self) -> None:
        if self.attachment is not None:
            self.attachment.close()
        self.close_browser()
        self.sink.stop()
        self.proxy.stop()
        self._started = False

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_ca_bundle(self) -> None:
        ca.write_bundle(self.proxy.ca_cert_path, self.ca_bundle_path)
