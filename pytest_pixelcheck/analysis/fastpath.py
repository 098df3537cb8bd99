"""Decoding the common request shapes in SQL, so a production log of millions of lines
reaches the engine without a Python loop over its rows.

A platform lists the shapes its traffic usually takes (``Platform.sql_shapes``): which
requests a shape covers, and one SQL expression per engine column. The engine runs
them all in one statement over the capture lines; every line no shape covers (another
shape, a multi-event batch, a truncated body, a backend log line, a line that is not
JSON) goes through the platform's Python decoder as before. A shape must give exactly
the rows the Python decoder gives for the lines it takes: ``tests/test_analyze_fastpath.py``
runs both on every recorded sample and on synthetic captures.

What a shape does not do is validate a server call against the platform's JSON Schema:
it reads the fields dedup needs (declining the line when they are missing or of the
wrong type) and trusts the answer recorded with the call. ``analyze --exact`` sends
every line through the Python decoders instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: the capture line's fields each shape can read, as columns of ``req``
REQ_SCHEMA = ('{"format": "VARCHAR", "source": "VARCHAR", "request": {"method": "VARCHAR", '
              '"url": "VARCHAR", "headers": "VARCHAR[][]", "body": "JSON", '
              '"body_base64": "VARCHAR", "body_length": "BIGINT", "arrival_time": "DOUBLE", '
              '"original_host": "VARCHAR", "response_status": "INTEGER"}}')
_SCHEME = r"^[a-zA-Z][a-zA-Z0-9+.-]*://"


@dataclass(frozen=True)
class SqlShape:
    """One request shape a platform decodes in SQL, into exactly one event.

    Expressions read the columns of ``req``: ``method`` (upper case), ``url``, ``host``
    (lower case, no port), ``api_host`` (the host the backend meant: the recorded
    original host when the proxy rerouted the call), ``path``, ``query``, ``body``
    (text), ``content_type`` (lower case, no parameters), ``arrival_time``, ``status``
    (the recorded answer), ``headers`` (a list of [name, value]; read one with
    ``header(name)``) and ``source`` (the capture line's hint); plus ``p_<alias>``
    for each query parameter in ``params`` (URL-decoded, the last one when repeated,
    NULL when absent) and ``f_<alias>`` for each JSON path of the body in ``fields``
    (a JSON value, the body parsed once; NULL when absent; read it with
    ``json_text``, ``json_number``, ``json_ids``).

    DuckDB may evaluate the conditions of ``valid`` in any order, so every cast there
    is a ``TRY_CAST`` (or under a ``CASE``). The core declines for every shape: bodies
    DuckDB's JSON reader would read but Python's would not (trailing commas, ``nan``),
    bodies with more than 32 brackets, queries with a %-escape that is not UTF-8, URLs
    with tabs or newlines, truncated or binary bodies and compressed ones. Not caught:
    a capture line or body with a key written twice (DuckDB reads the first, Python
    the last).
    """

    platform: str
    source: str
    #: which requests the shape is about (hosts, paths, method): cheap, read first
    match: str
    #: the line is the shape's only when this holds (fields present and of the right
    #: type); otherwise the Python decoder reads it
    valid: str = "true"
    params: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, str] = field(default_factory=dict)
    pixel_id: str = "NULL"
    event_name: str = "NULL"
    event_id: str = "NULL"
    #: the platform's dedup key as a VARCHAR[] (NULL: none), component for component
    #: what ``Platform.dedup_key`` returns
    key: str = "NULL"
    #: seconds since the epoch
    event_time: str = "NULL"
    value: str = "NULL"
    currency: str = "NULL"
    order_id: str = "NULL"
    #: VARCHAR[] of the content ids (custom_data.content_ids), any order
    content_ids: str = "NULL"
    page_url: str = "NULL"
    #: the status the platform answers when none was recorded (SQL; NULL: none)
    default_status: str = "NULL"
    #: the platform refuses the event inside a 2xx answer
    rejected: str = "false"
    #: the event is one the platform never merges (a page view of the tag)
    unmerged: str = "false"


def header(name: str) -> str:
    """SQL: the first value of the request header ``name`` (any case), or NULL."""
    return f"list_filter(headers, lambda h: lower(h[1]) = {_quote(name.lower())})[1][2]"


def url_parts() -> str:
    """host, path and query of ``url``, as urlsplit gives them."""
    return (f"lower(regexp_extract(url, '{_SCHEME}(?:[^@/?#]*@)?([^:/?#]*)', 1)) AS host, "
            f"coalesce(nullif(regexp_extract(url, '{_SCHEME}[^/?#]*([^?#]*)', 1), ''), '/') "
            "AS path, regexp_extract(url, '^[^#]*\\?([^#]*)', 1) AS query")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _param(name: str) -> str:
    # parse_qsl: '+' is a space, the value is what follows the first '=', last one wins
    return (f"list_filter(_params, lambda x: x.k = {_quote(name)})[-1].v")


_PARAMS = ("list_transform(string_split(query, '&'), lambda kv: struct_pack("
           "k := url_decode(replace(split_part(kv, '=', 1), '+', ' ')), "
           "v := url_decode(replace(CASE WHEN strpos(kv, '=') > 0 "
           "THEN substr(kv, strpos(kv, '=') + 1) ELSE '' END, '+', ' '))))")


def _shape_select(shape: SqlShape, index: int) -> str:
    """The rows of one shape: (line_no, the engine's columns)."""
    inner = [f"r.*, {_PARAMS} AS _params" if shape.params else "r.*"]
    if shape.fields:
        paths = ", ".join(_quote(p) for p in shape.fields.values())
        inner.append(f"json_extract(body, [{paths}]) AS _fields")
    named = ["s.*"]
    named += [f"{_param(name).replace('_params', 's._params')} AS p_{alias}"
              for alias, name in shape.params.items()]
    named += [f"s._fields[{i}] AS f_{alias}" for i, alias in enumerate(shape.fields, 1)]
    # DuckDB's JSON reader takes what Python's refuses (trailing commas, nan, inf), and
    # Python refuses JSON nested more than 32 deep: such bodies are the decoders'
    json_guard = f" AND {python_json_ok('body')}" if shape.fields else ""
    # a %-escape that is not UTF-8: Python writes U+FFFD, DuckDB's url_decode fails
    query_guard = " AND try(url_decode(query)) IS NOT NULL" if shape.params else ""
    # Python: the recorded status, unless none (or 0) was recorded
    status = (f"coalesce(nullif(status, 0), {shape.default_status})"
              if shape.source == "server" else "status")
    source_guard = ("(source IS NULL OR source <> 'server')" if shape.source == "browser"
                    else "(source IS NULL OR source <> 'browser')")
    return f"""
SELECT line_no, {index} AS shape, {_quote(shape.platform)} AS platform,
       {_quote(shape.source)} AS source, ({shape.pixel_id})::VARCHAR AS pixel_id,
       ({shape.event_name})::VARCHAR AS event_name, ({shape.event_id})::VARCHAR AS event_id,
       ({shape.key})::VARCHAR[] AS key, ({shape.event_time})::DOUBLE AS event_time,
       arrival_time, ({shape.value})::DOUBLE AS value, ({shape.currency})::VARCHAR AS currency,
       ({status})::INTEGER AS status, ({shape.rejected})::BOOLEAN AS rejected,
       ({shape.unmerged})::BOOLEAN AS unmerged, ({shape.order_id})::VARCHAR AS order_id,
       ({shape.content_ids})::VARCHAR[] AS content_ids, ({shape.page_url})::VARCHAR AS page
FROM (SELECT {', '.join(named)}
      FROM (SELECT {', '.join(inner)} FROM req r
            WHERE {source_guard} AND body_base64 IS NULL AND body_length IS NULL
              AND content_encoding IS NULL
              AND ({shape.match}){json_guard}{query_guard}) s)
WHERE coalesce(({shape.valid})::BOOLEAN, false)"""


def python_json_ok(text: str) -> str:
    """SQL: the JSON ``text`` is one DuckDB and Python read alike: valid, no trailing
    comma or nan/inf spelling only DuckDB accepts, and few enough brackets that it
    cannot be nested past Python's depth limit (MAX_JSON_DEPTH)."""
    from ..depth import MAX_JSON_DEPTH

    return (f"(json_valid({text}) "
            f"AND NOT regexp_matches({text}, ',\\s*[\\]}}]') "
            f"AND NOT regexp_matches({text}, '(?i)(^|[:,\\[])\\s*[+-]?(nan|inf)') "
            f"AND length({text}) - length(translate({text}, '{{[', '')) <= {MAX_JSON_DEPTH})")


def json_ids(value: str) -> str:
    """SQL: the content ids in the JSON ``value`` as ``diagnosis._ids`` reads them (an
    array of strings or integers; a string holding such an array; any other string as
    the one id); NULL when they are of another form, which ``scalars_ok`` refuses."""
    return f"""(CASE
    WHEN {value} IS NULL OR json_type({value}) = 'NULL' THEN []::VARCHAR[]
    WHEN json_type({value}) = 'ARRAY' THEN {_plain_ids(value)}
    WHEN json_type({value}) = 'VARCHAR' THEN {param_ids(f"({value} ->> '$')")}
    ELSE []::VARCHAR[] END)"""


def _plain_ids(array: str) -> str:
    return (f"(CASE WHEN json_array_length({array}) = 0 THEN []::VARCHAR[] "
            f"WHEN list_bool_and(list_transform(json_extract({array}, '$[*]'), "
            "lambda x: json_type(x) IN ('VARCHAR', 'BIGINT', 'UBIGINT'))) "
            f"THEN json_extract_string({array}, '$[*]') END)")


def param_ids(text: str) -> str:
    """SQL: content ids sent as text (a JSON array in a string, or one id)."""
    return f"""(CASE
    WHEN {text} IS NULL THEN []::VARCHAR[]
    WHEN regexp_matches({text}, ',\\s*[\\]}}]|(?i:nan|inf)') THEN NULL
    WHEN json_valid({text}) AND json_type({text}) = 'ARRAY' THEN {_plain_ids(text)}
    WHEN json_valid({text}) THEN []::VARCHAR[]
    ELSE [{text}] END)"""


def json_text(value: str) -> str:
    """SQL: the JSON ``value`` as Python's ``str`` writes a string or an integer; NULL
    when absent or null, and also for other types, which ``scalars_ok`` refuses."""
    return (f"(CASE WHEN json_type({value}) IN ('VARCHAR', 'BIGINT', 'UBIGINT') "
            f"THEN {value} ->> '$' END)")


def json_number(value: str) -> str:
    """SQL: the JSON ``value`` as Python's ``float()`` reads it (a number, or a string
    of one); NULL otherwise."""
    return (f"(CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'VARCHAR') "
            f"THEN TRY_CAST({value} ->> '$' AS DOUBLE) "
            f"WHEN json_type({value}) = 'BOOLEAN' THEN ({value} ->> '$' = 'true')::DOUBLE END)")


def scalars_ok(*values: str) -> str:
    """SQL: each JSON value is absent, null, a string or an integer (so ``json_text``
    gives what Python's ``str`` gives)."""
    return " AND ".join(f"coalesce(json_type({v}) IN ('NULL', 'VARCHAR', 'BIGINT', "
                        f"'UBIGINT'), true)" for v in values) or "true"


def key_text(components: Iterable[object] | None) -> str | None:
    """The engine's text of a dedup key: the components joined by U+001F, None as
    U+001E (what ``KEY_TEXT`` gives in SQL)."""
    if components is None:
        return None
    return "\x1f".join("\x1e" if c is None else str(c) for c in components)


KEY_TEXT = "array_to_string(list_transform(key, lambda c: coalesce(c, chr(30))), chr(31))"
#: content ids as the engine stores them: sorted, joined by U+001F
IDS_TEXT = "coalesce(array_to_string(list_sort(content_ids), chr(31)), '')"


def read_lines(path: str, gzipped: bool) -> str:
    """Every line of the file as one VARCHAR column, in file order (blank lines too, so
    a table of them numbers its rows like the file)."""
    return (f"SELECT line FROM read_csv({_quote(path)}, columns = {{'line': 'VARCHAR'}}, "
            "delim = '\\x01', quote = '', escape = '', header = false, auto_detect = false, "
            "strict_mode = false, null_padding = true, max_line_size = 16777216, "
            "buffer_size = 33554432, "
            f"compression = '{'gzip' if gzipped else 'none'}')")


def _keys_once(json: str, path: str | None = None) -> str:
    """SQL: the object at ``path`` of ``json`` names each key once."""
    keys = f"json_keys({json}, '{path}')" if path else f"json_keys({json})"
    return f"len({keys}) = len(list_distinct({keys}))"


def decode_statement(table: str, file_no: int, shapes: list[SqlShape]) -> str:
    """Inserts into ``events`` the rows of the lines of ``table`` that a shape decodes,
    and records which lines those were in ``fast_lines``."""
    from .decoding import CAPTURE_FORMAT_SQL

    if not shapes:
        return ("CREATE OR REPLACE TABLE fast_rows AS "
                "SELECT 0::BIGINT AS line_no, 0 AS shape WHERE false")
    union = "\nUNION ALL".join(_shape_select(s, i) for i, s in enumerate(shapes))
    page = "coalesce(split_part(split_part(page, '?', 1), '#', 1), '')"
    return f"""
CREATE OR REPLACE TABLE fast_rows AS
WITH req AS MATERIALIZED (
    SELECT line_no, j.source, upper(j.request.method) AS method, j.request.url AS url,
           j.request.body ->> '$' AS body, j.request.body_base64 AS body_base64,
           j.request.body_length AS body_length, j.request.arrival_time AS arrival_time,
           j.request.response_status AS status, j.request.headers AS headers,
           lower(trim(split_part(list_filter(j.request.headers,
                 lambda h: lower(h[1]) = 'content-type')[1][2], ';', 1))) AS content_type,
           list_filter(j.request.headers,
                 lambda h: lower(h[1]) = 'content-encoding')[1][2] AS content_encoding,
           {url_parts()},
           coalesce(nullif(j.request.original_host, ''), lower(regexp_extract(j.request.url,
                 '{_SCHEME}(?:[^@/?#]*@)?([^:/?#]*)', 1))) AS api_host
    FROM (SELECT line_no, json_transform(line, '{REQ_SCHEMA}') AS j
          FROM (SELECT rowid + 1 AS line_no, line FROM {table}
                WHERE line LIKE '%{CAPTURE_FORMAT_SQL}%')
          WHERE json_valid(line)
                -- a key named twice: DuckDB reads the first, Python the last
                AND {_keys_once("line")} AND {_keys_once("line", "$.request")})
    WHERE j.format = '{CAPTURE_FORMAT_SQL}' AND j.request.url IS NOT NULL
          AND j.request.arrival_time IS NOT NULL
          -- a body that is not a string: Python reads str() of it
          AND coalesce(json_type(j.request.body), 'VARCHAR') IN ('VARCHAR', 'NULL')
          -- urlsplit drops tabs and newlines from a URL
          AND NOT regexp_matches(j.request.url, '[\\t\\r\\n]')),
decoded AS ({union})
SELECT * FROM decoded QUALIFY count(*) OVER (PARTITION BY line_no) = 1;

INSERT INTO events
SELECT {file_no}, line_no, 0, platform, source, pixel_id, event_name, event_id,
       {KEY_TEXT} AS dedup_key,
       CASE WHEN isfinite(event_time) THEN event_time END, arrival_time,
       CASE WHEN isfinite(value) THEN value END, currency, status,
       CASE WHEN source = 'server' AND (rejected OR (status IS NOT NULL
                 AND status NOT BETWEEN 200 AND 299)) THEN 'rejected'
            WHEN unmerged THEN 'unmerged'
            WHEN key IS NULL THEN 'nokey' ELSE 'ok' END,
       NULL, order_id, {IDS_TEXT}, {page}
FROM fast_rows;
"""
