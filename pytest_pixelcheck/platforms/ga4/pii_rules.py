"""Google's normalization and hashing of user-provided data, for GA4.

One set of rules serves both sides, only the encoding of the digest differs:

* gtag.js hashes in the browser and sends ``em=tv.1~em.<digest>~pn.<digest>...`` with
  the SHA-256 digest **base64url** encoded (public captures and Google's own test code
  name a "web hash base64" form; see FACTS.md);
* the Measurement Protocol's ``user_data`` wants the digest as **hex** (Google's
  "Send user-provided data with User-ID using the Measurement Protocol" page).

The rules (same page, and Google Ads' enhanced conversions): trim and lowercase;
email without whitespace and, for gmail.com/googlemail.com, without the periods of
the local part; phone in E.164 *with* the leading ``+``; first and last names
without digits and symbols; street without symbols. City, region, postal code and
country are sent as they are, never hashed.

Pure functions only, so tests and the PII checks can call them on any value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import unicodedata
from typing import Literal

Encoding = Literal["hex", "base64url"]

#: common match keys GA4 hashes, and the wire names each side uses for them
HASHED_KEYS = ("em", "ph", "fn", "ln", "street")
#: keys Google wants in the clear (address parts other than the street)
PLAIN_KEYS = ("ct", "st", "zp", "country")
#: browser ``em=`` token prefix -> common key (``fn0``/``ln0``/... are address 0)
BROWSER_KEYS: dict[str, str] = {
    "em": "em", "pn": "ph", "fn": "fn", "ln": "ln", "sa": "street",
    "ct": "ct", "rg": "st", "pc": "zp", "co": "country",
}
#: Measurement Protocol ``user_data`` field -> common key
SERVER_KEYS: dict[str, str] = {
    "sha256_email_address": "em", "sha256_phone_number": "ph",
    "sha256_first_name": "fn", "sha256_last_name": "ln", "sha256_street": "street",
    "city": "ct", "region": "st", "postal_code": "zp", "country": "country",
}

_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_B64URL_DIGEST = re.compile(r"^[A-Za-z0-9_-]{43}=?$")
_B64_DIGEST = re.compile(r"^[A-Za-z0-9+/]{43}=?$")


def _symbols_out(text: str, *, digits: bool) -> str:
    """Letters (any script) and spaces kept; digits kept only when ``digits``."""
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category.startswith("L") or ch == " " or (digits and category == "Nd"):
            kept.append(ch)
    return re.sub(r"\s+", " ", "".join(kept)).strip()


def normalize_email(raw: str) -> str:
    text = "".join(raw.split()).lower()
    local, at, domain = text.rpartition("@")
    if at and domain in _GMAIL_DOMAINS:
        # every period of the local part: "j.o.hn" and "john" are one gmail inbox
        # (a single .replace('.', '', 1) is a bug seen in the wild)
        return local.replace(".", "") + at + domain
    return text


def normalize_phone(raw: str) -> str:
    """E.164 with its ``+``: digits only, "00" international prefix read as "+".

    A national number without a country code cannot be made E.164 without knowing
    the country; it is returned as ``+<digits>`` (what Google's rule "remove all non
    digit characters, add + prefix" gives) so a check can see it is wrong.
    """
    text = raw.strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return ""
    if not text.startswith("+") and digits.startswith("00"):
        digits = digits[2:]
    return "+" + digits


def normalize(key: str, raw: str | None) -> str:
    """``raw`` as Google wants it before hashing (or, for plain keys, as sent).

    ``key``: a common match key (em, ph, fn, ln, street, ct, st, zp, country). An
    empty or missing value gives "". Raises ValueError for an unknown key.
    """
    if raw is None:
        return ""
    text = str(raw)
    if not text.strip():
        return ""
    if key == "em":
        return normalize_email(text)
    if key == "ph":
        return normalize_phone(text)
    if key in ("fn", "ln"):
        return _symbols_out(text, digits=False).lower()
    if key == "street":
        return _symbols_out(text, digits=True).lower()
    if key in ("ct", "st"):
        return _symbols_out(text, digits=False).lower()
    if key == "zp":
        return text.strip().lower()
    if key == "country":
        # ISO 3166-1 alpha-2, as Google's examples write it (co0.NO)
        return re.sub(r"[^A-Za-z]", "", text).upper()[:2]
    raise ValueError(f"unknown GA4 customer key {key!r}; known: "
                     f"{', '.join(HASHED_KEYS + PLAIN_KEYS)}")


def encode_digest(digest: bytes, encoding: Encoding = "hex") -> str:
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64url":
        # unpadded, as URL-safe tokens usually travel; digest_bytes accepts both
        return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
    raise ValueError(f"unknown digest encoding {encoding!r} (hex or base64url)")


def hash_value(key: str, raw: str | None, encoding: Encoding = "hex") -> str:
    """The value GA4 expects for ``key``: the SHA-256 of the normalized value in
    ``encoding`` for hashed keys, the normalized value itself for plain ones ("" for
    an empty value)."""
    normalized = normalize(key, raw)
    if not normalized or key in PLAIN_KEYS:
        return normalized
    return encode_digest(hashlib.sha256(normalized.encode("utf-8")).digest(), encoding)


def digest_bytes(value: object) -> bytes | None:
    """The 32 bytes of a SHA-256 digest written as hex or base64/base64url (padded or
    not); None for anything else (a raw value, a truncated digest, a number)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _HEX64.match(text):
        return bytes.fromhex(text)
    if _B64URL_DIGEST.match(text) or _B64_DIGEST.match(text):
        padded = text.rstrip("=") + "="
        try:
            decoded = (base64.urlsafe_b64decode(padded) if _B64URL_DIGEST.match(text)
                       else base64.b64decode(padded, validate=True))
        except (binascii.Error, ValueError):
            return None
        return decoded if len(decoded) == 32 else None
    return None


def digest_encoding(value: object) -> Encoding | None:
    """How a digest is written: "hex", "base64url", or None when it is not one."""
    if not isinstance(value, str) or digest_bytes(value) is None:
        return None
    return "hex" if _HEX64.match(value.strip()) else "base64url"


def as_hex(value: object) -> object:
    """A digest in any encoding as lowercase hex; anything else unchanged (so a raw
    value stays visible as raw to the PII checks)."""
    digest = digest_bytes(value)
    return digest.hex() if digest is not None else value


#: (key, raw, normalized, sha256 hex): checked by the tests; the hex digests of the
#: first two are the ones PLATFORMS.md section 10 lists
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("em", "test@test.com", "test@test.com",
     "f660ab912ec121d1b1e928a0bb4bc61b15f5ad44d5efdc4e1c92a25e99b8e44a"),
    ("ph", "+1 (650) 555-1234", "+16505551234",
     hashlib.sha256(b"+16505551234").hexdigest()),
    ("em", " John.Smith@GMail.com ", "johnsmith@gmail.com",
     hashlib.sha256(b"johnsmith@gmail.com").hexdigest()),
    ("em", "John.Smith@Example.com", "john.smith@example.com",
     hashlib.sha256(b"john.smith@example.com").hexdigest()),
    ("ph", "0044 20 7946 0000", "+442079460000",
     hashlib.sha256(b"+442079460000").hexdigest()),
    ("fn", "  Zoë-Anne 2 ", "zoëanne", hashlib.sha256("zoëanne".encode()).hexdigest()),
)
