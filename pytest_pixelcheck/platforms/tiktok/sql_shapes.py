"""TikTok's common request shapes, decoded in SQL by ``pixelcheck analyze``: the pixel's
JSON beacon of one event (``POST analytics.tiktok.com/api/v2/pixel``), and an Events
API 2.0 call of one event (``POST /open_api/v1.3/event/track/``). Each gives the rows
``TikTok.decode_browser`` / ``TikTok.handle_server`` give (tests/test_analyze_fastpath.py);
batches, the 1.0 API and every line where SQL could read the body otherwise than
Python's ``json.loads`` and the JSON Schema check do go through those decoders.

TikTok answers a refused call with HTTP 200 and a ``code`` in the body, decided by
``handle_server``'s checks (token, JSON Schema, unhashed email/phone, event age). The
server shape takes only calls that pass the token, schema and hashing checks (the
rest are declined, not guessed) and computes the one refusal left, the event age.
"""

from __future__ import annotations

from ...analysis.fastpath import (
    SqlShape,
    header,
    json_ids,
    json_number,
    json_text,
    scalars_ok,
)
from ...depth import MAX_JSON_DEPTH
from .platform import (
    API_HOST,
    CANONICAL_NAME,
    COLLECTION_HOSTS,
    MAX_EVENT_AGE_DAYS,
    NAME,
    NOT_CONVERSIONS,
    V2_PATH,
)

STR, ARR = ("VARCHAR",), ("ARRAY",)
NUM = ("BIGINT", "UBIGINT", "DOUBLE")
#: an integer >= 0 (DuckDB types a JSON integer without a minus sign UBIGINT); a float
#: with no fraction, which the JSON Schema also takes for an integer, is declined
UINT = ("UBIGINT",)


def _sql(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_sql(i) for i in items) + "]"


#: What DuckDB's JSON reader takes and Python's ``json.loads`` refuses (a trailing
#: comma; nan / inf literals in any case: Python's NaN and Infinity are declined too),
#: a NUL (``\\u0000``) and the text ``\\N`` (the Python path's spool reads it back as
#: NULL); a match inside a string only declines a line.
_NOT_PYTHON_JSON = r",\s*[\]}]|[:\[,]\s*-?(?i:nan|inf)|\\u0000|\\\\N"


def python_json(body: str = "body") -> str:
    """SQL: the body reads the same with Python's ``wire.loads`` as with DuckDB: none
    of the above, no more than MAX_JSON_DEPTH opening brackets (so it is not nested
    deeper, which ``loads`` refuses) and no run of 1000 digits (Python refuses an
    integer of more than 4300)."""
    return (f"NOT regexp_matches({body}, {_sql(_NOT_PYTHON_JSON)}) "
            f"AND strlen({body}) - strlen(replace(replace({body}, '[', ''), '{{', '')) "
            f"<= {MAX_JSON_DEPTH} "
            f"AND (strlen({body}) < 1000 OR NOT regexp_matches({body}, '[0-9]{{1000}}'))")


def unique_keys(value: str) -> str:
    """SQL: the JSON ``value`` is not an object with a key twice (DuckDB reads the
    first, Python the last)."""
    return (f"coalesce(json_type({value}) <> 'OBJECT', true) OR "
            f"list_transform([json_keys({value})], lambda k: len(k) = list_unique(k))[1]")


def typed(value: str, spec: dict[str, tuple[str, ...]]) -> str:
    """SQL: each key of ``spec`` is absent from the JSON object ``value`` or of one of
    its JSON types (a JSON null is not absent); true when ``value`` is absent."""
    paths = ", ".join(_sql(f"$.{key}") for key in spec)
    allowed = "[" + ", ".join(_list(types) for types in spec.values()) + "]"
    return (f"coalesce(list_bool_and(list_transform(json_extract({value}, [{paths}]), "
            f"lambda v, i: v IS NULL OR list_contains({allowed}[i], json_type(v)))), true)")


def _each(array: str, condition: str) -> str:
    """SQL: ``condition`` (of ``e``) holds for every element of the JSON array."""
    return (f"coalesce(list_bool_and(list_transform(json_extract({array}, '$[*]'), "
            f"lambda e: {condition})), true)")


def _text(value: str) -> str:
    """SQL: a JSON string's text, NULL when empty or not a string (platform._text)."""
    return f"(CASE WHEN json_type({value}) = 'VARCHAR' THEN nullif({value} ->> '$', '') END)"


def _canonical(name: str) -> str:
    cases = " ".join(f"WHEN {name} = {_sql(a)} THEN {_sql(b)}" for a, b in CANONICAL_NAME.items())
    return f"(CASE {cases} ELSE {name} END)"


def _not_conversion(name: str) -> str:
    return f"(lower({name}) IN ({', '.join(_sql(n) for n in NOT_CONVERSIONS)}))"


def _ascii_if_not_conversion(name: str) -> str:
    # DuckDB lowers 'İ' to 'i', Python to 'i' and a combining dot
    return f"(NOT {_not_conversion(name)} OR regexp_full_match({name}, '[A-Za-z0-9]+'))"


# --- the pixel's beacon ----------------------------------------------------------------

_COLLECTION = "/api/v[0-9]+/(?:pixel|track)(?:/([A-Za-z_]+))?/?"
_NAME = "(f_name ->> '$')"
_BROWSER_ID = ("(CASE WHEN json_type(f_id) = 'VARCHAR' THEN nullif(f_id ->> '$', '') "
               "WHEN json_type(f_id) IN ('BIGINT', 'UBIGINT') THEN f_id ->> '$' END)")
_BROWSER_PIXEL = f"coalesce({_text('f_code')}, {_text('f_pcode')})"
#: what JavaScript's toISOString writes (the pixel's timestamp); other strings decline
_ISO = "(?:19|20)[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]{3})?Z"
_ISO_TIME = ("try_strptime(f_time ->> '$', ['%Y-%m-%dT%H:%M:%S.%gZ', '%Y-%m-%dT%H:%M:%SZ'])")
_BROWSER_TIME = (f"(CASE WHEN json_type(f_time) = 'VARCHAR' THEN epoch_us({_ISO_TIME})::DOUBLE "
                 "/ 1e6 WHEN json_type(f_time) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                 "THEN TRY_CAST(f_time ->> '$' AS DOUBLE) END)")
_ACT = f"lower(regexp_extract(path, '^{_COLLECTION}$', 1)) = 'act'"
_BROWSER_UNMERGED = f"({_not_conversion(_NAME)} OR ({_ACT} AND {_BROWSER_ID} IS NULL))"

BROWSER_JSON = SqlShape(
    platform=NAME, source="browser",
    match=(f"host IN ({', '.join(_sql(h) for h in sorted(COLLECTION_HOSTS))}) "
           f"AND regexp_full_match(path, '{_COLLECTION}') AND ltrim(body) LIKE '{{%'"),
    fields={"batch": "$.batch", "name": "$.event", "id": "$.event_id", "time": "$.timestamp",
            "pcode": "$.pixel_code", "context": "$.context", "pixel": "$.context.pixel",
            "code": "$.context.pixel.code", "page": "$.context.page",
            "url": "$.context.page.url", "props": "$.properties",
            "value": "$.properties.value", "currency": "$.properties.currency",
            "order": "$.properties.order_id", "ids": "$.properties.content_ids"},
    valid=" AND ".join([
        "json_type(body) = 'OBJECT'", python_json(),
        *(f"({unique_keys(v)})" for v in ("body", "f_context", "f_pixel", "f_page", "f_props")),
        # a browser hit keeps a recorded 0 as its status (Python reads 0 as no answer
        # only for a server call)
        "coalesce(status <> 0, true)",
        # one event: not a list, no batch
        "coalesce(json_type(f_batch) <> 'ARRAY', true)",
        # what decode_browser calls malformed: no event name or pixel code
        f"json_type(f_name) = 'VARCHAR' AND {_NAME} <> ''", f"{_BROWSER_PIXEL} IS NOT NULL",
        _ascii_if_not_conversion(_NAME),
        "coalesce(json_type(f_id) <> 'DOUBLE', true)",  # Python's str() of a float
        f"(coalesce(json_type(f_time) <> 'VARCHAR', true) OR (regexp_full_match("
        f"f_time ->> '$', '{_ISO}') AND {_ISO_TIME} IS NOT NULL))",
        # _page_url decodes a percent-encoded page
        f"NOT regexp_matches(coalesce({_text('f_url')}, ''), '(?i)^https?%3A')",
        # float() of a bool is 1.0 / 0.0, of a string more than SQL's cast reads
        "coalesce(json_type(f_value) NOT IN ('BOOLEAN', 'VARCHAR') OR (json_type(f_value) "
        "= 'VARCHAR' AND regexp_full_match(f_value ->> '$', '-?[0-9]+(?:\\.[0-9]+)?')), true)",
        scalars_ok("f_currency", "f_order"),
        # content ids in a string are read with Python's json.loads: declined
        "coalesce(json_type(f_ids) <> 'VARCHAR', true)", f"{json_ids('f_ids')} IS NOT NULL",
    ]),
    pixel_id=_BROWSER_PIXEL, event_name=_NAME, event_id=_BROWSER_ID,
    key=(f"CASE WHEN {_BROWSER_ID} IS NOT NULL AND NOT {_BROWSER_UNMERGED} THEN "
         f"[{_BROWSER_PIXEL}, {_canonical(_NAME)}, {_BROWSER_ID}] END"),
    event_time=_BROWSER_TIME, value=json_number("f_value"),
    currency=json_text("f_currency"), order_id=json_text("f_order"),
    content_ids=json_ids("f_ids"), page_url=_text("f_url"),
    unmerged=_BROWSER_UNMERGED,
)

# --- the Events API 2.0, one event --------------------------------------------------

_HEX = "'([A-Fa-f0-9]{64})?'"  # a digest, or empty
_HASHED = f"json_type(e) = 'VARCHAR' AND regexp_full_match(e ->> '$', {_HEX})"


def _hashes(value: str, *, nulls: bool = False) -> str:
    """SQL: absent, or a digest / empty string, or a list of them (JSON null too with
    ``nulls``): what the JSON Schema's ``hashes`` and ``_unhashed`` both take."""
    element = f"({_HASHED}{' OR json_type(e) = ' + _sql('NULL') if nulls else ''})"
    return (f"({value} IS NULL OR (json_type({value}) = 'ARRAY' AND {_each(value, element)})"
            f" OR list_transform([{value}], lambda e: {element})[1])")


_TIME = "(f_time ->> '$')::DOUBLE"

SERVER_JSON = SqlShape(
    platform=NAME, source="server",
    match=(f"api_host IN ('{API_HOST}', '127.0.0.1', 'localhost') "
           f"AND rtrim(path, '/') = '{V2_PATH}' AND ltrim(body) LIKE '{{%'"),
    fields={"source": "$.event_source", "pixel": "$.event_source_id",
            "test": "$.test_event_code", "partner": "$.partner_name", "data": "$.data",
            "event": "$.data[0]", "name": "$.data[0].event", "time": "$.data[0].event_time",
            "id": "$.data[0].event_id", "ldu": "$.data[0].limited_data_use",
            "user": "$.data[0].user",
            "email": "$.data[0].user.email", "phone": "$.data[0].user.phone",
            "phone_number": "$.data[0].user.phone_number", "page": "$.data[0].page",
            "url": "$.data[0].page.url", "props": "$.data[0].properties",
            "value": "$.data[0].properties.value",
            "currency": "$.data[0].properties.currency",
            "order": "$.data[0].properties.order_id",
            "ids": "$.data[0].properties.content_ids",
            "contents": "$.data[0].properties.contents"},
    valid=" AND ".join([
        "json_type(body) = 'OBJECT'", python_json(),
        *(f"({unique_keys(v)})" for v in ("body", "f_event", "f_user", "f_page", "f_props")),
        # the Access-Token header (a line from a backend log needs none: declined)
        f"regexp_matches(coalesce({header('access-token')}, ''), '[A-Za-z0-9]')",
        # Python reads a recorded 0 as no answer: 200
        "coalesce(status <> 0, true)",
        # the JSON Schema (schema_event_track.json), for one event
        "json_type(f_source) = 'VARCHAR' AND f_source ->> '$' IN ('web', 'app', 'offline', "
        "'crm')",
        "json_type(f_pixel) = 'VARCHAR' AND f_pixel ->> '$' <> ''",
        "coalesce(json_type(f_test) = 'VARCHAR', true)",
        "coalesce(json_type(f_partner) = 'VARCHAR', true)",
        "json_type(f_data) = 'ARRAY' AND json_array_length(f_data) = 1",
        "json_type(f_event) = 'OBJECT'",
        f"json_type(f_name) = 'VARCHAR' AND {_NAME} <> ''", _ascii_if_not_conversion(_NAME),
        "json_type(f_time) = 'UBIGINT'",
        *(f"coalesce(json_type(f_{alias}) = '{kind}', true)" for alias, kind in (
            ("id", "VARCHAR"), ("ldu", "BOOLEAN"), ("user", "OBJECT"), ("page", "OBJECT"),
            ("props", "OBJECT"))),
        typed("f_user", {"email": STR + ARR, "phone": STR + ARR, "external_id": STR + ARR,
                         **dict.fromkeys(("ttp", "ttclid", "ip", "user_agent", "locale",
                                          "first_name", "last_name", "city", "state",
                                          "country", "zip_code"), STR)}),
        # email and phone hashed (40062), external_id a string or a list of them
        _hashes("f_email"), _hashes("f_phone"), _hashes("f_phone_number", nulls=True),
        "(json_type(f_user -> '$.external_id') IS DISTINCT FROM 'ARRAY' OR "
        + _each("f_user -> '$.external_id'", "json_type(e) = 'VARCHAR'") + ")",
        typed("f_page", {"url": STR, "referrer": STR}),
        typed("f_props", {"currency": STR, "value": NUM, "content_type": STR,
                          "content_ids": ARR, "order_id": STR, "shop_id": STR,
                          "description": STR, "query": STR, "contents": ARR}),
        "(f_currency IS NULL OR regexp_full_match(f_currency ->> '$', '[A-Z]{3}'))",
        _each("f_ids", "json_type(e) = 'VARCHAR'"),
        _each("f_contents", "json_type(e) = 'OBJECT' AND (" + unique_keys("e") + ") AND "
              + typed("e", {"content_id": STR, "content_name": STR, "content_type": STR,
                            "content_category": STR, "brand": STR, "price": NUM,
                            "quantity": UINT})),
    ]),
    pixel_id="f_pixel ->> '$'", event_name=_NAME, event_id=_text("f_id"),
    key=(f"CASE WHEN {_text('f_id')} IS NOT NULL THEN "
         f"[f_pixel ->> '$', {_canonical(_NAME)}, {_text('f_id')}] END"),
    event_time=_TIME, value=json_number("f_value"), currency="f_currency ->> '$'",
    order_id="f_order ->> '$'", content_ids=json_ids("f_ids"), page_url=_text("f_url"),
    # TikTok answers HTTP 200 whatever it decides; the one refusal the shape lets
    # through is an event_time (in seconds) more than MAX_EVENT_AGE_DAYS old
    default_status="200",
    rejected=(f"{_TIME} <= 1e11 AND arrival_time - {_TIME} > {MAX_EVENT_AGE_DAYS * 86400}"),
    unmerged=_not_conversion(_NAME),
)

SHAPES = (BROWSER_JSON, SERVER_JSON)
