"""Snapchat's customer-data rules: which keys are hashed and how each is normalized.

Pure functions and data, no imports from the rest of pixelcheck, so the core's PII
checks (and the shop's tracker) can read them without caring how Snap events are
decoded.

Sources (FACTS.md says which is confirmed by what):

* Snap's BestPractices page: email trimmed and lowercased; phone with its country
  code, a leading ``00`` and a leading ``0`` of the national number removed, and
  whitespace, ``(``, ``)``, ``+`` and ``-`` dropped, i.e. **digits only, no '+'**;
  SHA-256 as lowercase hex, always after normalizing.
* The Snap Pixel's own hashes in Omnibug's recorded hit: ``u_hem`` =
  sha256("test@test.com") and ``u_hpn`` = sha256("15555555555"), the phone without
  its ``+`` (PLATFORMS.md section 10).
* Snap's official Python SDK (``snap-business-sdk`` 1.0.0, ``capi_utils``): names,
  city, state and zip trimmed and lowercased before hashing; phone digits with the
  country code.

The rule that differs from TikTok's and trips people up: Snap hashes the phone's
digits **without** the ``+`` (``16505551212``), like Meta and unlike TikTok.
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
    """A 64-hex string: already a SHA-256 digest, passed through unchanged."""
    return isinstance(value, str) and bool(HEX64.fullmatch(value.strip()))


def norm_email(raw: str) -> str:
    return raw.strip().lower()


def norm_phone(raw: str) -> str:
    """Digits only, no '+': ``"+1 (650) 555-1212"`` -> ``"16505551212"``.

    Leading zeros go: a ``00`` international prefix is not part of the number, and
    Snap drops the national trunk ``0`` too (Segment's Snap destination does the same
    with ``replace(/\\D|^0+/g, '')``). A number typed without its country code cannot
    be repaired here and will simply not match.
    """
    return re.sub(r"[^0-9]", "", raw).lstrip("0")


def norm_trim_lower(raw: str) -> str:
    """Names, city, state, zip, external_id: trimmed and lowercased (Snap's SDK)."""
    return raw.strip().lower()


def norm_country(raw: str) -> str:
    """ISO-3166 alpha-2, lowercased: ``" US "`` -> ``"us"``."""
    return re.sub(r"[^a-z]", "", raw.lower())[:2]


def norm_gender(raw: str) -> str:
    """``f`` or ``m`` (Segment maps female/male to them)."""
    text = raw.strip().lower()
    return {"female": "f", "male": "m"}.get(text, text[:1])


def norm_identifier(raw: str) -> str:
    """sc_cookie1, sc_click_id, IP, User-Agent: sent exactly as the browser has them."""
    return raw


#: common key -> how Snap wants it. ``hashed``: must be SHA-256 hex of
#: ``normalize(raw)``; ``False``: sent as is. ``fields`` names the key in each of
#: Snap's shapes: the pixel hit (``u_*``), Conversions API v3 ``user_data`` and the
#: legacy v2 event (the shape Snap's Python SDK still sends).
PII_RULES: dict[str, dict[str, Any]] = {
    "em": {"hashed": True, "normalize": norm_email, "rule": "trim, lowercase",
           "fields": {"browser": "u_hem", "v3": "em", "v2": "hashed_email"}},
    "ph": {"hashed": True, "normalize": norm_phone,
           "rule": "digits only with the country code, no '+' and no leading 0 or 00",
           "fields": {"browser": "u_hpn", "v3": "ph", "v2": "hashed_phone_number"}},
    "fn": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
           "fields": {"v3": "fn", "v2": "hashed_first_name_sha"}},
    "ln": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
           "fields": {"v3": "ln", "v2": "hashed_last_name_sha"}},
    "ct": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
           "fields": {"v3": "ct", "v2": "hashed_city_sha"}},
    "st": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
           "fields": {"v3": "st", "v2": "hashed_state_sha"}},
    "zp": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
           "fields": {"v3": "zp", "v2": "hashed_zip"}},
    "country": {"hashed": True, "normalize": norm_country,
                "rule": "ISO-3166 alpha-2, lowercase", "fields": {"v3": "country"}},
    "ge": {"hashed": True, "normalize": norm_gender, "rule": "f or m",
           "fields": {"v3": "ge"}},
    "external_id": {"hashed": True, "normalize": norm_trim_lower, "rule": "trim, lowercase",
                    "fields": {"v3": "external_id"}},
    "sc_cookie1": {"hashed": False, "normalize": norm_identifier,
                   "rule": "the _scid cookie value exactly, never hashed",
                   "fields": {"v3": "sc_cookie1", "v2": "uuid_c1"}},
    "sc_click_id": {"hashed": False, "normalize": norm_identifier,
                    "rule": "the ScCid landing-page parameter exactly, never hashed",
                    "fields": {"v3": "sc_click_id", "v2": "click_id"}},
    "client_ip_address": {"hashed": False, "normalize": norm_identifier,
                          "rule": "the visitor's IP address in the clear (v3; the v2 "
                                  "API wanted hashed_ip_address)",
                          "fields": {"v3": "client_ip_address"}},
    "client_user_agent": {"hashed": False, "normalize": norm_identifier,
                          "rule": "the visitor's User-Agent header, never hashed",
                          "fields": {"v3": "client_user_agent", "v2": "user_agent"}},
}

#: keys that must arrive as SHA-256 hex, and those that must never be hashed
HASHED_KEYS: tuple[str, ...] = tuple(k for k, r in PII_RULES.items() if r["hashed"])
NEVER_HASHED: tuple[str, ...] = tuple(k for k, r in PII_RULES.items() if not r["hashed"])

#: wire field (any shape) -> common key
KEY_OF_FIELD: dict[str, str] = {
    field: key for key, rule in PII_RULES.items() for field in rule["fields"].values()
}
KEY_OF_FIELD.update({key: key for key in PII_RULES})


def normalize(key: str, raw: str) -> str:
    """``raw`` as Snap wants it before hashing (or, for plain keys, as sent). ``key``
    is a common key (``ph``) or one of Snap's field names (``u_hpn``)."""
    rule = PII_RULES[KEY_OF_FIELD.get(key, key)]
    normalizer: Callable[[str], str] = rule["normalize"]
    return normalizer(raw)


def hash_value(key: str, raw: str) -> str:
    """What Snap expects on the wire for ``raw``: the SHA-256 hex of the normalized
    value for hashed keys (a 64-hex value passes through, lowercased), the value as
    is for the plain ones."""
    common = KEY_OF_FIELD.get(key, key)
    if not PII_RULES[common]["hashed"]:
        return normalize(common, raw)
    if is_hashed(raw):
        return raw.strip().lower()
    return sha256_hex(normalize(common, raw))


#: Published vectors (PLATFORMS.md section 10, checked with hashlib):
#: (key, raw input, normalized, SHA-256 hex Snap expects)
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("ph", "15555555555", "15555555555",
     "009875cdd7e8a0abe6dc0444d693ff435599e9c68793dac5bc277066d4bc0dc3"),
    ("ph", "+1 (555) 555-5555", "15555555555",
     "009875cdd7e8a0abe6dc0444d693ff435599e9c68793dac5bc277066d4bc0dc3"),
    ("ph", "+1 (650) 555-1212", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("em", "test@test.com", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("em", " Test@Test.COM ", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
)
#: SHA-256 of "+16505551212": TikTok's form of the same phone, which Snap never matches
PHONE_WITH_PLUS_SHA256 = "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"
