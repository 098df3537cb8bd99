"""Processes found by a mark in their environment: the children a test started (and
their children, which inherit it) however they were reparented."""

from __future__ import annotations

import os
import time
from pathlib import Path


def tagged(variable: str, tag: str) -> list[str]:
    """``pid name`` of every live process whose environment has ``variable=tag``."""
    mark = f"{variable}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:  # gone meanwhile, or not readable
            continue
        if mark in environ.split(b"\0") and "State:\tZ" not in status:
            found.append(f"{entry.name} {(entry / 'comm').read_text().strip()}")
    return found


def still_running(variable: str, tag: str, settle: float) -> list[str]:
    """The tagged processes still alive once ``settle`` seconds passed (or none is)."""
    deadline = time.monotonic() + settle
    while (alive := tagged(variable, tag)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return alive
