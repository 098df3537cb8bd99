"""Exactly once: across everything a test did (reloads, back buttons, double clicks, a
second tab), each platform counted one conversion once.

Copies that share the platform's dedup key merge into one conversion, wherever they
came from; copies with different keys are separate conversions the platform counts
each. A server copy the platform refused counts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import platforms
from .capture import Pixelcheck
from .events import Event
from .findings import Finding, register_codes
from .matching import accepted, settled

register_codes({
    "counted-more-than-once": ("error", "the platform counts one conversion more than once"),
})

#: where an event arrived before any journey helper ran
BEFORE_JOURNEYS = "the test's own steps"


@dataclass(repr=False)
class Conversion:
    """One conversion as a platform counts it: every copy sharing one dedup key."""

    platform: str
    #: the platform's dedup key; None for a copy that cannot merge (no id)
    key: tuple[Any, ...] | None
    events: list[Event] = field(default_factory=list)
    #: the journey step during which its first copy arrived
    journey: str = BEFORE_JOURNEYS

    @property
    def event_id(self) -> str | None:
        return self.events[0].event_id if self.events else None

    @property
    def sides(self) -> str:
        found = {e.source for e in self.events}
        if found == {"browser", "server"}:
            return "browser + server"
        return f"{next(iter(found))} only" if found else "no copy"

    def __repr__(self) -> str:
        return (f"Conversion({self.platform} id={self.event_id!r} {self.sides}, "
                f"{len(self.events)} copies, during {self.journey})")


def carries_key(event: Event, key: str) -> bool:
    """Does ``event`` belong to the order ``key``? It does when its event id contains
    the key (``purchase.ORD-1``) or a custom-data or platform field equals it (order_id,
    transaction_id, ...): a re-fire under a fresh id still names its order."""
    if event.event_id is not None and key in str(event.event_id):
        return True
    values = [*event.custom_data.values(), *event.extra.values()]
    return any(isinstance(v, (str, int)) and str(v) == key for v in values)


def count_conversions(
    events: Sequence[Event], event_name: str, *, key: str | None = None,
    journey_of: Any = None,
) -> dict[str, list[Conversion]]:
    """platform -> the conversions of ``event_name`` (for order ``key``) it counts.

    A platform whose every copy was refused maps to []: it counted nothing.
    ``journey_of(event)``: the journey step an event arrived in (default: none).
    """
    out: dict[str, list[Conversion]] = {}
    by_key: dict[tuple[str, Any], Conversion] = {}
    for event in sorted(events, key=lambda e: (e.arrival_time, e.seq)):
        if not event.decoded or event.event_name is None or event.extra.get("mirror_of"):
            continue
        if key is not None and not carries_key(event, key):
            continue
        platform = _platform(event.platform)
        if not _same_conversion_name(platform, event.event_name, event_name):
            continue
        conversions = out.setdefault(event.platform, [])
        if not accepted(event):
            continue
        dedup_key = platform.dedup_key(event) if platform is not None else None
        if dedup_key is not None and (event.platform, dedup_key) in by_key:
            by_key[(event.platform, dedup_key)].events.append(event)
            continue
        conversion = Conversion(event.platform, dedup_key, [event],
                                journey_of(event) if journey_of else BEFORE_JOURNEYS)
        conversions.append(conversion)
        if dedup_key is not None:
            by_key[(event.platform, dedup_key)] = conversion
    return out


def _platform(name: str) -> platforms.Platform | None:
    try:
        return platforms.get(name)
    except KeyError:
        return None


def _same_conversion_name(platform: platforms.Platform | None, name: str, wanted: str) -> bool:
    """``Purchase`` asked, the platform's own spelling sent (TikTok's CompletePayment, GA4's
    purchase, Snapchat's PURCHASE): the same conversion."""
    if name == wanted or name.lower() == wanted.lower():
        return True
    return platform is not None and platform.name_variant(name, wanted) is not None


def counted_more_than_once(event_name: str, key: str | None,
                           conversions: list[Conversion]) -> Finding:
    """The finding for one platform that counted ``event_name`` more than once, naming the
    journey step each extra conversion came from."""
    first = conversions[0]
    platform = first.platform
    whose = f" for {key!r}" if key is not None else ""
    extra = conversions[1:]
    journeys = list(dict.fromkeys(c.journey for c in extra))
    details = [f"{i}. id {c.event_id!r}: {c.sides}, first arrived during {c.journey}"
               for i, c in enumerate(conversions, 1)]
    new_ids = [c for c in extra if c.event_id is not None and c.event_id != first.event_id]
    how = "under a new id" if new_ids else "that cannot merge (no id)"
    return Finding(
        "counted-more-than-once",
        f"{platform} counted {event_name}{whose} {len(conversions)} times: "
        f"{' and '.join(journeys)} added a conversion {how}",
        "send every copy of one conversion with the same event id, whatever page view or "
        "visit fires it, or fire it once per order",
        [e for c in conversions for e in c.events], details, platform,
        first.events[0].event_name,
    )


def exactly_once(pixelcheck: Pixelcheck, event_name: str, *, key: str | None = None,
                 platform: str | None = None, timeout: float | None = None,
                 ) -> tuple[dict[str, list[Conversion]], list[Finding]]:
    """Wait for stragglers, then count: (conversions per platform, findings)."""
    timeout = pixelcheck.default_timeout if timeout is None else timeout
    pixelcheck.wait_until(
        lambda evs: settled(evs, [event_name], platform, pixelcheck.expected_side), timeout)
    events = [e for e in pixelcheck.events if platform is None or e.platform == platform]
    counted = count_conversions(events, event_name, key=key,
                                journey_of=pixelcheck.journey_of)
    findings = [counted_more_than_once(event_name, key, convs)
                for convs in counted.values() if len(convs) > 1]
    return counted, findings
