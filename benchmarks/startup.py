"""Start-up time of each moving part of a pixelcheck session.

    python benchmarks/startup.py [--repeat N] [--json PATH]

Each part is started N times (default 5) and the median, min and max are printed:

* proxy, in-process: ``PixelProxy(EventStore()).start()``. mitmproxy's ``ctx`` is
  process-global, so every sample runs in a fresh child process, which prints the
  proxy's own ``startup_seconds``. The child is fresh, so the number includes the
  lazy mitmproxy import and the creation of a new CA, as in a real session.
* proxy, ``mitmdump`` subprocess (the alternative proxy.py rejects): from ``Popen``
  until its port accepts a TCP connection, with a fresh ``confdir`` (new CA) too.
* sink: ``ConversionSink(EventStore()).start()`` timed around the call, first
  start in a fresh process (includes importing pytest-httpserver/werkzeug) and a
  second start in it.
* browser: ``BrowserSession(proxy.url, proxy.ca_spki_sha256_base64).start()``
  (starts Playwright's driver and launches Chromium) with a proxy running.

Samples are interleaved (one of each part per round) so a slow moment of the
machine does not land on one part only. Measures and prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
CHILD_TIMEOUT = 120.0
MITMDUMP_TIMEOUT = 60.0

# --- children: one sample each, printed as a JSON line on stdout -------------------------


def _child_proxy() -> dict[str, float]:
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.proxy import PixelProxy

    with tempfile.TemporaryDirectory(prefix="pixelcheck-bench-") as confdir:
        proxy = PixelProxy(EventStore(), confdir=confdir).start()
        seconds = proxy.startup_seconds
        proxy.stop()
    return {"startup_seconds": seconds}


def _child_mitmproxy_import() -> dict[str, float]:
    started = time.perf_counter()
    from mitmproxy import options  # noqa: F401
    from mitmproxy.addons import default_addons  # noqa: F401
    from mitmproxy.master import Master  # noqa: F401

    return {"startup_seconds": time.perf_counter() - started}


def _child_sink() -> dict[str, float]:
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.sink import ConversionSink

    # Timed around start(): the sink's own startup_seconds leaves out the lazy
    # pytest-httpserver import that a first start pays.
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        sink = ConversionSink(EventStore()).start()
        seconds.append(time.perf_counter() - started)
        sink.stop()
    return {"startup_seconds": seconds[0], "warm_seconds": seconds[1]}


def _child_browser() -> dict[str, float | str]:
    from pytest_pixelcheck.browser import BrowserSession
    from pytest_pixelcheck.events import EventStore
    from pytest_pixelcheck.proxy import PixelProxy

    with tempfile.TemporaryDirectory(prefix="pixelcheck-bench-") as confdir:
        proxy = PixelProxy(EventStore(), confdir=confdir).start()
        try:
            session = BrowserSession(proxy.url, proxy.ca_spki_sha256_base64).start()
            seconds = session.startup_seconds
            how = session.location.how if session.location else "?"
            session.stop()
        finally:
            proxy.stop()
    return {"startup_seconds": seconds, "how": how}


CHILDREN = {
    "proxy": _child_proxy,
    "mitmproxy-import": _child_mitmproxy_import,
    "sink": _child_sink,
    "browser": _child_browser,
}


def run_child(kind: str) -> dict[str, float | str]:
    """Run one sample of ``kind`` in a fresh interpreter and return what it printed."""
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", kind],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} sample failed (exit {proc.returncode}):\n{proc.stderr}")
    return json.loads(lines[-1])


# --- mitmdump as a subprocess, timed from here --------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mitmdump_path() -> Path:
    """mitmdump of this interpreter's environment (the venv's bin/Scripts dir)."""
    name = "mitmdump.exe" if os.name == "nt" else "mitmdump"
    path = Path(sys.executable).parent / name
    if not path.is_file():
        raise RuntimeError(f"no {name} next to {sys.executable}")
    return path


def time_mitmdump() -> float:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="pixelcheck-bench-") as confdir, \
            tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(mitmdump_path()), "--listen-host", "127.0.0.1", "--listen-port", str(port),
             "--set", f"confdir={confdir}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors,
        )
        try:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    pass
                if proc.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"mitmdump exited with {proc.returncode}:\n"
                                       f"{errors.read().decode(errors='replace')}")
                if time.perf_counter() - started > MITMDUMP_TIMEOUT:
                    raise RuntimeError(f"mitmdump not listening after {MITMDUMP_TIMEOUT:.0f}s")
                time.sleep(0.005)  # poll resolution, small next to the start-up itself
            return time.perf_counter() - started
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


# --- the run ------------------------------------------------------------------------------

ROWS = [
    # key, label, what the number covers
    ("proxy", "proxy, in-process", "PixelProxy.start(): mitmproxy import + new CA + listen"),
    ("mitmproxy-import", "  of which: import", "importing mitmproxy's master and addons"),
    ("mitmdump", "proxy, mitmdump", "Popen until the port accepts (interpreter, import, CA)"),
    ("sink", "sink, first start", "ConversionSink.start() incl. pytest-httpserver import"),
    ("sink-warm", "sink, again", "a second ConversionSink.start() in that process"),
    ("browser", "browser", "BrowserSession.start(): Playwright driver + Chromium launch"),
]


def summarise(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {key: {"median": statistics.median(values), "min": min(values), "max": max(values)}
            for key, values in samples.items() if values}


def conclusion(stats: dict[str, dict[str, float]]) -> str:
    inproc, sub = stats["proxy"]["median"], stats["mitmdump"]["median"]
    if inproc >= sub:
        proxy_part = (f"the in-process proxy is NOT faster than mitmdump ({inproc:.2f}s vs "
                      f"{sub:.2f}s)")
    elif sub / inproc < 1.25:
        proxy_part = (f"the in-process proxy starts only {sub - inproc:.2f}s sooner than mitmdump "
                      f"({inproc:.2f}s vs {sub:.2f}s, {sub / inproc:.2f}x): both pay the "
                      f"mitmproxy import, so start-up alone barely favours in-process")
    else:
        proxy_part = (f"the in-process proxy starts {sub / inproc:.1f}x faster than mitmdump "
                      f"({inproc:.2f}s vs {sub:.2f}s, {sub - inproc:.2f}s saved per session)")
    total = inproc + stats["sink"]["median"] + stats["browser"]["median"]
    biggest = max(("proxy", "sink", "browser"), key=lambda k: stats[k]["median"])
    share = stats[biggest]["median"] / total
    return (f"conclusion: {proxy_part}; a session starts in about {total:.2f}s "
            f"(proxy + sink + browser), {share:.0%} of it the {biggest}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="samples per part (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(CHILDREN[args.child]()), flush=True)
        return 0
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    print(f"start-up, {args.repeat} samples per part, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    samples: dict[str, list[float]] = {key: [] for key, _, _ in ROWS}
    browser_how = "?"
    for round_no in range(1, args.repeat + 1):
        print(f"  round {round_no}/{args.repeat}", file=sys.stderr, flush=True)
        samples["proxy"].append(float(run_child("proxy")["startup_seconds"]))
        samples["mitmproxy-import"].append(
            float(run_child("mitmproxy-import")["startup_seconds"]))
        samples["mitmdump"].append(time_mitmdump())
        sink = run_child("sink")
        samples["sink"].append(float(sink["startup_seconds"]))
        samples["sink-warm"].append(float(sink["warm_seconds"]))
        browser = run_child("browser")
        samples["browser"].append(float(browser["startup_seconds"]))
        browser_how = str(browser["how"])

    stats = summarise(samples)
    print()
    print(f"  {'part':<20} {'median':>8} {'min':>8} {'max':>8}  covers")
    print("  " + "-" * 96)
    for key, label, covers in ROWS:
        row = stats[key]
        print(f"  {label:<20} {row['median']:>7.3f}s {row['min']:>7.3f}s {row['max']:>7.3f}s"
              f"  {covers}")
    print(f"\n  Chromium: {browser_how}")
    print(conclusion(stats))

    if args.json:
        Path(args.json).write_text(json.dumps({
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "chromium": browser_how,
            "samples_seconds": samples,
            "stats_seconds": stats,
            "conclusion": conclusion(stats),
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
