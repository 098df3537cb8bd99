"""The normalized event record and the thread-safe store both capture points write to.

Browser events come from the proxy's thread, server events from the sink's thread,
and tests read them from the main thread: the store is the one place they meet.
"""

from __future__ import annotations

import base64
import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .depth import MAX_JSON_DEPTH, cut_deep, too_deep_reason

Source = Literal["browser", "server"]


# Reprs are written by hand (``repr=False``): the generated ones print URLs with
# ``access_token=``, Authorization headers, bodies and raw customer data, and pytest
# shows reprs in every failed assertion. report (and, through redact, pii) import this
# module, so the reprs import them late.
_REPR_URL_WIDTH = 160


@dataclass(repr=False)
class CapturedRequest:
    """The bytes of one request as it arrived, kept for reports and artifacts."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    arrival_time: float
    #: where it was captured: "proxy" (on the wire from the browser or a proxied
    #: backend) or "sink" (the backend called the sink's URL directly)
    channel: str
    #: the host the request was addressed to before the proxy rerouted it, if it did
    original_host: str | None = None
    response_status: int | None = None
    response_body: bytes = b""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-safe); a body that is not UTF-8 is base64."""
        try:
            body: dict[str, str] = {"body": self.body.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"body_base64": base64.b64encode(self.body).decode()}
        return {
            "method": self.method,
            "url": self.url,
            "headers": [list(h) for h in self.headers],
            **body,
            "arrival_time": self.arrival_time,
            "channel": self.channel,
            "original_host": self.original_host,
            "response_status": self.response_status,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapturedRequest:
        if "body_base64" in data:
            body = base64.b64decode(data["body_base64"])
        else:
            body = str(data.get("body", "")).encode("utf-8")
        return cls(
            method=data.get("method", "GET"),
            url=data["url"],
            headers=[(str(k), str(v)) for k, v in data.get("headers", [])],
            body=body,
            arrival_time=float(data.get("arrival_time", 0.0)),
            channel=data.get("channel", "proxy"),
            original_host=data.get("original_host"),
            response_status=data.get("response_status"),
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def secrets(self) -> set[str]:
        """Credentials this request carries by its structure (token params, auth headers)."""
        from .redact import request_secrets

        return request_secrets(self.url, self.headers, self.body)

    def __repr__(self) -> str:
        from .redact import scrub_secrets
        from .report import shorten

        url = shorten(scrub_secrets(self.url, self.secrets()), _REPR_URL_WIDTH)
        status = "" if self.response_status is None else f" status={self.response_status}"
        return (f"CapturedRequest({self.method} {url} {len(self.body)} bytes{status} "
                f"via {self.channel})")


@dataclass(repr=False)
class Event:
    """One conversion event as a platform sees it, from either side.

    ``event_time`` is always Unix seconds (the platform module converts); the value
    as sent stays in ``event_time_raw`` so timing findings can see a unit mistake.
    An event whose request could not be decoded has ``error`` set and keeps whatever
    fields could be read.
    """

    platform: str
    source: Source
    pixel_id: str | None
    event_name: str | None
    event_id: str | None
    event_time: float | None
    arrival_time: float
    user_data: dict[str, Any] = field(default_factory=dict)
    custom_data: dict[str, Any] = field(default_factory=dict)
    page_url: str | None = None
    raw: CapturedRequest | None = None
    error: str | None = None
    event_time_raw: Any = None
    #: platform fields that are not in the common record (action_source, fbp, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: position in the session's capture, a stable identity for reports
    seq: int = -1
    #: node id of the test that was running when it arrived
    test_id: str | None = None

    @property
    def decoded(self) -> bool:
        return self.error is None

    @property
    def value(self) -> Any:
        return self.custom_data.get("value")

    def label(self) -> str:
        """Short human name: ``browser Purchase id='ORD-1'``."""
        name = self.event_name if self.event_name is not None else "<no name>"
        eid = repr(self.event_id) if self.event_id is not None else "<no id>"
        return f"{self.source} {name} id={eid}"

    def secrets(self) -> set[str]:
        """Credentials of the request this event came in (see CapturedRequest.secrets)."""
        return self.raw.secrets() if self.raw is not None else set()

    def __repr__(self) -> str:
        from .redact import scrub_secrets

        parts = [self.platform, self.label()]
        if self.pixel_id is not None:
            parts.append(f"pixel={self.pixel_id}")
        parts.append(f"seq={self.seq}")
        if "value" in self.custom_data:
            currency = self.custom_data.get("currency")
            parts.append(f"value={_shown(self.custom_data['value'])}"
                         + (f" {_shown(currency)}" if currency is not None else ""))
        if self.user_data:
            # which keys, never their values: the values are the customer's data
            parts.append(f"user_data=[{', '.join(map(str, self.user_data))}]")
        if self.raw is not None and self.raw.response_status is not None:
            parts.append(f"status={self.raw.response_status}")
        if self.error:
            parts.append(f"error={self.error!r}")
        return f"Event({scrub_secrets(' '.join(parts), self.secrets())})"


def bound_depth(event: Event) -> bool:
    """Cut ``event``'s data nested past ``MAX_JSON_DEPTH`` (an event built by hand or by
    a fuzzer; decoders refuse such bodies before they make one), and say so in its
    ``error``, which the diagnosis reports as ``payload-too-deep``. True if it cut."""
    deepest = 0
    event.user_data, depth = cut_deep(event.user_data)
    deepest = max(deepest, depth)
    event.custom_data, depth = cut_deep(event.custom_data)
    deepest = max(deepest, depth)
    event.extra, depth = cut_deep(event.extra)
    deepest = max(deepest, depth)
    event.event_time_raw, depth = cut_deep(event.event_time_raw)
    deepest = max(deepest, depth)
    if deepest <= MAX_JSON_DEPTH:
        return False
    if event.error is None:
        event.error = too_deep_reason(deepest)
    return True


def _shown(value: Any) -> str:
    """A value for a one-line repr: containers abbreviated (and never recursed into
    without bound), scalars as they are."""
    return reprlib.repr(value) if isinstance(value, (dict, list, tuple, set)) else str(value)


T = TypeVar("T")


class AppendLog(Generic[T]):
    """A thread-safe append-only list read by position: written on the proxy's or the
    sink's thread, read by a test from the ``mark()`` taken when it began."""

    def __init__(self) -> None:
        self._items: list[T] = []
        self._lock = threading.Lock()

    def append(self, item: T) -> None:
        with self._lock:
            self._items.append(item)

    def mark(self) -> int:
        with self._lock:
            return len(self._items)

    def since(self, mark: int = 0) -> list[T]:
        with self._lock:
            return self._items[mark:]

    def __len__(self) -> int:
        return self.mark()

    def __iter__(self) -> Iterator[T]:
        return iter(self.since())


class EventStore:
    """Append-only, thread-safe list of events with a way to await new ones."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()
        self.current_test: str | None = None

    def add(self, events: Iterable[Event]) -> None:
        with self._cond:
            for event in events:
                event.seq = len(self._events)
                if event.test_id is None:
                    event.test_id = self.current_test
                self._events.append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        """A position: events added later are ``since(mark)``."""
        with self._cond:
            return len(self._events)

    def since(self, mark: int = 0) -> list[Event]:
        with self._cond:
            return list(self._events[mark:])

    def __len__(self) -> int:
        with self._cond:
            return len(self._events)

    def wait_until(
        self, predicate: Callable[[list[Event]], bool], mark: int, timeout: float
    ) -> bool:
        """Block until ``predicate(events since mark)`` is true or ``timeout`` passes.

        Wakes on every arrival instead of polling, so a test waits exactly as long
        as its events take.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if predicate(self._events[mark:]):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
