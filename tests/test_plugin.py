"""The plugin seen from a user's test run (pytester, in a subprocess: one
mitmproxy per process)."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

FABRICATED = '''
import time
from pytest_pixelcheck import Event, assert_deduplicated

def event(source, name, eid):
    return Event("meta", source, "1234567890", name, eid, time.time(), time.time())

def test_ids_differ(pixelcheck):
    pixelcheck.store.add([event("browser", "Purchase", "ORD-1"),
                          event("server", "Purchase", "ORD-1-server")])
    assert_deduplicated(pixelcheck, "Purchase", timeout=0.2)

def test_ok(pixelcheck):
    pixelcheck.store.add([event("browser", "Lead", "L-1"), event("server", "Lead", "L-1")])
    assert_deduplicated(pixelcheck, "Lead")

def test_other_failure_shows_the_events(pixelcheck):
    pixelcheck.store.add([event("browser", "Lead", "L-2")])
    assert 1 == 2, "some unrelated check"
'''


def test_failure_points_at_the_test_line_with_an_actionable_message(pytester):
    pytester.makepyfile(test_user=FABRICATED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    # the traceback stops at the user's line, not in pixelcheck's internals
    result.stdout.fnmatch_lines([
        '>*assert_deduplicated(pixelcheck, "Purchase", timeout=0.2)',
        "E   *assert_deduplicated('Purchase') failed: 1 error [[]near-miss-event-id]",
        "E   *ERROR [[]near-miss-event-id] Purchase: browser id 'ORD-1' and server id",
        "E   *'ORD-1-server' nearly match: the server id has the extra suffix",
        "E   *'-server'",
        "E   *browser: 'Purchase' id 'ORD-1'",
        "E   *server:  'Purchase' id 'ORD-1-server'",
        "test_user.py:10: PixelcheckAssertionError",
    ])
    assert "pytest_pixelcheck/assertions.py" not in out
    assert "pytest_pixelcheck/capture.py" not in out
    # a failure that is not pixelcheck's still shows the captured events
    result.stdout.fnmatch_lines([
        "*- pixelcheck -*",
        "*B Lead *L-2*",
        "*server-event-missing*",
    ])
    # the session summary counts every test's events
    result.stdout.fnmatch_lines(["*meta * Purchase * 1 * 1 * 0 * 1 * 1 * 0%*"])


def test_options_have_flags_and_ini_keys(pytester):
    pytester.makeini("[pytest]\npixelcheck_timeout = 0.3\n")
    pytester.makepyfile(test_opts='''
def test_settings(pixelcheck, pixelcheck_harness, pytestconfig):
    assert pixelcheck.default_timeout == 0.3
    assert pixelcheck_harness.config.late_after == 9.0
''')
    result = pytester.runpytest_subprocess("--pixelcheck-late-after=9")
    result.assert_outcomes(passed=1)
    help_result = pytester.runpytest_subprocess("--help")
    help_result.stdout.fnmatch_lines(["pixel/conversion API deduplication checks:",
                                      "*--pixelcheck-browser=VALUE*",
                                      "*pixelcheck_timeout (string):*"])


def test_wait_for_timeout_lists_what_arrived(pytester):
    pytester.makepyfile(test_wait='''
import time
from pytest_pixelcheck import Event

def test_wait(pixelcheck):
    pixelcheck.store.add([Event("meta", "browser", "1", "Lead", "x", time.time(), time.time())])
    pixelcheck.wait_for("Purchase", source="server", timeout=0.2)
''')
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([
        "*WaitTimeout: waited 0.2s for 1 server 'Purchase' event(s), got 0. "
        "Captured in this test: browser Lead.*"])


@pytest.mark.browser
def test_pixelcheck_page_in_a_fresh_user_project(pytester):
    """A user's own page, through the plugin's page fixture, end to end."""
    pytester.makepyfile(test_page='''
from pytest_pixelcheck import assert_deduplicated

SNIPPET = """<script>!function(f,b,e,v,n,t,s){if(f.fbq)return;n=f.fbq=function(){
n.callMethod?n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;
n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;t.src=v;
s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}(window, document,'script',
'https://connect.facebook.net/en_US/fbevents.js');
fbq('init', '42'); fbq('track', 'Lead', {}, {eventID: 'lead-7'});</script>"""

def test_lead(pixelcheck, pixelcheck_page, httpserver):
    httpserver.expect_request("/").respond_with_data(SNIPPET, content_type="text/html")
    pixelcheck_page.goto(httpserver.url_for("/"))
    pixelcheck.wait_for("Lead", source="browser")
    assert_deduplicated(pixelcheck, "Lead", timeout=0.5)
''')
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*[[]server-event-missing] browser Lead id='lead-7'*",
                                 "*captured events: pixelcheck-artifacts/*/events.jsonl"])
    # the failed test's artifacts hold the real bytes: the hit, the page, the library
    folder = next((pytester.path / "pixelcheck-artifacts").iterdir())
    [line] = (folder / "events.jsonl").read_text().splitlines()
    assert "www.facebook.com/tr" in line and "eid=lead-7" in line
    entries = json.loads((folder / "traffic.har").read_text())["log"]["entries"]
    handled = {e["comment"] for e in entries}
    assert {"pixelcheck: collection", "pixelcheck: library", "pixelcheck: passthrough"} <= handled


COMPOSE = '''
import pytest
from pytest_pixelcheck import assert_deduplicated

EXECUTABLE = {executable!r}
PAGE = "<script>!function(f,b,e,v,n,t,s){{if(f.fbq)return;n=f.fbq=function(){{n.callMethod?" \\
    "n.callMethod.apply(n,arguments):n.queue.push(arguments)}};if(!f._fbq)f._fbq=n;n.push=n;" \\
    "n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;t.src=v;" \\
    "s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}}(window,document," \\
    "'script','https://connect.facebook.net/en_US/fbevents.js');fbq('init','7');" \\
    "fbq('track','Lead',{{}},{{eventID:'L1'}});</script>"

{extra}

def test_pixelcheck_page(pixelcheck, pixelcheck_page, httpserver):
    httpserver.expect_request("/").respond_with_data(PAGE, content_type="text/html")
    pixelcheck_page.goto(httpserver.url_for("/"))
    assert pixelcheck.wait_for("Lead", source="browser").event_id == "L1"
'''

WITH_PYTEST_PLAYWRIGHT = '''
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": EXECUTABLE}

def test_their_page_is_proxied_too(page, pixelcheck, httpserver):
    httpserver.expect_request("/").respond_with_data(PAGE, content_type="text/html")
    page.goto(httpserver.url_for("/"))
    assert pixelcheck.wait_for("Lead", source="browser").event_id == "L1"
'''


@pytest.mark.browser
@pytest.mark.parametrize("with_pytest_playwright", [True, False])
def test_composes_with_and_without_pytest_playwright(pytester, with_pytest_playwright):
    pytest.importorskip("pytest_playwright")
    from pytest_pixelcheck.browser import find_chromium

    executable = find_chromium().executable_path
    extra = WITH_PYTEST_PLAYWRIGHT if with_pytest_playwright else ""
    pytester.makepyfile(test_compose=COMPOSE.format(executable=executable, extra=extra))
    args = [] if with_pytest_playwright else ["-p", "no:playwright"]
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2 if with_pytest_playwright else 1)
    assert "Error" not in result.stdout.str().split("short test summary")[-1]
