"""The whole pipeline on the sample world, as `make demo` runs it: the luigi CLI in a subprocess.

One run per module (about 5 s); the tests then read its targets, rerun it, and
damage it. The figures come from the world's own oracle (`expected.json`).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.jsonio import iter_objects, read_json

ROOT = Path(__file__).resolve().parents[1]


def luigi_run(work: Path, world: Path, *extra: str, task: str = "Backfill") -> subprocess.CompletedProcess:
    args = [
        sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task, "--local-scheduler",
        "--backfill-workdir", str(work),
        "--backfill-export", str(world / "file_export.json.gz"),
        "--backfill-archive", str(world / "collection"),
        "--backfill-file-hashes", str(world / "file_hashes.tsv.gz"),
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def cli(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--workdir", str(work), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def snapshot(work: Path) -> dict[str, int]:
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    """Task families luigi's summary lists under "ran successfully"."""
    out, names, on = proc.stderr.splitlines(), set(), False
    for line in out:
        if "ran successfully:" in line:
            on = True
        elif on and line.strip().startswith("- "):
            names.add(line.strip()[2:].split(" ", 1)[1].split("(")[0])
        elif on and not line.startswith("    "):
            on = False
    return names


@pytest.fixture(scope="module")
def demo(world, tmp_path_factory):
    work = tmp_path_factory.mktemp("demo") / "work"
    proc = luigi_run(work, world)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc, json.loads((world / "expected.json").read_text())


def test_every_step_ran_and_counts_match_the_oracle(demo):
    work, proc, expected = demo
    assert {"ExportMissingSha256", "IngestRequests", "IngestShard", "MergeFileMeta",
            "UniqFileMeta", "ImportFileMeta", "CountMissingSha256"} <= ran(proc)
    export = read_json(work / "files_missing_sha256.json.gz.meta.json")["counts"]
    assert export["out"] == expected["export"]["missing_sha256"]
    assert export["rejects"] == len(expected["export"]["bad_lines"])
    merged = read_json(work / "files_missing_sha256.file_meta.json.gz.meta.json")["counts"]
    assert merged["out"] == expected["merge"]["file_meta"]
    assert merged["rejects_by_reason"]["sha1-mismatch"] == expected["merge"]["sha1_mismatch"]
    uniq = read_json(work / "files_missing_sha256.file_meta.uniq.json.gz.meta.json")["counts"]
    assert uniq["out"] == expected["merge"]["uniq"]
    assert uniq["duplicate_lines"] == expected["merge"]["duplicate_lines"]
    counts = read_json(work / "files_missing_sha256.import.counts.json")
    flat = counts.get("counts", counts)
    for key, value in expected["import"].items():
        assert flat[key] == value, key
    check = read_json(work / "files_missing_sha256.count_check.json")
    assert check["match"] is True
    # the runbook's counter lines are in the log
    assert "Worker: Counter({" in proc.stderr and "ImportFileMeta: Counter({" in proc.stderr


def test_shard_statuses_add_up_to_the_oracle(demo):
    work, _, expected = demo
    total: dict[str, int] = {}
    for counts_file in sorted((work / "ingest_results").glob("shard-*-of-004.counts.json")):
        for status, n in read_json(counts_file).items():
            total[status] = total.get(status, 0) + n
    assert total.pop("total") == len(expected["requests"])
    assert total == expected["counts"]


def test_catalog_dump_shows_the_filled_fields(demo, world):
    work, _, _ = demo
    dump = cli(work, "catalog", "dump", "--catalog", str(work / "catalog.sqlite"))
    assert dump.returncode == 0, dump.stderr
    after = {e["ident"]: e for e in map(json.loads, dump.stdout.splitlines())}
    before = {o["ident"]: o for _, o in iter_objects(world / "file_export.json.gz") if isinstance(o, dict)}
    uniq = {r["sha1hex"]: r for _, r in iter_objects(work / "files_missing_sha256.file_meta.uniq.json.gz")}
    # per sha1, the entity the lookup returns: the active one with the lowest ident
    chosen: dict[str, str] = {}
    for ident in sorted(before):
        e = before[ident]
        if e.get("state", "active") == "active" and e.get("sha1") in uniq:  # absent state = active
            chosen.setdefault(e["sha1"], ident)
    assert len(chosen) > 1000
    fields = {"sha256": "sha256hex", "md5": "md5hex", "size": "size_bytes", "mimetype": "mimetype"}
    for sha1, ident in chosen.items():
        old, new = before[ident], after[ident]
        for field, fm_key in fields.items():
            if old.get(field) not in (None, ""):
                assert new[field] == old[field], (ident, field)  # never overwritten
            else:
                assert new[field] == uniq[sha1][fm_key], (ident, field)  # filled
    # entities nobody looked up are untouched
    untouched = set(before) - set(chosen.values())
    assert all(after[i].get("sha256") == before[i].get("sha256") for i in untouched)


def test_rerun_runs_nothing_and_changes_no_file(demo, world):
    work, _, _ = demo
    before = snapshot(work)
    proc = luigi_run(work, world)
    assert proc.returncode == 0
    assert "Did not run any tasks" in proc.stderr
    assert snapshot(work) == before


def test_deleted_shard_reruns_it_and_only_what_depends_on_it(demo, world):
    work, _, _ = demo
    shard = work / "ingest_results" / "shard-001-of-004.json.gz"
    original = shard.read_bytes()
    sink_files = sorted((work / "sinks").glob("*/shard-001-of-004.*"))
    assert len(sink_files) == 3
    sink_bytes = [p.read_bytes() for p in sink_files]
    before = snapshot(work)
    shard.unlink()
    proc = luigi_run(work, world)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # luigi schedules the shard and everything downstream of it, nothing upstream
    assert ran(proc) == {"IngestShard", "IngestResults", "IngestRetry", "MergeFileMeta", "UniqFileMeta",
                         "ImportFileMeta", "BackfillReport", "Backfill"}
    run = f"run_dir={work}"
    assert f"IngestShard({run}, shard=1, shards=4)" in proc.stderr
    assert f"IngestShard({run}, shard=0, shards=4)" not in proc.stderr.split("ran successfully")[1]
    # the shard is ingested again into the same bytes, so the steps after it keep their
    # targets: no second import, no file rewritten but the shard, its own sidecars and the
    # file sinks written with it (byte-identical again)
    assert shard.read_bytes() == original
    after = snapshot(work)
    changed = {name for name in after if after[name] != before.get(name)}
    sinks = {f"sinks/sandcrawler-dev.{topic}/shard-001-of-004.{ext}" for topic, ext in (
        ("grobid-output-pg", "json.gz"), ("pdf-text", "json.gz"),
        ("pdf-thumbnail-180px-jpg", "thumbnails.zip"))}
    assert changed == {"ingest_results/shard-001-of-004.json.gz",
                       "ingest_results/shard-001-of-004.json.gz.meta.json",
                       "ingest_results/shard-001-of-004.counts.json", *sinks}
    assert [p.read_bytes() for p in sink_files] == sink_bytes
    for step in ("MergeFileMeta", "UniqFileMeta", "ImportFileMeta", "BackfillReport"):
        assert f"{step}({run}): inputs have the same content as before; target kept" in proc.stderr


def test_counter_cli_prints_the_runbook_lines(demo):
    work, _, expected = demo
    shards = cli(work, "counter", "IngestShard")
    assert shards.returncode == 0, shards.stderr
    lines = shards.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"IngestShard(shard={i}, shards=4)" for i in range(4)]
    totals = [int(line.split("'total': ")[1].split(",")[0]) for line in lines]
    assert sum(totals) == len(expected["requests"])
    imp = cli(work, "counter", "ImportFileMeta")
    assert imp.stdout.startswith("ImportFileMeta: Counter({")
    printed = ast.literal_eval(imp.stdout.strip()[len("ImportFileMeta: Counter("):-1])
    assert printed == read_json(work / "files_missing_sha256.import.counts.json")
    # the oracle's import counters, and zero for the always-present ones it does not name
    assert printed == {"skip": 0, "insert": 0, "exists": 0, "update": 0} | expected["import"]
    assert cli(work, "counter", "NoSuchStep").returncode == 2
