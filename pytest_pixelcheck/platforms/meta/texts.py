"""Meta's fixes in Meta's own words: the Pixel's ``fbq`` calls and the Conversions
API's fields. The core's neutral texts stand where Meta has nothing better."""

from __future__ import annotations

from ...events import Event

FIXES: dict[str, str] = {
    "near-miss-event-id": "pass one id to both sides: fbq('track', NAME, {...}, {eventID: ID}) "
                          "in the page and event_id=ID in the Conversions API call, byte "
                          "for byte",
    "wrong-pixel": "send the Conversions API call to the pixel the page initialises "
                   "(POST /{version}/PIXEL/events)",
    "duplicate-browser-trigger": "make the tag fire once: look for a trigger bound twice in "
                                 "the tag manager, a second fbq('track') call, or a page "
                                 "that re-fires on reload",
    "server-event-late": "send the Conversions API call when the conversion happens, not "
                         "from a delayed batch; set pixelcheck_late_after to tune the "
                         "threshold",
    "event-time-in-milliseconds": "send event_time as Unix seconds: int(time.time()), not "
                                  "Date.now()",
    "event-time-too-old": "set event_time to when the conversion happened, in Unix seconds; "
                          "Meta rejects the whole request when one event is over 7 days old",
    "counted-more-than-once": "fire fbq('track', NAME, {...}, {eventID: ID}) once per order, "
                              "or with the same eventID on every view (the order's, as the "
                              "Conversions API's event_id): Meta merges copies of one eventID "
                              "and counts each new eventID as another conversion",
    "route-without-pageview": "call fbq('track', 'PageView') on every route change of the "
                              "single-page app (the router's after-navigation hook), once, "
                              "with its own eventID",
    "tracked-before-consent": "hold the Pixel until the visitor accepts: fbq('consent', "
                              "'revoke') before fbq('init'), fbq('consent', 'grant') on "
                              "accept, or let the consent banner load the base code",
    "blocked-not-covered": "send NAME from the backend too, to the Conversions API "
                           "(POST /{version}/PIXEL/events) with event_id equal to the "
                           "pixel's eventID: visitors whose blocker hides the Pixel are "
                           "then still counted",
    "not-fired-after-consent": "when the visitor accepts, run the fbq calls the page held "
                               "(fbq('consent', 'grant') releases the Pixel's queue), not "
                               "only on the next page",
    "click-id-lost": "keep _fbc (fb.1.<time>.<fbclid>) and _fbp across every hop: send the "
                     "shopper back to the host they came on, and read both from that "
                     "request (or the order) into user_data.fbc and user_data.fbp of the "
                     "Conversions API call",
    "server-event-without-consent": "for a visitor without consent send "
                                    "data_processing_options: ['LDU'] with "
                                    "data_processing_options_country: 0 and "
                                    "data_processing_options_state: 0 (Meta geolocates) in "
                                    "the Conversions API event, or send nothing",
    "test-event-code": "take test_event_code out of the production configuration; set it "
                       "only in the Events Manager test setup",
}
MISSING_ID = {
    "server": "send event_id in the Conversions API call, the same value as the pixel's "
              "eventID",
    "browser": "pass {eventID: ID} as the 4th argument of fbq('track', ...), the same ID the "
               "server sends as event_id",
}


def fix_text(code: str, event: Event | None) -> str | None:
    if code == "missing-event-id" and event is not None:
        return MISSING_ID[event.source]
    if code == "side-not-isolated":
        if event is not None and event.source == "server":
            return ("switch the Conversions API calls off too: pixelcheck_sink.refuse('meta'), "
                    "or the backend's own switch for its POST /{version}/PIXEL/events calls")
        return ("switch the Meta Pixel off too: pixelcheck.block_browser('meta') drops its "
                "facebook.com/tr hits, or an ad blocker hides "
                "connect.facebook.net/en_US/fbevents.js")
    text = FIXES.get(code)
    if text is None or event is None:
        return text
    return (text.replace("NAME", repr(event.event_name))
            .replace("PIXEL", str(event.pixel_id)))
