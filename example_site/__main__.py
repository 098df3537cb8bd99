"""``python -m example_site``: run the shop until SIGTERM/SIGINT.

Prints exactly one stdout line, ``EXAMPLE_SITE_URL http://127.0.0.1:PORT``, once the
shop accepts connections; logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .capi_clients import CLIENTS
from .lifetime import watch_parent
from .server import ShopConfig, ShopServer
from .trackers import TrackerConfig, load_trackers

URL_PREFIX = "EXAMPLE_SITE_URL"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m example_site", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--pixel-id", default=env("SHOP_PIXEL_ID", "1234567890"))
    parser.add_argument("--graph-url", default=env("SHOP_GRAPH_URL", "https://graph.facebook.com"))
    parser.add_argument("--api-version", default=env("SHOP_API_VERSION", "v21.0"))
    parser.add_argument("--access-token", default=env("SHOP_ACCESS_TOKEN", "TEST_TOKEN"))
    parser.add_argument("--test-event-code", default=env("SHOP_TEST_EVENT_CODE") or None)
    parser.add_argument("--capi-client", default=env("SHOP_CAPI_CLIENT", "json"),
                        choices=CLIENTS, help="how the backend sends Conversions API calls")
    parser.add_argument("--tracker", action="append", default=[], metavar="NAME[=API_URL]",
                        help="also track this platform (tiktok, ga4, ...); API_URL replaces "
                             "its API origin (default: the real one, for a proxied backend)")
    parser.add_argument("--tracker-client", action="append", default=[],
                        metavar="NAME=CLIENT", help="how the backend sends to NAME: json, or "
                        "an official SDK the tracker supports")
    parser.add_argument("--consent-banner", action="store_true",
                        help="ask visitors for consent (a minimal CMP) before any tag runs")
    parser.add_argument("--payment-provider", action="store_true",
                        help="checkout pays on a payment page on another host (localhost)")
    parser.add_argument("--http-timeout", type=float,
                        default=float(env("SHOP_HTTP_TIMEOUT", "5")),
                        help="seconds the backend waits for a platform's API before it "
                             "retries (twice) and gives up")
    parser.add_argument("--log-level", default=env("SHOP_LOG_LEVEL", "INFO"),
                        help="DEBUG also logs every request")
    return parser.parse_args(argv)


def tracker_configs(specs: list[str], clients: list[str]) -> dict[str, TrackerConfig]:
    """``--tracker tiktok=http://127.0.0.1:5000/tiktok`` -> the shop's TikTok setup."""
    known = load_trackers()
    chosen = dict(c.partition("=")[::2] for c in clients)
    configs = {}
    for spec in specs:
        name, _, api_url = spec.partition("=")
        if name not in known:
            raise SystemExit(f"unknown tracker {name!r}; known: {', '.join(sorted(known))}")
        tracker = known[name]
        client = chosen.get(name, tracker.clients[0])
        if client not in tracker.clients:
            raise SystemExit(f"{name} cannot send with {client!r}; one of "
                             f"{', '.join(tracker.clients)}")
        configs[name] = TrackerConfig(name, tracker.default_tag_id,
                                      api_url or tracker.real_api_url, tracker.default_token,
                                      client)
    return configs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="example_site %(levelname)s %(message)s")
    config = ShopConfig(
        pixel_id=args.pixel_id,
        graph_url=args.graph_url,
        api_version=args.api_version,
        access_token=args.access_token,
        test_event_code=args.test_event_code,
        capi_client=args.capi_client,
        trackers=tracker_configs(args.tracker, args.tracker_client),
        host=args.host,
        port=args.port,
        consent_banner=args.consent_banner,
        payment_provider=args.payment_provider,
        http_timeout=args.http_timeout,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    watch_parent()  # gone with the test run that started it, even a SIGKILLed one
    shop = ShopServer(config).start()
    print(f"{URL_PREFIX} {shop.url}", flush=True)
    try:
        # short waits keep the main thread responsive to signals on every platform
        while not stop.wait(0.5):
            pass
    finally:
        shop.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
