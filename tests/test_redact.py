"""Secrets and PII never reach a report in the clear."""

from __future__ import annotations

import pytest

from pytest_pixelcheck.redact import MASK, redact, redact_headers, remember_secret, scrub


def test_token_shapes_are_redacted():
    text = ('POST /v21.0/1/events?access_token=EAAabc123&x=1 {"access_token": "EAAxyz987"} '
            "Authorization: Bearer abcdefghijkl data=[]&access_token=EAAform")
    out = redact(text)
    for secret in ("EAAabc123", "EAAxyz987", "abcdefghijkl", "EAAform"):
        assert secret not in out
    assert out.count(MASK) == 4


def test_a_remembered_token_is_redacted_anywhere():
    remember_secret("shop-secret-token-42")
    assert "shop-secret-token-42" not in redact("var graphToken = 'shop-secret-token-42';")


def test_headers():
    headers = redact_headers([("Authorization", "Bearer abcdefghijkl"), ("Access-Token", "tt"),
                              ("Cookie", "_fbp=fb.1.2.3")])
    # the scheme stays, so a saved Reddit call is not read as one without a bearer token
    assert headers[0] == ("Authorization", "Bearer " + MASK)
    assert headers[1] == ("Access-Token", MASK)
    assert headers[2] == ("Cookie", "_fbp=fb.1.2.3")


def test_pii_is_masked_literal_and_url_encoded():
    out = scrub("https://shop/thanks?email=Jane.Doe%40Example.com&ph=%2B1%20(650)%20555-1212"
                "&ts=1795865850354 sent to jane.doe@example.com, call +1 (650) 555-1212")
    assert "Jane.Doe" not in out and "jane.doe" not in out and "555-1212" not in out
    assert "J***%40Example.com" in out and "j***@example.com" in out
    assert "ts=1795865850354" in out  # timestamps and ids are not phones


def test_log_records_of_the_proxy_and_sink_are_scrubbed(caplog):
    import logging

    from pytest_pixelcheck.redact import install_log_redaction

    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("mitmproxy.proxy.server").info(
            "POST https://graph.facebook.com/v21.0/1/events?access_token=%s", "EAAlogged1")
        logging.getLogger("someone.else").info("access_token=%s", "theirs-to-keep")
    assert "EAAlogged1" not in caplog.text and "***redacted***" in caplog.text
    assert "theirs-to-keep" in caplog.text


@pytest.mark.parametrize("logger", ["hpack.hpack", "h2.connection", "quic", "http3",
                                    "urllib3.connectionpool", "asyncio", "werkzeug"])
def test_the_http_stacks_loggers_are_scrubbed_too(caplog, monkeypatch, logger):
    """At DEBUG hpack printed each decoded header: the raw email and the token in a
    pixel hit's path."""
    import logging

    from pytest_pixelcheck.redact import install_log_redaction

    install_log_redaction()
    # the logger's own level too: an SDK imported earlier in the session may have quieted
    # it (urllib3 at WARNING), and then nothing would be logged to check
    monkeypatch.setattr(logging.getLogger(logger), "propagate", True)
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger=logger):
        logging.getLogger(logger).debug(
            "Decoded %s", (b":path", b"/tr/?ud[em]=jane.doe@example.com&access_token=EAAh2x1"))
        logging.getLogger("h2able.not.ours").debug("jane.doe@example.com")
    lines = caplog.text.splitlines()
    assert "jane.doe@example.com" not in lines[0] and "EAAh2x1" not in lines[0], lines[0]
    assert "jane.doe@example.com" in lines[1]  # a logger of the user's, as they wrote it


def test_customer_fields_are_masked_by_key_but_hashes_stay():
    from pytest_pixelcheck.artifacts import _scrubbed

    hashed = "81f8f6dde88365f3928796ec7aa53f72820b06db8664f5fe76a7eb13e24546a2"
    form = scrub("email=jane%40x.com&first_name=Jane&last_name=Doe&city=Menlo+Park&zip=94025")
    assert form == "email=j***%40x.com&first_name=J***&last_name=D***&city=M***&zip=9***"
    script = scrub('fbq("init", "1", {"fn": "Jane", "ct": "Menlo Park", "zp": "94025"})')
    assert "Jane" not in script and "Menlo" not in script and "94025" not in script
    assert scrub(f"ud[fn]={hashed}") == f"ud[fn]={hashed}"
    data = _scrubbed({"user_data": {"fn": ["Jane"], "ln": [hashed], "city": "Menlo Park"}})
    assert data == {"user_data": {"fn": ["J***"], "ln": [hashed], "city": "M***"}}


def test_token_in_a_compressed_page_is_found():
    import gzip

    from pytest_pixelcheck.proxy import TrafficEntry
    from pytest_pixelcheck.safety import exposed_tokens

    page = TrafficEntry(0.0, "GET", "http://127.0.0.1:1/thanks", [], b"", status=200,
                        response_headers=[("Content-Type", "text/html"),
                                          ("Content-Encoding", "gzip")],
                        response_body=gzip.compress(b"<script>var t='EAAsecret-123';</script>"))
    image = TrafficEntry(0.0, "GET", "http://127.0.0.1:1/a.png", [], b"", status=200,
                         response_headers=[("Content-Type", "image/png")],
                         response_body=b"EAAsecret-123")
    found = exposed_tokens([page, image], ["EAAsecret-123"])
    assert [f.code for f in found] == ["exposed-access-token"]
    assert "EAAsecret-123" not in found[0].message and "/thanks" in found[0].message


def test_scrub_keeps_the_lines_of_a_multi_line_body():
    from pytest_pixelcheck.redact import scrub

    body = '{\n "a": 1,\n "email": "jane.doe@example.com",\n "b": 2\n}'
    scrubbed = scrub(body)
    assert scrubbed.count("\n") == 4 and "…" not in scrubbed
    assert "jane.doe@example.com" not in scrubbed and '"b": 2' in scrubbed
