"""LinkedIn's words for the fixes: the Insight Tag's ``lintrk`` call and the
Conversions API's fields, for the core's finding codes (``LinkedIn.fix``)."""

from __future__ import annotations

from typing import Any

from ...events import Event
from .. import answer_json
from .rules import UNDECLARED

TAG_CALL = "window.lintrk('track', {conversion_id: RULE, event_id: ID})"
API_CALL = ("POST https://api.linkedin.com/rest/conversionEvents (headers Authorization: "
            "Bearer, LinkedIn-Version: YYYYMM, X-Restli-Protocol-Version: 2.0.0) with "
            "{conversion: 'urn:lla:llaPartnerConversion:RULE', conversionHappenedAt: <epoch "
            "ms>, eventId: ID, user: {userIds: [...]}}")
SAME_ID = ("use one id on both sides, byte for byte: event_id of " + TAG_CALL + " and eventId "
           "of the conversionEvents call; LinkedIn keeps the Insight Tag copy and discards "
           "the Conversions API copy only when eventId is equal within one ad account")
ANSWERS = ("401: the Bearer token (an rw_conversions token of the ad account); 400: the "
           "LinkedIn-Version or X-Restli-Protocol-Version: 2.0.0 header, or a "
           "conversionHappenedAt over 90 days old; 422: a missing or mistyped field "
           "(user.userIds is required even with userInfo, conversionValue.amount is a "
           "string, SHA256_EMAIL a SHA-256 hex digest); 426: a LinkedIn-Version that is "
           "sunset")
DECLARE = ("pixelcheck names LinkedIn conversions by their rules: declare both rules "
           "(LINKEDIN.rules.declared([...]) or PIXELCHECK_LINKEDIN_RULES="
           "'TAG_RULE=NAME:tag,API_RULE=NAME:api')")


def _status(event: Event | None) -> int | None:
    return event.raw.response_status if event is not None and event.raw is not None else None


def _answer(event: Event | None) -> dict[str, Any]:
    """The platform's answer body to this event's call ({} when there is none)."""
    return answer_json(event) or {}


def _rejected_fix(event: Event | None) -> str:
    """The fix for a refused call, from LinkedIn's own answer to it where we have it."""
    status = _status(event) if event is not None and event.source == "server" else None
    body = _answer(event) if status is not None else {}
    message, code = str(body.get("message") or ""), str(body.get("code") or "")
    if status == 401:
        return ("send a valid token in 'Authorization: Bearer <token>': a member token with "
                "the rw_conversions scope and a role on the ad account; refresh it before it "
                "expires (60 days) and log every 401")
    if status == 426 or code in ("VERSION_MISSING", "INVALID_VERSION") or \
            "X-Restli-Protocol-Version" in message:
        return ("send 'LinkedIn-Version: YYYYMM' with an active version (each one lives about "
                "a year) and 'X-Restli-Protocol-Version: 2.0.0'; keep the version in "
                "configuration so a sunset is one edit")
    if status == 422 and "SHA256" in message:
        return ("send the email as {idType: 'SHA256_EMAIL', idValue: "
                "sha256(email.strip().lower()).hexdigest()}, never the address itself")
    if status == 422 and "/userIds ::" in message:
        return ("always send user.userIds, an empty list [] at the least: LinkedIn wants it "
                "even when it matches on userInfo")
    if status == 422 and "amount" in message:
        return "send conversionValue.amount as a decimal string ('25.0'), not a number"
    if status == 400 and "conversionHappenedAt" in message:
        return ("send conversionHappenedAt in epoch milliseconds (int(time.time() * 1000), "
                "Date.now()) and within 90 days of the conversion")
    if status == 404:
        return ("post to the versioned API, https://api.linkedin.com/rest/conversionEvents, "
                "with LinkedIn-Version (linkedin-api-client: pass version_string=)")
    return "read LinkedIn's answer and fix the call: " + ANSWERS


def fix_text(code: str, event: Event | None = None) -> str | None:
    """The fix for a finding ``code`` in LinkedIn's terms, or None for the core's text."""
    name = event.event_name if event is not None and event.event_name else "the conversion"
    source = event.source if event is not None else None
    # an undeclared rule's name is the rule of one side only: say "the conversion", and
    # say how declaring the rules lets pixelcheck show a near miss instead
    undeclared = name.startswith(UNDECLARED + " ")
    if undeclared:
        name = "the conversion"
    hint = "; " + DECLARE + " to see near-miss ids" if undeclared else ""
    if code in ("near-miss-event-id", "reused-event-id"):
        return SAME_ID + ("; ids must also be unique per conversion within the account, since "
                          "LinkedIn compares eventId alone, across all rules"
                          if code == "reused-event-id" else "")
    if code == "missing-event-id":
        if source == "server":
            return ("set eventId in the conversionEvents body to the id the page passes as "
                    "event_id: " + API_CALL)
        return ("pass event_id in the tag call, " + TAG_CALL + ", the same id the backend "
                "sends as eventId; the Insight Tag puts it on the wire as eventId")
    if code == "event-name-mismatch":
        return ("LinkedIn compares no names: each source has its own conversion rule by "
                "design, and eventId decides; " + DECLARE + " so both copies share one name")
    if code == "wrong-pixel":
        partner = event.pixel_id if event is not None and event.pixel_id else "PARTNER"
        return (f"send the conversionEvents call to a Conversions API rule of the ad account "
                f"whose Insight Tag partner id the page uses ({partner}): LinkedIn "
                "deduplicates only within one ad account")
    if code == "server-event-missing":
        return (f"send {name} from the backend too, with the eventId the page used: "
                + API_CALL + hint)
    if code == "browser-event-missing":
        return (f"fire {name} on the page with the eventId the backend sends: " + TAG_CALL
                + ", RULE being the Insight Tag's own conversion rule" + hint)
    if code == "raw-pii-in-user-data":
        return ("send the email as {idType: 'SHA256_EMAIL', idValue: "
                "sha256(email.strip().lower()).hexdigest()} in user.userIds; LinkedIn answers "
                "422 to a clear address. In the browser pass the raw email to "
                "window.lintrk('setUserData', {email}): the Insight Tag hashes it")
    if code == "unnormalized-hash":
        return ("hash the email trimmed and lower-cased: SHA256_EMAIL is "
                "sha256(email.strip().lower()) as hex, the digest "
                "window.lintrk('setUserData', {email}) computes in the page")
    if code == "cross-channel-hash-mismatch":
        return "hash one normalized email (trimmed, lower-cased) and send it from both sides"
    if code in ("server-call-rejected", "server-event-undecodable"):
        return _rejected_fix(event)
    if code in ("transient-error-not-retried", "server-gave-up"):
        return ("retry 5xx and 429 answers with backoff (LinkedIn allows 600 calls a "
                "minute; send up to 5,000 events per BATCH_CREATE), keeping each eventId")
    if code == "event-time-too-old":
        raw = event.event_time_raw if event is not None else None
        seconds = isinstance(raw, (int, float)) and not isinstance(raw, bool) and 0 < raw < 1e11
        hint = (f": {raw} has 10 digits, Unix seconds, which LinkedIn reads as milliseconds "
                "in 1970; multiply by 1000" if seconds else "")
        return ("send conversionHappenedAt in epoch milliseconds, within 90 days of the "
                "conversion; LinkedIn rejects older events" + hint)
    if code == "event-time-in-milliseconds":
        return ("conversionHappenedAt is epoch milliseconds, 13 digits: int(time.time() * "
                "1000) in Python, Date.now() in JavaScript")
    if code == "event-time-in-future":
        return "set conversionHappenedAt to when the conversion happened, epoch ms in UTC"
    if code == "counted-more-than-once":
        return (f"call {TAG_CALL} once per order, or with the same event_id on every view "
                "(the Conversions API's eventId): LinkedIn counts each new id as another "
                "conversion")
    if code == "duplicate-browser-trigger":
        return (f"call {TAG_CALL} once per conversion (a rule bound twice in the tag manager "
                "or a thank-you page that fires again on reload counts it twice)")
    if code == "duplicate-server-send":
        return ("send each conversion once; LinkedIn drops a second copy with the same "
                "eventId, but each is a wasted call against the 600-a-minute limit")
    if code == "server-retry-new-id":
        return "generate eventId once per conversion and reuse it on every retry"
    if code == "payload-mismatch":
        return ("build conversionValue {currencyCode, amount} from the same order record "
                "the page uses")
    if code == "test-event-code":
        return None  # LinkedIn's Conversions API has no test mode to leave on
    if code == "undecodable-request":
        if source == "server":
            return ("send one conversion event as JSON (or {elements: [...]} with "
                    "X-RestLi-Method: BATCH_CREATE): " + API_CALL)
        return "check the page's lintrk calls: " + TAG_CALL
    if code == "side-not-isolated":
        if source == "server":
            return ("switch the LinkedIn Conversions API calls off too: "
                    "pixelcheck_sink.refuse('linkedin'), or the backend's own switch for its "
                    "conversionEvents calls")
        return ("switch the Insight Tag off too: pixelcheck.block_browser('linkedin') drops "
                "its px.ads.linkedin.com hits, or an ad blocker hides "
                "snap.licdn.com/li.lms-analytics/insight.min.js")
    if code == "blocked-not-covered":
        return (f"send {name} from the backend too ({API_CALL}) with eventId equal to the "
                f"event_id of {TAG_CALL}: visitors whose blocker hides the Insight Tag are "
                "then still counted")
    if code == "tracked-before-consent":
        return ("hold the Insight Tag until the visitor accepts: let the consent banner set "
                "_linkedin_data_partner_id, load insight.min.js and run window.lintrk calls "
                "only on accept")
    if code == "server-event-without-consent":
        return ("for a visitor without consent send no conversionEvents call (pixelcheck "
                "knows no LinkedIn limited-use field to accept in its place)")
    if code == "not-fired-after-consent":
        return (f"when the visitor accepts, run the {TAG_CALL} calls the page held (the "
                "banner's accept callback must load insight.min.js and fire them), not only "
                "on the next page")
    if code == "click-id-lost":
        return ("keep the li_fat_id click id (its first-party cookie) across every hop: send "
                "the shopper back to the host they came on, and read it from that request "
                "(or the order) into user.userIds as {idType: "
                "'LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID', idValue: <li_fat_id>}, unhashed")
    if code == "route-without-pageview":
        return ("make each route change of the single-page app produce the Insight Tag's "
                "page visit, once: where the tag does not see the router's navigation, "
                f"track it with {TAG_CALL} for a page-view conversion rule")
    return None
