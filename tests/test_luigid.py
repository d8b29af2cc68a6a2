"""The pipeline under a real central scheduler (luigid) with several workers.

`--local-scheduler` is for one machine; production runs many workers against
one `luigid`. This starts luigid on a free loopback port, runs the ingest
shards with two worker processes, and reads the scheduler's own API to check
every task reached DONE exactly as the local run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from services import free_port, stop_process, wait_for_http

from pipeline.jsonio import read_json

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def luigid(tmp_path):
    port = free_port()
    (tmp_path / "logs").mkdir()
    luigid_bin = Path(sys.executable).with_name("luigid")
    log = open(tmp_path / "luigid.log", "wb")
    process = subprocess.Popen(
        [str(luigid_bin), "--port", str(port), "--address", "127.0.0.1",
         "--logdir", str(tmp_path / "logs"), "--state-path", str(tmp_path / "state.pickle")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/task_list?data=%7B%7D", process=process)
        yield port
    finally:
        stop_process(process)
        log.close()


def task_list(port: int, status: str) -> dict:
    query = urllib.parse.quote(json.dumps({"status": status}))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/task_list?data={query}", timeout=10) as r:
        return json.loads(r.read())["response"]


def test_shards_run_on_two_workers_through_luigid(luigid, world, tmp_path):
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "UniqFileMeta",
         "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid), "--workers", "2",
         "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
         "--backfill-archive", str(world / "collection"), "--backfill-shards", "3",
         "--backfill-sample-size", "50"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = task_list(luigid, "DONE")
    families = sorted(t["name"] for t in done.values())
    assert families.count("IngestShard") == 3
    assert {"ExportMissingSha256", "IngestRequests", "IngestSampleResults", "MergeFileMeta",
            "UniqFileMeta"} <= set(families)
    assert task_list(luigid, "FAILED") == {}
    # and the result is the one a local run gives (the oracle)
    expected = json.loads((world / "expected.json").read_text())
    uniq = read_json(work / "files_missing_sha256.file_meta.uniq.json.gz.meta.json")["counts"]
    assert uniq["out"] == expected["merge"]["uniq"]
    shard_totals = [read_json(p)["total"] for p in sorted((work / "ingest_results").glob("*.counts.json"))]
    assert shard_totals == [418, 418, 417] and sum(shard_totals) == len(expected["requests"])
