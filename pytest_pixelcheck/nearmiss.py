"""Finding the counterpart an unmatched event most likely was meant to merge with,
without comparing every unmatched browser event with every unmatched server event.

Two ways in, both bounded: ids reduced to a normal form (letter case, surrounding
whitespace, known prefixes and suffixes such as ``-server``) looked up in a dict, and
the few same-named events that arrived closest in time. The pytest plugin, ``record``
and ``analyze`` all diagnose through this one index, so a capture of a million events
costs a million look-ups, not a million squared comparisons.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Generic, TypeVar

from .events import Event

#: affixes backends add to the tag's id (lower case; the id is lowered first)
KNOWN_SUFFIXES = ("-server", "_server", ".server", "-srv", "_srv", "-s2s", "_s2s", "-capi",
                  "_capi", "-api", "_api", "-backend", "_backend", "-retry", "_retry")
KNOWN_PREFIXES = ("server-", "server_", "server.", "srv-", "srv_", "s2s-", "s2s_", "capi-",
                  "capi_", "api-", "api_", "backend-", "backend_")
#: the id's parts split on separators: 'purchase.ORD-1' and 'ORD-1' share 'ord-1'
_SEPARATORS = re.compile(r"[.:|/#]")
#: how many same-named neighbours in arrival time each event is compared with
NEIGHBOURS = 4

T = TypeVar("T")


def id_keys(event_id: str) -> set[str]:
    """The normal forms of an id that a near miss of it shares with it."""
    base = event_id.strip().lower()
    keys = {base}
    stripped = base
    changed = True
    while changed and stripped:
        changed = False
        for suffix in KNOWN_SUFFIXES:
            if stripped.endswith(suffix) and len(stripped) > len(suffix):
                stripped, changed = stripped[: -len(suffix)], True
        for prefix in KNOWN_PREFIXES:
            if stripped.startswith(prefix) and len(stripped) > len(prefix):
                stripped, changed = stripped[len(prefix):], True
    keys.add(stripped)
    parts = [p for p in _SEPARATORS.split(stripped) if len(p) >= 4]
    if len(parts) > 1:
        keys.update(parts)
    return keys


class CandidateIndex(Generic[T]):
    """Events that may still be taken, found by normalised id or by arrival time.

    ``group`` says which events may meet at all (same platform, and same event name
    for the time neighbours). Taking an event removes it from every later answer.
    """

    def __init__(self, items: Sequence[T], event_of: Callable[[T], Event],
                 group: Callable[[Event], Hashable]) -> None:
        self._items = list(items)
        self._event_of = event_of
        self._group = group
        self._taken: set[int] = set()
        self._positions = {id(item): i for i, item in enumerate(self._items)}
        self._by_key: dict[tuple[Hashable, str], list[int]] = defaultdict(list)
        self._by_time: dict[Hashable, list[tuple[float, int]]] = defaultdict(list)
        for position, item in enumerate(self._items):
            event = event_of(item)
            if event.event_id is not None:
                for key in id_keys(event.event_id):
                    self._by_key[(event.platform, key)].append(position)
            self._by_time[group(event)].append((event.arrival_time, position))
        for column in self._by_time.values():
            column.sort()

    def take(self, item: T) -> None:
        self._taken.add(self._positions[id(item)])

    def taken(self, item: T) -> bool:
        return self._positions.get(id(item)) in self._taken

    def remaining(self) -> list[T]:
        return [item for i, item in enumerate(self._items) if i not in self._taken]

    def candidates(self, event: Event) -> Iterator[T]:
        """Untaken items sharing a normal form of the id with ``event``, then its
        closest same-group neighbours in time; each once, in the order given."""
        seen: set[int] = set()
        positions: list[int] = []
        if event.event_id is not None:
            for key in sorted(id_keys(event.event_id)):
                positions += self._by_key.get((event.platform, key), ())
        column = self._by_time.get(self._group(event), [])
        at = bisect.bisect_left(column, (event.arrival_time, -1))
        positions += [p for _, p in column[max(0, at - NEIGHBOURS): at + NEIGHBOURS]]
        for position in sorted(set(positions)):
            if position not in seen and position not in self._taken:
                seen.add(position)
                yield self._items[position]


class Counter:
    """How many pairs were compared: a test can check the work stays linear."""

    def __init__(self) -> None:
        self.comparisons = 0


#: the comparisons made by diagnoses in this process, for tests and benchmarks
COMPARISONS = Counter()

