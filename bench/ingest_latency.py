"""Ingest throughput under archive latency: requests/s, CPU seconds and peak memory per cell.

    python bench/ingest_latency.py [--latencies 0,50,200] [--concurrency 1,4,16,64]
                                   [--per-thread 3] [--min-requests 8] [--max-requests 160]

pywb serves the sample world's collection (data/world); the fault proxy
(tests/faultproxy.py), in a process of its own so its CPU is not counted,
adds a fixed `Delay` to every call (0, 50 and 200 ms by default: a production
wayback's CDX lookup or WARC read takes 50-500 ms). Each cell (latency x
`[ingest] concurrency`) runs in a fresh process: the ingest worker over the
first successful requests of the world's oracle (`per-thread` x concurrency of
them, between min and max), with the default retry policy. Printed: requests/s,
CPU seconds of the ingesting process per request, its peak RSS, and the
scaling efficiency `rps(c) / (c * rps(1))` at the same latency (1.0 is linear).
Writes bench/results/ingest_latency.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
RESULTS = ROOT / "bench" / "results"


def _serve_proxy(base: str, delay: float, port_out) -> None:
    from faultproxy import Delay, FaultPlan, FaultProxy, Rule

    with FaultProxy(base) as proxy:
        proxy.plan = FaultPlan([Rule(Delay(delay))]) if delay else FaultPlan()
        port_out.put(proxy.url)
        while True:
            time.sleep(3600)


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latencies", default="0,50,200")
    ap.add_argument("--concurrency", default="1,4,16,64")
    ap.add_argument("--per-thread", type=int, default=3)
    ap.add_argument("--min-requests", type=int, default=8)
    ap.add_argument("--max-requests", type=int, default=160)
    ap.add_argument("--world", type=Path, default=ROOT / "data" / "world")
    ap.add_argument("--cell", nargs=3, metavar=("URL", "CONCURRENCY", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(run_cell(args.cell[0], int(args.cell[1]), int(args.cell[2]), args.world)))
        return

    from services import run_pywb

    latencies = [int(x) for x in args.latencies.split(",")]
    levels = [int(x) for x in args.concurrency.split(",")]
    load_before = os.getloadavg()
    rows = []
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as root, run_pywb(Path(root)) as pywb:
        base = pywb.serve(args.world / "collection", "world")
        for ms in latencies:
            port_out = ctx.Queue()
            proxy = ctx.Process(target=_serve_proxy, args=(base, ms / 1000, port_out), daemon=True)
            proxy.start()
            url = port_out.get(timeout=60)
            try:
                for c in levels:
                    n = max(args.min_requests, min(args.max_requests, args.per_thread * c))
                    env = dict(os.environ, PYTHONPATH=str(ROOT))
                    out = subprocess.run([sys.executable, __file__, "--world", str(args.world),
                                          "--cell", url, str(c), str(n)], env=env, check=True,
                                         capture_output=True, text=True).stdout
                    cell = json.loads(out.strip().splitlines()[-1])
                    rows.append({"latency_ms": ms, "concurrency": c, **cell})
                    print(f"latency {ms:4d} ms  concurrency {c:3d}: {cell['rps']:7.1f} req/s, "
                          f"{cell['cpu_ms_per_request']:6.1f} ms CPU/request, "
                          f"peak RSS {cell['peak_rss_mb']:.0f} MB  ({cell['requests']} requests)",
                          flush=True)
            finally:
                proxy.kill()
    for row in rows:
        one = next(r for r in rows if r["latency_ms"] == row["latency_ms"] and r["concurrency"] == 1)
        row["scaling_efficiency"] = row["rps"] / (row["concurrency"] * one["rps"])
    print(f"\n{'latency':>8} {'conc':>5} {'req/s':>8} {'x linear':>9} {'CPU ms/req':>11} {'RSS MB':>7}")
    for r in rows:
        print(f"{r['latency_ms']:>6}ms {r['concurrency']:>5} {r['rps']:>8.1f} "
              f"{r['scaling_efficiency']:>9.2f} {r['cpu_ms_per_request']:>11.1f} "
              f"{r['peak_rss_mb']:>7.0f}")
    out = {"benchmark": "ingest_latency",
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
           "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_latency.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
