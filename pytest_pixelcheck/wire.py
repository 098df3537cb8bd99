"""Body decoding shared by every platform: compression, forms, multipart, JSON.

Each function either returns data or raises ``WireError`` with a sentence a
QA engineer can read; platforms turn that into an undecodable event.
"""

from __future__ import annotations

import json
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .depth import MAX_JSON_DEPTH, nesting_depth, too_deep_reason
from .events import CapturedRequest


class WireError(ValueError):
    """The request could not be read; the message says why."""


class PayloadTooDeep(WireError):
    """JSON nested deeper than ``MAX_JSON_DEPTH``: refused before anything walks it."""

    def __init__(self, depth: int | None) -> None:
        super().__init__(too_deep_reason(depth))


def loads(text: str | bytes) -> Any:
    """``json.loads`` for request data: raises ``PayloadTooDeep`` (a ``WireError``, a
    ``ValueError``) for JSON nested past ``MAX_JSON_DEPTH`` instead of handing code
    a structure it would overflow the stack walking, or overflowing in the parser."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise PayloadTooDeep(None) from None
    if nesting_depth(value, stop_after=MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise PayloadTooDeep(nesting_depth(value))  # counted in full only when refused
    return value


#: the most a compressed body may decode to; beyond it the request is recorded as
#: undecodable (no platform accepts a request body this large; a gzip bomb stops here)
DECOMPRESSED_LIMIT = 16 * 1024 * 1024


def decompressed_body(request: CapturedRequest, limit: int = DECOMPRESSED_LIMIT) -> bytes:
    body = request.body
    encoding = (request.header("content-encoding") or "").strip().lower()
    try:
        if encoding == "gzip" or (not encoding and body[:2] == b"\x1f\x8b"):
            return _inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip")
        if encoding == "deflate":
            try:
                return _inflate(body, zlib.MAX_WBITS, limit, "deflate")
            except zlib.error:
                return _inflate(body, -zlib.MAX_WBITS, limit, "deflate")
    except (OSError, EOFError, zlib.error) as exc:
        raise WireError(
            f"body says Content-Encoding {encoding or 'gzip'} but is not: {exc}") from None
    if encoding and encoding not in ("identity", "gzip", "deflate"):
        raise WireError(f"unsupported Content-Encoding {encoding!r}")
    return body


def _inflate(body: bytes, wbits: int, limit: int, name: str) -> bytes:
    """Decompress at most ``limit`` bytes (every gzip member); WireError past it."""
    out = bytearray()
    data = body
    while data:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise WireError(
                f"{name} body decodes to more than {limit // (1024 * 1024)} MiB (the "
                f"limit), from {len(body):,} bytes on the wire: a compression bomb or a "
                "batch no platform accepts; nothing past the limit was decoded")
        if not inflater.eof:
            raise EOFError("compressed data ended before the end-of-stream marker")
        data = inflater.unused_data if wbits > 16 else b""
    return bytes(out)


def body_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def media_type(request: CapturedRequest) -> str:
    return (request.header("content-type") or "").split(";")[0].strip().lower()


def query_params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def form_params(request: CapturedRequest, body: bytes) -> list[tuple[str, str]]:
    """Parameters of a form-like body: urlencoded, multipart, or text/plain."""
    if not body:
        return []
    kind = media_type(request)
    if kind == "multipart/form-data":
        return _multipart_fields(request.header("content-type") or "", body)
    return parse_qsl(body_text(body), keep_blank_values=True)


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise WireError("multipart/form-data body without readable parts")
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name is None:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):  # a nested multipart part has no bytes
            payload = b""
        fields.append((str(name), payload.decode("utf-8", "replace")))
    return fields


def json_body(body: bytes) -> Any:
    text = body_text(body)
    if not text.strip():
        raise WireError("body is empty")
    try:
        return loads(text)
    except json.JSONDecodeError as exc:
        raise WireError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def path_of(url: str) -> str:
    return urlsplit(url).path or "/"
