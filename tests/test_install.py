"""How `pixelcheck install-browser` (and so `make demo`/`make test`) gets a Chromium."""

from __future__ import annotations

import pytest

from pytest_pixelcheck import install
from pytest_pixelcheck.browser import BrowserLocation, BrowserNotFound


@pytest.fixture
def commands(monkeypatch):
    ran = []
    state = {"installed": False}

    def fake_find(explicit=None, playwright=None):
        if state["installed"]:
            return BrowserLocation("/usr/bin/chromium", "system (/usr/bin/chromium)")
        raise BrowserNotFound("none")

    def fake_run(command):
        ran.append(command)
        if command[:2] == ["apt-get", "install"] or command[-2:] == ["install", "chromium"]:
            state["installed"] = True
        return True

    monkeypatch.setattr(install, "find_chromium", fake_find)
    monkeypatch.setattr(install, "_run", fake_run)
    monkeypatch.delenv("PIXELCHECK_BROWSER", raising=False)
    return ran, state


def test_existing_browser_installs_nothing(commands, monkeypatch):
    ran, state = commands
    state["installed"] = True
    assert install.ensure_chromium() == "system (/usr/bin/chromium)"
    assert ran == []


def test_root_with_apt_uses_the_system_package(commands, monkeypatch):
    ran, _ = commands
    monkeypatch.setattr(install.os, "geteuid", lambda: 0)
    monkeypatch.setattr(install.shutil, "which", lambda name: "/usr/bin/apt-get")
    install.ensure_chromium()
    assert ran == [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]]


def test_non_root_uses_playwrights_download(commands, monkeypatch):
    ran, _ = commands
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    install.ensure_chromium()
    assert ran[0][1:] == ["-m", "playwright", "install", "chromium"]


def test_an_explicit_browser_that_is_missing_is_not_replaced(commands, monkeypatch):
    monkeypatch.setenv("PIXELCHECK_BROWSER", "/nope/chromium")
    with pytest.raises(BrowserNotFound):
        install.ensure_chromium()
