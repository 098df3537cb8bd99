"""Reddit's common request shapes, decoded in SQL by ``pixelcheck analyze``: the pixel's
``rp.gif`` GET hit, and a Conversions API v3 call with a JSON body of one event. Each
gives the rows ``Reddit.decode_browser`` / ``Reddit.handle_server`` give
(tests/test_analyze_fastpath.py); POST hits, v2.0 calls, batches and every line SQL
could read otherwise than Python go through those decoders.

The shapes are deliberately narrow. Where DuckDB and Python read a line differently
(DuckDB's JSON reader takes trailing commas and ``nan``/``inf``, keeps the first of two
equal keys where Python keeps the last; ``url_decode`` fails on bytes that are no
UTF-8; Python's ``float`` and ``str.strip`` accept more than a regex says), the line is
declined rather than guessed. The v3 shape checks every field ``schema_v3.json`` types
(a violation makes Reddit refuse the call), the bearer token and the ``event_at``
window; it takes only calls whose fields are all of the schema's types.
"""

from __future__ import annotations

from ...analysis.fastpath import SqlShape, header
from .platform import (
    API_HOST,
    COLLECTION_HOST,
    COLLECTION_PATH,
    MAX_EVENT_AGE_HOURS,
    MAX_FUTURE_MINUTES,
    NAME,
    STANDARD_EVENTS,
    V3_TYPES,
)

# --- shared guards ------------------------------------------------------------------

#: urlsplit drops tabs and newlines anywhere and strips C0 controls and spaces at the
#: ends; the SQL url parts do not: a URL with any of them is Python's
_PLAIN_URL = "NOT regexp_matches(url, '[[:cntrl:] ]')"
#: every header a [name, value] pair of strings (CapturedRequest.from_dict's str(k),
#: str(v) turns a null into 'None'; a pair of another length fails there)
_HEADERS_OK = ("headers IS NOT NULL AND coalesce(list_bool_and(list_transform(headers, "
               "lambda h: coalesce(len(h) = 2 AND h[1] IS NOT NULL AND h[2] IS NOT NULL, "
               "false))), true)")
_HEX64 = "[A-Fa-f0-9]{64}"


def _json_guards(text: str) -> str:
    """SQL: ``text`` (valid JSON to DuckDB) is JSON Python's ``json.loads`` reads the
    same way: no trailing comma, no nan/inf literal (DuckDB takes ``nan``, ``inf``,
    ``Inf``; Python only ``NaN``/``Infinity``, declined too), and nested no deeper than
    ``MAX_JSON_DEPTH`` (at most 32 opening brackets in all). Text inside strings can
    trip these: such lines are declined, which is safe."""
    return (f"NOT regexp_matches({text}, ',\\s*[\\]}}]|[:\\[,]\\s*-?(?i:nan|inf)') "
            f"AND length({text}) - length(replace(replace({text}, '{{', ''), '[', '')) <= 32")


def _distinct_keys(value: str) -> str:
    """SQL: the JSON object ``value`` names no key twice (Python keeps the last of two,
    DuckDB's json_extract the first)."""
    return f"len(json_keys({value})) = len(list_distinct(json_keys({value})))"


def _absent_or(value: str, *types: str) -> str:
    kinds = ", ".join(f"'{t}'" for t in types)
    return f"({value} IS NULL OR json_type({value}) IN ({kinds}))"


_INTEGER = ("BIGINT", "UBIGINT")
_NUMBER = ("BIGINT", "UBIGINT", "DOUBLE")


def _conversion_id(text: str) -> str:
    """SQL: ``conversion_key``'s hashed form of the id ``text`` (NULL or '': none); a
    64-hex value as sent (lower case), anything else its SHA-256."""
    return (f"CASE WHEN coalesce({text}, '') = '' THEN NULL "
            f"WHEN regexp_full_match({text}, '{_HEX64}') THEN lower({text}) "
            f"ELSE sha256({text}) END")


def _conversion_id_ok(text: str) -> str:
    """SQL: the id is not one ``is_hashed`` would take as 64 hex only after
    ``str.strip`` (Unicode whitespace around 64 hex digits): declined."""
    return (f"(NOT regexp_matches(coalesce({text}, ''), '{_HEX64}') "
            f"OR regexp_full_match({text}, '{_HEX64}'))")


# --- the pixel's rp.gif hit -------------------------------------------------------------

#: the hit's parameter names, URL-decoded ('+' a space): the shape takes a hit only when
#: none repeats (Reddit._hit_params keeps the first of each, the SQL params the last)
_KEYS = ("list_transform(list_filter(string_split(query, '&'), lambda kv: kv <> ''), "
         "lambda kv: url_decode(replace(split_part(kv, '=', 1), '+', ' ')))")
#: the event type folded as canonical_type folds it (the shape takes only ASCII letters,
#: spaces, '_' and '-', so SQL's lower and Python's \s agree)
_FOLDED = "lower(regexp_replace(p_event, '[ _-]', '', 'g'))"
_CANONICAL = ("CASE " + " ".join(f"WHEN {_FOLDED} = '{name.lower()}' THEN '{name}'"
                                 for name in STANDARD_EVENTS) + " END")
_TRACKING = f"coalesce({_CANONICAL}, p_event)"
_CUSTOM = f"CASE WHEN {_TRACKING} = 'Custom' THEN nullif(p_custom, '') END"
_BROWSER_ID = _conversion_id("p_cid")
#: what _number reads as float() gives it: only plain decimals are taken
_DECIMAL = "-?[0-9]{1,15}(\\.[0-9]{1,15})?"


def _number_param(text: str) -> str:
    return f"CASE WHEN coalesce({text}, '') <> '' THEN CAST({text} AS DOUBLE) END"


def _number_param_ok(text: str) -> str:
    return f"(coalesce({text}, '') = '' OR regexp_full_match({text}, '{_DECIMAL}'))"


#: m.products as JSON (NULL when absent, empty or not JSON to DuckDB): DuckDB evaluates
#: every operand of AND / OR, so no JSON function may see text that is not JSON
_PRODUCTS = ("(CASE WHEN coalesce(p_products, '') <> '' AND json_valid(p_products) "
             "THEN p_products END)")
#: m.products: absent or empty, or a JSON array of objects, each id a string or an
#: integer (or none)
_PRODUCTS_OK = (
    f"(coalesce(p_products, '') = '' OR coalesce({_PRODUCTS} IS NOT NULL AND "
    + _json_guards(_PRODUCTS)
    + f" AND json_type({_PRODUCTS}) = 'ARRAY' AND (json_array_length({_PRODUCTS}) = 0 OR "
    f"list_bool_and(list_transform(json_extract({_PRODUCTS}, '$[*]'), lambda p: coalesce("
    "json_type(p) = 'OBJECT' AND " + _distinct_keys("p")
    + " AND coalesce(json_type(p, '$.id') IN ('NULL', 'VARCHAR', 'BIGINT', 'UBIGINT'), "
    "true), false)))), false))")
_BROWSER_IDS = ("CASE WHEN coalesce(p_products, '') = '' THEN []::VARCHAR[] ELSE "
                f"list_filter(json_extract_string({_PRODUCTS}, '$[*].id'), "
                "lambda x: coalesce(x, '') <> '') END")

BROWSER_GET = SqlShape(
    platform=NAME, source="browser",
    match=(f"method = 'GET' AND host = '{COLLECTION_HOST}' AND path = '{COLLECTION_PATH}' "
           f"AND {_PLAIN_URL} "
           # url_decode fails on escaped bytes that are no UTF-8: none above 0x7f taken
           "AND NOT regexp_matches(query, '%[89A-Fa-f][0-9A-Fa-f]')"),
    params={"id": "id", "event": "event", "custom": "m.customEventName",
            "cid": "m.conversionId", "ts": "ts", "vd": "m.valueDecimal", "v": "m.value",
            "currency": "m.currency", "products": "m.products"},
    valid=(f"len({_KEYS}) = len(list_distinct({_KEYS})) AND {_HEADERS_OK} "
           "AND coalesce(p_id, '') <> '' "
           "AND regexp_full_match(coalesce(p_event, ''), '[A-Za-z _-]+') "
           f"AND {_conversion_id_ok('p_cid')} "
           "AND (coalesce(p_ts, '') = '' OR regexp_full_match(p_ts, '[0-9]{1,15}')) "
           f"AND {_number_param_ok('p_vd')} AND {_number_param_ok('p_v')} "
           f"AND {_PRODUCTS_OK}"),
    pixel_id="p_id",
    event_name=f"CASE WHEN {_TRACKING} = 'Custom' THEN coalesce(nullif(p_custom, ''), "
               f"'Custom') ELSE {_TRACKING} END",
    event_id=_BROWSER_ID,
    key=f"CASE WHEN {_BROWSER_ID} IS NOT NULL THEN [p_id, {_TRACKING}, {_CUSTOM}, "
        f"{_BROWSER_ID}] END",
    event_time=("CASE WHEN coalesce(p_ts, '') = '' THEN arrival_time "
                "ELSE CAST(p_ts AS DOUBLE) / 1000.0::DOUBLE END"),
    value=f"coalesce({_number_param('p_vd')}, {_number_param('p_v')})",
    currency="nullif(p_currency, '')",
    content_ids=_BROWSER_IDS,
    page_url=header("referer"),
)

# --- Conversions API v3, one event ------------------------------------------------------

_V3_PATH = "^/api/v3/pixels/([A-Za-z0-9_.~-]+)/conversion_events/?$"
_PIXEL = f"regexp_extract(path, '{_V3_PATH}', 1)"
_E = "$.data.events[0]"
_M = f"{_E}.metadata"
_U = f"{_E}.user"
_STRING_USER_FIELDS = ("email", "phone_number", "external_id", "ip_address", "user_agent",
                       "uuid", "idfa", "aaid")
#: v3's tracking_type -> the pixel's spelling (the event's name and key)
_V3_NAME = ("CASE f_tt ->> '$' " + " ".join(f"WHEN '{v3}' THEN '{pixel}'"
                                            for pixel, v3 in V3_TYPES.items()) + " END")
_V3_CUSTOM = "CASE WHEN f_tt ->> '$' = 'CUSTOM' THEN f_cen ->> '$' END"
_V3_CID = ("CASE WHEN json_type(f_cid) = 'VARCHAR' THEN "
           + _conversion_id("(f_cid ->> '$')") + " END")
_V3_TIME = "CAST(f_at ->> '$' AS BIGINT)::DOUBLE / 1000.0::DOUBLE"
#: Reddit's invalid_events for an event_at out of its window (Reddit._clock_problem)
_V3_CLOCK = (f"(arrival_time - {_V3_TIME} > {MAX_EVENT_AGE_HOURS * 3600} "
             f"OR -(arrival_time - {_V3_TIME}) > {MAX_FUTURE_MINUTES * 60})")
_PRODUCT_OK = ("coalesce(json_type(p) = 'OBJECT' AND " + _distinct_keys("p") + " AND "
               + " AND ".join(f"coalesce(json_type(p, '$.{k}') = 'VARCHAR', true)"
                              for k in ("id", "name", "category")) + " AND "
               + " AND ".join(f"coalesce(json_type(p, '$.{k}') IN ('BIGINT', 'UBIGINT', "
                              f"'DOUBLE'), true)" for k in ("quantity", "item_price"))
               + ", false)")

_V3_VALID = " AND ".join([
    _HEADERS_OK,
    # the gateway's token check (Reddit._bearer); none: declined (a log line skips it)
    "regexp_full_match(coalesce(" + header("authorization")
    + ", ''), '[Bb][Ee][Aa][Rr][Ee][Rr] [!-~]+')",
    # decode_request keeps a recorded status only when it is not 0
    "coalesce(status <> 0, true)",
    _json_guards("body"),
    "json_type(body) = 'OBJECT'", _distinct_keys("body"),
    "json_type(f_data) = 'OBJECT'", _distinct_keys("f_data"),
    _absent_or("f_test_id", "VARCHAR"), _absent_or("f_partner", "VARCHAR"),
    "json_type(f_events) = 'ARRAY'", "json_array_length(f_events) = 1",
    "json_type(f_ev) = 'OBJECT'", _distinct_keys("f_ev"),
    # event_at: an integer >= 0 (milliseconds), small enough to be exact as a double
    "json_type(f_at) IN ('BIGINT', 'UBIGINT')",
    "TRY_CAST(f_at ->> '$' AS BIGINT) BETWEEN 0 AND 9007199254740992",
    "json_type(f_src) = 'VARCHAR'",
    "f_src ->> '$' IN ('WEBSITE', 'APP', 'PHYSICAL_STORE', 'OTHER')",
    _absent_or("f_url", "VARCHAR"), _absent_or("f_click", "VARCHAR"),
    "json_type(f_type) = 'OBJECT'", _distinct_keys("f_type"),
    "json_type(f_tt) = 'VARCHAR'",
    "f_tt ->> '$' IN (" + ", ".join(f"'{v}'" for v in V3_TYPES.values()) + ")",
    # custom_event_name: 1 to 64 characters (printable ASCII taken), required for CUSTOM
    "(f_cen IS NULL OR (json_type(f_cen) = 'VARCHAR' "
    "AND regexp_full_match(f_cen ->> '$', '[ -~]{1,64}')))",
    "(f_tt ->> '$' <> 'CUSTOM' OR f_cen IS NOT NULL)",
    "(f_meta IS NULL OR (json_type(f_meta) = 'OBJECT' AND " + _distinct_keys("f_meta") + "))",
    _absent_or("f_cid", "VARCHAR"), _absent_or("f_currency", "VARCHAR"),
    _absent_or("f_value", *_NUMBER),
    "(f_count IS NULL OR (json_type(f_count) IN ('BIGINT', 'UBIGINT') "
    "AND TRY_CAST(f_count ->> '$' AS HUGEINT) >= 0))",
    "(f_products IS NULL OR (json_type(f_products) = 'ARRAY' AND "
    "(json_array_length(f_products) = 0 OR list_bool_and(list_transform("
    f"json_extract(f_products, '$[*]'), lambda p: {_PRODUCT_OK})))))",
    _conversion_id_ok("(f_cid ->> '$')"),
    "(f_user IS NULL OR (json_type(f_user) = 'OBJECT' AND " + _distinct_keys("f_user") + "))",
    *(_absent_or(f"f_u_{k}", "VARCHAR") for k in _STRING_USER_FIELDS),
    "(f_sd IS NULL OR (json_type(f_sd) = 'OBJECT' AND " + _distinct_keys("f_sd") + "))",
    _absent_or("f_sd_w", *_INTEGER), _absent_or("f_sd_h", *_INTEGER),
    "(f_dpo IS NULL OR (json_type(f_dpo) = 'OBJECT' AND " + _distinct_keys("f_dpo") + "))",
    "(f_modes IS NULL OR (json_type(f_modes) = 'ARRAY' AND (json_array_length(f_modes) = 0 "
    "OR list_bool_and(list_transform(json_extract(f_modes, '$[*]'), "
    "lambda m: coalesce(json_type(m) = 'VARCHAR', false))))))",
    _absent_or("f_country", "VARCHAR"), _absent_or("f_region", "VARCHAR"),
])

SERVER_V3 = SqlShape(
    platform=NAME, source="server",
    match=(f"method = 'POST' AND api_host IN ('{API_HOST}', '127.0.0.1', 'localhost') "
           f"AND regexp_matches(path, '{_V3_PATH}') AND {_PLAIN_URL}"),
    fields={"data": "$.data", "test_id": "$.data.test_id", "partner": "$.data.partner",
            "events": "$.data.events", "ev": _E, "at": f"{_E}.event_at",
            "src": f"{_E}.action_source", "url": f"{_E}.event_source_url",
            "click": f"{_E}.click_id", "type": f"{_E}.type",
            "tt": f"{_E}.type.tracking_type", "cen": f"{_E}.type.custom_event_name",
            "meta": _M, "cid": f"{_M}.conversion_id", "currency": f"{_M}.currency",
            "value": f"{_M}.value", "count": f"{_M}.item_count",
            "products": f"{_M}.products", "user": _U,
            **{f"u_{k}": f"{_U}.{k}" for k in _STRING_USER_FIELDS},
            "sd": f"{_U}.screen_dimensions", "sd_w": f"{_U}.screen_dimensions.width",
            "sd_h": f"{_U}.screen_dimensions.height",
            "dpo": f"{_U}.data_processing_options",
            "modes": f"{_U}.data_processing_options.modes",
            "country": f"{_U}.data_processing_options.country",
            "region": f"{_U}.data_processing_options.region"},
    valid=_V3_VALID,
    pixel_id=_PIXEL,
    event_name=f"CASE WHEN f_tt ->> '$' = 'CUSTOM' THEN f_cen ->> '$' ELSE {_V3_NAME} END",
    event_id=_V3_CID,
    key=f"CASE WHEN {_V3_CID} IS NOT NULL THEN [{_PIXEL}, {_V3_NAME}, {_V3_CUSTOM}, "
        f"{_V3_CID}] END",
    event_time=_V3_TIME,
    value="TRY_CAST(f_value ->> '$' AS DOUBLE)",
    currency="nullif(f_currency ->> '$', '')",
    content_ids=("CASE WHEN f_products IS NULL THEN []::VARCHAR[] ELSE "
                 "list_filter(json_extract_string(f_products, '$[*].id'), "
                 "lambda x: coalesce(x, '') <> '') END"),
    page_url="f_url ->> '$'",
    # the sink's answer with none recorded: 400 for an event_at out of Reddit's window
    # (every other refusal is declined above), else 200
    default_status=f"CASE WHEN {_V3_CLOCK} THEN 400 ELSE 200 END",
    rejected=_V3_CLOCK,
)

SHAPES = (BROWSER_GET, SERVER_V3)
