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

from .browser import BrowserSession, find_chromium
from .capture import Pixelcheck
from .diagnosis import DiagnosisSettings
from .events import EventStore
from .proxy import PixelProxy
from .redact import MASK, install_log_redaction, remember_secret
from .sink import ConversionSink


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
        self.store = EventStore()
        self.proxy = PixelProxy(self.store, serve_libraries=self.config.serve_libraries,
                                listen_port=self.config.proxy_port,
                                allow_upstream=self.config.allow_upstream)
        self.sink = ConversionSink(self.store, port=self.config.sink_port)
        self._browser: BrowserSession | None = None
        self._started = False

    def start(self) -> Harness:
        if not self._started:
            install_log_redaction()
            keep_large_blocks_returnable()
            self.proxy.start()
            self.sink.default_token = self.config.access_token
            remember_secret(self.config.access_token)
            self.sink.start()
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
                self.proxy.url,
                self.proxy.ca_spki_sha256_base64,
                location=(find_chromium(self.config.browser_path)
                          if self.config.browser_path else None),
                headless=self.config.headless,
                playwright=playwright,
                slow_mo=self.config.slow_mo,
            )
            self._browser = session.start()
        return self._browser

    def settings(self) -> DiagnosisSettings:
        return DiagnosisSettings(late_after=self.config.late_after,
                                 race_tolerance=self.config.race_tolerance)

    def capture(self, test_id: str | None = None) -> Pixelcheck:
        # Faults and token a previous test injected into the sink end with it.
        self.sink.reset()
        self.store.current_test = test_id
        return Pixelcheck(self.store, test_id=test_id, settings=self.settings(),
                          default_timeout=self.config.default_timeout,
                          fail_on=self.config.fail_on, proxy=self.proxy, sink=self.sink,
                          allowed_pixels=self.config.allowed_pixels)

    @property
    def ca_bundle_path(self) -> Path:
        """The session CA plus the usual public roots, for a backend behind the proxy."""
        return self.proxy.confdir / "ca-bundle.pem"

    def backend_env(self) -> dict[str, str]:
        """Environment for a backend whose HTTPS calls should go through the proxy.

        ``requests`` lets REQUESTS_CA_BUNDLE win over ``Session.verify``, and many
        machines export it, so every CA variable points at the session bundle.
        """
        bundle = str(self.ca_bundle_path)
        return {
            "HTTPS_PROXY": self.proxy.url,
            "https_proxy": self.proxy.url,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1",
            "SSL_CERT_FILE": bundle,
            "REQUESTS_CA_BUNDLE": bundle,
            "CURL_CA_BUNDLE": bundle,
            "NODE_EXTRA_CA_CERTS": str(self.proxy.ca_cert_path),
        }

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
        self.close_browser()
        self.sink.stop()
        self.proxy.stop()
        self._started = False

    def __enter__(self) -> Harness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_ca_bundle(self) -> None:
        parts = [self.proxy.ca_cert_path.read_text()]
        try:
            import certifi

            parts.append(Path(certifi.where()).read_text())
        except (ImportError, OSError):
            pass
        self.ca_bundle_path.write_text("\n".join(parts))
