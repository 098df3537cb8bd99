"""``pixelcheck analyze`` on synthetic production captures, against a plain DuckDB join
of the same file, in the same run.

    python benchmarks/analyze_scale.py [--events 20000,200000,2000000] [--gz]
        [--platforms meta=1,tiktok=1,...] [--id-suffix 0.05] [--missing-server 0.02]
        [--late-server 0.01] [--truncated-server 0.005] [--days 7] [--seed 13]
        [--workers N] [--keep DIR] [--json PATH]

For each size, ``pytest_pixelcheck.analysis.synthetic`` writes a capture of N/2 sales
(one browser hit and one server call each, recorded samples of every platform as
templates, the fault rates above, fixed seed); writing it is not timed. Then, each in
a child process of its own, so peak RSS is the child's:

* join: DuckDB alone reads the JSON lines, takes each line's platform and source and
  the sale's id (one regular expression over the URL and body: the synthetic ids'
  shape, no platform decoding at all), joins browser and server on (platform, id)
  and computes the share joined per platform. The floor: what reading and joining
  the file costs.
* analyze: ``pixelcheck analyze FILE`` as a user runs it (its report goes to a file;
  the first lines are printed here). Its worker processes are children of that
  child: the peak RSS column sums the main process's peak and the largest
  worker's peak times the number of workers (getrusage of the child's children).

Measures and prints; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_pixelcheck.analysis import synthetic  # noqa: E402

JOIN_SQL = r"""
WITH lines AS (
    SELECT platform, source,
           regexp_extract(request.url || ' ' || coalesce(request.body, ''),
                          'ord-[0-9]{8}(-server)?', 0) AS sale
    FROM read_json(?, format = 'newline_delimited',
                   columns = {platform: 'VARCHAR', source: 'VARCHAR',
                              request: 'STRUCT(url VARCHAR, body VARCHAR)'})),
browser AS (SELECT platform, sale FROM lines WHERE source = 'browser'),
server AS (SELECT platform, sale FROM lines WHERE source = 'server')
SELECT b.platform, count(*) AS browser, count(s.sale) AS joined,
       count(s.sale) / count(*) AS rate
FROM browser b LEFT JOIN server s ON s.platform = b.platform AND s.sale = b.sale
GROUP BY b.platform ORDER BY b.platform
"""

# Runs in the child: the measured work, then its own and its children's peak RSS.
CHILD = r"""
import json, resource, sys, time
mode, path, out = sys.argv[1:4]
started = time.perf_counter()
if mode == "join":
    import duckdb
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    rows = con.execute(JOIN_SQL, [path]).fetchall()
    Path(out).write_text("\n".join(map(str, rows)) + "\n")
    code = 0
else:
    import contextlib, io
    from pytest_pixelcheck.cli import main
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        code = main(["analyze", path, *sys.argv[4:]])
    Path(out).write_text(report.getvalue())
took = time.perf_counter() - started
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": took, "rss_kb": me, "child_rss_kb": kids, "code": code}))
"""


def run_child(mode: str, path: Path, out: Path, extra: list[str]) -> dict[str, float]:
    code = f"from pathlib import Path\nJOIN_SQL = {JOIN_SQL!r}\n" + CHILD
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, mode, str(path), str(out), *extra],
                          cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads([line for line in done.stdout.splitlines()
                         if line.startswith("{")][-1])
    result["wall"] = time.perf_counter() - started
    return result


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() \
        else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="20000,200000",
                        help="comma-separated sizes in events (browser + server)")
    parser.add_argument("--platforms", default=",".join(f"{p}=1" for p in synthetic.TEMPLATES))
    parser.add_argument("--id-suffix", type=float, default=0.05)
    parser.add_argument("--missing-server", type=float, default=0.02)
    parser.add_argument("--late-server", type=float, default=0.01)
    parser.add_argument("--truncated-server", type=float, default=0.005)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--gz", action="store_true", help="write the captures gzipped")
    parser.add_argument("--workers", type=int, default=None,
                        help="analyze's decoding processes (default: its own choice)")
    parser.add_argument("--keep", help="folder for the captures and reports (default: temp)")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()

    mix = {name: float(weight) for name, weight in
           (item.split("=") for item in args.platforms.split(","))}
    faults = synthetic.Faults(id_suffix=args.id_suffix, missing_server=args.missing_server,
                              late_server=args.late_server,
                              truncated_server=args.truncated_server)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="pixelcheck-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    extra = [] if args.workers is None else ["--workers", str(args.workers)]
    rows = []
    print(f"{'events':>10} {'MB':>7} {'join s':>7} {'join MB':>8} {'analyze s':>10} "
          f"{'ratio':>6} {'analyze MB':>11} {'s/1M ev':>8}  load")
    for size in (int(s) for s in args.events.split(",")):
        capture = folder / f"sales-{size}.jsonl{'.gz' if args.gz else ''}"
        if not capture.exists():
            synthetic.write(capture, synthetic.Plan(sales=size // 2, platforms=mix,
                                                    faults=faults, days=args.days,
                                                    seed=args.seed))
        before = load()
        join = run_child("join", capture, folder / f"join-{size}.txt", [])
        analyze = run_child("analyze", capture, folder / f"report-{size}.txt", extra)
        workers = args.workers or min(os.cpu_count() or 1, 4)
        analyze_mb = (analyze["rss_kb"] + workers * analyze["child_rss_kb"]) / 1024
        row = {
            "events": size, "file_mb": capture.stat().st_size / 2**20,
            "join_s": join["seconds"], "join_mb": join["rss_kb"] / 1024,
            "analyze_s": analyze["seconds"], "ratio": analyze["seconds"] / join["seconds"],
            "analyze_main_mb": analyze["rss_kb"] / 1024,
            "analyze_worker_mb": analyze["child_rss_kb"] / 1024,
            "analyze_mb": analyze_mb, "per_million_s": analyze["seconds"] / size * 1e6,
            "load_before": before, "load_after": load(),
        }
        rows.append(row)
        print(f"{size:>10,} {row['file_mb']:>7.0f} {row['join_s']:>7.2f} "
              f"{row['join_mb']:>8.0f} {row['analyze_s']:>10.1f} {row['ratio']:>6.1f} "
              f"{analyze_mb:>11.0f} {row['per_million_s']:>8.0f}  "
              f"{before} -> {row['load_after']}", flush=True)
    last = folder / f"report-{rows[-1]['events']}.txt"
    report = last.read_text().splitlines()
    print(f"\nthe {rows[-1]['events']:,}-event report ({len(report)} lines, {last}):")
    print("\n".join(report))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
