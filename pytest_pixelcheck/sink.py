"""The server sink: a local HTTP server that answers like the platforms' server APIs.

Built on pytest-httpserver's ``HTTPServer`` (threaded, so a slow answer for one
call does not hold up the next). A backend reaches it either by pointing its
Graph base URL at ``sink.url``, or by sending to the real host through the
proxy, which reroutes the call here with the original host in a header. Both
paths end in the same ``_handle``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import platforms
from .events import AppendLog, CapturedRequest, Event, EventStore, request_weight
from .listen import local_host, url_host
from .proxy import SINK_ORIGINAL_HOST_HEADER, SINK_REFUSED_HEADER
from .redact import remember_secret
from .report import shorten

#: how a refused call fails (ConversionSink.refuse)
REFUSALS = ("connect", "timeout")
#: _answer's status for a call that gets no answer at all
REFUSED = 0


class Switch:
    """What a switch a test turns on returns (refuse, block_browser, server_only): a
    context manager that turns it off on exit; the test's end turns it off anyway."""

    def __init__(self, off: Any) -> None:
        self._off = off

    def __enter__(self) -> Switch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._off()

    def off(self) -> None:
        self._off()


@dataclass
class _Fault:
    kind: str
    event_name: str | None
    remaining: int
    platform: str | None = None


class ConversionSink:
    """Stands in for graph.facebook.com (and later platforms' server APIs)."""

    def __init__(self, store: EventStore, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store
        self.host = host
        self.port = port
        self.server: Any = None
        self.startup_seconds: float | None = None
        #: every request with the status it was answered with, in arrival order
        self.requests: AppendLog[CapturedRequest] = AppendLog(weigh=request_weight)
        self.status_counts: Counter[int] = Counter()
        #: the access token every call must carry (ini/option); None: any token
        #: the token each platform's calls must carry (key None: every platform); set
        #: from the pixelcheck_access_token option
        self.default_tokens: dict[str | None, str] = {}
        #: how long a "timeout" fault holds its answer
        self.timeout_hold_seconds = 6.0
        self._faults: list[_Fault] = []
        self._delays: list[tuple[str | None, float]] = []
        self._test_tokens: dict[str | None, str | None] = {}
        #: listening beyond loopback: a test cannot switch the token check off
        #: (``expect_token(None)``), so the open port never answers a call without it
        self.require_token = False
        self._refusals: dict[str | None, str] = {}
        self._lock = threading.Lock()

    def start(self) -> ConversionSink:
        started = time.perf_counter()
        self.server = _sink_server_class()(host=self.host, port=self.port, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.server.start()
        self.port = self.server.port
        # werkzeug logs one INFO line per request; for the sink they only bury the
        # test's own log lines in failure output. Only this server goes quiet.
        wsgi_server = self.server.server
        wsgi_server.RequestHandlerClass = type(
            "QuietSinkHandler", (wsgi_server.RequestHandlerClass,),
            {"log_request": lambda *args, **kwargs: None})
        self.startup_seconds = time.perf_counter() - started
        return self

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.clear()
            self.server.stop()

    def __enter__(self) -> ConversionSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL that replaces ``https://graph.facebook.com``."""
        return f"http://{url_host(local_host(self.host))}:{self.port}"

    def url_for(self, platform: str) -> str:
        """Base URL that replaces ``platform``'s API origin (``url_for("tiktok")``
        for https://business-api.tiktok.com); ``url`` is Meta's, as it always was."""
        platforms.get(platform)  # an unknown name is a usage error, said here
        return f"{self.url}/{platform}"

    @property
    def address(self) -> tuple[str, int]:
        return (local_host(self.host), int(self.port))

    # --- request handling (sink thread) -----------------------------------------------

    def _handle(self, request: Any) -> Any:
        from werkzeug import Response

        original_host = request.headers.get(SINK_ORIGINAL_HOST_HEADER)
        path, platform = self._unprefixed(request.path)
        full_path = path + (f"?{request.query_string.decode('latin-1')}"
                            if request.query_string else "")
        url = (f"https://{original_host}{full_path}" if original_host
               else f"{request.host_url.rstrip('/')}{full_path}")
        headers = [(k, v) for k, v in request.headers.items()
                   if k.lower() != SINK_ORIGINAL_HOST_HEADER.lower()]
        arrival = time.time()
        unreadable = request.environ.get(_BODY_ERROR_KEY)
        raw_body = b"" if unreadable else request.get_data(cache=True, parse_form_data=False)
        captured = CapturedRequest(
            method=request.method,
            url=url,
            headers=headers,
            body=raw_body,
            arrival_time=arrival,
            channel="proxy" if original_host else "sink",
            original_host=original_host,
        )
        if unreadable is not None:
            status, body, hold = self._unreadable_body(captured, platform, original_host,
                                                       path, unreadable)
        else:
            with self.store.decoding():
                status, body, hold = self._answer(
                    captured, original_host.lower() if original_host else None, path,
                    platform)
        if status == REFUSED:
            return self._refuse(request, captured, body, hold, via_proxy=bool(original_host))
        # a 204 has no body on the wire; a platform may answer text (an HTML 5xx page)
        content_type = "application/json"
        if status == 204 or body is None:
            captured.response_body = b""
        elif isinstance(body, (bytes, str)):
            captured.response_body = body if isinstance(body, bytes) else body.encode()
            content_type = "text/html; charset=utf-8"
        else:
            captured.response_body = json.dumps(body).encode()
        captured.keep_within()  # decoded: the body is kept cut short from here on
        with self._lock:
            self.requests.append(captured)
            self.status_counts[status] += 1
        if hold:
            # The events were recorded on arrival; only the answer is late.
            time.sleep(hold)
        headers = {"Retry-After": "1"} if status == 429 else {}
        return Response(captured.response_body, status=status, headers=headers,
                        content_type=content_type)

    def _unreadable_body(self, captured: CapturedRequest, platform: platforms.Platform | None,
                         original_host: str | None, path: str,
                         reason: str) -> tuple[int, dict[str, Any], float]:
        """A body the HTTP layer could not read is recorded (undecodable-request) and
        answered 400, as a platform answers a malformed request."""
        if platform is None:
            platform = platforms.for_server_api(
                original_host.lower() if original_host else None, path)
        name = platform.name if platform is not None else "unknown"
        message = f"the request body could not be read ({reason})"
        captured.response_status = 400
        self.store.add([self._undecodable(name, captured, message)])
        return 400, {"error": {"message": f"pixelcheck sink: {message}", "code": 100}}, 0.0

    def _refuse(self, request: Any, captured: CapturedRequest, how: Any, hold: float, *,
                via_proxy: bool) -> Any:
        """Drop the call unanswered (after ``hold`` seconds, for a timeout): directly by
        closing the socket, through the proxy by telling it to drop the backend's."""
        import socket

        from werkzeug import Response

        with self._lock:
            self.requests.append(captured)
        if hold:
            time.sleep(hold)
        if via_proxy:
            return Response(b"", status=502, headers={SINK_REFUSED_HEADER: str(how)})
        connection = request.environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # written to a closed socket: werkzeug drops it quietly
        return Response(b"", status=502)

    @staticmethod
    def _unprefixed(path: str) -> tuple[str, platforms.Platform | None]:
        """``/tiktok/open_api/...`` -> (``/open_api/...``, TikTok): the prefix that
        ``url_for`` puts in front of a platform's paths."""
        first, _, rest = path.lstrip("/").partition("/")
        try:
            return "/" + rest, platforms.get(first)
        except KeyError:
            return path, None

    def _answer(
        self, captured: CapturedRequest, host: str | None, path: str,
        platform: platforms.Platform | None = None,
    ) -> tuple[int, Any, float]:
        """(status, body, seconds to hold the answer); records the events first."""
        if platform is not None and not platform.is_server_api(host, path):
            platform = None
        elif platform is None:
            platform = platforms.for_server_api(host, path)
        if platform is None:
            reason = f"no platform's server API is served at {captured.method} {path}"
            captured.response_status = 404
            self.store.add([self._undecodable("unknown", captured, reason)])
            return 404, {"error": {"message": reason, "code": 404}}, 0.0
        try:
            answer = platform.handle_server(captured)
        except Exception as exc:  # a decoder bug must not lose the call or kill the sink
            reason = shorten(f"pixelcheck could not read it ({type(exc).__name__}: {exc})", 300)
            try:  # the platform's own answer to an unreadable body, as a client sees it
                status, body = platform.unreadable_answer(captured, reason)
            except Exception:  # noqa: BLE001
                status, body = 400, {"error": {"message": reason, "code": 400}}
            captured.response_status = status
            self.store.add([self._undecodable(platform.name, captured, reason)])
            return status, body, 0.0
        remember_secret(answer.token)
        refusal = self._refusal_for(platform.name)
        if refusal is not None:
            # recorded, never counted: the platform never received the call
            for event in answer.events:
                event.extra["blocked"] = f"pixelcheck_sink.refuse ({refusal})"
            self.store.add(answer.events)
            return REFUSED, refusal, (self.timeout_hold_seconds if refusal == "timeout"
                                      else 0.0)
        status, body, rejection = answer.status, answer.body, None
        expected = self.expected_token_for(platform.name)
        if status < 400 and expected is not None and answer.token != expected:
            kind = "missing_token" if not answer.token else "invalid_token"
            status, body = platform.error_answer(kind, captured)
            rejection = ("no access token was sent" if not answer.token else
                         "the access token is not the one this test expects")
        names = {e.event_name for e in answer.events}
        fault = self._take_fault(names, platform.name) if status < 400 else None
        hold = self._delay_for(names)
        if fault is not None:
            status, body = platform.error_answer(fault.kind, captured)
            rejection = f"pixelcheck_sink.fail_next injected a {fault.kind} answer"
            if fault.kind == "timeout":
                hold = max(hold, self.timeout_hold_seconds)
        # The status is set before the events become visible, so a reader never
        # sees an event whose answer is still unknown.
        captured.response_status = status
        for event in answer.events:
            event.extra.setdefault("token_location", answer.token_location)
            if rejection:
                event.extra.setdefault("rejection", []).append(rejection)
                if status < 400:  # refused inside a 2xx answer (GA4 answers 204 anyway)
                    event.extra.setdefault("rejected_by_platform", rejection)
        self.store.add(answer.events)
        return status, body, hold

    # --- faults a test injects ----------------------------------------------------------

    def fail_next(self, n: int = 1, kind: str = "500", *, event_name: str | None = None,
                  platform: str | None = None) -> None:
        """Answer the next ``n`` calls (carrying ``event_name``, to ``platform``, if
        given) with the platform's own error answer.

        ``kind``: one of the platform's ``fault_kinds``, e.g. "500", "429" (with
        Retry-After), "transient" (Meta's is_transient), "expired_token", or "timeout"
        (the answer is held past most clients' timeout, ``timeout_hold_seconds``). The
        events are recorded as rejected: the platform never counted them.
        """
        known = _fault_kinds(platform)
        if kind not in known:
            where = f"{platform}'s" if platform else "any platform's"
            raise ValueError(f"unknown fault kind {kind!r} for {where} API; one of "
                             f"{', '.join(known)}")
        with self._lock:
            self._faults.append(_Fault(kind, event_name, n, platform))

    def refuse(self, platform: str | None = None, *, how: str = "connect") -> Switch:
        """Until the returned context manager exits (or the test ends), calls to
        ``platform``'s API (None: every platform's) go unanswered: ``how="connect"``
        drops the connection at once, ``"timeout"`` holds it ``timeout_hold_seconds``
        first. Both on the sink's URL and through the proxy. The calls are still
        captured and reported as blocked; the platform counts none of them."""
        if how not in REFUSALS:
            raise ValueError(f"refuse(how={how!r}): one of {', '.join(REFUSALS)}")
        if platform is not None:
            platforms.get(platform)
        with self._lock:
            self._refusals[platform] = how

        def lift() -> None:
            with self._lock:
                self._refusals.pop(platform, None)
        return Switch(lift)

    def _refusal_for(self, platform: str) -> str | None:
        with self._lock:
            return self._refusals.get(platform, self._refusals.get(None))

    def delay(self, seconds: float, *, event_name: str | None = None) -> None:
        """Answer every call (carrying ``event_name``, if given) ``seconds`` late."""
        with self._lock:
            self._delays.append((event_name, float(seconds)))

    def expect_token(self, token: str | None, *, platform: str | None = None) -> None:
        """Calls without this token (to ``platform``, or to any) get the platform's
        own invalid-token answer; None: any token goes."""
        with self._lock:
            self._test_tokens[platform] = token

    @property
    def default_token(self) -> str | None:
        return self.default_tokens.get(None)

    @default_token.setter
    def default_token(self, value: str | None) -> None:
        """``"EAA..."`` for every platform, or ``"meta:EAA...,tiktok:abc..."``."""
        self.default_tokens = parse_tokens(value)

    @property
    def expected_token(self) -> str | None:
        # the token of the platform ``url`` serves (the first registered)
        return self.expected_token_for((platforms.default() or platforms.UNKNOWN).name)

    def expected_token_for(self, platform: str) -> str | None:
        with self._lock:
            for scope in (platform, None):
                if scope in self._test_tokens and (
                        self._test_tokens[scope] is not None or not self.require_token):
                    return self._test_tokens[scope]
            return self.default_tokens.get(platform, self.default_tokens.get(None))

    def reset(self) -> None:
        """Forget the faults, delays and token of the previous test."""
        with self._lock:
            self._faults.clear()
            self._delays.clear()
            self._test_tokens.clear()
            self._refusals.clear()

    def _take_fault(self, names: set[str | None], platform: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and fault.platform in (None, platform) and \
                        (fault.event_name is None or fault.event_name in names) and \
                        fault.kind in _fault_kinds(platform):
                    fault.remaining -= 1
                    return fault
        return None

    def _delay_for(self, names: set[str | None]) -> float:
        with self._lock:
            return max((s for name, s in self._delays if name is None or name in names),
                       default=0.0)

    @staticmethod
    def _undecodable(platform: str, captured: CapturedRequest, reason: str) -> Event:
        return Event(platform, "server", None, None, None, None, captured.arrival_time,
                     raw=captured, error=reason)


_BODY_ERROR_KEY = "pixelcheck.body_error"


#: the longest request line the sink reads (Chromium sends URLs up to 2 MB); Python's
#: http.server answers 414 past 64 KiB before the sink's handler could record the call
MAX_REQUEST_LINE = 4 * 1024 * 1024


def _sink_server_class() -> type[Any]:
    from http import HTTPStatus

    from pytest_httpserver import HTTPServer
    from werkzeug.serving import WSGIRequestHandler

    class LongLineHandler(WSGIRequestHandler):  # type: ignore[misc]
        def handle_one_request(self) -> None:
            # http.server's own, with MAX_REQUEST_LINE for its fixed 64 KiB
            try:
                self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
                if len(self.raw_requestline) > MAX_REQUEST_LINE:
                    self.requestline = self.request_version = self.command = ""
                    self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                    return
                if not self.raw_requestline:
                    self.close_connection = True
                    return
                if not self.parse_request():
                    return
                getattr(self, "do_" + self.command)()
                self.wfile.flush()
            except TimeoutError as exc:
                self.log_error("Request timed out: %r", exc)
                self.close_connection = True

    class SinkHTTPServer(HTTPServer):  # type: ignore[misc]
        """pytest-httpserver, with three changes to how it takes a request:

        - a body the HTTP layer cannot read (broken chunked encoding, a client gone
          mid-body) reaches the sink's handler, to be recorded and answered 400, where
          pytest-httpserver's own read raised and werkzeug answered a bare 500;
        - a request line up to ``MAX_REQUEST_LINE`` reaches it too, where http.server
          answered 414 past 64 KiB and nothing recorded the call;
        - its ``log`` (every request and response, for its own assertions) is not
          kept: the sink records each request itself, and that log only grew.
        """

        def start(self) -> None:
            super().start()
            self.server.RequestHandlerClass = LongLineHandler

        def application(self, request: Any) -> Any:
            try:
                request.get_data()
            except Exception as exc:
                request.environ[_BODY_ERROR_KEY] = f"{type(exc).__name__}: {exc}"
            return self.dispatch(request)

    return SinkHTTPServer


def _fault_kinds(platform: str | None) -> tuple[str, ...]:
    """The fault kinds of one platform's API, or of any platform's."""
    if platform is not None:
        return platforms.get(platform).fault_kinds
    kinds: dict[str, None] = {}
    for each in platforms.all_platforms():
        kinds.update(dict.fromkeys(each.fault_kinds))
    return tuple(kinds)


def parse_tokens(value: str | None) -> dict[str | None, str]:
    """``"EAA..."`` -> every platform's; ``"meta:EAA...,ga4:secret"`` -> per platform."""
    if not value:
        return {}
    names = {p.name for p in platforms.all_platforms()}
    tokens: dict[str | None, str] = {}
    for item in value.split(","):
        scope, sep, token = item.strip().partition(":")
        if sep and scope in names:
            tokens[scope] = token.strip()
        elif item.strip():
            tokens[None] = item.strip()
    return tokens
