"""Property-based fuzzing (Hypothesis): every platform's decoders, the sink over a real
socket, matching and diagnosis, and the report writers take any input without an
exception, and every writer escapes what it writes.

Requests start from each platform's recorded samples, then have their bodies, query
values and headers replaced by random, truncated, compressed, deeply nested or hostile
ones. Example counts come from the profile in conftest.py (HYPOTHESIS_PROFILE=long for
100,000 per property).
"""

from __future__ import annotations

import gzip
import http.client
import json
import math
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_pixelcheck import artifacts, platforms
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.events import CapturedRequest, Event
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.proxy import TrafficEntry
from pytest_pixelcheck.report import test_report as text_report
from pytest_pixelcheck.report_html import render_html

#: a token the fuzzed requests carry; no writer may ever show it
SECRET = "EAAfuzzSECRETtoken0123456789"

#: strings that break naive HTML, JSON, CSV, log or URL handling
HOSTILE = [
    "<script>window.__pwned=1</script>", '"><img src=x onerror="window.__pwned=2">',
    "</script><script>window.__pwned=3</script>", "javascript:window.__pwned=4",
    "<svg onload=window.__pwned=5>", "'; DROP TABLE events; --", "\u2028\u2029", "\x00",
    "a\r\nSet-Cookie: x=1", "{{7*7}}", "${jndi:ldap://x}", "\\", "%00", "%zz", "1e999",
    "NaN", "-0", "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "é" * 50, "[" * 40, "{" * 40, "", " ", "A" * 2000, "jane.doe@example.com",
    "+1 650 555 1234",
]

_SAMPLES: list[tuple[str, str, dict[str, Any]]] = []
for _platform in platforms.all_platforms():
    for _path in sorted(Path(_platform.samples_dir or "/nonexistent").glob("*.json")):
        _sample = json.loads(_path.read_text(encoding="utf-8"))
        if isinstance(_sample, dict) and isinstance(_sample.get("request"), dict) and \
                _sample.get("kind") in ("browser", "server"):
            _SAMPLES.append((_platform.name, _sample["kind"], _sample["request"]))

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                    st.text(max_size=20), st.sampled_from(HOSTILE))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(HOSTILE)), inner,
                      max_size=4),
    max_leaves=6)


def _deep(depth: int, kind: str) -> str:
    return ("[" * depth + "]" * depth) if kind == "list" else \
        ('{"a":' * depth + "1" + "}" * depth)


deep_json = st.builds(_deep, st.integers(20, 3000), st.sampled_from(["list", "dict"]))
#: deep values to put inside a sample's JSON (that Python itself can still load and dump)
deep_values = st.builds(_deep, st.integers(20, 400), st.sampled_from(["list", "dict"])
                        ).map(json.loads)


def _paths(value: Any, limit: int = 200) -> list[tuple[Any, ...]]:
    """Paths to the containers' children in ``value``, breadth first, at most ``limit``."""
    out: list[tuple[Any, ...]] = []
    queue: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    while queue and len(out) < limit:
        item, path = queue.pop(0)
        keys = list(item) if isinstance(item, dict) else \
            range(len(item)) if isinstance(item, list) else []
        for key in keys:
            out.append((*path, key))
            queue.append((item[key], (*path, key)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for key in path[:-1]:
        value = value[key]
    value[path[-1]] = new


@st.composite
def mutated_json(draw: st.DrawFn, text: str) -> bytes:
    """The sample's JSON with a few values replaced by random, hostile or deep ones."""
    value = json.loads(text)
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(value)
        if not paths:
            break
        new = draw(st.one_of(json_values, deep_values))
        _replace(value, draw(st.sampled_from(paths)), new)
    return json.dumps(value).encode()


def _compressed(body: bytes, how: str) -> bytes:
    return gzip.compress(body) if how == "gzip" else zlib.compress(body)


@st.composite
def fuzzed_requests(draw: st.DrawFn, platform: str | None = None) -> tuple[str, str,
                                                                          CapturedRequest]:
    """(platform, "browser"|"server", request): a recorded sample, mutated."""
    choices = [s for s in _SAMPLES if platform in (None, s[0])]
    name, kind, sample = draw(st.sampled_from(choices))
    request = CapturedRequest.from_dict(sample)
    body = request.body
    looks_json = body.lstrip()[:1] in (b"{", b"[")
    body_options = [st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode()),
                    deep_json.map(str.encode), st.just(b""),
                    st.integers(0, max(len(body) - 1, 0)).map(lambda n: body[:n])]
    if looks_json:
        try:
            json.loads(body)
            body_options.append(mutated_json(body.decode()))
        except ValueError:
            pass  # a sample of a malformed body: mutated the other ways
    request.body = draw(st.one_of(st.just(body), *body_options))
    headers = [(k, v) for k, v in request.headers
               if k.lower() not in ("content-encoding", "content-length")]
    encoding = draw(st.sampled_from([None, None, "gzip", "deflate", "br", "gzip, gzip"]))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
        if draw(st.booleans()) and encoding in ("gzip", "deflate"):
            request.body = _compressed(request.body, encoding)
    if draw(st.booleans()):
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        headers.append(("Content-Type", draw(st.sampled_from(
            ["application/json", "text/plain", "application/x-www-form-urlencoded",
             "multipart/form-data; boundary=x", "multipart/form-data", "", "a/b; c"]))))
    request.headers = headers
    parts = urlsplit(request.url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    for _ in range(draw(st.integers(0, 3))):
        new = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30),
                             deep_json, json_values.map(json.dumps)))
        if query and draw(st.booleans()):
            index = draw(st.integers(0, len(query) - 1))
            query[index] = (query[index][0], new)
        else:
            query.append((draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=10))),
                          new))
    query.append(("access_token", SECRET))
    request.url = urlunsplit(parts._replace(query=urlencode(query)))
    request.method = draw(st.sampled_from([request.method, request.method, "GET", "PUT"]))
    return name, kind, request


def _decode(name: str, kind: str, request: CapturedRequest) -> list[Event]:
    platform = platforms.get(name)
    if kind == "browser":
        events = platform.decode_browser(request)
    else:
        answer = platform.handle_server(request)
        assert isinstance(answer.status, int) and 100 <= answer.status < 600
        json.dumps(answer.body, default=str)  # the sink sends it as JSON
        events = answer.events
        assert events, "a server call always leaves an event, decoded or not"
        request.response_status = answer.status
    for event in events:
        assert event.raw is request
        assert event.error is None or isinstance(event.error, str)
        repr(event)
    return events


@pytest.mark.parametrize("name", [p.name for p in platforms.all_platforms()])
@given(data=st.data())
def test_every_decoder_takes_any_request(name: str, data: st.DataObject) -> None:
    _, kind, request = data.draw(fuzzed_requests(name))
    events = _decode(name, kind, request)
    # decode_request (pixelcheck analyze) takes the same request without an exception
    platforms.decode_request(CapturedRequest.from_dict(request.to_dict()), kind)
    findings = diagnose(match_events(events))
    assert all(f.code for f in findings)


# --- events made up from scratch ----------------------------------------------------------

_NAMES = ["Purchase", "purchase", "Purchase ", "AddToCart", "CompletePayment", "Lead", None]
_IDS = ["ORD-1", "ORD-1 ", "ord-1", "ORD-2", "", None]
times = st.one_of(st.none(), st.floats(), st.floats(1.7e9, 1.8e9), st.integers(0, 2**63))


@st.composite
def made_up_events(draw: st.DrawFn) -> Event:
    raw = CapturedRequest(
        draw(st.sampled_from(["GET", "POST"])),
        f"https://graph.facebook.com/v21.0/1/events?access_token={SECRET}&x="
        + draw(st.sampled_from(HOSTILE)),
        [("Authorization", f"Bearer {SECRET}"), ("User-Agent", draw(st.sampled_from(HOSTILE)))],
        draw(st.binary(max_size=40)), 1.75e9, "sink",
        response_status=draw(st.sampled_from([None, 200, 204, 400, 429, 500, 503])),
        response_body=draw(st.one_of(st.binary(max_size=40),
                                     json_values.map(lambda v: json.dumps(v).encode()))))
    user_data = draw(st.dictionaries(st.sampled_from(["em", "ph", "fn", "fbp", "fbc", "x"]),
                                     json_values, max_size=3))
    custom_data = draw(st.dictionaries(
        st.sampled_from(["value", "currency", "content_ids", "contents", "order_id", "z"]),
        json_values, max_size=3))
    return Event(
        platform=draw(st.sampled_from([p.name for p in platforms.all_platforms()]
                                      + ["not-registered"])),
        source=draw(st.sampled_from(["browser", "server"])),
        pixel_id=draw(st.sampled_from(["1", "2", None, "<b>1</b>"])),
        event_name=draw(st.one_of(st.sampled_from(_NAMES), st.sampled_from(HOSTILE))),
        event_id=draw(st.one_of(st.sampled_from(_IDS), st.sampled_from(HOSTILE))),
        event_time=draw(times),
        arrival_time=draw(st.floats(1.7e9, 1.8e9)),
        user_data=user_data, custom_data=custom_data,
        page_url=draw(st.one_of(st.none(), st.sampled_from(HOSTILE))),
        raw=raw,
        error=draw(st.one_of(st.none(), st.sampled_from(HOSTILE))),
        event_time_raw=draw(scalars),
        # extra holds what decoders put there, typed as they put it
        extra=draw(st.fixed_dictionaries({}, optional={
            "params": st.dictionaries(st.text(max_size=8), st.sampled_from(HOSTILE),
                                      max_size=3),
            "rejection": st.lists(st.sampled_from(HOSTILE), max_size=2),
            "fbp": st.one_of(st.none(), st.sampled_from(HOSTILE)),
            "index": st.integers(0, 5),
            "action_source": st.one_of(st.none(), st.sampled_from(["website", *HOSTILE])),
            "token_location": st.sampled_from([None, "query", "json", "header"]),
        })),
    )


def _numbered(events: list[Event]) -> list[Event]:
    for seq, event in enumerate(events):
        event.seq = seq
    return events


class _Tags(HTMLParser):
    """Every start tag and attribute name in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)


def _tags_of(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


#: what the report template itself uses: anything else came from the data
_BENIGN_TAGS = _tags_of(render_html(artifacts.build_report([]))).tags | {
    "section", "div", "span", "table", "thead", "tbody", "tr", "td", "th", "h2", "h3", "h4",
    "p", "ul", "li", "a", "b", "code", "small", "details", "summary", "svg", "g", "line",
    "circle", "rect", "text", "title", "path", "polyline", "nav", "strong", "em", "br",
    "pre", "ol", "dl", "dt", "dd", "header", "footer", "abbr", "sup", "sub", "i", "tspan"}


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _check_writers(events: list[Event], tmp_path: Path) -> None:
    result = match_events(events)
    findings = diagnose(result)
    text = text_report(result, findings)
    record = artifacts.test_record("tests/test_x.py::test_<script>", "failed", result,
                                   findings, {"2xx": 1}, [], False)
    report = artifacts.build_report([record])
    written = {
        "json": artifacts.write_json(tmp_path / "report.json", report).read_text(),
        "jsonl": artifacts.write_capture(tmp_path / "events.jsonl", events).read_text(),
        "har": artifacts.write_har(tmp_path / "traffic.har", [
            TrafficEntry(1.75e9, e.raw.method, e.raw.url, e.raw.headers, e.raw.body,
                         e.raw.response_status, [("Content-Type", "text/html")],
                         e.raw.response_body, "sink") for e in events if e.raw]).read_text(),
        "html": render_html(report),
        "text": text,
    }
    for kind, content in written.items():
        assert SECRET not in content, f"the token leaked into the {kind} output"
    _strict_json(written["json"])
    _strict_json(written["har"])
    lines = written["jsonl"].splitlines()
    assert len(lines) == len({id(e.raw) for e in events if e.raw})  # a request once
    for line in lines:
        _strict_json(line)
    tags = _tags_of(written["html"])
    assert tags.tags <= _BENIGN_TAGS, tags.tags - _BENIGN_TAGS
    assert "script" not in tags.tags and "img" not in tags.tags
    assert not {a for a in tags.attributes if a.startswith("on")}


@given(events=st.lists(made_up_events(), max_size=5))
def test_matching_diagnosis_and_writers_take_any_events(events: list[Event],
                                                        tmp_path_factory) -> None:
    _check_writers(_numbered(events), tmp_path_factory.mktemp("w"))


@given(data=st.data())
def test_writers_escape_decoded_hostile_requests(data: st.DataObject,
                                                 tmp_path_factory) -> None:
    events: list[Event] = []
    for _ in range(data.draw(st.integers(1, 4))):
        name, kind, request = data.draw(fuzzed_requests())
        events.extend(_decode(name, kind, request))
    _check_writers(_numbered(events), tmp_path_factory.mktemp("w"))


# --- the sink over a real socket ----------------------------------------------------------


@settings(max_examples=max(20, settings().max_examples // 4))
@given(data=st.data())
def test_the_sink_answers_and_records_every_request(pixelcheck_sink, pixelcheck_harness,
                                                    data: st.DataObject) -> None:
    name, kind, request = data.draw(fuzzed_requests())
    pixelcheck_sink.reset()
    path = urlsplit(request.url)
    target = "/" + data.draw(st.sampled_from([name, name, "nope"])) + (path.path or "/") + \
        ("?" + path.query if path.query else "")
    headers = {k: v for k, v in request.headers
               if k.lower() not in ("host", "content-length", "transfer-encoding",
                                    "connection") and k.isascii() and v.isascii()}
    before = len(pixelcheck_sink.requests)
    stored = pixelcheck_harness.store.mark()
    connection = http.client.HTTPConnection(pixelcheck_sink.host, pixelcheck_sink.port,
                                            timeout=20)
    try:
        connection.request("POST", target, body=request.body, headers=headers)
        answer = connection.getresponse()
        payload = answer.read()
    finally:
        connection.close()
    assert 200 <= answer.status < 500, (answer.status, payload[:300])
    recorded = pixelcheck_sink.requests.since(before)
    assert len(recorded) == 1 and recorded[0].body == request.body
    assert recorded[0].response_status == answer.status
    events = pixelcheck_harness.store.since(stored)
    assert events and all(e.raw is recorded[0] for e in events)


def test_hostile_strings_are_really_hostile() -> None:
    """The HTML check above proves something: unescaped, these strings are tags."""
    tags = _tags_of("".join(HOSTILE))
    assert {"script", "img", "svg"} <= tags.tags
    assert "onerror" in tags.attributes
    assert not math.isnan(1.0)
