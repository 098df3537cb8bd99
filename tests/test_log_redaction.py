"""Under --log-level=DEBUG no log line anywhere shows a token or a raw email: the
proxy's HTTP/2 stack (hpack, h2) logs every header it decodes, paths included."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "EAAlogREDACTIONtoken0123456789"
EMAIL = "jane.doe.logtest@example.com"

# the token and the email are put together at run time: the failure's traceback shows
# the test's source, which must not be what the check below finds
INNER = f'''
TOKEN = {TOKEN[:6]!r} + {TOKEN[6:]!r}
EMAIL = {EMAIL.split("@")[0]!r} + "@" + {EMAIL.split("@")[1]!r}

def test_hits_through_the_proxy(pixelcheck, pixelcheck_page):
    page = pixelcheck_page
    page.goto("https://shop.example.com/")  # an unknown host, answered by the proxy
    page.evaluate("""async ([token, email]) => {{
        await fetch("https://www.facebook.com/tr/?id=1&ev=Purchase&eid=o-1"
                    + "&ud[em]=" + email + "&access_token=" + token, {{mode: "no-cors"}});
        await fetch("https://graph.facebook.com/v21.0/1/events?access_token=" + token, {{
            method: "POST", mode: "no-cors", headers: {{"Authorization": "Bearer " + token}},
            body: JSON.stringify({{data: [{{event_name: "Purchase", event_id: "o-1",
                event_time: Math.floor(Date.now() / 1000), action_source: "website",
                user_data: {{em: [email]}}}}]}})}});
    }}""", [TOKEN, EMAIL])
    pixelcheck.wait_for("Purchase", source="server", timeout=10)
    assert False, "fails on purpose: pytest prints the captured DEBUG logs"
'''


@pytest.mark.browser
def test_debug_logs_show_no_token_and_no_raw_email(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's package
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "--log-level=DEBUG",
        "--log-file=debug.log", "--log-file-level=DEBUG", timeout=300)
    result.assert_outcomes(failed=1)
    log_file = (pytester.path / "debug.log").read_text(errors="replace")
    output = result.stdout.str() + result.stderr.str()
    # the loggers that print headers and paths were on: the check below means something
    assert "hpack" in log_file and "/tr/" in log_file, log_file[:2000]
    assert "Captured log call" in output
    for where, text in (("terminal", output), ("log file", log_file)):
        assert TOKEN not in text, f"the token is in the {where}"
        assert EMAIL not in text and EMAIL.replace("@", "%40") not in text, \
            f"the raw email is in the {where}"
