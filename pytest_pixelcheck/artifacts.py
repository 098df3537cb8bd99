"""Files pixelcheck writes and reads: the JSON report, JSONL captures, HAR.

Everything written goes through ``scrub`` (tokens redacted, PII masked). The
JSON report format is versioned (``REPORT_FORMAT``, ``REPORT_VERSION``) and
documented in docs/report-format.md.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .depth import MAX_JSON_DEPTH
from .events import CapturedRequest, Event
from .findings import Finding, severity_overrides
from .matching import EventNameStats, MatchResult
from .pii import coverage_rows, merge_coverage
from .proxy import TrafficEntry
from .redact import is_pii_key, mask_value, redact_headers, scrub

REPORT_FORMAT = "pytest-pixelcheck-report"
REPORT_VERSION = 1
CAPTURE_FORMAT = "pytest-pixelcheck-capture"


#: what stands for data nested past the decoders' limit (an event built by hand can
#: carry any depth); the limit keeps this walk far from Python's recursion limit
TOO_DEEP_PLACEHOLDER = f"<nested deeper than {MAX_JSON_DEPTH} levels: not written>"


def _scrubbed(value: Any, key: str = "", depth: int = 0) -> Any:
    """Deep copy of plain data with every string scrubbed; customer fields (``fn``,
    ``city``...) masked by their key."""
    if isinstance(value, str):
        return mask_value(value) if is_pii_key(key) else scrub(value)
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_JSON_DEPTH:
        return TOO_DEEP_PLACEHOLDER
    if isinstance(value, dict):
        return {str(k): _scrubbed(v, str(k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v, key, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no inf or nan: "inf", "nan", as Python writes them
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(str(value))


def event_dict(event: Event) -> dict[str, Any]:
    raw = event.raw
    return _scrubbed({
        "seq": event.seq,
        "platform": event.platform,
        "source": event.source,
        "pixel_id": event.pixel_id,
        "event_name": event.event_name,
        "event_id": event.event_id,
        "event_time": event.event_time,
        "arrival_time": event.arrival_time,
        "page_url": event.page_url,
        "user_data": event.user_data,
        "custom_data": event.custom_data,
        "error": event.error,
        "rejection": event.extra.get("rejection"),
        # stopped on purpose by the test (block_browser, an ad blocker, sink.refuse)
        **({"blocked": event.extra["blocked"]} if event.extra.get("blocked") else {}),
        # where the access token travelled (query, form, json), never the token
        "token_location": event.extra.get("token_location"),
        "request": None if raw is None else {
            "method": raw.method, "url": raw.url, "channel": raw.channel,
            "status": raw.response_status,
        },
    })


def stats_dicts(stats: Iterable[EventNameStats]) -> list[dict[str, Any]]:
    return [{**vars(s), "dedup_rate": s.dedup_rate} for s in stats]


def test_record(
    nodeid: str,
    outcome: str,
    result: MatchResult,
    findings: Sequence[Finding],
    sink_answers: dict[str, int],
    coverage: list[dict[str, Any]] | None = None,
    customer_known: bool = False,
    *,
    expected_codes: Sequence[str] | None = None,
    caught_assertions: int = 0,
) -> dict[str, Any]:
    """Everything about one test, as plain data (it rides on the xdist report).

    Events are numbered within the test (``seq`` 0, 1, ...), so the record is the
    same whichever worker ran the test. ``expected_codes``: the codes a negative test
    expects (``pixelcheck_expect`` / ``expect_findings``); such a test is set aside
    from the session's summary. ``caught_assertions``: failed pixelcheck assertions a
    passed test caught (``pytest.raises``), which the summary points out.
    """
    local = {id(event): index for index, event in enumerate(result.events)}

    def number(event: Event) -> int:
        return local.get(id(event), -1)

    events = []
    for event in result.events:
        data = event_dict(event)
        data["seq"] = number(event)
        events.append(data)
    finding_dicts = []
    for finding in findings:
        data = _scrubbed(finding.to_dict())
        data["events"] = [number(e) for e in finding.events]
        finding_dicts.append(data)
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "events": events,
        "pairs": [[number(p.browser), number(p.server)] for p in result.pairs],
        "findings": finding_dicts,
        "stats": stats_dicts(result.stats().values()),
        "sink_answers": sink_answers,
        "match_key_coverage": coverage or [],
        "customer_known": customer_known,
        "expected_failure": expected_codes is not None,
        "expected_codes": list(expected_codes or []),
        "caught_assertions": caught_assertions,
    }


def status_classes(statuses: Iterable[int | None]) -> dict[str, int]:
    counts = {"2xx": 0, "4xx": 0, "5xx": 0}
    for status in statuses:
        if status is not None and status // 100 in (2, 4, 5):
            counts[f"{status // 100}xx"] += 1
    return counts


def merge_stats(records: Iterable[dict[str, Any]]) -> list[EventNameStats]:
    totals: dict[tuple[str, str], EventNameStats] = {}
    for record in records:
        for row in record["stats"]:
            key = (row["platform"], row["event_name"])
            total = totals.setdefault(key, EventNameStats(*key))
            for name in ("browser", "server", "deduplicated", "browser_only", "server_only",
                         "extra"):
                setattr(total, name, getattr(total, name) + row.get(name, 0))
    return list(totals.values())


def build_report(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The session's report. Negative tests (``expected_failure``: they break tracking
    on purpose) stay in ``tests`` but are set aside from every summary figure, so they
    pull neither the dedup rate nor the gate down."""
    records = sorted(records, key=lambda r: r["nodeid"])
    set_aside = [r for r in records if r.get("expected_failure")]
    all_records, records = records, [r for r in records if not r.get("expected_failure")]
    stats = merge_stats(records)
    codes: dict[str, int] = {}
    severities: dict[str, int] = {}
    for record in records:
        for finding in record["findings"]:
            codes[finding["code"]] = codes.get(finding["code"], 0) + 1
            severities[finding["severity"]] = severities.get(finding["severity"], 0) + 1
    answers = {"2xx": 0, "4xx": 0, "5xx": 0}
    for record in records:
        for key, n in record.get("sink_answers", {}).items():
            answers[key] = answers.get(key, 0) + n
    coverage = merge_coverage([row for r in records for row in r.get("match_key_coverage", [])],
                              any(r.get("customer_known") for r in records))
    conversions = sum(s.conversions for s in stats)
    deduplicated = sum(s.deduplicated for s in stats)
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": {
            "tests": len(all_records),
            # negative tests, not counted in any figure of this summary
            "set_aside": len(set_aside),
            "set_aside_tests": [r["nodeid"] for r in set_aside],
            # passed tests that caught a failed pixelcheck assertion and still count
            "caught_assertion_tests": [r["nodeid"] for r in records
                                       if r.get("caught_assertions")],
            "severity_overrides": severity_overrides(),
            "browser_events": sum(s.browser for s in stats),
            "server_events": sum(s.server for s in stats),
            "deduplicated": deduplicated,
            "dedup_rate": deduplicated / conversions if conversions else None,
            "by_event": stats_dicts(sorted(stats, key=lambda s: (s.platform, s.event_name))),
            "findings_by_code": dict(sorted(codes.items())),
            "findings_by_severity": severities,
            "sink_answers": answers,
            "match_key_coverage": coverage_rows(coverage),
            "customer_known": coverage.customer_known,
        },
        "tests": list(all_records),
    }


def _finite(value: Any, depth: int = 0) -> Any:
    """``value`` with every inf and nan float as a string, for strict JSON readers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if depth >= MAX_JSON_DEPTH + 8:  # report data was cut at MAX_JSON_DEPTH already
        return value if isinstance(value, (str, int, float, bool)) or value is None \
            else TOO_DEEP_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, depth + 1) for v in value]
    return value


def _dumps(data: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN or Infinity, which most readers refuse); values that are
    not JSON are written as their text."""
    try:
        return json.dumps(data, allow_nan=False, default=str, **kwargs)
    except ValueError:
        return json.dumps(_finite(data), allow_nan=False, default=str, **kwargs)


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_dumps(data, indent=1) + "\n")
    return path


# --- captures: one request per line, re-decodable ------------------------------------


def capture_lines(events: Sequence[Event]) -> list[str]:
    """JSONL of the requests behind ``events`` (a server request with many events once)."""
    lines, seen = [], set()
    for event in events:
        raw = event.raw
        if raw is None or id(raw) in seen:
            continue
        seen.add(id(raw))
        request = raw.to_dict()
        request["url"] = scrub(request["url"])
        request["headers"] = redact_headers([tuple(h) for h in request["headers"]])
        if "body" in request:
            request["body"] = scrub(request["body"])
        lines.append(_dumps({"format": CAPTURE_FORMAT, "source": event.source,
                                 "platform": event.platform, "test_id": event.test_id,
                                 "request": request}))
    return lines


def write_capture(path: str | Path, events: Sequence[Event]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in capture_lines(events)))
    return path


# --- HAR ------------------------------------------------------------------------------


def _har_content(body: bytes, mime: str) -> dict[str, Any]:
    try:
        return {"size": len(body), "mimeType": mime, "text": scrub(body.decode("utf-8"))}
    except UnicodeDecodeError:
        return {"size": len(body), "mimeType": mime,
                "text": base64.b64encode(body).decode(), "encoding": "base64"}


def har(traffic: Sequence[TrafficEntry]) -> dict[str, Any]:
    """HAR 1.2 of the proxy's traffic, secrets redacted, PII masked."""
    entries = []
    for entry in traffic:
        req_headers = redact_headers(entry.request_headers)
        resp_headers = redact_headers(entry.response_headers)
        mime = next((v for k, v in resp_headers if k.lower() == "content-type"), "")
        req_mime = next((v for k, v in req_headers if k.lower() == "content-type"), "")
        took = ((entry.finished or entry.started) - entry.started) * 1000
        record: dict[str, Any] = {
            "startedDateTime": datetime.fromtimestamp(entry.started, timezone.utc).isoformat(),
            "time": round(took, 3),
            "request": {
                "method": entry.method, "url": scrub(entry.url), "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": scrub(v)} for k, v in req_headers],
                "queryString": [], "cookies": [], "headersSize": -1,
                "bodySize": entry.request_body_length or len(entry.request_body),
            },
            "response": {
                "status": entry.status or 0, "statusText": "", "httpVersion": "HTTP/1.1",
                "headers": [{"name": k, "value": scrub(v)} for k, v in resp_headers],
                "cookies": [], "content": _har_content(entry.response_body, mime),
                "redirectURL": "", "headersSize": -1, "bodySize": len(entry.response_body),
            },
            "cache": {},
            "timings": {"send": 0, "wait": round(took, 3), "receive": 0},
            "comment": f"pixelcheck: {entry.handled_by}"
                       + (f"; error: {entry.error}" if entry.error else ""),
        }
        if entry.request_body:
            record["request"]["postData"] = {
                "mimeType": req_mime, **{k: v for k, v in _har_content(
                    entry.request_body, req_mime).items() if k in ("text", "encoding")}}
        entries.append(record)
    return {"log": {"version": "1.2",
                    "creator": {"name": "pytest-pixelcheck", "version": "0.1.0"},
                    "entries": entries}}


def write_har(path: str | Path, traffic: Sequence[TrafficEntry]) -> Path:
    return write_json(path, har(traffic))


# --- reading captures back (for `pixelcheck analyze`) ----------------------------------


def read_requests(path: str | Path) -> list[tuple[str | None, CapturedRequest]]:
    """(source hint, request) pairs from a pixelcheck JSONL capture, a HAR file, or
    JSON lines of server payloads from a backend's log.

    A backend log line is one request body the backend sent, as JSON; an optional
    ``"platform"`` names whose API it went to (otherwise the platform that
    recognises the body's shape takes it), and ``url`` / ``time`` say where and when
    (each platform's ``from_backend_log`` documents its line).
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    stripped = text.lstrip()
    if stripped.startswith("{") and '"log"' in stripped[:200]:
        try:
            return _from_har(json.loads(text))
        except ValueError:
            pass
    out: list[tuple[str | None, CapturedRequest]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
        if isinstance(record, dict) and record.get("format") == CAPTURE_FORMAT:
            out.append((record.get("source"), CapturedRequest.from_dict(record["request"])))
            continue
        request = _from_backend_log(record) if isinstance(record, dict) else None
        if request is None:
            raise ValueError(f"{path}:{number}: neither a pixelcheck capture line nor a "
                             "server payload any platform recognises (add \"platform\": "
                             "NAME to say whose it is)")
        out.append(("server", request))
    return out


def _from_backend_log(record: dict[str, Any]) -> CapturedRequest | None:
    from . import platforms

    named = record.get("platform")
    if named is not None:
        try:
            candidates = [platforms.get(str(named))]
        except KeyError:
            return None
        record = {k: v for k, v in record.items() if k != "platform"}
    else:
        candidates = platforms.all_platforms()
    for platform in candidates:
        request = platform.from_backend_log(record)
        if request is not None:
            return request
    return None


def _from_har(data: dict[str, Any]) -> list[tuple[str | None, CapturedRequest]]:
    out = []
    for entry in data.get("log", {}).get("entries", []):
        request = entry.get("request", {})
        post = request.get("postData") or {}
        if post.get("encoding") == "base64":
            body = base64.b64decode(post.get("text", ""))
        else:
            body = str(post.get("text", "")).encode()
        headers = [(h.get("name", ""), h.get("value", "")) for h in request.get("headers", [])]
        if post.get("mimeType") and not any(k.lower() == "content-type" for k, _ in headers):
            headers.append(("Content-Type", post["mimeType"]))
        try:
            started = datetime.fromisoformat(
                str(entry.get("startedDateTime")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            started = 0.0
        status = entry.get("response", {}).get("status")
        out.append((None, CapturedRequest(request.get("method", "GET"), request.get("url", ""),
                                          headers, body, started, "har",
                                          response_status=status or None)))
    return out
