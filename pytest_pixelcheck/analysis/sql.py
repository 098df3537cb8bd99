"""The SQL the analyze engine runs, in the order it runs it.

Tables: ``events`` (one row per decoded event, see decoding.COLUMNS), ``ev`` (the same
without copies read twice, numbered, with its period), ``grp`` (one row per
conversion: a platform's dedup key in a period), ``stats`` (the dashboard's figures),
``problem`` (the rows the report explains) and ``requests`` (those rows' requests, as
capture lines). Plain SQL apart from DuckDB's ``read_csv`` / ``read_parquet`` /
``COPY``: docs/analyze-at-scale.md says how to run it on a warehouse.
"""

from __future__ import annotations

from typing import Any

from ..diagnosis import DiagnosisSettings


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_tables(columns: dict[str, str]) -> str:
    spec = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    return (f"CREATE TABLE events ({spec});"
            "CREATE TABLE requests (file_no INTEGER, line_no BIGINT, request VARCHAR);")


def insert_spool(path: str, columns: dict[str, str], null: str) -> str:
    spec = "{" + ", ".join(f"{_quote(n)}: {_quote(k)}" for n, k in columns.items()) + "}"
    return (f"INSERT INTO events SELECT * FROM read_csv({_quote(path)}, columns = {spec}, "
            f"header = false, nullstr = {_quote(null)}, allow_quoted_nulls = false, "
            "quote = '\"', escape = '\"', "
            "auto_detect = false, max_line_size = 100000000)")


def _read_parquet(pattern: str) -> str:
    return (f"read_parquet({_quote(pattern)}, hive_partitioning = true, "
            "hive_types_autocast = false, union_by_name = true)")


def insert_parquet(pattern: str, file_no: int, base: int, columns: dict[str, str]) -> str:
    # an export's rows keep their own file and line numbers inside this input's
    names = [c for c in columns if c not in ("file_no", "line_no")]
    source = _read_parquet(pattern)
    return (f"INSERT INTO events SELECT {file_no} AS file_no, "
            f"file_no::BIGINT * {base} + line_no AS line_no, {', '.join(names)} "
            f"FROM {source};"
            f"INSERT INTO requests SELECT DISTINCT {file_no}, file_no::BIGINT * {base} + "
            f"line_no, request FROM {source} WHERE request IS NOT NULL")


def _period(by: str) -> str:
    stamp = "make_timestamp(CAST(arrival_time * 1000000 AS BIGINT))"
    if by == "day":
        return f"strftime({stamp}, '%Y-%m-%d')"
    if by == "hour":
        return f"strftime({stamp}, '%Y-%m-%d %H:00')"
    return "'all'"


def max_ages(settings: DiagnosisSettings) -> dict[str, float]:
    """The oldest event time (seconds before arrival) each platform accepts; "" for
    a platform nobody registered."""
    from .. import platforms

    default = settings.max_age_days * 86400
    return {p.name: p.max_event_age or default for p in platforms.all_platforms()} | {
        "": default}


def finish_loading(several_files: bool, by: str, max_ages: dict[str, float],
                   settings: DiagnosisSettings) -> str:
    """``ev``: events without the copies an earlier file already had (a HAR and a
    capture of one session), in input order, with their day and period, and whether
    a server event's time is one the platform refuses. Answers how many were dropped."""
    overlap = ("QUALIFY file_no = min(file_no) OVER (PARTITION BY platform, source, "
               "pixel_id, event_name, event_id, event_time, error)" if several_files else "")
    ages = ", ".join(f"({_quote(name)}, {age!r})" for name, age in max_ages.items())
    default = max_ages[""]
    return f"""
CREATE TABLE ev AS
WITH kept AS (SELECT * FROM events {overlap})
SELECT kept.*,
       row_number() OVER (ORDER BY file_no, line_no, part) - 1 AS seq,
       strftime(make_timestamp(CAST(arrival_time * 1000000 AS BIGINT)), '%Y-%m-%d') AS day,
       {_period(by)} AS period,
       hash(coalesce(order_id, ''), round(value, 6), coalesce(content_ids, ''),
            coalesce(page, '')) AS identity,
       coalesce(source = 'server' AND event_time IS NOT NULL AND state <> 'undecodable'
                AND (event_time > arrival_time * 100
                     OR arrival_time - event_time > coalesce(ages.max_age, {default!r})
                     OR event_time - arrival_time > {settings.future_tolerance!r}),
                false) AS time_bad
FROM kept LEFT JOIN (VALUES {ages}) AS ages(platform_name, max_age)
     ON ages.platform_name = kept.platform;
SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM ev);
"""


UNDECODABLE_BY_REASON = """
SELECT platform, coalesce(split_part(error, ':', 1), '?') AS reason, count(*) AS n
FROM ev WHERE state = 'undecodable' GROUP BY ALL ORDER BY n DESC, platform, reason
"""


def match_and_mark(settings: DiagnosisSettings, everything: bool) -> str:
    """``grp``: each conversion (dedup key) with its copies per side, the first copy's
    name, arrival, value and currency per side. ``stats``: what MatchResult.stats
    counts, per period, platform and event name. ``problem``: the rows a finding may
    be about (one-side-only, duplicated, rejected, undecodable, late or early,
    differing value or currency, a refused event time), or every row."""
    # the first copy by arrival (ties, copies at the same instant, go either way)
    first = "e.arrival_time"
    browser, server = "FILTER (WHERE source = 'browser')", "FILTER (WHERE source = 'server')"
    conditions = f"""
   e.state IN ('undecodable', 'rejected', 'nokey') OR e.time_bad
   OR (e.state = 'ok' AND (g.nb <> 1 OR g.ns <> 1 OR g.any_time_bad OR g.after_rejection
       OR g.s_at - g.b_at > {settings.late_after!r}
       OR g.b_at - g.s_at > {settings.race_tolerance!r}
       OR round(g.b_value, 6) <> round(g.s_value, 6)
       OR upper(g.b_currency) <> upper(g.s_currency) OR r.dedup_key IS NOT NULL))"""
    return f"""
CREATE OR REPLACE TABLE grp AS
WITH rejected AS (SELECT DISTINCT period, platform, dedup_key FROM ev
                  WHERE state = 'rejected' AND dedup_key IS NOT NULL)
SELECT e.period, e.platform, e.dedup_key,
       count(*) {browser} AS nb, count(*) {server} AS ns,
       arg_min(coalesce(e.event_name, '<no name>'), {first}) {browser} AS bname,
       arg_min(coalesce(e.event_name, '<no name>'), {first}) {server} AS sname,
       min(e.arrival_time) {browser} AS b_at, min(e.arrival_time) {server} AS s_at,
       arg_min(e.value, {first}) {browser} AS b_value,
       arg_min(e.value, {first}) {server} AS s_value,
       arg_min(e.currency, {first}) {browser} AS b_currency,
       arg_min(e.currency, {first}) {server} AS s_currency,
       bool_or(e.time_bad) AS any_time_bad,
       bool_or(r.dedup_key IS NOT NULL) AS after_rejection
FROM ev e LEFT JOIN rejected r
     ON r.period = e.period AND r.platform = e.platform AND r.dedup_key = e.dedup_key
WHERE e.state = 'ok'
GROUP BY e.period, e.platform, e.dedup_key;

CREATE OR REPLACE TABLE stats AS
WITH counted AS (
    SELECT period, platform, coalesce(event_name, '<no name>') AS event_name,
           count(*) {browser} AS browser, count(*) {server} AS server,
           min(arrival_time) AS first_seen, min(seq) AS first_seq
    FROM ev WHERE state NOT IN ('undecodable', 'mirror') GROUP BY ALL),
outcomes AS (
    SELECT period, platform, coalesce(bname, sname) AS event_name,
           (nb > 0 AND ns > 0)::INT AS deduplicated, (nb > 0 AND ns = 0)::INT AS browser_only,
           (nb = 0 AND ns > 0)::INT AS server_only, 0 AS extra FROM grp
    UNION ALL SELECT period, platform, bname, 0, 0, 0, nb - 1 FROM grp WHERE nb > 1
    UNION ALL SELECT period, platform, sname, 0, 0, 0, ns - 1 FROM grp WHERE ns > 1
    UNION ALL SELECT period, platform, coalesce(event_name, '<no name>'), 0,
                     (source = 'browser')::INT, (source = 'server')::INT, 0
              FROM ev WHERE state = 'nokey'),
summed AS (
    SELECT period, platform, event_name, sum(deduplicated) AS deduplicated,
           sum(browser_only) AS browser_only, sum(server_only) AS server_only,
           sum(extra) AS extra
    FROM outcomes GROUP BY ALL)
SELECT c.period, c.platform, c.event_name, c.browser, c.server,
       coalesce(s.deduplicated, 0)::BIGINT AS deduplicated,
       coalesce(s.browser_only, 0)::BIGINT AS browser_only,
       coalesce(s.server_only, 0)::BIGINT AS server_only,
       coalesce(s.extra, 0)::BIGINT AS extra, c.first_seen, c.first_seq
FROM counted c LEFT JOIN summed s USING (period, platform, event_name);

-- a server copy with no twin may be a retry under a new id: its original, merged or
-- not, carries the same payload (order id, value, contents, page); the nearest such
-- server copy before it and the nearest after it are marked (ASOF joins: linear however
-- many conversions share a payload)
CREATE OR REPLACE TABLE retried AS
WITH orphans AS (
    SELECT e.period, e.platform, coalesce(e.event_name, '') AS name, e.identity,
           e.arrival_time
    FROM ev e LEFT JOIN grp g ON g.period = e.period AND g.platform = e.platform
                              AND g.dedup_key = e.dedup_key
    WHERE e.source = 'server' AND (e.state IN ('nokey', 'rejected')
                                   OR (e.state = 'ok' AND g.nb = 0))),
servers AS (
    SELECT period, platform, coalesce(event_name, '') AS name, identity, arrival_time,
           dedup_key
    FROM ev WHERE source = 'server' AND state = 'ok')
SELECT s.period, s.platform, s.dedup_key FROM orphans o ASOF JOIN servers s
    ON s.period = o.period AND s.platform = o.platform AND s.name = o.name
       AND s.identity = o.identity AND s.arrival_time < o.arrival_time
UNION
SELECT s.period, s.platform, s.dedup_key FROM orphans o ASOF JOIN servers s
    ON s.period = o.period AND s.platform = o.platform AND s.name = o.name
       AND s.identity = o.identity AND s.arrival_time > o.arrival_time;

CREATE OR REPLACE TABLE problem AS
SELECT e.file_no, e.line_no, e.part, e.seq, e.period
FROM ev e LEFT JOIN grp g
     ON e.state = 'ok' AND g.period = e.period AND g.platform = e.platform
        AND g.dedup_key = e.dedup_key
LEFT JOIN retried r
     ON e.state = 'ok' AND r.period = e.period AND r.platform = e.platform
        AND r.dedup_key = e.dedup_key
WHERE {'true' if everything else conditions};
"""


STATS = """
SELECT period, platform, event_name, browser, server, deduplicated, browser_only,
       server_only, extra
FROM stats ORDER BY period, first_seen, first_seq
"""

ANSWERS = """
SELECT period, CASE WHEN status BETWEEN 200 AND 299 THEN '2xx'
                    WHEN status BETWEEN 400 AND 499 THEN '4xx'
                    WHEN status >= 500 THEN '5xx' END AS class, count(*)
FROM ev WHERE source = 'server' AND status IS NOT NULL AND status >= 200
GROUP BY ALL HAVING class IS NOT NULL
"""

PROBLEM_ROWS = "SELECT file_no, line_no, part, seq, period FROM problem ORDER BY file_no, line_no"
SAMPLED_ROWS = ("SELECT file_no, line_no, part, seq, period FROM problem_kept "
                "ORDER BY file_no, line_no")
SAMPLE_WEIGHTS = "SELECT period, platform, total, kept FROM problem_weight"


def sample_problems(cap: int, bucket_seconds: float = 60.0) -> str:
    """``problem_kept``: at most about ``cap`` of the problem rows, the same share of
    each period and platform, taken as whole time buckets (chosen by a hash of the
    bucket) so that the rows a finding joins (a near miss's two ids, a retry and its
    original, copies of one conversion) stay together. ``problem_weight``: per period
    and platform, how many problem rows there were and how many were kept."""
    return f"""
CREATE OR REPLACE TABLE problem_tagged AS
SELECT p.*, e.platform, floor(e.arrival_time / {bucket_seconds!r}) AS bucket
FROM problem p JOIN ev e USING (file_no, line_no, part);

CREATE OR REPLACE TABLE problem_weight AS
WITH strata AS (SELECT period, platform, count(*) AS total FROM problem_tagged GROUP BY ALL),
quota AS (SELECT period, platform, total,
                 greatest(ceil({cap} * total / sum(total) OVER ()), 1) AS quota FROM strata),
buckets AS (SELECT period, platform, bucket, count(*) AS n FROM problem_tagged GROUP BY ALL),
ranked AS (SELECT b.*, q.total, q.quota,
                  sum(n) OVER (PARTITION BY b.period, b.platform
                               ORDER BY hash(b.bucket), b.bucket
                               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
           FROM buckets b JOIN quota q USING (period, platform))
SELECT period, platform, bucket, total, n, coalesce(before, 0) < quota AS kept_bucket
FROM ranked;

CREATE OR REPLACE TABLE problem_kept AS
SELECT t.file_no, t.line_no, t.part, t.seq, t.period FROM problem_tagged t
JOIN problem_weight w USING (period, platform, bucket) WHERE w.kept_bucket;

CREATE OR REPLACE TABLE problem_weight AS
SELECT period, platform, any_value(total) AS total,
       sum(n) FILTER (WHERE kept_bucket) AS kept
FROM problem_weight GROUP BY ALL;
"""

STORED_REQUESTS = "SELECT line_no, request FROM requests WHERE file_no = ?"


def insert_requests(path: str) -> str:
    return (f"INSERT INTO requests SELECT r.* FROM read_csv({_quote(path)}, "
            "columns = {'file_no': 'INTEGER', 'line_no': 'BIGINT', 'request': 'VARCHAR'}, "
            "header = false, quote = '\"', escape = '\"', auto_detect = false, "
            "max_line_size = 100000000) r "
            "ANTI JOIN requests q ON q.file_no = r.file_no AND q.line_no = r.line_no")


#: the dashboard: per period, platform and event name, the counts and the dedup rate
#: (merged conversions over conversions, where one-side-only ones count once)
SERIES = """
SELECT period, platform, event_name, browser, server, deduplicated,
       deduplicated + greatest(browser_only, server_only) AS conversions,
       CASE WHEN deduplicated + greatest(browser_only, server_only) > 0
            THEN deduplicated / (deduplicated + greatest(browser_only, server_only))
       END AS rate
FROM stats ORDER BY platform, event_name, period
"""


def export(folder: str, columns: dict[str, Any]) -> str:
    names = ", ".join(f"e.{c}" for c in columns)
    return (f"COPY (SELECT {names}, e.day, r.request FROM ev e LEFT JOIN requests r "
            "ON r.file_no = e.file_no AND r.line_no = e.line_no) "
            f"TO {_quote(folder)} (FORMAT parquet, PARTITION_BY (day, platform), "
            "OVERWRITE_OR_IGNORE true)")


def script(by: str = "day", settings: DiagnosisSettings | None = None) -> str:
    """The matching and counting SQL on an ``events`` table (the Parquet export's
    columns), as one script: what docs/analyze-at-scale.md shows for a warehouse."""
    settings = settings or DiagnosisSettings()
    loading = finish_loading(True, by, max_ages(settings), settings).rsplit("SELECT (SELECT", 1)[0]
    return (loading.strip() + "\n" + match_and_mark(settings, False).strip() + "\n\n-- "
            "the dashboard\n" + SERIES.strip() + ";\n")
