"""The intercepting proxy: mitmproxy embedded in this process, with our addon.

Why in-process on its own thread rather than a ``mitmdump`` subprocess: captured
events land directly in the shared ``EventStore``, so a test awaits them with a
condition variable, with no IPC, serialisation or polling of a file. Start-up
favours it too, though less than one might think, since both pay the mitmproxy
import: measured by benchmarks/startup.py on the 2-core CI machine, median
0.47 s in-process (0.40 s of it the import) against 0.64 s for ``mitmdump`` to
accept connections. mitmproxy's ``ctx`` is process-global, so there is one proxy
per process; under xdist each worker is its own process.

What the addon does with each request:
- a platform's collection hit (``www.facebook.com/tr``): record, decode, answer
  it here (never forwarded);
- a platform's JS library (``connect.facebook.net/.../fbevents.js``): answer
  with the offline stand-in, unless real libraries are allowed;
- a platform's server API host (``graph.facebook.com``): reroute to the sink,
  which decodes and answers it like the platform;
- the site under test on loopback (127.0.0.0/8, ::1, localhost): pass through untouched;
- any other host: answered here with an error page, recorded as traffic, unless the
  session allows upstream (``allow_upstream``). Nothing leaves the machine by default:
  every connection the proxy would open elsewhere is refused (``server_connect``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import platforms
from .events import KEPT_BODY_BYTES, AppendLog, CapturedRequest, Event, EventStore
from .listen import is_loopback

log = logging.getLogger(__name__)

SINK_ORIGINAL_HOST_HEADER = "X-Pixelcheck-Original-Host"
#: set by the sink on a call it refuses (pixelcheck_sink.refuse): the proxy then drops
#: the backend's connection instead of answering, as an unreachable API would
SINK_REFUSED_HEADER = "X-Pixelcheck-Refused"
BLOCKED_BY_TEST = "pixelcheck.block_browser"
_TEXT_TYPES = ("text/", "javascript", "json", "xml", "x-www-form-urlencoded")
_MAX_SCANNED = 5_000_000
#: a response (page, script) longer than this is kept cut short: its token scan is skipped
KEPT_RESPONSE_BYTES = 1024 * 1024
#: what the proxy accepts in one HTTP/2 header block: above Chromium's 2 MB URL limit
MAX_HEADER_LIST_BYTES = 4 * 1024 * 1024

#: the session CA's folder (its private key included) in the temp dir: this prefix,
#: the owner's pid, then mkdtemp's random part; a ``lock`` file inside is held
#: (flock) for the owner's life, so the kernel frees it even when the owner is killed
CA_FOLDER_PREFIX = "pixelcheck-ca-"
_CA_LOCK_NAME = "lock"
#: a folder of an older version (no pid, no lock) is removed once this old: long past
#: any session's life
_LEGACY_FOLDER_AGE_SECONDS = 24 * 3600.0


def clean_stale_ca_folders(tempdir: str | Path | None = None) -> int:
    """Remove CA folders whose owner is gone (a SIGKILLed run); return how many.

    A folder whose lock another process holds (a concurrent run, an xdist worker) is
    left alone.
    """
    root = Path(tempdir or tempfile.gettempdir())
    removed = 0
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(CA_FOLDER_PREFIX)]
    except OSError:
        return 0
    for folder in candidates:
        if _owner_is_gone(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed += not folder.exists()
    return removed


def _owner_is_gone(folder: Path) -> bool:
    try:
        fd = os.open(folder / _CA_LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        return _unlocked_folder_is_stale(folder)
    except OSError:  # not ours to open (another user's): not ours to remove
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its owner is alive
    finally:
        os.close(fd)  # releases the lock taken to test it
    return True


def _unlocked_folder_is_stale(folder: Path) -> bool:
    """No lock file: killed between mkdtemp and the lock (its pid is gone), or made by
    a version before the lock (then only when very old)."""
    pid, sep, _ = folder.name[len(CA_FOLDER_PREFIX):].partition("-")
    if sep and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    try:
        return time.time() - folder.stat().st_mtime > _LEGACY_FOLDER_AGE_SECONDS
    except OSError:
        return False


def _remove_ca_folder(folder: Path, lock_fd: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.close(lock_fd)


def _new_ca_folder() -> tuple[Path, int]:
    """A fresh, locked CA folder: (path, the lock's file descriptor, kept open)."""
    clean_stale_ca_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{CA_FOLDER_PREFIX}{os.getpid()}-"))
    fd = os.open(folder / _CA_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return folder, fd


@dataclass(repr=False)  # the generated repr would print URLs, auth headers and bodies
class TrafficEntry:
    """One request the proxy saw, for HAR artifacts and diagnostics."""

    started: float
    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""
    handled_by: str = "passthrough"  # collection | library | sink | offline | passthrough
    #: the request body's full length (``request_body`` keeps KEPT_BODY_BYTES of it)
    request_body_length: int = 0
    error: str | None = None
    finished: float | None = None

    @property
    def response_text(self) -> str | None:
        """The response as text when it is a page, script or data the browser reads
        (for the exposed-token scan); None for images, fonts, binaries.

        Decoded on demand, off the proxy's hot path: most responses are never read.
        """
        kind = next((v for k, v in self.response_headers if k.lower() == "content-type"),
                    "").lower()
        if not self.response_body or not any(t in kind for t in _TEXT_TYPES):
            return None
        encoding = next((v for k, v in self.response_headers
                         if k.lower() == "content-encoding"), "")
        body = self.response_body
        if encoding:
            from mitmproxy.net.encoding import decode

            try:
                body = decode(body, encoding) or b""
            except ValueError:
                return None
        return body[:_MAX_SCANNED].decode("utf-8", "replace")

    def __repr__(self) -> str:
        from .redact import request_secrets, scrub_secrets
        from .report import shorten

        secrets = request_secrets(self.url, self.request_headers, self.request_body)
        url = shorten(scrub_secrets(self.url, secrets), 160)
        status = "-" if self.status is None else self.status
        return f"TrafficEntry({self.method} {url} status={status} {self.handled_by})"


class ProxyError(RuntimeError):
    pass


class _PixelAddon:
    def __init__(self, proxy: PixelProxy) -> None:
        self.proxy = proxy

    # mitmproxy calls these from the proxy thread's event loop.
    def running(self) -> None:
        self.proxy._on_running()

    async def request(self, flow: Any) -> None:
        try:
            await self._request(flow)
        except Exception as exc:  # never let one odd request take the proxy down
            log.exception("pixelcheck proxy: request hook failed")
            self.proxy._record_internal_error(flow, exc)

    async def _request(self, flow: Any) -> None:
        from mitmproxy import http

        req = flow.request
        host = req.pretty_host.lower()
        path = req.path.split("?", 1)[0]
        body = req.raw_content or b""
        entry = TrafficEntry(
            started=req.timestamp_start or time.time(),
            method=req.method,
            url=req.pretty_url,
            request_headers=list(req.headers.items(multi=True)),
            request_body=body[:KEPT_BODY_BYTES],
            request_body_length=len(body),
        )
        flow.metadata["pixelcheck_entry"] = entry
        self.proxy.traffic.append(entry)

        platform = platforms.for_collection(host, path)
        if platform is not None:
            entry.handled_by = "collection"
            captured = CapturedRequest(
                method=req.method,
                url=req.pretty_url,
                headers=entry.request_headers,
                body=body,
                arrival_time=time.time(),
                channel="proxy",
            )
            if self.proxy.blocks_collection(platform.name):
                # kept as blocked, then dropped unanswered: the pixel sees a network
                # error, as behind an ad blocker
                entry.handled_by = "blocked"
                events = _decode_safely(platform, captured)
                for event in events:
                    event.extra["blocked"] = BLOCKED_BY_TEST
                self.proxy.store.add(events)
                flow.kill()
                return
            canned = platform.collection_response(captured)
            captured.response_status = canned.status
            # Decoded on a worker thread: a large or compressed hit must not stall the
            # proxy's event loop, which carries every other request of the session.
            with self.proxy.store.decoding():
                events = await asyncio.to_thread(_decode_safely, platform, captured)
                self.proxy.store.add(events)
            # kept cut short (with length and digest) once decoded
            entry.request_body = captured.keep_within().body
            flow.response = http.Response.make(
                canned.status, canned.body,
                {"Content-Type": canned.content_type, "Cache-Control": "no-store",
                 **canned.headers},
            )
            return

        if self.proxy.serve_libraries:
            found = platforms.for_library(host, path)
            if found is not None:
                entry.handled_by = "library"
                canned = found[1]
                # cached like the real libraries, within a browser context (each test's
                # context starts empty): a page of seven tags need not fetch seven
                # scripts again on every page of the journey
                flow.response = http.Response.make(
                    canned.status, canned.body,
                    {"Content-Type": canned.content_type, "Cache-Control": "max-age=600",
                     **canned.headers},
                )
                return

        if platforms.is_server_host(host) and platforms.for_server_api(host, path) is None:
            # a platform's API host, but not its events API (analytics.js, another
            # endpoint): answered here, since nothing may leave the machine
            entry.handled_by = "blocked"
            flow.response = http.Response.make(
                404, b"pixelcheck: offline; not a server API path pixelcheck serves",
                {"Content-Type": "text/plain"})
            return
        if platforms.is_server_host(host):
            sink_address = self.proxy.sink_address
            if sink_address is None:
                entry.handled_by = "blocked"
                flow.response = http.Response.make(
                    502, b"pixelcheck: no sink to receive this server API call",
                    {"Content-Type": "text/plain"})
                return
            entry.handled_by = "sink"
            req.headers[SINK_ORIGINAL_HOST_HEADER] = host
            req.scheme = "http"
            req.host, req.port = sink_address
            return

        if not self.proxy.may_go_upstream(host, path):
            entry.handled_by = "offline"
            self.proxy.offline_answers += 1
            flow.response = http.Response.make(
                502, _offline_page(host, req.method, req.pretty_url).encode(),
                {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})
            return

    def response(self, flow: Any) -> None:
        entry: TrafficEntry | None = flow.metadata.get("pixelcheck_entry")
        if entry is None or flow.response is None:
            return
        if flow.response.headers.get(SINK_REFUSED_HEADER):
            # still handled_by "sink": the backend's own call, which may carry its token
            entry.error = "refused by pixelcheck_sink.refuse"
            flow.kill()
            return
        entry.status = flow.response.status_code
        entry.response_headers = list(flow.response.headers.items(multi=True))
        # pages and scripts are kept for the exposed-token scan, up to a bound
        entry.response_body = (flow.response.raw_content or b"")[:KEPT_RESPONSE_BYTES]
        entry.finished = time.time()

    def error(self, flow: Any) -> None:
        entry: TrafficEntry | None = flow.metadata.get("pixelcheck_entry")
        if entry is not None and flow.error is not None:
            entry.error = str(flow.error)
            entry.finished = time.time()

    def server_connect(self, data: Any) -> None:
        """The last guard: no connection leaves for a host the session does not allow
        (raw TCP through a CONNECT tunnel, a request hook that let something by)."""
        host, port = data.server.address or ("", 0)
        sink = self.proxy.sink_address
        if sink is not None and (host, port) == sink:
            return
        if not self.proxy.may_connect(str(host).lower()):
            self.proxy.refused_connections.append((str(host), int(port)))
            data.server.error = (f"pixelcheck: offline, no connection to {host}:{port} "
                                 "(allow_upstream is off)")

    def tls_failed_client(self, data: Any) -> None:
        sni = getattr(data.context.client, "sni", None)
        reason = str(getattr(data.conn, "error", "") or "handshake failed")
        self.proxy.tls_failures.append((sni, reason))


def _entry_weight(entry: TrafficEntry) -> int:
    return len(entry.request_body) + len(entry.response_body) + len(entry.url)


def _decode_safely(platform: platforms.Platform, captured: CapturedRequest) -> list[Event]:
    try:
        events = platform.decode_browser(captured)
    except Exception as exc:  # a decoder bug must not lose the hit
        log.exception("pixelcheck: %s decoder failed", platform.name)
        events = []
        error = f"decoder crashed: {type(exc).__name__}: {exc}"
        events.append(Event(platform.name, "browser", None, None, None, None,
                            captured.arrival_time, raw=captured, error=error))
    return events or [Event(platform.name, "browser", None, None, None, None,
                            captured.arrival_time, raw=captured,
                            error="collection hit carried no event")]



#: the proxy running in this process, if any (weak: a dropped proxy does not count)
_RUNNING: list[weakref.ref[PixelProxy]] = []


def _running_proxy() -> PixelProxy | None:
    for ref in _RUNNING:
        proxy = ref()
        if proxy is not None and proxy._master is not None:
            return proxy
    return None


def _offline_page(host: str, method: str, url: str) -> str:
    from html import escape

    from .redact import scrub

    return (
        "<!doctype html><meta charset=utf-8><title>pixelcheck: offline</title>"
        f"<h1>pixelcheck answered this request: {escape(host)} is not reached</h1>"
        f"<p>{escape(method)} {escape(scrub(url)[:300])}</p>"
        "<p>pixelcheck keeps every request on this machine. It serves the site under test "
        "on loopback, the platforms' collection hosts and their server APIs (in its sink); "
        "other hosts get this page. To let them go to the network, set "
        "<code>pixelcheck_allow_upstream = true</code> (<code>--pixelcheck-allow-upstream"
        "</code>, or <code>Harness(HarnessConfig(allow_upstream=True))</code>).</p>")


class PixelProxy:
    """mitmproxy on a background thread, recording collection hits into ``store``."""

    def __init__(
        self,
        store: EventStore,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        confdir: str | Path | None = None,
        serve_libraries: bool = True,
        allow_upstream: bool = False,
    ) -> None:
        self.store = store
        #: let requests to hosts pixelcheck does not serve go to the network
        self.allow_upstream = allow_upstream
        self.listen_host = listen_host
        self.listen_port = listen_port
        self._own_confdir = confdir is None
        self._confdir_removal: weakref.finalize | None = None
        if confdir is None:
            self._new_own_confdir()
        else:
            self.confdir = Path(confdir)
        self.serve_libraries = serve_libraries
        #: (host, port) of the sink that receives rerouted server API calls
        self.sink_address: tuple[str, int] | None = None
        self.port: int | None = None
        #: every request the proxy saw, for HAR artifacts and the token scan
        self.traffic: AppendLog[TrafficEntry] = AppendLog(weigh=_entry_weight)
        #: (SNI, mitmproxy's reason) of each failed client TLS handshake
        self.tls_failures: AppendLog[tuple[str | None, str]] = AppendLog()
        self.internal_errors: AppendLog[str] = AppendLog()
        #: platforms whose collection hits are dropped (None: every platform), see
        #: Pixelcheck.block_browser
        self.blocked_platforms: set[str | None] = set()
        #: (host, port) of each upstream connection refused because the session is offline
        self.refused_connections: AppendLog[tuple[str, int]] = AppendLog()
        #: how many requests got the offline page
        self.offline_answers = 0
        self._library_hosts: set[str] = set()
        self.startup_seconds: float | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._master: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._startup_error: BaseException | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> PixelProxy:
        started = time.perf_counter()
        running = _running_proxy()
        if running is not None and running is not self:
            # mitmproxy's context is process-global: a second proxy would take it over,
            # and the first one's browser would then distrust every certificate it makes
            raise ProxyError(
                f"a pixelcheck proxy already runs in this process (at {running.url}); use "
                "that one (the pixelcheck_proxy fixture or Harness.proxy), or start the "
                "other in a process of its own")
        if self._own_confdir and self._confdir_removal is None:  # started again after stop()
            self._new_own_confdir()
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, name="pixelcheck-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise ProxyError(f"mitmproxy did not start listening within {timeout:.0f}s")
        if self._startup_error is not None:
            self.stop()
            raise ProxyError(f"mitmproxy failed to start: {self._startup_error}")
        self.startup_seconds = time.perf_counter() - started
        _RUNNING.append(weakref.ref(self))
        return self

    def stop(self) -> None:
        _RUNNING[:] = [ref for ref in _RUNNING if ref() not in (self, None)]
        master, loop = self._master, self._loop
        if master is not None and loop is not None and loop.is_running():
            # Clearing the servers first releases the listening socket (mitmproxy's
            # shutdown alone leaves it bound).
            async def _close() -> None:
                proxyserver = master.addons.get("proxyserver")
                if proxyserver is not None:
                    await proxyserver.servers.update([])
                master.shutdown()

            future = asyncio.run_coroutine_threadsafe(_close(), loop)
            try:
                future.result(timeout=10)
            except Exception:
                master.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._master = None
        self._remove_own_confdir()

    def _new_own_confdir(self) -> None:
        self.confdir, lock_fd = _new_ca_folder()
        # Removed at stop(), or at interpreter exit when stop() never ran (a Ctrl-C
        # that interrupted the session's teardown).
        self._confdir_removal = weakref.finalize(self, _remove_ca_folder, self.confdir, lock_fd)

    def _remove_own_confdir(self) -> None:
        """The session CA (its private key) goes with the session."""
        if self._confdir_removal is not None:
            self._confdir_removal()
            self._confdir_removal = None

    def __enter__(self) -> PixelProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start()
            self._startup_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        import h2.frame_buffer
        from mitmproxy import options
        from mitmproxy.addons import block, core, dns_resolver, next_layer, proxyserver, tlsconfig
        from mitmproxy.master import Master
        from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection

        opts = options.Options(
            listen_host=self.listen_host,
            listen_port=self.listen_port,
            confdir=str(self.confdir),
        )
        # A plain Master: DumpMaster's ErrorCheck addon would sys.exit() on errors.
        master = Master(opts)
        # Only what a capturing proxy needs: each of mitmproxy's ~30 default addons is
        # called on every request, which cost a fifth of the proxy's time in a checkout
        # with seven platforms (benchmarks/all_platforms.py). Block refuses clients from
        # public addresses; the rest run the proxy, its TLS and its protocol detection.
        master.addons.add(core.Core(), proxyserver.Proxyserver(), next_layer.NextLayer(),
                          tlsconfig.TlsConfig(), dns_resolver.DnsResolver(), block.Block())
        master.addons.add(_PixelAddon(self))
        # hyper-h2 refuses a header block over 64 KiB by closing the whole connection:
        # a pixel hit with a long URL (Chromium sends up to 2 MB) was lost with every
        # request beside it, unanswered and unrecorded. Accepted here instead, so the
        # hit is recorded (with its url-too-long finding).
        BufferedH2Connection.DEFAULT_MAX_HEADER_LIST_SIZE = MAX_HEADER_LIST_BYTES
        # Chromium sends a long header block in 16 KiB CONTINUATION frames; hyper-h2
        # takes 64 of them (1 MiB). Only mitmproxy speaks HTTP/2 in this process.
        h2.frame_buffer.CONTINUATION_BACKLOG = max(
            h2.frame_buffer.CONTINUATION_BACKLOG, MAX_HEADER_LIST_BYTES // 16384)
        # Registered by an addon, so settable only once the addons are loaded.
        master.options.update(connection_strategy="lazy", ssl_insecure=False)
        self._master = master
        await master.run()

    def _on_running(self) -> None:
        proxyserver = self._master.addons.get("proxyserver")
        addrs = proxyserver.listen_addrs()
        if not addrs:
            self._startup_error = ProxyError("proxy server is not listening")
        else:
            self.port = addrs[0][1]
        self._ready.set()

    def may_go_upstream(self, host: str, path: str) -> bool:
        """May this request leave through the proxy? Loopback always; the real platform
        libraries when the session asked for them; anything when upstream is allowed."""
        if self.allow_upstream or is_loopback(host):
            return True
        if not self.serve_libraries and platforms.for_library(host, path) is not None:
            self._library_hosts.add(host)
            return True
        return False

    def may_connect(self, host: str) -> bool:
        """May the proxy open a connection to ``host``? Only where a request was let go."""
        return self.allow_upstream or is_loopback(host) or host in self._library_hosts

    # --- facts for users --------------------------------------------------------------

    @property
    def url(self) -> str:
        if self.port is None:
            raise ProxyError("proxy is not started")
        from .listen import local_host, url_host

        return f"http://{url_host(local_host(self.listen_host))}:{self.port}"

    @property
    def ca_cert_path(self) -> Path:
        """PEM of the session CA: give it to a backend (SSL_CERT_FILE, REQUESTS_CA_BUNDLE)."""
        return self.confdir / "mitmproxy-ca-cert.pem"

    @property
    def ca_spki_sha256_base64(self) -> str:
        """What Chromium's ``--ignore-certificate-errors-spki-list`` takes.

        mitmproxy's leaf certificates reuse the CA's key, so trusting this SPKI
        makes every connection of the browser trust the proxy, not only the ones
        a context's ``ignore_https_errors`` covers.
        """
        from cryptography import x509
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def blocks_collection(self, platform: str) -> bool:
        blocked = self.blocked_platforms
        return bool(blocked) and (None in blocked or platform in blocked)

    # --- called from the proxy thread -------------------------------------------------

    def _record_internal_error(self, flow: Any, exc: BaseException) -> None:
        self.internal_errors.append(f"{flow.request.pretty_url}: {exc!r}")
