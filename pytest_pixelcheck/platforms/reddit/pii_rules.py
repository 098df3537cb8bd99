"""Reddit's customer-data rules: which match keys are hashed and how each is
canonicalized first.

Pure functions and data, no imports from the rest of pixelcheck, so the core's PII
checks, the shop's tracker and the tests can all read them.

Sources (FACTS.md has the details):

* Reddit's help page on manual advanced matching (via a mirror): email lowercased,
  the ``+alias`` dropped, "remove all non-alphanumeric characters from the
  username", then SHA-256 as lowercase hex. Its vector: ``Al.ice$+Apple@Example.Com``
  and ``alice@example.com`` -> ``ff8d9819…``.
* Reddit's Conversions API docs, as captured in Segment's destination: phone in
  E.164 *with* the ``+`` (``+15554441234`` -> ``e5b124c5…``), extensions dropped;
  external_id hashed as given (``customer12345`` -> ``a4cc2fc5…``); IDFA upper
  case, AAID lower case.
* "Signals can be sent unhashed or pre-hashed" (same pages): Reddit *accepts* a raw
  email, so the sink never refuses one; pixelcheck still reports it, since the
  recommended form is the digest and a raw email is customer data on the wire.

Segment's own ``canonicalizeEmail`` removes only dots and the alias and keeps other
symbols (``$``): for an address like the vector's it hashes to something else. These
rules follow Reddit's text, which the vector confirms.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

HEX64 = re.compile(r"^[A-Fa-f0-9]{64}$")
#: what Segment's cleanPhoneNumber cuts a phone number at (an extension follows)
_EXTENSION_WORDS = ("ext", "x", "anexo", "#", "poste", "int")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_hashed(value: Any) -> bool:
    """A 64-hex string: Reddit takes these as pre-hashed and passes them through."""
    return isinstance(value, str) and bool(HEX64.fullmatch(value.strip()))


def norm_email(raw: str) -> str:
    """``" Al.ice$+Apple@Example.Com "`` -> ``"alice@example.com"``.

    Only the username loses its alias and symbols; the domain is kept (lowercased). A
    value without ``@`` is not an address: Reddit ignores it, and it is kept as given
    (lowercased) so a check can still show what was hashed.
    """
    text = raw.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at or not local:
        return text
    local = local.split("+", 1)[0]
    # "non-alphanumeric": ASCII letters and digits (what the help page's example keeps)
    local = re.sub(r"[^a-z0-9]", "", local)
    return f"{local}@{domain.strip()}"


def norm_phone(raw: str) -> str:
    """E.164 with the plus: ``"+1 (650) 555-1212 ext. 7"`` -> ``"+16505551212"``.

    A leading ``00`` without ``+`` is the international call prefix, not part of the
    number (our reading; Segment keeps it and would send ``+00…``).
    """
    text = raw.strip()
    lower = text.lower()
    for word in _EXTENSION_WORDS:
        index = lower.find(word)
        if index != -1:
            text = text[:index]
            break
    digits = re.sub(r"[^0-9]", "", text)
    if digits.startswith("00") and not raw.strip().startswith("+"):
        digits = digits[2:]
    return "+" + digits if digits else ""


def norm_external_id(raw: str) -> str:
    """Trimmed and otherwise as given: Reddit's example hashes ``customer12345`` as is,
    and an advertiser's id may be case-sensitive."""
    return raw.strip()


def norm_idfa(raw: str) -> str:
    return raw.strip().upper()


def norm_aaid(raw: str) -> str:
    return raw.strip().lower()


def norm_identifier(raw: str) -> str:
    """uuid, click_id, user_agent: sent exactly as the browser has them."""
    return raw


#: common key -> Reddit's rule. ``fields`` names the key on the pixel's rp.gif query
#: and in the Conversions API's ``user`` object (v3 and v2.0 share it).
PII_RULES: dict[str, dict[str, Any]] = {
    "em": {"hashed": True, "normalize": norm_email,
           "rule": "lowercase; drop the +alias and every non-alphanumeric character of "
                   "the username; SHA-256 hex",
           "fields": {"browser": "em", "server": "email"}},
    "ph": {"hashed": True, "normalize": norm_phone,
           "rule": "E.164 with the '+' (country code, no spaces, no extension); SHA-256 hex",
           "fields": {"browser": "pn", "server": "phone_number"}},
    "external_id": {"hashed": True, "normalize": norm_external_id,
                    "rule": "trimmed, otherwise as given; SHA-256 hex",
                    "fields": {"browser": "external_id", "server": "external_id"}},
    "idfa": {"hashed": True, "normalize": norm_idfa, "rule": "upper case; SHA-256 hex",
             "fields": {"browser": "idfa", "server": "idfa"}},
    "aaid": {"hashed": True, "normalize": norm_aaid, "rule": "lower case; SHA-256 hex",
             "fields": {"browser": "aaid", "server": "aaid"}},
    "uuid": {"hashed": False, "normalize": norm_identifier,
             "rule": "the _rdt_uuid cookie (or its UUID part) exactly, never hashed",
             "fields": {"browser": "uuid", "server": "uuid"}},
    "click_id": {"hashed": False, "normalize": norm_identifier,
                 "rule": "the rdt_cid landing-page parameter exactly, never hashed",
                 "fields": {"browser": "click_id", "server": "click_id"}},
    "user_agent": {"hashed": False, "normalize": norm_identifier,
                   "rule": "the visitor's User-Agent header, never hashed",
                   "fields": {"server": "user_agent"}},
}

#: the keys pixelcheck's common customer checks know (em, ph, external_id) that Reddit
#: wants hashed; idfa and aaid are app identifiers a web checkout never has
HASHED_KEYS: tuple[str, ...] = ("em", "ph", "external_id")
NEVER_HASHED: tuple[str, ...] = ("uuid", "click_id", "user_agent")

#: wire field (rp.gif query or the API's ``user`` object) -> common key
KEY_OF_FIELD: dict[str, str] = {
    "em": "em", "email": "em", "pn": "ph", "phone_number": "ph",
    "external_id": "external_id", "idfa": "idfa", "aaid": "aaid", "uuid": "uuid",
    "click_id": "click_id", "user_agent": "user_agent",
}


def normalize(key: str, raw: str) -> str:
    """``raw`` as Reddit wants it before hashing (or, for plain keys, as sent).
    ``key`` is a common key (``em``) or a wire field (``phone_number``)."""
    rule = PII_RULES[KEY_OF_FIELD.get(key, key)]
    normalizer: Callable[[str], str] = rule["normalize"]
    return normalizer(raw)


def hash_value(key: str, raw: str) -> str:
    """What Reddit expects on the wire for ``raw``: the SHA-256 hex of the canonical
    value for hashed keys (a 64-hex value passes through, lowercased), the value
    itself for plain ones."""
    common = KEY_OF_FIELD.get(key, key)
    if not PII_RULES[common]["hashed"]:
        return normalize(common, raw)
    if is_hashed(raw):
        return raw.strip().lower()
    return sha256_hex(normalize(common, raw))


#: (key, raw input, canonical, SHA-256 hex Reddit expects); the first three are
#: Reddit's own examples, the digests checked with hashlib (PLATFORMS.md section 10)
TEST_VECTORS: tuple[tuple[str, str, str, str], ...] = (
    ("em", "Al.ice$+Apple@Example.Com", "alice@example.com",
     "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"),
    ("em", "alice@example.com", "alice@example.com",
     "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976"),
    ("ph", "+15554441234", "+15554441234",
     "e5b124c58580eb16bd959b8d0cac12b12c952e2ceae0203d416cff94f10b994a"),
    ("external_id", "customer12345", "customer12345",
     "a4cc2fc5adf58a029291c1514d273989113a1d05e1d753c1d0c3a848af7109cc"),
    ("ph", "16505551234", "+16505551234",
     "a2996076d3ad4af5dc818b908b3d8e354f26ededf7df0e0aa6ac354143805ee0"),
)
#: SHA-256 of "16505551234" (digits, no plus): Meta's form of the same phone, which
#: Reddit would match with nobody
PHONE_WITHOUT_PLUS_SHA256 = "6069d14bf122fdfd931dc7beb58e5dfbba395b1faf05bdcd42d12358d63d8599"
