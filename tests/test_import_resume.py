"""Exactly once across crashes: injected failures, a real SIGKILL, and the token never leaking."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catalog_world import entity, file_meta, ident_of, write_lines
from fatcat_standin import FatcatStandin

from pipeline.catalog.export import load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.importer import import_file_meta
from pipeline.importer import importer as importer_module
from pipeline.importer.journal import ACCEPTED, ImportJournal, JournalError

REPO = Path(__file__).resolve().parents[1]
TOKEN = "resume-test-token-7f3a9c0e"
N = 40  # entities to fill
COMPLETE = (40, 41)  # entities already complete


ATOMIC = ("commit_editgroup", "commit_editgroups")  # an atomic catalog's calls


class Crash(Exception):
    pass


class CrashingCatalog:
    """Delegates to a catalog and raises on the (n+1)-th call of `method` (an injected kill).

    Crashing a per-call method (`update_file`, ...) hides the embedded catalog's
    atomic editgroups (it declares `atomic_editgroups` False), so the importer
    edits call by call as it does through fatcat's API: these trials cover the
    recovery of editgroups left open. Every other declaration is the inner
    catalog's (its batched reads, its lock, no parallel streams).
    """

    def __init__(self, inner, method, n):
        self.inner, self.method, self.n, self.calls = inner, method, n, 0

    @property
    def atomic_editgroups(self):
        return self.method in ATOMIC and self.inner.atomic_editgroups

    def __getattr__(self, name):
        if name in ATOMIC and not self.atomic_editgroups:
            raise AttributeError(name)  # declared absent: never called
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def wrapped(*args, **kw):
            if self.calls >= self.n:
                raise Crash(f"killed before {name} #{self.calls + 1}")
            self.calls += 1
            return attr(*args, **kw)

        return wrapped


@pytest.fixture
def world(tmp_path):
    ents = [entity(i) for i in range(N)] + [entity(i, complete=True) for i in COMPLETE]
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "export.json", ents))
    fm = write_lines(tmp_path / "fm.json", [file_meta(i) for i in list(range(N)) + list(COMPLETE)])
    db = SqliteCatalog(tmp_path / "c.sqlite")
    yield db, fm, tmp_path / "journal.json"
    db.close()


def assert_each_filled_exactly_once(db):
    for i in range(N):
        edits = db.edits_of(ident_of(i))
        assert len(edits) == 1, (i, edits)
        assert "sha256" in db.get_file(ident_of(i))
    for i in COMPLETE:
        assert db.edits_of(ident_of(i), accepted_only=False) == []


def crash_run(db, fm, journal, method, n):
    with pytest.raises(Crash):
        import_file_meta(fm, CrashingCatalog(db, method, n), journal_path=journal, batch_size=10)


def test_killed_mid_editgroup_rerun_resumes_it(world):
    db, fm, journal = world
    crash_run(db, fm, journal, "update_file", 15)  # one editgroup accepted, 5 edits in the next
    assert sum(g["changelog_index"] is not None for g in db.editgroups()) == 1
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert result.recovery.resumed_edits == 5 and len(result.recovery.resumed) == 1
    c = result.counts
    # the run's true totals (issue: only the rerun's counters were reported): those of a clean run
    assert (c["total"], c["update"], c["skip-existing-complete"]) == (N + 2, N, 2)
    assert result.recovery.earlier_edits == 15
    assert_each_filled_exactly_once(db)
    assert ImportJournal(journal).open_editgroups(db.name) == []
    # the editgroups the run used: the killed attempt's (1), the one resumed and the rerun's
    # (3: 25 edits left); the rerun alone counted 3 of these 5
    accepted = [g["editgroup_id"] for g in db.editgroups() if g["changelog_index"] is not None]
    assert len(accepted) == 5 and result.report()["editgroups"] == 5
    assert sorted(result.editgroups) == sorted(accepted)


def test_stale_open_editgroup_is_abandoned_not_accepted(world):
    db, fm, journal = world
    crash_run(db, fm, journal, "update_file", 15)
    stale_eg = ImportJournal(journal).open_editgroups(db.name)[0]
    # someone else edits entity 12 (one of the 5 in the open editgroup) meanwhile
    other = db.create_editgroup("someone else", {})
    db.update_file(other, ident_of(12), {**db.get_file(ident_of(12)), "size": 4242})
    db.accept_editgroup(other)
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert list(result.recovery.abandoned) == [stale_eg]
    assert result.recovery.abandoned[stale_eg].startswith("stale: 1 ")
    assert db.get_editgroup(stale_eg).get("changelog_index") is None
    assert result.counts["update"] == N  # 10 by the killed attempt, N - 10 by the rerun
    assert db.get_file(ident_of(12))["size"] == 4242  # the other editor's value is kept
    for i in range(N):
        ours = [e for e in db.edits_of(ident_of(i)) if e["editgroup_id"] != other]
        assert len(ours) == 1, i


def test_killed_right_after_creating_an_editgroup_abandons_the_empty_one(world):
    db, fm, journal = world
    crash_run(db, fm, journal, "update_file", 10)  # editgroup 2 created and journaled, no edit
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert list(result.recovery.abandoned.values()) == ["empty"]
    assert result.counts["update"] == N and result.recovery.earlier_edits == 10
    assert_each_filled_exactly_once(db)


def test_atomic_editgroups_killed_in_their_commit_leave_nothing_and_rerun_redoes_them(
        world, monkeypatch):
    db, fm, journal = world
    monkeypatch.setattr(importer_module, "EDITGROUPS_PER_COMMIT", 2)
    crash_run(db, fm, journal, "commit_editgroups", 1)  # the 2nd commit (editgroups 3, 4) never happens
    assert [g["changelog_index"] is not None for g in db.editgroups()] == [True, True]
    assert sum(len(db.edits_of(ident_of(i), accepted_only=False)) for i in range(N)) == 20
    # their `created` lines are in the journal; the catalog never had them
    lost = ImportJournal(journal).open_editgroups(db.name)
    assert len(lost) == 2
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert result.recovery.abandoned == dict.fromkeys(lost, "not-found")
    assert result.recovery.resumed == []
    c = result.counts
    assert (c["total"], c["update"], c["skip-existing-complete"]) == (N + 2, N, 2)
    assert result.recovery.earlier_edits == 20
    assert all(g["changelog_index"] is not None for g in db.editgroups())
    assert_each_filled_exactly_once(db)


def test_atomic_editgroups_sees_edits_accepted_within_a_lookup_batch(world, tmp_path):
    db, _, journal = world
    # one sha1 three times, 15 records apart: after its editgroup (10 edits) is accepted,
    # the prefetched lookup is stale; the importer must see the entity as now complete
    rows = [file_meta(i) for i in range(N)]
    rows[20:20] = [file_meta(3), file_meta(3)]
    fm = write_lines(tmp_path / "dups.json", rows)
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert (result.counts["update"], result.counts["skip-existing-complete"]) == (N, 2)
    assert_each_filled_exactly_once(db)


def test_killed_between_accept_and_its_journal_line(world, monkeypatch):
    db, fm, journal = world
    real = ImportJournal.record_each

    def record_each(self, event, editgroups, *a, **kw):
        if event == ACCEPTED:  # the `accepted` lines' one append, killed after its first line
            real(self, event, editgroups[:1], *a, **kw)
            raise Crash("killed before the other journal lines")
        return real(self, event, editgroups, *a, **kw)

    monkeypatch.setattr(ImportJournal, "record_each", record_each)
    with pytest.raises(Crash):
        import_file_meta(fm, db, journal_path=journal, batch_size=10)
    monkeypatch.setattr(ImportJournal, "record_each", real)
    # the 4 editgroups were one transaction (`EDITGROUPS_PER_COMMIT`): all 4 are accepted, and
    # the kill came between the `accepted` lines of the first and the second of them
    assert [g["changelog_index"] is not None for g in db.editgroups()] == [True] * 4
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert len(result.recovery.already_accepted) == 3 and result.recovery.resumed == []
    assert result.recovery.abandoned == {}
    assert result.counts["update"] == N and result.recovery.earlier_edits == N
    assert_each_filled_exactly_once(db)


class DyingConnection:
    """The embedded catalog's SQLite connection, killed (Crash) when the changelog row of the
    second editgroup is about to be written: every other row of both editgroups (and the
    first one's changelog row, when it is written on its own) is already in the transaction."""

    def __init__(self, real):
        self.real, self.accepts = real, 0

    def _accepting(self, sql, rows):
        if sql.startswith("INSERT INTO changelog"):
            self.accepts += rows
            if self.accepts >= 2:
                raise Crash("killed inside the transaction, before the 2nd editgroup's accept")

    def execute(self, sql, *args):
        self._accepting(sql, 1)
        return self.real.execute(sql, *args)

    def executemany(self, sql, rows):
        rows = list(rows)
        self._accepting(sql, len(rows))
        return self.real.executemany(sql, rows)

    def __getattr__(self, name):
        return getattr(self.real, name)


def test_killed_inside_a_commit_between_two_of_its_editgroups_leaves_none(world):
    """A kill inside the transaction of several editgroups, after the first one's rows are
    written: the catalog has none of them (not the first alone), and the rerun fills every
    entity once."""
    db, fm, journal = world
    real = db.db
    db.db = DyingConnection(real)
    with pytest.raises(Crash):
        import_file_meta(fm, db, journal_path=journal, batch_size=10)
    db.db = real
    assert db.editgroups() == []
    assert all(db.edits_of(ident_of(i), accepted_only=False) == [] for i in range(N))
    lost = ImportJournal(journal).open_editgroups(db.name)
    assert len(lost) == 4  # one transaction: every `created` line before it
    result = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert result.recovery.abandoned == dict.fromkeys(lost, "not-found")
    assert result.counts["update"] == N and result.recovery.earlier_edits == 0
    assert_each_filled_exactly_once(db)


def test_journal_tolerates_a_torn_last_line_but_not_damage(tmp_path):
    j = ImportJournal(tmp_path / "j.json")
    j.record("created", "a" * 26, "cat")
    with open(j.path, "a") as f:
        f.write('{"event": "acc')  # cut short by a kill
    assert j.open_editgroups("cat") == ["a" * 26]
    j.record("accepted", "a" * 26, "cat")
    assert j.open_editgroups("cat") == [] and len(j.events()) == 2
    j.path.write_text('{"event": "created", "editgroup_id": "x", "catalog": "cat"}\ngarbage\n')
    with pytest.raises(JournalError, match="line 2"):
        j.events()


def test_journal_record_each_writes_the_lines_record_writes_in_one_append(tmp_path):
    one, many = ImportJournal(tmp_path / "one.json"), ImportJournal(tmp_path / "many.json")
    groups = [("a" * 26, {"edits": 3}), ("b" * 26, {"edits": 0}), ("c" * 26, {"edits": 100})]
    for eg_id, fields in groups:
        one.record("accepted", eg_id, "cat", sync=False, **fields)
    with open(many.path, "a") as f:
        f.write('{"event": "crea')  # a torn tail first: cut before the lines go on
    many.record_each("accepted", groups, "cat", sync=False)
    many.record_each("accepted", [], "cat")  # nothing to write: nothing written

    def untimed(journal):
        return [{k: v for k, v in e.items() if k != "time"} for e in journal.events()]
    assert untimed(many) == untimed(one) and len(untimed(one)) == 3
    assert many.accepted_since_finished("cat") == 103
    assert many.path.read_text().count("\n") == 3  # the torn line was cut, not kept


def test_journal_is_per_catalog(world, tmp_path):
    db, fm, journal = world
    crash_run(db, fm, journal, "update_file", 5)
    assert ImportJournal(journal).open_editgroups("/some/other/catalog.sqlite") == []
    assert len(ImportJournal(journal).open_editgroups(db.name)) == 1


# -- a real process, a real SIGKILL, a real HTTP catalog ----------------------

RUNNER = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG)\n"
    "from pipeline.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def import_cmd(api, fm, work):
    return [sys.executable, "-c", RUNNER, "--workdir", str(work), "catalog", "import", str(fm),
            "--catalog", api.url, "--journal", str(work / "journal.json"), "--batch-size", "10",
            "--counts", str(work / "counts.json")]


def accepted_in_journal(path):
    if not path.exists():
        return 0
    return path.read_text().count('"event": "accepted"')


def test_sigkill_then_rerun_edits_each_entity_once_and_never_leaks_the_token(tmp_path):
    n = 300
    ents = [entity(i) for i in range(n)] + [entity(n + i, complete=True) for i in range(20)]
    fm = write_lines(tmp_path / "fm.json.gz", [file_meta(i) for i in range(n + 30)])
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "FATCAT_API_AUTH_TOKEN": TOKEN}
    with FatcatStandin(TOKEN, ents, delay=0.002, echo_auth_in_errors=True) as api:
        api.add_fault("GET", "lookup", "503", times=2)  # retries log warnings: grep them too
        outputs = []
        proc = subprocess.Popen(import_cmd(api, fm, work), cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while accepted_in_journal(work / "journal.json") < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        outputs.append(proc.communicate(timeout=30))
        assert proc.returncode == -signal.SIGKILL
        accepted_before = sum(g["changelog_index"] is not None for g in api.editgroups())
        assert 3 <= accepted_before < n // 10
        assert not (work / "counts.json").exists()

        api.add_fault("PUT", "update_file", "drop")  # a lost answer in the rerun as well
        rerun = subprocess.run(import_cmd(api, fm, work), cwd=REPO, env=env, capture_output=True,
                               timeout=120)
        outputs.append((rerun.stdout, rerun.stderr))
        assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]

        counts = json.loads((work / "counts.json").read_text())
        assert counts["total"] == n + 30 and counts["skip-no-match"] == 10
        # the run's true totals, edits of the killed attempt included
        assert counts["update"] == n and counts["skip-existing-complete"] == 20
        for i in range(n):
            assert len(api.edits_of(ident_of(i))) == 1, i
            assert "sha256" in api.get_file(ident_of(i))
        for i in range(n, n + 20):
            assert api.edits_of(ident_of(i), accepted_only=False) == []
        # every editgroup with edits was accepted: none left behind
        assert all(g["changelog_index"] is not None for g in api.editgroups() if g["edit_count"])

        # the rerun with a wrong token fails at once with a message that does not echo it.
        # It once exited 0 (nothing left to write, the token never used); since issue 18 an
        # import that is asked to run checks the token first (`GET /auth/check`, as fatcat's
        # tools do), so a wrong one is known in seconds, not after an ingest. A luigi run whose
        # import is complete still checks nothing (its CatalogWritable is not asked).
        asked = len(api.requests)
        bad = subprocess.run(import_cmd(api, fm, work), cwd=REPO, capture_output=True, timeout=60,
                             env={**env, "FATCAT_API_AUTH_TOKEN": TOKEN + "-wrong"})
        outputs.append((bad.stdout, bad.stderr))
        assert bad.returncode == 1 and b"FATCAT_API_AUTH_TOKEN was refused" in bad.stderr
        assert [r["op"] for r in api.requests[asked:]] == ["auth_check"]  # not one lookup

        # one more entity to fill: now the wrong token must be refused
        fm2 = write_lines(tmp_path / "fm2.json", [file_meta(999)])
        api.add_entities([entity(999)])
        denied = subprocess.run(import_cmd(api, fm2, work), cwd=REPO,
                                capture_output=True, timeout=60,
                                env={**env, "FATCAT_API_AUTH_TOKEN": TOKEN + "-wrong"})
        outputs.append((denied.stdout, denied.stderr))
        assert denied.returncode == 1 and b"InvalidCredentials" in denied.stderr

    token = TOKEN.encode()
    assert any(b"retry 1/4" in err for _, err in outputs)  # the logs really were captured
    for out, err in outputs:
        assert token not in out and token not in err
    for path in work.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), path


def test_a_finished_run_over_the_same_input_gets_its_counts_back(world):
    """The import step's rerun after its run finished (sidecar lost, killed before it): the
    journal's FINISHED counts, when they fit; another input or a misfit: what this run saw."""
    from pipeline.importer import import_source, record_finished, restore_finished_run

    db, fm, journal = world
    first = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert first.counts["update"] == N
    record_finished(journal, db.name, first.counters(), source=import_source(fm))

    again = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert again.counts["update"] == 0  # what this attempt saw: nothing left to fill
    restored = restore_finished_run(again, journal, db.name, import_source(fm))
    assert restored.counters() == first.counters() and restored.recovery.earlier_edits == N

    other = write_lines(fm.parent / "other.json", [file_meta(i) for i in range(N)])
    seen = import_file_meta(other, db, journal_path=journal, batch_size=10)
    kept = restore_finished_run(seen, journal, db.name, import_source(other))
    assert kept.counts["update"] == 0 and kept.counts["skip-existing-complete"] == N  # not its run

    # the FINISHED counts do not fit what a rerun over the same input sees: left as seen
    record_finished(journal, db.name, {**first.counters(), "skip-no-match": 5}, source=import_source(fm))
    misfit = import_file_meta(fm, db, journal_path=journal, batch_size=10)
    assert restore_finished_run(misfit, journal, db.name, import_source(fm)).counts["update"] == 0
