"""Crash trials: SIGKILL the whole pipeline at seeded random points, rerun, compare with a clean run.

Each work directory gets two trials. First `luigi ... Backfill` on the sample
world is killed with SIGKILL (no cleanup of any kind runs) at a random point
of the whole run (a random time after the k-th step finished, k random, so the
point does not depend on the machine's speed), and rerun to the end. Then the import's outputs are removed
(catalog, journal, counts target), the pipeline is started again and killed
inside the import, after a random number of journal events (between creating
an editgroup and accepting it, or right after an accept), and rerun. After
each rerun every target must have the bytes of the clean run's, the counts
target the clean run's totals, the catalog the clean run's entities, no
entity may have two accepted edits, and no temporary file may be left. Work
directories run two at a time (CI has two cores); the seed makes the kill
points reproducible (`CRASH_SEED=N` tries others).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pipeline.fswalk import walk_names
from pipeline.jsonio import read_json

pytestmark = pytest.mark.crash_trials

ROOT = Path(__file__).resolve().parents[1]
SEED = int(os.environ.get("CRASH_SEED", "2026"))
WORKDIRS = 6  # two trials each: 12 kills
JOURNAL = "files_missing_sha256.import.journal.json"
# files that differ between two correct runs by design (times, ids, run bookkeeping)
NOT_COMPARED = (".meta.json", "report.json", "report.html", JOURNAL, "archive_index_order.json",
                ".lock")


def _args(work: Path, world: Path) -> list[str]:
    return [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
            "--local-scheduler", "--backfill-workdir", str(work),
            "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"),
            "--backfill-file-hashes", str(world / "file_hashes.tsv.gz"),
            # every step still runs (and can be killed); a 50-request warm-up instead of the
            # default 1000 takes ~2 s off each of the 25 runs
            "--backfill-sample-size", "50"]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return env


def _run(work: Path, world: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_args(work, world), cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)


def _journal_events(work: Path) -> int:
    try:
        return (work / JOURNAL).read_bytes().count(b"\n")
    except OSError:
        return 0


def _steps_done(work: Path) -> int:
    # walked while the pipeline runs: a scratch directory (`.merge-parts-*.tmp-PID`) can vanish
    # mid-walk, which `Path.rglob` reports as FileNotFoundError; `walk_names` skips it
    return len(walk_names(work, "*.meta.json", files_only=True))


def _killed_run(work: Path, world: Path, *, after_steps: tuple[int, float] | None = None,
                after_events: int | None = None) -> str:
    """Start the pipeline and SIGKILL it at the given point; what happened, for the record."""
    proc = subprocess.Popen(_args(work, world), cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    t0 = time.monotonic()
    reached = None
    while proc.poll() is None:
        if after_steps is not None:
            if reached is None and _steps_done(work) >= after_steps[0]:
                reached = time.monotonic()
            if reached is not None and time.monotonic() - reached >= after_steps[1]:
                break
        if after_events is not None and _journal_events(work) >= after_events:
            break
        time.sleep(0.002)
    if proc.poll() is not None:
        return "finished before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)  # the luigi process and any worker it forked
    proc.wait()
    return (f"killed at {time.monotonic() - t0:.2f}s, {_steps_done(work)} steps done, "
            f"{_journal_events(work)} journal events")


def _targets(work: Path) -> dict[str, bytes]:
    return {str(p.relative_to(work)): p.read_bytes() for p in sorted(work.rglob("*"))
            if p.is_file() and not p.name.endswith(NOT_COMPARED) and not p.name.startswith("catalog.sqlite")
            and ".locks" not in p.parts}


def _catalog(work: Path) -> tuple[dict, list]:
    """The entities without their revision ids (new uuids on every run), and idents with more
    than one accepted edit."""
    db = sqlite3.connect(work / "catalog.sqlite")
    try:
        entities = {ident: (state, body) for ident, state, body in
                    db.execute("SELECT ident, state, body FROM file_ident")}
        twice = db.execute(
            "SELECT e.ident, count(*) FROM file_edit e JOIN changelog c USING (editgroup_id) "
            "GROUP BY e.ident HAVING count(*) > 1").fetchall()
    finally:
        db.close()
    return entities, twice


@pytest.fixture(scope="module")
def clean(tmp_path_factory, world):
    work = tmp_path_factory.mktemp("clean") / "work"
    t0 = time.monotonic()
    proc = _run(work, world)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, time.monotonic() - t0


def _import_outputs(work: Path) -> list[Path]:
    return [p for p in work.iterdir() if p.name.startswith(("catalog.sqlite", JOURNAL,
                                                             "files_missing_sha256.import.counts"))]


def _check(trial: dict, want_targets: dict, want_entities: dict) -> None:
    work = trial["work"]
    assert trial["rc"] == 0, f"trial {trial['trial']} rerun failed:\n{trial['stderr'][-3000:]}"
    assert "Traceback" not in trial["stderr"]
    got = _targets(work)
    assert sorted(got) == sorted(want_targets), f"trial {trial['trial']}: files differ"
    for name, data in want_targets.items():
        assert got[name] == data, f"trial {trial['trial']} ({trial['what']}): {name} differs"
    entities, twice = _catalog(work)
    assert twice == [], f"trial {trial['trial']}: entities edited twice: {twice[:5]}"
    assert entities == want_entities, f"trial {trial['trial']}: catalog differs"
    assert not list(work.rglob("*.tmp-*")), f"trial {trial['trial']}: temporary files left"


def _workdir_trials(i: int, whole_at: tuple[int, float], import_at: int, base: Path, world: Path,
                    want_targets: dict, want_entities: dict) -> list[dict]:
    work = base / f"trials-{i:02d}"
    trials = []
    what = _killed_run(work, world, after_steps=whole_at)
    proc = _run(work, world)
    trials.append({"trial": 2 * i, "kind": "whole", "point": whole_at[0] + whole_at[1], "what": what,
                   "work": work,
                   "rc": proc.returncode, "stderr": proc.stderr})
    _check(trials[-1], want_targets, want_entities)
    for p in _import_outputs(work):
        p.unlink()
    what = _killed_run(work, world, after_events=import_at)
    proc = _run(work, world)
    trials.append({"trial": 2 * i + 1, "kind": "import", "point": import_at, "what": what,
                   "work": work, "rc": proc.returncode, "stderr": proc.stderr})
    _check(trials[-1], want_targets, want_entities)
    return trials


def test_sigkill_anywhere_then_rerun_gives_the_clean_run(clean, world, tmp_path):
    clean_work, _ = clean
    want_targets = _targets(clean_work)
    want_entities, twice = _catalog(clean_work)
    assert not twice
    want_counts = read_json(clean_work / "files_missing_sha256.import.counts.json")
    assert want_counts["update"] > 1000
    editgroups = 2 * -(-want_counts["update"] // 100)  # created + accepted events of a clean run

    rng = random.Random(SEED)
    steps = _steps_done(clean_work)
    plan = [(i, (rng.randint(0, steps - 2), rng.uniform(0, 0.5)), rng.randint(1, editgroups - 1))
            for i in range(WORKDIRS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda a: _workdir_trials(*a, tmp_path, world, want_targets, want_entities),
                        plan)
        trials = [t for ts in runs for t in ts]

    killed = [t for t in trials if t["what"].startswith("killed")]
    summary = "\n".join(f"{t['trial']:2d} {t['kind']:6s} {t['point']:7.2f} {t['what']}" for t in trials)
    print(f"crash trials (seed {SEED}):\n{summary}")
    assert len(trials) == 2 * WORKDIRS
    assert len(killed) >= 10, summary
    assert sum(t["kind"] == "import" for t in killed) >= 4, summary
