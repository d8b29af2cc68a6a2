"""Ingest throughput under archive latency: requests/s, CPU seconds and peak memory per cell.

    python bench/ingest_latency.py [--latencies 0,50,200] [--concurrency 1,4,16,64]
                                   [--per-thread 6] [--min-requests 8] [--max-requests 400]
                                   [--repeat 3] [--no-capacity]
    python bench/ingest_latency.py --quick      # 200 ms only, concurrency 1 and 64

pywb serves the sample world's collection (data/world); the fault proxy
(tests/faultproxy.py), in a process of its own so its CPU is not counted,
adds a fixed `Delay` to every call (0, 50 and 200 ms by default: a production
wayback's CDX lookup or WARC read takes 50-500 ms). Each cell (latency x
`[ingest] concurrency`) runs `--repeat` times, each run in a fresh process: the
ingest worker over the first successful requests of the world's oracle
(`per-thread` x concurrency of them, between min and max), with the default
retry policy. Printed (medians): requests/s, archive calls per request (from
the proxy's record) and calls/s, CPU seconds of the ingesting process per
request and per run, its peak RSS, and the scaling `calls/s(c) / (c *
calls/s(1))` at the same latency (1.0 is linear; counted in calls because each
call costs the latency once, and the cells' requests differ in how many calls
their redirects and landing pages take).

Linear scaling stops where the machine does: pywb's `wayback` is one gevent
process (one core at most), and pywb, the proxy and the ingest share the
cores. So each cell above concurrency 1 also measures what the archive side
can serve: the same calls the ingest made (URLs from the proxy's record),
replayed through the proxy at the same concurrency by a trivial client
(`http.client`, a fresh connection per call, as the ingest's). That rate, in
calls/s, is the `capacity` column, and `x possible` is `calls/s(c) / min(c *
calls/s(1), capacity)`: the share of what this machine allowed that the ingest
reached. Writes bench/results/ingest_latency.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.common import fresh_get  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def _serve_proxy(base: str, delay: float, port_out, commands) -> None:
    """The proxy, in a process of its own; answers `commands`: ("count",) -> calls so far,
    ("urls", n) -> the URLs (through the proxy) of the calls after the first n."""
    from faultproxy import Delay, FaultPlan, FaultProxy, Rule

    with FaultProxy(base) as proxy:
        proxy.plan = FaultPlan([Rule(Delay(delay))]) if delay else FaultPlan()
        port_out.put(proxy.url)
        while True:
            command = commands.get()
            calls = proxy.calls
            if command[0] == "count":
                port_out.put(len(calls))
            else:
                port_out.put([proxy.base + c.path + (f"?{c.query}" if c.query else "")
                              for c in calls[command[1]:]])


def run_cell(url: str, concurrency: int, n: int, world: Path) -> dict:
    """One cell, in this (fresh) process: ingest `n` requests against `url`."""
    from pipeline.archive.factory import open_archive
    from pipeline.ingest.settings import IngestSettings
    from pipeline.ingest.shard import run_shard
    from pipeline.ingest.worker import IngestWorker

    oracle = json.loads((world / "expected.json").read_text())["requests"]
    chosen = [e for e in oracle if e.get("status_over_http", e["status"]) == "success"][:n]
    requests = [{"base_url": e["base_url"], "ext_ids": {"sha1": e["sha1"]},
                 "ingest_type": "pdf", "ingest_request_source": "file-backfill",
                 "link_source": "fatcat", "link_source_id": f"file_{e['ident']}"} for e in chosen]
    cdx, content = open_archive(url)
    worker = IngestWorker(cdx, content, IngestSettings())
    statuses: dict[str, int] = {}

    def write(result: dict) -> None:
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    run_shard(requests, worker, write, concurrency)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"requests": len(requests), "seconds": wall, "rps": len(requests) / wall,
            "cpu_seconds": cpu, "cpu_ms_per_request": 1000 * cpu / len(requests),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "statuses": statuses}


def capacity(urls: list[str], concurrency: int) -> float:
    """Calls/s the proxy and pywb serve for `urls` with `concurrency` trivial clients."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(functools.partial(fresh_get, timeout=120), urls))
    return len(urls) / (time.perf_counter() - t0)


def _ask(commands, answers, *command):
    commands.put(command)
    return answers.get(timeout=120)


def measure_cell(url: str, c: int, n: int, args, commands, answers) -> dict:
    """`--repeat` runs of one cell (fresh processes), medians; and the archive side's
    capacity for the same calls at the same concurrency."""
    runs, calls_per_request, urls = [], [], []
    for _ in range(args.repeat):
        before = _ask(commands, answers, "count")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        out = subprocess.run([sys.executable, __file__, "--world", str(args.world),
                              "--cell", url, str(c), str(n)], env=env, check=True,
                             capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
        urls = _ask(commands, answers, "urls", before)
        calls_per_request.append(len(urls) / n)
    cell = {"requests": n, "runs": runs,
            "rps": statistics.median(r["rps"] for r in runs),
            "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "calls_per_request": statistics.median(calls_per_request),
            "calls_per_s": statistics.median(r["rps"] * k for r, k in zip(runs, calls_per_request,
                                                                          strict=True)),
            "statuses": runs[-1]["statuses"]}
    if c > 1 and args.capacity:
        rates = [capacity(urls, c) for _ in range(args.repeat)]
        cell["capacity_calls_per_s"] = statistics.median(rates)
    return cell


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latencies", default="0,50,200")
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--per-thread", type=int, default=6)
    ap.add_argument("--min-requests", type=int, default=8)
    ap.add_argument("--max-requests", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell (medians)")
    ap.add_argument("--no-capacity", dest="capacity", action="store_false",
                    help="skip measuring what the proxy and pywb serve to a trivial client")
    ap.add_argument("--quick", action="store_true",
                    help="a quick check: 200 ms only, concurrency 1 and 64")
    ap.add_argument("--world", type=Path, default=ROOT / "data" / "world")
    ap.add_argument("--cell", nargs=3, metavar=("URL", "CONCURRENCY", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), int(args.cell[2]), args.world)))
        return
    if args.quick:
        args.latencies, args.concurrency = "200", "1,64"

    from services import run_pywb

    latencies = [int(x) for x in args.latencies.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    load_before = os.getloadavg()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as root, run_pywb(Path(root)) as pywb:
        base = pywb.serve(args.world / "collection", "world")
        for ms in latencies:
            answers, commands = ctx.Queue(), ctx.Queue()
            proxy = ctx.Process(target=_serve_proxy, args=(base, ms / 1000, answers, commands),
                                daemon=True)
            proxy.start()
            url = answers.get(timeout=60)
            try:
                for c in levels:
                    n = max(args.min_requests, min(args.max_requests, args.per_thread * c))
                    cell = measure_cell(url, c, n, args, commands, answers)
                    rows.append({"latency_ms": ms, "concurrency": c, **cell})
                    cap = (f", capacity {cell['capacity_calls_per_s']:.0f} calls/s"
                           if "capacity_calls_per_s" in cell else "")
                    print(f"latency {ms:4d} ms  concurrency {c:3d}: {cell['rps']:7.1f} req/s, "
                          f"{cell['cpu_ms_per_request']:6.1f} ms CPU/request, "
                          f"peak RSS {cell['peak_rss_mb']:.0f} MB  ({n} requests, "
                          f"{cell['calls_per_request']:.2f} calls each{cap})", flush=True)
            finally:
                proxy.kill()
    for row in rows:
        one = next((r for r in rows if r["latency_ms"] == row["latency_ms"]
                    and r["concurrency"] == 1), None)
        if one is None:
            continue
        # by archive calls: the cells ingest different requests (more at higher concurrency),
        # whose redirects and landing pages cost different numbers of calls of `latency` each
        linear = row["concurrency"] * one["calls_per_s"]
        row["scaling_efficiency"] = row["calls_per_s"] / linear
        possible = min(linear, row.get("capacity_calls_per_s", linear))
        row["share_of_possible"] = row["calls_per_s"] / possible
    print(f"\n{'latency':>8} {'conc':>5} {'req/s':>8} {'calls/s':>8} {'x linear':>9} "
          f"{'capacity':>9} {'x possible':>10} {'calls/req':>9} {'CPU ms/req':>11} {'CPU s':>6} "
          f"{'RSS MB':>7}")
    for r in rows:
        cap = f"{r['capacity_calls_per_s']:9.1f}" if "capacity_calls_per_s" in r else f"{'':9}"
        print(f"{r['latency_ms']:>6}ms {r['concurrency']:>5} {r['rps']:>8.1f} "
              f"{r['calls_per_s']:>8.1f} {r.get('scaling_efficiency', float('nan')):>9.2f} {cap} "
              f"{r.get('share_of_possible', float('nan')):>10.2f} {r['calls_per_request']:>9.2f} "
              f"{r['cpu_ms_per_request']:>11.1f} {r['cpu_seconds']:>6.2f} {r['peak_rss_mb']:>7.0f}")
    out = {"benchmark": "ingest_latency",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
           "repeat": args.repeat, "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_latency.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
