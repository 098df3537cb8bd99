"""Customer data in pixel hits and Conversions API calls: normalized, hashed, never in clear.

Meta matches a conversion to a person through SHA-256 hashes of *normalized*
customer keys (``em``, ``ph``, ...). A hash of un-normalized input matches nobody,
a raw value leaks personal data, and a browser and a server that hash the same
customer differently look like two people. This module holds

* the normalization rules, per platform (``normalize``, ``hash_value``),
* the customer a test declares (``Customer``),
* the checks: raw, un-normalized, double-hashed and wrongly hashed values, PII in
  URLs and custom data, and identity parity (fbp, fbc, user agent, source URL)
  between the two copies of each deduplicated conversion (``check_pii``),
* match-key coverage: which keys each event sent, from which side, and whether
  they were right (``match_key_coverage``, ``coverage_table``).

Every value shown in a message goes through ``mask`` first: PII never reaches a
report or a failure message in full.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .events import Event
from .findings import SEVERITY_RANK, Finding, Severity, register_codes
from .matching import MatchResult, Pair
from .redact import scrub
from .report import wrap

# --- codes ------------------------------------------------------------------------------

CODES: dict[str, tuple[Severity, str]] = {
    "raw-pii-in-user-data": ("error", "a customer key that must be hashed is not a SHA-256 hex "
                                      "digest"),
    "pii-in-clear": ("error", "an email address or phone number travels in the clear"),
    "unnormalized-hash": ("error", "a hash of the customer's value before normalization"),
    "double-hashed": ("error", "a hash of the hex digest of the normalized value"),
    "hash-of-empty-value": ("warning", "a customer key carries the SHA-256 of an empty string"),
    "hashed-when-must-not-be": ("error", "fbp, fbc, IP address or user agent sent hashed"),
    "cross-channel-hash-mismatch": ("error", "browser and server hash one customer "
                                             "differently"),
    "fbp-mismatch": ("error", "the server's fbp is not the browser's _fbp cookie"),
    "fbp-missing": ("warning", "the server event carries no fbp although the browser has one"),
    "fbc-invalid": ("error", "fbc is missing, altered or differs between the sides"),
    "user-agent-mismatch": ("error", "the server's client_user_agent is not the browser's"),
    "source-url-mismatch": ("warning", "event_source_url is not the page the browser was on"),
    "client-ip-missing": ("warning", "a website server event carries no client_ip_address"),
}
register_codes(CODES)

#: customer keys that must be hashed, in the order reports show them
HASHED_KEYS = ("em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country", "external_id")
#: identifiers Meta wants exactly as the browser has them, never hashed
NEVER_HASHED = ("fbp", "fbc", "client_ip_address", "client_user_agent", "subscription_id",
                "fb_login_id")
#: the columns of match-key coverage
MATCH_KEYS = HASHED_KEYS + ("fbp", "fbc", "client_ip_address", "client_user_agent")
#: other documented user_data keys: not scanned for PII shapes
_OTHER_KNOWN_KEYS = frozenset({"lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id",
                               "ctwa_clid", "ig_account_id", "ig_sid", "f5first", "f5last",
                               "fi", "dobd", "dobm", "doby"})

#: Customer attribute per match key
FIELD_OF_KEY: dict[str, str] = {
    "em": "email", "ph": "phone", "fn": "first_name", "ln": "last_name", "ct": "city",
    "st": "state", "zp": "zip", "country": "country", "db": "date_of_birth",
    "ge": "gender", "external_id": "external_id",
}
KEY_OF_FIELD = {v: k for k, v in FIELD_OF_KEY.items()}
_ALIASES = {"zip_code": "zp", "postal_code": "zp", "country_code": "country",
            "birthday": "db", "dob": "db"}

_WORD = {"em": "email", "ph": "phone", "fn": "first name", "ln": "last name", "ct": "city",
         "st": "state", "zp": "ZIP code", "country": "country", "db": "date of birth",
         "ge": "gender", "external_id": "external id"}

# --- hashes -----------------------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX64_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
# Meta's Parameter Builder Library appends ".<appendix>" (2 or 8 characters) to the
# values it builds; Meta accepts them, so the digest before it is what counts.
_APPENDIX = re.compile(r"^(?P<core>[^.]+(?:\.[^.]+)*?)\.(?P<appendix>[A-Za-z0-9]{2}|"
                       r"[A-Za-z0-9]{8})$")
SHA256_OF_EMPTY = hashlib.sha256(b"").hexdigest()
_COOKIE_APPENDIX = re.compile(r"[A-Za-z0-9]{2}|[A-Za-z0-9]{8}")


def cookie_core(value: str) -> str:
    """An fbp/fbc value without the Parameter Builder's appendix:
    ``fb.1.<ms>.<id>.AQIAAQMC`` and ``fb.1.<ms>.<id>`` are the same cookie."""
    parts = value.strip().split(".")
    if len(parts) == 5 and parts[0] == "fb" and _COOKIE_APPENDIX.fullmatch(parts[4]):
        return ".".join(parts[:4])
    return value.strip()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_sha256_hex(value: Any) -> bool:
    """True for a 64-character lowercase hex string (with or without a PBL appendix)."""
    return isinstance(value, str) and _hash_core(value) is not None


def _hash_core(value: str) -> str | None:
    """The lowercase hex digest in ``value``, or None when it is not one."""
    if _HEX64.fullmatch(value):
        return value
    match = _APPENDIX.match(value)
    if match and _HEX64.fullmatch(match.group("core")):
        return match.group("core")
    return None


def _looks_hashed(value: str) -> bool:
    """Any-case 64 or 32 hex digits: someone ran a hash over it."""
    core = value.strip()
    match = _APPENDIX.match(core)
    if match and _HEX64_ANY_CASE.fullmatch(match.group("core")):
        return True
    return bool(_HEX64_ANY_CASE.fullmatch(core) or _HEX32.fullmatch(core))


# --- masking ----------------------------------------------------------------------------

# Bounded repetitions: a 10 kB value must scan in linear time.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+'-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
                    r"[A-Za-z]{2,24}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{2,5}){0,4}(?![\w])"
    r"|(?<![\w(])\(\d{3}\) ?\d{3}[ .-]\d{4}(?!\w)"
    r"|(?<![\w.-])\d{3}[ -]\d{3}[ -]\d{4}(?![\w.-])"
)
_IPV4 = re.compile(r"(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}")
_SHOWN = 60


def _phone_digits_ok(text: str) -> bool:
    return 7 <= sum(ch.isdigit() for ch in text) <= 15


def _mask_email(text: str) -> str:
    local, _, domain = text.strip().rpartition("@")
    return f"{local[:1]}***@{_shorten(domain, 40)}"


def _mask_phone(text: str) -> str:
    text = text.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) < 4:
        return "***"
    code = ""
    if text.startswith("+"):
        # the country code when separated from the number; else only its first digit
        match = re.match(r"\+\s*(\d{1,3})(?!\d)", text)
        code = f"+{match.group(1) if match else digits[0]} "
    return f"{code}*** *** **{digits[-2:]}"


def mask_text(text: str, limit: int | None = _SHOWN) -> str:
    """``text`` with every email- and phone-shaped part masked, cut to ``limit`` for a
    one-line display; ``limit=None`` keeps its length and its lines (bodies, files)."""
    text = _EMAIL.sub(lambda m: _mask_email(m.group(0)), text)
    text = _PHONE.sub(lambda m: _mask_phone(m.group(0)) if _phone_digits_ok(m.group(0))
                      else m.group(0), text)
    return text if limit is None else _shorten(text, limit)


def _shorten(text: str, limit: int) -> str:
    text = text.replace("\n", "\\n")
    if len(text) <= limit:
        return text
    return f"{text[:limit - 12]}…({len(text)} chars)"


def mask(value: Any, key: str | None = None) -> str:
    """A value as reports may show it: PII masked (``j***@example.com``,
    ``+1 *** *** **12``), hashes shortened, long values cut.

    ``key`` (a match key such as ``em``/``ph``/``fn``/``client_ip_address``) picks
    the masking when the value's shape does not say what it is.
    """
    key = _ALIASES.get(key or "", KEY_OF_FIELD.get(key or "", key))
    if value is None:
        return "None"
    if isinstance(value, (list, tuple)):
        shown = [mask(v, key) for v in list(value)[:3]]
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
    if key == "client_ip_address":
        if _IPV4.fullmatch(stripped):
            return _IPV4.sub(r"\1.***", stripped)
        return ":".join(stripped.split(":")[:2]) + ":***"
    if key in FIELD_OF_KEY:
        # names, city, dates, ...: the first character says enough to debug
        return stripped[:1] + "***" + (f" ({len(text)} chars)" if len(text) > _SHOWN else "")
    return mask_text(text)


# --- normalization rules ----------------------------------------------------------------
#
# Meta's rules follow its server-side SDK, facebook-python-business-sdk,
# facebook_business/adobjects/serverside/normalize.py (``Normalize.normalize_field``),
# and the customer information parameters page of the Conversions API docs. Where the
# two differ, both forms count as correct (``acceptable_forms``); ``normalize`` returns
# the SDK's. Each rule is a list of named steps, so a hash of partly normalized input
# can say which step was skipped.

Step = tuple[str, Callable[[str], str]]

# SDK: location_excluded_chars = [0-9.\s\-()] for ct and st
_LOCATION_EXCLUDED = re.compile(r"[0-9.\s\-()]")

_US_STATES = {
    "alabama": "al", "alaska": "ak", "arizona": "az", "arkansas": "ar", "california": "ca",
    "colorado": "co", "connecticut": "ct", "delaware": "de", "districtofcolumbia": "dc",
    "florida": "fl", "georgia": "ga", "hawaii": "hi", "idaho": "id", "illinois": "il",
    "indiana": "in", "iowa": "ia", "kansas": "ks", "kentucky": "ky", "louisiana": "la",
    "maine": "me", "maryland": "md", "massachusetts": "ma", "michigan": "mi",
    "minnesota": "mn", "mississippi": "ms", "missouri": "mo", "montana": "mt",
    "nebraska": "ne", "nevada": "nv", "newhampshire": "nh", "newjersey": "nj",
    "newmexico": "nm", "newyork": "ny", "northcarolina": "nc", "northdakota": "nd",
    "ohio": "oh", "oklahoma": "ok", "oregon": "or", "pennsylvania": "pa",
    "rhodeisland": "ri", "southcarolina": "sc", "southdakota": "sd", "tennessee": "tn",
    "texas": "tx", "utah": "ut", "vermont": "vt", "virginia": "va", "washington": "wa",
    "westvirginia": "wv", "wisconsin": "wi", "wyoming": "wy", "puertorico": "pr",
}

# Meta's docs show "United States" -> "us"; names people type most, and alpha-3 codes.
_COUNTRY_NAMES = {
    "unitedstates": "us", "unitedstatesofamerica": "us", "usa": "us", "america": "us",
    "unitedkingdom": "gb", "greatbritain": "gb", "uk": "gb", "england": "gb", "gbr": "gb",
    "canada": "ca", "can": "ca", "germany": "de", "deutschland": "de", "deu": "de",
    "france": "fr", "fra": "fr", "spain": "es", "espana": "es", "esp": "es", "italy": "it",
    "ita": "it", "netherlands": "nl", "nld": "nl", "australia": "au", "aus": "au",
    "ireland": "ie", "irl": "ie", "switzerland": "ch", "che": "ch", "austria": "at",
    "aut": "at", "belgium": "be", "bel": "be", "sweden": "se", "swe": "se", "norway": "no",
    "nor": "no", "denmark": "dk", "dnk": "dk", "brazil": "br", "bra": "br", "mexico": "mx",
    "mex": "mx", "india": "in", "ind": "in", "japan": "jp", "jpn": "jp",
    "newzealand": "nz", "nzl": "nz", "southafrica": "za", "zaf": "za", "poland": "pl",
    "pol": "pl", "portugal": "pt", "prt": "pt",
}

# Country calling codes, to complete a national number when the country is known.
_CALLING_CODES = {
    "us": "1", "ca": "1", "gb": "44", "de": "49", "fr": "33", "es": "34", "it": "39",
    "nl": "31", "au": "61", "ie": "353", "ch": "41", "at": "43", "be": "32", "se": "46",
    "no": "47", "dk": "45", "br": "55", "mx": "52", "in": "91", "jp": "81", "nz": "64",
    "za": "27", "pl": "48", "pt": "351",
}


def _trim(text: str) -> str:
    return text.strip()


def _lower(text: str) -> str:
    return text.lower()


def _letters_only(text: str) -> str:
    return "".join(ch for ch in text if ch.isalpha())


def _sdk_location(text: str) -> str:
    return _LOCATION_EXCLUDED.sub("", text)


def _state_code(text: str) -> str:
    return _US_STATES.get(_letters_only(text), text)


def _country_code(text: str) -> str:
    letters = re.sub(r"[^a-z]", "", text.lower())
    return _COUNTRY_NAMES.get(letters, letters)


def _zip_no_spaces(text: str) -> str:
    return re.sub(r"\s", "", text)


def _zip_cut(country: str | None) -> Callable[[str], str]:
    def cut(text: str) -> str:
        # SDK: split("-")[0] (ZIP+4 -> ZIP); Meta: first 5 digits for the US
        if re.fullmatch(r"\d{5}-?\d{4}", text) and country in (None, "us"):
            return text[:5]
        return text if country in (None, "us") and "-" not in text else text.replace("-", "")
    return cut


def _phone_digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _strip_leading_zeros(text: str) -> str:
    # Meta: "remove ... any leading zeros" (the 00 international prefix among them)
    return text.lstrip("0")


def _add_country_code(country: str | None) -> Callable[[str], str]:
    """A national number gets the country's calling code, as in Meta's own example
    (US "(650)555-1212" -> "16505551212"). International input is left alone."""
    def add(text: str) -> str:
        code = _CALLING_CODES.get(country or "")
        stripped = text.strip()
        if code is None or stripped.startswith(("+", "00")):
            return text
        digits = _phone_digits(stripped)
        if code == "1":
            return "1" + digits if len(digits) == 10 else text
        if digits.startswith("0"):  # trunk prefix of a national number
            return code + digits.lstrip("0")
        return text
    return add


def _e164(text: str) -> str:
    digits = _phone_digits(text)
    if text.strip().startswith("00"):
        digits = digits[2:]
    return "+" + digits.lstrip("0")


def _gender(text: str) -> str:
    word = _letters_only(text)
    if word in ("f", "female", "woman", "w"):
        return "f"
    if word in ("m", "male", "man"):
        return "m"
    return text


def _date_of_birth(text: str) -> str:
    """YYYYMMDD from the formats Meta's docs accept ("2/16/1997" -> "19970216")."""
    text = text.strip()
    parts = [p for p in re.split(r"\D+", text) if p]
    if len(parts) == 1 and len(parts[0]) == 8:
        whole = parts[0]
        if whole[:2] in ("19", "20"):
            parts = [whole[:4], whole[4:6], whole[6:]]
        else:
            parts = [whole[:2], whole[2:4], whole[4:]]
    if len(parts) != 3:
        return text
    try:
        if len(parts[0]) == 4:
            year, month, day = (int(p) for p in parts)
        elif len(parts[2]) == 4:
            first, second, year = (int(p) for p in parts)
            # slashes: US month/day (Meta's example); dots or a day > 12: day.month
            day_first = "." in text or first > 12
            month, day = (second, first) if day_first else (first, second)
        else:
            return text
        date = _dt.date(year, month, day)
    except ValueError:
        return text
    return date.strftime("%Y%m%d")


def _meta_steps(key: str, country: str | None) -> list[Step]:
    """The normalization of one key, step by step; the label names a skipped step."""
    trim: Step = ("not trimmed", _trim)
    lower: Step = ("not lowercased", _lower)
    if key in ("em", "fn", "ln", "external_id"):
        return [trim, lower]
    if key == "ph":
        return [trim, ("missing country code", _add_country_code(country)),
                ("phone kept its +/spaces", _phone_digits),
                ("phone kept its leading zeros", _strip_leading_zeros)]
    if key == "ct":
        return [trim, lower, ("city kept its spaces/punctuation", _sdk_location)]
    if key == "st":
        return [trim, lower, ("state kept its spaces/punctuation", _sdk_location),
                ("state name not abbreviated", _state_code)]
    if key == "zp":
        return [trim, lower, ("ZIP code kept its spaces", _zip_no_spaces),
                ("ZIP code not cut to 5 digits", _zip_cut(country))]
    if key == "country":
        return [trim, lower, ("country not an ISO code", _country_code)]
    if key == "db":
        return [trim, ("date of birth not YYYYMMDD", _date_of_birth)]
    if key == "ge":
        return [trim, lower, ("gender not cut to f or m", _gender)]
    raise ValueError(f"unknown match key {key!r}")


def _e164_steps(key: str, country: str | None) -> list[Step]:
    # TikTok and Google hash phones in E.164: digits with the leading "+"
    if key == "ph":
        return [("not trimmed", _trim), ("missing country code", _add_country_code(country)),
                ("phone not in E.164 (+digits)", _e164)]
    return _meta_steps(key, country)


def _google_steps(key: str, country: str | None) -> list[Step]:
    if key == "em":
        # Google: periods before @gmail.com / @googlemail.com are removed
        def gmail(text: str) -> str:
            local, at, domain = text.rpartition("@")
            if at and domain in ("gmail.com", "googlemail.com"):
                return local.replace(".", "") + at + domain
            return text
        return [("not trimmed", _trim), ("not lowercased", _lower),
                ("gmail address kept its dots", gmail)]
    return _e164_steps(key, country)


PLATFORM_STEPS: dict[str, Callable[[str, str | None], list[Step]]] = {
    "meta": _meta_steps,
    "tiktok": _e164_steps,
    "google": _google_steps,
}


def _key(name: str) -> str:
    key = _ALIASES.get(name, KEY_OF_FIELD.get(name, name))
    if key not in FIELD_OF_KEY:
        raise ValueError(f"unknown customer field {name!r}; known: {', '.join(FIELD_OF_KEY)}")
    return key


def customer_key(name: str) -> str:
    """The match key of a customer field name or alias (``"email"`` -> ``"em"``);
    other match keys (``"fbp"``) pass through."""
    return name if name in MATCH_KEYS else _key(name)


def _text(value: Any) -> str:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"a customer value must be a string, not {type(value).__name__}")
    return str(value)


def _valid(key: str, value: str, platform: str) -> str | None:
    """Why a normalized value cannot be right, or None."""
    if key == "em" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return "is not an email address"
    if key == "ph":
        digits = _phone_digits(value)
        if not 7 <= len(digits) <= 15:
            return "is not a phone number (7 to 15 digits)"
    if key == "country" and not re.fullmatch(r"[a-z]{2}", value):
        return "is not an ISO 3166 two-letter country code"
    if key == "db" and not re.fullmatch(r"(19|20)\d{6}", value):
        return "is not a date of birth (YYYYMMDD, or a date like 2/16/1997)"
    if key == "ge" and value not in ("f", "m"):
        return "is not a gender Meta accepts (f or m)"
    return None


def normalize(field: str, value: Any, platform: str = "meta", *,
              country: str | None = None) -> str:
    """``value`` normalized for hashing as ``platform`` documents it for this field.

    ``field``: a match key (``em``, ``ph``, ``fn``, ``ln``, ``ct``, ``st``, ``zp``,
    ``country``, ``db``, ``ge``, ``external_id``) or the customer attribute name
    (``email``, ``phone``, ...). ``country`` completes a national phone number and
    picks the ZIP rule. A value that is already a SHA-256 hex digest is returned as
    is, as Meta's SDK does; an empty value gives "". Raises ``ValueError`` for a value
    that cannot be normalized (an invalid date, a gender other than f/m, ...).
    """
    key = _key(field)
    steps_of = PLATFORM_STEPS.get(platform)
    if steps_of is None:
        raise ValueError(f"no normalization rules for platform {platform!r}; "
                         f"known: {', '.join(PLATFORM_STEPS)}")
    if value is None:
        return ""
    text = _text(value)
    if not text.strip():
        return ""
    if _HEX64.fullmatch(text.strip().lower()):
        return text.strip().lower()
    cc = _country_code(country) if country else None
    result = functools.reduce(lambda acc, step: step[1](acc), steps_of(key, cc), text)
    problem = _valid(key, result, platform)
    if problem:
        raise ValueError(f"{_WORD[key]} {mask(text, key)} {problem}")
    return result


def hash_value(field: str, value: Any, platform: str = "meta", *,
               country: str | None = None) -> str:
    """SHA-256 lowercase hex of the normalized value ("" for an empty value)."""
    normalized = normalize(field, value, platform, country=country)
    if not normalized or _HEX64.fullmatch(normalized):
        return normalized
    return sha256_hex(normalized)


def acceptable_forms(field: str, value: Any, platform: str = "meta", *,
                     country: str | None = None) -> list[str]:
    """Every normalized form that counts as right: the SDK's, and where Meta's docs
    ask for more (no punctuation in names, cities and states), that one too."""
    first = normalize(field, value, platform, country=country)
    if not first:
        return []
    forms = [first]
    key = _key(field)
    if key in ("fn", "ln", "ct", "st"):
        letters = _letters_only(first)
        if key == "st":
            letters = _US_STATES.get(letters, letters)
        if letters and letters not in forms:
            forms.append(letters)
    if key == "external_id":
        # hashing is only recommended and case may matter to the advertiser's ids
        trimmed = _text(value).strip()
        if trimmed not in forms:
            forms.append(trimmed)
    return forms


def _mistakes(key: str, raw: str, platform: str, country: str | None
              ) -> list[tuple[str, str]]:
    """(partly normalized value, what was skipped) for each plausible mistake,
    smallest mistake first."""
    steps = PLATFORM_STEPS[platform](key, country)
    right = functools.reduce(lambda acc, step: step[1](acc), steps, raw)
    out: list[tuple[str, str]] = []
    seen = {right}
    for size in range(1, len(steps) + 1):
        for skipped in itertools.combinations(range(len(steps)), size):
            value = raw
            for index, (_, apply) in enumerate(steps):
                if index not in skipped:
                    value = apply(value)
            if value not in seen:
                seen.add(value)
                out.append((value, " and ".join(steps[i][0] for i in skipped)))
    if key == "ph":
        if platform == "meta":
            out.append(("+" + right, "phone kept its +"))
        digits = _phone_digits(right)
        for cut in (1, 2, 3):
            if len(digits) - cut >= 6:
                out.append((digits[cut:], "missing country code"))
    return [(v, label) for v, label in out if v.strip()]


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
        return getattr(self, FIELD_OF_KEY[_key(key)])

    @property
    def keys(self) -> list[str]:
        """The match keys this customer has a value for."""
        return [key for key in HASHED_KEYS if self.raw(key) is not None]

    def _country(self) -> str | None:
        return _country_code(self.country) if self.country else None

    def normalized(self, key: str, platform: str = "meta") -> str | None:
        raw = self.raw(key)
        if raw is None:
            return None
        return normalize(key, raw, platform, country=self._country()) or None

    def hashed(self, key: str, platform: str = "meta") -> str | None:
        normalized = self.normalized(key, platform)
        if normalized is None:
            return None
        return normalized if _HEX64.fullmatch(normalized) else sha256_hex(normalized)

    def user_data(self, platform: str = "meta") -> dict[str, str]:
        """The hashed customer keys, as a correct integration sends them."""
        out = {}
        for key in HASHED_KEYS:
            hashed = self.hashed(key, platform)
            if hashed:
                out[key] = hashed
        return out

    def verdict(self, key: str, digest: str, platform: str = "meta") -> tuple[str, str]:
        """What a sent hash is for this customer: ("ok"|"double"|"unnormalized"|
        "other"|"unknown", the skipped step for "unnormalized")."""
        table = _verdicts(self, key, platform)
        if table is None:
            return "unknown", ""
        return table.get(digest, ("other", ""))

    def accepts_raw(self, key: str, value: str, platform: str = "meta") -> bool:
        """An unhashed value that is still right (external_id may be sent raw)."""
        raw = self.raw(key)
        if raw is None or key != "external_id":
            return False
        return value.strip() in acceptable_forms(key, raw, platform, country=self._country())


@functools.lru_cache(maxsize=256)
def _verdicts(customer: Customer, key: str, platform: str) -> dict[str, tuple[str, str]] | None:
    raw = customer.raw(key)
    if raw is None:
        return None
    country = customer._country()
    forms = acceptable_forms(key, raw, platform, country=country)
    if _HEX64.fullmatch(forms[0]):  # the customer was declared with a hash
        right = {forms[0]}
    else:
        right = {sha256_hex(f) for f in forms}
    table: dict[str, tuple[str, str]] = {}
    for variant, label in reversed(_mistakes(key, raw, platform, country)):
        table[sha256_hex(variant)] = ("unnormalized", label)  # smallest mistake wins
    for digest in right:
        table[sha256_hex(digest)] = ("double", "")
    for digest in right:
        table[digest] = ("ok", "")
    return table


# --- the checks -------------------------------------------------------------------------

OK, HASHED, WRONG, OTHER, ABSENT, NA, SOME = "+", "h", "x", "?", ".", "-", "~"


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


class _Checker:
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

    def run(self) -> _Checker:
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
        core = _hash_core(value.strip())
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
                     f"leave {key} out when the {_WORD[key]} is unknown instead of hashing ''",
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
                     f"SHA-256 of the hex digest of the normalized {_WORD[key]}",
                     "hash once: send sha256(normalized value) as lower-case hex; never hash a "
                     "value that is already 64 hex characters (Meta's SDK passes those "
                     "through, the pixel too)",
                     [event], [f"normalized {_WORD[key]}: {_shown_normalized(key, right)}"])
        elif state == "unnormalized":
            self.mark(event, key, WRONG)
            self.add("unnormalized-hash",
                     f"{event.source} {{names}} {self.where(event, key)} is the SHA-256 of the "
                     f"{_WORD[key]} before normalization: {label}",
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
        fix = (f"send sha256 of the normalized {_WORD[key]} ({RULES[key]}) as lower-case hex"
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
        return f"a {_WORD[key]} in the clear, not a SHA-256 hex digest"

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
                core = _hash_core(value.strip())
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
        appendix = _APPENDIX.match(rest)
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


RULES = {
    "em": "trim, lowercase",
    "ph": "digits only with the country code: no +, spaces, dashes, brackets or leading 00",
    "fn": "trim, lowercase, UTF-8",
    "ln": "trim, lowercase, UTF-8",
    "ct": "lowercase, no spaces, punctuation or digits",
    "st": "2-letter code, lowercase",
    "zp": "lowercase, no spaces; US: first 5 digits",
    "country": "ISO 3166 alpha-2, lowercase",
    "db": "YYYYMMDD",
    "ge": "f or m",
    "external_id": "trim, lowercase, the same form on both sides",
}


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


def meta_checks(result: MatchResult, customer: Customer | None) -> list[Finding]:
    """The checker below, in Meta's terms (ud[...], user_data, fbp/fbc)."""
    return _Checker(result, customer, "meta").run().findings()


def _customer_values_checks(platform: Any, result: MatchResult,
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
                text = value.strip() if isinstance(value, str) else ""
                if not _HEX64_ANY_CASE.fullmatch(text):
                    out.append(Finding(
                        "raw-pii-in-user-data",
                        f"{event.source} {event.event_name} sends the {_WORD.get(key, key)} "
                        f"as {mask(value, key)}: {title} wants it SHA-256 hashed",
                        f"normalize the {_WORD.get(key, key)} the way {title} asks, hash it "
                        "with SHA-256, and send the hex digest",
                        [event], [], platform.name, event.event_name))
                    continue
                raw = customer.raw(key) if customer is not None and key in FIELD_OF_KEY \
                    else None
                expected = platform.expected_value(key, raw) if raw else None
                if expected and text.lower() != expected.lower():
                    out.append(Finding(
                        "unnormalized-hash",
                        f"{event.source} {event.event_name} {_WORD.get(key, key)} hash is not "
                        f"{title}'s hash of the customer's {_WORD.get(key, key)} "
                        f"({mask(raw, key)})",
                        f"normalize before hashing as {title} documents it, then hash; "
                        "browser and server must use the same function",
                        [event], [f"expected {expected[:12]}…, sent {text[:12]}…"],
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
                    f"{_WORD.get(key, key)} hashes for one conversion: {title} sees two people",
                    "hash the customer once, with one normalization, and send that digest "
                    "from both sides",
                    [pair.browser, pair.server], [], platform.name, pair.browser.event_name))
    return out


# --- match-key coverage ----------------------------------------------------------------

_COLUMN = {"country": "co", "external_id": "xid", "client_ip_address": "ip",
           "client_user_agent": "ua"}
_LEGEND_ENTRIES = ("+ right", "h sent, not checked (no known value)", "x wrong",
                   "? another customer's", "~ some events", ". not sent", "- n/a")
# no-break spaces inside an entry, so wrapping never parts a symbol from its meaning
COVERAGE_LEGEND = "browser|server per key: " + "  ".join(
    e.replace(" ", "\u00a0") for e in _LEGEND_ENTRIES)


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

    def sent(self, source: str) -> list[str]:
        side = self.browser if source == "browser" else self.server
        return [k for k in MATCH_KEYS if side[k] not in (ABSENT, NA)]

    def right(self, source: str) -> list[str]:
        side = self.browser if source == "browser" else self.server
        return [k for k in MATCH_KEYS if side[k] == OK]

    def wrong(self, source: str) -> list[str]:
        side = self.browser if source == "browser" else self.server
        return [k for k in MATCH_KEYS if side[k] == WRONG]


@dataclass
class MatchKeyCoverage:
    """Which match keys each event sent, from which side, and whether they were right."""

    events: list[EventCoverage]
    names: list[NameCoverage]
    customer_known: bool

    def name(self, event_name: str, platform: str = "meta") -> NameCoverage | None:
        return next((n for n in self.names if n.event_name == event_name
                     and n.platform == platform), None)

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


def match_key_coverage(result: MatchResult, customer: Customer | None = None, *,
                       platform: str = "meta") -> MatchKeyCoverage:
    """Match-key coverage of one test's events: per event and per event name."""
    checker = _Checker(result, customer, platform).run()
    events: list[EventCoverage] = []
    for event in checker.events:
        states = {}
        for key in MATCH_KEYS:
            mark = checker.marks.get((id(event), key))
            if mark is not None:
                states[key] = mark
            elif event.source == "browser" and key == "client_ip_address":
                states[key] = NA  # the pixel sends no IP field; Meta reads the connection
            elif key in ("fbp", "fbc") and event.source == "browser":
                states[key] = OK if checker.browser_cookie(event, key) else ABSENT
            elif key == "client_user_agent" and event.source == "browser":
                states[key] = OK if event.extra.get("user_agent") else ABSENT
            elif event.source == "server" and key in event.user_data and \
                    event.user_data[key] not in (None, "", []):
                states[key] = OK
            else:
                states[key] = ABSENT
        events.append(EventCoverage(event, states))
    names: dict[tuple[str, str], dict[str, list[EventCoverage]]] = {}
    for coverage in events:
        row = names.setdefault((coverage.event.platform, coverage.event.event_name or "?"),
                               {"browser": [], "server": []})
        row[coverage.event.source].append(coverage)
    rows = []
    for (plat, name), sides in names.items():
        rows.append(NameCoverage(
            plat, name,
            {k: _combine([c.states[k] for c in sides["browser"]]) if sides["browser"]
             else ABSENT for k in MATCH_KEYS},
            {k: _combine([c.states[k] for c in sides["server"]]) if sides["server"]
             else ABSENT for k in MATCH_KEYS},
            len(sides["browser"]), len(sides["server"]),
        ))
    return MatchKeyCoverage(events, rows, checker.customer is not None)


def coverage_table(coverage: MatchKeyCoverage, event_names: Iterable[str] | None = None, *,
                   width: int = 80) -> str:
    """Match-key coverage as text: one row per event name, two characters per key
    (browser, server). Fits ``width`` columns (80 by default)."""
    wanted = set(event_names) if event_names is not None else None
    rows = [n for n in coverage.names if wanted is None or n.event_name in wanted]
    labels = [_COLUMN.get(k, k) for k in MATCH_KEYS]
    # "  " + name + " " + one 3-wide cell per key: 18 name columns at 80
    name_width = max(8, width - 3 - 4 * len(labels) + 1)
    header = f"  {'event':<{name_width}} " + " ".join(f"{c:<3}" for c in labels)
    lines = ["match-key coverage" + ("" if coverage.customer_known
                                     else " (no customer declared: hashes unchecked)") + ":",
             header.rstrip()]
    if not rows:
        lines.append("  (no events)")
    for row in rows:
        cells = " ".join(f"{row.browser[k] + row.server[k]:<3}" for k in MATCH_KEYS)
        name = row.event_name if len(row.event_name) <= name_width else \
            row.event_name[:name_width - 1] + "…"
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
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["platform"], row["event_name"]), []).append(row)
    names = [NameCoverage(
        platform, name,
        {k: _merge_states([r["browser"].get(k, ABSENT) for r in group]) for k in MATCH_KEYS},
        {k: _merge_states([r["server"].get(k, ABSENT) for r in group]) for k in MATCH_KEYS},
        sum(r.get("browser_events", 0) for r in group),
        sum(r.get("server_events", 0) for r in group),
    ) for (platform, name), group in sorted(grouped.items())]
    return MatchKeyCoverage([], names, customer_known)
