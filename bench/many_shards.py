"""Hundreds of shards through luigid: scheduling cost against a run of 4 shards.

    python bench/many_shards.py [--shards 4,256] [--workers 4] [--repeat 3] [--world data/world]
                                [--luigi-config extra.cfg --name variant]

Each run: a fresh luigid on a free loopback port, a fresh work directory, then
`luigi --module pipeline.tasks UniqFileMeta --workers 4 --backfill-shards N` on the
sample world (PDF text off: scheduling is the subject, not PDFs), timed from the
process start to the first `running   IngestShard(` line of its log and to its
exit; then the same command again (nothing to do: the no-op rerun). The table
gives the median of `--repeat` runs per shard count and the overhead of each
count against the first. The machine is usually shared: the load average before
each run is recorded with its figures (bench/results/many_shards.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIRST_SHARD = " running   IngestShard("


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_luigid(root: Path) -> tuple[subprocess.Popen, int]:
    """luigid with its state under `root`, once it answers."""
    port = free_port()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    with open(root / "luigid.log", "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("luigid")), "--port", str(port),
                                 "--address", "127.0.0.1", "--logdir", str(root / "logs"),
                                 "--state-path", str(root / "state.pickle")],
                                stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", timeout=2)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"luigid did not start: {(root / 'luigid.log').read_text()}") from None
            time.sleep(0.1)


def run_once(cmd: list[str], env: dict) -> dict:
    """Wall seconds to the first shard running (None: none ran) and to the exit."""
    t0 = time.perf_counter()
    first = None
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    tail = []
    for line in proc.stderr:
        if first is None and FIRST_SHARD in line:
            first = time.perf_counter() - t0
        tail = (tail + [line])[-40:]
    code = proc.wait()
    total = time.perf_counter() - t0
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{''.join(tail)}")
    return {"first_shard_s": first, "total_s": total}


def one_run(world: Path, shards: int, workers: int, tmp: Path, luigi_config: Path | None) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix=f"shards-{shards}-", dir=tmp))
    luigid, port = start_luigid(run_dir / "luigid")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    if luigi_config is not None:  # read after the repository's luigi.cfg: its values win
        env["LUIGI_CONFIG_PATH"] = str(luigi_config.resolve())
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "UniqFileMeta",
           "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port),
           "--workers", str(workers), "--backfill-workdir", str(run_dir / "work"),
           "--backfill-export", str(world / "file_export.json.gz"),
           "--backfill-archive", str(world / "collection"), "--backfill-shards", str(shards),
           "--pdftext-enabled", "false"]
    try:
        load = os.getloadavg()[0]
        first = run_once(cmd, env)
        noop = run_once(cmd, env)
    finally:
        luigid.terminate()
        luigid.wait(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"shards": shards, "load_before": round(load, 2), "first_shard_s": first["first_shard_s"],
            "total_s": first["total_s"], "noop_rerun_s": noop["total_s"]}


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", default="4,256", help="shard counts, the first is the baseline")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--world", type=Path, default=ROOT / "data" / "world")
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    ap.add_argument("--luigi-config", type=Path, help="extra luigi.cfg for the runs (a variant)")
    ap.add_argument("--name", default="many_shards", help="results file: bench/results/NAME.json")
    args = ap.parse_args()
    counts = [int(s) for s in args.shards.split(",")]
    runs = []
    for rep in range(args.repeat):  # alternate the counts: load drifts over minutes
        for shards in counts:
            r = one_run(args.world, shards, args.workers, args.tmp, args.luigi_config)
            print(f"run {rep + 1}/{args.repeat} shards={shards}: {json.dumps(r)}", flush=True)
            runs.append(r)
    rows = []
    for shards in counts:
        mine = [r for r in runs if r["shards"] == shards]
        rows.append({"shards": shards, "first_shard_s": median([r["first_shard_s"] for r in mine]),
                     "total_s": median([r["total_s"] for r in mine]),
                     "noop_rerun_s": median([r["noop_rerun_s"] for r in mine]),
                     "load_before": median([r["load_before"] for r in mine])})
    base = rows[0]["total_s"]
    print(f"\nUniqFileMeta through luigid, {args.workers} workers, sample world; "
          f"medians of {args.repeat} runs (shared machine: load average shown)")
    print(f"{'shards':>7} {'to 1st shard s':>15} {'run s':>8} {'overhead s':>11} "
          f"{'no-op rerun s':>14} {'load':>6}")
    for row in rows:
        row["overhead_s"] = row["total_s"] - base
        print(f"{row['shards']:7d} {row['first_shard_s']:15.2f} {row['total_s']:8.2f} "
              f"{row['overhead_s']:11.2f} {row['noop_rerun_s']:14.2f} {row['load_before']:6.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": args.name, "workers": args.workers, "repeat": args.repeat,
           "luigi_config": args.luigi_config.read_text() if args.luigi_config else None,
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "rows": rows, "runs": runs}
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
