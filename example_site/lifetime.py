"""Child processes that die with their parent, even when the parent is SIGKILLed.

Two mechanisms, because each alone has a gap:
- Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``), set between fork and exec.
  The kernel sends it when the *thread* that forked exits, so it is only set for a
  child started from the main thread (a worker thread that ends would kill its child).
- A watchdog in the child (``watch_parent``) that notices it was reparented: it covers
  children started from other threads and systems without prctl.

Each child also leads its own process group (``start_new_session``), so stopping it
ends everything it started (the shop's node SDK sender) in one signal, and a Ctrl-C
at the terminal reaches only the test run, which then stops its children in order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

#: the pid a child must watch (set by the launcher in the child's environment)
PARENT_PID_ENV = "EXAMPLE_SITE_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # Loaded here in the parent: dlopen between fork and exec can deadlock.
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def tied_popen_kwargs(*, own_group: bool = True) -> dict[str, Any]:
    """``subprocess.Popen`` keyword arguments for a child that dies with this process.

    ``own_group=False``: the child stays in this process's group (a helper of the
    shop, ended with the shop's group).
    """
    kwargs: dict[str, Any] = {"start_new_session": own_group}
    if _PRCTL is not None and threading.current_thread() is threading.main_thread():
        parent = os.getpid()
        prctl = _PRCTL

        def die_with_parent() -> None:  # in the child, between fork and exec
            prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os.kill(os.getpid(), signal.SIGKILL)

        kwargs["preexec_fn"] = die_with_parent
    return kwargs


def tied_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` plus the parent pid the child's ``watch_parent`` compares with."""
    return {**env, PARENT_PID_ENV: str(os.getpid())}


def watch_parent(on_gone: Callable[[], None] | None = None, interval: float = 0.5) -> None:
    """In a child: when the launching parent is gone, end this process group.

    Does nothing when the launcher set no ``PARENT_PID_ENV`` (run by hand).
    """
    expected = os.environ.get(PARENT_PID_ENV)
    if not expected:
        return

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(interval)
        if on_gone is not None:
            on_gone()
        if os.getpgrp() == os.getpid():  # a group leader takes its children with it
            os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def stop_group(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM the child, wait ``timeout``, then SIGKILL what is left of its group."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers the child started
    except (ProcessLookupError, PermissionError, OSError):
        pass
    if proc.poll() is None:
        proc.wait(timeout=5)
