"""Walking a work directory while a step removes its scratch directory does not fail.

The race, made deterministic: `os.scandir` is wrapped so that the scratch
directory `.merge-parts-*.tmp-HOST-PID-START` is removed (as the merge does when it
finishes) right between the moment its parent was listed and the moment it
is itself listed. `Path.rglob` raised FileNotFoundError there (a `make test` run
of the crash trials failed so); every walk of a directory that others modify
must leave the vanished entry out instead.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_crash_trials import _steps_done

from pipeline.fswalk import walk_names
from pipeline.jsonio import write_json
from pipeline.provenance import seal_meta
from pipeline.report import gather_report
from pipeline.runlock import sweep_temp_files
from pipeline.tempnames import host_name

SCRATCH = f".merge-parts-abc.tmp-{host_name()}-999999-1"


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A work directory with two sidecars and a merge's scratch directory that vanishes the
    moment a walk is about to list it."""
    work = tmp_path / "work"
    for name, task in (("files_missing_sha256.json.gz", "ExportMissingSha256"),
                       ("ingest_results/shard-000-of-001.json.gz", "IngestShard")):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("x\n")
        write_json(work / f"{name}.meta.json",
                   seal_meta({"task": task, "params": {}, "counts": {"in": 1, "out": 1}}))
    scratch = work / SCRATCH
    (scratch / "deeper").mkdir(parents=True)
    (scratch / f"part-0.json.gz.tmp-{host_name()}-999999-1").write_text("run\n")
    (scratch / "deeper" / "run-1.meta.json").write_text("{}")

    real = os.scandir

    def scandir(path="."):
        if isinstance(path, str | os.PathLike) and Path(path) == scratch and scratch.exists():
            shutil.rmtree(scratch)  # the merge finished and removed it, just now
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return work


def test_the_race_is_real_for_rglob(work):
    with pytest.raises(FileNotFoundError):
        list(work.rglob("*.meta.json"))


def test_walk_names_leaves_out_what_vanished(work):
    found = walk_names(work, "*.meta.json", files_only=True)
    assert [p.relative_to(work).as_posix() for p in found] == [
        "files_missing_sha256.json.gz.meta.json", "ingest_results/shard-000-of-001.json.gz.meta.json"]
    assert not (work / SCRATCH).exists()


def test_the_crash_trials_count_of_finished_steps_survives_it(work):
    assert _steps_done(work) == 2


def test_the_report_of_a_work_directory_survives_it(work):
    report = gather_report(work)
    assert [r["step"] for r in report["steps"]] == ["ExportMissingSha256", "IngestShard"]


def test_the_sweep_of_temporary_files_survives_it(work):
    assert sweep_temp_files(work, recursive=True) == []  # what it would have swept is gone
    assert (work / "files_missing_sha256.json.gz").exists()
