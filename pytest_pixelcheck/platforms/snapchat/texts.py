"""Snap's words for the fixes: the ``snaptr`` call and the Snap Conversions API field to
change, for the core's finding codes (``Snapchat.fix``) and for Snap's own findings."""

from __future__ import annotations

from ...events import Event

#: the page's call with the dedup id, as Snap's base code writes it
PAGE_TRACK = ("snaptr('track', 'NAME', {price: 25.0, currency: 'USD', transaction_id: "
              "ORDER_ID, client_dedup_id: ID})")
API_CALL = ("POST https://tr.snapchat.com/v3/PIXEL_ID/events?access_token=TOKEN with "
            "{data: [{event_name: 'NAME', event_time: <Unix seconds>, event_id: ID, "
            "action_source: 'WEB', event_source_url, user_data: {...}, custom_data: {...}}]}")
SAME_ID = ("use one id on both sides, byte for byte: client_dedup_id in "
           f"{PAGE_TRACK} and data[].event_id of the Snap Conversions API call; build it "
           "once (e.g. from the order id) and hand it to the page")
AUTO_ID = ("pass your own id: the Snap Pixel fills cdid with a random '@-<uuid>' when "
           "snaptr('track', ...) gets no client_dedup_id, and that id can never equal the "
           "event_id your backend sends. Use " + PAGE_TRACK + " with the ID the server "
           "sends as data[].event_id (for PURCHASE, Snap also matches event_id against "
           "the pixel's transaction_id)")
HASHING = ("send em and ph in user_data as arrays of SHA-256 hex of the normalized value: "
           "email trimmed and lowercased; phone as digits only with the country code, no "
           "'+' and no leading 0 (e.g. 16505551212). Snap answers 400 INVALID 'Unhashed "
           "PII' to clear values. In the page pass raw values to snaptr('init', PIXEL_ID, "
           "{user_email, user_phone_number}): the Snap Pixel hashes them")
COOKIE1 = ("read the _scid cookie from the visitor's own request and send it unchanged as "
           "user_data.sc_cookie1 (uuid_c1 in the v2 API): never hash it, never generate one "
           "on the server, never take another visitor's")
CLICK_ID = ("keep the ScCid landing-page parameter (the Snap Pixel keeps it in the _scclid "
            "cookie) and send it unchanged as user_data.sc_click_id on every later event of "
            "the visit")
REJECTED = ("read the answer: Snap answers 400 {status: 'INVALID', reason, errors: {codes, "
            "error_msgs}} for a bad event (missing field, 'Unhashed PII', 'Timestamp invalid "
            "or out of range', 'Insufficient PII') and 401 for a bad access_token; a client "
            "must check the status, and /events/validate shows the same errors without "
            "recording anything")


def _name(event: Event | None, default: str = "PURCHASE") -> str:
    return event.event_name if event is not None and event.event_name else default


def _pixel(event: Event | None) -> str:
    return event.pixel_id if event is not None and event.pixel_id else "PIXEL_ID"


def fix_text(code: str, event: Event | None = None) -> str | None:
    """The fix for a finding ``code`` in Snap's terms, or None for the core's text."""
    name = _name(event)
    track = PAGE_TRACK.replace("NAME", name)
    if code == "missing-event-id":
        if event is not None and event.source == "browser":
            if event.extra.get("auto_dedup_id"):
                return AUTO_ID.replace("NAME", name)
            return (f"pass client_dedup_id in {track}, the same ID the server sends as "
                    "data[].event_id; without it the Snap Pixel makes up a random cdid "
                    "that nothing matches")
        return ("send data[].event_id in the Snap Conversions API call, the same value as "
                f"the page's client_dedup_id ({track}); a v2 call carries it as "
                "client_dedup_id")
    if code in ("near-miss-event-id", "reused-event-id", "server-retry-new-id"):
        return SAME_ID.replace("NAME", name)
    if code == "event-name-mismatch":
        return ("use one Snap event name on both sides: snaptr('track', 'NAME', ...) and "
                "data[].event_name (Snap's standard names: PAGE_VIEW, VIEW_CONTENT, "
                "ADD_CART, START_CHECKOUT, PURCHASE, SIGN_UP); Snap compares them without "
                "regard to letter case, but not across different names")
    if code == "wrong-pixel":
        return (f"post the Snap Conversions API call to /v3/{_pixel(event)}/events, the "
                "pixel id the page passes to snaptr('init', ...)")
    if code == "server-event-missing":
        return (f"send {name} from the backend too: {API_CALL.replace('NAME', name)}, "
                "with the page's client_dedup_id as event_id")
    if code == "browser-event-missing":
        return (f"fire {track} on the page, after snaptr('init', '{_pixel(event)}'), with "
                "the ID the backend sends as data[].event_id")
    if code in ("raw-pii-in-user-data", "unnormalized-hash", "cross-channel-hash-mismatch"):
        return HASHING
    if code == "test-event-code":
        return ("remove test_event_code (top level, or inside each event) outside a test "
                "session, and post to /v3/PIXEL_ID/events, not /events/validate: Snap "
                "shows those events in its test tools only, they never count")
    if code == "server-call-rejected":
        return REJECTED
    if code == "event-time-too-old":
        return ("send events as they happen: Snap refuses an event_time more than 37 days "
                "old ('Timestamp invalid or out of range'); event_time is Unix seconds")
    if code == "event-time-in-milliseconds":
        return ("send data[].event_time in Unix seconds: int(time.time()) in Python, "
                "Math.floor(Date.now() / 1000) in JavaScript")
    if code == "counted-more-than-once":
        return (f"fire snaptr('track', '{name}', {{client_dedup_id: ID, transaction_id: ...}}) "
                "once per order, or with the same client_dedup_id on every view (the Conversions "
                "API's event_id): Snap counts each new id as another conversion")
    if code == "duplicate-browser-trigger":
        return (f"fire {name} once per conversion: look for a second snaptr('track', "
                f"'{name}', ...) (a tag manager trigger bound twice, or a thank-you page "
                "that fires again on reload)")
    if code == "duplicate-server-send":
        return ("send each event once; a retry after a failed answer must keep the same "
                "event_id so Snap drops the copy")
    if code == "payload-mismatch":
        return ("build price/currency/item_ids of the snaptr call and value/currency/"
                "content_ids of custom_data from the same order record")
    if code == "undecodable-request":
        if event is not None and event.source == "server":
            return ("send a JSON body {data: [...]} to /v3/PIXEL_ID/events with the "
                    "access_token query parameter; " + REJECTED)
        return None
    if code == "side-not-isolated":
        if event is not None and event.source == "server":
            return ("switch the Snap Conversions API calls off too: "
                    "pixelcheck_sink.refuse('snapchat'), or the backend's own switch for its "
                    "POST /v3/PIXEL_ID/events calls")
        return ("switch the Snap Pixel off too: pixelcheck.block_browser('snapchat') drops its "
                "tr.snapchat.com hits, or an ad blocker hides sc-static.net/scevent.min.js")
    if code == "blocked-not-covered":
        return (f"send {name} from the backend too, to the Snap Conversions API "
                f"({API_CALL.replace('NAME', name)}) with event_id equal to the pixel's "
                "client_dedup_id: visitors whose blocker hides the Snap Pixel are then still "
                "counted")
    if code == "tracked-before-consent":
        return ("hold the Snap Pixel until the visitor accepts: let the consent banner load "
                "https://sc-static.net/scevent.min.js and run snaptr('init', ...) and "
                "snaptr('track', ...) only on accept")
    if code == "server-event-without-consent":
        return ("for a visitor without consent send no Snap Conversions API event "
                "(pixelcheck knows no Snap limited-use value of data_processing_options to "
                "accept in its place)")
    if code == "not-fired-after-consent":
        return (f"when the visitor accepts, run the snaptr('track', '{name}', ...) calls the "
                "page held (the banner's accept callback must load scevent.min.js and fire "
                "them), not only on the next page")
    if code == "click-id-lost":
        return ("keep the ScCid click id and the _scid cookie across every hop: send the "
                "shopper back to the host they came on, and read both from that request (or "
                "the order) into user_data.sc_click_id and user_data.sc_cookie1 of the Snap "
                "Conversions API call")
    if code == "route-without-pageview":
        return ("call snaptr('track', 'PAGE_VIEW') on every route change of the single-page "
                "app (the router's after-navigation hook), once, with its own "
                "client_dedup_id")
    return None
