"""Meta's common request shapes, decoded in SQL by ``pixelcheck analyze``: the pixel's
GET beacon, and a Conversions API call with a JSON body of one event. Each gives the
rows ``Meta.decode_browser`` / ``Meta.handle_server`` give (tests/test_analyze_fastpath.py);
form bodies, POST beacons and batches go through those decoders."""

from __future__ import annotations

from ...analysis.fastpath import (
    SqlShape,
    json_ids,
    json_number,
    json_text,
    param_ids,
    scalars_ok,
)
from .platform import GRAPH_HOST, MAX_EVENT_AGE_DAYS, NAME

#: a value a pixel parameter's _maybe_json would turn into a list or an object
_JSONISH = "regexp_matches(coalesce({0}, ''), '^\\s*[\\[{{]')"

BROWSER_GET = SqlShape(
    platform=NAME, source="browser",
    match=("method = 'GET' AND rtrim(path, '/') = '/tr' AND "
           "regexp_full_match(host, '(www\\.([a-z0-9-]+\\.)?)?facebook\\.com')"),
    params={"id": "id", "ev": "ev", "eid": "eid", "ts": "ts", "dl": "dl",
            "value": "cd[value]", "currency": "cd[currency]", "order": "cd[order_id]",
            "ids": "cd[content_ids]"},
    valid=("coalesce(p_id, '') <> '' AND coalesce(p_ev, '') <> '' AND NOT "
           + _JSONISH.format("p_currency") + " AND NOT " + _JSONISH.format("p_order")
           + " AND " + param_ids("p_ids") + " IS NOT NULL"),
    pixel_id="p_id", event_name="p_ev", event_id="p_eid",
    key="CASE WHEN coalesce(p_eid, '') <> '' THEN [p_id, p_ev, p_eid] END",
    event_time="TRY_CAST(p_ts AS DOUBLE) / 1000.0",
    value="TRY_CAST(p_value AS DOUBLE)", currency="p_currency", order_id="p_order",
    content_ids=param_ids("p_ids"), page_url="p_dl",
)

_EVENTS_PATH = "^/v\\d+(?:\\.\\d+)?/([^/]+)/events/?$"
_TIME = json_number("f_time")

SERVER_JSON = SqlShape(
    platform=NAME, source="server",
    match=(f"api_host IN ('{GRAPH_HOST}', '127.0.0.1', 'localhost') "
           f"AND regexp_matches(path, '{_EVENTS_PATH}') AND (content_type = 'application/json'"
           " OR (coalesce(content_type, '') NOT IN ('application/x-www-form-urlencoded', "
           "'multipart/form-data') AND ltrim(body) LIKE '{%'))"),
    fields={"data": "$.data", "event": "$.data[0]", "name": "$.data[0].event_name",
            "id": "$.data[0].event_id", "time": "$.data[0].event_time",
            "url": "$.data[0].event_source_url", "custom": "$.data[0].custom_data",
            "value": "$.data[0].custom_data.value",
            "currency": "$.data[0].custom_data.currency",
            "order": "$.data[0].custom_data.order_id",
            "ids": "$.data[0].custom_data.content_ids"},
    valid=("json_type(body) = 'OBJECT' AND json_type(f_data) = 'ARRAY' "
           "AND json_array_length(f_data) = 1 AND json_type(f_event) = 'OBJECT' "
           f"AND json_type(f_name) = 'VARCHAR' AND {_TIME} IS NOT NULL "
           "AND (f_custom IS NULL OR json_type(f_custom) = 'OBJECT') AND "
           + scalars_ok("f_id", "f_currency", "f_order")
           + " AND " + json_ids("f_ids") + " IS NOT NULL"),
    pixel_id=f"regexp_extract(path, '{_EVENTS_PATH}', 1)",
    event_name="f_name ->> '$'", event_id=json_text("f_id"),
    key=(f"CASE WHEN coalesce({json_text('f_id')}, '') <> '' THEN "
         f"[regexp_extract(path, '{_EVENTS_PATH}', 1), f_name ->> '$', {json_text('f_id')}] "
         "END"),
    event_time=_TIME, value=json_number("f_value"), currency=json_text("f_currency"),
    order_id=json_text("f_order"), content_ids=json_ids("f_ids"),
    page_url="CASE WHEN json_type(f_url) = 'VARCHAR' THEN f_url ->> '$' END",
    # what the sink answers with no answer recorded: Meta's 400 for a time more than
    # 7 days old (the JSON Schema is not checked here)
    default_status=(f"CASE WHEN {_TIME} < 1e11 AND arrival_time - {_TIME} > "
                    f"{MAX_EVENT_AGE_DAYS * 86400} THEN 400 ELSE 200 END"),
)

SHAPES = (BROWSER_GET, SERVER_JSON)
