"""Two imports from two work directories into one fatcat API: no entity gets two accepted edits.

fatcat has no lock and its accept checks nothing, so the importer checks
itself: it refuses to start while another run's editgroups hold edits, drops
an edit whose `prev_revision` is not the revision it looked up, and re-checks
an editgroup's entities just before accepting it. Each test interleaves the
two runs exactly with the stand-in's pauses (a request held until released).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from catalog_world import entity, file_meta, ident_of, write_lines
from fatcat_standin import EDITOR_ID, FatcatStandin, macaroon_token

from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.importer import import_file_meta

ROOT = Path(__file__).resolve().parents[1]
TOKEN = macaroon_token(EDITOR_ID)
N = 30
CONCURRENT = "skip-concurrent-edit"


class Run(threading.Thread):
    """One import (its own work directory and journal) in a thread: `result` or `error`."""

    def __init__(self, api: FatcatStandin, fm: Path, work: Path):
        super().__init__(daemon=True)
        self.api, self.fm, self.work = api, fm, work
        self.result = self.error = None
        work.mkdir(exist_ok=True)

    def run(self) -> None:
        try:
            with FatcatCatalog(self.api.url, token=TOKEN, backoff=0.001) as client:
                self.result = import_file_meta(self.fm, client, journal_path=self.work / "journal.json")
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    def finish(self):
        self.join(120)
        assert not self.is_alive()
        return self.result


def _world(tmp_path: Path) -> tuple[FatcatStandin, Path]:
    fm = write_lines(tmp_path / "fm.json", [file_meta(i) for i in range(N)])
    return FatcatStandin(TOKEN, [entity(i) for i in range(N)]), fm


def _wait(pause, run: Run) -> None:
    """Until `run` is held at `pause`, or has ended without reaching it."""
    deadline = time.monotonic() + 60
    while not pause.reached.is_set() and run.is_alive():
        assert time.monotonic() < deadline, "the run neither reached the pause nor ended"
        time.sleep(0.01)


def _each_edited_once(api: FatcatStandin) -> None:
    for i in range(N):
        assert len(api.edits_of(ident_of(i))) == 1, (i, api.edits_of(ident_of(i)))
        assert api.get_file(ident_of(i)).get("sha256"), i
    # nothing left open with edits in it (nothing a person could accept later by mistake)
    assert all(g["changelog_index"] is not None for g in api.editgroups() if g["edit_count"])


def test_a_run_refuses_to_start_while_another_runs_editgroup_holds_edits(tmp_path):
    api, fm = _world(tmp_path)
    with api:
        held = api.pause("POST", "accept")
        a = Run(api, fm, tmp_path / "a")
        a.start()
        held.wait_reached()  # A's editgroup holds its 30 edits, not accepted yet
        (tmp_path / "b").mkdir()
        b = subprocess.run(
            [sys.executable, "-m", "pipeline", "catalog", "import", str(fm), "--catalog", api.url,
             "--journal", str(tmp_path / "b" / "journal.json"), "--counts", str(tmp_path / "b" / "c.json")],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "FATCAT_API_AUTH_TOKEN": TOKEN},
            capture_output=True, text=True, timeout=120)
        held.release()
        result = a.finish()
        _each_edited_once(api)
        assert a.error is None and result.counts["update"] == N
        b_updates = json.loads((tmp_path / "b" / "c.json").read_text())["update"] \
            if (tmp_path / "b" / "c.json").exists() else 0
        assert b_updates == 0
        a_group = result.editgroups[0]
    # B said why, naming A's editgroup, with the "another importer" exit status
    assert b.returncode == 10, b.stderr
    assert a_group in b.stderr and "another run" in b.stderr and "Traceback" not in b.stderr
    assert TOKEN not in b.stderr + b.stdout


def test_an_edit_over_another_runs_accepted_edit_is_dropped(tmp_path):
    """B looked its entities up (a batch at a time, ahead of its writes: issue 18), then A
    edited and accepted them before B's edits: each of B's edits comes back with A's revision
    as its prev_revision and is taken out again."""
    api, fm = _world(tmp_path)
    with api:
        held = api.pause("PUT", "update_file")
        b = Run(api, fm, tmp_path / "b")
        b.start()
        held.wait_reached()  # B's editgroup exists, still empty; entity 0 looked up
        a = Run(api, fm, tmp_path / "a")
        a.start()
        a_result = a.finish()  # A runs whole meanwhile
        held.release()
        b_result = b.finish()
        _each_edited_once(api)
        assert a.error is None and b.error is None, (a.error, b.error)
        assert a_result.counts["update"] + b_result.counts["update"] == N
        # (before lookups ran ahead: 1 and N - 1 skip-existing-complete, B looked up one at a time)
        assert b_result.counts[CONCURRENT] == N
        assert b_result.counts["skip-existing-complete"] == 0
        assert b_result.editgroups == []  # nothing left for B to accept


def test_edits_of_entities_changed_before_the_accept_are_dropped(tmp_path):
    """Both runs started while the other's editgroup was still empty and both edited every
    entity; A accepted first. B's re-check before its accept finds every entity changed.

    B is held at its last edit (not at its re-check: that reads its entities a few at a time
    since issue 18, so holding one read would not hold the others)."""
    api, fm = _world(tmp_path)
    with api:
        b_put = api.pause("PUT", "update_file")
        b = Run(api, fm, tmp_path / "b")
        b.start()
        b_put.wait_reached()
        a_put = api.pause("PUT", "update_file")
        a = Run(api, fm, tmp_path / "a")
        a.start()
        a_put.wait_reached()  # both past their start checks, both editgroups empty
        b_last = api.pause("PUT", "update_file", skip=N - 2)
        b_put.release()
        _wait(b_last, b)  # B made 29 of its 30 edits
        a_put.release()
        a_result = a.finish()  # A edits, re-checks and accepts first
        b_last.release()  # B's last edit comes back over A's, its re-check finds the 29 changed
        b_result = b.finish()
        _each_edited_once(api)
        assert a.error is None and b.error is None, (a.error, b.error)
        assert a_result.counts["update"] == N and b_result.counts["update"] == 0
        assert b_result.counts[CONCURRENT] == N and b_result.editgroups == []


def test_the_embedded_catalog_applies_the_same_revision_check(tmp_path):
    """Another writer changes an entity between the import's lookup and its editgroup's
    transaction: that edit is not written, and it is counted like the API's."""
    from pipeline.catalog.export import load_export
    from pipeline.catalog.sqlite import SqliteCatalog
    from pipeline.importer import FileMetaImporter

    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(N)])
    load_export(tmp_path / "c.sqlite", export)
    other = SqliteCatalog(tmp_path / "c.sqlite")
    cat = SqliteCatalog(tmp_path / "c.sqlite")
    real = cat.commit_editgroups

    def another_writer_first(*args, **kw):
        current = other.get_file(ident_of(0))
        other.commit_editgroup("b" * 26, "another run", {}, [(ident_of(0), {**current, "size": 7})])
        return real(*args, **kw)

    cat.commit_editgroups = another_writer_first
    try:
        counts = FileMetaImporter(cat).run(file_meta(i) for i in range(N))
        assert len(cat.edits_of(ident_of(0))) == 1 and cat.get_file(ident_of(0))["size"] == 7
        assert all(len(cat.edits_of(ident_of(i))) == 1 for i in range(1, N))
        assert counts[CONCURRENT] == 1 and counts["update"] == N - 1
    finally:
        cat.close()
        other.close()
