"""Registry of ad platforms: each one knows its wire formats and its dedup rule.

A platform module answers four questions for the rest of the harness:
which requests are its browser collection hits (the proxy answers and decodes
them), which hosts are its server API (the proxy reroutes them to the sink),
how to decode and answer a server API request (the sink calls it), and which
key makes a browser event and a server event the same conversion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..events import CapturedRequest, Event

# 1x1 transparent GIF, the answer image beacons expect
TRANSPARENT_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@dataclass
class CannedResponse:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ServerAnswer:
    """What the sink recorded and answers for one server API request."""

    events: list[Event]
    status: int
    body: dict[str, Any]
    #: where the access token came from ("query", "form", "json", "header") or None
    token_location: str | None = None
    token: str | None = None
    #: schema violations that made the platform reject the request
    violations: list[Any] = field(default_factory=list)


class Platform:
    """Base class: override what the platform supports."""

    name: str = ""
    #: hosts of the platform's server API, which the proxy hands to the sink
    server_hosts: frozenset[str] = frozenset()

    def is_collection(self, host: str, path: str) -> bool:
        return False

    def decode_browser(self, request: CapturedRequest) -> list[Event]:
        return []

    def collection_response(self, request: CapturedRequest) -> CannedResponse:
        return CannedResponse(200, TRANSPARENT_GIF, "image/gif")

    def library_response(self, host: str, path: str) -> CannedResponse | None:
        """An offline stand-in for the platform's JS library, or None."""
        return None

    def is_server_api(self, host: str | None, path: str) -> bool:
        return False

    def handle_server(self, request: CapturedRequest) -> ServerAnswer:
        raise NotImplementedError

    def error_answer(self, kind: str, request: CapturedRequest) -> tuple[int, dict[str, Any]]:
        """The platform's own answer for an injected fault (500, 429, expired token...)."""
        raise NotImplementedError

    def dedup_key(self, event: Event) -> tuple[Any, ...] | None:
        """Events with equal keys are one conversion. None: cannot be deduplicated."""
        raise NotImplementedError

    def dedup_rule(self) -> str:
        """One line for failure messages: what must be equal on both sides."""
        return ""


_REGISTRY: dict[str, Platform] = {}


def register(platform: Platform) -> Platform:
    _REGISTRY[platform.name] = platform
    return platform


def get(name: str) -> Platform:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"unknown platform {name!r}; registered: {known}") from None


def all_platforms() -> list[Platform]:
    return list(_REGISTRY.values())


def for_collection(host: str, path: str) -> Platform | None:
    for platform in _REGISTRY.values():
        if platform.is_collection(host, path):
            return platform
    return None


def for_server_api(host: str | None, path: str) -> Platform | None:
    for platform in _REGISTRY.values():
        if platform.is_server_api(host, path):
            return platform
    return None


def for_library(host: str, path: str) -> tuple[Platform, CannedResponse] | None:
    for platform in _REGISTRY.values():
        response = platform.library_response(host, path)
        if response is not None:
            return platform, response
    return None


def is_server_host(host: str) -> bool:
    return any(host in p.server_hosts for p in _REGISTRY.values())


def decode_request(request: CapturedRequest, source: str | None = None) -> list[Event]:
    """Events in a recorded request (a capture line, a HAR entry, a backend log line).

    Requests that are neither a collection hit nor a server API call give [].
    The recorded answer status, when there is one, wins over a fresh decode's.
    """
    from ..wire import host_of, path_of

    host, path = host_of(request.url), path_of(request.url)
    platform = for_collection(host, path) if source != "server" else None
    if platform is not None:
        return platform.decode_browser(request)
    platform = None
    if source != "browser":
        platform = for_server_api(request.original_host or host, path)
    if platform is None:
        return []
    recorded_status = request.response_status
    answer = platform.handle_server(request)
    request.response_status = recorded_status or answer.status
    return answer.events


def _load_builtin() -> None:
    from . import meta  # noqa: F401  (registers itself)


_load_builtin()
