"""pytest wiring: options, fixtures and report hooks. Logic lives elsewhere.

Per-test data rides on the test report (``report.pixelcheck``, plain types), so
under xdist the controller sees every worker's tests and prints one summary.
"""

from __future__ import annotations

import importlib.util
import os
import re
import traceback
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

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
from .gate import apply_gate, gate_line
from .harness import Harness, HarnessConfig
from .listen import ListenError, check_listen_host
from .pii import coverage_rows, match_key_coverage
from .playwright_wiring import (
    PLAYWRIGHT_FIXTURES,
    PLAYWRIGHT_MODES,
    PageRequests,
    proxy_context_args,
    proxy_launch_args,
)
from .proxy import PixelProxy
from .report import append_markdown_summary, session_summary, shorten, test_report
from .serve import AttachError
from .sink import ConversionSink

if TYPE_CHECKING:  # Playwright's own types; imported only when a browser test runs
    from playwright.sync_api import Browser, BrowserContext, Page

_HAS_PYTEST_PLAYWRIGHT = importlib.util.find_spec("pytest_playwright") is not None

# (ini name, help, type, default); each also has a --pixelcheck-... flag
_SETTINGS: list[tuple[str, str, Literal["string", "bool"], Any]] = [
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
    ("pixelcheck_github_summary", "append the session table as Markdown to this file "
     "(default: $GITHUB_STEP_SUMMARY when set, as in GitHub Actions)", "string", None),
    ("pixelcheck_min_dedup_rate", "fail the session when the overall dedup rate is below "
     "this (0 to 1)", "string", None),
    ("pixelcheck_artifacts", "folder for failed tests' captured events (JSONL) and HAR",
     "string", "pixelcheck-artifacts"),
    ("pixelcheck_real_libraries", "let platform JS libraries (fbevents.js) load from the "
     "network instead of the offline stand-in", "bool", False),
    ("pixelcheck_listen_host", "address the proxy and sink listen on; one other machines or "
     "containers reach needs pixelcheck_allow_remote and pixelcheck_access_token", "string",
     "127.0.0.1"),
    ("pixelcheck_allow_remote", "allow a non-loopback pixelcheck_listen_host (the sink then "
     "answers only calls with the access token)", "bool", False),
    ("pixelcheck_sink_port", "fixed port of the sink, for a backend started beforehand "
     "(under xdist worker N uses PORT+N; default: any free port)", "string", None),
    ("pixelcheck_proxy_port", "fixed port of the proxy (under xdist worker N uses PORT+N; "
     "default: any free port)", "string", None),
    ("pixelcheck_connect", "ws:// endpoint of a Playwright browser server (playwright "
     "launch-server, a grid) to use instead of launching Chromium", "string", None),
    ("pixelcheck_connect_proxy", "the proxy's URL as that remote browser reaches it, e.g. "
     "http://runner-host:8080 (default: the proxy's local URL)", "string", None),
    ("pixelcheck_attach", "control URL of a running `pixelcheck serve`: the server calls it "
     "captures (a staging backend's) join each test's capture", "string", None),
    ("pixelcheck_shard", "K/N: run only the K-th of N equal parts of the selected tests "
     "(a CI matrix job; merge the parts' reports with pixelcheck merge)", "string", None),
    ("pixelcheck_ca_dir", "folder of a CA that outlives the run (pixelcheck ca --export); "
     "default: a fresh CA per run", "string", None),
    ("pixelcheck_direct_site", "pixelcheck's browser reaches the site on loopback directly, "
     "only other hosts through the proxy (faster; the token scan reads the site's pages "
     "from Playwright's response events)", "bool", False),
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
    try:
        settings = harness_config(config)
        check_listen_host(settings.listen_host, allow_remote=settings.allow_remote,
                          access_token=settings.access_token)
    except (ListenError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from None
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


def parse_shard(value: str) -> tuple[int, int]:
    """``"2/3"`` -> (2, 3); anything else is a ValueError that says what is wanted."""
    part, sep, total = value.partition("/")
    try:
        k, n = int(part), int(total)
    except ValueError:
        k = n = 0
    if not sep or not 1 <= k <= n:
        raise ValueError(f"--pixelcheck-shard={value}: K/N with 1 <= K <= N, e.g. 1/2")
    return k, n


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--pixelcheck-shard K/N``: every N-th test by node id, from the K-th on, so the N
    jobs of a CI matrix split any suite with no overlap and no gap."""
    value = _setting(config, "pixelcheck_shard")
    if not value:
        return
    try:
        k, n = parse_shard(str(value))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    order = {nodeid: i for i, nodeid in enumerate(sorted(item.nodeid for item in items))}
    kept = [item for item in items if order[item.nodeid] % n == k - 1]
    deselected = [item for item in items if order[item.nodeid] % n != k - 1]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


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
        listen_host=str(_setting(config, "pixelcheck_listen_host") or "127.0.0.1"),
        allow_remote=bool(_setting(config, "pixelcheck_allow_remote")),
        proxy_port=_port(config, "pixelcheck_proxy_port"),
        sink_port=_port(config, "pixelcheck_sink_port"),
        ca_dir=_setting(config, "pixelcheck_ca_dir") or None,
        connect=_setting(config, "pixelcheck_connect") or None,
        connect_proxy=_setting(config, "pixelcheck_connect_proxy") or None,
        proxy_loopback=not _setting(config, "pixelcheck_direct_site"),
    )


def _port(config: pytest.Config, name: str) -> int:
    """A fixed port, shifted by the xdist worker's number so workers do not collide."""
    value = str(_setting(config, name) or "0").strip()
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{_flag(name)}={value}: a port is a number") from None
    if not 0 <= port < 65536:
        raise ValueError(f"{_flag(name)}={value}: a port is between 0 and 65535")
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    return port + int(worker[2:]) if port and worker.startswith("gw") else port


# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pixelcheck_harness(pytestconfig: pytest.Config) -> Iterator[Harness]:
    """The session's store, proxy and sink (the browser starts on first use)."""
    try:
        harness = Harness(harness_config(pytestconfig)).start()
    except ListenError as exc:  # a taken port: the message says which and what to do
        pytest.fail(str(exc), pytrace=False)
    attach = _setting(pytestconfig, "pixelcheck_attach")
    if attach:
        try:
            harness.attach(attach, token=harness.config.access_token)
        except AttachError as exc:
            harness.stop()
            pytest.fail(f"--pixelcheck-attach: {exc}", pytrace=False)
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
                       request: pytest.FixtureRequest) -> Iterator[Browser]:
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
    try:
        capture = pixelcheck_harness.capture(request.node.nodeid)
    except AttachError as exc:
        pytest.fail(f"--pixelcheck-attach: {exc}", pytrace=False)
    watch = _page_requests(request.config)
    capture.watch_page_requests(watch.log)
    capture.watch_failed_requests(watch.failed.log, watch.failed.flush)
    capture.consent_hook = lambda: request.getfixturevalue("pixelcheck_consent_hook")
    request.node.stash[_CAPTURE_KEY] = capture
    attachment = pixelcheck_harness.attachment
    if attachment is not None:
        request.addfinalizer(attachment.end)
    return capture


@pytest.fixture
def pixelcheck_consent_hook() -> Any:
    """How ``pixelcheck.consent(granted)`` sets the visitor's answer in the site's own
    consent banner: override it in a conftest with a fixture that returns
    ``set_consent(granted: bool)`` (click the banner's button, or set the CMP's
    cookie). None here: no CMP is wired."""
    return None


@pytest.fixture
def pixelcheck_context(pixelcheck: Pixelcheck, pixelcheck_browser: Browser,
                       pixelcheck_harness: Harness) -> Iterator[BrowserContext]:
    """A fresh browser context for this test (own cookies, own storage)."""
    session = pixelcheck_harness.browser()
    context = session.new_context()
    pixelcheck.watch_failed_requests(session.failed_requests.log,
                                     session.failed_requests.flush)
    yield context
    context.close()


@pytest.fixture
def pixelcheck_page(pixelcheck_context: BrowserContext) -> Page:
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    capture = item.stash.get(_CAPTURE_KEY, None)
    if capture is None or report.when != "call":
        return report
    try:
        _report_capture(item, call, report, capture)
    except Exception as exc:  # noqa: BLE001
        # An exception escaping a report hook is an INTERNALERROR that ends the whole
        # session: one test's capture, however hostile, fails that test alone.
        _evaluation_failed(report, exc)
    return report


def _evaluation_failed(report: pytest.TestReport, exc: BaseException) -> None:
    from .redact import scrub

    where = traceback.extract_tb(exc.__traceback__)[-3:]
    frames = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in where)
    message = shorten(scrub(f"{type(exc).__name__}: {exc}"), 500)
    text = (f"pixelcheck could not evaluate this test: {message}\n(at {frames}). The "
            "captured requests are kept; this is a bug in pixelcheck, please report it "
            "with the test's capture.")
    if report.passed:
        report.outcome = "failed"
        report.longrepr = text
    else:
        report.sections.append(("pixelcheck", text))


def _report_capture(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport,
                    capture: Pixelcheck) -> None:
    result, findings = capture.evaluate()
    # Plain data only: under xdist it travels to the controller with the report.
    coverage = match_key_coverage(result, capture.known_customer)
    record = test_record(item.nodeid, report.outcome, result, findings,
                         capture.sink_answers(), coverage_rows(coverage),
                         capture.known_customer is not None,
                         expected_codes=capture.expected_codes,
                         caught_assertions=capture.failed_assertions if report.passed else 0)
    report.pixelcheck = record  # type: ignore[attr-defined]  # rides in the report's __dict__
    # JUnit XML reads them from the item when the test's last report is written
    item.user_properties.extend(junit_properties(record))
    if not report.failed:
        return
    folder = artifact_folder(item.config, item.nodeid)
    events_path = write_capture(folder / "events.jsonl", capture.events)
    har_path = write_har(folder / "traffic.har", capture.traffic())
    item.user_properties += [("pixelcheck_events", str(events_path)),
                             ("pixelcheck_har", str(har_path))]
    own_message = call.excinfo is not None and (
        isinstance(call.excinfo.value, PixelcheckAssertionError)
        or item.stash.get(_EXPECTATION_FAILED_KEY, False))
    crash = getattr(report.longrepr, "reprcrash", None)
    if own_message and crash is not None and call.excinfo is not None:
        # the verdict's first line is what a CI's test list (JUnit's failure message)
        # shows; the full verdict stays in the failure's text
        crash.message = str(call.excinfo.value).strip().splitlines()[0]
    section = "" if own_message else test_report(result, findings) + "\n"
    report.sections.append(("pixelcheck", section + f"captured events: {events_path}\n"
                                                    f"proxy traffic (HAR): {har_path}"))


def junit_properties(record: dict[str, Any]) -> list[tuple[str, str]]:
    """A test's dedup rate and finding codes, as JUnit XML properties."""
    rows = record["stats"]
    conversions = sum(r["deduplicated"] + max(r["browser_only"], r["server_only"])
                      for r in rows)
    merged = sum(r["deduplicated"] for r in rows)
    codes = ",".join(dict.fromkeys(f["code"] for f in record["findings"]))
    return [("pixelcheck_dedup_rate", f"{merged / conversions:.4g}" if conversions else "-"),
            ("pixelcheck_findings", codes or "-")]


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
    try:
        report = _session_report(config)
        if report is None:
            return
        summary = session_summary(report, verbose=config.option.verbose > 0)
    except Exception as exc:  # noqa: BLE001  (never an INTERNALERROR; said, and failed)
        summary = _session_bug(config, "summarize the session", exc)
    terminalreporter.section("pixelcheck")
    terminalreporter.write_line(summary)


def _session_bug(config: pytest.Config, doing: str, exc: BaseException) -> str:
    """A pixelcheck bug at the session's end: a line for the terminal, and the session
    fails (a report that could not be made must not read as a pass)."""
    from .redact import scrub

    message = (f"pixelcheck could not {doing}: "
               f"{shorten(scrub(f'{type(exc).__name__}: {exc}'), 300)}")
    config.stash[_SESSION_BUG_KEY] = message
    return message


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        _finish_session(session)
    except Exception as exc:  # noqa: BLE001
        session.config.stash[_GATE_KEY] = _session_bug(
            session.config, "write the session's reports", exc)
    if session.config.stash.get(_SESSION_BUG_KEY, None) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _finish_session(session: pytest.Session) -> None:
    config = session.config
    report = _session_report(config)
    if report is None:
        return
    min_rate = _setting(config, "pixelcheck_min_dedup_rate")
    min_rate = float(min_rate) if min_rate else None
    fail_on = _setting(config, "pixelcheck_fail_on") or None
    reasons = apply_gate(report, min_dedup_rate=min_rate, fail_on=fail_on)
    if _setting(config, "pixelcheck_report"):
        write_json(_setting(config, "pixelcheck_report"), report)
    if _setting(config, "pixelcheck_html"):
        from .report_html import write_html

        write_html(_setting(config, "pixelcheck_html"), report)
    summary_path = _setting(config, "pixelcheck_github_summary") or \
        os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        append_markdown_summary(summary_path, report)
    if reasons:
        config.stash[_GATE_KEY] = gate_line(reasons)
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
_SESSION_BUG_KEY = pytest.StashKey[str]()
_PREVIOUS_SEVERITY_KEY = pytest.StashKey[dict[str, Any]]()
_EXPECTATION_FAILED_KEY = pytest.StashKey[bool]()
