"""GA4's words for the fixes: the gtag.js call and the Measurement Protocol field to
change, for the core's finding codes (``GA4.fix``) and for GA4's own findings."""

from __future__ import annotations

from ...events import Event

PAGE_PURCHASE = ("gtag('event', 'purchase', {transaction_id: ORDER_ID, value: 25.0, "
                 "currency: 'USD', items: [...]})")
MP_PURCHASE = ("POST /mp/collect?measurement_id=G-...&api_secret=... with {client_id: <the "
               "_ga cookie's last two parts>, events: [{name: 'purchase', params: "
               "{transaction_id: ORDER_ID, value, currency, items, session_id, "
               "engagement_time_msec}}]}")
SAME_ID = (f"send the order id as transaction_id on both sides, byte for byte: "
           f"{PAGE_PURCHASE} in the page and events[].params.transaction_id = ORDER_ID in "
           "the Measurement Protocol call")
CLIENT_ID = ("send the browser's client id: read the _ga cookie (GA1.1.<random>.<seconds>) "
             "on the server and put its last two parts in the Measurement Protocol body's "
             "client_id (and the _ga_<id> cookie's session id in params.session_id); never "
             "mint a new one")
DROPPED = ("check the call against /debug/mp/collect (same body; it answers "
           "validationMessages) and fix what it lists; /mp/collect answers 2xx even for "
           "events Google throws away")


def _measurement_id(event: Event | None) -> str:
    return event.pixel_id if event is not None and event.pixel_id else "G-..."


def fix_text(code: str, event: Event | None = None) -> str | None:
    """The fix for a finding ``code`` in GA4's terms, or None for the core's text."""
    name = event.event_name if event is not None and event.event_name else "purchase"
    if code in ("near-miss-event-id", "reused-event-id", "server-retry-new-id"):
        return SAME_ID
    if code == "missing-event-id":
        if event is not None and event.source == "server":
            return ("set events[].params.transaction_id in the Measurement Protocol call to "
                    "the order id the page sends: " + MP_PURCHASE)
        return "pass the order id as transaction_id: " + PAGE_PURCHASE
    if code == "server-event-missing":
        return ("send the purchase from the backend too, once the order is paid: "
                + MP_PURCHASE)
    if code == "browser-event-missing":
        return (f"fire {PAGE_PURCHASE} on the confirmation page, after gtag('config', "
                f"'{_measurement_id(event)}')")
    if code == "wrong-pixel":
        return (f"post the Measurement Protocol call with measurement_id="
                f"{_measurement_id(event)}, the G- id the page passes to gtag('config', ...); "
                "another id lands in another data stream")
    if code == "event-name-mismatch":
        return ("name the event 'purchase' (lower case) on both sides: GA4 names are "
                "case-sensitive and only 'purchase' merges on transaction_id")
    if code == "test-event-code":
        return ("post to /mp/collect in production: /debug/mp/collect only validates and "
                "never records. GA4 has no test code; to see test events in DebugView add "
                "params.debug_mode: true (browser: gtag('config', ID, {debug_mode: true})), "
                "and use validation_behavior: 'ENFORCE_RECOMMENDATIONS' while developing")
    if code in ("event-time-too-old", "server-call-rejected"):
        return ("send the event within 72 hours, or leave timestamp_micros out (Google uses "
                "the arrival time); " + DROPPED)
    if code == "event-time-in-milliseconds":
        return "timestamp_micros is Unix time in microseconds: seconds x 1,000,000"
    if code == "event-time-in-future":
        return "timestamp_micros must record the past: drop it or use the order's time"
    if code == "tracked-before-consent":
        return ("set gtag('consent', 'default', {ad_storage: 'denied', ad_user_data: "
                "'denied', ad_personalization: 'denied', analytics_storage: 'denied'}) "
                "before gtag('config'), and gtag('consent', 'update', {...: 'granted'}) "
                "on accept")
    if code == "side-not-isolated":
        if event is not None and event.source == "server":
            return ("switch the Measurement Protocol calls off too: "
                    "pixelcheck_sink.refuse('ga4'), or the backend's own switch for its "
                    "POST /mp/collect calls")
        return ("switch gtag.js off too: pixelcheck.block_browser('ga4') drops its "
                "google-analytics.com/g/collect hits, or an ad blocker hides "
                "www.googletagmanager.com/gtag/js")
    if code == "blocked-not-covered":
        return ("send the purchase from the backend too: " + MP_PURCHASE + ". GA4 merges "
                "it with gtag's on transaction_id; no other event merges, so send only the "
                "purchase")
    if code == "server-event-without-consent":
        return ("for a visitor without consent send consent: {ad_user_data: 'DENIED', "
                "ad_personalization: 'DENIED'} in the Measurement Protocol body (consent "
                "mode), or send nothing")
    if code == "not-fired-after-consent":
        return (f"when the visitor accepts, call gtag('consent', 'update', {{...: "
                f"'granted'}}) and run the gtag('event', '{name}', ...) calls the page held, "
                "not only on the next page")
    if code == "route-without-pageview":
        return ("send gtag('event', 'page_view', {page_location: location.href}) on every "
                "route change of the single-page app (the router's after-navigation hook), "
                "once, or let enhanced measurement's browser-history page views do it, not "
                "both")
    if code == "click-id-lost":
        return ("keep the _ga and _ga_<id> cookies across every hop: send the shopper back "
                "to the host they came on, and send the same client_id (and "
                "params.session_id) in the Measurement Protocol call. GA4 credits the gclid "
                "of the landing page to that client and session; the Measurement Protocol "
                "has no gclid field, so a purchase under another client_id loses the ad click")
    if code == "counted-more-than-once":
        return (f"send every {name} of one order with the same transaction_id (gtag's and the "
                "Measurement Protocol's), or fire it once per order: GA4 counts each new "
                "transaction_id as another purchase")
    if code == "duplicate-browser-trigger":
        return (f"fire {name} once per order: GA4 merges repeated purchases only when they "
                "carry the same transaction_id from the same user, and counts every other "
                "event each time (guard the thank-you page with a stored flag)")
    if code == "duplicate-server-send":
        return ("send each purchase once; a retry must keep the same transaction_id and "
                "client_id so GA4 merges it")
    if code == "payload-mismatch":
        return ("build value, currency and items of the gtag.js purchase and the "
                "Measurement Protocol purchase from the same order record")
    if code == "undecodable-request":
        return DROPPED if event is not None and event.source == "server" else None
    return None
