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

# Only where Playwright's own Chromium is not installed: point pytest-playwright at the
# one pixelcheck found, as such a user would (found here, where HOME is the real one).
EXECUTABLE = '''
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {{**browser_type_launch_args, "executable_path": {executable!r}}}
'''


def recipes(lang: str = "python") -> dict[str, str]:
    found = {m["name"]: m["code"] for m in _RECIPE.finditer(README.read_text())
             if m["lang"] == lang}
    assert found, "no recipes found in the README"
    return found


def test_every_python_recipe_in_the_readme_passes(pytester):
    python = recipes("python")
    assert {"first-test", "python-sdk", "plain-http", "proxy-route",
            "pytest-playwright", "debug-step-1", "debug-step-2", "debug-step-3"} <= set(python)
    from pytest_pixelcheck.browser import find_chromium

    executable = find_chromium().executable_path
    pytester.makeconftest(CONFTEST + (EXECUTABLE.format(executable=executable)
                                      if executable else ""))
    for name, code in python.items():
        pytester.makepyfile(**{f"test_recipe_{name.replace('-', '_')}": code})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=len(python))


def test_the_node_sdk_recipe_reaches_the_sink(pixelcheck, pixelcheck_sink, tmp_path):
    import os
    import subprocess

    from example_site.node_client import node_sdk_available

    if missing := node_sdk_available():
        if os.environ.get("CI"):
            pytest.fail(f"the Node SDK must be installed in CI (make test does it): {missing}")
        pytest.skip(missing)
    script = tmp_path / "send.js"
    script.write_text(recipes("js")["node-sdk"])
    modules = README.parent / "example_site" / "node_capi" / "node_modules"
    run = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "NODE_PATH": str(modules),
                              "PIXELCHECK_SINK_URL": pixelcheck_sink.url})
    assert run.returncode == 0, run.stderr
    server = pixelcheck.wait_for("Purchase", source="server")
    assert server.event_id == "purchase.ORD-4"
    assert server.raw.response_status == 200
    assert (server.raw.header("user-agent") or "").startswith("fbbizsdk-nodejs-")
