"""Make sure a Chromium exists: the one step a fresh machine needs besides pip.

Order: an existing browser (Playwright's or the system's) wins; as root on a
Debian-like system, the distribution's ``chromium`` package; otherwise
Playwright's own download (``python -m playwright install chromium``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .browser import BrowserNotFound, find_chromium


def _run(command: list[str]) -> bool:
    print("+ " + " ".join(command), flush=True)
    return subprocess.call(command) == 0


def ensure_chromium(explicit: str | None = None) -> str:
    """Return a description of the Chromium in use, installing one when none is found."""
    try:
        return find_chromium(explicit).how
    except BrowserNotFound:
        if explicit or os.environ.get("PIXELCHECK_BROWSER"):
            raise
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if is_root and shutil.which("apt-get"):
        env_ok = _run(["apt-get", "update", "-qq"])
        if env_ok and _run(["apt-get", "install", "-y", "-qq", "chromium"]):
            return find_chromium().how
        print("apt-get could not install chromium; trying Playwright's download", flush=True)
    if not _run([sys.executable, "-m", "playwright", "install", "chromium"]):
        raise BrowserNotFound("could not install Chromium with apt-get or Playwright; "
                              "install one and pass --pixelcheck-browser=PATH")
    return find_chromium().how
