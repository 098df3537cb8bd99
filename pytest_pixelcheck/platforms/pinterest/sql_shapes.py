"""Pinterest's common request shapes, decoded in SQL by ``pixelcheck analyze``: the tag's
``GET ct.pinterest.com/user/`` hit, and a Conversions API call with a JSON body of one
event. Each gives the rows ``Pinterest.decode_browser`` / ``Pinterest.handle_server``
give (tests/test_analyze_fastpath.py); ``/v3/`` hits, batches and anything odd go through
those decoders.

Two things make these shapes decline more than Meta's:

* **The /user/ + /v3/ pair is stateful.** The Python decoder remembers each ``/user/``
  hit so that the ``/v3/`` copy the tag sends right after is marked a mirror. A ``/user/``
  hit the SQL takes is never remembered, so the shape takes only ``/user/`` hits that no
  ``/v3/`` hit can follow: none after it in the file, and not in the last
  ``MIRROR_WINDOW`` seconds of the file (the next file of a rotated log).
* **No answer recorded means the sink's answer must be rebuilt**: 401 without a Bearer
  token, 400 for a body outside the JSON Schema, 422 for a stale time or an unhashed
  value. The shape takes such a call only when it can tell the answer for sure: a valid
  ``Authorization: Bearer`` header and a body it checks against the whole schema (or one
  that certainly breaks it: a number for ``custom_data.value``, no ``event_id``).

Everywhere, JSON that DuckDB reads but Python's ``json.loads`` would not (trailing
commas, ``nan``/``inf``), JSON nested past ``MAX_JSON_DEPTH``, objects with a repeated
key (DuckDB reads the first, Python the last) and values Python's ``str``/``float`` read
another way than SQL are declined.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from ...analysis.fastpath import SqlShape, json_ids, json_text, python_json_ok, scalars_ok
from .pii_rules import HASHED_KEYS, OTHER_HASHED_FIELDS
from .platform import (
    API_HOST,
    COLLECTION_HOST,
    MAX_EVENT_AGE_DAYS,
    MIRROR_WINDOW,
    NAME,
    NOT_CONVERSIONS,
    SCHEMA,
    TAG_TO_API,
)

# --- helpers ----------------------------------------------------------------------------


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _unique_keys(value: str) -> str:
    """SQL: the JSON object ``value`` names no key twice (DuckDB reads the first of two,
    Python the last). True for anything not an object."""
    return f"(len(json_keys({value})) = len(list_distinct(json_keys({value}))))"


def _type(value: str) -> str:
    """SQL: the JSON type of ``value``, 'ABSENT' when it is missing."""
    return f"coalesce(json_type({value}), 'ABSENT')"


def _number_ok(value: str) -> str:
    """SQL: ``value`` is absent, null, a JSON number or a string of a plain decimal
    number, which Python's ``float()`` and SQL's cast read alike (a bool, which Python
    reads as 1.0, or a string like '1_000' or ' 25', is declined)."""
    return (f"({_type(value)} IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT', 'DOUBLE') OR "
            f"(json_type({value}) = 'VARCHAR' AND regexp_full_match({value} ->> '$', "
            "'[+-]?([0-9]+\\.?[0-9]*|\\.[0-9]+)([eE][+-]?[0-9]+)?')))")


def _number(value: str) -> str:
    return (f"(CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR') "
            f"THEN TRY_CAST({value} ->> '$' AS DOUBLE) END)")


def _ids_ok(value: str) -> str:
    """SQL: ``diagnosis._ids`` reads the content ids ``value`` as ``json_ids`` does. A
    string is read as JSON by Python: only a string no JSON reader takes (then it is the
    one id) or JSON both read alike."""
    text = f"({value} ->> '$')"
    string_ok = (f"((strpos({text}, '\\') = 0 AND NOT json_valid({text})) "
                 f"OR {python_json_ok(text)})")
    return (f"(CASE WHEN json_type({value}) = 'VARCHAR' THEN {string_ok} ELSE true END "
            f"AND {json_ids(value)} IS NOT NULL)")


def _id_ok(value: str) -> str:
    """SQL: an event id ``_id_text`` reads as ``_id`` does (a float is declined)."""
    return f"({_type(value)} <> 'DOUBLE')"


def _id(value: str) -> str:
    """SQL: ``_id_text`` of the JSON ``value``: a non-empty string, an integer's digits."""
    return (f"(CASE json_type({value}) WHEN 'VARCHAR' THEN nullif({value} ->> '$', '') "
            f"WHEN 'BIGINT' THEN {value} ->> '$' WHEN 'UBIGINT' THEN {value} ->> '$' END)")


def _ascii(text: str) -> str:
    """SQL: ``text`` is printable ASCII (so lower() and squash() read it as Python)."""
    return f"NOT regexp_matches(coalesce({text}, ''), '[^ -~]')"


def _squash(text: str) -> str:
    return f"regexp_replace(lower({text}), '[^a-z0-9]', '', 'g')"


def _not_conversion(name: str) -> str:
    return f"({_squash(name)} IN {_in(NOT_CONVERSIONS)})"


def _tag_canonical(name: str) -> str:
    squashed = _squash(name)
    cases = " ".join(f"WHEN {_q(tag)} THEN {_q(api)}" for tag, api in TAG_TO_API.items())
    return f"(CASE {squashed} {cases} ELSE {squashed} END)"


#: a URL with a tab, newline or space in it (urlsplit drops some of them) stays in Python
_PLAIN_URL = "NOT regexp_matches(url, '[\\x00-\\x20\\x7f]')"

_HEX = "[0-9A-Fa-f]"
_CONT = f"%[89ABab]{_HEX}"
#: a query whose every %XX escape is ASCII or part of a whole UTF-8 character: DuckDB's
#: url_decode fails on anything else (Python's parse_qsl writes U+FFFD)
_QUERY_ESCAPES = "(" + "|".join([
    "[^%]", f"%[0-7]{_HEX}",
    f"%[Cc][2-9A-Fa-f]{_CONT}", f"%[Dd]{_HEX}{_CONT}",
    f"%[Ee]0%[ABab]{_HEX}{_CONT}", f"%[Ee][1-9A-Ca-c]{_CONT}{_CONT}",
    f"%[Ee][Dd]%[89]{_HEX}{_CONT}", f"%[Ee][EeFf]{_CONT}{_CONT}",
    f"%[Ff]0%[9ABab]{_HEX}{_CONT}{_CONT}", f"%[Ff][1-3]{_CONT}{_CONT}{_CONT}",
    f"%[Ff]4%8{_HEX}{_CONT}{_CONT}",
]) + ")*"

# --- the tag's /user/ hit ------------------------------------------------------------------

#: the JSON parameters, NULL when empty (json_extract fails on an empty string)
_ED, _AD = "nullif(p_ed, '')", "nullif(p_ad, '')"


def _ed(path: str) -> str:
    return f"json_extract({_ED}, {_q(path)})"


_LINE_ITEMS = _ed("$.line_items")
_ITEMS = (f"(CASE json_type({_LINE_ITEMS}) WHEN 'ARRAY' THEN json_extract({_LINE_ITEMS}, '$[*]') "
          f"WHEN 'OBJECT' THEN [{_LINE_ITEMS}] ELSE []::JSON[] END)")
#: line_items Python reads (a number or a bool there makes its decoder crash)
_ITEMS_OK = (f"({_type(_LINE_ITEMS)} IN ('ABSENT', 'NULL', 'VARCHAR', 'ARRAY', 'OBJECT') "
             f"AND len(list_filter({_ITEMS}, lambda i: json_type(i) = 'OBJECT' AND NOT ("
             f"{_unique_keys('i')} AND coalesce(json_type(i, '$.product_id') IN "
             "('NULL', 'VARCHAR', 'BIGINT', 'UBIGINT'), true)))) = 0)")
#: the product ids of ed.line_items, as _fill_browser copies them into content_ids
_ITEM_IDS = (f"list_filter(list_transform(list_filter({_ITEMS}, lambda i: json_type(i) = "
             "'OBJECT'), lambda i: json_extract(i, '$.product_id') ->> '$'), "
             "lambda p: p IS NOT NULL AND p <> '')")
_HAS_IDS = f"({_ed('$.content_ids')} IS NOT NULL)"
_BROWSER_IDS = f"(CASE WHEN {_HAS_IDS} THEN {json_ids(_ed('$.content_ids'))} ELSE {_ITEM_IDS} END)"

_AD_LOC = f"json_extract({_AD}, '$.loc')"
_NO_EVENT = "coalesce(p_event, '') = ''"
#: a hit that is no conversion: pintrk('page')'s event=init, a /user/ lookup without event
_USER_UNMERGED = f"({_NO_EVENT} OR {_not_conversion('p_event')})"

_VERSION_3 = "(SELECT max(line_no) FROM req WHERE url ILIKE '%pinterest%v3%')"
_LAST_ARRIVAL = "(SELECT max(arrival_time) FROM req)"


def _param_json_ok(param: str) -> str:
    return f"(coalesce({param}, '') = '' OR {python_json_ok(param)})"


_BROWSER_JSON_OK = " AND ".join(_param_json_ok(p) for p in ("p_ed", "p_pd", "p_ad"))
_BROWSER_FIELDS_OK = " AND ".join([
    # ed: absent, or an object read alike by both (a list or a number Python reads as {})
    f"({_ED} IS NULL OR (json_type({_ED}) = 'OBJECT' AND {_unique_keys(_ED)}))",
    f"({_AD} IS NULL OR {_unique_keys(_AD)})",
    _id_ok(_ed("$.event_id")),
    _number_ok(_ed("$.value")),
    scalars_ok(_ed("$.currency"), _ed("$.order_id")),
    f"(CASE WHEN {_HAS_IDS} THEN {_ids_ok(_ed('$.content_ids'))} ELSE {_ITEMS_OK} END)",
])

BROWSER_USER = SqlShape(
    platform=NAME, source="browser",
    match=(f"method = 'GET' AND host = {_q(COLLECTION_HOST)} AND rtrim(path, '/') = '/user' "
           f"AND {_PLAIN_URL} AND regexp_full_match(query, {_q(_QUERY_ESCAPES)})"),
    params={"event": "event", "tid": "tid", "ed": "ed", "pd": "pd", "ad": "ad", "cb": "cb"},
    valid=(
        # no /v3/ hit can be this one's copy (decline mirrors: the Python decoder must see
        # every /user/ hit a /v3/ hit may be matched to)
        f"line_no > coalesce({_VERSION_3}, 0) AND arrival_time > 0 "
        f"AND arrival_time < {_LAST_ARRIVAL} - {MIRROR_WINDOW + 1} "
        f"AND {_ascii('p_event')} "
        f"AND (coalesce(p_cb, '') = '' OR regexp_full_match(p_cb, '[0-9]{{1,15}}')) "
        # a conversion without tid is a hit with a problem (undecodable)
        f"AND ({_USER_UNMERGED} OR coalesce(p_tid, '') <> '') "
        f"AND CASE WHEN {_BROWSER_JSON_OK} THEN {_BROWSER_FIELDS_OK} ELSE false END"),
    event_name="nullif(p_event, '')",
    event_id=_id(_ed("$.event_id")),
    key=(f"CASE WHEN NOT {_USER_UNMERGED} AND {_id(_ed('$.event_id'))} IS NOT NULL "
         f"THEN [{_tag_canonical('p_event')}, {_id(_ed('$.event_id'))}] END"),
    event_time=("CASE WHEN coalesce(p_cb, '') = '' THEN arrival_time "
                "ELSE TRY_CAST(p_cb AS DOUBLE) / 1000.0 END"),
    value=_number(_ed("$.value")),
    currency=json_text(_ed("$.currency")),
    order_id=json_text(_ed("$.order_id")),
    content_ids=_BROWSER_IDS,
    page_url=(f"CASE WHEN json_type({_AD}) = 'OBJECT' AND json_type({_AD_LOC}) = 'VARCHAR' "
              f"THEN {_AD_LOC} ->> '$' END"),
    unmerged=_USER_UNMERGED,
)

# --- the Conversions API call with one event -----------------------------------------------

_EVENTS_PATH = "/v5/ad_accounts/[0-9]{1,18}/events/?"
#: the schema's action_source enum
ACTION_SOURCES = ("app_android", "app_ios", "web", "offline")
_EVENT_TEXTS = ("event_source_url", "partner_name", "app_id", "app_name", "app_version",
                "device_brand", "device_carrier", "device_model", "device_type", "os_version",
                "language")
_EVENT_FLAGS = ("opt_out", "wifi")
_HASHES = tuple(dict.fromkeys((*HASHED_KEYS, *OTHER_HASHED_FIELDS, "em", "hashed_maids")))
_USER_TEXTS = ("click_id", "partner_id")
_USER_STRINGS = ("client_ip_address", "client_user_agent")
_CUSTOM_TEXTS = ("currency", "value", "content_name", "content_category", "content_brand",
                 "order_id", "search_string", "opt_out_type", "np")
_CUSTOM_KEYS = (*_CUSTOM_TEXTS, "content_ids", "contents", "num_items")
_ITEM_TEXTS = ("item_price", "item_name", "item_category", "item_brand")

_FIELDS: dict[str, str] = {
    "data": "$.data", "event": "$.data[0]", "name": "$.data[0].event_name",
    "id": "$.data[0].event_id", "time": "$.data[0].event_time",
    "source": "$.data[0].action_source", "user": "$.data[0].user_data",
    "custom": "$.data[0].custom_data",
    "value": "$.data[0].custom_data.value", "currency": "$.data[0].custom_data.currency",
    "order": "$.data[0].custom_data.order_id", "ids": "$.data[0].custom_data.content_ids",
    "contents": "$.data[0].custom_data.contents", "items": "$.data[0].custom_data.num_items",
}
_FIELDS.update({f"e_{k}": f"$.data[0].{k}" for k in (*_EVENT_TEXTS, *_EVENT_FLAGS)})
_FIELDS.update({f"u_{k}": f"$.data[0].user_data.{k}"
                for k in (*_HASHES, *_USER_TEXTS, *_USER_STRINGS)})
_FIELDS.update({f"c_{k}": f"$.data[0].custom_data.{k}" for k in _CUSTOM_TEXTS
                if f"$.data[0].custom_data.{k}" not in _FIELDS.values()})



def _custom(key: str) -> str:
    return {"value": "f_value", "currency": "f_currency", "order_id": "f_order"}.get(
        key, f"f_c_{key}")


def _text_or_null(value: str) -> str:
    return f"({_type(value)} IN ('ABSENT', 'NULL', 'VARCHAR'))"


def _strings(value: str) -> str:
    """SQL: ``value`` is an array of strings."""
    return (f"(json_type({value}) = 'ARRAY' AND len(list_filter(json_extract({value}, '$[*]'), "
            "lambda x: json_type(x) <> 'VARCHAR')) = 0)")


_TIME = ("(CASE WHEN json_type(f_time) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
         "THEN TRY_CAST(f_time ->> '$' AS DOUBLE) END)")
_NAME = "(f_name ->> '$')"
_OFFLINE = "(json_type(f_source) = 'VARCHAR' AND f_source ->> '$' = 'offline')"

#: the call is one event Python decodes, and its fields read alike
_SERVER_EVENT_OK = " AND ".join([
    f"json_type(body) = 'OBJECT' AND {_unique_keys('body')}",
    "json_type(f_data) = 'ARRAY' AND json_array_length(f_data) = 1",
    f"json_type(f_event) = 'OBJECT' AND {_unique_keys('f_event')}",
    f"json_type(f_name) = 'VARCHAR' AND {_NAME} <> '' AND {_ascii(_NAME)}",
    _id_ok("f_id"),
    f"({_type('f_custom')} IN ('ABSENT', 'NULL') OR (json_type(f_custom) = 'OBJECT' "
    f"AND {_unique_keys('f_custom')}))",
    _number_ok("f_value"),
    scalars_ok("f_currency", "f_order"),
    _ids_ok("f_ids"),
])

_CONTENTS_OK = (
    f"({_type('f_contents')} = 'ABSENT' OR (json_type(f_contents) = 'ARRAY' AND "
    "len(list_filter(json_extract(f_contents, '$[*]'), lambda i: NOT ("
    f"json_type(i) = 'OBJECT' AND {_unique_keys('i')} "
    "AND coalesce(json_type(i, '$.id') = 'VARCHAR', true) "
    "AND coalesce(json_type(i, '$.quantity') IN ('BIGINT', 'UBIGINT'), true) AND "
    + " AND ".join(f"coalesce(json_type(i, '$.{k}') IN ('NULL', 'VARCHAR'), true)"
                   for k in _ITEM_TEXTS)
    + "))) = 0))")

#: the body is inside the JSON Schema (schema_conversion_events.json), checked strictly
#: (an integral float where an integer goes is valid there, and declined here)
_SCHEMA_OK = " AND ".join([
    f"json_type(f_source) = 'VARCHAR' AND (f_source ->> '$') IN {_in(ACTION_SOURCES)}",
    "(json_type(f_time) = 'UBIGINT' OR (json_type(f_time) = 'BIGINT' "
    "AND TRY_CAST(f_time ->> '$' AS BIGINT) >= 0))",
    "json_type(f_id) = 'VARCHAR' AND (f_id ->> '$') <> ''",
    *(_text_or_null(f"f_e_{k}") for k in _EVENT_TEXTS),
    *(f"({_type(f'f_e_{k}')} IN ('ABSENT', 'NULL', 'BOOLEAN'))" for k in _EVENT_FLAGS),
    f"json_type(f_user) = 'OBJECT' AND {_unique_keys('f_user')}",
    *(f"(f_u_{k} IS NULL OR {_strings(f'f_u_{k}')})" for k in _HASHES),
    *(f"({_type(f'f_u_{k}')} IN ('ABSENT', 'VARCHAR'))" for k in _USER_STRINGS),
    *(_text_or_null(f"f_u_{k}") for k in _USER_TEXTS),
    "(f_u_em IS NOT NULL OR f_u_hashed_maids IS NOT NULL OR "
    "(f_u_client_ip_address IS NOT NULL AND f_u_client_user_agent IS NOT NULL))",
    # custom_data: optional, no other keys, each of its type
    f"({_type('f_custom')} = 'ABSENT' OR (json_type(f_custom) = 'OBJECT' AND "
    f"len(list_filter(json_keys(f_custom), lambda k: k NOT IN {_in(_CUSTOM_KEYS)})) = 0))",
    *(_text_or_null(_custom(k)) for k in _CUSTOM_TEXTS),
    f"(f_ids IS NULL OR {_strings('f_ids')})",
    f"({_type('f_items')} IN ('ABSENT', 'NULL', 'BIGINT', 'UBIGINT'))",
    _CONTENTS_OK,
])

#: a body the schema certainly refuses (Pinterest's 400): the SDK's common slips
_SCHEMA_BROKEN = ("(json_type(f_value) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                  f"OR {_type('f_id')} = 'ABSENT')")

#: every value of the hashed user_data arrays
_HASHED_VALUES = ("flatten([" + ", ".join(
    f"coalesce(json_extract_string(f_u_{k}, '$[*]'), []::VARCHAR[])" for k in _HASHES) + "])")
_HEX64 = "'[A-Fa-f0-9]{64}'"
#: a value that is no SHA-256 hex digest even once stripped (its ends are not blank)
_UNHASHED = (f"len(list_filter({_HASHED_VALUES}, lambda v: v <> '' AND NOT "
             f"regexp_full_match(v, {_HEX64}))) > 0")
#: each value is a digest, empty, or certainly no digest (a blank at an end: Python
#: strips Unicode blanks; declined)
_HASHES_DECIDED = (f"len(list_filter({_HASHED_VALUES}, lambda v: v <> '' AND NOT "
                   f"regexp_full_match(v, {_HEX64}) AND NOT (regexp_matches(v, '^[!-~]') "
                   "AND regexp_matches(v, '[!-~]$')))) = 0")
_STALE = (f"({_TIME} < 1e11 AND arrival_time - {_TIME} > {MAX_EVENT_AGE_DAYS * 86400})")

#: the first Authorization header (any case): a plain ASCII name and "Bearer <token>"
_AUTH = "list_filter(headers, lambda h: lower(h[1]) = 'authorization')[1]"
_BEARER = (f"coalesce(regexp_full_match({_AUTH}[1], '[A-Za-z]+') AND regexp_full_match("
           f"{_AUTH}[2], '[Bb][Ee][Aa][Rr][Ee][Rr] [ -~]*[!-~][ -~]*'), false)")

SERVER_JSON = SqlShape(
    platform=NAME, source="server",
    match=(f"method = 'POST' AND api_host = {_q(API_HOST)} AND host = {_q(API_HOST)} "
           f"AND regexp_matches(url, '^[a-zA-Z][a-zA-Z0-9+.-]*://api\\.pinterest\\.com[:/?#]') "
           f"AND regexp_full_match(path, {_q(_EVENTS_PATH)}) AND {_PLAIN_URL}"),
    fields=_FIELDS,
    valid=(f"CASE WHEN {python_json_ok('body')} THEN {_SERVER_EVENT_OK} AND ("
           # the answer recorded (0 is none: Python's `recorded or answer`)
           "(status IS NOT NULL AND status <> 0) OR "
           # or the sink's answer, when it can be told for sure
           f"({_BEARER} AND ({_SCHEMA_BROKEN} OR ({_SCHEMA_OK} AND {_HASHES_DECIDED}))))"
           " ELSE false END"),
    event_name=_NAME,
    event_id=_id("f_id"),
    key=f"CASE WHEN {_id('f_id')} IS NOT NULL AND NOT {_OFFLINE} THEN [{_NAME}, {_id('f_id')}] END",
    event_time=_TIME,
    value=_number("f_value"),
    currency=json_text("f_currency"),
    order_id=json_text("f_order"),
    content_ids=json_ids("f_ids"),
    page_url=("CASE WHEN json_type(f_e_event_source_url) = 'VARCHAR' "
              "THEN f_e_event_source_url ->> '$' END"),
    default_status=(f"CASE WHEN {_SCHEMA_BROKEN} THEN 400 "
                    f"WHEN {_STALE} OR {_UNHASHED} THEN 422 ELSE 200 END"),
    unmerged=_not_conversion(_NAME),
)


def _schema_print() -> str:
    """The JSON Schema the server shape checks, without its prose."""

    def bare(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: bare(v) for k, v in value.items() if k not in ("description", "title")}
        if isinstance(value, list):
            return [bare(v) for v in value]
        return value

    schema = bare(json.loads(SCHEMA.read_text(encoding="utf-8")))
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()[:16]


#: the schema _SCHEMA_OK was written against; when the file changes, the server shape
#: steps aside (every call through handle_server) until it is checked again
SCHEMA_PRINT = "bc0a68d7dabb6db2"

SHAPES = (BROWSER_USER, SERVER_JSON) if _schema_print() == SCHEMA_PRINT else (BROWSER_USER,)
