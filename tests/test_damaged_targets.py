"""Damaged targets and sidecars are never passed on: the step is made again, or refused.

One clean run of the whole pipeline on the sample world (the luigi CLI in a
subprocess, as an operator runs it), then each test damages one thing the way
it happens in practice (a shard cut short by hand but still a valid gzip, a
truncated sink file, garbage in the thumbnails zip or `report.json`, a
truncated or garbage catalog, a sidecar's counts edited, a sidecar deleted,
the import killed between its counts target and its sidecar) and reruns.
A rerun must either remake the damaged step, so that every target and the
import's counts equal the clean run's, or refuse with one line. Each test
starts from a copy of the clean run's work directory, put back at its path with
every mtime, which a rerun finds complete.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.jsonio import read_json, write_json
from pipeline.provenance import meta_path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "files_missing_sha256"
COUNTS = f"{PREFIX}.import.counts.json"
SHARD = "ingest_results/shard-001-of-002.json.gz"
SINK_TEXT = "sinks/sandcrawler-dev.pdf-text/shard-001-of-002.json.gz"
THUMBNAILS = "sinks/sandcrawler-dev.pdf-thumbnail-180px-jpg/shard-001-of-002.thumbnails.zip"

# kill the import at a point of ImportFileMeta.work (a plain SIGKILL: nothing runs after it)
KILLER = """
import os, signal, sys
import luigi.cmdline
from pipeline.tasks import catalog_import

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before-sidecar":       # counts target written, FINISHED journaled
    catalog_import.ImportFileMeta.finish = die
elif sys.argv[1] == "before-finished":    # counts target written, FINISHED not journaled
    catalog_import.record_finished = die
luigi.cmdline.luigi_run(sys.argv[2:])
"""


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return env


def _args(work: Path, world: Path) -> list[str]:
    return ["--module", "pipeline.tasks", "Backfill", "--local-scheduler",
            "--backfill-workdir", str(work),
            "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"), "--backfill-shards", "2",
            "--backfill-sample-size", "50", "--backfill-file-hashes", ""]


def run(work: Path, world: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "luigi", *_args(work, world)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=600)


def killed_run(work: Path, world: Path, point: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", KILLER, point, *_args(work, world)], cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=600)


def snapshot(work: Path) -> dict[str, bytes]:
    """Every target and companion (not sidecars, journal, catalog, locks or the report, which
    hold times or ids that differ between two correct runs)."""
    skip = (".meta.json", "report.json", "report.html", ".journal.json", ".lock")
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and not p.name.endswith(skip) and not p.name.startswith("catalog.sqlite")
            and ".locks" not in p.parts}


@pytest.fixture(scope="module")
def clean(world, tmp_path_factory):
    base = tmp_path_factory.mktemp("damaged")
    work = base / "work"
    proc = run(work, world)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = read_json(work / COUNTS)
    expected = read_json(world / "expected.json")["import"]
    assert {k: counts[k] for k in expected} == expected and counts["update"] > 1000
    for name in (SHARD, SINK_TEXT, THUMBNAILS):
        assert (work / name).stat().st_size > 1000, name
    # kept aside with every mtime: each test gets the clean run's directory back at its path
    shutil.copytree(work, base / "clean-copy", copy_function=shutil.copy2)
    return work, snapshot(work), counts


@pytest.fixture
def work(clean, world):
    """The clean run's work directory (at the path its sidecars record), as the run left it."""
    work, files, counts = clean
    shutil.rmtree(work)
    shutil.copytree(work.parent / "clean-copy", work, copy_function=shutil.copy2)
    proc = run(work, world)  # the copy is the clean run's: nothing to do
    assert proc.returncode == 0 and "Did not run any tasks" in proc.stderr, proc.stderr[-3000:]
    assert snapshot(work) == files and read_json(work / COUNTS) == counts
    return work


def assert_remade(work: Path, world: Path, clean) -> subprocess.CompletedProcess:
    """A rerun succeeds and leaves every target and the import's counts as the clean run's."""
    _, files, counts = clean
    proc = run(work, world)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Did not run any tasks" not in proc.stderr  # the damage was seen
    assert read_json(work / COUNTS) == counts
    got = snapshot(work)
    assert sorted(got) == sorted(files)
    assert [n for n in files if got[n] != files[n]] == []
    report = read_json(work / "report.json")
    assert all(c["ok"] for c in report["consistency"]), report["consistency"]
    return proc


def test_a_shard_cut_to_a_valid_gzip_of_its_first_100_lines_is_ingested_again(work, world, clean):
    with gzip.open(work / SHARD, "rt") as f:
        head = [next(f) for _ in range(100)]
    with gzip.open(work / SHARD, "wt") as f:
        f.writelines(head)
    proc = assert_remade(work, world, clean)
    assert "not as its sidecar recorded" in proc.stderr and SHARD in proc.stderr


def test_a_truncated_sink_file_is_made_again(work, world, clean):
    path = work / SINK_TEXT
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_remade(work, world, clean)


def test_a_garbage_thumbnails_zip_is_made_again(work, world, clean):
    path = work / THUMBNAILS
    path.write_bytes(b"garbage, not a zip" * (path.stat().st_size // 18))
    assert_remade(work, world, clean)


def test_a_garbage_report_is_made_again(work, world, clean):
    (work / "report.json").write_text("{not json")
    assert_remade(work, world, clean)
    assert read_json(work / "report.json")["steps"]


def test_edited_counts_in_a_sidecar_remake_the_step(work, world, clean):
    uniq = meta_path(work / f"{PREFIX}.file_meta.uniq.json.gz")
    meta = read_json(uniq)
    true_out = meta["counts"]["out"]
    meta["counts"]["out"] = true_out - 187
    write_json(uniq, meta)
    proc = assert_remade(work, world, clean)
    assert "does not match its checksum" in proc.stderr
    assert read_json(uniq)["counts"]["out"] == true_out


def test_edited_counts_of_the_import_remake_it_with_its_true_counts(work, world, clean):
    sidecar = meta_path(work / COUNTS)
    meta = read_json(sidecar)
    meta["counts"]["update"] = 974
    write_json(sidecar, meta)
    assert_remade(work, world, clean)
    assert read_json(sidecar)["counts"]["update"] == clean[2]["update"]


def test_an_edited_import_counts_target_is_made_again_with_the_true_counts(work, world, clean):
    counts = dict(clean[2], update=974)
    write_json(work / COUNTS, counts)
    assert_remade(work, world, clean)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_catalog_is_refused_with_one_line(work, world, clean, damage):
    catalog = work / "catalog.sqlite"
    good = catalog.read_bytes()
    catalog.write_bytes(good[: len(good) // 2] if damage == "truncated" else os.urandom(len(good)))
    proc = run(work, world)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "CatalogError" in line]
    assert len(lines) == 1 and "damaged" in lines[0] and "catalog.sqlite" in lines[0], \
        proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert read_json(work / COUNTS) == clean[2]  # nothing was rewritten


def test_a_deleted_import_sidecar_gives_back_the_true_counts(work, world, clean):
    meta_path(work / COUNTS).unlink()
    assert_remade(work, world, clean)


@pytest.mark.parametrize("point", ["before-sidecar", "before-finished"])
def test_import_killed_after_its_counts_target_reruns_to_the_true_counts(work, world, clean, point):
    for name in ("catalog.sqlite", f"{PREFIX}.import.journal.json", COUNTS, f"{COUNTS}.meta.json"):
        (work / name).unlink()
    killed = killed_run(work, world, point)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert read_json(work / COUNTS) == clean[2]  # the killed attempt wrote its counts target
    assert not meta_path(work / COUNTS).exists()
    assert_remade(work, world, clean)
    journal = [json.loads(line) for line in
               (work / f"{PREFIX}.import.journal.json").read_text().splitlines()]
    finished = [e for e in journal if e["event"] == "finished"]
    assert finished[-1]["counts"] == clean[2]
