"""Cross-domain journeys: the click id and the platform cookies must survive every hop
(a payment provider on another host and back), and the server copy must carry them.

From the routes the watched page showed (``Pixelcheck.watch_routes``) and each
platform's identity fields (``Platform.journey_identity``: Meta's ``_fbp`` and
``_fbc``, TikTok's ``_ttp`` and ttclid, GA4's ``_ga`` client id), a
``click-id-lost`` finding names the hop after which a value was gone or changed, and
the server copy that lacks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from . import platforms
from .events import Event
from .findings import Finding, register_codes
from .matching import accepted, blocked

register_codes({
    "click-id-lost": ("error", "the click id or a platform cookie was lost on a hop of the "
                               "journey"),
})


def _host(url: str | None) -> str:
    return urlsplit(url or "").netloc


def _short(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.netloc}{parts.path}" or "?"


def _hop(routes: Sequence[str], before: str | None, lost_on: str | None) -> str:
    """The navigation that entered the host ``lost_on`` is on, after ``before``."""
    if not routes or not lost_on:
        return f"{_short(before)} -> {_short(lost_on)}"
    path = [r for r in routes]
    try:
        end = max(i for i, r in enumerate(path) if _short(r) == _short(lost_on))
    except ValueError:
        return f"{_short(before)} -> {_short(lost_on)}"
    start = end
    while start > 0 and _host(path[start - 1]) == _host(lost_on):
        start -= 1
    if start == 0:
        return f"{_short(before)} -> {_short(lost_on)}"
    return f"{_short(path[start - 1])} -> {_short(path[start])}"


def _identity(event: Event) -> dict[str, str | None]:
    try:
        return platforms.get(event.platform).journey_identity(event)
    except KeyError:
        return {}


def lost_identities(events: Sequence[Event], routes: Sequence[str]) -> list[Finding]:
    """A ``click-id-lost`` finding per platform and value that a later page or the
    server copy no longer carried."""
    out: list[Finding] = []
    ordered = sorted((e for e in events if e.decoded and not blocked(e)),
                     key=lambda e: e.seq)
    for name in dict.fromkeys(e.platform for e in ordered):
        browser = [e for e in ordered if e.platform == name and e.source == "browser"]
        server = [e for e in ordered if e.platform == name and e.source == "server"
                  and accepted(e)]
        keys = list(dict.fromkeys(k for e in browser for k, v in _identity(e).items() if v))
        for key in keys:
            first = next(e for e in browser if _identity(e).get(key))
            value = _identity(first).get(key)
            last_with = first
            for event in browser[browser.index(first) + 1:]:
                now = _identity(event).get(key)
                if now == value:
                    last_with = event
                    continue
                hop = _hop(routes, last_with.page_url, event.page_url)
                hosts = (_host(last_with.page_url), _host(event.page_url))
                why = (f"; the host changed from {hosts[0]} to {hosts[1]}, and cookies "
                       "belong to one host" if hosts[0] != hosts[1] else "")
                out.append(Finding(
                    "click-id-lost",
                    f"{name} {key} was {'lost' if not now else 'replaced'} on the hop "
                    f"{hop}: {_short(last_with.page_url)} carried it, "
                    f"{event.event_name} on {_short(event.page_url)} "
                    f"{'carries none' if not now else 'carries another value'}{why}",
                    "send the shopper back to the host they came on (the payment "
                    "provider's return URL must use the shop's own host name), and keep "
                    "the click id and the cookies on every hop",
                    [last_with, event], [f"first: {value}", f"then: {now}"], name,
                    event.event_name))
                break
            # the page the value was born on was rendered before the tag set it
            differ = [e for e in server if _identity(e).get(key) != value
                      and not e.extra.get("not_a_conversion")
                      and _short(e.page_url) != _short(first.page_url)]
            if not differ:
                continue
            now = _identity(differ[0]).get(key)
            # every server copy that lost it alike, named: which one arrives first (the
            # page's PageView or its Purchase) is a race, and the conversion matters most
            alike = [e for e in differ if bool(_identity(e).get(key)) == bool(now)]
            named = [f"{e.event_name} id={e.event_id!r}" for e in alike]
            others = ", ".join(named[1:4]) + (f" and {len(named) - 4} more"
                                              if len(named) > 4 else "")
            what = (f"no {key}, which the journey's pages had" if not now else
                    f"another {key} than the journey's pages")
            out.append(Finding(
                "click-id-lost",
                f"server {named[0]}{f' (and {others})' if others else ''} carries {what} "
                f"({_short(first.page_url)} had it): the backend read it from a request "
                "that no longer had it",
                "read the click id and the cookies from the visitor's request on the "
                "shop's own host (or store them with the order) and send them with the "
                "server event",
                [first, *alike], [f"pages: {value}", f"server: {now}"], name,
                alike[0].event_name))
    return out
