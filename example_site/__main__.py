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
from .server import ShopConfig, ShopServer

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
    parser.add_argument("--log-level", default=env("SHOP_LOG_LEVEL", "INFO"),
                        help="DEBUG also logs every request")
    return parser.parse_args(argv)


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
        host=args.host,
        port=args.port,
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

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
