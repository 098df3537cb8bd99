"""pytest wiring: options, fixtures and report hooks. Logic lives elsewhere.

Per-test data rides on the test report (``report.pixelcheck``, plain types), so
under xdist the controller sees every worker's tests and prints one summary.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from .artifacts import (
    build_report,
    test_record,
    write_capture,
    write_har,
    write_json,
)
from .assertions import (
    PixelcheckAssertionError,
    check_expectation,
    check_expected_codes,
)
from .capture import Pixelcheck
from .findings import parse_severity_overrides, set_severity_overrides, severity_overrides
from .gate import gate_failures
from .harness import Harness, HarnessConfig
from .pii import coverage_rows, match_key_coverage
from .playwright_wiring import (
    PLAYWRIGHT_FIXTURES,
    PLAYWRIGHT_MODES,
    PageRequests,
    proxy_context_args,
    proxy_launch_args,
)
from .proxy import PixelProxy
from .report import session_summary, test_report
from .sink import ConversionSink

_HAS_PYTEST_PLAYWRIGHT = importlib.util.find_spec("pytest_playwright") is not None

# (ini name, help, type, default); each also has a --pixelcheck-... flag
_SETTINGS: list[tuple[str, str, str, Any]] = [
    ("pixelcheck_browser", "Chromium executable (default: Playwright's, then the system's)",
     "string", None),
    ("pixelcheck_headed", "run the browser with a window", "bool", False),
    ("pixelcheck_timeout", "seconds assertions wait for straggling events", "string", "5"),
    ("pixelcheck_fail_on", "lowest finding severity that fails assert_deduplicated and, "
     "when set, the whole session (error|warning)", "string", None),
    ("pixelcheck_severity", "per-code severity overrides, comma or newline separated: "
     "payload-mismatch=error, server-event-late=info (assertions, gate and reports use "
     "them)", "string", None),
    ("pixelcheck_late_after", "seconds after which a server twin counts as late", "string", "3"),
    ("pixelcheck_race_tolerance", "seconds a server twin may precede the browser's before "
     "it is reported", "string", "2.0"),
    ("pixelcheck_access_token", "the access token server calls must carry; others get the "
     "platform's invalid-token answer", "string", None),
    ("pixelcheck_allowed_pixels", "comma-separated pixel ids and/or collection hosts allowed "
     "to fire; any other is an error finding", "string", None),
    ("pixelcheck_report", "write the JSON report (versioned format) to this path", "string",
     None),
    ("pixelcheck_html", "write the self-contained HTML report to this path", "string", None),
    ("pixelcheck_min_dedup_rate", "fail the session when the overall dedup rate is below "
     "this (0 to 1)", "string", None),
    ("pixelcheck_artifacts", "folder for failed tests' captured events (JSONL) and HAR",
     "string", "pixelcheck-artifacts"),
    ("pixelcheck_real_libraries", "let platform JS libraries (fbevents.js) load from the "
     "network instead of the offline stand-in", "bool", False),
    ("pixelcheck_allow_upstream", "let requests to hosts pixelcheck does not serve go to the "
     "network; by default the proxy answers them itself and nothing leaves the machine",
     "bool", False),
    ("pixelcheck_playwright", "route pytest-playwright's browser through the pixelcheck "
     "proxy when a selected test uses pixelcheck (auto) or never (off)", "string", "auto"),
]


def _flag(ini_name: str) -> str:
    return "--" + ini_name.replace("_", "-")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("pixelcheck", "pixel/conversion API deduplication checks")
    for name, help_text, kind, default in _SETTINGS:
        parser.addini(name, help_text, type=kind, default=default)
        if kind == "bool":
            group.addoption(_flag(name), action="store_true", default=None, dest=name,
                            help=help_text)
        else:
            group.addoption(_flag(name), action="store", default=None, dest=name,
                            metavar="VALUE", help=help_text)
    if not _HAS_PYTEST_PLAYWRIGHT or pluginmanager.is_blocked("playwright"):
        # pytest-playwright owns --headed when it is installed; we read its value then.
        group.addoption("--headed", action="store_true", default=False,
                        help="run the pixelcheck browser with a window")


def pytest_configure(config: pytest.Config) -> None:
    # mitmproxy's own deprecation warnings fire on the proxy thread during the
    # user's tests; they are ours to silence, not the user's to read.
    for module in ("mitmproxy", "ldap3", "passlib"):  # imported with mitmproxy
        config.addinivalue_line("filterwarnings", f"ignore::DeprecationWarning:{module}.*")
    _playwright_mode(config)  # a typo is a usage error now, not a silent "auto" later
    config.addinivalue_line(
        "markers", "pixelcheck_expect(*codes, timeout=None): a negative test that must "
        "produce exactly these finding codes (see expect_findings); it is set aside from "
        "the session's dedup rate, findings and gate")
    # Every process (xdist controller and workers alike) reads the option itself, so
    # each applies the same overrides to the findings it makes or counts.
    try:
        overrides = parse_severity_overrides(_setting(config, "pixelcheck_severity"))
        config.stash[_PREVIOUS_SEVERITY_KEY] = severity_overrides()
        set_severity_overrides(overrides)
    except ValueError as exc:
        raise pytest.UsageError(f"--pixelcheck-severity / pixelcheck_severity: {exc}") \
            from None


def _setting(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    return value if value is not None else config.getini(name)


def harness_config(config: pytest.Config) -> HarnessConfig:
    headed = bool(_setting(config, "pixelcheck_headed")) or bool(
        config.getoption("headed", default=False))
    return HarnessConfig(
        browser_path=_setting(config, "pixelcheck_browser") or None,
        headless=not headed,
        serve_libraries=not _setting(config, "pixelcheck_real_libraries"),
        allow_upstream=bool(_setting(config, "pixelcheck_allow_upstream")),
        default_timeout=float(_setting(config, "pixelcheck_timeout")),
        fail_on=str(_setting(config, "pixelcheck_fail_on") or "error"),
        late_after=float(_setting(config, "pixelcheck_late_after")),
        race_tolerance=float(_setting(config, "pixelcheck_race_tolerance")),
        access_token=_setting(config, "pixelcheck_access_token") or None,
        allowed_pixels=tuple(a.strip() for a in
                             (_setting(config, "pixelcheck_allowed_pixels") or "").split(",")
                             if a.strip()),
    )


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pixelcheck_harness(pytestconfig: pytest.Config) -> Iterator[Harness]:
    """The session's store, proxy and sink (the browser starts on first use)."""
    harness = Harness(harness_config(pytestconfig)).start()
    pytestconfig.stash[_HARNESS_KEY] = harness
    yield harness
    harness.stop()


@pytest.fixture(scope="session")
def pixelcheck_proxy(pixelcheck_harness: Harness) -> PixelProxy:
    """The intercepting proxy: ``.url``, ``.ca_cert_path``."""
    return pixelcheck_harness.proxy


@pytest.fixture(scope="session")
def pixelcheck_sink(pixelcheck_harness: Harness) -> ConversionSink:
    """The server API sink: ``.url_for(platform)`` replaces a platform's API origin."""
    return pixelcheck_harness.sink


@pytest.fixture(scope="session")
def pixelcheck_browser(pixelcheck_harness: Harness,
                       request: pytest.FixtureRequest) -> Iterator[Any]:
    """The session's Chromium, routed through the proxy and trusting its CA."""
    playwright = None
    if request.config.pluginmanager.hasplugin("playwright"):
        # Compose with pytest-playwright: reuse its Playwright instance instead of
        # starting a second driver in the same thread.
        playwright = request.getfixturevalue("playwright")
    yield pixelcheck_harness.browser(playwright).browser
    # Closed here, before pytest-playwright's `playwright` fixture (set up after
    # the harness) stops the driver.
    pixelcheck_harness.close_browser()


@pytest.fixture
def pixelcheck(pixelcheck_harness: Harness, request: pytest.FixtureRequest) -> Pixelcheck:
    """This test's capture: events, ``wait_for``, ``match()``, ``findings()``."""
    capture = pixelcheck_harness.capture(request.node.nodeid)
    watch = _page_requests(request.config)
    capture.watch_page_requests(watch.log)
    capture.watch_failed_requests(watch.failed.log, watch.failed.flush)
    request.node.stash[_CAPTURE_KEY] = capture
    return capture


@pytest.fixture
def pixelcheck_context(pixelcheck: Pixelcheck, pixelcheck_browser: Any,
                       pixelcheck_harness: Harness) -> Iterator[Any]:
    """A fresh browser context for this test (own cookies, own storage)."""
    session = pixelcheck_harness.browser()
    context = session.new_context()
    pixelcheck.watch_failed_requests(session.failed_requests.log,
                                     session.failed_requests.flush)
    yield context
    context.close()


@pytest.fixture
def pixelcheck_page(pixelcheck_context: Any) -> Any:
    """A Playwright page whose traffic goes through the pixelcheck proxy."""
    return pixelcheck_context.new_page()


_HARNESS_KEY = pytest.StashKey[Harness]()
_CAPTURE_KEY = pytest.StashKey[Pixelcheck]()


# --- pytest-playwright's page, context and browser ------------------------------------


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: Any,
                         request: pytest.FixtureRequest) -> Generator[None, Any, Any]:
    """Complete pytest-playwright's fixture values so its browser captures through the
    proxy with no setup, and watch what its browsers request.

    The value is completed in place after the fixture (and any conftest override of
    it) ran, instead of overriding the fixture: which of two plugins' overrides wins is
    fragile, and a user's own override still composes. pytest-playwright launches one
    browser per session, so when any selected test uses pixelcheck, that browser (and
    every test's context of it) goes through the proxy.
    """
    value = yield
    if fixturedef.argname in PLAYWRIGHT_FIXTURES \
            and request.config.pluginmanager.hasplugin("playwright") \
            and _pixelcheck_selected(request.session):
        _wire_playwright(fixturedef.argname, value, request)
    return value


def _wire_playwright(name: str, value: Any, request: pytest.FixtureRequest) -> None:
    config = request.config
    if name in ("playwright", "browser"):
        from playwright.sync_api import Browser, Playwright

        # Watched even when off: that is when a test's browser goes around the proxy.
        if isinstance(value, Playwright):
            _page_requests(config).watch_playwright(value)
        elif isinstance(value, Browser):
            _page_requests(config).watch_browser(value)
        return
    if _playwright_mode(config) == "off" or not isinstance(value, dict):
        return
    if name == "browser_type_launch_args":
        # A remote browser (connect_options) cannot reach a proxy on this machine's
        # loopback: proxying it would break every page of the session.
        try:
            remote = request.getfixturevalue("connect_options")
        except pytest.FixtureLookupError:  # pytest-playwright before connect_options
            remote = None
        if remote:
            return
        proxy = request.getfixturevalue("pixelcheck_harness").proxy
        browsers = config.getoption("browser", default=None) or ["chromium"]
        proxy_launch_args(value, proxy.url, proxy.ca_spki_sha256_base64,
                          chromium=all(b == "chromium" for b in browsers))
    else:
        proxy_context_args(value)


def _playwright_mode(config: pytest.Config) -> str:
    mode = str(_setting(config, "pixelcheck_playwright") or "auto").strip().lower()
    if mode not in PLAYWRIGHT_MODES:
        raise pytest.UsageError(f"pixelcheck_playwright must be one of "
                                f"{'|'.join(PLAYWRIGHT_MODES)}, not {mode!r}")
    return mode


def _pixelcheck_selected(session: pytest.Session) -> bool:
    """Does any selected test use pixelcheck (also through pixelcheck_page or a fixture
    of the user's)? Asked once, after collection, when the browser is set up."""
    selected = session.stash.get(_SELECTED_KEY, None)
    if selected is None:
        selected = any("pixelcheck" in getattr(item, "fixturenames", ())
                       for item in session.items)
        session.stash[_SELECTED_KEY] = selected
    return selected


def _page_requests(config: pytest.Config) -> PageRequests:
    watch = config.stash.get(_PAGE_REQUESTS_KEY, None)
    if watch is None:
        watch = config.stash[_PAGE_REQUESTS_KEY] = PageRequests()
    return watch


_SELECTED_KEY = pytest.StashKey[bool]()
_PAGE_REQUESTS_KEY = pytest.StashKey[PageRequests]()


# --- reporting --------------------------------------------------------------------------


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    """``@pytest.mark.pixelcheck_expect(*codes)``: once the test body passed, its
    findings must be exactly ``codes`` (``expect_findings``' rule), else it fails."""
    marker = item.get_closest_marker("pixelcheck_expect")
    if marker is None:
        return (yield)
    __tracebackhide__ = True
    capture = item.stash.get(_CAPTURE_KEY, None)
    try:
        codes = check_expected_codes(marker.args, "pixelcheck_expect")
    except ValueError as exc:
        codes, problem = [], str(exc)
    if not codes:  # failed outside the except block: no chained duplicate of the message
        item.stash[_EXPECTATION_FAILED_KEY] = True
        pytest.fail(problem, pytrace=False)
    if capture is None:
        pytest.fail("@pytest.mark.pixelcheck_expect needs the pixelcheck fixture: add "
                    "`pixelcheck` to the test's arguments", pytrace=False)
    # Set before the body runs: a negative test that fails is still set aside.
    capture.expected_codes = list(dict.fromkeys([*codes, *(capture.expected_codes or [])]))
    result = yield
    try:
        check_expectation(capture, codes, timeout=marker.kwargs.get("timeout"),
                          call="pixelcheck_expect")
    except PixelcheckAssertionError as exc:
        message = str(exc)
    else:
        return result
    # Re-raised, its traceback would run through other plugins' hook wrappers; the
    # message alone says it all (the findings and the events table). Outside the
    # except block, so pytest does not print it twice as a chained exception.
    item.stash[_EXPECTATION_FAILED_KEY] = True
    pytest.fail(message, pytrace=False)


@pytest.hookimpl(tryfirst=True)
def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object,
                              right: object) -> list[str] | None:
    """A comparison involving pixelcheck objects, explained without tokens or PII
    (pytest's own drills into dataclass fields and prints raw URLs and headers)."""
    from .reprs import explain_comparison, is_pixelcheck_object

    if not (is_pixelcheck_object(left) or is_pixelcheck_object(right)):
        return None
    return explain_comparison(op, left, right, verbose=int(config.getoption("verbose", 0)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    capture = item.stash.get(_CAPTURE_KEY, None)
    if capture is None or report.when != "call":
        return
    result, findings = capture.evaluate()
    # Plain data only: under xdist it travels to the controller with the report.
    coverage = match_key_coverage(result, capture.known_customer)
    report.pixelcheck = test_record(item.nodeid, report.outcome, result, findings,
                                    capture.sink_answers(), coverage_rows(coverage),
                                    capture.known_customer is not None,
                                    expected_codes=capture.expected_codes,
                                    caught_assertions=capture.failed_assertions
                                    if report.passed else 0)
    if not report.failed:
        return
    folder = artifact_folder(item.config, item.nodeid)
    events_path = write_capture(folder / "events.jsonl", capture.events)
    har_path = write_har(folder / "traffic.har", capture.traffic())
    own_message = call.excinfo is not None and (
        isinstance(call.excinfo.value, PixelcheckAssertionError)
        or item.stash.get(_EXPECTATION_FAILED_KEY, False))
    section = "" if own_message else test_report(result, findings) + "\n"
    report.sections.append(("pixelcheck", section + f"captured events: {events_path}\n"
                                                    f"proxy traffic (HAR): {har_path}"))


def artifact_folder(config: pytest.Config, nodeid: str) -> Path:
    root = Path(_setting(config, "pixelcheck_artifacts") or "pixelcheck-artifacts")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]
    return root / slug


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = getattr(report, "pixelcheck", None)
    if record and report.when == "call":
        _RECORDS.append(record)


_RECORDS: list[dict[str, Any]] = []


def _session_report(config: pytest.Config) -> dict[str, Any] | None:
    if not _RECORDS or _is_worker(config):
        return None
    return build_report(_RECORDS)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = _session_report(config)
    if report is None:
        return
    terminalreporter.section("pixelcheck")
    terminalreporter.write_line(session_summary(report, verbose=config.option.verbose > 0))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    report = _session_report(config)
    if report is None:
        return
    min_rate = _setting(config, "pixelcheck_min_dedup_rate")
    min_rate = float(min_rate) if min_rate else None
    fail_on = _setting(config, "pixelcheck_fail_on") or None
    reasons = gate_failures(report, min_dedup_rate=min_rate, fail_on=fail_on)
    if min_rate is not None or fail_on is not None:
        report["gate"] = {"min_dedup_rate": min_rate, "fail_on": fail_on,
                          "passed": not reasons, "reasons": reasons}
    if _setting(config, "pixelcheck_report"):
        write_json(_setting(config, "pixelcheck_report"), report)
    if _setting(config, "pixelcheck_html"):
        from .report_html import write_html

        write_html(_setting(config, "pixelcheck_html"), report)
    if reasons:
        config.stash[_GATE_KEY] = "pixelcheck gate FAILED: " + "; ".join(reasons)
        if session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    message = config.stash.get(_GATE_KEY, None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if message and reporter is not None:
        # The very last line of the run, where CI logs are read from.
        reporter.write_line(message, red=True, bold=True)
    _RECORDS.clear()
    # an in-process run (pytester) must not leave its overrides to the outer session
    set_severity_overrides(config.stash.get(_PREVIOUS_SEVERITY_KEY, None))


_GATE_KEY = pytest.StashKey[str]()
_PREVIOUS_SEVERITY_KEY = pytest.StashKey[dict[str, Any]]()
_EXPECTATION_FAILED_KEY = pytest.StashKey[bool]()
