"""The pipeline under a real central scheduler (luigid) with several workers.

`--local-scheduler` is for one machine; production runs many workers against
one `luigid`. This starts luigid on a free loopback port, runs the ingest
shards with two worker processes, and reads the scheduler's own API to check
every task reached DONE exactly as the local run does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services import free_port, wait_for_http

from pipeline.jsonio import read_json

ROOT = Path(__file__).resolve().parents[1]


def test_shards_run_on_two_workers_through_luigid(luigid, world, tmp_path):
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "UniqFileMeta",
         "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid.port), "--workers", "2",
         "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
         "--backfill-archive", str(world / "collection"), "--backfill-shards", "3",
         "--backfill-sample-size", "50",
         "--pdftext-enabled", "false"],  # scheduling is the subject here; PDF text costs a minute
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = luigid.tasks("DONE")
    families = sorted(t["name"] for t in done.values())
    assert families.count("IngestShard") == 3
    assert {"ExportMissingSha256", "IngestRequests", "IngestSampleResults", "MergeFileMeta",
            "UniqFileMeta"} <= set(families)
    assert luigid.tasks("FAILED") == {}
    # and the result is the one a local run gives (the oracle)
    expected = json.loads((world / "expected.json").read_text())
    uniq = read_json(work / "files_missing_sha256.file_meta.uniq.json.gz.meta.json")["counts"]
    assert uniq["out"] == expected["merge"]["uniq"]
    shard_totals = [read_json(p)["total"] for p in sorted((work / "ingest_results").glob("*.counts.json"))]
    assert shard_totals == [418, 418, 417] and sum(shard_totals) == len(expected["requests"])


def test_make_luigid_keeps_state_and_logs_under_the_given_directory(tmp_path):
    port = free_port()
    state_dir = tmp_path / "luigid"
    process = subprocess.Popen(
        ["make", "-s", "luigid", f"LUIGID_PORT={port}", f"LUIGID_DIR={state_dir}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", timeout=60,
                      process=process)
        assert (state_dir / "logs").is_dir()
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the luigid it started
        process.wait(timeout=20)
    deadline = time.monotonic() + 10
    while not (state_dir / "state.pickle").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (state_dir / "state.pickle").exists()  # luigid saved its state on the way out
