"""Per-platform tracking for the example shop: one module per ad platform.

The shop decides *what* happened (a list of ``TrackedEvent`` with Meta-style names
and custom data: PageView, ViewContent, AddToCart, InitiateCheckout, Purchase).
Each ``Tracker`` turns that into its platform's browser tag calls and server API
calls, applying the faults switched on for it (``tiktok:id_suffix`` in the fault
cookie reaches the TikTok tracker as ``id_suffix``). Meta's tracking lives in
``example_site/tracking.py`` for historical reasons; the others live here.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..faults import ActiveFaults
from ..tracking import Customer, RequestContext, TrackedEvent


@dataclass
class TrackerConfig:
    """How the shop is set up for one platform."""

    platform: str
    #: Meta pixel id, TikTok pixel code, GA4 measurement id, ...
    tag_id: str
    #: replaces the platform's API origin: the sink's url_for(platform), or the real
    #: origin (https://business-api.tiktok.com) when calls go through the proxy
    api_url: str
    #: access token, API secret, ...
    token: str
    #: how the backend sends: "json" (plain HTTP) or an official SDK's name
    client: str = "json"


@dataclass
class ServerCall:
    """One server API request, ready for the shop's sender (which retries it)."""

    platform: str
    #: for logs: "CompletePayment id='purchase.ORD-1'"
    label: str
    #: one attempt: (HTTP status or None when no answer came, answer body)
    send: Callable[[float], tuple[int | None, bytes]]
    retries: int = 2
    delay: float = 0.0
    #: is this answer worth a retry? default: no answer, 5xx or 429
    retryable: Callable[[int | None, bytes], bool] = field(
        default=lambda status, body: status is None or status >= 500 or status == 429)


def http_call(method: str, url: str, headers: dict[str, str], body: bytes | None
              ) -> Callable[[float], tuple[int | None, bytes]]:
    """A ``ServerCall.send`` for a plain HTTP request (urllib: honours HTTPS_PROXY,
    NO_PROXY and SSL_CERT_FILE from the environment, as a proxied backend needs)."""

    def send(timeout: float) -> tuple[int | None, bytes]:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read() if exc.fp is not None else b""
        except (OSError, TimeoutError) as exc:
            return None, str(exc).encode()

    return send


def proxy_for(url: str) -> str | None:
    """The proxy urllib would use for an https ``url``: HTTPS_PROXY unless NO_PROXY
    excludes its host. For official SDKs that do not read the environment themselves
    (TikTok's, Snap's, Pinterest's take a proxy only in their configuration)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get("https")


def json_call(url: str, payload: Any, headers: dict[str, str] | None = None
              ) -> Callable[[float], tuple[int | None, bytes]]:
    return http_call("POST", url, {"Content-Type": "application/json", **(headers or {})},
                     json.dumps(payload).encode())


class Tracker(ABC):
    """One platform's tracking in the shop."""

    #: the pixelcheck platform name ("tiktok", "ga4", ...)
    platform: str = ""
    #: fault name -> what it breaks (Purchase only unless it says otherwise)
    faults: dict[str, str] = {}
    #: the shop's defaults: tag id, token, and the real API origin (the proxy route)
    default_tag_id: str = ""
    default_token: str = ""
    real_api_url: str = ""
    #: how the backend can send: "json" first, then official SDKs by package name
    clients: tuple[str, ...] = ("json",)

    @abstractmethod
    def head(self, config: TrackerConfig, customer: Customer | None) -> str:
        """JS for the page's <script>: the tag's base code (loading its library from
        the platform's real URL; the proxy serves the offline stand-in) and init."""

    @abstractmethod
    def browser_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                      faults: ActiveFaults, customer: Customer | None) -> list[str]:
        """JS statements firing ``events`` with the tag, under ``faults``."""

    @abstractmethod
    def server_calls(self, config: TrackerConfig, events: list[TrackedEvent],
                     faults: ActiveFaults, ctx: RequestContext,
                     customer: Customer | None) -> list[ServerCall]:
        """The server API calls for ``events`` under ``faults``. ``ctx.cookies`` has
        the visitor's cookies (_ttp, _ga, ...), ``ctx.page_url`` the landing URL."""


@functools.cache
def load_trackers() -> dict[str, Tracker]:
    """Every platform tracker module in this package, by platform name."""
    import importlib
    import pkgutil

    found: dict[str, Tracker] = {}
    for module in pkgutil.iter_modules(__path__):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        tracker = getattr(loaded, "TRACKER", None)
        if isinstance(tracker, Tracker):
            found[tracker.platform] = tracker
    return found
