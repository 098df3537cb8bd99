"""Every README recipe marked ``<!-- recipe: NAME -->`` runs as written, in a user's
test run (pytester, one subprocess: one mitmproxy per process), through the real
proxy and sink; the first test drives the example shop in a real Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.browser

README = Path(__file__).resolve().parent.parent / "README.md"
_RECIPE = re.compile(r"<!-- recipe: (?P<name>[\w-]+) -->\n```(?P<lang>\w+)\n(?P<code>.*?)```",
                     re.S)

CONFTEST = '''
import pytest
from example_site import SiteProcess

@pytest.fixture(scope="session")
def shop_url(pixelcheck_sink):
    with SiteProcess(pixelcheck_sink.url) as site:
        yield site.url
'''


def recipes(lang: str = "python") -> dict[str, str]:
    found = {m["name"]: m["code"] for m in _RECIPE.finditer(README.read_text())
             if m["lang"] == lang}
    assert found, "no recipes found in the README"
    return found


def test_every_python_recipe_in_the_readme_passes(pytester):
    python = recipes("python")
    assert {"first-test", "python-sdk", "plain-http", "proxy-route"} <= set(python)
    pytester.makeconftest(CONFTEST)
    for name, code in python.items():
        pytester.makepyfile(**{f"test_recipe_{name.replace('-', '_')}": code})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=len(python))
