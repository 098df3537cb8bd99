"""A wait does not settle while a request that already arrived is still being decoded."""

from __future__ import annotations

import threading
import time

from pytest_pixelcheck.events import Event, EventStore


def _event(name: str, source: str) -> Event:
    return Event("meta", source, "1234567890", name, f"{name}.1", None, time.time())


def test_a_wait_holds_its_verdict_while_an_arrived_request_is_decoded() -> None:
    store = EventStore()
    store.add([_event("Purchase", "browser"), _event("Purchase", "server")])
    started, release = threading.Event(), threading.Event()

    def decode_the_thank_you_page_view() -> None:
        with store.decoding():
            started.set()
            release.wait(5)
            store.add([_event("PageView", "browser")])

    worker = threading.Thread(target=decode_the_thank_you_page_view)
    worker.start()
    started.wait(5)
    threading.Timer(0.3, release.set).start()
    seen: list[int] = []
    # true as things stand, but the PageView hit has arrived: the verdict waits for it
    assert store.wait_until(lambda evs: seen.append(len(evs)) is None, 0, 5)
    worker.join(5)
    assert seen == [3]


def test_at_the_deadline_the_predicate_is_asked_as_things_stand() -> None:
    store = EventStore()
    store.add([_event("Purchase", "browser")])
    release = threading.Event()
    with store.decoding():  # a decode that outlasts the wait
        started = time.monotonic()
        assert store.wait_until(lambda evs: len(evs) == 1, 0, 0.2)
        assert time.monotonic() - started >= 0.2
        assert not store.wait_until(lambda evs: len(evs) == 2, 0, 0.1)
    release.set()
    assert store.wait_until(lambda evs: len(evs) == 1, 0, 1)
