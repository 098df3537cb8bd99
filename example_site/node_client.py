"""Conversions API calls made by Meta's official Node SDK (facebook-nodejs-business-sdk).

:class:`NodeSdkTransport` hands each event to one long-running ``node node_capi/sender.js``
process, which builds it with the SDK's own classes (so the SDK normalizes and hashes the
customer's raw values itself) and sends it with ``EventRequest.execute()``. The process
inherits the environment, so ``HTTPS_PROXY`` / ``NO_PROXY`` / ``NODE_EXTRA_CA_CERTS`` reach
the SDK's HTTP client (axios) and Node's TLS. npm is never run from here: the Makefile
installs ``node_capi/node_modules``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .lifetime import tied_popen_kwargs

log = logging.getLogger("example_site.node_sdk")

NODE_CAPI_DIR = Path(__file__).resolve().parent / "node_capi"
SENDER_SCRIPT = NODE_CAPI_DIR / "sender.js"
SDK_PACKAGE = "facebook-nodejs-business-sdk"
INSTALL_HINT = "run `make node-sdk` (npm ci in example_site/node_capi)"

# on top of the job's own timeout, which node enforces on the HTTP call itself
REPLY_GRACE = 5.0
STOP_TIMEOUT = 5.0


def pinned_sdk_version() -> str:
    """The exact SDK version that node_capi/package.json pins."""
    package = json.loads((NODE_CAPI_DIR / "package.json").read_text(encoding="utf-8"))
    return str(package["dependencies"][SDK_PACKAGE])


def installed_sdk_version() -> str | None:
    """The SDK version in node_capi/node_modules, or None when it is not installed."""
    manifest = NODE_CAPI_DIR / "node_modules" / SDK_PACKAGE / "package.json"
    try:
        return str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return None


def node_sdk_available(node: str = "node") -> str | None:
    """Why the Node SDK sender cannot run here, or None when it can."""
    if shutil.which(node) is None:
        return f"{node!r} is not on PATH: the Node SDK sender needs Node.js"
    installed = installed_sdk_version()
    if installed is None:
        return f"{SDK_PACKAGE} is not installed in example_site/node_capi: {INSTALL_HINT}"
    pinned = pinned_sdk_version()
    if installed != pinned:
        return (f"example_site/node_capi has {SDK_PACKAGE} {installed} but package.json "
                f"pins {pinned}: {INSTALL_HINT}")
    return None


class _Waiter:
    """One job's reply slot."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] = {}

    def settle(self, reply: dict[str, Any]) -> None:
        self.reply = reply
        self.done.set()


class _SenderProcess:
    """One running sender.js with the jobs written to it and not yet answered."""

    def __init__(self, node: str, env: Mapping[str, str]) -> None:
        self.popen = subprocess.Popen(
            [node, str(SENDER_SCRIPT)],
            cwd=NODE_CAPI_DIR,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # node also exits when its stdin closes, i.e. when this process is gone
            **tied_popen_kwargs(own_group=False),
        )
        self.waiters: dict[int, _Waiter] = {}
        self.waiters_lock = threading.Lock()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.stopping = False
        assert self.popen.stdout is not None and self.popen.stderr is not None
        pid = self.popen.pid
        self._reader = threading.Thread(
            target=self._read_replies, args=(self.popen.stdout,),
            name=f"node-sdk-replies-{pid}", daemon=True)
        self._logger = threading.Thread(
            target=self._read_stderr, args=(self.popen.stderr,),
            name=f"node-sdk-stderr-{pid}", daemon=True)
        self._reader.start()
        self._logger.start()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _read_replies(self, stdout: IO[bytes]) -> None:
        for raw in stdout:
            try:
                reply = json.loads(raw)
                job_id = int(reply["id"])
            except (ValueError, KeyError, TypeError):
                log.warning("node SDK sender wrote a line that is not a reply: %r", raw[:200])
                continue
            with self.waiters_lock:
                waiter = self.waiters.pop(job_id, None)
            if waiter is not None:
                waiter.settle(reply)
        # stdout closed: node is gone, so nobody will answer the jobs still waiting
        code = self.popen.wait()
        if not self.stopping:
            log.warning("node SDK sender exited with code %s; last stderr lines:\n%s",
                        code, "\n".join(self.stderr_tail))
        with self.waiters_lock:
            orphans, self.waiters = list(self.waiters.values()), {}
        for waiter in orphans:
            waiter.settle({"status": None, "body": "", "error": f"sender exited ({code})"})

    def _read_stderr(self, stderr: IO[bytes]) -> None:
        for raw in stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("node: %s", line)

    def stop(self) -> None:
        self.stopping = True
        if self.popen.stdin is not None:
            try:
                self.popen.stdin.close()  # sender.js exits once its jobs are done
            except OSError:
                pass
        try:
            self.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(STOP_TIMEOUT)


class NodeSdkTransport:
    """Posts Conversions API events through the Node SDK, from any number of threads.

    The node process starts on the first :meth:`post` (and again if it died). Jobs run
    concurrently in node; each thread waits for the reply with its job's id.
    """

    def __init__(self, env: Mapping[str, str] | None = None, node: str = "node") -> None:
        # None: the environment as it is when node starts (HTTPS_PROXY and friends)
        self._env = dict(env) if env is not None else None
        self._node = node
        self._lock = threading.Lock()  # process start, job ids and stdin writes
        self._process: _SenderProcess | None = None
        self._next_id = 1

    def start(self) -> NodeSdkTransport:
        """Start node now: loading the SDK takes a second or more, which the first
        events would otherwise wait for."""
        with self._lock:
            self._running_process()
        return self

    def post(
        self,
        graph_url: str,
        api_version: str,
        pixel_id: str,
        access_token: str,
        event: dict[str, Any],
        customer: dict[str, Any] | None,
        test_event_code: str | None,
        timeout: float,
    ) -> tuple[int | None, bytes]:
        """Send one event; (HTTP status, answer body).

        The status is None when no answer came (connection error, timeout, or the SDK
        refused to build the event); the body is then the error message.
        """
        waiter = _Waiter()
        with self._lock:
            try:
                process = self._running_process()
            except OSError as exc:
                return None, f"cannot start the node SDK sender: {exc}".encode()
            job_id = self._next_id
            self._next_id += 1
            job = {
                "id": job_id,
                "graph_url": graph_url,
                "api_version": api_version,
                "pixel_id": pixel_id,
                "access_token": access_token,
                "test_event_code": test_event_code,
                "timeout_ms": int(timeout * 1000),
                "event": event,
                "customer": customer,
            }
            with process.waiters_lock:
                process.waiters[job_id] = waiter
            try:
                assert process.popen.stdin is not None
                process.popen.stdin.write(json.dumps(job).encode("utf-8") + b"\n")
                process.popen.stdin.flush()
            except OSError as exc:  # node died since the liveness check
                with process.waiters_lock:
                    process.waiters.pop(job_id, None)
                return None, f"node SDK sender is gone: {exc}".encode()

        if not waiter.done.wait(timeout + REPLY_GRACE):
            with process.waiters_lock:
                process.waiters.pop(job_id, None)
            return None, b"no reply from the node SDK sender"
        reply = waiter.reply
        status = reply.get("status")
        if isinstance(status, int):
            return status, str(reply.get("body") or "").encode("utf-8")
        return None, str(reply.get("error") or "no answer").encode("utf-8")

    def close(self) -> None:
        """Let node finish the jobs in flight, then stop it."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.stop()

    def __enter__(self) -> NodeSdkTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _running_process(self) -> _SenderProcess:
        """The live sender, started now if needed; call with the lock held."""
        if self._process is None or not self._process.alive():
            if self._process is not None:
                self._process.stop()
            env = self._env if self._env is not None else os.environ
            self._process = _SenderProcess(self._node, env)
        return self._process
