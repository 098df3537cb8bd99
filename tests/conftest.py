"""Shared fixtures: the example shop, run as a real subprocess against the session's
sink (directly, or through the proxy as graph.facebook.com)."""

import os
import ssl
import sys
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# tests import their helpers (recorded, ...) as top-level modules
sys.path.insert(0, str(Path(__file__).resolve().parent))

from example_site import SiteProcess  # noqa: E402
from example_site.journey import checkout, set_faults  # noqa: E402

SHOP_TOKEN = "EAAshopTESTtoken0123456789"

# Property-based fuzzing (test_fuzz.py): a few hundred examples per property by default,
# a few thousand over the suite; HYPOTHESIS_PROFILE=long runs 100,000 each. No deadline:
# timings on a shared machine are noise, and a slow example is not a wrong one.
settings.register_profile("default", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large])
settings.register_profile("long", parent=settings.get_profile("default"),
                          max_examples=100_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def shop(pixelcheck_sink):
    """The shop, its Graph base URL pointed at the sink."""
    with SiteProcess(pixelcheck_sink.url, access_token=SHOP_TOKEN) as site:
        yield site


@pytest.fixture(scope="session")
def shop_via_proxy(pixelcheck_harness):
    """The shop calling the real graph.facebook.com host through the proxy."""
    with SiteProcess("https://graph.facebook.com", access_token=SHOP_TOKEN,
                     env=pixelcheck_harness.backend_env()) as site:
        yield site


@pytest.fixture
def run_checkout(pixelcheck_page, pixelcheck_context, shop):
    """run_checkout(faults=None, **kw) -> order id, in this test's browser context."""
    def run(faults=None, site=shop, **kwargs):
        set_faults(pixelcheck_context, site.url, faults)
        return checkout(pixelcheck_page, site.url, **kwargs)
    return run


@pytest.fixture(scope="session")
def cmp_shop(pixelcheck_sink):
    """The shop with its consent banner: tags wait for the visitor's answer."""
    with SiteProcess(pixelcheck_sink.url, access_token=SHOP_TOKEN,
                     extra_args=["--consent-banner"]) as site:
        yield site


@pytest.fixture
def pixelcheck_consent_hook(pixelcheck_context, pixelcheck_page):
    """pixelcheck.consent(granted) for the example shop's CMP: the visitor clicks the
    banner when the page shows it; before any page, the CMP's cookie is set."""
    def set_consent(granted: bool) -> None:
        button = pixelcheck_page.locator("#consent-accept" if granted else "#consent-deny")
        if button.count():
            button.click()
        else:
            pixelcheck_context.add_cookies([{
                "name": "shop_consent", "value": "granted" if granted else "denied",
                "domain": "127.0.0.1", "path": "/"}])
    return set_consent


@pytest.fixture(scope="session")
def psp_shop(pixelcheck_sink):
    """The shop whose checkout pays on a payment provider's page on another host."""
    with SiteProcess(pixelcheck_sink.url, access_token=SHOP_TOKEN,
                     extra_args=["--payment-provider"]) as site:
        yield site


@pytest.fixture
def via_proxy(pixelcheck_proxy):
    """A urllib opener that goes through the session's proxy and trusts its CA."""
    context = ssl.create_default_context(cafile=str(pixelcheck_proxy.ca_cert_path))
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({"https": pixelcheck_proxy.url,
                                     "http": pixelcheck_proxy.url}),
        urllib.request.HTTPSHandler(context=context))
