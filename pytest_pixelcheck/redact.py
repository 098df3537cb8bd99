"""Keep secrets out of everything pixelcheck prints or writes.

Access tokens travel in query strings, form fields, JSON bodies and headers;
each report, log line and artifact passes through ``redact`` first.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote_plus, unquote_plus

from .masking import mask_text

SECRET_PARAMS = ("access_token", "api_secret", "access-token", "client_secret")
MASK = "***redacted***"

_KEYS = "|".join(re.escape(p) for p in SECRET_PARAMS)
_PARAM = re.compile(
    rf"(?P<key>(?:{_KEYS}))(?P<sep>=|\"\s*:\s*\"|'\s*:\s*')(?P<value>[^&\s\"'#]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<key>Bearer\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")

_known_lock = threading.Lock()
_known_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """A token seen on the wire or configured: masked wherever it shows up later."""
    if value and len(value) >= 6:
        with _known_lock:
            _known_secrets.add(value)


def known_secrets() -> set[str]:
    with _known_lock:
        return set(_known_secrets)


def redact(text: str) -> str:
    text = _PARAM.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    text = _BEARER.sub(lambda m: f"{m.group('key')}{MASK}", text)
    with _known_lock:
        secrets = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


# URL-encoded emails (``jane%40example.com``) in query strings; literal ones and
# phones are pii.mask_text's
_ENCODED_EMAIL = re.compile(r"(?<![\w.%+-])([A-Za-z0-9])[A-Za-z0-9._+-]{0,63}%40"
                            r"((?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24})")


# Customer fields no shape gives away (names, city, zip, birth date): masked by their
# key, in query strings and forms (``first_name=Jane``, ``ud[fn]=...``) and JSON or JS
# object literals (``"fn": "Jane"``). Hashes stay: they are what is being checked.
_PII_KEYS = ("fn", "ln", "ct", "st", "zp", "db", "first_name", "last_name", "firstname",
             "lastname", "city", "zip", "zip_code", "postal_code", "postcode", "state",
             "address", "street", "date_of_birth", "dob", "birthday")
_KEYS_ALT = "|".join(_PII_KEYS)
_KEYED_QUERY = re.compile(
    rf"(?<![\w\[%])((?:ud(?:\[|%5B))?(?:{_KEYS_ALT})(?:\]|%5D)?=)([^&\s#\"']+)")
_KEYED_JSON = re.compile(rf"((?<![\w])[\"']?(?:{_KEYS_ALT})[\"']?\s*:\s*[\"'])([^\"']+)")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def is_pii_key(key: str) -> bool:
    return key.lower() in _PII_KEYS


def mask_value(value: str) -> str:
    """A customer field's value as reports show it (hashes stay as they are)."""
    return value if _HEX64.fullmatch(value) or not value.strip() else value[:1] + "***"


def _mask_keyed(match: re.Match[str]) -> str:
    value = match.group(2)
    if _HEX64.fullmatch(value) or not value.strip():
        return match.group(0)
    return match.group(1) + value[:1] + "***"


_QUERY_VALUE = re.compile(r"([?&][^=&\s#]{1,100}=)([^&\s#\"']*%[0-9A-Fa-f]{2}[^&\s#\"']*)")


def mask_pii(text: str) -> str:
    """Emails and phone numbers in free text, masked: ``j***@example.com``."""
    text = _ENCODED_EMAIL.sub(lambda m: f"{m.group(1)}***%40{m.group(2)}", text)

    def encoded_value(match: re.Match[str]) -> str:
        # a query value like %2B1%20(650)%20555-1212: mask it decoded, keep it encoded
        raw = match.group(2)
        plain = unquote_plus(raw)
        masked = mask_text(plain, limit=None)
        return match.group(1) + (quote_plus(masked, safe="*()") if masked != plain else raw)

    text = _QUERY_VALUE.sub(encoded_value, text)
    text = _KEYED_QUERY.sub(_mask_keyed, text)
    text = _KEYED_JSON.sub(_mask_keyed, text)
    return mask_text(text, limit=None)


def scrub(text: str) -> str:
    """Everything a report writes: secrets redacted, PII masked."""
    return mask_pii(redact(text))


def redact_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Credential headers masked; the scheme of an Authorization header stays
    (``Bearer ***``), so a recorded request still decodes as the one sent: a platform
    that wants a bearer token does not call the saved copy unauthenticated."""
    sensitive = {"authorization", "access-token", "x-api-key"}
    out = []
    for key, value in headers:
        if key.lower() in sensitive:
            scheme = _SCHEME.match(value.strip())
            out.append((key, (scheme.group(0) if scheme else "") + MASK))
        else:
            out.append((key, redact(value)))
    return out


#: headers whose whole value is a credential: secret by where they travel, seen or not
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "access-token",
                            "x-api-key"})
_SCHEME = re.compile(r"^(?:Bearer|Basic|Token|OAuth)\s+", re.IGNORECASE)
_MAX_SECRET_SCAN = 1_000_000


def request_secrets(url: str, headers: Iterable[tuple[str, str]] = (),
                    body: bytes | str = b"") -> set[str]:
    """The credentials a request carries by its structure: the values of ``access_token``
    (and the other SECRET_PARAMS) in its query, form or JSON body, and of its
    Authorization / Access-Token headers (with and without the ``Bearer`` scheme).

    Reprs mask these whether or not a sink ever remembered them: a fabricated or
    recorded request (a test, ``pixelcheck analyze``) never went through the sink.
    """
    found: set[str] = set()
    for key, value in headers:
        if key.lower() in SECRET_HEADERS:
            found |= {value.strip(), _SCHEME.sub("", value.strip())}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    for source in (url, text[:_MAX_SECRET_SCAN]):
        for match in _PARAM.finditer(source):
            value = match.group("value")
            found |= {value, unquote_plus(value), quote_plus(unquote_plus(value))}
    # short values would mask unrelated text and are not worth a token's name
    return {s for s in found if len(s) >= 6}


def scrub_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``scrub`` with ``secrets`` (e.g. ``request_secrets``) masked first, longest first so
    a token that contains another is masked whole."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return scrub(text)


#: every logger in this process that can print request data: the proxy, the sink and
#: pixelcheck, and the HTTP stacks under them. At DEBUG hpack and h2 log each header the
#: proxy decodes (paths with their query included), aioquic's quic/http3 the same over
#: HTTP/3, asyncio an exception's arguments, urllib3 and requests each URL a client in
#: the test process calls. Other loggers are the user's, left as they wrote them.
REDACTED_LOGGERS = ("mitmproxy", "werkzeug", "pytest_pixelcheck", "example_site",
                    "pytest_httpserver", "hpack", "h2", "h11", "wsproto", "quic", "http3",
                    "aioquic", "asyncio", "urllib3", "requests", "httpx", "httpcore")
_factory_installed = False


def _redacted_logger(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in REDACTED_LOGGERS)


def install_log_redaction() -> None:
    """Scrub the log records of ``REDACTED_LOGGERS`` as they are made, so no handler
    (pytest's captured logs included) ever holds a token or a raw email."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _redacted_logger(record.name):
            try:
                record.msg, record.args = scrub(record.getMessage()), None
            except Exception:  # noqa: BLE001  (a record that cannot format stays as it was)
                pass
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
