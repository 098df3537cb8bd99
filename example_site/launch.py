"""Run the shop as a child process, the way a test suite would run a real site."""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

from .lifetime import stop_group, tied_env, tied_popen_kwargs

URL_PREFIX = "EXAMPLE_SITE_URL"
# the folder holding the example_site package, so the child can import it from anywhere
PACKAGE_PARENT = Path(__file__).resolve().parent.parent


class SiteProcessError(RuntimeError):
    pass


class SiteProcess:
    """``python -m example_site`` in a subprocess; ``with SiteProcess(url) as site: site.url``.

    ``env`` is merged over ``os.environ`` for the child (HTTPS_PROXY, SSL_CERT_FILE, ...).
    The child's output is drained on threads so a chatty log can never block it.
    """

    def __init__(
        self,
        graph_url: str,
        *,
        pixel_id: str = "1234567890",
        access_token: str = "TEST_TOKEN",
        api_version: str = "v21.0",
        capi_client: str = "json",
        trackers: Mapping[str, str | None] | None = None,
        tracker_clients: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Iterable[str] = (),
        startup_timeout: float = 15.0,
    ) -> None:
        self.args = [
            sys.executable, "-m", "example_site", "--port", "0",
            "--graph-url", graph_url, "--pixel-id", pixel_id,
            "--api-version", api_version, "--access-token", access_token,
            "--capi-client", capi_client, *extra_args,
        ]
        # platform -> its API base URL (None: the real origin, through the proxy)
        for name, api_url in (trackers or {}).items():
            self.args += ["--tracker", f"{name}={api_url}" if api_url else name]
        for name, client in (tracker_clients or {}).items():
            self.args += ["--tracker-client", f"{name}={client}"]
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.url: str | None = None
        #: the access token the shop sends with its Conversions API calls
        self.token = access_token
        self._proc: subprocess.Popen[str] | None = None
        self._stdout_lines: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._pumps: list[threading.Thread] = []

    @property
    def stderr(self) -> str:
        """The child's recent log lines (the last 200), for failure messages."""
        return "".join(self._stderr_tail)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> SiteProcess:
        if self._proc is not None:
            return self
        env = {**os.environ, **self.env}
        pythonpath = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PACKAGE_PARENT), pythonpath) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        # tied to this process: a SIGKILLed test run must not leave the shop running
        self._proc = subprocess.Popen(
            self.args, cwd=PACKAGE_PARENT, env=tied_env(env), text=True, encoding="utf-8",
            errors="replace", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, **tied_popen_kwargs(),
        )
        self._drain(self._proc.stdout, self._stdout_lines.put, "stdout")
        self._drain(self._proc.stderr, self._stderr_tail.append, "stderr")
        try:
            self.url = self._wait_for_url()
        except BaseException:
            self.stop()
            raise
        return self

    def _drain(self, stream: IO[str] | None, sink: object, name: str) -> None:
        def pump() -> None:
            assert stream is not None
            for line in stream:
                sink(line)  # type: ignore[operator]
            if name == "stdout":
                self._stdout_lines.put(None)  # EOF: the child is gone

        thread = threading.Thread(target=pump, name=f"example-site-{name}", daemon=True)
        thread.start()
        self._pumps.append(thread)

    def _wait_for_url(self) -> str:
        try:
            while True:
                line = self._stdout_lines.get(timeout=self.startup_timeout)
                if line is None:
                    assert self._proc is not None
                    code = self._proc.wait(timeout=5)
                    raise SiteProcessError(
                        f"example_site exited with code {code} before printing its URL;"
                        f" stderr:\n{self.stderr}"
                    )
                if line.startswith(URL_PREFIX + " "):
                    return line[len(URL_PREFIX) + 1:].strip()
        except queue.Empty:
            raise SiteProcessError(
                f"example_site printed no URL within {self.startup_timeout} s;"
                f" stderr:\n{self.stderr}"
            ) from None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the shop drains queued API calls for up to 3 s), then kill the
        shop and whatever it started (its process group)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_group(proc, timeout)
        for thread in self._pumps:  # so .stderr holds the child's last words
            thread.join(timeout=2)

    def __enter__(self) -> SiteProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
