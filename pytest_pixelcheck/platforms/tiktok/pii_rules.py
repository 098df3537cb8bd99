"""TikTok's customer-data rules: which keys are hashed, how each is normalized first.

Pure functions and data, no imports from the rest of pixelcheck, so the core's PII
checks can read them (``PII_RULES``, ``normalize``, ``hash_value``) without caring
how TikTok's events are decoded.

Sources (see FACTS.md): Segment's tiktok-conversions / tiktok-pixel formatters
(email lowercased; phone ``+`` + digits, cut to 15 characters; external_id
lowercased; first/last name and zip with whitespace removed, lowercased;
city/state/country stripped to ``[a-z0-9]`` and *not* hashed), stape's TikTok tag
(trim + lowercase, and ``^[A-Fa-f0-9]{64}$`` passes through as already hashed),
and the official SDK fixture (the SDK hashes nothing: the caller does).

The one rule that differs from Meta's and trips people up: TikTok hashes the phone
in E.164 **with** the ``+`` (``+16505551234``), Meta hashes the digits alone.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

HEX64 = re.compile(r"^[A-Fa-f0-9]{64}$")
#: E.164 allows 15 digits; with the "+" that is the 15-character cut Segment applies
#: (Segment cuts "+" + digits to 15 characters, i.e. 14 digits: we follow it)
_PHONE_MAX_CHARS = 15


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_hashed(value: Any) -> bool:
    """A 64-hex string: TikTok (and stape) pass these through unchanged."""
    return isinstance(value, str) and bool(HEX64.fullmatch(value.strip()))


def norm_email(raw: str) -> str:
    return raw.strip().lower()


def norm_phone(raw: str) -> str:
    """E.164 with the plus: ``"+1 (650) 555-1234"`` -> ``"+16505551234"``.

    ``00`` in front is the international call prefix, not part of the number (the
    same reading as Meta's rule and as any dialler); a number written without a
    country code cannot be repaired here, so it is kept as given and will not match.
    """
    digits = re.sub(r"[^0-9]", "", raw)
    if digits.startswith("00") and not raw.strip().startswith("+"):
        digits = digits[2:]
    return ("+" + digits)[:_PHONE_MAX_CHARS] if digits else ""


def norm_external_id(raw: str) -> str:
    return raw.strip().lower()


def norm_no_spaces(raw: str) -> str:
    """first_name, last_name, zip_code: every whitespace removed, lowercased."""
    return re.sub(r"\s", "", raw).lower()


def norm_address(raw: str) -> str:
    """city, state, country: only ``[a-z0-9]`` kept, lowercased (sent in the clear)."""
    return re.sub(r"[^A-Za-z0-9]", "", raw).lower()


def norm_identifier(raw: str) -> str:
    """ttp, ttclid, ip, user_agent: sent exactly as the browser has them."""
    return raw


#: common key -> how TikTok wants it. ``hashed``: must be SHA-256 hex of
#: ``normalize(raw)``; ``False``: must be sent as is. ``fields`` names the key in each
#: of TikTok's shapes: the pixel's ``context.user``, Events API 2.0's ``data[].user``
#: and 1.0's ``context.user`` (``context.ad.callback`` for ttclid).
PII_RULES: dict[str, dict[str, Any]] = {
    "em": {"hashed": True, "normalize": norm_email, "rule": "trim, lowercase",
           "fields": {"browser": "email", "v2": "email", "v1": "email"}},
    "ph": {"hashed": True, "normalize": norm_phone,
           "rule": "E.164 with the '+': '+' then the digits only (no spaces or dashes)",
           "fields": {"browser": "phone_number", "v2": "phone", "v1": "phone_number"}},
    "external_id": {"hashed": True, "normalize": norm_external_id, "rule": "trim, lowercase",
                    "fields": {"browser": "external_id", "v2": "external_id",
                               "v1": "external_id"}},
    "fn": {"hashed": True, "normalize": norm_no_spaces,
           "rule": "remove whitespace, lowercase",
           "fields": {"browser": "first_name", "v2": "first_name", "v1": "first_name"}},
    "ln": {"hashed": True, "normalize": norm_no_spaces,
           "rule": "remove whitespace, lowercase",
           "fields": {"browser": "last_name", "v2": "last_name", "v1": "last_name"}},
    "zp": {"hashed": True, "normalize": norm_no_spaces,
           "rule": "remove whitespace, lowercase",
           "fields": {"browser": "zip_code", "v2": "zip_code", "v1": "zip_code"}},
    "ct": {"hashed": False, "normalize": norm_address,
           "rule": "letters and digits only, lowercase, NOT hashed",
           "fields": {"browser": "city", "v2": "city", "v1": "city"}},
    "st": {"hashed": False, "normalize": norm_address,
           "rule": "letters and digits only, lowercase, NOT hashed",
           "fields": {"browser": "state", "v2": "state", "v1": "state"}},
    "country": {"hashed": False, "normalize": norm_address,
                "rule": "letters and digits only, lowercase, NOT hashed",
                "fields": {"browser": "country", "v2": "country", "v1": "country"}},
    "ttp": {"hashed": False, "normalize": norm_identifier,
            "rule": "the _ttp cookie value exactly, never hashed",
            "fields": {"browser": "anonymous_id", "v2": "ttp", "v1": "ttp"}},
    "ttclid": {"hashed": False, "normalize": norm_identifier,
               "rule": "the ttclid landing-page parameter exactly, never hashed",
               "fields": {"browser": "ad.callback", "v2": "ttclid", "v1": "ad.callback"}},
    "ip": {"hashed": False, "normalize": norm_identifier,
           "rule": "the visitor's public IP address, never hashed",
           "fields": {"v2": "ip", "v1": "ip"}},
    "user_agent": {"hashed": False, "normalize": norm_identifier,
                   "rule": "the visitor's User-Agent header, never hashed",
                   "fields": {"v2": "user_agent", "v1": "user_agent"}},
}

#: keys that must arrive as SHA-256 hex, and those that must never be hashed
HASHED_KEYS: tuple[str, ...] = tuple(k for k, r in PII_RULES.items() if r["hashed"])
NEVER_HASHED: tuple[str, ...] = ("ttp", "ttclid", "ip", "user_agent")

#: Events API 2.0 ``user`` field -> common key (1.0 and the pixel say phone_number)
KEY_OF_FIELD: dict[str, str] = {
    "email": "em", "phone": "ph", "phone_number": "ph", "external_id": "external_id",
    "first_name": "fn", "last_name": "ln", "zip_code": "zp", "city": "ct", "state": "st",
    "country": "country", "ttp": "ttp", "ttclid": "ttclid", "ip": "ip",
    "user_agent": "user_agent",
}


def normalize(key: str, raw: str) -> str:
    """``raw`` as TikTok wants it before hashing (or, for unhashed keys, as sent).
    ``key`` is a common key (``em``) or TikTok's field name (``phone_number``)."""
    rule = PII_RULES[KEY_OF_FIELD.get(key, key)]
    normalizer: Callable[[str], str] = rule["normalize"]
    return normalizer(raw)


def hash_value(key: str, raw: str) -> str:
    """What TikTok expects on the wire for ``raw``: SHA-256 hex of the normalized value
    for hashed keys (a 64-hex value passes through, lowercased), the normalized value
    for keys sent in the clear."""
    common = KEY_OF_FIELD.get(key, key)
    if not PII_RULES[common]["hashed"]:
        return normalize(common, raw)
    if is_hashed(raw):
        return raw.strip().lower()
    return sha256_hex(normalize(common, raw))


#: Published vectors (PLATFORMS.md section 10, digests checked with hashlib): the "+"
#: split. TikTok hashes E.164 with the plus, so both spellings of the number normalize
#: to "+16505551234"; the digits-only digest is what a Meta-style normalizer sends,
#: and TikTok would match nobody with it.
#: (key, raw input, normalized, SHA-256 hex TikTok expects)
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("ph", "+16505551234", "+16505551234",
     "a2996076d3ad4af5dc818b908b3d8e354f26ededf7df0e0aa6ac354143805ee0"),
    ("ph", "16505551234", "+16505551234",
     "a2996076d3ad4af5dc818b908b3d8e354f26ededf7df0e0aa6ac354143805ee0"),
    ("ph", "+1 (650) 555-1212", "+16505551212",
     "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"),
    ("em", "test@test.com", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
)
#: SHA-256 of "16505551234" (digits, no plus): Meta's form of the same phone
PHONE_WITHOUT_PLUS_SHA256 = "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599"
