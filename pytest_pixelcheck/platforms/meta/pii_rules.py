"""Meta's customer-data rules: how each match key is normalized before hashing.

The rules follow Meta's server-side SDK, facebook-python-business-sdk,
facebook_business/adobjects/serverside/normalize.py (``Normalize.normalize_field``),
and the customer information parameters page of the Conversions API docs. Where the
two differ, both forms count as correct (``acceptable_forms``); ``normalize`` returns
the SDK's. Each rule is a list of named steps, so a hash of partly normalized input
can say which step was skipped (``mistakes``).

Pure functions and data: the platform module imports this while the registry loads.
"""

from __future__ import annotations

import datetime as _dt
import functools
import itertools
import re
from collections.abc import Callable

#: customer keys Meta wants hashed; external_id travels raw or hashed (hashing it is
#: only recommended)
HASHED = frozenset({"em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"})

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


def steps(key: str, country: str | None) -> list[Step]:
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


def country_code(country: str | None) -> str | None:
    """A declared country as the ISO code the rules key on ("United States" -> "us")."""
    return _country_code(country) if country else None


def _problem(key: str, value: str) -> str | None:
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


def _apply(key: str, raw: str, country: str | None) -> tuple[list[Step], str]:
    rule = steps(key, country_code(country))
    return rule, functools.reduce(lambda acc, step: step[1](acc), rule, raw)


def normalize(key: str, raw: str, country: str | None = None) -> str:
    """``raw``, a customer's value of match key ``key`` as typed, normalized for
    hashing. ``country`` (as declared) completes a national phone number and picks
    the ZIP rule. Raises ``ValueError`` for a value that cannot be normalized (an
    invalid date, a gender other than f/m, ...)."""
    _, result = _apply(key, raw, country)
    problem = _problem(key, result)
    if problem:
        from ...pii import KEY_WORD, mask  # the core imports the registry: not at load

        raise ValueError(f"{KEY_WORD[key]} {mask(raw, key)} {problem}")
    return result


def acceptable_forms(key: str, raw: str, country: str | None = None) -> list[str]:
    """Every normalized form that counts as right: the SDK's, and where Meta's docs
    ask for more (no punctuation in names, cities and states), that one too."""
    first = normalize(key, raw, country)
    if not first:
        return []
    forms = [first]
    if key in ("fn", "ln", "ct", "st"):
        letters = _letters_only(first)
        if key == "st":
            letters = _US_STATES.get(letters, letters)
        if letters and letters not in forms:
            forms.append(letters)
    if key == "external_id":
        # hashing is only recommended and case may matter to the advertiser's ids
        trimmed = raw.strip()
        if trimmed not in forms:
            forms.append(trimmed)
    return forms


def mistakes(key: str, raw: str, country: str | None = None) -> list[tuple[str, str]]:
    """(partly normalized value, what was skipped) for each plausible mistake,
    smallest mistake first."""
    rule, right = _apply(key, raw, country)
    out: list[tuple[str, str]] = []
    seen = {right}
    for size in range(1, len(rule) + 1):
        for skipped in itertools.combinations(range(len(rule)), size):
            value = raw
            for index, (_, apply) in enumerate(rule):
                if index not in skipped:
                    value = apply(value)
            if value not in seen:
                seen.add(value)
                out.append((value, " and ".join(rule[i][0] for i in skipped)))
    if key == "ph":
        out.append(("+" + right, "phone kept its +"))
        digits = _phone_digits(right)
        for cut in (1, 2, 3):
            if len(digits) - cut >= 6:
                out.append((digits[cut:], "missing country code"))
    return [(v, label) for v, label in out if v.strip()]


#: each key's rule in a few words, for fixes
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

