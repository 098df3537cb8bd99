"""Snapchat's common request shapes, decoded in SQL by ``pixelcheck analyze``: a Snap
Pixel JSON beacon (``{"ctx": {...}, "req": [{"t": {...}}]}`` to tr.snapchat.com/p) of
exactly one event, and a Snap Conversions API v3 call (``/v3/{PIXEL}/events``) with a
JSON body of exactly one event. Each gives the rows ``Snapchat.decode_browser`` /
``Snapchat.handle_server`` give (tests/test_analyze_fastpath.py).

Everything else goes through those decoders: batches, form or query beacons, the
config and cookie-match fetches, v2 calls, ``/validate`` calls, bodies DuckDB reads
more leniently than Python's ``json`` (trailing commas, ``nan``/``inf`` literals,
duplicate keys: DuckDB keeps the first, Python the last), bodies nested deeper than
``wire.MAX_JSON_DEPTH``, odd value types, and, for a server call with no recorded
answer, anything whose answer this file cannot work out exactly (no plain
``access_token`` in the query, a body the JSON Schema might refuse, unhashed em/ph).
"""

from __future__ import annotations

from ...analysis.fastpath import SqlShape, json_ids, json_number, json_text, scalars_ok
from .platform import (
    _MS_THRESHOLD,
    ACTION_SOURCES,
    API_HOST,
    INIT_HOSTS,
    MAX_EVENT_AGE_DAYS,
    NAME,
    SHADOW_HOST,
)

_INIT_HOST = next(iter(INIT_HOSTS))
_HOSTS = f"'{API_HOST}', '{SHADOW_HOST}'"
_LOOPBACK = "'127.0.0.1', 'localhost'"

# --- what every shape checks first --------------------------------------------------

#: urlsplit drops tabs and newlines from a URL; the SQL columns keep them
_PLAIN_URL = "NOT regexp_matches(url, '[\\t\\r\\n]')"
#: the body as Python's json reads it: DuckDB also takes trailing commas and
#: nan/inf/infinity in any letter case (anything that looks like one declines the
#: line, even inside a string); at most MAX_JSON_DEPTH (32) levels, counted loosely
#: as the number of '{' and '['
_STRICT_JSON = (
    "left(body, 1) = '{' "
    "AND NOT regexp_matches(body, ',\\s*[\\]}]') "
    "AND NOT regexp_matches(body, '[:,\\[]\\s*[-+]?(?i:nan|inf)') "
    "AND length(body) - length(replace(replace(body, '{', ''), '[', '')) <= 32")


def _unique_keys(value: str) -> str:
    """No key twice in the JSON object ``value`` (DuckDB reads the first, Python the
    last); true for anything that is not an object."""
    return f"len(json_keys({value})) = len(list_distinct(json_keys({value})))"


def _type_in(value: str, *types: str) -> str:
    names = ", ".join(f"'{t}'" for t in types)
    return f"json_type({value}) IN ({names})"


def _absent_or(value: str, *types: str) -> str:
    """``value`` is absent, or present with one of ``types`` (a JSON null is 'NULL')."""
    return f"({value} IS NULL OR {_type_in(value, *types)})"


def _not_double(value: str) -> str:
    """str() of a float is Python's to write: decline JSON floats."""
    return f"coalesce(json_type({value}) <> 'DOUBLE', true)"


def _snap_text(value: str) -> str:
    """platform._text: a string or an integer as text, '' and other types None."""
    return (f"(CASE WHEN {_type_in(value, 'VARCHAR', 'BIGINT', 'UBIGINT')} "
            f"THEN nullif({value} ->> '$', '') END)")


_DIGITS = "'(-?[0-9]{1,15}(\\.[0-9]{1,15})?)?'"


def _number_ok(value: str, booleans: bool = True) -> str:
    """float() of the value gives what TRY_CAST gives: finite floats, integers, strings
    of plain digits ('' too); booleans only when the reader refuses them (platform's
    _number does; decoding._number reads True as 1.0)."""
    return (f"coalesce(CASE json_type({value}) "
            f"WHEN 'DOUBLE' THEN coalesce(isfinite(TRY_CAST({value} ->> '$' AS DOUBLE)), false) "
            f"WHEN 'VARCHAR' THEN regexp_full_match({value} ->> '$', {_DIGITS}) "
            f"WHEN 'BOOLEAN' THEN {'true' if booleans else 'false'} "
            "ELSE true END, true)")


def _seconds(number: str) -> str:
    """platform._seconds: milliseconds above 1e11."""
    return (f"(CASE WHEN {number} > {_MS_THRESHOLD!r} THEN {number} / 1000.0 "
            f"ELSE {number} END)")


def _all(array: str, condition: str) -> str:
    """Every item of the JSON array ``array`` meets ``condition`` (about ``x``)."""
    return (f"coalesce(list_bool_and(list_transform(json_extract({array}, '$[*]'), "
            f"lambda x: {condition})), true)")


def _array_of(value: str, condition: str) -> str:
    """``value`` is absent, or an array whose every item meets ``condition``."""
    return f"({value} IS NULL OR (json_type({value}) = 'ARRAY' AND {_all(value, condition)}))"


# --- the pixel's beacon ---------------------------------------------------------------

_HIT_KEYS = ("pid", "ev", "cdid", "ts", "pl", "e_pr", "e_cur", "e_tid", "e_iids", "e_ni")


def _get(key: str) -> str:
    """the hit's own field, else the request's ctx (a JSON null in the hit wins)"""
    return f"coalesce(f_t_{key}, f_c_{key})"


_IS_INIT = f"host = '{_INIT_HOST}'"
_EV = f"(CASE WHEN json_type({_get('ev')}) = 'VARCHAR' THEN nullif({_get('ev')} ->> '$', '') END)"
#: canonical_name: strip + upper, exact in SQL for printable ASCII names
_CANONICAL_EV = f"upper(trim({_EV}))"
_PID = _snap_text(_get("pid"))
_CDID = _snap_text(_get("cdid"))
_EVENT_ID = f"(CASE WHEN starts_with({_CDID}, '@-') THEN NULL ELSE {_CDID} END)"
_TID = _snap_text(_get("e_tid"))
_IIDS = _get("e_iids")
#: platform._ids of e_iids: a list, or a comma-separated string (one with brackets or
#: characters str.strip() could remove other than spaces declines the line)
_IIDS_OK = (f"coalesce(CASE json_type({_IIDS}) "
            f"WHEN 'ARRAY' THEN {_all(_IIDS, _type_in('x', 'VARCHAR', 'BIGINT', 'UBIGINT'))} "
            f"WHEN 'VARCHAR' THEN regexp_full_match({_IIDS} ->> '$', '[ -Z\\\\^-~]*') "
            "ELSE true END, true)")
_IIDS_LIST = (f"(CASE json_type({_IIDS}) "
              f"WHEN 'ARRAY' THEN coalesce(json_extract_string({_IIDS}, '$[*]'), []::VARCHAR[]) "
              f"WHEN 'VARCHAR' THEN list_filter(list_transform(string_split({_IIDS} ->> '$', ','), "
              "lambda p: trim(p)), lambda p: p <> '') "
              "ELSE []::VARCHAR[] END)")

BROWSER_HIT = SqlShape(
    platform=NAME, source="browser",
    match=(f"method = 'POST' AND host IN ({_HOSTS}, '{_INIT_HOST}') AND path IN ('/p', '/p/') "
           f"AND {_PLAIN_URL} AND {_STRICT_JSON}"),
    fields={"req": "$.req", "item": "$.req[0]", "t": "$.req[0].t", "ctx": "$.ctx",
            **{f"t_{k}": f"$.req[0].t.{k}" for k in _HIT_KEYS},
            **{f"c_{k}": f"$.ctx.{k}" for k in _HIT_KEYS}},
    valid=(f"json_type(f_req) = 'ARRAY' AND json_array_length(f_req) = 1 "
           "AND json_type(f_item) = 'OBJECT' AND json_type(f_t) = 'OBJECT' "
           f"AND {_unique_keys('body')} AND {_unique_keys('f_item')} "
           f"AND {_unique_keys('f_t')} AND coalesce({_unique_keys('f_ctx')}, true) "
           # not the init call: the hit needs a name and a pixel (else an error event)
           f"AND ({_IS_INIT} OR ({_EV} IS NOT NULL AND regexp_full_match({_EV}, '[ -~]+') "
           f"AND {_PID} IS NOT NULL)) AND "
           + " AND ".join(_not_double(_get(k)) for k in ("pid", "cdid", "pl", "e_cur", "e_tid"))
           + " AND " + " AND ".join(_number_ok(_get(k)) for k in ("ts", "e_pr", "e_ni"))
           + f" AND {_IIDS_OK}"),
    pixel_id=_PID,
    event_name=f"(CASE WHEN {_IS_INIT} THEN coalesce({_EV}, '(pixel init)') ELSE {_EV} END)",
    event_id=_EVENT_ID,
    key=(f"(CASE WHEN {_IS_INIT} THEN NULL "
         f"WHEN {_EVENT_ID} IS NOT NULL THEN [{_PID}, {_CANONICAL_EV}, {_EVENT_ID}] "
         f"WHEN {_CANONICAL_EV} = 'PURCHASE' AND {_TID} IS NOT NULL "
         f"THEN [{_PID}, {_CANONICAL_EV}, {_TID}] END)"),
    event_time=_seconds(json_number(_get("ts"))),
    value=json_number(_get("e_pr")),
    currency=_snap_text(_get("e_cur")),
    content_ids=_IIDS_LIST,
    page_url=_snap_text(_get("pl")),
    unmerged=_IS_INIT,
)

# --- the Conversions API v3 -----------------------------------------------------------

_V3_PATH = "^/v3/([^/]+)/events/?$"
_HASHES = ("em", "ph", "fn", "ln", "ge", "ct", "st", "zp", "country", "external_id")
_USER_TEXTS = ("client_ip_address", "client_user_agent", "sc_click_id", "sc_cookie1",
               "mobile_ad_id", "madid", "idfv")
_CUSTOM_TEXTS = ("order_id", "content_category", "content_type", "search_string",
                 "sign_up_method", "brands")
_EVENT_TEXTS = ("event_source_url", "integration", "test_event_code")


def _alias(name: str) -> str:
    return name.replace("_", "")


_SERVER_FIELDS = {
    "data": "$.data", "event": "$.data[0]", "tec": "$.test_event_code",
    "name": "$.data[0].event_name", "time": "$.data[0].event_time",
    "id": "$.data[0].event_id", "src": "$.data[0].action_source",
    "optout": "$.data[0].opt_out", "dpo": "$.data[0].data_processing_options",
    **{f"e_{_alias(k)}": f"$.data[0].{k}" for k in _EVENT_TEXTS},
    "user": "$.data[0].user_data",
    **{f"u_{_alias(k)}": f"$.data[0].user_data.{k}" for k in _HASHES + _USER_TEXTS},
    "custom": "$.data[0].custom_data",
    "value": "$.data[0].custom_data.value", "currency": "$.data[0].custom_data.currency",
    "ids": "$.data[0].custom_data.content_ids", "numitems": "$.data[0].custom_data.num_items",
    "contents": "$.data[0].custom_data.contents",
    **{f"c_{_alias(k)}": f"$.data[0].custom_data.{k}" for k in _CUSTOM_TEXTS},
}

_TIME_NUMBER = "TRY_CAST(f_time ->> '$' AS DOUBLE)"
_EVENT_TIME = (f"(CASE WHEN {_type_in('f_time', 'BIGINT', 'UBIGINT')} "
               f"THEN {_seconds(_TIME_NUMBER)} END)")
_EVENT_ID_V3 = _snap_text("f_id")
_PAGE = _snap_text("f_e_eventsourceurl")
_SOURCE = "lower(f_src ->> '$')"


def _truthy(value: str) -> str:
    """Python truthiness of a JSON string or array."""
    return (f"coalesce(CASE json_type({value}) WHEN 'VARCHAR' THEN {value} ->> '$' <> '' "
            f"WHEN 'ARRAY' THEN json_array_length({value}) > 0 ELSE false END, false)")


def _hashes_ok(value: str) -> str:
    """schema $defs/hashes: a string, or an array of strings"""
    return (f"({value} IS NULL OR json_type({value}) = 'VARCHAR' OR "
            f"(json_type({value}) = 'ARRAY' AND {_all(value, _type_in('x', 'VARCHAR'))}))")


def _digests(value: str) -> str:
    """_unhashed finds nothing: each value is '' or 64 hex digits (a digest with
    spaces around it, which Snap takes, declines the line)"""
    one = "regexp_full_match({0} ->> '$', '([A-Fa-f0-9]{{64}})?')"
    return (f"({value} IS NULL OR (json_type({value}) = 'VARCHAR' AND {one.format(value)}) "
            f"OR (json_type({value}) = 'ARRAY' AND {_all(value, one.format('x'))}))")


_CONTENT_OK = (
    "json_type(x) = 'OBJECT' AND " + _unique_keys("x") + " AND "
    + _absent_or("json_extract(x, '$.id')", "VARCHAR") + " AND "
    + _absent_or("json_extract(x, '$.quantity')", "BIGINT", "UBIGINT", "DOUBLE", "VARCHAR")
    + " AND "
    + _absent_or("json_extract(x, '$.item_price')", "BIGINT", "UBIGINT", "DOUBLE", "VARCHAR")
    + " AND " + _absent_or("json_extract(x, '$.delivery_category')", "VARCHAR"))

#: schema_v3_events.json, for a body of one event (checked only when no answer was
#: recorded: the answer is then the one handle_server gives, which this must equal)
_SCHEMA = " AND ".join([
    _absent_or("f_tec", "VARCHAR"),
    "json_type(f_name) = 'VARCHAR'",  # minLength: checked with the row's fields
    "json_type(f_time) = 'UBIGINT'",  # an integer >= 0
    "json_type(f_src) = 'VARCHAR' AND f_src ->> '$' <> ''",
    _absent_or("f_id", "VARCHAR"),
    _absent_or("f_optout", "BOOLEAN"),
    _array_of("f_dpo", _type_in("x", "VARCHAR")),
    *(_absent_or(f"f_e_{_alias(k)}", "VARCHAR") for k in _EVENT_TEXTS),
    "json_type(f_user) = 'OBJECT'", _unique_keys("f_user"),
    *(_hashes_ok(f"f_u_{_alias(k)}") for k in _HASHES),
    *(_absent_or(f"f_u_{_alias(k)}", "VARCHAR") for k in _USER_TEXTS),
    "(f_custom IS NULL OR json_type(f_custom) = 'OBJECT')",
    "(f_currency IS NULL OR (json_type(f_currency) = 'VARCHAR' AND "
    "regexp_full_match(f_currency ->> '$', '[A-Za-z]{3}')))",
    _absent_or("f_value", "BIGINT", "UBIGINT", "DOUBLE"),
    _array_of("f_ids", _type_in("x", "VARCHAR")),
    _absent_or("f_numitems", "UBIGINT"),
    *(_absent_or(f"f_c_{_alias(k)}", "VARCHAR") for k in _CUSTOM_TEXTS),
    _array_of("f_contents", _CONTENT_OK),
])

#: the access token handle_server reads: ?access_token= (a header one is not visible
#: to SQL); only plain queries, so no URL-decoding is needed
_TOKEN = ("regexp_full_match(query, '[A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*"
          "(&[A-Za-z0-9._~-]+=[A-Za-z0-9._~-]*)*') "
          "AND regexp_matches('&' || query, '&access_token=[A-Za-z0-9._~-]') "
          "AND NOT regexp_matches('&' || query || '&', '&access_token=&')")

#: _event_problem's refusals, for an event the schema takes
_ACTION_SOURCES = ", ".join(f"'{s}'" for s in sorted(ACTION_SOURCES))
_PROBLEM = (
    f"(arrival_time - {_EVENT_TIME} > {MAX_EVENT_AGE_DAYS * 86400} "
    f"OR {_SOURCE} NOT IN ({_ACTION_SOURCES}) "
    f"OR NOT ({_truthy('f_u_em')} OR {_truthy('f_u_ph')} OR {_truthy('f_u_mobileadid')} "
    f"OR {_truthy('f_u_madid')} OR ({_truthy('f_u_clientipaddress')} "
    f"AND {_truthy('f_u_clientuseragent')})) "
    f"OR ({_SOURCE} IN ('web', 'website') AND {_PAGE} IS NULL))")

SERVER_V3 = SqlShape(
    platform=NAME, source="server",
    match=(f"method = 'POST' AND api_host IN ({_HOSTS}) AND host IN ({_HOSTS}, {_LOOPBACK}) "
           f"AND regexp_matches(path, '{_V3_PATH}') AND {_PLAIN_URL} AND {_STRICT_JSON}"),
    fields=_SERVER_FIELDS,
    valid=(f"{_unique_keys('body')} AND json_type(f_data) = 'ARRAY' "
           "AND json_array_length(f_data) = 1 AND json_type(f_event) = 'OBJECT' "
           f"AND {_unique_keys('f_event')} "
           "AND json_type(f_name) = 'VARCHAR' AND regexp_full_match(f_name ->> '$', '[ -~]+') "
           f"AND {_not_double('f_id')} AND {_not_double('f_time')} "
           f"AND {_not_double('f_e_eventsourceurl')} "
           "AND (f_custom IS NULL OR json_type(f_custom) IN ('NULL', 'OBJECT')) "
           f"AND coalesce({_unique_keys('f_custom')}, true) "
           f"AND {_number_ok('f_value', booleans=False)} "
           f"AND {scalars_ok('f_currency', 'f_c_orderid')} "
           f"AND {_absent_or('f_ids', 'NULL', 'ARRAY')} AND {json_ids('f_ids')} IS NOT NULL "
           # decode_request keeps a recorded answer unless it is 0
           "AND coalesce(status <> 0, true) "
           # no answer recorded: this shape answers, so it must know the answer exactly
           f"AND (status IS NOT NULL OR ({_TOKEN} AND {_SCHEMA} "
           f"AND {_digests('f_u_em')} AND {_digests('f_u_ph')} "
           f"AND regexp_full_match(f_src ->> '$', '[A-Za-z_]+')))"),
    pixel_id=f"regexp_extract(path, '{_V3_PATH}', 1)",
    event_name="f_name ->> '$'",
    event_id=_EVENT_ID_V3,
    key=(f"(CASE WHEN {_EVENT_ID_V3} IS NOT NULL THEN [regexp_extract(path, '{_V3_PATH}', 1), "
         f"upper(trim(f_name ->> '$')), {_EVENT_ID_V3}] END)"),
    event_time=_EVENT_TIME,
    value=json_number("f_value"),
    currency=json_text("f_currency"),
    order_id=json_text("f_c_orderid"),
    content_ids=json_ids("f_ids"),
    page_url=_PAGE,
    default_status=f"(CASE WHEN {_PROBLEM} THEN 400 ELSE 200 END)",
)

SHAPES = (BROWSER_HIT, SERVER_V3)
