"""GA4's common request shapes, decoded in SQL by ``pixelcheck analyze``: a gtag.js
hit of one event with no body (``/g/collect``), and a Measurement Protocol call of one
event (``/mp/collect``). Each gives the rows ``GA4.decode_browser`` /
``GA4.handle_server`` give (tests/test_analyze_fastpath.py).

GA4 answers 2xx to anything and drops events silently (``rejected_by_platform``), so
the server shape declines every call where a drop rule could apply and is not cheap
to reproduce: no api_secret or measurement_id, a body that breaks a dropping rule of
schema_mp.json (client_id, events, the event's name, a purchase without params), a
body of 130 kB or more, the validation server. Only the 72-hour timestamp rule is
reproduced. Multi-event POST hits, doubleclick's mirror copies, batches, and anything
JSON or URL decoding could read differently in DuckDB and in Python go through the
decoders.
"""

from __future__ import annotations

import json

from ...analysis.fastpath import SqlShape, json_ids, json_text, param_ids, scalars_ok
from .platform import (
    COLLECT_PATH,
    DEDUP_EVENTS,
    DEDUP_PER_CLIENT,
    MAX_BODY_BYTES,
    MAX_EVENT_AGE_HOURS,
    MP_PATH,
    NAME,
    SCHEMA,
    SERVER_HOSTS,
)

if DEDUP_EVENTS != frozenset({"purchase"}) or not DEDUP_PER_CLIENT:
    # the shapes spell out GA4's dedup key as it is: purchases only, per client
    raise RuntimeError("GA4's dedup rule changed: update platforms/ga4/sql_shapes.py")

_HEX = "[0-9A-Fa-f]"
_CONT = f"%[89ABab]{_HEX}"
#: a percent-encoded UTF-8 character of more than one byte (RFC 3629, no overlongs,
#: no surrogates): DuckDB's url_decode raises on any other byte >= 0x80, Python's
#: unquote puts U+FFFD there
_UTF8_ESCAPE = "|".join([
    f"%[Cc][2-9A-Fa-f]{_CONT}", f"%[Dd]{_HEX}{_CONT}",
    f"%[Ee]0%[ABab]{_HEX}{_CONT}", f"%[Ee][1-9A-Ca-c]{_CONT}{_CONT}",
    f"%[Ee][Dd]%[89]{_HEX}{_CONT}", f"%[Ee][EFef]{_CONT}{_CONT}",
    f"%[Ff]0%[9ABab]{_HEX}{_CONT}{_CONT}", f"%[Ff][1-3]{_CONT}{_CONT}{_CONT}",
    f"%[Ff]4%8{_HEX}{_CONT}{_CONT}",
])
#: the URL as both sides split it: no control characters (urlsplit drops tab and
#: newlines), no fragment (a '#' before the '?' hides the query from urlsplit), and
#: every non-ASCII escape of the query a whole UTF-8 character
_URL_OK = (f"NOT regexp_matches(url, '[\\x00-\\x1f#]') AND NOT regexp_matches("
           f"regexp_replace(query, '{_UTF8_ESCAPE}', '', 'g'), '%[89A-Fa-f]{_HEX}')")

#: a number as both Python's float() and DuckDB's cast read it
_DECIMAL = "[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?"


def _number_ok(text: str) -> str:
    return f"({text} IS NULL OR regexp_full_match({text}, '{_DECIMAL}'))"


def _ids_text_ok(text: str) -> str:
    """Content ids sent as text that Python's json.loads and DuckDB's JSON reader read
    alike: DuckDB also takes trailing commas and nan/inf, Python lone surrogates."""
    return (f"({text} IS NULL OR NOT regexp_matches({text}, "
            "'(?i),\\s*[\\]}]|nan|inf|\\\\u[dD][89a-fA-F]'))")


def _unique_keys(value: str) -> str:
    """Every key of the JSON object once (DuckDB reads the first of a repeated key,
    Python the last)."""
    return (f"(CASE WHEN json_type({value}) = 'OBJECT' THEN len(json_keys({value})) = "
            f"len(list_distinct(json_keys({value}))) END)")


# --- gtag.js hit ----------------------------------------------------------------------

_COLLECTION_HOST = "([a-z0-9-]+\\.)*(google-analytics\\.com|analytics\\.google\\.com)"
#: a page URL urlsplit reads without a ValueError (brackets, non-ASCII netlocs)
_DL_OK = "(p_dl IS NULL OR NOT regexp_matches(p_dl, '[\\[\\]]|[^\\x00-\\x7F]'))"

BROWSER_HIT = SqlShape(
    platform=NAME, source="browser",
    # doubleclick's mirror host is not a collection host here: its hits are copies
    match=(f"rtrim(path, '/') = '{COLLECT_PATH}' AND regexp_full_match(host, "
           f"'{_COLLECTION_HOST}') AND {_URL_OK}"),
    params={"tid": "tid", "en": "en", "cid": "cid", "dl": "dl", "cu": "cu",
            "txn": "ep.transaction_id",
            "value": "ep.value", "nvalue": "epn.value",
            "currency": "ep.currency", "ncurrency": "epn.currency",
            "order": "ep.order_id", "norder": "epn.order_id",
            "ids": "ep.content_ids", "nids": "epn.content_ids"},
    valid=(
        # a POST with a body is the multi-event form (one event per body line)
        "method IS NOT NULL AND (method <> 'POST' OR coalesce(body, '') = '') "
        # without tid or en the hit is undecodable
        "AND coalesce(p_tid, '') <> '' AND coalesce(p_en, '') <> '' "
        # one source per custom_data key (else the query's order decides), as text
        "AND (p_value IS NULL OR p_nvalue IS NULL) AND (p_cu IS NULL OR p_currency IS NULL) "
        "AND p_ncurrency IS NULL AND p_norder IS NULL AND p_nids IS NULL "
        f"AND {_number_ok('coalesce(p_value, p_nvalue)')} AND {_ids_text_ok('p_ids')} "
        f"AND {param_ids('p_ids')} IS NOT NULL AND {_DL_OK}"),
    pixel_id="p_tid", event_name="p_en",
    event_id="CASE WHEN p_en = 'purchase' THEN p_txn END",
    key="CASE WHEN p_en = 'purchase' AND p_txn IS NOT NULL THEN [p_tid, p_en, p_txn, p_cid] END",
    event_time="arrival_time",
    value="TRY_CAST(coalesce(p_value, p_nvalue) AS DOUBLE)",
    currency="coalesce(p_cu, p_currency)", order_id="p_order",
    content_ids=param_ids("p_ids"), page_url="p_dl",
    unmerged="p_en <> 'purchase'",
)

# --- Measurement Protocol -------------------------------------------------------------

_RESERVED = json.loads(SCHEMA.read_text(encoding="utf-8"))["$defs"][
    "reserved_event_names"]["enum"]
_RESERVED_SQL = ", ".join(f"'{name}'" for name in _RESERVED)
_NAME = "(f_name ->> '$')"
#: a name schema_mp.json takes (a name it refuses drops the event)
_NAME_OK = (f"json_type(f_name) = 'VARCHAR' AND regexp_full_match({_NAME}, "
            f"'[a-zA-Z][a-zA-Z0-9_]{{0,39}}') AND NOT regexp_matches({_NAME}, "
            f"'^(firebase_|ga_|google_)') AND {_NAME} NOT IN "
            f"({_RESERVED_SQL})")
#: the event's timestamp_micros, else the request's (a JSON value; NULL: none)
_MICROS = "(CASE WHEN f_eventtime IS NOT NULL THEN f_eventtime ELSE f_time END)"
_MICROS_OK = (f"({_MICROS} IS NULL OR json_type({_MICROS}) IN ('NULL', 'BIGINT', 'UBIGINT') "
              f"OR (json_type({_MICROS}) = 'VARCHAR' AND regexp_full_match({_MICROS} ->> '$', "
              "'[0-9]{1,19}')))")
_TIME = (f"(CASE WHEN {_MICROS} IS NULL OR json_type({_MICROS}) = 'NULL' THEN arrival_time "
         f"ELSE CAST({_MICROS} ->> '$' AS DOUBLE) / 1000000.0 END)")
_VALUE_TEXT = "(f_value ->> '$')"
_VALUE_OK = ("(f_value IS NULL OR json_type(f_value) IN ('NULL', 'BIGINT', 'UBIGINT') "
             # a JSON integer past BIGINT: Python's float() may overflow on it
             "OR (json_type(f_value) = 'DOUBLE' AND NOT regexp_full_match(f_value ->> '$', "
             "'-?[0-9]+')) OR (json_type(f_value) = 'VARCHAR' AND "
             f"{_number_ok(_VALUE_TEXT)}))")
_TXN = json_text("f_txn")
_HOSTS_SQL = ", ".join(f"'{host}'" for host in sorted(SERVER_HOSTS))
_IDS_TEXT = "(f_ids ->> '$')"

SERVER_MP = SqlShape(
    platform=NAME, source="server",
    match=(f"api_host IN ({_HOSTS_SQL}, "
           f"'127.0.0.1', 'localhost') AND rtrim(path, '/') = '{MP_PATH}' AND {_URL_OK} "
           # (the core declines JSON DuckDB and Python read differently)
           f"AND strlen(body) < {MAX_BODY_BYTES}"),
    params={"mid": "measurement_id", "secret": "api_secret"},
    fields={"events": "$.events", "event": "$.events[0]", "name": "$.events[0].name",
            "params": "$.events[0].params", "client": "$.client_id",
            "time": "$.timestamp_micros", "eventtime": "$.events[0].timestamp_micros",
            "txn": "$.events[0].params.transaction_id",
            "value": "$.events[0].params.value",
            "currency": "$.events[0].params.currency",
            "order": "$.events[0].params.order_id",
            "ids": "$.events[0].params.content_ids",
            "page": "$.events[0].params.page_location"},
    valid=(
        # Google drops every event of a call without api_secret or measurement_id
        "coalesce(p_mid, '') <> '' AND coalesce(p_secret, '') <> '' "
        # the recorded answer wins unless it is 0 (`recorded or answered`)
        "AND coalesce(status, 1) <> 0 "
        f"AND json_type(body) = 'OBJECT' AND {_unique_keys('body')} "
        "AND json_type(f_client) = 'VARCHAR' AND f_client ->> '$' <> '' "
        "AND json_type(f_events) = 'ARRAY' AND json_array_length(f_events) = 1 "
        f"AND json_type(f_event) = 'OBJECT' AND {_unique_keys('f_event')} AND {_NAME_OK} "
        f"AND json_type(f_params) = 'OBJECT' AND {_unique_keys('f_params')} "
        f"AND {_MICROS_OK} AND {_VALUE_OK} AND {scalars_ok('f_txn', 'f_currency', 'f_order')} "
        "AND (f_ids IS NULL OR json_type(f_ids) <> 'VARCHAR' OR "
        f"{_ids_text_ok(_IDS_TEXT)}) "
        f"AND {json_ids('f_ids')} IS NOT NULL"),
    pixel_id="p_mid", event_name=_NAME,
    event_id=f"CASE WHEN {_NAME} = 'purchase' THEN {_TXN} END",
    key=(f"CASE WHEN {_NAME} = 'purchase' AND {_TXN} IS NOT NULL THEN "
         f"[p_mid, {_NAME}, {_TXN}, f_client ->> '$'] END"),
    event_time=_TIME, value=("CASE WHEN json_type(f_value) <> 'NULL' THEN "
                             "TRY_CAST(f_value ->> '$' AS DOUBLE) END"),
    currency=json_text("f_currency"), order_id=json_text("f_order"),
    content_ids=json_ids("f_ids"),
    page_url="CASE WHEN json_type(f_page) = 'VARCHAR' THEN f_page ->> '$' END",
    default_status="204",
    # the one drop rule reproduced here: timestamp_micros more than 72 hours old
    rejected=f"coalesce(arrival_time - {_TIME} > {MAX_EVENT_AGE_HOURS * 3600}, false)",
    unmerged=f"{_NAME} <> 'purchase'",
)

SHAPES = (BROWSER_HIT, SERVER_MP)
