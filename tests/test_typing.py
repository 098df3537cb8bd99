"""The package ships its type hints (PEP 561) and types Playwright objects with
Playwright's own types; `make typecheck` runs mypy --strict over the public API."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def test_the_package_ships_py_typed():
    assert files("pytest_pixelcheck").joinpath("py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["pytest_pixelcheck"]


def test_the_fixtures_are_typed_with_playwrights_types():
    from pytest_pixelcheck import plugin

    def returns(fixture):
        return getattr(fixture, "__wrapped__", fixture).__annotations__["return"]

    assert returns(plugin.pixelcheck_browser) == "Iterator[Browser]"
    assert returns(plugin.pixelcheck_context) == "Iterator[BrowserContext]"
    assert returns(plugin.pixelcheck_page) == "Page"


def test_make_test_runs_the_strict_typecheck_first():
    makefile = (ROOT / "Makefile").read_text()
    test_rule = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "typecheck" in test_rule
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["strict"] is True
    for public in ("__init__", "plugin", "assertions", "capture", "events", "findings"):
        assert f"pytest_pixelcheck/{public}.py" in config["files"]
