"""Shared helpers of the benchmarks: a synthetic export, timing, the table and JSON output.

Benchmarks run a step and the shell one-liner it replaces side by side on the
same input, several times, and report medians and ratios (never one run).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from isal import igzip

RESULTS = Path(__file__).resolve().parent / "results"
B32 = "abcdefghijklmnopqrstuvwxyz234567"


def synthetic_export(path: Path, n: int, seed: int = 0) -> Path:
    """An export of `n` entities shaped like the real one; about a third lack sha256."""
    if path.exists():
        return path
    rng = random.Random(seed)
    with igzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(n):
            ident = "".join(rng.choice(B32) for _ in range(26))
            e = {
                "release_ids": ["".join(rng.choice(B32) for _ in range(26))],
                "mimetype": "application/pdf",
                "urls": [
                    {"url": f"http://journal{i % 997}.example.org/article/{i}.pdf", "rel": "web"},
                    {
                        "url": f"https://web.archive.org/web/2016{i % 10000:010d}/http://journal{i % 997}.example.org/article/{i}.pdf",
                        "rel": "webarchive",
                    },
                ],
                "sha1": f"{rng.getrandbits(160):040x}",
                "size": rng.randint(10_000, 5_000_000),
                "extra": {"shadows": {"scimag_doi": f"10.1234/{i}"}} if i % 5 == 0 else {},
                "revision": f"{rng.getrandbits(128):032x}",
                "ident": ident,
                "state": "active",
            }
            if i % 3:
                e["sha256"] = f"{rng.getrandbits(256):064x}"
                e["md5"] = f"{rng.getrandbits(128):032x}"
            f.write(json.dumps(e) + "\n")
    return path


def bench_args(repeat: int, **sizes: int) -> argparse.Namespace:
    """`--repeat`, `--tmp` (a Path; inputs are cached there between runs) and one int flag per size."""
    ap = argparse.ArgumentParser()
    for name, default in sizes.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    ap.add_argument("--repeat", type=int, default=repeat)
    ap.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    return ap.parse_args()


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def shell(cmd: str) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)

    return run


def have(*tools: str) -> bool:
    return all(shutil.which(t) for t in tools)


def report(name: str, rows: list[dict], baseline: str, extra: dict | None = None) -> dict:
    """Print a table (median, min, ratio to the baseline) and write results/<name>.json."""
    base = next(r for r in rows if r["name"] == baseline)
    base_median = statistics.median(base["times"])
    print(f"\n{name}  ({extra or ''})")
    print(f"{'variant':44} {'median s':>9} {'min s':>8} {'x ' + baseline:>14}")
    for r in rows:
        r["median"] = statistics.median(r["times"])
        r["min"] = min(r["times"])
        r["ratio_to_baseline"] = r["median"] / base_median
        print(f"{r['name']:44} {r['median']:9.3f} {r['min']:8.3f} {r['ratio_to_baseline']:14.2f}")
    out = {
        "benchmark": name,
        "baseline": baseline,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": rows,
        **(extra or {}),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def fresh_get(url: str, timeout: float = 60) -> tuple[int, int]:
    """(status, body length) of one GET on a fresh connection, body read whole: the least
    a client can do."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
        response = conn.getresponse()
        return response.status, len(response.read())
    finally:
        conn.close()


def cpu_seconds(children: bool = True) -> float:
    """CPU seconds of this process and (`children`) of its reaped children."""
    used = [resource.getrusage(resource.RUSAGE_SELF)]
    if children:
        used.append(resource.getrusage(resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in used)
