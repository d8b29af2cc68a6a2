"""What a catalog offers is declared on `Catalog`, and the import follows the declarations.

A backend implementing only the abstract per-call methods gets a full,
correct import through the base class's defaults; a declaration (atomic
editgroups, parallel streams, a lock file) is what switches a path on, never
the mere presence of a method or the look of the catalog's name. Which path
ran is told by the calls each catalog received.
"""

import ast
import math
from collections import Counter
from pathlib import Path

import pytest
from catalog_world import entity, file_meta, ident_of, write_lines

from pipeline.catalog.base import Catalog
from pipeline.catalog.export import load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.importer import import_file_meta
from pipeline.importer.importer import LOOKUP_BATCH
from pipeline.importer.journal import ACCEPTED, ImportJournal
from pipeline.runlock import LockHeld, RunLock

N = 25  # entities to fill
COMPLETE = (30, 31)  # entities already complete
BATCH = 10  # edits per editgroup
EXPECTED = {"total": N + len(COMPLETE) + 1, "update": N, "skip-existing-complete": len(COMPLETE),
            "skip-no-match": 1, "skip": 0, "insert": 0, "exists": 0}
PER_CALL = ("lookup_sha1", "get_file", "create_editgroup", "update_file", "delete_edit",
            "open_editgroups", "accept_editgroup", "get_editgroup")


class MinimalCatalog(Catalog):
    """A backend with the abstract methods only (kept in an embedded catalog), every call
    recorded in order: it declares no optional capability."""

    def __init__(self, inner: SqliteCatalog):
        self.inner = inner
        self.name = inner.name
        self.calls: list[str] = []

    def _call(self, method, *args):
        self.calls.append(method)
        return getattr(self.inner, method)(*args)

    def lookup_sha1(self, sha1):
        return self._call("lookup_sha1", sha1)

    def get_file(self, ident):
        return self._call("get_file", ident)

    def create_editgroup(self, description, extra):
        return self._call("create_editgroup", description, extra)

    def update_file(self, editgroup_id, ident, entity):
        return self._call("update_file", editgroup_id, ident, entity)

    def delete_edit(self, editgroup_id, edit_id):
        return self._call("delete_edit", editgroup_id, edit_id)

    def open_editgroups(self, agent):
        return self._call("open_editgroups", agent)

    def accept_editgroup(self, editgroup_id):
        return self._call("accept_editgroup", editgroup_id)

    def get_editgroup(self, editgroup_id):
        return self._call("get_editgroup", editgroup_id)

    def close(self):
        self.inner.close()

    def count(self) -> Counter:
        return Counter(self.calls)


class AtomicCatalog(MinimalCatalog):
    """The same backend declaring atomic editgroups, written by the embedded catalog's."""

    atomic_editgroups = True

    def commit_editgroup(self, editgroup_id, description, extra, updates, keep=None):
        self.calls.append("commit_editgroup")
        return self.inner.commit_editgroup(editgroup_id, description, extra, updates, keep)


@pytest.fixture
def world(tmp_path):
    ents = [entity(i) for i in range(N)] + [entity(i, complete=True) for i in COMPLETE]
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "export.json", ents))
    # 99 has no entity; the records are spread so each lookup batch is one
    records = [file_meta(i) for i in [*range(N), *COMPLETE, 99]]
    fm = write_lines(tmp_path / "fm.json", records)
    assert len(records) <= LOOKUP_BATCH
    return tmp_path / "c.sqlite", fm, tmp_path / "journal.json"


def assert_filled_once(db_path):
    with SqliteCatalog(db_path) as db:
        for i in range(N):
            assert len(db.edits_of(ident_of(i))) == 1, i
            assert db.get_file(ident_of(i))["sha256"]
        for i in COMPLETE:
            assert db.edits_of(ident_of(i), accepted_only=False) == []


def test_a_catalog_declaring_nothing_is_imported_through_the_base_class_defaults(world):
    db_path, fm, journal = world
    cat = MinimalCatalog(SqliteCatalog(db_path))
    with cat:
        assert (cat.atomic_editgroups, cat.parallel_streams, cat.lock_path()) == (False, False, None)
        result = import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH)
    assert {k: result.counts[k] for k in EXPECTED} == EXPECTED
    assert_filled_once(db_path)
    editgroups = math.ceil(N / BATCH)
    calls = cat.count()
    # the call-by-call path: one editgroup created and accepted per BATCH edits, each entity
    # re-read once before its accept (the default `get_file_many`), no transaction
    assert (calls["create_editgroup"], calls["accept_editgroup"]) == (editgroups, editgroups)
    assert (calls["update_file"], calls["get_file"]) == (N, N)
    assert calls["lookup_sha1"] == N + len(COMPLETE) + 1
    assert set(calls) <= set(PER_CALL)
    # the batched lookup (the default `lookup_sha1_many`): every lookup of the batch is made
    # before its first edit, not one lookup per record between the edits
    first_write = cat.calls.index("create_editgroup")
    assert cat.calls[first_write:].count("lookup_sha1") == 0
    accepted = [e for e in ImportJournal(journal).events() if e["event"] == ACCEPTED]
    assert sum(e["edits"] for e in accepted) == N and len(accepted) == editgroups


def test_a_catalog_declaring_atomic_editgroups_writes_each_in_one_commit(world):
    db_path, fm, journal = world
    cat = AtomicCatalog(SqliteCatalog(db_path))
    with cat:
        result = import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH)
    assert {k: result.counts[k] for k in EXPECTED} == EXPECTED
    assert_filled_once(db_path)
    calls = cat.count()
    assert calls["commit_editgroup"] == math.ceil(N / BATCH)
    assert calls["create_editgroup"] == calls["update_file"] == calls["accept_editgroup"] == 0
    assert calls["get_file"] == 0  # the revision check is inside the transaction


class CallByCallSqlite(SqliteCatalog):
    """The embedded catalog declaring no atomic editgroups: it still has `commit_editgroup`
    and `commit_editgroups` methods (inherited), which the import must not take for the
    capability."""

    atomic_editgroups = False

    def __init__(self, path):
        super().__init__(path)
        self.commits = 0

    def commit_editgroup(self, *args, **kw):
        self.commits += 1
        return super().commit_editgroup(*args, **kw)

    def commit_editgroups(self, *args, **kw):
        self.commits += 1
        return super().commit_editgroups(*args, **kw)


def test_a_commit_editgroup_method_without_the_declaration_is_not_used(world):
    db_path, fm, journal = world
    with CallByCallSqlite(db_path) as cat:
        result = import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH)
        assert cat.commits == 0
    assert result.counts["update"] == N
    assert_filled_once(db_path)


class StreamOffering(MinimalCatalog):
    """Has a `for_stream` method but does not declare parallel streams."""

    def for_stream(self):
        self.calls.append("for_stream")
        return MinimalCatalog(SqliteCatalog(self.inner.path))


def test_streams_run_only_on_a_catalog_declaring_parallel_streams(world):
    db_path, fm, journal = world
    cat = StreamOffering(SqliteCatalog(db_path))
    with cat:
        result = import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH, streams=3)
    assert cat.count()["for_stream"] == 0
    assert result.counts["update"] == N
    assert cat.count()["update_file"] == N  # all of them through the one catalog
    assert_filled_once(db_path)


class Locked(MinimalCatalog):
    """Declares a lock file, under a name that looks like an API URL."""

    def __init__(self, inner, lock):
        super().__init__(inner)
        self.name, self.lock = "https://catalog.invalid/v0", lock
        self.held: list[bool] = []

    def lock_path(self):
        return str(self.lock)

    def update_file(self, editgroup_id, ident, entity):
        try:
            RunLock(self.lock, "probe").acquire().release()
            self.held.append(False)
        except LockHeld:
            self.held.append(True)
        return super().update_file(editgroup_id, ident, entity)


def test_the_declared_lock_path_is_held_for_the_import_whatever_the_name(world, tmp_path):
    db_path, fm, journal = world
    cat = Locked(SqliteCatalog(db_path), tmp_path / "declared.lock")
    with cat:
        import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH)
    assert cat.held == [True] * N
    assert not (tmp_path / "declared.lock").exists()  # released at the end


class Unlocked(MinimalCatalog):
    """Declares no lock file, under a file path for a name."""

    def update_file(self, editgroup_id, ident, entity):
        assert not (self.inner.path.parent / f"{self.inner.path.name}.lock").exists()
        return super().update_file(editgroup_id, ident, entity)


def test_no_lock_is_taken_for_a_catalog_declaring_none_whatever_the_name(world):
    db_path, fm, journal = world
    cat = Unlocked(SqliteCatalog(db_path))
    with cat:
        result = import_file_meta(fm, cat, journal_path=journal, batch_size=BATCH)
    assert result.counts["update"] == N and cat.count()["update_file"] == N


def test_the_embedded_and_api_catalogs_declare_what_they_offer(tmp_path):
    from pipeline.catalog.fatcat import FatcatCatalog

    with SqliteCatalog(tmp_path / "c.sqlite") as db:
        assert db.atomic_editgroups and not db.parallel_streams
        assert db.lock_path() == f"{db.name}.lock"
    with FatcatCatalog("http://127.0.0.1:9/v0", token="") as api:
        assert not api.atomic_editgroups and api.parallel_streams and api.lock_path() is None
        with api.for_stream() as stream:
            assert isinstance(stream, FatcatCatalog) and stream is not api


def test_the_importer_never_sniffs_a_catalog():
    """The behaviour tests above are the proof; this keeps the sniffing from coming back:
    no `hasattr`/`getattr` call and no look at whether a name is an API URL in the importer."""
    package = Path(__file__).resolve().parents[1] / "pipeline" / "importer"
    found = []
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id in ("hasattr", "getattr"):
                found.append(f"{path.name}:{node.lineno} {node.func.id}")
            if isinstance(node, ast.Name | ast.alias) and "is_api_url" in ast.unparse(node):
                found.append(f"{path.name}:{getattr(node, 'lineno', '?')} is_api_url")
    assert len(list(package.glob("*.py"))) >= 5 and found == []
