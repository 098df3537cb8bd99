"""Pinterest's customer-data rules: which match keys are hashed, and how each value is
normalized before SHA-256.

Pure functions and data, no imports from the rest of pixelcheck, so the core's PII
checks can read them (``PII_RULES``, ``normalize``, ``hash_value``) without caring how
Pinterest's events are decoded.

Sources (see FACTS.md): the field texts of Pinterest's OpenAPI description and of its
official Python client (``ConversionEventsUserData``): em "Sha256 hashes of lowercase
version of user's email addresses"; ph "only digits with country code, area code, and
number. Remove any symbols, letters, spaces and leading zeros"; fn/ln "in lowercase";
ct "in lowercase, and without spaces or punctuation"; st "two-letter code in
lowercase"; zp "only digits"; country "two-character ISO-3166 country code ... in
lowercase"; ge "f" or "m" or "n"; db "year, month, and day". stape's Pinterest tag
(trim + lowercase, phone without ``' ', '-', '(', ')', '+'``, city without spaces,
``^[A-Fa-f0-9]{64}$`` passes through as already hashed).

The rule that differs from TikTok's and Google's and trips people up: Pinterest hashes
the phone as **digits only, no "+"** (``16505551212``), like Meta.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

HEX64 = re.compile(r"^[A-Fa-f0-9]{64}$")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_hashed(value: Any) -> bool:
    """A 64-hex string: Pinterest's clients (and stape) pass these through unchanged."""
    return isinstance(value, str) and bool(HEX64.fullmatch(value.strip()))


def norm_email(raw: str) -> str:
    return raw.strip().lower()


def norm_phone(raw: str) -> str:
    """Digits only, no leading zeros: ``"+1 (650) 555-1212"`` -> ``"16505551212"``.

    Pinterest's text asks to "remove any symbols, letters, spaces and leading zeros",
    which also drops the ``00`` international call prefix (``0044 20...`` -> ``4420...``).
    A number typed without its country code cannot be repaired here: it is kept as given
    and will not match.
    """
    return re.sub(r"[^0-9]", "", raw).lstrip("0")


def norm_name(raw: str) -> str:
    """fn, ln: lowercase (trimmed). Pinterest says nothing about inner spaces."""
    return raw.strip().lower()


def norm_city(raw: str) -> str:
    """ct: lowercase, "without spaces or punctuation" (``"Menlo Park"`` -> ``menlopark``)."""
    return re.sub(r"[\W_]", "", raw.strip().lower())


def norm_state(raw: str) -> str:
    """st: the two-letter code, lowercase (a code given with a dot or space is cleaned)."""
    return re.sub(r"[^a-z]", "", raw.strip().lower())


def norm_zip(raw: str) -> str:
    """zp: "only digits". A postcode with letters (UK, CA) has no digits-only form, so it
    keeps its letters and digits, lowercased, without spaces: our choice (FACTS.md)."""
    text = raw.strip().lower()
    if re.search(r"[a-z]", text):
        return re.sub(r"[^a-z0-9]", "", text)
    return re.sub(r"[^0-9]", "", text)


def norm_country(raw: str) -> str:
    return re.sub(r"[^a-z]", "", raw.strip().lower())


def norm_gender(raw: str) -> str:
    """ge: "f", "m" or "n" (non-binary); the spelled-out words are shortened."""
    text = raw.strip().lower()
    words = {"female": "f", "woman": "f", "male": "m", "man": "m", "non-binary": "n",
             "nonbinary": "n"}
    return words.get(text, text[:1])


def norm_birthday(raw: str) -> str:
    """db: "year, month, and day": ``1990-04-07`` / ``1990/4/7`` -> ``19900407``."""
    text = raw.strip()
    parts = re.split(r"[^0-9]+", text)
    parts = [p for p in parts if p]
    if len(parts) == 3 and len(parts[0]) == 4:
        year, month, day = parts
        return f"{year}{int(month):02d}{int(day):02d}"
    return re.sub(r"[^0-9]", "", text)


def norm_external_id(raw: str) -> str:
    """external_id: hashed as given (trimmed); Pinterest names no other step."""
    return raw.strip()


def norm_identifier(raw: str) -> str:
    """click_id (the _epik value), IP, user agent: sent exactly as the browser has them."""
    return raw


#: common key -> how Pinterest wants it. ``hashed``: an array of SHA-256 hex of
#: ``normalize(raw)`` in ``user_data``; ``False``: a plain string sent as is.
PII_RULES: dict[str, dict[str, Any]] = {
    "em": {"hashed": True, "normalize": norm_email, "rule": "trim, lowercase"},
    "ph": {"hashed": True, "normalize": norm_phone,
           "rule": "digits only with the country code: no '+', spaces, symbols or leading "
                   "zeros"},
    "fn": {"hashed": True, "normalize": norm_name, "rule": "trim, lowercase"},
    "ln": {"hashed": True, "normalize": norm_name, "rule": "trim, lowercase"},
    "ct": {"hashed": True, "normalize": norm_city,
           "rule": "lowercase, no spaces or punctuation"},
    "st": {"hashed": True, "normalize": norm_state, "rule": "two-letter code, lowercase"},
    "zp": {"hashed": True, "normalize": norm_zip, "rule": "digits only"},
    "country": {"hashed": True, "normalize": norm_country,
                "rule": "ISO-3166 alpha-2 code, lowercase"},
    "ge": {"hashed": True, "normalize": norm_gender, "rule": "'f', 'm' or 'n'"},
    "db": {"hashed": True, "normalize": norm_birthday, "rule": "YYYYMMDD"},
    "external_id": {"hashed": True, "normalize": norm_external_id,
                    "rule": "the advertiser's user id, trimmed"},
    "click_id": {"hashed": False, "normalize": norm_identifier,
                 "rule": "the _epik cookie (or epik= URL parameter) exactly, never hashed"},
    "client_ip_address": {"hashed": False, "normalize": norm_identifier,
                          "rule": "the visitor's public IP address, never hashed"},
    "client_user_agent": {"hashed": False, "normalize": norm_identifier,
                          "rule": "the visitor's User-Agent header, never hashed"},
}

#: the customer keys (common names) Pinterest wants as SHA-256 hex, and those never hashed
HASHED_KEYS: tuple[str, ...] = tuple(k for k, r in PII_RULES.items() if r["hashed"])
NEVER_HASHED: tuple[str, ...] = ("click_id", "client_ip_address", "client_user_agent",
                                 "partner_id")
#: ``user_data`` keys that hold hashes but are no customer keys (device ad ids)
OTHER_HASHED_FIELDS: tuple[str, ...] = ("hashed_maids",)


def normalize(key: str, raw: str) -> str:
    """``raw`` as Pinterest wants it before hashing (or, for plain keys, as sent)."""
    normalizer: Callable[[str], str] = PII_RULES[key]["normalize"]
    return normalizer(raw)


def hash_value(key: str, raw: str) -> str:
    """What Pinterest expects on the wire for ``raw``: SHA-256 hex of the normalized
    value for hashed keys (a 64-hex value passes through, lowercased), the value as is
    for plain keys."""
    if not PII_RULES[key]["hashed"]:
        return normalize(key, raw)
    if is_hashed(raw):
        return raw.strip().lower()
    return sha256_hex(normalize(key, raw))


#: (key, raw input, normalized, SHA-256 hex Pinterest expects), checked with hashlib.
#: The first pair is PLATFORMS.md section 10's: OMNI's Pinterest sample carries
#: ``pd.em = f660ab91...`` = sha256("test@test.com"). The phone rows show the "+" split:
#: Pinterest drops the "+", so "+1 650..." and "1 650..." hash alike.
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("em", "test@test.com", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("em", " Test@Test.COM ", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("ph", "15555555555", "15555555555",
     "009875cdd7e8a0abe6dc0444d693ff435599e9c68793dac5bc277066d4bc0dc3"),
    ("ph", "+16505551234", "16505551234",
     "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599"),
    ("ph", "+1 (650) 555-1234", "16505551234",
     "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599"),
)
#: SHA-256 of "+16505551234" (E.164 with the plus): TikTok's and Google's form of the
#: same phone, which Pinterest would match to nobody
PHONE_WITH_PLUS_SHA256 = "a2996076d3ad4af5dc818b908b3d8e354f26ededf7df0e0aa6ac354143805ee0"
