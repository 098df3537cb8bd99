"""LinkedIn's customer-data rules: which match keys are hashed and how each is
normalized first.

Pure functions and data, no imports from the rest of pixelcheck, so the core's PII
checks (``customer_values``, ``hashed_keys``, ``expected_value``) and the tests can
read them without caring how LinkedIn's events are decoded.

What LinkedIn takes (FACTS.md has the sources):

* ``user.userIds[]`` of the Conversions API: ``SHA256_EMAIL`` is the SHA-256 hex of
  the trimmed, lower-cased email (stape's tag trims, Segment only lower-cases; the
  two agree on any email typed without surrounding spaces). The other id types
  travel plain: ``LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID`` (the ``li_fat_id`` click
  id), ``PLAINTEXT_IP_ADDRESS``, ``ACXIOM_ID``, ``ORACLE_MOAT_ID``, ``GOOGLE_AID``;
  ``SHA256_IP_ADDRESS`` is hashed like the email.
* ``user.userInfo``: ``firstName``, ``lastName``, ``title``, ``companyName``,
  ``countryCode`` in the **clear**. A hashed name matches nobody.
* There is **no phone field** at all, unlike Meta, TikTok or Google.
* The Insight Tag hashes the email ``lintrk('setUserData', {email})`` gets in the
  browser and sends it as ``hem`` in its ``/wa/`` signals.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

HEX64 = re.compile(r"^[A-Fa-f0-9]{64}$")

#: ``userIds[].idType`` values that carry a SHA-256 hex digest
HASHED_ID_TYPES = frozenset({"SHA256_EMAIL", "SHA256_IP_ADDRESS"})
#: every ``idType`` LinkedIn documents (Segment's UserID type, stape's tag)
ID_TYPES = ("SHA256_EMAIL", "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "ACXIOM_ID",
            "ORACLE_MOAT_ID", "PLAINTEXT_IP_ADDRESS", "SHA256_IP_ADDRESS", "GOOGLE_AID")
CLICK_ID_TYPE = "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID"

#: common customer key -> where LinkedIn carries it; ``hashed`` says how it travels
PII_RULES: dict[str, dict[str, Any]] = {
    "em": {"hashed": True, "rule": "trim, lowercase, then SHA-256 hex",
           "fields": {"api": "user.userIds[idType=SHA256_EMAIL].idValue",
                      "browser": "hem of the /wa/ signals (lintrk('setUserData'))"}},
    "fn": {"hashed": False, "rule": "plain text, as typed (trimmed)",
           "fields": {"api": "user.userInfo.firstName"}},
    "ln": {"hashed": False, "rule": "plain text, as typed (trimmed)",
           "fields": {"api": "user.userInfo.lastName"}},
    "country": {"hashed": False, "rule": "ISO 3166-1 alpha-2, plain",
                "fields": {"api": "user.userInfo.countryCode"}},
    "external_id": {"hashed": False, "rule": "the advertiser's own id, plain; LinkedIn "
                                             "honours one value",
                    "fields": {"api": "user.externalIds[0]"}},
}
HASHED_KEYS: tuple[str, ...] = tuple(k for k, r in PII_RULES.items() if r["hashed"])
#: userInfo field -> common key
KEY_OF_USER_INFO = {"firstName": "fn", "lastName": "ln", "countryCode": "country"}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_hashed(value: Any) -> bool:
    return isinstance(value, str) and bool(HEX64.fullmatch(value.strip()))


def norm_email(raw: str) -> str:
    return raw.strip().lower()


def norm_plain(raw: str) -> str:
    return raw.strip()


def norm_country(raw: str) -> str:
    return raw.strip().upper()


_NORMALIZE = {"em": norm_email, "fn": norm_plain, "ln": norm_plain,
              "country": norm_country, "external_id": norm_plain}


def normalize(key: str, raw: str) -> str:
    """``raw`` as LinkedIn wants it before hashing (or, for plain keys, as sent)."""
    return _NORMALIZE[key](raw)


def hash_value(key: str, raw: str) -> str:
    """What LinkedIn expects on the wire for a customer's ``raw`` value of ``key``:
    the SHA-256 hex of the normalized email (a 64-hex value passes through,
    lower-cased), the normalized value itself for the keys LinkedIn takes plain."""
    if key not in PII_RULES:
        raise KeyError(f"LinkedIn has no rule for {key!r}")
    if not PII_RULES[key]["hashed"]:
        return normalize(key, raw)
    if is_hashed(raw):
        return raw.strip().lower()
    return sha256_hex(normalize(key, raw))


#: (key, raw input, normalized, what LinkedIn expects); the email digest is the one
#: PLATFORMS.md section 10 checked with hashlib
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("em", "test@test.com", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("em", "  Test@Test.COM ", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("fn", " Jane ", "Jane", "Jane"),
    ("country", "us", "US", "US"),
)
