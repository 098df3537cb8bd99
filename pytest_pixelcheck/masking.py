"""Emails and phone numbers in free text, masked: ``j***@example.com``, ``+1 *** *** **12``.

Shared by ``redact`` (everything written) and ``pii`` (customer data); it imports
neither, so they need not import each other.
"""

from __future__ import annotations

import re

# Bounded repetitions: a 10 kB value must scan in linear time.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+'-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}"
                    r"[A-Za-z]{2,24}(?![\w-])")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]?\d{2,5}){0,4}(?![\w])"
    r"|(?<![\w(])\(\d{3}\) ?\d{3}[ .-]\d{4}(?!\w)"
    r"|(?<![\w.-])\d{3}[ -]\d{3}[ -]\d{4}(?![\w.-])"
)
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
