"""Meta's PII and identity checks: one pass over a test's Meta events.

Hashed customer keys against Meta's normalization (``pii_rules``), raw values, PII
in URLs and custom data, identifiers Meta wants unhashed, and the identity parity of
each deduplicated conversion: fbp, fbc, user agent, source URL, client IP. Each
(event, key) gets a mark the match-key coverage reads (``coverage.py``).

Every value shown in a message goes through the core's ``mask`` first. The platform
imports this module lazily: the core's ``pii`` cannot be imported while the platform
registry loads.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ...events import Event
from ...findings import SEVERITY_RANK, Finding, Severity, register_codes
from ...matching import MatchResult, Pair
from ...pii import (
    _EMAIL,
    _HEX32,
    _HEX64_ANY_CASE,
    _PHONE,
    ABSENT,
    HASHED,
    HASHED_KEYS,
    KEY_WORD,
    OK,
    OTHER,
    SHA256_OF_EMPTY,
    TAGGED,
    WRONG,
    Customer,
    _looks_hashed,
    _mask_email,
    _mask_phone,
    _phone_digits_ok,
    _shorten,
    digest_core,
    mask,
    mask_text,
    sha256_hex,
)
from ...pii import CODES as PII_CODES
from ...redact import scrub
from .pii_rules import RULES, _phone_digits
from .platform import NAME

CODES: dict[str, tuple[Severity, str]] = {
    "hashed-when-must-not-be": ("error", "fbp, fbc, IP address or user agent sent hashed"),
    "fbp-mismatch": ("error", "the server's fbp is not the browser's _fbp cookie"),
    "fbp-missing": ("warning", "the server event carries no fbp although the browser has one"),
    "fbc-invalid": ("error", "fbc is missing, altered or differs between the sides"),
    "user-agent-mismatch": ("error", "the server's client_user_agent is not the browser's"),
    "source-url-mismatch": ("warning", "event_source_url is not the page the browser was on"),
    "client-ip-missing": ("warning", "a website server event carries no client_ip_address"),
}
register_codes(CODES)
#: every code Meta's checks report: the core's PII codes and Meta's own
REPORTED_CODES: dict[str, tuple[Severity, str]] = {**PII_CODES, **CODES}

#: identifiers Meta wants exactly as the browser has them, never hashed
NEVER_HASHED = ("fbp", "fbc", "client_ip_address", "client_user_agent", "subscription_id",
                "fb_login_id")
#: other documented user_data keys: not scanned for PII shapes
_OTHER_KNOWN_KEYS = frozenset({"lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id",
                               "ctwa_clid", "ig_account_id", "ig_sid", "f5first", "f5last",
                               "fi", "dobd", "dobm", "doby"})
_COOKIE_APPENDIX = re.compile(r"[A-Za-z0-9]{2}|[A-Za-z0-9]{8}")


def cookie_core(value: str) -> str:
    """An fbp/fbc value without the Parameter Builder's appendix:
    ``fb.1.<ms>.<id>.AQIAAQMC`` and ``fb.1.<ms>.<id>`` are the same cookie."""
    parts = value.strip().split(".")
    if len(parts) == 5 and parts[0] == "fb" and _COOKIE_APPENDIX.fullmatch(parts[4]):
        return ".".join(parts[:4])
    return value.strip()


@dataclass
class _Draft:
    code: str
    message: str  # "{names}" stands for the event names
    fix: str
    details: list[str]
    events: list[Event] = dataclasses.field(default_factory=list)
    names: list[str] = dataclasses.field(default_factory=list)


def _names_text(names: Sequence[str]) -> str:
    if len(names) > 4:
        return ", ".join(names[:3]) + f" and {len(names) - 3} more"
    return ", ".join(names)


def _values(container: Any) -> list[Any]:
    """Server user_data values are lists of hashes, browser ones strings."""
    return list(container) if isinstance(container, (list, tuple)) else [container]


def _join(base: str, path: str) -> str:
    return base + (path if not path or path.startswith("[") else "." + path)


def _walk(value: Any, path: str, depth: int = 0) -> Iterable[tuple[str, str]]:
    """(path, string) for every string in nested custom data; bounded."""
    if depth > 6:
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for index, (key, item) in enumerate(value.items()):
            if index >= 200:
                break
            yield from _walk(item, _join(path, str(key)) if path else str(key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value[:200]):
            yield from _walk(item, f"{path}[{index}]", depth + 1)


_PHONE_NAMES = re.compile(r"(?i)^(?:ph|phone|phone_?number|tel|telephone|mobile|cell|msisdn)$")


def _url_key(url: str) -> tuple[str, ...]:
    """What makes two page URLs the same page: scheme, host and path. Query strings
    differ harmlessly (a server rarely sees the browser's utm_ parameters)."""
    try:
        parts = urlsplit(url.strip())
        netloc = parts.netloc.lower()
        for scheme, port in (("http", ":80"), ("https", ":443")):
            if parts.scheme.lower() == scheme and netloc.endswith(port):
                netloc = netloc[: -len(port)]
        return (parts.scheme.lower(), netloc, parts.path.rstrip("/") or "/")
    except ValueError:
        return (url.strip(),)


def _query(url: str) -> dict[str, str]:
    try:
        return dict(parse_qsl(urlsplit(url).query))
    except ValueError:
        return {}


def _show_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        shown = parts.path + (f"?{parts.query}" if parts.query else "")
    except ValueError:
        shown = url
    return mask_text(unquote(shown or url), 50)


class Checker:
    """One pass over a test's events: findings, and a mark per (event, key)."""

    def __init__(self, result: MatchResult, customer: Customer | None, platform: str) -> None:
        self.result = result
        self.customer = customer if customer is not None and customer.keys else None
        self.platform = platform
        self.events = [e for e in result.events if e.decoded and e.platform == platform]
        self.pairs = [p for p in result.pairs if p.browser.platform == platform]
        self.drafts: dict[tuple[Any, ...], _Draft] = {}
        self.marks: dict[tuple[int, str], str] = {}
        self.order = sorted(self.events, key=lambda e: (e.arrival_time, e.seq))
        # one pass each, so large captures (pixelcheck analyze) stay linear
        self.twins: dict[int, Event] = {}
        for pair in self.pairs:
            self.twins[id(pair.browser)] = pair.server
            self.twins[id(pair.server)] = pair.browser
        self.landing_fbclid: dict[int, str | None] = {}
        self.first_page: dict[tuple[str, str], str | None] = {}
        latest: str | None = None
        for event in self.order:
            if event.source != "browser":
                continue
            fbclid = _query(event.page_url).get("fbclid") if event.page_url else None
            latest = fbclid or latest
            self.landing_fbclid[id(event)] = latest
            for name in ("fbp", "fbc"):
                value = self.browser_cookie(event, name)
                if value is not None:
                    self.first_page.setdefault((name, value), event.page_url)

    # --- bookkeeping ----------------------------------------------------------------

    def add(self, code: str, message: str, fix: str, events: Sequence[Event],
            details: Sequence[str] = (), names: Sequence[str] | None = None) -> None:
        key = (code, message, fix, tuple(details))
        draft = self.drafts.get(key)
        if draft is None:
            draft = self.drafts[key] = _Draft(code, message, fix, list(details))
        for event in events:
            if not any(event is e for e in draft.events):
                draft.events.append(event)
        for name in names if names is not None else [e.event_name or "?" for e in events[:1]]:
            if name not in draft.names:
                draft.names.append(name)

    def mark(self, event: Event, key: str, state: str) -> None:
        # a wrong mark sticks: one bad value spoils the key for that event
        current = self.marks.get((id(event), key))
        if current == WRONG:
            return
        self.marks[(id(event), key)] = state

    def findings(self) -> list[Finding]:
        out = []
        for draft in self.drafts.values():
            message = draft.message.replace("{names}", _names_text(draft.names))
            out.append(Finding(draft.code, message, draft.fix, draft.events, draft.details,
                               self.platform, draft.names[0] if draft.names else None))
        out.sort(key=lambda f: (-SEVERITY_RANK[f.severity],
                                min((e.seq for e in f.events), default=-1)))
        return out

    # --- run ------------------------------------------------------------------------

    def run(self) -> Checker:
        for event in self.events:
            self.user_data(event)
            self.never_hashed(event)
            self.in_clear(event)
            if event.source == "server":
                self.client_ip(event)
        for pair in self.pairs:
            self.cross_channel(pair)
            self.fbp(pair)
            self.fbc_pair(pair)
            self.user_agent(pair)
            self.source_url(pair)
        self.fbc_browser()
        return self

    # --- hashed customer keys -------------------------------------------------------

    @staticmethod
    def where(event: Event, key: str) -> str:
        return f"ud[{key}]" if event.source == "browser" else f"user_data.{key}"

    def user_data(self, event: Event) -> None:
        for key in HASHED_KEYS:
            if key not in event.user_data:
                continue
            sent = _values(event.user_data[key])
            if not sent:
                self.raw_value(event, key, [], "an empty list")
                continue
            for value in sent:
                self.one_value(event, key, value)

    def one_value(self, event: Event, key: str, value: Any) -> None:
        if not isinstance(value, str):
            self.raw_value(event, key, value, f"a {type(value).__name__}, not a hex string")
            return
        if not value.strip():
            self.raw_value(event, key, value, "an empty string")
            return
        core = digest_core(value.strip())
        if core is None:
            text = value.strip()
            if _HEX64_ANY_CASE.fullmatch(text):
                self.raw_value(event, key, value, "an upper-case hex digest; Meta expects "
                               "lower-case hex")
            elif _HEX32.fullmatch(text):
                self.raw_value(event, key, value, "32 hex digits (an MD5?), not SHA-256")
            elif key == "external_id" and not (_EMAIL.search(text) or self.phone_like(text)):
                # hashing external_id is only recommended: raw is fine if consistent
                customer = self.customer
                if customer is None or customer.raw(key) is None:
                    self.mark(event, key, HASHED)
                else:
                    ok = customer.accepts_raw(key, text, self.platform)
                    self.mark(event, key, OK if ok else OTHER)
            else:
                self.raw_value(event, key, value, self.describe_raw(key, text))
            return
        if core == SHA256_OF_EMPTY:
            self.mark(event, key, WRONG)
            self.add("hash-of-empty-value",
                     f"{event.source} {{names}} {self.where(event, key)} is the SHA-256 of an "
                     "empty string: the field was blank when it was hashed",
                     f"leave {key} out when the {KEY_WORD[key]} is unknown instead of hashing ''",
                     [event])
            return
        if self.customer is None or self.customer.raw(key) is None:
            self.mark(event, key, HASHED)
            return
        state, label = self.customer.verdict(key, core, self.platform)
        right = self.customer.normalized(key, self.platform) or ""
        if state == "ok":
            self.mark(event, key, OK)
        elif state == "double":
            self.mark(event, key, WRONG)
            self.add("double-hashed",
                     f"{event.source} {{names}} {self.where(event, key)} is hashed twice: the "
                     f"SHA-256 of the hex digest of the normalized {KEY_WORD[key]}",
                     "hash once: send sha256(normalized value) as lower-case hex; never hash a "
                     "value that is already 64 hex characters (Meta's SDK passes those "
                     "through, the pixel too)",
                     [event], [f"normalized {KEY_WORD[key]}: {_shown_normalized(key, right)}"])
        elif state == "unnormalized":
            self.mark(event, key, WRONG)
            self.add("unnormalized-hash",
                     f"{event.source} {{names}} {self.where(event, key)} is the SHA-256 of the "
                     f"{KEY_WORD[key]} before normalization: {label}",
                     f"normalize before hashing ({RULES[key]}), then hash; the same function "
                     "must feed the browser's advanced matching and the server",
                     [event], [f"expected the hash of {_shown_normalized(key, right)}"])
        else:
            self.mark(event, key, OTHER)

    def raw_value(self, event: Event, key: str, value: Any, what: str) -> None:
        self.mark(event, key, WRONG)
        shown = mask(value, key) if value != [] else "[]"
        hint = ""
        if (self.customer is not None and isinstance(value, str)
                and self.customer.normalized(key, self.platform) == value.strip()):
            hint = " (the customer's normalized value, never hashed)"
        fix = (f"send sha256 of the normalized {KEY_WORD[key]} ({RULES[key]}) as lower-case hex"
               + (", in a list" if event.source == "server" else "")
               + ("; the pixel hashes advanced-matching values itself, the Conversions API "
                  "does not" if event.source == "server" else
                  "; pass the raw value to fbq('init', ID, {...}) and let the pixel hash it"))
        self.add("raw-pii-in-user-data",
                 f"{event.source} {{names}} {self.where(event, key)} carries {shown}{hint}: "
                 f"{what}", fix, [event])

    def describe_raw(self, key: str, text: str) -> str:
        if _EMAIL.search(text):
            return "an email address in the clear, not a SHA-256 hex digest"
        if self.phone_like(text):
            return "a phone number in the clear, not a SHA-256 hex digest"
        return f"a {KEY_WORD[key]} in the clear, not a SHA-256 hex digest"

    @staticmethod
    def phone_like(text: str) -> bool:
        return any(_phone_digits_ok(m.group(0)) for m in _PHONE.finditer(text)) or bool(
            re.fullmatch(r"\+?[\d\s().-]{7,24}", text.strip())
            and _phone_digits_ok(text))

    # --- identifiers that must not be hashed ----------------------------------------

    def never_hashed(self, event: Event) -> None:
        if event.source == "server":
            items = [(k, v) for k in NEVER_HASHED if k in event.user_data
                     for v in _values(event.user_data[k])]
        else:
            items = [(k, event.extra.get(k)) for k in ("fbp", "fbc") if event.extra.get(k)]
        for key, value in items:
            if not isinstance(value, str) or not _looks_hashed(value):
                continue
            self.mark(event, key, WRONG)
            where = f"user_data.{key}" if event.source == "server" else f"the {key} parameter"
            details = []
            twin = self.twin(event)
            if twin is not None and key in ("fbp", "fbc"):
                theirs = self.browser_cookie(twin, key)
                if theirs and sha256_hex(theirs) == value.strip().lower():
                    details.append(f"it is the SHA-256 of the browser's _{key} cookie")
            self.add("hashed-when-must-not-be",
                     f"{event.source} {{names}} {where} is a hex digest ({mask(value)}): "
                     f"{key} must be sent as is, never hashed",
                     f"send {key} unhashed: "
                     + ("the _fbp cookie value exactly" if key == "fbp" else
                        "the _fbc cookie value exactly" if key == "fbc" else
                        "the visitor's IP address from the request" if key ==
                        "client_ip_address" else
                        "the User-Agent header of the visitor's request" if key ==
                        "client_user_agent" else "the plain value"),
                     [event], details)

    def twin(self, event: Event) -> Event | None:
        return self.twins.get(id(event))

    # --- PII in URLs and custom data ------------------------------------------------

    def in_clear(self, event: Event) -> None:
        places: list[tuple[str, str, str, str]] = []  # (where, text, name hint, kind)
        if event.source == "browser":
            for key, value in event.custom_data.items():
                for path, text in _walk(value, ""):
                    places.append((f"custom data {_join(f'cd[{key}]', path)}", text,
                                   str(key), "data"))
            if event.page_url:
                places.append(("page URL (dl)", event.page_url, "", "url"))
            referrer = event.extra.get("referrer")
            if isinstance(referrer, str) and referrer:
                places.append(("referrer (rl)", referrer, "", "url"))
            for key, value in event.user_data.items():
                if key not in HASHED_KEYS and isinstance(value, str):
                    places.append((f"ud[{key}]", value, key, "data"))
        else:
            for path, text in _walk(event.custom_data, ""):
                places.append((f"custom_data.{path}", text, path.rsplit(".", 1)[-1], "data"))
            if event.page_url:
                places.append(("event_source_url", event.page_url, "", "url"))
            for key, value in event.user_data.items():
                if key in HASHED_KEYS or key in NEVER_HASHED or key in _OTHER_KNOWN_KEYS:
                    continue
                for path, text in _walk(value, ""):
                    places.append((f"user_data.{_join(key, path)}", text, key, "data"))
        for where, text, hint, kind in places:
            found = self.pii_in(text, hint, url=kind == "url")
            if not found:
                continue
            what = " and ".join(dict.fromkeys(f"{label} ({shown})" for label, shown in found))
            if kind == "url":
                fix = ("keep PII out of URLs: redirect with the order id only and look the "
                       "customer up on the server; page URLs reach the pixel (dl, rl), the "
                       "Conversions API (event_source_url), logs and analytics")
            else:
                fix = ("remove it from this field; send customer data only as hashed keys in "
                       "user data (advanced matching on the pixel, user_data on the server)")
            shown_at = ""
            if kind == "url":
                # where exactly: the masked path and query, the host says little
                parts = urlsplit(text)
                shown_at = " at " + mask_text(scrub(parts.path + ("?" + parts.query
                                                                  if parts.query else "")), 70)
            self.add("pii-in-clear",
                     f"{event.source} {{names}} {where} carries {what}{shown_at}", fix, [event])

    def pii_in(self, text: str, hint: str, *, url: bool) -> list[tuple[str, str]]:
        """(what, masked) for each email or phone in ``text``."""
        found: list[tuple[str, str]] = []
        if url:
            try:
                query = parse_qsl(urlsplit(text).query, keep_blank_values=True)
            except ValueError:
                query = []
            texts = [(unquote(text), "")] + [(v, k) for k, v in query]
        else:
            texts = [(text, hint)]
        for candidate, name in texts:
            if "@" in candidate:
                for match in _EMAIL.finditer(candidate):
                    found.append(("an email address", _mask_email(match.group(0))))
            for match in _PHONE.finditer(candidate):
                if _phone_digits_ok(match.group(0)):
                    found.append(("a phone number", _mask_phone(match.group(0))))
            if name and _PHONE_NAMES.match(name.rsplit(".", 1)[-1]) and \
                    re.fullmatch(r"\+?[\d\s().-]{7,24}", candidate.strip()) and \
                    _phone_digits_ok(candidate):
                found.append(("a phone number", _mask_phone(candidate)))
        kinds = {label for label, _ in found}
        if self.customer is not None:
            # the declared customer's own values, where no shape gave them away
            lowered = unquote(text).lower() if url else text.lower()
            email = self.customer.normalized("em")
            if email and email in lowered and "an email address" not in kinds:
                found.append(("the customer's email", _mask_email(email)))
            phone = self.customer.normalized("ph")
            if phone and "a phone number" not in kinds:
                # the number with or without its country code, whatever the separators
                forms = {phone} | {phone[cut:] for cut in (1, 2, 3) if len(phone) - cut >= 7}
                runs = re.findall(r"\d[\d\s().-]{5,30}\d", lowered)
                if any(_phone_digits(run) in forms for run in runs):
                    found.append(("the customer's phone", _mask_phone("+" + phone)))
        unique: dict[str, tuple[str, str]] = {}
        for label, shown in found:
            unique.setdefault(shown, (label, shown))
        return list(unique.values())

    # --- server essentials ----------------------------------------------------------

    def client_ip(self, event: Event) -> None:
        if event.extra.get("action_source") != "website":
            return
        ip = event.user_data.get("client_ip_address")
        if isinstance(ip, str) and ip.strip():
            self.mark(event, "client_ip_address", OK)
            return
        self.add("client-ip-missing",
                 "server {names} (action_source website) carries no client_ip_address",
                 "send the visitor's IP address (from the request, or X-Forwarded-For behind a "
                 "proxy) as user_data.client_ip_address, unhashed",
                 [event])

    # --- browser vs server ----------------------------------------------------------

    def cross_channel(self, pair: Pair) -> None:
        differing: list[str] = []
        details: list[str] = []
        verdict_words: dict[str, tuple[str, str]] = {}
        for key in HASHED_KEYS:
            if key not in pair.browser.user_data or key not in pair.server.user_data:
                continue
            browser = self.hashes(pair.browser, key)
            server = self.hashes(pair.server, key)
            if not browser or not server or browser & server:
                continue
            differing.append(key)
            b, s = sorted(browser)[0], sorted(server)[0]
            line = f"{key}: browser {b[:8]}…, server {s[:8]}…"
            if self.customer is not None and self.customer.raw(key) is not None:
                bv = self.customer.verdict(key, b, self.platform)
                sv = self.customer.verdict(key, s, self.platform)
                verdict_words[key] = (bv[0], sv[0])
                line += f" (browser: {_verdict_text(bv)}; server: {_verdict_text(sv)})"
                for event, state in ((pair.browser, bv[0]), (pair.server, sv[0])):
                    if state != "ok":
                        self.mark(event, key, WRONG)
            else:
                self.mark(pair.browser, key, WRONG)
                self.mark(pair.server, key, WRONG)
            details.append(line)
        if not differing:
            return
        keys = ", ".join(differing)
        right = {k: v for k, v in verdict_words.items() if "ok" in v}
        if right and len(right) == len(differing):
            browser_right = [k for k, (b, _) in right.items() if b == "ok"]
            server_right = [k for k, (_, s) in right.items() if s == "ok"]
            parts = []
            if browser_right:
                parts.append(f"the browser's {', '.join(browser_right)} "
                             f"{'is' if len(browser_right) == 1 else 'are'} right")
            if server_right:
                parts.append(f"the server's {', '.join(server_right)} "
                             f"{'is' if len(server_right) == 1 else 'are'} right")
            verdict = "; " + " and ".join(parts)
            wrong_side = ("server" if not server_right else
                          "browser" if not browser_right else "wrong side")
            fix = (f"make the {wrong_side} hash the normalized value exactly as the other side "
                   "does; build both from one normalize-and-hash function")
        else:
            verdict = ""
            fix = ("normalize and hash the same way on both sides (trim, lowercase, the "
                   "per-key rules), from the same customer record; declare the customer "
                   "(pixelcheck.customer(...)) to learn which side is right")
        self.add("cross-channel-hash-mismatch",
                 f"browser and server {{names}} send different {keys} hashes for the same "
                 f"conversion, so Meta sees two different people{verdict}",
                 fix, [pair.browser, pair.server], details)

    def hashes(self, event: Event, key: str) -> set[str]:
        out = set()
        for value in _values(event.user_data.get(key)):
            if isinstance(value, str):
                core = digest_core(value.strip())
                if core and core != SHA256_OF_EMPTY:
                    out.add(core)
        return out

    @staticmethod
    def browser_cookie(event: Event, name: str) -> str | None:
        """The browser's fbp/fbc: the hit's parameter, else the cookie it carried."""
        value = event.extra.get(name)
        if isinstance(value, str) and value:
            return value
        if event.raw is not None:
            for part in (event.raw.header("cookie") or "").split(";"):
                key, _, cookie = part.strip().partition("=")
                if key == f"_{name}" and cookie:
                    return unquote(cookie)
        return None

    def born_here(self, browser: Event, name: str, value: str) -> bool:
        """True when the cookie first appeared on this event's page: the server handled
        that page's request before the cookie existed, so it could not send it."""
        first = self.first_page.get((name, value))
        if first is None or browser.page_url is None:
            return False
        return _url_key(first) == _url_key(browser.page_url)

    def fbp(self, pair: Pair) -> None:
        browser = self.browser_cookie(pair.browser, "fbp")
        server_values = _values(pair.server.user_data.get("fbp")) \
            if "fbp" in pair.server.user_data else []
        server = next((v for v in server_values if isinstance(v, str) and v.strip()), None)
        if browser is None:
            if server is not None:
                self.mark(pair.server, "fbp", OK)
            return
        self.mark(pair.browser, "fbp", OK)
        if server is None:
            if not self.born_here(pair.browser, "fbp", browser):
                self.mark(pair.server, "fbp", ABSENT)
                self.add("fbp-missing",
                         "server {names} carries no fbp although the browser's _fbp cookie "
                         "existed when the page was requested",
                         "read the _fbp cookie from the request and send it unchanged as "
                         "user_data.fbp",
                         [pair.browser, pair.server], [f"browser _fbp: {_shorten(browser, 50)}"],
                         [pair.browser.event_name or "?"])
            return
        if _looks_hashed(server):
            return  # reported as hashed-when-must-not-be
        if cookie_core(server) == cookie_core(browser):
            self.mark(pair.server, "fbp", OK)
            return
        self.mark(pair.server, "fbp", WRONG)
        self.add("fbp-mismatch",
                 "server {names} sends an fbp that is not the browser's _fbp cookie: Meta "
                 "cannot tie the server event to the browser",
                 "send the _fbp cookie of the visitor's request unchanged as user_data.fbp "
                 "(not a value generated on the server or taken from another session)",
                 [pair.browser, pair.server],
                 [f"browser _fbp: {_shorten(browser, 50)}",
                  f"server fbp:   {_shorten(server, 50)}"],
                 [pair.browser.event_name or "?"])

    def fbclid_before(self, event: Event) -> str | None:
        """The fbclid of the latest landing URL at or before this browser event."""
        return self.landing_fbclid.get(id(event))

    @staticmethod
    def fbc_problem(fbc: str, fbclid: str) -> str | None:
        match = re.fullmatch(r"fb\.(\d+)\.(\d+)\.(.+)", fbc.strip())
        if match is None:
            return f"{_shorten(fbc, 40)!r} is not fb.<subdomain index>.<ms>.<fbclid>"
        rest = match.group(3)
        appendix = TAGGED.match(rest)
        if rest == fbclid or (appendix and appendix.group("core") == fbclid):
            return None
        if rest.lower() == fbclid.lower() or (appendix and
                                              appendix.group("core").lower() == fbclid.lower()):
            return "its click id differs from the landing URL's fbclid in letter case"
        return "its click id is not the landing URL's fbclid"

    def fbc_browser(self) -> None:
        for event in self.order:
            if event.source != "browser":
                continue
            fbclid = self.fbclid_before(event)
            fbc = self.browser_cookie(event, "fbc")
            if fbc is None:
                if fbclid is not None:
                    self.mark(event, "fbc", WRONG)
                    self.add("fbc-invalid",
                             "browser {names} carries no fbc although the landing URL had an "
                             "fbclid",
                             "let the pixel store the _fbc cookie (no consent tool or cookie "
                             "policy may drop it), or set _fbc = fb.1.<ms>.<fbclid> yourself",
                             [event])
                continue
            if _looks_hashed(fbc):
                continue
            problem = self.fbc_problem(fbc, fbclid) if fbclid is not None else (
                None if re.fullmatch(r"fb\.\d+\.\d+\..+", fbc) else
                f"{_shorten(fbc, 40)!r} is not fb.<subdomain index>.<ms>.<fbclid>")
            if problem is None:
                self.mark(event, "fbc", OK)
                continue
            self.mark(event, "fbc", WRONG)
            self.add("fbc-invalid", f"browser {{names}} fbc is invalid: {problem}",
                     "build _fbc as fb.1.<creation ms>.<fbclid> with the fbclid exactly as in "
                     "the landing URL (it is case-sensitive; never lower-case or trim it)",
                     [event])

    def fbc_pair(self, pair: Pair) -> None:
        browser = self.browser_cookie(pair.browser, "fbc")
        server_values = _values(pair.server.user_data.get("fbc")) \
            if "fbc" in pair.server.user_data else []
        server = next((v for v in server_values if isinstance(v, str) and v.strip()), None)
        fbclid = self.fbclid_before(pair.browser)
        if server is None:
            if browser is not None and not self.born_here(pair.browser, "fbc", browser):
                self.mark(pair.server, "fbc", WRONG)
                self.add("fbc-invalid",
                         "server {names} carries no fbc although the browser's _fbc cookie "
                         "existed when the page was requested",
                         "read the _fbc cookie of the request (or build fb.1.<ms>.<fbclid> "
                         "from the landing URL) and send it unchanged as user_data.fbc",
                         [pair.browser, pair.server], [], [pair.browser.event_name or "?"])
            return
        if _looks_hashed(server):
            return  # reported as hashed-when-must-not-be
        problem = None
        if browser is not None and cookie_core(server) != cookie_core(browser):
            problem = "it is not the browser's _fbc cookie"
        elif fbclid is not None:
            problem = self.fbc_problem(server, fbclid)
        if problem is None:
            self.mark(pair.server, "fbc", OK)
            return
        self.mark(pair.server, "fbc", WRONG)
        details = [f"server fbc:   {_shorten(server, 60)}"]
        if browser is not None:
            details.insert(0, f"browser _fbc: {_shorten(browser, 60)}")
        self.add("fbc-invalid", f"server {{names}} fbc is invalid: {problem}",
                 "send the _fbc cookie of the visitor's request unchanged as user_data.fbc; "
                 "the fbclid in it is case-sensitive and must not be altered",
                 [pair.browser, pair.server], details, [pair.browser.event_name or "?"])

    def user_agent(self, pair: Pair) -> None:
        browser = pair.browser.extra.get("user_agent")
        server = pair.server.user_data.get("client_user_agent")
        if isinstance(browser, str) and browser:
            self.mark(pair.browser, "client_user_agent", OK)
        if not isinstance(server, str) or not server.strip():
            return
        if _looks_hashed(server):
            return  # reported as hashed-when-must-not-be
        if not isinstance(browser, str) or not browser or server.strip() == browser.strip():
            self.mark(pair.server, "client_user_agent", OK)
            return
        self.mark(pair.server, "client_user_agent", WRONG)
        self.add("user-agent-mismatch",
                 "server {names} client_user_agent is not the User-Agent of the browser that "
                 "fired the pixel",
                 "send the User-Agent header of the visitor's own request (not the backend's "
                 "HTTP library, and not a fixed string)",
                 [pair.browser, pair.server],
                 [f"browser: {_shorten(browser, 66)}", f"server:  {_shorten(server, 66)}"],
                 [pair.browser.event_name or "?"])

    def source_url(self, pair: Pair) -> None:
        browser, server = pair.browser.page_url, pair.server.page_url
        if not browser or not server or _url_key(browser) == _url_key(server):
            return
        self.add("source-url-mismatch",
                 "server {names} event_source_url is not the page the browser fired it on",
                 "send the URL of the page where the conversion happened (the thank-you page), "
                 "the same URL the pixel reports as dl",
                 [pair.browser, pair.server],
                 [f"browser dl:       {_show_url(browser)}",
                  f"event_source_url: {_show_url(server)}"],
                 [pair.browser.event_name or "?"])


def _shown_normalized(key: str, value: str) -> str:
    # a normalized phone is shown as it is hashed (digits only, no "+"), masked
    if key == "ph" and value.isdigit() and len(value) > 4:
        return value[:1] + "*" * (len(value) - 3) + value[-2:]
    return mask(value, key)


def _verdict_text(verdict: tuple[str, str]) -> str:
    state, label = verdict
    return {"ok": "right", "double": "hashed twice", "unnormalized": label,
            "other": "not this customer's", "unknown": "unknown"}[state]


def check(result: MatchResult, customer: Customer | None) -> list[Finding]:
    """Meta's findings over one test's events (ud[...], user_data, fbp/fbc)."""
    return Checker(result, customer, NAME).run().findings()
