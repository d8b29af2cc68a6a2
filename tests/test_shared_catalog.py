"""Two runs sharing one embedded catalog that does not exist yet: loaded once, edited once.

The race is made exact with the pipeline's pause points (`PIPELINE_PAUSE_DIR`):
run A is held after it built the catalog from the seed and before it
publishes it; run B goes all the way meanwhile; then A is let go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from catalog_world import entity, file_meta, ident_of, write_lines

from pipeline.catalog.export import load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.pausepoint import PAUSE_ENV

ROOT = Path(__file__).resolve().parents[1]
POINT = "catalog-publish"


def _env(pause_dir: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    env.pop(PAUSE_ENV, None)
    if pause_dir is not None:
        env[PAUSE_ENV] = str(pause_dir)
    return env


def _wait_paused(proc: subprocess.Popen, pause_dir: Path) -> None:
    """Until `proc` reached the pause point (it writes a file there); fail if it ended first."""
    reached = pause_dir / f"{POINT}.reached"
    deadline = time.monotonic() + 240
    while not reached.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"run A ended (rc {proc.returncode}) before its pause point: "
                                 f"{err[-2000:]}")
        assert time.monotonic() < deadline, "run A never reached its pause point"
        time.sleep(0.05)


def _release(proc: subprocess.Popen, pause_dir: Path) -> tuple[int, str, str]:
    (pause_dir / f"{POINT}.go").write_text("")
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _import_cmd(fm: Path, cat: Path, export: Path, run: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "catalog", "import", str(fm), "--catalog", str(cat),
            "--seed", str(export), "--journal", str(run / "journal.json"),
            "--counts", str(run / "counts.json")]


def _updates(run: Path) -> int:
    counts = run / "counts.json"
    return json.loads(counts.read_text())["update"] if counts.exists() else 0


def test_two_imports_racing_on_a_missing_catalog_edit_each_entity_once(tmp_path):
    n = 30
    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(n)])
    fm = write_lines(tmp_path / "fm.json", [file_meta(i) for i in range(n)])
    cat = tmp_path / "catalog.sqlite"
    pause = tmp_path / "pause"
    pause.mkdir()
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    run_a.mkdir()
    run_b.mkdir()
    a = subprocess.Popen(_import_cmd(fm, cat, export, run_a), cwd=ROOT, env=_env(pause),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_paused(a, pause)  # A built its catalog from the seed, not yet published
        b = subprocess.run(_import_cmd(fm, cat, export, run_b), cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=120)
        rc_a, _, err_a = _release(a, pause)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    # the counts of both runs add up to the truth: each entity was updated by one of them
    assert _updates(run_a) + _updates(run_b) == n, (b.stdout, b.stderr, err_a)
    with SqliteCatalog(cat) as db:
        for i in range(n):  # no edit lost, none made twice
            assert db.get_file(ident_of(i)).get("sha256"), i
            assert len(db.edits_of(ident_of(i))) == 1, i
    # the one that lost the race was told so (another importer: exit 10), not a silent success
    assert sorted([rc_a, b.returncode]) == [0, 10], (b.stderr, err_a)
    assert "in use by" in (b.stderr + err_a) and "Traceback" not in b.stderr + err_a


def _luigi(work: Path, world: Path, cat: Path, pause_dir: Path | None = None,
           background: bool = False):
    args = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill", "--local-scheduler",
            "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"), "--backfill-catalog", str(cat),
            "--backfill-sample-size", "50"]  # the race is the import's; a short warm-up
    if background:
        return subprocess.Popen(args, cwd=ROOT, env=_env(pause_dir), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(args, cwd=ROOT, env=_env(pause_dir), capture_output=True, text=True,
                          timeout=300)


def _import_counts(work: Path) -> dict:
    return json.loads((work / "files_missing_sha256.import.counts.json").read_text())


def _edited(cat: Path) -> dict[str, int]:
    with SqliteCatalog(cat) as db:
        return {e["ident"]: len(db.edits_of(e["ident"])) for e in db.iter_entities()
                if db.edits_of(e["ident"])}


def test_two_luigi_runs_sharing_a_new_catalog(tmp_path, world):
    truth = json.loads((world / "expected.json").read_text())["import"]["update"]
    cat = tmp_path / "shared" / "catalog.sqlite"
    pause = tmp_path / "pause"
    pause.mkdir()
    work_a, work_b = tmp_path / "a", tmp_path / "b"
    a = _luigi(work_a, world, cat, pause, background=True)
    try:
        _wait_paused(a, pause)
        b = _luigi(work_b, world, cat)
        rc_a, _, err_a = _release(a, pause)
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    assert rc_a == 0, err_a[-3000:]
    b2 = _luigi(work_b, world, cat)  # B's rerun, once A is done
    assert b2.returncode == 0, b2.stderr[-3000:]

    updates = _import_counts(work_a)["update"] + _import_counts(work_b)["update"]
    assert updates == truth  # the two runs' counts sum to the truth
    edited = _edited(cat)
    assert len(edited) == truth and set(edited.values()) == {1}  # no lost edit, none twice
    # B found the catalog being loaded by A: it stopped there instead of building its own
    assert b.returncode != 0 and "in use by" in b.stderr, b.stderr[-3000:]

    for work in (work_a, work_b):  # reruns are no-ops
        again = _luigi(work, world, cat)
        assert again.returncode == 0 and "Did not run any tasks" in again.stderr, again.stderr[-2000:]


def test_import_of_a_catalog_replaced_at_its_path_is_redone(tmp_path, world):
    """What a second run's load did before: another catalog renamed over the imported one.
    The counts target describes the old catalog; a rerun must not call it done."""
    truth = json.loads((world / "expected.json").read_text())["import"]["update"]
    cat = tmp_path / "shared" / "catalog.sqlite"
    work = tmp_path / "a"
    first = _luigi(work, world, cat)
    assert first.returncode == 0, first.stderr[-3000:]
    other = tmp_path / "shared" / "other.sqlite"
    load_export(other, world / "file_export.json.gz")
    os.replace(other, cat)
    assert _edited(cat) == {}

    rerun = _luigi(work, world, cat)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Did not run any tasks" not in rerun.stderr
    assert _import_counts(work)["update"] == truth
    edited = _edited(cat)
    assert len(edited) == truth and set(edited.values()) == {1}
