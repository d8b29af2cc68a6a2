"""Merge + uniq vs the runbook's `zcat | jq select | sort -u`, on synthetic shard results.

    python bench/bench_merge_uniq.py [--results 400000] [--shards 4] [--repeat 3]

The runbook merged shard results with `jq 'select(.status == "success" and
.file_meta.sha1hex == .request.ext_ids.sha1) | .file_meta' -c` and removed
duplicates with `sort -u -S 4G`. The pipeline does both with rejects, reasons
and a duplicates report; ~20% of the synthetic results are duplicate sha1s.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from isal import igzip  # noqa: E402

from bench.common import bench_args, have, report, shell, timed  # noqa: E402
from pipeline.steps.merge import merge_results  # noqa: E402
from pipeline.steps.uniq import uniq_file_meta  # noqa: E402

JQ = ('select(.status == "success" and .file_meta.sha1hex == .request.ext_ids.sha1) '
      "| .file_meta")


def synthetic_results(tmp: Path, n: int, shards: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    paths = [tmp / f"bench-shard-{i:03d}-of-{shards:03d}.json.gz" for i in range(shards)]
    if all(p.exists() for p in paths):
        return paths
    sha1s = [f"{rng.getrandbits(160):040x}" for _ in range(int(n * 0.8))]
    files = [igzip.open(p, "wt", encoding="utf-8") for p in paths]
    for i in range(n):
        sha1 = sha1s[i % len(sha1s)] if i >= len(sha1s) else sha1s[i]
        status = "success" if rng.random() < 0.8 else rng.choice(["no-capture", "terminal-bad-status"])
        r = {
            "request": {"base_url": f"http://journal.example.org/{i}.pdf", "ext_ids": {"sha1": sha1},
                        "ingest_request_source": "file-backfill", "ingest_type": "pdf",
                        "link_source": "fatcat", "link_source_id": f"file_{i}"},
            "hit": status == "success", "status": status,
            "hops": [f"http://journal.example.org/{i}.pdf"],
        }
        if status == "success":
            # the same file always has the same metadata, so duplicates are identical lines
            r["file_meta"] = {"sha1hex": sha1, "sha256hex": hashlib.sha256(sha1.encode()).hexdigest(),
                              "md5hex": sha1[:32], "size_bytes": int(sha1[:6], 16), "mimetype": "application/pdf"}
            r["terminal"] = {"terminal_url": r["hops"][0], "terminal_dt": "20170706005950",
                             "terminal_status_code": 200, "terminal_sha1hex": sha1}
        files[i % shards].write(json.dumps(r) + "\n")
    for f in files:
        f.close()
    return paths


def main() -> None:
    args = bench_args(repeat=3, results=400_000, shards=4)
    tmp = args.tmp
    shards = synthetic_results(tmp, args.results, args.shards)
    merged, rej = tmp / "bench-merged.json.gz", tmp / "bench-merged-rej.json.gz"
    uniq, dupes = tmp / "bench-uniq.json.gz", tmp / "bench-dupes.json"

    def pipeline_run() -> None:
        merge_results([str(p) for p in shards], str(merged), str(rej))
        uniq_file_meta(str(merged), str(uniq), str(dupes), None)

    rows = [{"name": "pipeline merge_results + uniq_file_meta", "times": timed(pipeline_run, args.repeat)}]
    if have("jq", "pigz"):
        files = " ".join(str(p) for p in shards)
        cmd = f"zcat {files} | jq -c '{JQ}' | sort -u -S 4G | pigz > {tmp}/bench-uniq-shell.json.gz"
        rows.append({"name": "zcat | jq select | sort -u | pigz", "times": timed(shell(cmd), args.repeat)})
    report("merge_uniq", rows, baseline=rows[-1]["name"],
           extra={"results": args.results, "shards": args.shards})


if __name__ == "__main__":
    main()
