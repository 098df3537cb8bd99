"""Customer data in pixel hits and server API calls: normalized, hashed, never in clear.

Ad platforms match a conversion to a person through hashes of *normalized*
customer keys (email, phone, ...). A hash of un-normalized input matches nobody, a
raw value leaks personal data, and a browser and a server that hash the same
customer differently look like two people. Each platform has its own rules; this
module holds what they share:

* masking: every value shown in a report or a message goes through ``mask`` first,
  so PII never reaches one in full,
* hash shapes (``sha256_hex``, ``is_sha256_hex``, ``digest_core``),
* the customer a test declares (``Customer``), normalized and hashed the way a
  platform says (``Platform.normalize_customer``; ``normalize``, ``hash_value``),
* ``check_pii``: each platform's own checks (``Platform.check_customer_data``), or the
  generic ones driven by its ``customer_values``, ``hashed_keys`` and
  ``expected_value``,
* match-key coverage: which keys each event sent, from which side, and whether they
  were right, in rows each platform gives (``Platform.match_key_coverage``;
  ``match_key_coverage``, ``coverage_table``).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from .events import Event
from .findings import SEVERITY_RANK, Finding, Severity, register_codes
from .masking import (  # noqa: F401  (re-exported: platforms and tests use them)
    _EMAIL,
    _PHONE,
    _SHOWN,
    _mask_email,
    _mask_phone,
    _phone_digits_ok,
    _shorten,
    mask_text,
)
from .matching import MatchResult
from .report import wrap

if TYPE_CHECKING:
    from .platforms import Platform

# --- codes ------------------------------------------------------------------------------

CODES: dict[str, tuple[Severity, str]] = {
    "raw-pii-in-user-data": ("error", "a customer key that must be hashed is not a SHA-256 hex "
                                      "digest"),
    "pii-in-clear": ("error", "an email address or phone number travels in the clear"),
    "unnormalized-hash": ("error", "a hash of the customer's value before normalization"),
    "double-hashed": ("error", "a hash of the hex digest of the normalized value"),
    "hash-of-empty-value": ("warning", "a customer key carries the SHA-256 of an empty string"),
    "cross-channel-hash-mismatch": ("error", "browser and server hash one customer "
                                             "differently"),
}
register_codes(CODES)

#: the customer's match keys under the common names (every platform's
#: ``customer_values`` uses them), in the order reports show them
HASHED_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id")

#: Customer attribute per match key
FIELD_OF_KEY: dict[str, str] = {
    "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ct": "city",
    "st": "state", "zp": "zip", "country": "country", "db": "date_of_birth",
    "ge": "gender", "external_id": "external_id",
}
KEY_OF_FIELD = {v: k for k, v in FIELD_OF_KEY.items()}
_ALIASES = {"zip_code": "zp", "postal_code": "zp", "country_code": "country",
            "birthday": "db", "dob": "db"}

#: each match key in words, for messages
KEY_WORD = {"em": "email", "ph": "phone", "fn": "first name", "ln": "last name", "ct": "city",
            "st": "state", "zp": "ZIP code", "country": "country", "db": "date of birth",
            "ge": "gender", "external_id": "external id"}

# --- hashes -----------------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX64_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
#: a value with a short tag after its last dot (2 or 8 letters or digits): some SDKs
#: append one to the values they build (Meta's Parameter Builder Library does), and the
#: platform accepts them, so the value before the tag is what counts
TAGGED = re.compile(r"^(?P<core>[^.]+(?:\.[^.]+)*?)\.(?P<appendix>[A-Za-z0-9]{2}|"
                    r"[A-Za-z0-9]{8})$")
SHA256_OF_EMPTY = hashlib.sha256(b"").hexdigest()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(value: Any) -> bool:
    """True for a 64-character lowercase hex string (with or without a ``TAGGED`` tag)."""
    return isinstance(value, str) and digest_core(value) is not None


def digest_core(value: str) -> str | None:
    """The lowercase hex digest in ``value`` (a tag after it dropped), or None when it
    is not one."""
    if _HEX64.fullmatch(value):
        return value
    match = TAGGED.match(value)
    if match and _HEX64.fullmatch(match.group("core")):
        return match.group("core")
    return None


def _looks_hashed(value: str) -> bool:
    """Any-case 64 or 32 hex digits: someone ran a hash over it."""
    core = value.strip()
    match = TAGGED.match(core)
    if match and _HEX64_ANY_CASE.fullmatch(match.group("core")):
        return True
    return bool(_HEX64_ANY_CASE.fullmatch(core) or _HEX32.fullmatch(core))


# --- masking ----------------------------------------------------------------------------

_IPV4 = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}")
# keys that hold an IP address: ip, ip_address, client_ip_address, ...
_IP_KEY = re.compile(r"(?:\w+_)?ip(?:_address)?")


#: lists inside lists shown before the rest is a bare ``[…]``: a report line needs no
#: more, and an event built from hostile data may nest thousands deep
_MASK_LIST_DEPTH = 4


def mask(value: Any, key: str | None = None, *, _depth: int = 0) -> str:
    """A value as reports may show it: PII masked (``j***@example.com``,
    ``+1 *** *** **12``), hashes shortened, long values cut.

    ``key`` (a match key such as ``em``/``ph``/``fn``, or an IP address key) picks
    the masking when the value's shape does not say what it is.
    """
    key = _ALIASES.get(key or "", KEY_OF_FIELD.get(key or "", key))
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        if _depth >= _MASK_LIST_DEPTH:
            return "[…]"
        shown = [mask(v, key, _depth=_depth + 1) for v in list(value)[:3]]
        more = f", …{len(value) - 3} more" if len(value) > 3 else ""
        return "[" + ", ".join(shown) + more + "]"
    if isinstance(value, dict):
        return f"{{…{len(value)} keys}}"
    if not isinstance(value, str):
        return f"{type(value).__name__} " + mask(str(value), key)
    text = value
    stripped = text.strip()
    if not stripped:
        return repr(text)
    if _looks_hashed(stripped):
        return stripped[:8] + "…"
    if key == "em" or _EMAIL.fullmatch(stripped):
        return _mask_email(stripped) if "@" in stripped else stripped[:1] + "***"
    if key == "ph" or (_PHONE.fullmatch(stripped) and _phone_digits_ok(stripped)) or \
            re.fullmatch(r"\+?\d{10,15}", stripped):
        return _mask_phone(stripped)
    if key is not None and _IP_KEY.fullmatch(key):
        if _IPV4.fullmatch(stripped):
            return _IPV4.sub(r"\1.***", stripped)
        return ":".join(stripped.split(":")[:2]) + ":***"
    if key in FIELD_OF_KEY:
        # names, city, dates, ...: the first character says enough to debug
        return stripped[:1] + "***" + (f" ({len(text)} chars)" if len(text) > _SHOWN else "")
    return mask_text(text)



# --- normalization: each platform's own rules -------------------------------------------


def _key(name: str) -> str:
    key = _ALIASES.get(name, KEY_OF_FIELD.get(name, name))
    if key not in FIELD_OF_KEY:
        raise ValueError(f"unknown customer field {name!r}; known: {', '.join(FIELD_OF_KEY)}")
    return key


def customer_key(name: str) -> str:
    """The match key of a customer field name or alias (``"email"`` -> ``"em"``);
    other match keys (a platform's identifier columns) pass through."""
    return name if name in match_keys() else _key(name)


def _text(value: Any) -> str:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"a customer value must be a string, not {type(value).__name__}")
    return str(value)


def _has_rules(platform: Platform) -> bool:
    from .platforms import Platform

    return type(platform).normalize_customer is not Platform.normalize_customer


def _rules(platform: str | None) -> Platform:
    """The platform whose normalization applies (None: the default platform)."""
    from . import platforms

    try:
        found = platforms.default() if platform is None else platforms.get(platform)
    except KeyError:
        found = None
    if found is None or not _has_rules(found):
        known = [p.name for p in platforms.all_platforms() if _has_rules(p)]
        raise ValueError(f"no normalization rules for platform {platform!r}; "
                         f"known: {', '.join(known)}")
    return found


def _normalized(key: str, value: Any, rules: Platform, country: str | None) -> str | None:
    """``normalize`` for a known key and platform; None when the platform has no rule
    for the key."""
    if value is None:
        return ""
    text = _text(value)
    if not text.strip():
        return ""
    if _HEX64.fullmatch(text.strip().lower()):
        return text.strip().lower()
    return rules.normalize_customer(key, text, country)


def normalize(field: str, value: Any, platform: str | None = None, *,
              country: str | None = None) -> str:
    """``value`` normalized for hashing as ``platform`` documents it for this field
    (None: the default platform).

    ``field``: a match key (``em``, ``ph``, ``fn``, ``ln``, ``ct``, ``st``, ``zp``,
    ``country``, ``db``, ``ge``, ``external_id``) or the customer attribute name
    (``email``, ``phone``, ...). ``country`` completes a national phone number and
    picks the ZIP rule where the platform's rules do. A value that is already a
    SHA-256 hex digest is returned as is; an empty value gives "". Raises
    ``ValueError`` for a value that cannot be normalized (an invalid date, a gender
    other than f/m, ...) and for a key the platform has no rule for.
    """
    key = _key(field)
    rules = _rules(platform)
    result = _normalized(key, value, rules, country)
    if result is None:
        raise ValueError(f"{rules.title or rules.name} has no normalization rule for the "
                         f"{KEY_WORD[key]}")
    return result


def hash_value(field: str, value: Any, platform: str | None = None, *,
               country: str | None = None) -> str:
    """SHA-256 lowercase hex of the normalized value ("" for an empty value)."""
    normalized = normalize(field, value, platform, country=country)
    if not normalized or _HEX64.fullmatch(normalized):
        return normalized
    return sha256_hex(normalized)


def acceptable_forms(field: str, value: Any, platform: str | None = None, *,
                     country: str | None = None) -> list[str]:
    """Every normalized form that counts as right, the platform's own first
    (``Platform.customer_forms``); [] for an empty value or a key without a rule."""
    key = _key(field)
    rules = _rules(platform)
    first = _normalized(key, value, rules, country)
    if not first:
        return []
    if _HEX64.fullmatch(first):
        return [first]
    return rules.customer_forms(key, _text(value), country)


# --- the known customer -----------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Customer:
    """The customer a test's checkout used, as typed into the form.

    With it, pixelcheck can tell a correct hash from one of un-normalized or
    double-hashed input, and say which side is right when browser and server
    disagree. Give the values as the user typed them; the phone should carry its
    country code (or give ``country`` so a national number can be completed).
    """

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    external_id: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            text = _text(value)
            object.__setattr__(self, f.name, text if text.strip() else None)
        for key in FIELD_OF_KEY:  # fail at declaration, not deep inside a check
            self.normalized(key)

    @classmethod
    def build(cls, customer: Any = None, **values: Any) -> Customer:
        """A Customer from another Customer, a mapping, or any object with
        ``email``/``phone``/... attributes (e.g. a checkout's own customer
        class), with ``values`` overriding."""
        if isinstance(customer, Customer):
            base = customer
        elif customer is None:
            base = cls()
        elif isinstance(customer, Mapping):
            try:
                base = cls(**{FIELD_OF_KEY[_key(str(k))]: v for k, v in customer.items()})
            except ValueError as exc:
                if "unknown customer field" in str(exc):
                    raise TypeError(str(exc)) from None
                raise
        else:
            found: dict[str, Any] = {}
            for name in (f.name for f in fields(cls)):
                for alias in (name, KEY_OF_FIELD[name]):
                    got = getattr(customer, alias, None)
                    if got is not None:
                        found[name] = got
                        break
            base = cls(**found)
        changes = {FIELD_OF_KEY[_key(name)]: value for name, value in values.items()}
        return replace(base, **changes) if changes else base

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={mask(getattr(self, f.name), KEY_OF_FIELD[f.name])}"
                          for f in fields(self) if getattr(self, f.name) is not None)
        return f"Customer({shown})"

    def raw(self, key: str) -> str | None:
        value: str | None = getattr(self, FIELD_OF_KEY[_key(key)])
        return value

    @property
    def keys(self) -> list[str]:
        """The match keys this customer has a value for."""
        return [key for key in HASHED_KEYS if self.raw(key) is not None]

    def normalized(self, key: str, platform: str | None = None) -> str | None:
        """The value of ``key`` normalized by ``platform``'s rules (None: the default
        platform); None when unknown or when the platform has no rule for it."""
        raw = self.raw(key)
        if raw is None:
            return None
        return _normalized(_key(key), raw, _rules(platform), self.country) or None

    def hashed(self, key: str, platform: str | None = None) -> str | None:
        normalized = self.normalized(key, platform)
        if normalized is None:
            return None
        return normalized if _HEX64.fullmatch(normalized) else sha256_hex(normalized)

    def user_data(self, platform: str | None = None) -> dict[str, str]:
        """The hashed customer keys, as a correct integration sends them."""
        out = {}
        for key in HASHED_KEYS:
            hashed = self.hashed(key, platform)
            if hashed:
                out[key] = hashed
        return out

    def verdict(self, key: str, digest: str, platform: str | None = None) -> tuple[str, str]:
        """What a sent hash is for this customer: ("ok"|"double"|"unnormalized"|
        "other"|"unknown", the skipped step for "unnormalized")."""
        table = _verdicts(self, key, _rules(platform).name)
        if table is None:
            return "unknown", ""
        return table.get(digest, ("other", ""))

    def accepts_raw(self, key: str, value: str, platform: str | None = None) -> bool:
        """An unhashed value that is still right: one of the platform's forms of a key
        it does not require hashed (Meta's external_id)."""
        raw = self.raw(key)
        rules = _rules(platform)
        if raw is None or _key(key) in rules.hashed_keys:
            return False
        return value.strip() in acceptable_forms(key, raw, rules.name, country=self.country)


@functools.lru_cache(maxsize=256)
def _verdicts(customer: Customer, key: str, platform: str) -> dict[str, tuple[str, str]] | None:
    raw = customer.raw(key)
    if raw is None:
        return None
    forms = acceptable_forms(key, raw, platform, country=customer.country)
    if not forms:
        return None
    if _HEX64.fullmatch(forms[0]):  # the customer was declared with a hash
        right = {forms[0]}
    else:
        right = {sha256_hex(f) for f in forms}
    table: dict[str, tuple[str, str]] = {}
    mistakes = _rules(platform).normalization_mistakes(_key(key), raw, customer.country)
    for variant, label in reversed(mistakes):
        table[sha256_hex(variant)] = ("unnormalized", label)  # smallest mistake wins
    for digest in right:
        table[sha256_hex(digest)] = ("double", "")
    for digest in right:
        table[digest] = ("ok", "")
    return table


# --- the checks -------------------------------------------------------------------------

OK, HASHED, WRONG, OTHER, ABSENT, NA, SOME = "+", "h", "x", "?", ".", "-", "~"


def check_pii(result: MatchResult, customer: Customer | None = None) -> list[Finding]:
    """Every PII and identity finding for one test's events (most severe first), each
    platform by its own rules."""
    from . import platforms

    found: list[Finding] = []
    for name in dict.fromkeys(e.platform for e in result.events):
        try:
            platform = platforms.get(name)
        except KeyError:
            continue
        own = platform.check_customer_data(result, customer)
        found += own if own is not None else _customer_values_checks(platform, result,
                                                                     customer)
    found.sort(key=lambda f: (-SEVERITY_RANK[f.severity],
                              min((e.seq for e in f.events), default=-1)))
    return found


def _judge(platform: Platform, key: str, value: Any,
           customer: Customer | None) -> tuple[str, str | None, str | None]:
    """One sent value of ``key`` by the platform's ``hashed_keys`` and
    ``expected_value``: (coverage state, the expected value when the customer's is
    known, "raw" for a key that must be hashed sent raw, or "other-hash" for a hash
    that is not the platform's hash of the customer's value, else None)."""
    text = value.strip() if isinstance(value, str) else ""
    raw = customer.raw(key) if customer is not None and key in FIELD_OF_KEY else None
    hashed = key in platform.hashed_keys
    if hashed and not _HEX64_ANY_CASE.fullmatch(text):
        return WRONG, None, "raw"
    expected = platform.expected_value(key, raw) if raw else None
    if not expected:
        return HASHED, None, None
    if text.lower() == expected.lower():
        return OK, expected, None
    return (WRONG, expected, "other-hash") if hashed else (OTHER, expected, None)


def _customer_values_checks(platform: Platform, result: MatchResult,
                            customer: Customer | None) -> list[Finding]:
    """PII checks any platform gets from ``customer_values`` and ``hashed_keys``: a
    key that must be hashed travels raw; a hash that is not the platform's hash of the
    declared customer's value; the two copies of a merged conversion disagree."""
    out: list[Finding] = []
    title = platform.title or platform.name
    values: dict[int, dict[str, list[Any]]] = {}
    for event in result.events:
        if event.platform != platform.name or not event.decoded:
            continue
        values[id(event)] = sent = platform.customer_values(event)
        for key, items in sent.items():
            if key not in platform.hashed_keys:
                continue
            for value in items:
                _, expected, problem = _judge(platform, key, value, customer)
                if problem == "raw":
                    out.append(Finding(
                        "raw-pii-in-user-data",
                        f"{event.source} {event.event_name} sends the {KEY_WORD.get(key, key)} "
                        f"as {mask(value, key)}: {title} wants it SHA-256 hashed",
                        f"normalize the {KEY_WORD.get(key, key)} the way {title} asks, hash it "
                        "with SHA-256, and send the hex digest",
                        [event], [], platform.name, event.event_name))
                elif problem == "other-hash" and expected:
                    raw = customer.raw(key) if customer is not None else None
                    out.append(Finding(
                        "unnormalized-hash",
                        f"{event.source} {event.event_name} {KEY_WORD.get(key, key)} hash is "
                        f"not {title}'s hash of the customer's {KEY_WORD.get(key, key)} "
                        f"({mask(raw, key)})",
                        f"normalize before hashing as {title} documents it, then hash; "
                        "browser and server must use the same function",
                        [event], [f"expected {expected[:12]}…, sent {value.strip()[:12]}…"],
                        platform.name, event.event_name))
    for pair in result.pairs:
        if pair.browser.platform != platform.name:
            continue
        browser, server = values.get(id(pair.browser), {}), values.get(id(pair.server), {})
        for key in sorted(set(browser) & set(server) & set(platform.hashed_keys)):
            if {str(v).lower() for v in browser[key]}.isdisjoint(
                    str(v).lower() for v in server[key]):
                out.append(Finding(
                    "cross-channel-hash-mismatch",
                    f"{pair.browser.event_name}: the browser and the server send different "
                    f"{KEY_WORD.get(key, key)} hashes for one conversion: {title} sees two people",
                    "hash the customer once, with one normalization, and send that digest "
                    "from both sides",
                    [pair.browser, pair.server], [], platform.name, pair.browser.event_name))
    return out



# --- match-key coverage ----------------------------------------------------------------

_COLUMN = {"country": "co", "external_id": "xid"}
_LEGEND_ENTRIES = ("+ right", "h sent, not checked (no known value)", "x wrong",
                   "? another customer's", "~ some events", ". not sent", "- n/a")
# no-break spaces inside an entry, so wrapping never parts a symbol from its meaning
COVERAGE_LEGEND = "browser|server per key: " + "  ".join(
    e.replace(" ", "\u00a0") for e in _LEGEND_ENTRIES)


def _columns() -> dict[str, str]:
    """Every coverage column, key -> short label: the customer keys, then each
    registered platform's identifier columns (``Platform.coverage_columns``)."""
    from . import platforms

    columns = {k: _COLUMN.get(k, k) for k in HASHED_KEYS}
    for platform in platforms.all_platforms():
        for key, label in platform.coverage_columns.items():
            columns.setdefault(key, label)
    return columns


def match_keys() -> tuple[str, ...]:
    """The columns of match-key coverage (``MATCH_KEYS``)."""
    return tuple(_columns())


def column_label(key: str) -> str:
    """A coverage column's short label (``country`` -> ``co``)."""
    return _columns().get(key, key)


def __getattr__(name: str) -> Any:
    # MATCH_KEYS follows the registered platforms' columns, so it is computed on use
    if name == "MATCH_KEYS":
        return match_keys()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class EventCoverage:
    """Per match key, the state of one event's value (+ h x ? . -)."""

    event: Event
    states: dict[str, str]


@dataclass
class NameCoverage:
    """One event name: per key, the state over its browser and its server events."""

    platform: str
    event_name: str
    browser: dict[str, str]
    server: dict[str, str]
    browser_events: int = 0
    server_events: int = 0

    def _side(self, source: str) -> dict[str, str]:
        return self.browser if source == "browser" else self.server

    def sent(self, source: str) -> list[str]:
        side = self._side(source)
        return [k for k in match_keys() if side.get(k, ABSENT) not in (ABSENT, NA)]

    def right(self, source: str) -> list[str]:
        side = self._side(source)
        return [k for k in match_keys() if side.get(k, ABSENT) == OK]

    def wrong(self, source: str) -> list[str]:
        side = self._side(source)
        return [k for k in match_keys() if side.get(k, ABSENT) == WRONG]


@dataclass
class MatchKeyCoverage:
    """Which match keys each event sent, from which side, and whether they were right."""

    events: list[EventCoverage]
    names: list[NameCoverage]
    customer_known: bool

    def name(self, event_name: str, platform: str | None = None) -> NameCoverage | None:
        """The row of ``event_name`` on ``platform`` (None: the default platform's,
        else the first platform's that has one)."""
        rows = [n for n in self.names if n.event_name == event_name]
        if platform is not None:
            return next((n for n in rows if n.platform == platform), None)
        from . import platforms

        first = platforms.default()
        return next((n for n in rows if first is not None and n.platform == first.name),
                    rows[0] if rows else None)

    def table(self, event_names: Iterable[str] | None = None, *, width: int = 80) -> str:
        return coverage_table(self, event_names, width=width)

    def __str__(self) -> str:
        return self.table()


def _combine(states: list[str]) -> str:
    if not states:
        return ABSENT
    if WRONG in states:
        return WRONG
    if all(s == NA for s in states):
        return NA
    present = [s for s in states if s not in (ABSENT, NA)]
    if not present:
        return ABSENT
    if len(present) < len(states):
        return SOME
    for state in (OTHER, HASHED):
        if state in present:
            return state
    return OK


def customer_values_coverage(platform: Platform, result: MatchResult,
                             customer: Customer | None) -> list[EventCoverage]:
    """Coverage any platform gets from ``customer_values``, ``hashed_keys`` and
    ``expected_value``: per decoded event, each customer key's state (identifier
    columns are the platform's own business: n/a here)."""
    out: list[EventCoverage] = []
    for event in result.events:
        if event.platform != platform.name or not event.decoded:
            continue
        sent = platform.customer_values(event)
        out.append(EventCoverage(event, {
            key: _combine([_judge(platform, key, value, customer)[0]
                           for value in sent.get(key) or []])
            for key in HASHED_KEYS}))
    return out


def match_key_coverage(result: MatchResult, customer: Customer | None = None, *,
                       platform: str | None = None) -> MatchKeyCoverage:
    """Match-key coverage of one test's events, per event and per event name: each
    platform's rows (``Platform.match_key_coverage``), or only ``platform``'s."""
    from . import platforms

    keys = match_keys()
    covered: list[EventCoverage] = []
    for name in [platform] if platform is not None else \
            dict.fromkeys(e.platform for e in result.events):
        try:
            covered += platforms.get(name).match_key_coverage(result, customer)
        except KeyError:
            continue
    order = {id(e): index for index, e in enumerate(result.events)}
    covered.sort(key=lambda c: order.get(id(c.event), -1))
    for coverage in covered:
        for key in keys:
            coverage.states.setdefault(key, NA)
    names: dict[tuple[str, str], dict[str, list[EventCoverage]]] = {}
    for coverage in covered:
        row = names.setdefault((coverage.event.platform, coverage.event.event_name or "?"),
                               {"browser": [], "server": []})
        row[coverage.event.source].append(coverage)
    rows = []
    for (plat, name), sides in names.items():
        rows.append(NameCoverage(
            plat, name,
            {k: _combine([c.states[k] for c in sides["browser"]]) if sides["browser"]
             else ABSENT for k in keys},
            {k: _combine([c.states[k] for c in sides["server"]]) if sides["server"]
             else ABSENT for k in keys},
            len(sides["browser"]), len(sides["server"]),
        ))
    known = customer is not None and bool(customer.keys)
    return MatchKeyCoverage(covered, rows, known)


def coverage_table(coverage: MatchKeyCoverage, event_names: Iterable[str] | None = None, *,
                   width: int = 80) -> str:
    """Match-key coverage as text: one row per event name, two characters per key
    (browser, server). Fits ``width`` columns (80 by default). Where the rows come
    from several platforms, each name says its platform (``<platform>:Purchase``)."""
    wanted = set(event_names) if event_names is not None else None
    rows = [n for n in coverage.names if wanted is None or n.event_name in wanted]
    columns = _columns()
    keys = tuple(columns)
    labels = list(columns.values())
    several = len({n.platform for n in rows}) > 1
    # "  " + name + " " + one 3-wide cell per key: 18 name columns at 80
    name_width = max(8, width - 3 - 4 * len(labels) + 1)
    header = f"  {'event':<{name_width}} " + " ".join(f"{c:<3}" for c in labels)
    lines = ["match-key coverage" + ("" if coverage.customer_known
                                     else " (no customer declared: hashes unchecked)") + ":",
             header.rstrip()]
    if not rows:
        lines.append("  (no events)")
    for row in rows:
        cells = " ".join(f"{row.browser.get(k, ABSENT) + row.server.get(k, ABSENT):<3}"
                         for k in keys)
        name = f"{row.platform}:{row.event_name}" if several else row.event_name
        name = name if len(name) <= name_width else name[:name_width - 1] + "…"
        lines.append(f"  {name:<{name_width}} {cells}".rstrip())
    lines += [line.replace("\u00a0", " ") for line in
              wrap(COVERAGE_LEGEND, width, initial_indent="  ", subsequent_indent="  ")]
    return "\n".join(line[:width] for line in lines)


def coverage_rows(coverage: MatchKeyCoverage) -> list[dict[str, Any]]:
    """Per event name, as plain data (for reports and xdist)."""
    return [dataclasses.asdict(n) for n in coverage.names]


def _merge_states(states: list[str]) -> str:
    """One key's state over several tests: "~" (some events) survives the merge."""
    if SOME in states and WRONG not in states:
        return SOME
    return _combine(states)


def merge_coverage(rows: Iterable[dict[str, Any]], customer_known: bool) -> MatchKeyCoverage:
    """Many tests' coverage rows as one: per event name and key, the worst state seen."""
    keys = match_keys()
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["platform"], row["event_name"]), []).append(row)
    names = [NameCoverage(
        platform, name,
        {k: _merge_states([r["browser"].get(k, ABSENT) for r in group]) for k in keys},
        {k: _merge_states([r["server"].get(k, ABSENT) for r in group]) for k in keys},
        sum(r.get("browser_events", 0) for r in group),
        sum(r.get("server_events", 0) for r in group),
    ) for (platform, name), group in sorted(grouped.items())]
    return MatchKeyCoverage([], names, customer_known)
