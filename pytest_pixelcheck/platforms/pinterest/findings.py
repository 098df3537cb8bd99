"""Pinterest's own findings: what the core's checks cannot see because it takes
Pinterest's rules to see it.

* ``pinterest-api-event-name-spelling``: the Conversions API call used the tag's
  spelling (``addtocart``) or another one, not the API's (``add_to_cart``). Pinterest
  accepts the call but files the event as an advertiser-defined one, so it never
  merges with the tag's and is not reported as the standard event.
* ``pinterest-checkout-without-order-id``: Pinterest asks for ``order_id`` on checkouts
  "to help us deduplicate events when necessary".
* ``pinterest-offline-not-deduplicated``: an ``action_source: "offline"`` event shares
  its event_id with a tag event; Pinterest never merges offline events, so the sale
  counts twice.
* the click-id codes of ``identity.py`` (``_epik`` on both copies).

The codes register on import. The platform imports this module lazily:
``pytest_pixelcheck.findings`` imports the platform registry and cannot be imported
while the registry loads.
"""

from __future__ import annotations

from typing import Any

from ...events import Event
from ...findings import Finding, Severity, register_codes
from .identity import identity_problems
from .platform import (
    API_EVENTS,
    API_TO_TAG,
    FINDING_CODES,
    NAME,
    PINTEREST,
    squash,
    tag_canonical,
)

CODES: dict[str, tuple[Severity, str]] = dict(FINDING_CODES)
register_codes(CODES)


def _mine(events: list[Event]) -> list[Event]:
    return [e for e in events if e.platform == NAME and e.decoded
            and not e.extra.get("mirror_of") and not e.extra.get("not_a_conversion")]


def pinterest_findings(result: Any) -> list[Finding]:
    """Findings over one test's ``MatchResult`` (Pinterest's events only)."""
    return (_name_spelling(result) + _checkout_order_ids(result)
            + _offline_twins(result))


def _name_spelling(result: Any) -> list[Finding]:
    out: list[Finding] = []
    servers = [e for e in _mine(list(result.server_only) + list(result.rejected))
               if e.source == "server"]
    told: set[int] = set()
    for browser in _mine(list(result.browser_only)):
        if browser.source != "browser" or not browser.event_id:
            continue
        for server in servers:
            if id(server) in told or server.event_id != browser.event_id:
                continue
            sentence = PINTEREST.name_variant(browser.event_name, server.event_name)
            if sentence is None:
                continue
            told.add(id(server))
            wanted = tag_canonical(browser.event_name) or ""
            tag = API_TO_TAG.get(wanted, squash(browser.event_name))
            out.append(Finding(
                "pinterest-api-event-name-spelling",
                f"{browser.event_name} id={browser.event_id!r}: {sentence}",
                f"send data[].event_name '{wanted}' from the backend (the API's spelling) and "
                f"keep pintrk('track', '{tag}', ...) in the "
                "page: Pinterest maps the tag's name to the API's and merges the two on "
                "event_id",
                [browser, server], [f"tag event:             {browser.event_name!r}",
                                    f"Conversions API event: {server.event_name!r} "
                                    f"(Pinterest's API name: {wanted!r})"],
                NAME, browser.event_name))
    for server in servers:
        name = server.event_name
        if id(server) in told or name is None or name in API_EVENTS:
            continue
        wanted = next((n for n in API_EVENTS if squash(n) == squash(name)), None)
        if wanted is None:
            continue  # a name of the advertiser's own: Pinterest's warning says so
        out.append(Finding(
            "pinterest-api-event-name-spelling",
            f"the Conversions API sent event_name {name!r} (id={server.event_id!r}), which is "
            f"not an API name: the API spells this event {wanted!r}, so Pinterest files it as "
            "an advertiser-defined event that no tag event merges with",
            f"send data[].event_name '{wanted}'",
            [server], [], NAME, name))
    return out


def _checkout_order_ids(result: Any) -> list[Finding]:
    missing = [e for e in _mine(list(result.events)) if squash(e.event_name) == "checkout"
               and e.event_id and not e.custom_data.get("order_id")
               and not (e.source == "server" and e.extra.get("rejection"))]
    if not missing:
        return []
    sides = sorted({e.source for e in missing})
    return [Finding(
        "pinterest-checkout-without-order-id",
        f"{len(missing)} checkout(s) from the {' and the '.join(sides)} carry no order_id; "
        "Pinterest asks for it \"to help us deduplicate events when necessary\"",
        "send the order id in both copies: pintrk('track', 'checkout', {event_id: ID, "
        "order_id: ORDER_ID, value, currency, line_items}) in the page and "
        "data[].custom_data.order_id in the Conversions API call",
        missing, [f"{e.source}: checkout id={e.event_id!r}" for e in missing], NAME,
        "checkout")]


def _offline_twins(result: Any) -> list[Finding]:
    out = []
    browsers = [e for e in _mine(list(result.events)) if e.source == "browser" and e.event_id]
    for server in _mine(list(result.events)):
        if server.source != "server" or server.extra.get("action_source") != "offline" \
                or not server.event_id:
            continue
        twins = [b for b in browsers if b.event_id == server.event_id]
        if not twins:
            continue
        out.append(Finding(
            "pinterest-offline-not-deduplicated",
            f"Conversions API {server.event_name} id={server.event_id!r} is sent with "
            "action_source 'offline' although the tag sent the same event: Pinterest never "
            "deduplicates offline events, so this conversion counts twice",
            "send web conversions with action_source 'web' (and event_source_url); keep "
            "'offline' for sales that happened in a store or over the phone",
            [twins[0], server], [], NAME, server.event_name))
    return out


def identity_findings(pair: Any) -> list[Finding]:
    """The _epik click-id problems of one merged pair (``matching.Pair``)."""
    browser, server = pair.browser, pair.server
    if browser.platform != NAME:
        return []
    return [Finding(code, message, fix, [browser, server], [], NAME, browser.event_name)
            for code, message, fix in identity_problems(browser, server)]
