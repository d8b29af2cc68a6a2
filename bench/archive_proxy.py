"""What the fault proxy (tests/faultproxy.py) adds to a call, and how a bench drives it.

    python bench/archive_proxy.py [--calls 100] [--repeat 3] [--world data/world]

Starts pywb over the sample world's collection, then makes the same CDX
lookups and raw replays (PDFs under 1 MB) directly, through the proxy with an
empty plan (forwarding only: its own cost), and through it with a fixed 10 ms
`Delay` (the delay shows up whole). Each call is a fresh
connection, as the proxy makes one per call. Prints medians per call and
writes bench/results/archive_proxy.json.

The issue 17 work (retry policy, circuit breaker) runs ingests against the
proxy the same way: `FaultProxy(base)` in a `with`, a plan set, the client
pointed at `proxy.url`, and `proxy.calls` read afterwards.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from faultproxy import Delay, FaultPlan, FaultProxy, Rule  # noqa: E402
from services import run_pywb  # noqa: E402

from bench.common import bench_args, fresh_get, report  # noqa: E402


def targets(index: Path, base: str, n: int) -> list[str]:
    """CDX lookups and replays (path and query, to go after any base) of the first `n` PDF
    captures of `index` that pywb replays with a body under 1 MB."""
    out = []
    for line in index.read_text().splitlines():
        try:
            _key, ts, data = line.split(" ", 2)
            row = json.loads(data)
        except ValueError:
            continue  # the sample world damages some lines on purpose
        if row.get("status") != "200" or row.get("mime") != "application/pdf":
            continue
        replay = f"/{ts}id_/{row['url']}"
        status, size = fresh_get(base + replay)
        if status == 200 and size < 1 << 20:
            out += [f"/cdx?url={quote(row['url'], safe='')}&output=json&allowFuzzy=0", replay]
            if len(out) >= 2 * n:
                return out
    return out


def main() -> None:
    args = bench_args(repeat=3, calls=100)
    world = ROOT / "data" / "world"
    with tempfile.TemporaryDirectory() as root, run_pywb(Path(root)) as pywb:
        base = pywb.serve(world / "collection", "world")
        paths = targets(world / "collection" / "indexes" / "index.cdxj", base, args.calls)
        with FaultProxy(base) as proxy:
            variants = {"direct": (base, None), "proxy, empty plan": (proxy.url, FaultPlan()),
                        "proxy, Delay(0.010)": (proxy.url, FaultPlan([Rule(Delay(0.010))]))}
            rows = [{"name": name, "times": []} for name in variants]
            for _ in range(args.repeat):
                for row in rows:  # interleaved, so a load change hits every variant alike
                    url, plan = variants[row["name"]]
                    if plan is not None:
                        proxy.plan = plan
                    t0 = time.perf_counter()
                    for path in paths:
                        assert fresh_get(url + path)[0] == 200
                    row["times"].append((time.perf_counter() - t0) / len(paths))
            recorded = len(proxy.calls)
    out = report("archive_proxy", rows, "direct",
                 {"calls_per_run": len(paths), "recorded_by_proxy": recorded})
    direct = out["rows"][0]["median"]
    print(f"{'direct':44} {direct * 1000:.1f} ms per call")
    for row in out["rows"][1:]:
        print(f"{row['name']:44} +{(row['median'] - direct) * 1000:.1f} ms per call")


if __name__ == "__main__":
    main()
