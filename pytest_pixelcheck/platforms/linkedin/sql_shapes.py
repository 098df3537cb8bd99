"""LinkedIn's common request shapes, decoded in SQL by ``pixelcheck analyze``: the
Insight Tag's GET hit to ``/collect`` (a conversion, or a page view without
``conversionId``), its ``/wa/`` page-visit signal sent as plain JSON, and a
Conversions API CREATE of one conversion event. Each gives the rows
``LinkedIn.decode_browser`` / ``LinkedIn.handle_server`` give
(tests/test_analyze_fastpath.py); everything else goes through those decoders:
POST and form hits, gzip+base64 signals, BATCH_CREATE calls, and every call the sink
would refuse or could read otherwise than SQL does.

The names and ad accounts of LinkedIn's events come from the declared conversion
rules (``rules.py``), so the shapes are built from the catalogue when ``analyze``
asks for them (``shapes``), not once at import.

A server call is taken only when it passes every check ``handle_server`` makes
(token, ``LinkedIn-Version`` and its age, ``X-Restli-Protocol-Version``, not a
``BATCH_CREATE``, the JSON Schema, hashed ``SHA256_*`` ids, a conversion time within
90 days): its status is then the one recorded, else LinkedIn's ``201``. The JSON is
read by DuckDB, which is more lenient than Python's parser (trailing commas, ``nan``,
``inf``), keeps the first of two equal keys (Python the last) and reads numbers of
any length; bodies where that could matter are left to Python.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...analysis.fastpath import SqlShape, header
from .pii_rules import HASHED_ID_TYPES, ID_TYPES
from .platform import (
    API_HOST,
    EVENTS_PATH,
    MAX_EVENT_AGE_DAYS,
    NAME,
    PROTOCOL_VERSION,
    SIGNAL_NAMES,
    VERSION_LIFETIME_MONTHS,
)
from .rules import UNDECLARED, URN_PREFIX, RuleCatalogue


def _lit(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def _in(values: Iterable[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in sorted(values)) + ")"


#: the URL parts as urlsplit reads them: an http(s) URL without the tab and newline
#: urlsplit drops, and without a fragment (the core's query would read past it)
_URL_OK = (r"regexp_matches(url, '^[hH][tT][tT][pP][sS]?://') "
           r"AND NOT regexp_matches(url, '[\t\n\r#]')")
_COLLECTION_HOST = r"regexp_full_match(host, '([a-z0-9-]+\.)?ads\.linkedin\.com')"
#: a JSON body DuckDB and Python's json read alike: no trailing comma and no nan or
#: inf (DuckDB takes them), nested at most 32 levels (pixelcheck's limit: counted as
#: brackets) and too short for a number past Python's 4300 digits
_JSON_OK = (r"body LIKE '{%' AND length(body) <= 4000 "
            r"AND NOT regexp_matches(body, ',\s*[\]}]') "
            r"AND NOT regexp_matches(body, '(?i)[:,\[]\s*[+-]?(nan|inf)') "
            r"AND length(body) - length(replace(replace(body, '{', ''), '[', '')) <= 32")


def _distinct_keys(value: str) -> str:
    """SQL: the JSON object ``value`` names no key twice (DuckDB reads the first,
    Python the last)."""
    return f"len(json_keys({value})) = len(list_distinct(json_keys({value})))"


def _optional(value: str, check: str) -> str:
    return f"({value} IS NULL OR ({check}))"


def _string(value: str) -> str:
    return f"json_type({value}) = 'VARCHAR'"


def _filled(value: str) -> str:
    return f"(json_type({value}) = 'VARCHAR' AND {value} ->> '$' <> '')"


def _names(rule: str, rules: RuleCatalogue) -> tuple[str, str]:
    """SQL: the event name and the ad account (partner id) of the rule id ``rule``,
    as ``rules.name_of`` and ``rules.partner_of`` give them now."""
    known = [r for r in rules.rule_ids() if r.isascii() and r.isdigit()]
    names = " ".join(f"WHEN {_lit(r)} THEN {_lit(rules.name_of(r))}" for r in known)
    partners = " ".join(f"WHEN {_lit(r)} THEN {_lit(rules.partner_of(r))}" for r in known)
    default_name = f"'{UNDECLARED} ' || {rule}"
    default_partner = _lit(rules.default_partner())
    if not known:
        return default_name, default_partner
    return (f"(CASE {rule} {names} ELSE {default_name} END)",
            f"(CASE {rule} {partners} ELSE {default_partner} END)")


def _collect(rules: RuleCatalogue) -> SqlShape:
    """The tag's GET hit to /collect, of one partner id; a mirror copy (px4, e_ipv6)
    and a conversionId of other than digits are left to Python."""
    conversion = "coalesce(p_rule, '') <> ''"
    name, _ = _names("p_rule", rules)
    return SqlShape(
        platform=NAME, source="browser",
        match=(f"method = 'GET' AND rtrim(path, '/') = '/collect' AND {_COLLECTION_HOST} "
               f"AND host <> 'px4.ads.linkedin.com' AND {_URL_OK} "
               # url_decode fails on a byte past ASCII that is not UTF-8: none of them
               r"AND NOT regexp_matches(query, '%[89a-fA-F][0-9a-fA-F]')"),
        params={"pid": "pid", "rule": "conversionId", "eid": "eventId", "time": "time",
                "url": "url", "ipv6": "e_ipv6"},
        valid=("regexp_full_match(p_pid, '[0-9A-Za-z_.-]+') AND p_ipv6 IS NULL "
               "AND (coalesce(p_rule, '') = '' OR regexp_full_match(p_rule, '[0-9]+')) "
               "AND (coalesce(p_time, '') = '' OR regexp_full_match(p_time, '[0-9]{1,15}'))"),
        pixel_id="p_pid",
        event_name=f"CASE WHEN {conversion} THEN {name} ELSE 'PAGE_VISIT' END",
        event_id=f"CASE WHEN {conversion} THEN nullif(p_eid, '') END",
        key=f"CASE WHEN {conversion} AND coalesce(p_eid, '') <> '' THEN [p_eid] END",
        event_time=("CASE WHEN coalesce(TRY_CAST(p_time AS DOUBLE), 0) = 0 THEN arrival_time "
                    "ELSE TRY_CAST(p_time AS DOUBLE) / 1000.0 END"),
        page_url="nullif(p_url, '')",
        unmerged=f"NOT ({conversion}) OR ({name}) IN {_in(SIGNAL_NAMES)}",
    )


_WA_TIME = "TRY_CAST(f_time ->> '$' AS DOUBLE)"

#: the tag's /wa/ signal as plain JSON (gzip+base64 bodies are left to Python): never
#: a conversion, so never merged
WA_JSON = SqlShape(
    platform=NAME, source="browser",
    match=(f"method = 'POST' AND rtrim(path, '/') = '/wa' AND {_COLLECTION_HOST} "
           f"AND {_URL_OK} AND {_JSON_OK}"),
    fields={"root": "$", "pids": "$.pids", "pid": "$.pids[0]", "signal": "$.signalType",
            "time": "$.time", "url": "$.url"},
    valid=("json_type(f_root) = 'OBJECT' AND " + _distinct_keys("f_root")
           + " AND json_type(f_pids) = 'ARRAY' AND (" + _filled("f_pid")
           + " OR (json_type(f_pid) IN ('BIGINT', 'UBIGINT') "
           "AND regexp_full_match(f_pid ->> '$', '[0-9]+'))) AND "
           + _optional("f_time", "json_type(f_time) IN ('NULL', 'BIGINT', 'UBIGINT') OR ("
                       + _string("f_time")
                       + " AND regexp_full_match(f_time ->> '$', '[0-9]{1,15}'))")),
    pixel_id="f_pid ->> '$'",
    event_name=f"CASE WHEN {_filled('f_signal')} THEN f_signal ->> '$' ELSE 'PAGE_VISIT' END",
    event_time=(f"CASE WHEN coalesce({_WA_TIME}, 0) = 0 THEN arrival_time "
                f"ELSE {_WA_TIME} / 1000.0 END"),
    page_url=f"CASE WHEN {_filled('f_url')} THEN f_url ->> '$' END",
    unmerged="true",
)

#: the gateway's checks of handle_server, all passed: a bearer token, an active
#: LinkedIn-Version, the Rest.li protocol, and not a BATCH_CREATE
_VERSION = header("linkedin-version")
#: (a CASE, as DuckDB may try any condition of the AND first: none may fail)
_NOW = ("CASE WHEN arrival_time BETWEEN 0 AND 4e9 THEN "
        "make_timestamp(CAST(floor(arrival_time) AS BIGINT) * 1000000) END")
_AGE = (f"((year({_NOW}) - TRY_CAST(substr({_VERSION}, 1, 4) AS INTEGER)) * 12 "
        f"+ month({_NOW}) - TRY_CAST(substr({_VERSION}, 5, 2) AS INTEGER))")
_METHOD = header("x-restli-method")
_HEADERS_OK = (
    f"regexp_full_match({header('authorization')}, '(?i:bearer) +[!-~]+') "
    f"AND regexp_full_match({_VERSION}, '[0-9]{{6}}(\\.[0-9]{{2}})?') "
    f"AND arrival_time BETWEEN 0 AND 4e9 "
    f"AND TRY_CAST(substr({_VERSION}, 5, 2) AS INTEGER) BETWEEN 1 AND 12 "
    f"AND {_AGE} BETWEEN 0 AND {VERSION_LIFETIME_MONTHS} "
    f"AND {header('x-restli-protocol-version')} = '{PROTOCOL_VERSION}' "
    f"AND ({_METHOD} IS NULL OR (regexp_full_match({_METHOD}, '[A-Za-z_]*') "
    f"AND upper({_METHOD}) <> 'BATCH_CREATE'))")

_ID_VALUE = "json_extract(u, '$.idValue')"
_USER_ID = (f"coalesce(json_type(u) = 'OBJECT' AND {_distinct_keys('u')} "
            f"AND json_type(json_extract(u, '$.idType')) = 'VARCHAR' "
            f"AND (u ->> '$.idType') IN {_in(ID_TYPES)} "
            f"AND {_filled(_ID_VALUE)} "
            f"AND ((u ->> '$.idType') NOT IN {_in(HASHED_ID_TYPES)} "
            f"OR regexp_full_match(u ->> '$.idValue', '[A-Fa-f0-9]{{64}}')), false)")

#: the conversion event passes schema_conversion_event.json and _judge: its rule URN,
#: a time in epoch milliseconds at most 90 days old, user.userIds of known types with
#: SHA-256 hex digests where hashed, and the optional fields of their types
_EVENT_OK = " AND ".join([
    "json_type(f_root) = 'OBJECT'", _distinct_keys("f_root"), "f_elements IS NULL",
    _string("f_conv"),
    f"regexp_full_match(f_conv ->> '$', '{URN_PREFIX}[0-9]+')",
    "json_type(f_at) IN ('BIGINT', 'UBIGINT')", "TRY_CAST(f_at ->> '$' AS DOUBLE) >= 0",
    f"arrival_time - TRY_CAST(f_at ->> '$' AS DOUBLE) / 1000.0 <= {MAX_EVENT_AGE_DAYS * 86400}",
    _optional("f_id", _string("f_id")),
    _optional("f_value", "json_type(f_value) = 'OBJECT' AND " + _distinct_keys("f_value")
              + " AND " + _string("f_currency")
              + " AND regexp_full_match(f_currency ->> '$', '[A-Z]{3}') AND "
              + _string("f_amount")
              + " AND regexp_full_match(f_amount ->> '$', '-?[0-9]+(\\.[0-9]+)?')"),
    "json_type(f_user) = 'OBJECT'", _distinct_keys("f_user"),
    "json_type(f_uids) = 'ARRAY'",
    f"coalesce(list_bool_and(list_transform(json_extract(f_uids, '$[*]'), "
    f"lambda u: {_USER_ID})), true)",
    _optional("f_info", "json_type(f_info) = 'OBJECT' AND " + _distinct_keys("f_info")
              + " AND " + _filled("f_first") + " AND " + _filled("f_last") + " AND "
              + " AND ".join(_optional(f, _string(f))
                             for f in ("f_title", "f_company", "f_country"))),
    _optional("f_ext", "json_type(f_ext) = 'ARRAY' AND coalesce(list_bool_and("
              "list_transform(json_extract(f_ext, '$[*]'), "
              "lambda x: coalesce(json_type(x) = 'VARCHAR', false))), true)"),
    _optional("f_lead", _string("f_lead")),
])


def _create(rules: RuleCatalogue) -> SqlShape:
    """A Conversions API CREATE of one conversion event that LinkedIn takes."""
    rule = f"substr(f_conv ->> '$', {len(URN_PREFIX) + 1})"
    name, partner = _names(rule, rules)
    return SqlShape(
        platform=NAME, source="server",
        match=(f"method = 'POST' AND api_host IN ('{API_HOST}', '127.0.0.1', 'localhost') "
               f"AND rtrim(path, '/') = '{EVENTS_PATH}' AND {_URL_OK} AND {_JSON_OK}"),
        fields={"root": "$", "elements": "$.elements", "conv": "$.conversion",
                "at": "$.conversionHappenedAt", "id": "$.eventId",
                "value": "$.conversionValue", "amount": "$.conversionValue.amount",
                "currency": "$.conversionValue.currencyCode", "user": "$.user",
                "uids": "$.user.userIds", "info": "$.user.userInfo",
                "first": "$.user.userInfo.firstName", "last": "$.user.userInfo.lastName",
                "title": "$.user.userInfo.title", "company": "$.user.userInfo.companyName",
                "country": "$.user.userInfo.countryCode", "ext": "$.user.externalIds",
                "lead": "$.user.lead"},
        # a recorded 0 is no answer to Python (``recorded or answer``)
        valid=f"(status IS NULL OR status <> 0) AND {_HEADERS_OK} AND {_EVENT_OK}",
        pixel_id=partner, event_name=name,
        event_id="nullif(f_id ->> '$', '')",
        key="CASE WHEN coalesce(f_id ->> '$', '') <> '' THEN [f_id ->> '$'] END",
        event_time="TRY_CAST(f_at ->> '$' AS DOUBLE) / 1000.0",
        value="TRY_CAST(f_amount ->> '$' AS DOUBLE)",
        currency="f_currency ->> '$'",
        default_status="201",
        unmerged=f"({name}) IN {_in(SIGNAL_NAMES)}",
    )


def shapes(rules: RuleCatalogue) -> tuple[SqlShape, ...]:
    """The shapes, naming events after the rules declared now."""
    return (_collect(rules), WA_JSON, _create(rules))
