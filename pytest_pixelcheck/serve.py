"""A long-running harness for a staging backend, and test runs that attach to it.

``pixelcheck serve`` keeps a proxy and sink on fixed ports for a backend that is already
running and cannot be restarted per run (it was configured once with the proxy, the CA
and the sink's URL). Next to them it serves a small control API:

- ``GET /info``: the proxy's and sink's URLs and the CA;
- ``POST /tests/start`` (``{"test_id": ...}``) and ``POST /tests/stop``: which test the
  calls arriving from now on belong to;
- ``GET /events?since=N``: the captured requests from the N-th on, re-decodable;
- ``GET /capture?test_id=ID``: one test's capture (JSONL, as ``pixelcheck analyze`` reads).

A test run attaches with ``--pixelcheck-attach URL``: its own browser and proxy capture
the browser's side as always, and ``Attachment`` streams the staging backend's server
calls from the serve process into the test's store, so assertions wait for them as for
local ones. The calls travel redacted (tokens never leave the serve process); what the
sink decided about a call's token rides along as its rejection.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from . import platforms
from .artifacts import capture_lines
from .events import CapturedRequest, Event, EventStore

TOKEN_HEADER = "X-Pixelcheck-Token"
POLL_SECONDS = 0.1


class AttachError(RuntimeError):
    """The serve process cannot be reached or refused us; the message says which."""


def wire_lines(events: list[Event]) -> list[dict[str, Any]]:
    """One JSON object per captured request (a capture line), with what the sink
    decided about it (its rejections), which a re-decode elsewhere cannot know."""
    lines = []
    by_raw: dict[int, list[Event]] = {}
    for event in events:
        if event.raw is not None:
            by_raw.setdefault(id(event.raw), []).append(event)
    for group in by_raw.values():
        line = json.loads(capture_lines(group[:1])[0])
        rejection = [r for e in group for r in e.extra.get("rejection") or []]
        line["rejection"] = list(dict.fromkeys(rejection))
        line["token_location"] = group[0].extra.get("token_location")
        lines.append(line)
    return lines


def events_from_line(line: dict[str, Any]) -> list[Event]:
    request = CapturedRequest.from_dict(line["request"])
    events = platforms.decode_request(request, line.get("source"))
    for event in events:
        # the sink's verdict on the original (the re-decode sees a redacted token)
        event.extra.pop("rejection", None)
        event.extra.pop("rejected_by_platform", None)
        if line.get("rejection"):
            event.extra["rejection"] = list(line["rejection"])
            if (request.response_status or 0) < 400:
                event.extra["rejected_by_platform"] = line["rejection"][0]
        if line.get("token_location"):
            event.extra["token_location"] = line["token_location"]
        if line.get("test_id"):
            event.test_id = line["test_id"]
    return events


class CaptureServer:
    """The control API of ``pixelcheck serve`` over a running harness."""

    def __init__(self, harness: Any, *, host: str, port: int,
                 token: str | None = None) -> None:
        self.harness = harness
        self.host, self.port = host, port
        #: required in TOKEN_HEADER when set (a serve reachable from other machines)
        self.token = token
        self.server: Any = None
        self._lock = threading.Lock()

    def start(self) -> CaptureServer:
        from pytest_httpserver import HTTPServer

        self.server = HTTPServer(host=self.host, port=self.port, threaded=True)
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)
        self.server.start()
        self.port = self.server.port
        return self

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.clear()
            self.server.stop()

    @property
    def url(self) -> str:
        from .listen import local_host, url_host

        return f"http://{url_host(local_host(self.host))}:{self.port}"

    def _handle(self, request: Any) -> Any:
        from werkzeug import Response

        if self.token and request.headers.get(TOKEN_HEADER) != self.token:
            return Response(json.dumps({"error": f"{TOKEN_HEADER} is missing or wrong"}),
                            status=403, content_type="application/json")
        store: EventStore = self.harness.store
        route = (request.method, request.path.rstrip("/"))
        if route == ("GET", "/info"):
            proxy = self.harness.proxy
            body: Any = {"proxy": proxy.url, "sink": self.harness.sink.url,
                         "ca_pem": proxy.ca_cert_path.read_text(),
                         "ca_spki_sha256": proxy.ca_spki_sha256_base64}
        elif route == ("POST", "/tests/start"):
            test_id = (request.get_json(silent=True) or {}).get("test_id")
            with self._lock:
                store.current_test = test_id
                body = {"test_id": test_id, "next": store.mark()}
        elif route == ("POST", "/tests/stop"):
            with self._lock:
                store.current_test = None
            body = {"next": store.mark()}
        elif route == ("GET", "/events"):
            since = int(request.args.get("since", 0))
            events = store.since(since)
            body = {"next": since + len(events), "lines": wire_lines(events)}
        elif route == ("GET", "/capture"):
            test_id = request.args.get("test_id")
            events = [e for e in store.since(0) if e.test_id == test_id]
            text = "".join(json.dumps(line) + "\n" for line in wire_lines(events))
            return Response(text, content_type="application/x-ndjson")
        else:
            return Response(json.dumps({"error": f"no {request.method} {request.path}; see "
                                                 "GET /info"}), status=404,
                            content_type="application/json")
        return Response(json.dumps(body), content_type="application/json")


class Attachment:
    """A test run's link to a ``pixelcheck serve``: streams its captured calls into
    ``store`` while a test runs."""

    def __init__(self, url: str, store: EventStore, *, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.store = store
        self.token = token
        self._next = 0
        self._active = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.info: dict[str, Any] = {}
        self.errors: list[str] = []

    def connect(self) -> Attachment:
        self.info = self._call("GET", "/info")
        self._thread = threading.Thread(target=self._poll, name="pixelcheck-attach",
                                        daemon=True)
        self._thread.start()
        return self

    def begin(self, test_id: str | None) -> None:
        """Calls arriving at the serve process from now on belong to ``test_id``."""
        self._active.clear()
        answer = self._call("POST", "/tests/start", {"test_id": test_id})
        self._next = int(answer["next"])
        self._active.set()

    def end(self) -> None:
        self.pull()  # what arrived up to now still counts for the test
        self._active.clear()
        self._call("POST", "/tests/stop", {})

    def pull(self) -> int:
        answer = self._call("GET", f"/events?since={self._next}")
        added = 0
        for line in answer["lines"]:
            events = events_from_line(line)
            self.store.add(events)
            added += len(events)
        self._next = int(answer["next"])
        return added

    def capture(self, test_id: str) -> str:
        """One test's capture, as JSONL (``pixelcheck analyze`` reads it)."""
        query = urllib.parse.urlencode({"test_id": test_id})
        return self._request("GET", f"/capture?{query}", None).decode("utf-8")

    def close(self) -> None:
        self._closed.set()
        self._active.clear()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _poll(self) -> None:
        while not self._closed.is_set():
            if self._active.wait(POLL_SECONDS) and not self._closed.is_set():
                try:
                    self.pull()
                except AttachError as exc:  # said once, in the test's findings context
                    if str(exc) not in self.errors:
                        self.errors.append(str(exc))
                self._closed.wait(POLL_SECONDS)

    def _call(self, method: str, path: str, data: Any = None) -> Any:
        return json.loads(self._request(method, path, data))

    def _request(self, method: str, path: str, data: Any) -> bytes:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers[TOKEN_HEADER] = self.token
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(self.url + path, body, headers, method=method)
        # the serve process is reached directly, never through a proxy of the environment
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise AttachError(f"pixelcheck serve at {self.url} answered {exc.code} to "
                              f"{method} {path}: {exc.read().decode(errors='replace')}") \
                from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AttachError(f"cannot reach pixelcheck serve at {self.url} ({reason}); is "
                              "it running, and is this its control URL?") from None
