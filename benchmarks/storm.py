"""Storm the harness with malformed requests: does memory stay bounded, does a small
pixel hit get through behind a gzip bomb, is every request answered?

    python benchmarks/storm.py [--requests 50000] [--big 500] [--bombs 200] [--json PATH]

This process runs a ``Harness`` (proxy and sink, no browser) and measures its own
memory (VmRSS sampled every 0.25 s, and the kernel's VmHWM peak). Client processes
(``--clients``, 8 threads each) send the storm over real sockets, half to the sink
directly and half through the proxy (collection hits, server API calls the proxy
reroutes to the sink, unknown hosts it answers offline):

* malformed JSON, wrong types, a payload 1,000 lists deep, unknown paths, broken
  chunked encoding, truncated gzip, binary collection bodies, garbage query strings;
* ``--big`` bodies of 5 MB, ``--bombs`` gzip bombs (1 MB on the wire, 1 GB decoded),
  each direct and through the proxy alternately.

Another client process fires a small pixel hit through the proxy every 0.1 s for the
whole storm and records each one's latency: the longest is the longest stall of a
small hit behind the bombs. A request counts as unanswered when no HTTP status line
came back within 60 s. Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
THREADS_PER_CLIENT = 8
ANSWER_TIMEOUT = 60.0


# --- the storm's requests -------------------------------------------------------------

def _bomb() -> bytes:
    """1 GB of zeros, gzip-compressed (about 1 MB), built without holding 1 GB."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    return b"".join([*(deflater.compress(chunk) for _ in range(1024)), deflater.flush()])


def _deep(levels: int) -> bytes:
    return b'{"data": [{"event_name": "Purchase", "user_data": ' + b"[" * levels + \
        b"]" * levels + b"}]}"


SMALL_KINDS = (
    ("sink", "POST", "/v21.0/1234567890/events", b'{"data": [{"event_name": ',
     {"Content-Type": "application/json"}),
    ("sink", "POST", "/v21.0/1234567890/events", b'{"data": "not a list", "x": [1, 2]}',
     {"Content-Type": "application/json"}),
    ("sink", "POST", "/v21.0/1234567890/events", _deep(1000),
     {"Content-Type": "application/json"}),
    ("sink", "POST", "/no/such/api", b"\xff\xfe garbage", {"Content-Type": "text/plain"}),
    ("sink", "POST", "/tiktok/open_api/v1.3/event/track/", gzip.compress(b'{"data": [')[:-6],
     {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    ("chunked", "POST", "/v21.0/1234567890/events", b"", {}),
    ("proxy", "GET", "http://www.facebook.com/tr/?id=&ev=%ZZ&eid=" + "x" * 300 + "&cd[=",
     b"", {}),
    ("proxy", "POST", "http://www.facebook.com/tr/", os.urandom(2048),
     {"Content-Type": "application/x-www-form-urlencoded"}),
    ("proxy", "POST", "http://graph.facebook.com/v21.0/1234567890/events", b"[[[{",
     {"Content-Type": "application/json"}),
    ("proxy", "GET", "http://updates.example.com/check?x=1", b"", {}),
)


def _request(index: int, big: set[int], bombs: set[int], bomb: bytes, large: bytes
             ) -> tuple[str, str, str, bytes, dict[str, str]]:
    """(where, method, url or path, body, headers) of request ``index``."""
    if index in bombs:
        where = "sink" if index % 2 else "proxy"
        path = "/v21.0/1234567890/events"
        return (where, "POST", path if where == "sink" else "http://graph.facebook.com" + path,
                bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    if index in big:
        where = "sink" if index % 2 else "proxy"
        path = "/v21.0/1234567890/events"
        return (where, "POST", path if where == "sink" else "http://graph.facebook.com" + path,
                large, {"Content-Type": "application/json"})
    return SMALL_KINDS[index % len(SMALL_KINDS)]


def _send(conns: dict[str, http.client.HTTPConnection], addresses: dict[str, tuple[str, int]],
          where: str, method: str, target: str, body: bytes,
          headers: dict[str, str]) -> bool:
    """True when an HTTP answer came back."""
    if where == "chunked":  # broken chunked encoding: raw bytes, its own connection
        try:
            with socket.create_connection(addresses["sink"], timeout=ANSWER_TIMEOUT) as raw:
                raw.sendall(f"POST {target} HTTP/1.1\r\nHost: sink\r\nContent-Type: "
                            "application/json\r\nTransfer-Encoding: chunked\r\nConnection: "
                            "close\r\n\r\nZZZ\r\n{}\r\n0\r\n\r\n".encode())
                return raw.recv(16).startswith(b"HTTP/1.")
        except OSError:
            return False
    for attempt in (1, 2):  # a kept-alive connection the server closed: one fresh retry
        conn = conns.get(where)
        if conn is None:
            conn = conns[where] = http.client.HTTPConnection(*addresses[where],
                                                             timeout=ANSWER_TIMEOUT)
        try:
            conn.request(method, target, body=body, headers=headers)
            answer = conn.getresponse()
            answer.read()
            if answer.will_close:
                conn.close()
                conns.pop(where, None)
            return True
        except (OSError, http.client.HTTPException):
            conn.close()
            conns.pop(where, None)
            if attempt == 2:
                return False
    return False


def client(args: argparse.Namespace) -> None:
    """A storm client: its share of the requests on THREADS_PER_CLIENT threads."""
    addresses = {"sink": ("127.0.0.1", args.sink_port), "proxy": ("127.0.0.1", args.proxy_port)}
    big = set(json.loads(args.big_indices))
    bombs = set(json.loads(args.bomb_indices))
    bomb = _bomb() if bombs else b""
    large = (b'{"data": [{"event_name": "Purchase", "event_id": "big", "custom_data": '
             b'{"note": "' + b"x" * (5 * 1024 * 1024) + b'"}}]}')
    mine = list(range(args.client_index, args.requests, args.clients))
    unanswered = 0
    lock = threading.Lock()

    def work(indices: list[int]) -> None:
        nonlocal unanswered
        conns: dict[str, http.client.HTTPConnection] = {}
        for index in indices:
            if not _send(conns, addresses, *_request(index, big, bombs, bomb, large)):
                with lock:
                    unanswered += 1

    threads = [threading.Thread(target=work, args=(mine[t::THREADS_PER_CLIENT],))
               for t in range(THREADS_PER_CLIENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"sent": len(mine), "unanswered": unanswered}), flush=True)


def probe(args: argparse.Namespace) -> None:
    """Small pixel hits through the proxy every 0.1 s until stdin closes; latencies out."""
    latencies: list[float] = []
    unanswered = 0
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    conns: dict[str, http.client.HTTPConnection] = {}
    addresses = {"proxy": ("127.0.0.1", args.proxy_port)}
    count = 0
    while not done.is_set():
        count += 1
        started = time.perf_counter()
        ok = _send(conns, addresses, "proxy", "GET",
                   f"http://www.facebook.com/tr/?id=1234567890&ev=PageView&eid=probe-{count}",
                   b"", {})
        latencies.append(time.perf_counter() - started)
        unanswered += not ok
        done.wait(0.1)
    print(json.dumps({"latencies": latencies, "unanswered": unanswered}), flush=True)


# --- the harness side -------------------------------------------------------------------

def _rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(args: argparse.Namespace) -> dict[str, object]:
    sys.path.insert(0, str(ROOT))
    from pytest_pixelcheck.harness import Harness

    harness = Harness().start()
    baseline = _rss_mb()
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            samples.append(_rss_mb())

    threading.Thread(target=sample, daemon=True).start()
    spread = max(1, args.requests // max(1, args.big + args.bombs))
    special = list(range(spread // 2, args.requests, spread))
    bombs, big = special[::2][: args.bombs], special[1::2][: args.big]
    common = [sys.executable, str(HERE), "--proxy-port", str(harness.proxy.port),
              "--sink-port", str(harness.sink.port), "--requests", str(args.requests),
              "--clients", str(args.clients)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    prober = subprocess.Popen([*common, "--probe"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(0.5)
    started = time.perf_counter()
    clients = [subprocess.Popen([*common, "--client-index", str(i), "--big-indices",
                                 json.dumps(big), "--bomb-indices", json.dumps(bombs)],
                                stdout=subprocess.PIPE, text=True, env=env)
               for i in range(args.clients)]
    results = [json.loads(c.communicate()[0]) for c in clients]
    elapsed = time.perf_counter() - started
    probe_out = json.loads(prober.communicate("")[0])
    stop.set()
    peak_hwm = _rss_mb("VmHWM")
    after = _rss_mb()
    kept = {"events": len(harness.store.since(0)), "events_seen": len(harness.store),
            "traffic_entries": len(harness.proxy.traffic.since()),
            "sink_requests_kept": len(harness.sink.requests.since()),
            "sink_requests_seen": len(harness.sink.requests),
            "httpserver_log": len(harness.sink.server.log)}
    healthy = _healthy(harness)
    harness.stop()
    latencies = probe_out["latencies"]
    return {
        "requests": args.requests, "big_bodies_5mb": len(big), "gzip_bombs": len(bombs),
        "seconds": round(elapsed, 1),
        "unanswered": sum(r["unanswered"] for r in results) + probe_out["unanswered"],
        "rss_baseline_mb": round(baseline, 1),
        "rss_peak_sampled_mb": round(max(samples, default=baseline), 1),
        "rss_peak_vmhwm_mb": round(peak_hwm, 1),
        "rss_after_mb": round(after, 1),
        "probe_hits": len(latencies),
        "probe_latency_median_s": round(statistics.median(latencies), 3),
        "probe_latency_max_s": round(max(latencies), 3),
        "kept": kept, "healthy_after": healthy,
    }


def _healthy(harness: object) -> bool:
    """Both servers still answer a good request after the storm."""
    conns: dict[str, http.client.HTTPConnection] = {}
    addresses = {"sink": ("127.0.0.1", harness.sink.port),  # type: ignore[attr-defined]
                 "proxy": ("127.0.0.1", harness.proxy.port)}  # type: ignore[attr-defined]
    event = {"event_name": "Purchase", "event_id": "after", "event_time": int(time.time()),
             "action_source": "website", "user_data": {"client_user_agent": "x"}}
    return _send(conns, addresses, "sink", "POST", "/v21.0/1234567890/events",
                 json.dumps({"data": [event]}).encode(),
                 {"Content-Type": "application/json"}) and \
        _send(conns, addresses, "proxy", "GET",
              "http://www.facebook.com/tr/?id=1&ev=Lead&eid=after", b"", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--big", type=int, default=500, help="5 MB bodies among them")
    parser.add_argument("--bombs", type=int, default=200, help="gzip bombs among them")
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    # internal: the client and probe processes
    parser.add_argument("--proxy-port", type=int)
    parser.add_argument("--sink-port", type=int)
    parser.add_argument("--client-index", type=int)
    parser.add_argument("--big-indices", default="[]")
    parser.add_argument("--bomb-indices", default="[]")
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args()
    if args.probe:
        return probe(args)
    if args.client_index is not None:
        return client(args)
    results = run(args)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return None


if __name__ == "__main__":
    main()
