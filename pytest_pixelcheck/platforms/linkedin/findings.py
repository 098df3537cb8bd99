"""LinkedIn's own findings: what the core's checks cannot see because it takes
LinkedIn's rules to see it.

* ``linkedin-rule-source-mismatch``: LinkedIn wants one conversion rule per source; an
  Insight Tag rule that receives Conversions API events (or the reverse) mixes the
  two counts and breaks the report LinkedIn's deduplication relies on.
* ``linkedin-other-account``: LinkedIn merges the two copies only within one ad
  account; pixelcheck pairs on eventId alone (the API call names no account), so a
  Conversions API rule declared under another partner id than the page's tag is said
  here.
* ``linkedin-hashed-user-info``: names go to ``user.userInfo`` in the clear.
* the click id codes of ``identity.py`` (``li_fat_id`` on both copies).

The codes register on import. The platform imports this module lazily:
``pytest_pixelcheck.findings`` imports the platform registry and cannot be imported
while the registry loads.
"""

from __future__ import annotations

from typing import Any

from ...events import Event
from ...findings import Finding, Severity, register_codes
from . import pii_rules
from .identity import browser_click_ids, identity_problems, server_click_id
from .platform import FINDING_CODES, LINKEDIN, NAME

CODES: dict[str, tuple[Severity, str]] = dict(FINDING_CODES)
register_codes(CODES)


def linkedin_findings(result: Any) -> list[Finding]:
    """Findings over one test's ``MatchResult`` (LinkedIn's events only)."""
    events = [e for e in result.events if e.platform == NAME and e.decoded]
    out: list[Finding] = []
    out += _click_ids(result, events)
    out += _rule_sources(events)
    out += _other_accounts(result)
    out += _hashed_names(events)
    return out


def identity_findings_of(pair: Any, browser_id: str) -> list[Finding]:
    """The li_fat_id problems of one pair whose tag hit carried ``browser_id``."""
    browser, server = pair.browser, pair.server
    return [Finding(code, message, fix, [browser, server], [], NAME, browser.event_name)
            for code, message, fix in identity_problems(browser_id, server_click_id(server),
                                                        browser.event_name or "conversion")]


def _click_ids(result: Any, events: list[Event]) -> list[Finding]:
    """Pairs whose tag hit carries no li_fat_id (the Insight Tag sends it in its /wa/
    signals): judged against the click id the browser showed in this test. Several
    different ids in one test (two visitors) are too ambiguous to judge."""
    known = browser_click_ids(events)
    if len(known) != 1:
        return []
    out: list[Finding] = []
    for pair in result.pairs:
        if pair.browser.platform != NAME or pair.browser.extra.get("li_fat_id"):
            continue
        out += identity_findings_of(pair, known[0])
    return out


def _rule_sources(events: list[Event]) -> list[Finding]:
    wrong: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        rule = LINKEDIN.rules.get(event.extra.get("conversion_rule"))
        expected = "tag" if event.source == "browser" else "api"
        if rule is not None and rule.source is not None and rule.source != expected:
            wrong.setdefault((rule.rule_id, rule.source), []).append(event)
    out = []
    for (rule_id, declared), group in wrong.items():
        declared_for = "Insight Tag" if declared == "tag" else "Conversions API"
        sender = ("the Conversions API" if group[0].source == "server" else "the Insight Tag")
        own = "an Insight Tag rule" if declared == "tag" else "a Conversions API rule"
        out.append(Finding(
            "linkedin-rule-source-mismatch",
            f"{sender} sent {len(group)} conversion(s) ({group[0].event_name}) to rule "
            f"{rule_id}, which is declared as {own}: LinkedIn wants a separate conversion "
            "rule for each source, and reports both rules with the Conversions API count "
            "reduced by the duplicates",
            "create a Conversions API rule (conversionMethod CONVERSIONS_API) for the "
            "backend's calls and keep the Insight Tag rule for window.lintrk('track', "
            "{conversion_id, event_id}); send the same eventId to both",
            group, [f"rule {rule_id}: declared for the {declared_for}"],
            NAME, group[0].event_name,
        ))
    return out


def _other_accounts(result: Any) -> list[Finding]:
    out = []
    for pair in result.pairs:
        browser, server = pair.browser, pair.server
        if browser.platform != NAME or not browser.pixel_id or not server.pixel_id or \
                browser.pixel_id == server.pixel_id:
            continue
        out.append(Finding(
            "linkedin-other-account",
            f"{browser.event_name} eventId={browser.event_id!r}: the Insight Tag fired for "
            f"partner {browser.pixel_id} but the Conversions API rule "
            f"{server.extra.get('conversion_rule')} belongs to partner {server.pixel_id}: "
            "LinkedIn deduplicates only within one ad account, so it counts this conversion "
            "twice",
            f"send the conversionEvents call to a rule of the ad account whose Insight Tag "
            f"partner id the page loads ({browser.pixel_id})",
            [browser, server], [f"tag partner id: {browser.pixel_id}",
                                f"API rule's partner id: {server.pixel_id}"],
            NAME, browser.event_name,
        ))
    return out


def _hashed_names(events: list[Event]) -> list[Finding]:
    out = []
    for event in events:
        info = event.user_data.get("userInfo") if event.source == "server" else None
        if not isinstance(info, dict):
            continue
        hashed = [field for field in ("firstName", "lastName", "companyName", "title")
                  if pii_rules.is_hashed(info.get(field))]
        if not hashed:
            continue
        out.append(Finding(
            "linkedin-hashed-user-info",
            f"server {event.event_name} sends user.userInfo {', '.join(hashed)} as SHA-256 "
            "digests: LinkedIn matches userInfo in clear text, so these names match nobody",
            "send firstName, lastName, title and companyName as typed (only the email is "
            "hashed, in userIds as SHA256_EMAIL)",
            [event], [], NAME, event.event_name,
        ))
    return out
