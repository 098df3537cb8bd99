"""--pixelcheck-direct-site: pixelcheck's browser reaches the site on loopback directly and
sends only other hosts through the proxy (benchmarks/overhead.py measures why); the
site's pages still reach the exposed-token scan and the HAR, from Playwright's response
events. The run is a real pytest subprocess with the shop and Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_pixelcheck.site_traffic import bypasses_proxy

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "EAAdirectTESTtoken0123456789"

DIRECT = f'''
import pytest
from example_site import SiteProcess
from example_site.journey import checkout, set_faults
from pytest_pixelcheck import assert_deduplicated

@pytest.fixture(scope="module")
def shop(pixelcheck_sink):
    with SiteProcess(pixelcheck_sink.url, access_token="{TOKEN}") as site:
        yield site

def test_clean_checkout(pixelcheck, pixelcheck_page, shop):
    checkout(pixelcheck_page, shop.url)
    assert_deduplicated(pixelcheck, "Purchase")

def test_token_in_the_page(pixelcheck, pixelcheck_harness, pixelcheck_context,
                           pixelcheck_page, shop):
    set_faults(pixelcheck_context, shop.url, "token_in_page")
    checkout(pixelcheck_page, shop.url)
    pixelcheck.wait_for("Purchase", source="browser")
    through_proxy = pixelcheck_harness.proxy.traffic.since(0)
    assert not [e for e in through_proxy if e.url.startswith(shop.url)]
    assert [e for e in through_proxy if e.handled_by == "collection"]  # hits still are
    site = [e for e in pixelcheck.traffic() if e.url.startswith(shop.url)]
    assert site and {{e.handled_by for e in site}} == {{"site (browser, not proxied)"}}
    found = [f for f in pixelcheck.findings() if f.code == "exposed-access-token"]
    assert any("/thanks/" in f.message for f in found), pixelcheck.report()
    assert "{TOKEN}" not in pixelcheck.report()
'''


def test_loopback_hosts_are_the_ones_chromium_bypasses():
    assert bypasses_proxy("http://127.0.0.1:8000/") and bypasses_proxy("http://127.0.0.2/")
    assert bypasses_proxy("http://localhost:3000/x") and bypasses_proxy("http://[::1]:80/")
    assert bypasses_proxy("http://shop.localhost/")
    assert not bypasses_proxy("https://www.facebook.com/tr") and \
        not bypasses_proxy("http://staging.example.com/")


@pytest.mark.browser
def test_a_direct_site_still_has_its_pages_scanned_for_tokens(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_direct=DIRECT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly",
                                           "--pixelcheck-direct-site")
    result.assert_outcomes(passed=2)
