"""Group browser and server events by each platform's dedup rule.

Four outcomes, as the platform would see them: deduplicated pairs, browser-only
and server-only conversions, and copies duplicated within one side. Events that
could not be decoded are kept apart so reports can still show them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import platforms
from .events import Event, Source, bound_depth

# Reprs by hand (repr=False): short, and never the events' raw requests or customer
# data, which the generated reprs would print in every failed pytest assertion.


@dataclass(repr=False)
class Pair:
    browser: Event
    server: Event

    @property
    def key(self) -> tuple[Any, ...] | None:
        return platforms.get(self.browser.platform).dedup_key(self.browser)

    def __repr__(self) -> str:
        from .redact import scrub

        name = self.browser.event_name if self.browser.event_name is not None else "<no name>"
        return scrub(f"Pair({self.browser.platform} {name} id={self.browser.event_id!r} "
                     f"browser seq={self.browser.seq} server seq={self.server.seq})")


@dataclass(repr=False)
class SideDuplicate:
    """Two or more copies of one conversion sent from the same side."""

    source: Source
    key: tuple[Any, ...]
    events: list[Event]

    def __repr__(self) -> str:
        from .redact import scrub

        first = self.events[0] if self.events else None
        what = first.label() if first is not None else "?"
        seqs = ", ".join(str(e.seq) for e in self.events)
        return scrub(f"SideDuplicate({len(self.events)} copies of {what} seq=[{seqs}])")


@dataclass
class EventNameStats:
    platform: str
    event_name: str
    browser: int = 0
    server: int = 0
    deduplicated: int = 0
    browser_only: int = 0
    server_only: int = 0
    #: copies beyond the first of one conversion from one side (double fires, resends)
    extra: int = 0

    @property
    def conversions(self) -> int:
        """How many conversions there were, as best the two sides tell.

        A conversion whose copies failed to merge shows once on each side, so the
        one-side-only counts are not added up: the larger of them is the number of
        conversions left unmerged (a near-miss pair is one sale, not two).
        """
        return self.deduplicated + max(self.browser_only, self.server_only)

    @property
    def dedup_rate(self) -> float | None:
        """Share of conversions that arrived from both sides and merged; None if none."""
        return self.deduplicated / self.conversions if self.conversions else None


@dataclass(repr=False)
class MatchResult:
    pairs: list[Pair] = field(default_factory=list)
    browser_only: list[Event] = field(default_factory=list)
    server_only: list[Event] = field(default_factory=list)
    duplicates: list[SideDuplicate] = field(default_factory=list)
    undecodable: list[Event] = field(default_factory=list)
    #: server events the sink answered with an error: the platform never counted them
    rejected: list[Event] = field(default_factory=list)
    #: events the platform counts on each side and never merges (GA4's page_view):
    #: nothing to pair, so neither missing twins nor rates
    unmerged_by_design: list[Event] = field(default_factory=list)
    #: second copies of a hit the tag sends to another host too (GA4's doubleclick
    #: ping): the same event, counted once
    mirrors: list[Event] = field(default_factory=list)
    #: copies a test stopped on purpose (pixelcheck.block_browser, an ad blocker,
    #: pixelcheck_sink.refuse): captured and shown, never counted by the platform
    blocked: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.browser_only or self.server_only or self.duplicates
                    or self.undecodable or self.rejected)

    def __repr__(self) -> str:
        counts = [(len(self.pairs), "pair"), (len(self.browser_only), "browser-only"),
                  (len(self.server_only), "server-only"), (len(self.duplicates), "duplicate"),
                  (len(self.rejected), "rejected"), (len(self.undecodable), "undecodable")]
        shown = ", ".join(f"{n} {label}{'s' if n != 1 and label in ('pair', 'duplicate') else ''}"
                          for n, label in counts if n or label == "pair")
        n = len(self.events)
        return f"MatchResult({shown} of {n} event{'' if n == 1 else 's'})"

    def stats(self) -> dict[tuple[str, str], EventNameStats]:
        """Counts per (platform, event name), in order of first appearance."""
        table: dict[tuple[str, str], EventNameStats] = {}

        def row(event: Event) -> EventNameStats:
            key = (event.platform, event.event_name or "<no name>")
            if key not in table:
                table[key] = EventNameStats(*key)
            return table[key]

        mirrors = {id(e) for e in self.mirrors}
        for event in self.events:
            if event.decoded and id(event) not in mirrors:
                stats = row(event)
                if event.source == "browser":
                    stats.browser += 1
                else:
                    stats.server += 1
        for pair in self.pairs:
            row(pair.browser).deduplicated += 1
        for event in self.browser_only:
            row(event).browser_only += 1
        for event in self.server_only:
            row(event).server_only += 1
        for dup in self.duplicates:
            row(dup.events[0]).extra += len(dup.events) - 1
        return table

    def rate(self, event_name: str, platform: str | None = None) -> float | None:
        rows = [s for (p, name), s in self.stats().items()
                if name == event_name and (platform is None or p == platform)]
        conversions = sum(s.conversions for s in rows)
        return sum(s.deduplicated for s in rows) / conversions if conversions else None

    def narrowed(self, event_names: Iterable[str] | None) -> MatchResult:
        """The same result with only the events named ``event_names`` (None: all)."""
        if event_names is None:
            return self
        names = set(event_names)

        def keep(event: Event) -> bool:
            return event.event_name in names

        return MatchResult(
            pairs=[p for p in self.pairs if keep(p.browser) or keep(p.server)],
            browser_only=[e for e in self.browser_only if keep(e)],
            server_only=[e for e in self.server_only if keep(e)],
            duplicates=[d for d in self.duplicates if any(keep(e) for e in d.events)],
            # an undecodable request with no readable name may be any of them
            undecodable=[e for e in self.undecodable if keep(e) or e.event_name is None],
            rejected=[e for e in self.rejected if keep(e)],
            unmerged_by_design=[e for e in self.unmerged_by_design if keep(e)],
            mirrors=[e for e in self.mirrors if keep(e)],
            blocked=[e for e in self.blocked if keep(e)],
            events=[e for e in self.events if keep(e) or (not e.decoded
                                                          and e.event_name is None)],
        )

    def event_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for event in self.events:
            if event.event_name is not None:
                seen.setdefault(event.event_name)
        return list(seen)


def match_events(events: Iterable[Event], platform: str | None = None) -> MatchResult:
    """Match every decoded event by its platform's dedup key.

    Within one key the earliest browser and earliest server copy form the pair
    (the platform keeps one of them); later copies are reported as duplicates.
    """
    result = MatchResult()
    groups: dict[tuple[str, tuple[Any, ...]], dict[str, list[Event]]] = defaultdict(
        lambda: {"browser": [], "server": []}
    )
    order: list[tuple[str, tuple[Any, ...]]] = []
    for event in sorted(events, key=lambda e: (e.arrival_time, e.seq)):
        if platform is not None and event.platform != platform:
            continue
        bound_depth(event)
        result.events.append(event)
        if not event.decoded:
            result.undecodable.append(event)
            continue
        if event.extra.get("mirror_of"):
            result.mirrors.append(event)
            continue
        if blocked(event):
            result.blocked.append(event)
            continue
        if not accepted(event):
            result.rejected.append(event)
            continue
        if not _merges(event):
            result.unmerged_by_design.append(event)
            continue
        key = _key(event)
        if key is None:
            (result.browser_only if event.source == "browser" else result.server_only).append(event)
            continue
        group_key = (event.platform, key)
        if group_key not in groups:
            order.append(group_key)
        groups[group_key][event.source].append(event)

    for group_key in order:
        sides = groups[group_key]
        browser, server = sides["browser"], sides["server"]
        if browser and server:
            result.pairs.append(Pair(browser[0], server[0]))
        elif browser:
            result.browser_only.append(browser[0])
        else:
            result.server_only.append(server[0])
        for source in ("browser", "server"):
            if len(sides[source]) > 1:
                result.duplicates.append(SideDuplicate(source, group_key[1], sides[source]))
    result.browser_only.sort(key=lambda e: e.seq)
    result.server_only.sort(key=lambda e: e.seq)
    return result


def settled(events: list[Event], names: list[str] | None = None,
            platform: str | None = None, side: Source | None = None) -> bool:
    """True when every in-scope conversion has both its copies: nothing left to wait for.

    ``names`` None means every event name; otherwise each named event must also
    have arrived from both sides at least once. ``side``: the test expects that side
    alone (``Pixelcheck.server_only``): each named event (or any event) from it is enough.
    """
    def in_scope(event: Event) -> bool:
        return names is None or event.event_name in names

    result = match_events(events, platform)
    if side is not None:
        arrived = {e.event_name for e in result.events
                   if e.source == side and e.decoded and in_scope(e)}
        return bool(arrived) if names is None else set(names) <= arrived
    if any(in_scope(e) for e in result.browser_only + result.server_only):
        return False
    # events a platform never merges (GA4's page_view) have no twin to wait for
    alone = {id(e) for e in result.unmerged_by_design + result.mirrors}
    scoped = [e for e in result.events if in_scope(e) and id(e) not in alone]
    if names is None:
        return {"browser", "server"} <= {e.source for e in scoped} or (
            not scoped and bool(alone))
    never_merged = {e.event_name for e in result.unmerged_by_design}
    return all(name in never_merged or
               {"browser", "server"} <= {e.source for e in scoped if e.event_name == name}
               for name in names)


def blocked(event: Event) -> str | None:
    """What stopped this copy on its way to the platform, when a test did it on purpose
    (``pixelcheck.block_browser``, an ad blocker's filter, ``pixelcheck_sink.refuse``)."""
    return event.extra.get("blocked")


def accepted(event: Event) -> bool:
    """False for a server event the platform did not count: answered with an error
    status, or refused inside a 2xx answer (TikTok's ``code``, GA4's silent drops),
    which the platform notes as ``extra["rejected_by_platform"]``."""
    if blocked(event):
        return False
    if event.source != "server":
        return True
    if event.extra.get("rejected_by_platform"):
        return False
    if event.raw is None or event.raw.response_status is None:
        return True
    return 200 <= event.raw.response_status < 300


def _merges(event: Event) -> bool:
    if event.extra.get("not_a_conversion"):  # a page view or identify hit of the tag
        return False
    try:
        return platforms.get(event.platform).deduplicates(event.event_name)
    except KeyError:
        return True


def _key(event: Event) -> tuple[Any, ...] | None:
    try:
        return platforms.get(event.platform).dedup_key(event)
    except KeyError:
        return None
