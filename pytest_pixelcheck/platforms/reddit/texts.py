"""Reddit's words for the fixes: the ``rdt`` call and the Conversions API field to
change, for the core's finding codes (``Reddit.fix``) and for Reddit's own findings.

Every text names Reddit's things: ``rdt('track', ...)`` and ``m.conversionId`` in the
page, ``metadata.conversion_id`` / ``event_at`` / ``user`` in the API call (v3; the
older v2.0 calls them ``event_metadata.conversion_id`` and ``event_type``)."""

from __future__ import annotations

from typing import Any

PAGE_PURCHASE = ("rdt('track', 'Purchase', {conversionId: ID, currency: 'USD', value: 25.0, "
                 "itemCount: 1, products: [...]})")
API_PURCHASE = ("POST /api/v3/pixels/{pixel_id}/conversion_events with Authorization: Bearer "
                "<conversion access token> and {data: {events: [{event_at: <Unix ms>, "
                "action_source: 'WEBSITE', type: {tracking_type: 'PURCHASE'}, metadata: "
                "{conversion_id: ID, currency, value, item_count, products}, user: {...}}]}}")
SAME_ID = ("pass one id to both sides: rdt('track', NAME, {conversionId: ID}) in the page and "
           "metadata.conversion_id = ID in the Conversions API call (v2.0: "
           "event_metadata.conversion_id). The pixel sends the SHA-256 of ID; send ID as it is "
           "(or its SHA-256), never another value. Build ID once (from the order id) and hand "
           "it to the page")
HASH_ONCE = ("hash the conversion id at most once: give rdt('track', ...) the plain id (the "
             "pixel hashes it) and send metadata.conversion_id either plain or as that same "
             "SHA-256, never the hash of a hash")
EMAIL_RULE = ("email: lowercase, drop the +alias and every non-alphanumeric character of the "
              "username (Al.ice$+Apple@Example.Com -> alice@example.com), then SHA-256 hex; "
              "phone: E.164 with the '+' (+16505551234), then SHA-256 hex")


def _name(event: Any) -> str:
    return (event.event_name if event is not None and event.event_name else None) or "Purchase"


def _type(event: Any) -> str:
    """The v3 tracking_type of the event (``PURCHASE``), for the API half of a text."""
    from .platform import v3_type

    tracking = event.extra.get("tracking_type") if event is not None else None
    return v3_type(tracking or _name(event)) or "CUSTOM"


def fix_text(code: str, event: Any = None) -> str | None:
    """The fix for a finding ``code`` in Reddit's terms, or None for the core's text."""
    source = event.source if event is not None else None
    name = _name(event)
    if code in ("near-miss-event-id", "reused-event-id", "server-retry-new-id"):
        text = SAME_ID.replace("NAME", repr(name))
        if code == "server-retry-new-id":
            text = "keep the conversion id on every retry: " + text
        if code == "reused-event-id":
            text = ("derive the conversion id from something unique per conversion (the order "
                    "id), never a constant: Reddit keeps one of the events that share it. "
                    + text)
        return text
    if code == "missing-event-id":
        if source == "browser":
            return (f"pass conversionId: rdt('track', '{name}', {{conversionId: ID, ...}}), the "
                    "same ID the backend sends as metadata.conversion_id. Without it Reddit can "
                    "only fall back to session matching on the _rdt_uuid, which misses "
                    "conversions a shopper repeats within minutes")
        return ("send metadata.conversion_id (v2.0: event_metadata.conversion_id) in the "
                "Conversions API event, the same id the page gives rdt('track', ..., "
                "{conversionId: ID}). Without it Reddit can only fall back to session matching "
                "on user.uuid / external_id")
    if code == "event-name-mismatch":
        return ("use one event type on both sides: rdt('track', 'Purchase', ...) pairs with "
                "type.tracking_type 'PURCHASE' (v2.0: 'Purchase'); a custom event pairs only "
                "with tracking_type 'CUSTOM' and the same custom_event_name (case-sensitive). "
                "Reddit deduplicates only events of the same type")
    if code == "wrong-pixel":
        pixel = event.pixel_id if event is not None and event.pixel_id else "PIXEL_ID"
        return (f"post the Conversions API call to /api/v3/pixels/{pixel}/conversion_events, "
                "the pixel id the page passes to rdt('init', ...); another pixel's events are "
                "never deduplicated with these")
    if code == "server-event-missing":
        return (f"send {name} from the backend too ({API_PURCHASE}), with the conversion id "
                "the page gives the pixel, or stop expecting it")
    if code == "browser-event-missing":
        return (f"fire rdt('track', '{name}', {{conversionId: ID, ...}}) on the page after "
                "rdt('init', PIXEL_ID), with the ID the backend sends as "
                "metadata.conversion_id")
    if code == "server-event-undecodable":
        return ("fix the Conversions API body (see why:): Reddit answers 400 \"There were N "
                "invalid conversion events. None were processed.\" and counts none of them")
    if code in ("raw-pii-in-user-data", "unnormalized-hash", "cross-channel-hash-mismatch",
                "double-hashed", "hash-of-empty-value"):
        lead = {
            "raw-pii-in-user-data": ("Reddit accepts a raw email or phone, but the data then "
                                     "travels in the clear; send the SHA-256 of the "
                                     "canonical value in user.email / user.phone_number "
                                     "(and em / pn from the pixel)"),
            "unnormalized-hash": "canonicalize the value the way Reddit documents it before "
                                 "hashing",
            "cross-channel-hash-mismatch": ("hash the customer once with Reddit's rules and "
                                            "send that digest from the pixel (rdt('init', "
                                            "PIXEL_ID, {email, phoneNumber, externalId})) and "
                                            "from the server (user.email, user.phone_number, "
                                            "user.external_id)"),
            "double-hashed": "hash the canonical value once",
            "hash-of-empty-value": "leave a match key out when the customer gave none",
        }[code]
        return f"{lead}: {EMAIL_RULE}"
    if code == "test-event-code":
        return ("remove test_id (data.test_id in v3; test_mode / test_id in v2.0) outside a "
                "test session: Reddit shows those events in Event Testing only, they never "
                "count")
    if code == "server-call-rejected":
        return ("read Reddit's answer: 400 lists each invalid event in invalid_events "
                "(error_message, event_index) and processes none of the call; 401 "
                "UNAUTHORIZED means the Authorization: Bearer conversion access token is "
                "missing or wrong. Fix the request, then log and act on every non-2xx answer")
    if code in ("transient-error-not-retried", "server-gave-up"):
        return ("retry 429 and 5xx answers from the Conversions API with backoff, keeping the "
                "same metadata.conversion_id so Reddit merges the retry with the pixel's copy")
    if code == "event-time-too-old":
        return ("set event_at to when the conversion happened, in Unix milliseconds (v3; an "
                "RFC 3339 string in v2.0): Reddit refuses events older than 168 hours, and an "
                "event_at in seconds reads as January 1970")
    if code == "event-time-in-future":
        return ("Reddit refuses an event_at more than 5 minutes in the future: use the "
                "server's UTC clock, in Unix milliseconds")
    if code == "event-time-in-milliseconds":
        return ("event_at is Unix time in milliseconds (v3): seconds x 1000, e.g. "
                "int(time.time() * 1000); not microseconds")
    if code == "counted-more-than-once":
        return (f"fire rdt('track', '{name}', {{conversionId: ID}}) once per order, or with "
                "the same conversionId on every view (the Conversions API's "
                "metadata.conversion_id): Reddit counts each new id as another conversion")
    if code == "duplicate-browser-trigger":
        return (f"fire rdt('track', '{name}', ...) once per conversion (guard the thank-you "
                "page against reloads); Reddit drops repeats only when they carry the same "
                "conversionId")
    if code == "duplicate-server-send":
        return "send each conversion once; a retry must keep the same metadata.conversion_id"
    if code == "payload-mismatch":
        return ("build value, currency, itemCount and products of rdt('track', ...) and "
                "metadata of the Conversions API event from the same order record")
    if code == "side-not-isolated":
        if source == "server":
            return ("switch the Reddit Conversions API calls off too: "
                    "pixelcheck_sink.refuse('reddit'), or the backend's own switch for its "
                    "/api/v3/pixels/{pixel_id}/conversion_events calls")
        return ("switch the Reddit Pixel off too: pixelcheck.block_browser('reddit') drops its "
                "alb.reddit.com/rp.gif hits, or an ad blocker hides "
                "www.redditstatic.com/ads/pixel.js")
    if code == "blocked-not-covered":
        api = API_PURCHASE.replace("'PURCHASE'", repr(_type(event)))
        return (f"send {name} from the backend too ({api}) with "
                "metadata.conversion_id equal to the pixel's conversionId: visitors whose "
                "blocker hides the Reddit Pixel are then still counted")
    if code == "tracked-before-consent":
        return ("hold the Reddit Pixel until the visitor accepts: let the consent banner load "
                "https://www.redditstatic.com/ads/pixel.js and run rdt('init', ...) and "
                "rdt('track', ...) only on accept")
    if code == "server-event-without-consent":
        return ("for a visitor without consent send user.data_processing_options: {modes: "
                "['LDU'], country, region} (Limited Data Use) with the Conversions API event, "
                "or send nothing")
    if code == "not-fired-after-consent":
        return (f"when the visitor accepts, run the rdt('track', '{name}', ...) calls the "
                "page held (the banner's accept callback must load pixel.js and fire them), "
                "not only on the next page")
    if code == "click-id-lost":
        return ("keep the rdt_cid click id and the _rdt_uuid cookie across every hop: send "
                "the shopper back to the host they came on, and read both from that request "
                "(or the order) into click_id and user.uuid of the Conversions API event, "
                "unhashed")
    if code == "route-without-pageview":
        return ("call rdt('track', 'PageVisit') on every route change of the single-page app "
                "(the router's after-navigation hook), once")
    return None
