"""The fault catalogue: deliberate tracking bugs a test can switch on per request.

Faults come from the ``pixelcheck_fault`` cookie and/or the ``X-Pixelcheck-Fault``
header, as a comma-separated list like ``server_delay:2,value_mismatch``. They are
read fresh on every request, so one running shop serves every test case.

Scope: unless a description says "all server calls", a fault only touches the
Purchase event, so the rest of the journey stays a clean baseline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

log = logging.getLogger("example_site")

FAULT_COOKIE = "pixelcheck_fault"
FAULT_HEADER = "X-Pixelcheck-Fault"

FAULTS: dict[str, str] = {
    # ids and names
    "id_suffix": "server Purchase event_id gets the suffix '-server'",
    "id_case": "server Purchase event_id is upper-cased",
    "id_whitespace": "server Purchase event_id gets a trailing space",
    "name_case": "server sends 'purchase' instead of 'Purchase'",
    "name_alias": "server sends the Purchase as 'Subscribe'",
    "server_no_event_id": "server Purchase has no event_id",
    "browser_no_event_id": "browser Purchase has no eventID",
    # duplicates
    "double_browser_purchase": "thank-you page fires Purchase twice with the same eventID",
    "server_retry_same_id": "backend sends Purchase twice with the same event_id",
    "server_retry_new_id": "backend sends Purchase twice, the 2nd with a new random event_id",
    "hardcoded_event_id": "Purchase event id is the constant 'purchase.1' on both sides",
    # one side only
    "no_browser_purchase": "thank-you page does not fire Purchase",
    "no_server_purchase": "backend does not send Purchase",
    # timing
    "server_delay": "server Purchase sent N seconds late (server_delay:N, default 5)",
    "browser_late": "browser Purchase fired after setTimeout of N s (browser_late:N, default 1.5)",
    "stale_event_time": "server Purchase event_time is 8 days ago",
    "future_event_time": "server Purchase event_time is 1 hour ahead",
    "event_time_ms": "server Purchase event_time in milliseconds instead of seconds",
    # payload
    "value_mismatch": "server Purchase value = browser value + 1",
    "currency_mismatch": "server Purchase currency is EUR",
    "content_ids_mismatch": "server Purchase content_ids prefixed 'SKU_'",
    "wrong_pixel": "all server calls post to pixel id 9999999999",
    # PII
    "raw_email": "server Purchase em is the plain (normalized) email, not hashed",
    "unnormalized_email": "server Purchase em is the hash of the email as typed",
    "phone_plus": "server Purchase ph is the hash of the phone with its '+' and spaces",
    "phone_no_country": "server Purchase ph hashed without the leading US country code 1",
    "double_hash": "server Purchase em is sha256 of the sha256 hex",
    "hashed_fbp": "server Purchase fbp is sha256 of the _fbp cookie",
    "email_in_url": "thank-you redirect carries ?email=<raw email> in the URL",
    "browser_raw_email_cd": "browser Purchase custom data carries the raw email",
    "browser_unnormalized_am": "thank-you init passes em pre-hashed from the email as typed",
    "no_fbp": "server Purchase omits fbp",
    "wrong_user_agent": "server Purchase client_user_agent is 'python-urllib'",
    "wrong_source_url": "server Purchase event_source_url is the checkout page URL",
    # server API
    "wrong_token": "all server calls use access_token 'EAAwrongtoken'",
    "no_retry": "all server calls: no retry after an error",
    "retry_new_id": "all server calls: each retry after an error gets a new event_id",
    "token_in_page": "the access token is rendered into every page's tracking script",
    "test_event_code": "all server calls carry test_event_code 'TEST12345'",
    # journeys (pytest_pixelcheck.journeys): each breaks "exactly once" on one path
    "thanks_refire_new_id": "every later view of a thank-you page (reload, second tab) "
                            "fires Purchase again with a fresh event id",
    "pageshow_refire": "a thank-you page restored from the back-forward cache fires "
                       "Purchase again with a fresh event id",
    "place_order_not_disabled": "the Place-order button stays enabled after the first "
                                "submit, so a double click places two orders",
    "slow_fallback_beacon": "a thank-you page that took over 1 s to arrive also sends "
                            "Purchase through a fallback image beacon with a fresh id",
    "offline_resend_new_id": "a thank-you page re-sends Purchase with a fresh id when the "
                             "browser comes back online",
    # consent (--consent-banner)
    "pixel_before_consent": "tags load and fire before the visitor answers the banner",
    "server_ignores_consent": "server calls for a visitor who did not consent carry no "
                              "limited-use flag",
    "no_fire_after_consent": "accepting the banner does not fire the page's held tags",
    # the single-page checkout (/spa)
    "spa_double_pageview": "each route change of the single-page checkout fires its "
                           "virtual PageView twice (a router hook and a history listener)",
    "spa_no_route_pageview": "route changes of the single-page checkout fire no PageView "
                             "(only the first page load does)",
    # the payment provider on another host (--payment-provider)
    "psp_return_other_host": "the payment provider sends the shopper back to the shop as "
                             "'localhost' instead of the host they came on: the shop's "
                             "cookies (_fbp, _fbc, the session) stay behind",
}

#: default parameter of the faults that take one (``name:value``)
DEFAULT_SECONDS: dict[str, float] = {"server_delay": 5.0, "browser_late": 1.5}

_warned: set[str] = set()


@dataclass(frozen=True)
class ActiveFaults:
    """The faults of one request: name -> raw parameter (None when not given)."""

    params: dict[str, str | None] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.params

    def __iter__(self) -> Iterator[str]:
        return iter(self.params)

    def __bool__(self) -> bool:
        return bool(self.params)

    def for_platform(self, platform: str) -> ActiveFaults:
        """The faults switched on for one platform's tracker (``tiktok:id_suffix`` ->
        ``id_suffix``)."""
        prefix = f"{platform}:"
        return ActiveFaults({name[len(prefix):]: value for name, value in self.params.items()
                             if name.startswith(prefix)})

    def seconds(self, name: str) -> float:
        """The numeric parameter of ``name``, or its default when absent or unparsable."""
        default = DEFAULT_SECONDS.get(name, 0.0)
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            log.warning("fault %s: bad parameter %r, using %s", name, raw, default)
            return default
        return max(value, 0.0)

    @classmethod
    def parse(cls, *sources: str | None) -> ActiveFaults:
        """Merge comma-separated fault lists; unknown names are logged and dropped."""
        params: dict[str, str | None] = {}
        for source in sources:
            if not source:
                continue
            # cookie values may arrive percent-encoded or quoted depending on who set them
            text = unquote(source).strip().strip('"')
            for item in text.split(","):
                item = item.strip()
                if not item:
                    continue
                name, sep, value = item.partition(":")
                name = name.strip().lower()
                scoped = platform_faults().get(name)
                if scoped is not None and sep:
                    # "tiktok:id_suffix[:param]": a fault of that platform's tracker
                    fault, sep, value = value.partition(":")
                    name = f"{name}:{fault.strip().lower()}"
                    if fault.strip().lower() not in scoped:
                        if name not in _warned:
                            _warned.add(name)
                            log.warning("ignoring unknown fault %r", name)
                        continue
                elif name not in FAULTS:
                    if name not in _warned:  # once per name: the cookie rides every request
                        _warned.add(name)
                        log.warning("ignoring unknown fault %r", name)
                    continue
                params[name] = value.strip() if sep else None
        return cls(params)


NO_FAULTS = ActiveFaults()


def platform_faults() -> dict[str, dict[str, str]]:
    """Each tracker's faults by platform name (``example_site.trackers``)."""
    from .trackers import load_trackers

    return {name: tracker.faults for name, tracker in load_trackers().items()}
