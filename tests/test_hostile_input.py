"""Hostile input never aborts a session: deep JSON, decoder crashes and a broken
capture each become a finding or a failed test, never an INTERNALERROR."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_pixelcheck import artifacts, platforms, report
from pytest_pixelcheck.diagnosis import diagnose
from pytest_pixelcheck.events import CapturedRequest, Event
from pytest_pixelcheck.matching import match_events
from pytest_pixelcheck.pii import mask
from pytest_pixelcheck.wire import MAX_JSON_DEPTH, WireError, json_body

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent


def _nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_dicts(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _capi_body(user_em: str = '["' + "a" * 64 + '"]', custom: str = "{}",
               event_id: str = "deep-1") -> bytes:
    event = (f'{{"event_name":"Purchase","event_time":{int(time.time())},'
             f'"event_id":"{event_id}","action_source":"website",'
             '"event_source_url":"https://shop.example/",'
             f'"user_data":{{"em":{user_em},"client_user_agent":"Mozilla/5.0"}},'
             f'"custom_data":{custom}}}')
    return f'{{"data":[{event}]}}'.encode()


def _capi_request(body: bytes) -> CapturedRequest:
    return CapturedRequest("POST", "https://graph.facebook.com/v21.0/123/events"
                           "?access_token=EAAdeepTOKEN123", [("Content-Type",
                                                              "application/json")],
                           body, time.time(), "sink")


@pytest.mark.parametrize("body", [_capi_body(user_em=_nested_lists(900)),
                                  _capi_body(custom=_nested_dicts(600)),
                                  _capi_body(user_em=_nested_lists(5000)),
                                  _capi_body(custom=_nested_dicts(MAX_JSON_DEPTH + 1))],
                         ids=["user_data-900-lists", "custom_data-600-dicts",
                              "5000-lists", "just-over-the-limit"])
def test_a_deep_capi_call_is_refused_with_metas_400_and_a_payload_too_deep_finding(body):
    answer = platforms.get("meta").handle_server(_capi_request(body))
    assert answer.status == 400
    assert answer.body["error"]["code"] == 100  # Meta's own invalid-parameter answer
    [event] = answer.events
    assert not event.decoded and event.raw is not None and event.raw.body == body
    findings = diagnose(match_events(answer.events))
    assert [f.code for f in findings] == ["payload-too-deep"]
    assert f"{MAX_JSON_DEPTH} levels" in findings[0].message
    # everything written about it works: record, capture, report
    result = match_events(answer.events)
    artifacts.test_record("t", "passed", result, findings, {}, [], False)
    assert "payload-too-deep" in report.test_report(result, findings)


def test_json_just_within_the_limit_is_read():
    body = _capi_body(custom=_nested_dicts(MAX_JSON_DEPTH - 5))
    answer = platforms.get("meta").handle_server(_capi_request(body))
    assert answer.events[0].decoded, answer.events[0].error


def test_json_body_raises_only_wire_errors_on_deep_input():
    for text in (_nested_lists(100_000), _nested_dicts(100_000), _nested_lists(900)):
        with pytest.raises(WireError, match="nested"):
            json_body(text.encode())


def _deep_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _deep_dict(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def test_events_built_with_deep_data_go_through_matching_diagnosis_and_writers(tmp_path):
    """Events made by hand (a user's test, a fuzzer) skip the decoders' limit: the code
    that walks their data must not recurse without bound either."""
    raw = _capi_request(b"{}")
    deep = [Event("meta", source, "1", "Purchase", "o-1", time.time(), time.time(),
                  user_data={"em": _deep_list(3000)},
                  custom_data={"value": _deep_list(5000), "currency": _deep_list(5000),
                               "contents": _deep_dict(3000)},
                  raw=raw, seq=n, extra={"params": _deep_dict(3000)},
                  event_time_raw=_deep_list(3000))
            for n, source in enumerate(("browser", "server"))]
    deep[1].custom_data = {"value": _deep_list(4000)}  # differs: compared, printed
    assert mask(deep[0].user_data["em"], "em").startswith("[[[")
    repr(deep[0])
    artifacts.event_dict(deep[0])
    result = match_events(deep)
    findings = diagnose(result)
    assert [f.code for f in findings] == ["payload-too-deep", "payload-too-deep"]
    assert "5002 levels" in findings[0].message  # custom_data, value, 5000 lists
    report.test_report(result, findings)
    artifacts.test_record("t", "failed", result, findings, {}, [], False)
    artifacts.write_capture(tmp_path / "events.jsonl", deep)
    artifacts.write_har(tmp_path / "traffic.har", [])


INNER = '''
import json, time, urllib.error, urllib.request

import pytest

def _post(url, body):
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())

BODIES = %(bodies)r

@pytest.mark.parametrize("name", sorted(BODIES))
def test_deep(pixelcheck, pixelcheck_sink, name):
    status, answer = _post(pixelcheck_sink.url + "/v21.0/123/events?access_token=EAAtok123",
                           BODIES[name].encode())
    assert status == 400 and answer["error"]["code"] == 100, answer
    assert [f.code for f in pixelcheck.findings()] == ["payload-too-deep"]

def test_deep_and_failing(pixelcheck, pixelcheck_sink):
    _post(pixelcheck_sink.url + "/v21.0/123/events?access_token=EAAtok123",
          BODIES["user_data-900-lists"].encode())
    assert False, "fails on purpose: its artifacts are written"

def test_later_test_still_runs():
    pass
'''


def test_a_deep_capture_never_aborts_the_pytest_session(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's package, not another
    bodies = {"user_data-900-lists": _capi_body(user_em=_nested_lists(900)).decode(),
              "custom_data-600-dicts": _capi_body(custom=_nested_dicts(600)).decode(),
              "5000-lists": _capi_body(user_em=_nested_lists(5000)).decode()}
    pytester.makepyfile(test_inner=INNER % {"bodies": bodies})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                           "--pixelcheck-report=report.json")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=4, failed=1)
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["tests"], report
    artifacts = list((pytester.path / "pixelcheck-artifacts").rglob("events.jsonl"))
    assert len(artifacts) == 1 and artifacts[0].read_text()


BROKEN_EVALUATE = '''
import pytest
from pytest_pixelcheck.capture import Pixelcheck

@pytest.fixture(autouse=True)
def broken(monkeypatch):
    def evaluate(self, platform=None):
        raise RuntimeError("a bug in pixelcheck's own evaluation")
    monkeypatch.setattr(Pixelcheck, "evaluate", evaluate)

def test_uses_pixelcheck(pixelcheck):
    pass

def test_next_one(pixelcheck):
    pass

def test_plain():
    pass
'''


def test_a_bug_evaluating_one_test_fails_that_test_not_the_session(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=BROKEN_EVALUATE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=2)
    assert "a bug in pixelcheck's own evaluation" in output
    assert "pixelcheck could not evaluate this test" in output


def _post(url: str, body: bytes) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_a_decoder_bug_is_answered_with_the_platforms_400_and_recorded(
        pixelcheck, pixelcheck_sink, monkeypatch):
    def crash(request):
        raise KeyError("an input the decoder never foresaw")

    monkeypatch.setattr(platforms.get("meta"), "handle_server", crash)
    status, answer = _post(f"{pixelcheck_sink.url}/v21.0/123/events?access_token=EAAx1",
                           _capi_body())
    assert status == 400 and answer["error"]["code"] == 100, answer
    assert answer["error"]["fbtrace_id"]  # Meta's own error object
    [event] = pixelcheck.server_events
    assert "never foresaw" in event.error and event.raw.response_status == 400
    assert [f.code for f in pixelcheck.findings()] == ["undecodable-request"]


@pytest.mark.parametrize("name", [p.name for p in platforms.all_platforms()])
def test_every_platform_answers_an_unreadable_body_in_its_own_shape(name):
    request = CapturedRequest("POST", "https://api.example/x", [], b"\x00", 0.0, "sink")
    status, body = platforms.get(name).unreadable_answer(request, "bad bytes")
    assert status in (200, 204, 400)
    assert status == 204 or "bad bytes" in json.dumps(body)


def _server_samples() -> list[tuple[str, dict]]:
    out = []
    for platform in platforms.all_platforms():
        for path in sorted(Path(platform.samples_dir or "/nonexistent").glob("*.json")):
            sample = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(sample, dict) and sample.get("kind") == "server":
                out.append((platform.name, sample["request"]))
                break
    return out


@pytest.mark.parametrize("name,sample", _server_samples(), ids=lambda v: v
                         if isinstance(v, str) else "")
@pytest.mark.parametrize("body", [b"null", b"[]", b'"text"', b"1", b"true", b"{}"])
def test_any_json_value_as_a_body_leaves_an_event_and_an_answer(name, sample, body):
    """Found by the fuzzer: Pinterest lost a call whose body was JSON null (no event)
    or crashed with IndexError on it when the token was right."""
    request = CapturedRequest.from_dict(sample)
    request.body = body
    answer = platforms.get(name).handle_server(request)
    assert answer.events and all(e.raw is request for e in answer.events)
    assert 200 <= answer.status < 500


def test_reports_are_strict_json_even_with_infinite_or_nan_numbers(tmp_path):
    """Found by the fuzzer: an event_time of inf was written as Infinity, which strict
    JSON readers (jq, JavaScript's JSON.parse) refuse."""
    raw = _capi_request(b"{}")
    events = [Event("meta", "server", "1", "Purchase", "o-1", float("inf"), 1.75e9,
                    custom_data={"value": float("nan")}, raw=raw, seq=0)]
    result = match_events(events)
    record = artifacts.test_record("t", "passed", result, diagnose(result), {}, [], False)
    written = artifacts.write_json(tmp_path / "r.json", artifacts.build_report([record]))

    def refuse(constant):
        raise AssertionError(f"{constant} in the report")

    data = json.loads(written.read_text(), parse_constant=refuse)
    assert data["tests"][0]["events"][0]["event_time"] == "inf"


HOSTILE_PARAMS = {
    "ev": "<script>window.__pwned=1;alert(1)</script>",
    "eid": '"><img src=x onerror="window.__pwned=2;alert(2)">',
    "id": "</title></text></svg><script>window.__pwned=3</script>",
    "cd[currency]": "<svg onload=window.__pwned=4>",
    "cd[value]": "</script><script>window.__pwned=5</script>",
    "dl": "javascript:window.__pwned=6",
}


def _hostile_report() -> dict:
    from urllib.parse import urlencode

    request = CapturedRequest("GET", "https://www.facebook.com/tr/?" + urlencode(
        HOSTILE_PARAMS), [("User-Agent", "<script>window.__pwned=7</script>")], b"",
        time.time(), "proxy", response_status=200)
    events = platforms.get("meta").decode_browser(request)
    assert events[0].event_name == HOSTILE_PARAMS["ev"]  # the hostile text is in the data
    for seq, event in enumerate(events):
        event.seq = seq
    result = match_events(events)
    record = artifacts.test_record("tests/test_x.py::test_<script>window.__pwned=8</script>",
                                   "failed", result, diagnose(result), {"2xx": 1}, [], False)
    return artifacts.build_report([record])


def _open_in_chromium(path: Path) -> dict:
    """Load the report in a real headless Chromium (own thread: the session may already
    drive a sync Playwright on the main one) and say what ran."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from pytest_pixelcheck.browser import NO_DNS, chromium_args, find_chromium

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium().executable_path,
                                     args=chromium_args(None, (NO_DNS,)),
                                     headless=True)
        try:
            page = browser.new_page()
            dialogs, messages = [], []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message),
                                              dialog.dismiss()))
            page.on("console", lambda message: messages.append(message.text))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            # hover every marker: a payload behind an event handler would fire now
            for marker in page.locator(".event").all()[:10]:
                try:
                    marker.hover(timeout=2000)
                except PlaywrightError:
                    pass  # a marker a broken page hides: what ran is asked below
            return {
                "pwned": page.evaluate("typeof window.__pwned"),
                "scripts": page.evaluate("document.scripts.length"),
                "handlers": page.evaluate(
                    "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes])"
                    ".filter(a => a.name.startsWith('on')).length"),
                "text": page.evaluate("document.documentElement.textContent"),
                "dialogs": dialogs, "console": messages,
            }
        finally:
            browser.close()


@pytest.mark.browser
def test_the_html_report_never_runs_a_script_from_a_pixel_parameter(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from pytest_pixelcheck.report_html import write_html

    path = write_html(tmp_path / "report.html", _hostile_report())
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(_open_in_chromium, path).result(timeout=120)
    assert seen["pwned"] == "undefined" and not seen["dialogs"], seen
    assert seen["scripts"] == 0 and seen["handlers"] == 0
    assert not seen["console"]
    # the hostile strings are on the page, as text
    assert HOSTILE_PARAMS["ev"] in seen["text"]
    assert "window.__pwned=8" in seen["text"]


def test_the_hostile_report_would_run_its_scripts_unescaped(tmp_path):
    """The browser test proves something: the same strings, unescaped, are scripts."""
    from html.parser import HTMLParser

    tags: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append(tag)  # type: ignore[method-assign]
    parser.feed("".join(HOSTILE_PARAMS.values()))
    assert {"script", "img", "svg"} <= set(tags)


def test_analyze_keeps_a_request_its_decoder_crashes_on(monkeypatch):
    """``pixelcheck analyze`` (decode_request) records the request with the reason,
    as the sink and the proxy do, instead of stopping on the exception."""
    def crash(request):
        raise TypeError("an input the decoder never foresaw")

    monkeypatch.setattr(platforms.get("meta"), "handle_server", crash)
    request = _capi_request(_capi_body())
    [event] = platforms.decode_request(request, "server")
    assert event.raw is request and "never foresaw" in event.error
