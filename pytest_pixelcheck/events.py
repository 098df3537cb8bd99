"""The normalized event record and the thread-safe store both capture points write to.

Browser events come from the proxy's thread, server events from the sink's thread,
and tests read them from the main thread: the store is the one place they meet.
"""

from __future__ import annotations

import base64
import hashlib
import reprlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from .depth import MAX_JSON_DEPTH, cut_deep, too_deep_reason

Source = Literal["browser", "server"]

#: a body longer than this is kept as its first KEPT_BODY_BYTES, with its full length and
#: SHA-256 (``CapturedRequest.body_length`` / ``body_sha256``): decoders see it whole
KEPT_BODY_BYTES = 64 * 1024
#: what a session keeps before the current test: the most recent items, up to this many
#: and this many bytes of bodies; older ones are dropped (a long ``record`` session or a
#: long-running harness stays bounded). The current test's own items are always kept.
DEFAULT_MAX_ITEMS = 20_000
DEFAULT_MAX_BYTES = 128 * 1024 * 1024


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
    #: set when the kept ``body`` is cut short (see ``keep_within``): the full length
    #: and the SHA-256 (hex) of the body as it arrived
    body_length: int | None = None
    body_sha256: str | None = None

    def keep_within(self, limit: int = KEPT_BODY_BYTES) -> CapturedRequest:
        """Cut the kept body to ``limit`` bytes, recording its full length and digest
        (once decoded: decoders see the whole body)."""
        if len(self.body) > limit:
            self.body_length = len(self.body)
            self.body_sha256 = hashlib.sha256(self.body).hexdigest()
            self.body = self.body[:limit]
        if len(self.response_body) > limit:
            self.response_body = self.response_body[:limit]
        return self

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
            **({"body_length": self.body_length, "body_sha256": self.body_sha256}
               if self.body_length is not None else {}),
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
            body_length=data.get("body_length"),
            body_sha256=data.get("body_sha256"),
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
        size = (f"{self.body_length} bytes (first {len(self.body)} kept)"
                if self.body_length is not None else f"{len(self.body)} bytes")
        return (f"CapturedRequest({self.method} {url} {size}{status} "
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

class _Bounded(Generic[T]):
    """Items by absolute position; the oldest are dropped over the limits, never those
    at or after the latest ``mark()`` (the running test's)."""

    def __init__(self, max_items: int, max_bytes: int,
                 weigh: Callable[[T], int] | None) -> None:
        self._items: list[T] = []
        self._offset = 0  # positions of dropped items: [0, _offset)
        self._pinned: int | None = None  # no mark taken yet: every item may go
        self._bytes = 0
        self._weights: list[int] = []
        self.max_items, self.max_bytes, self._weigh = max_items, max_bytes, weigh
        #: how many items were dropped to stay within the limits
        self.dropped = 0

    def _append(self, item: T) -> int:
        weight = self._weigh(item) if self._weigh is not None else 0
        self._items.append(item)
        self._weights.append(weight)
        self._bytes += weight
        position = self._offset + len(self._items) - 1
        if len(self._items) > self.max_items or self._bytes > self.max_bytes:
            self._shrink()
        return position

    def _shrink(self) -> None:
        # down to 90% of the limits at once, so dropping is not paid on every append
        keep_items, keep_bytes = int(self.max_items * 0.9), int(self.max_bytes * 0.9)
        droppable = len(self._items) if self._pinned is None else \
            max(0, self._pinned - self._offset)
        cut, total, count = 0, self._bytes, len(self._items)
        while cut < droppable and (count - cut > keep_items or total > keep_bytes):
            total -= self._weights[cut]
            cut += 1
        if cut:
            del self._items[:cut]
            del self._weights[:cut]
            self._offset += cut
            self._bytes = total
            self.dropped += cut

    def _mark(self) -> int:
        self._pinned = self._offset + len(self._items)
        return self._pinned

    def _since(self, mark: int) -> list[T]:
        return self._items[max(mark - self._offset, 0):]

    def _before(self, mark: int) -> list[T]:
        return self._items[: max(mark - self._offset, 0)]


class AppendLog(_Bounded[T]):
    """A thread-safe append-only list read by position: written on the proxy's or the
    sink's thread, read by a test from the ``mark()`` taken when it began. Bounded for
    long sessions (see ``DEFAULT_MAX_ITEMS``); positions stay absolute."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS, max_bytes: int = DEFAULT_MAX_BYTES,
                 weigh: Callable[[T], int] | None = None) -> None:
        super().__init__(max_items, max_bytes, weigh)
        self._lock = threading.Lock()

    def append(self, item: T) -> None:
        with self._lock:
            self._append(item)

    def mark(self) -> int:
        with self._lock:
            return self._mark()

    def since(self, mark: int = 0) -> list[T]:
        with self._lock:
            return self._since(mark)

    def __len__(self) -> int:
        """Items appended so far, dropped ones included (the next position)."""
        with self._lock:
            return self._offset + len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self.since())


def request_weight(request: CapturedRequest | None) -> int:
    if request is None:
        return 0
    # The body as it arrived, not as kept: its decoded values (a 5 MB custom_data
    # string) stay in the event after the body is cut short.
    return ((request.body_length or len(request.body)) + len(request.response_body)
            + len(request.url))


class EventStore(_Bounded[Event]):
    """Append-only, thread-safe list of events with a way to await new ones; bounded for
    long sessions like ``AppendLog``."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__(max_items, max_bytes, lambda event: request_weight(event.raw))
        self._cond = threading.Condition()
        self.current_test: str | None = None
        #: requests that have arrived and are being decoded: their events are not in yet
        self._decoding = 0

    @contextmanager
    def decoding(self) -> Iterator[None]:
        """Around the decoding of a request that has arrived: ``wait_until`` holds its
        verdict while one is in progress, so a hit that arrived before the event that
        made a predicate true is never missed because a worker thread is still reading
        it (seen: a thank-you page's PageView decoded after its Purchase pair settled
        the wait)."""
        with self._cond:
            self._decoding += 1
        try:
            yield
        finally:
            with self._cond:
                self._decoding -= 1
                self._cond.notify_all()

    def add(self, events: Iterable[Event]) -> None:
        with self._cond:
            for event in events:
                event.seq = self._offset + len(self._items)
                if event.test_id is None:
                    event.test_id = self.current_test
                self._append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        """A position: events added later are ``since(mark)``."""
        with self._cond:
            return self._mark()

    def since(self, mark: int = 0) -> list[Event]:
        with self._cond:
            return list(self._since(mark))

    def before(self, mark: int) -> list[Event]:
        """The events before position ``mark`` that are still kept."""
        with self._cond:
            return list(self._before(mark))

    def __len__(self) -> int:
        with self._cond:
            return self._offset + len(self._items)

    def wait_until(
        self, predicate: Callable[[list[Event]], bool], mark: int, timeout: float
    ) -> bool:
        """Block until ``predicate(events since mark)`` is true or ``timeout`` passes.

        Wakes on every arrival instead of polling, so a test waits exactly as long
        as its events take. While a request that already arrived is still being
        decoded, the predicate waits for its events (up to the deadline, where it is
        asked once more as things stand).
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                remaining = deadline - time.monotonic()
                if (self._decoding == 0 or remaining <= 0) and predicate(self._since(mark)):
                    return True
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
