"""pytest-playwright's own page, context and browser next to pixelcheck, seen from a
user's test run (pytester in a subprocess: one mitmproxy per process), with a real
Chromium through the real proxy."""

from __future__ import annotations

import pytest

pytest.importorskip("pytest_playwright")

pytestmark = pytest.mark.browser
pytest_plugins = ["pytester"]

# What every user test file starts with: its own page on a local http.server, firing a
# Meta PageView (sendBeacon) and Lead (image pixel) straight at the collection host.
SITE = '''
import http.server
import threading

import pytest

EXECUTABLE = {executable!r}
OFFLINE_RULES = {offline!r}
PAGE = b"""<!doctype html><title>shop</title>
<script>navigator.sendBeacon('https://www.facebook.com/tr/?id=1&ev=PageView&eid=x')</script>
<img src="https://www.facebook.com/tr/?id=1&ev=Lead&eid=L1">"""


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{{server.server_port}}/"
    server.shutdown()


def codes(pixelcheck):
    return [f.code for f in pixelcheck.findings()]
'''

# Some tests here launch a browser outside the proxy on purpose (to see it reported):
# such a browser resolves no host but loopback, so it cannot reach the network either.
# Where Playwright's own Chromium is not installed, pytest-playwright gets the one
# pixelcheck found, as such a user would point it.
OFFLINE_RULES = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
LAUNCH_CONFTEST = '''
import pytest

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    args = {{**browser_type_launch_args,
             "args": [*browser_type_launch_args.get("args", []), {offline!r}]}}
    if {executable!r} is not None:
        args["executable_path"] = {executable!r}
    return args
'''


def _executable() -> str | None:
    from pytest_pixelcheck.browser import find_chromium

    return find_chromium().executable_path


def _user_project(pytester: pytest.Pytester, tests: str, conftest: str = "") -> None:
    executable = _executable()
    conftest = LAUNCH_CONFTEST.format(executable=executable, offline=OFFLINE_RULES) + conftest
    pytester.makeconftest(conftest)
    pytester.makepyfile(test_user=SITE.format(executable=executable, offline=OFFLINE_RULES)
                        + tests)


NO_SETUP = '''
def test_page(page, pixelcheck, site):
    page.goto(site)
    assert pixelcheck.wait_for("Lead", source="browser").event_id == "L1"
    pixelcheck.wait_for("PageView", source="browser")
    # captured and trusted: only what the page itself lacks (no backend in this test)
    assert set(codes(pixelcheck)) == {"server-event-missing"}


def test_context(context, pixelcheck, site):
    context.new_page().goto(site)
    pixelcheck.wait_for("Lead", source="browser")


def test_own_context_of_the_session_browser(browser, pixelcheck, site):
    # no ignore_https_errors here: the launch-level trust flag is what lets it through
    context = browser.new_context()
    context.new_page().goto(site)
    pixelcheck.wait_for("Lead", source="browser")
    assert "proxy-not-trusted" not in codes(pixelcheck)
    context.close()


def test_without_pixelcheck_still_loads(page, site):
    page.goto(site)
    assert page.title() == "shop"


def test_own_browser_launched_without_proxy(playwright, pixelcheck, site):
    browser = playwright.chromium.launch(executable_path=EXECUTABLE, args=[OFFLINE_RULES])
    page = browser.new_page()
    page.goto(site)
    page.wait_for_load_state("networkidle")
    [first, *_] = pixelcheck.findings()
    assert first.code == "browser-not-proxied"
    assert "pixelcheck_proxy.url" in first.fix and "consent" not in first.fix
    assert first.details[0] == "requested: " + site
    browser.close()
'''


def test_page_context_and_browser_capture_with_no_setup(pytester: pytest.Pytester) -> None:
    _user_project(pytester, NO_SETUP)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_a_session_without_pixelcheck_keeps_its_browser_as_it_was(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
def test_plain(browser_type_launch_args, browser_context_args):
    assert "proxy" not in browser_type_launch_args
    assert "ignore_https_errors" not in browser_context_args
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


OPTED_OUT = '''
import time
from pytest_pixelcheck import Event, assert_deduplicated

def test_wait_for(page, pixelcheck, site):
    page.goto(site)
    pixelcheck.wait_for("Lead", source="browser", timeout=1)


def test_assert_deduplicated(page, pixelcheck, site):
    page.goto(site)
    pixelcheck.store.add([Event("meta", "server", "1", "Lead", "L1", time.time(), time.time())])
    assert_deduplicated(pixelcheck, "Lead", timeout=0.5)


def test_left_alone(browser_type_launch_args, browser_context_args, pixelcheck):
    assert "proxy" not in browser_type_launch_args
    assert "ignore_https_errors" not in browser_context_args
'''


def test_opt_out_reports_the_unproxied_browser_first(pytester: pytest.Pytester) -> None:
    _user_project(pytester, OPTED_OUT)
    pytester.makeini("[pytest]\npixelcheck_playwright = off\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    # the timed-out wait names the cause and the wiring
    result.stdout.fnmatch_lines([
        "E   *WaitTimeout: waited 1s for 1 browser 'Lead' event(s), got 0. Captured in this "
        "test: nothing. Why: the test's browser requested 3 URL(s) but none went through the "
        "pixelcheck proxy*Fix: route the browser through the pixelcheck proxy*"
        "pixelcheck_playwright = auto*proxy={'server': pixelcheck_proxy.url}*"])
    # the assertion's headline and first finding are the wiring, not the page
    result.stdout.fnmatch_lines([
        "E   *assert_deduplicated('Lead') failed: 2 errors [[]browser-not-proxied, *]",
        "E   *ERROR [[]browser-not-proxied] the test's browser requested 3 URL(s) but*",
        "E   *requested: http://127.0.0.1:*/",
        "E   *requested: https://www.facebook.com/tr/?id=1&ev=Lead&eid=L1",
        "E   *fix: route the browser through the pixelcheck proxy*",
        # offline, the unproxied browser's hit fails to resolve: said in its own words
        "E   *ERROR [[]browser-request-failed] server Lead id='L1' has no browser*",
        "E   *the browser failed the request*",
    ])
    # what the headline finding says blames neither consent nor ad blockers
    end = out.index("[browser-request-failed] server")
    head = out[out.rindex("[browser-not-proxied] the test's", 0, end):end]
    assert "fix: route the browser" in head
    assert "consent" not in head and "ad blocker" not in head


CONTEXT_ARGS_OVERRIDES = {
    "extends": '''
@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 777, "height": 555}}
''',
    "replaces": '''
@pytest.fixture(scope="session")
def browser_context_args():
    return {"viewport": {"width": 777, "height": 555}}
''',
}

COMPOSED = '''
def test_their_viewport_and_our_capture(page, pixelcheck, site):
    assert page.viewport_size == {"width": 777, "height": 555}
    page.goto(site)
    assert pixelcheck.wait_for("Lead", source="browser").event_id == "L1"
    assert not {"browser-not-proxied", "proxy-not-trusted"} & set(codes(pixelcheck))
'''


@pytest.mark.parametrize("style", sorted(CONTEXT_ARGS_OVERRIDES))
def test_a_users_browser_context_args_still_compose(pytester: pytest.Pytester,
                                                    style: str) -> None:
    _user_project(pytester, COMPOSED, "\nimport pytest\n" + CONTEXT_ARGS_OVERRIDES[style])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
