"""The embedded catalog: loading exports, lookups, fatcat's editgroup rules, dump, CLI."""

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from catalog_world import entity, hashes, ident_of, write_lines

from pipeline.catalog import open_catalog
from pipeline.catalog.base import (
    DUPLICATE_EDIT_MESSAGE,
    CatalogError,
    ConstraintViolation,
    EditgroupAlreadyAccepted,
    NotFound,
)
from pipeline.catalog.export import dump, load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.jsonio import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def cat(tmp_path):
    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(5)])
    load_export(tmp_path / "c.sqlite", export)
    c = SqliteCatalog(tmp_path / "c.sqlite")
    yield c
    c.close()


@pytest.mark.parametrize("name", ["export.json", "export.json.gz"])
def test_load_plain_or_gzip_counts_and_rejects_malformed_lines(tmp_path, name):
    good = [entity(i) for i in range(3)]
    export = write_lines(tmp_path / name, good + [{"ident": "NOT-AN-IDENT"}, entity(1),
                                                  {**entity(7), "state": "gone"}],
                         raw_lines={1: "{not json", 3: "[1, 2]"})
    report = load_export(tmp_path / "c.sqlite", export, rejects_path=tmp_path / "rej.json")
    assert (report.lines, report.loaded, report.rejected) == (8, 3, 5)
    assert dict(report.reasons) == {"invalid-json": 1, "not-an-object": 1, "bad-ident": 1,
                                    "duplicate-ident": 1, "bad-state": 1}
    rejects = [json.loads(line) for line in (tmp_path / "rej.json").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 4, 6, 7, 8]
    assert rejects[0]["raw"] == "{not json" and rejects[0]["reason"].startswith("invalid-json")
    assert rejects[3]["record"] == entity(1) and rejects[3]["source"] == str(export)
    with SqliteCatalog(tmp_path / "c.sqlite") as c:
        assert c.count_entities() == 3


def test_load_of_truncated_gzip_fails_and_leaves_no_catalog(tmp_path):
    data = gzip.compress(("\n".join(json.dumps(entity(i)) for i in range(2000)) + "\n").encode())
    export = tmp_path / "export.json.gz"
    export.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        load_export(tmp_path / "c.sqlite", export, batch=100)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.json.gz"]


def test_load_into_existing_catalog_rejects_known_idents(cat, tmp_path):
    export = write_lines(tmp_path / "more.json", [entity(4), entity(5)])
    report = load_export(cat.path, export)
    assert (report.loaded, dict(report.reasons)) == (1, {"duplicate-ident": 1})
    assert cat.count_entities() == 6


def test_lookup_returns_active_entity_with_lowest_ident(tmp_path):
    sha1 = hashes(0)["sha1"]
    ents = [entity(9, sha1=sha1), entity(3, sha1=sha1, state="deleted"), entity(5, sha1=sha1),
            entity(4, sha1=sha1, state="redirect"), entity(1)]
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "e.json", ents))
    with SqliteCatalog(tmp_path / "c.sqlite") as c:
        assert c.lookup_sha1(sha1)["ident"] == ident_of(5)
        assert c.lookup_sha1("f" * 40) is None


def test_dump_sorted_by_ident_with_absent_keys_absent(tmp_path):
    ents = [entity(3), {"ident": ident_of(1), "state": "deleted"}, entity(2, urls=None)]
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "e.json", ents))
    out = io.StringIO()
    with SqliteCatalog(tmp_path / "c.sqlite") as c:
        assert dump(c, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["ident"] for e in lines] == [ident_of(1), ident_of(2), ident_of(3)]
    assert lines[0] == {"ident": ident_of(1), "state": "deleted"}  # no revision, no nulls
    assert "urls" not in lines[1] and lines[2] == entity(3)


def test_edit_is_invisible_until_accepted_and_makes_a_new_revision(cat):
    before = cat.get_file(ident_of(2))
    eg = cat.create_editgroup("desc", {"agent": "t", "version": "1"})
    edit = cat.update_file(eg, ident_of(2), {**before, "size": 7})
    assert edit["prev_revision"] == before["revision"] and edit["revision"] != before["revision"]
    assert "size" not in cat.get_file(ident_of(2))
    cat.accept_editgroup(eg)
    after = cat.get_file(ident_of(2))
    assert after["size"] == 7 and after["revision"] == edit["revision"]
    group = cat.get_editgroup(eg)
    assert group["description"] == "desc" and group["extra"] == {"agent": "t", "version": "1"}
    assert group["changelog_index"] == 1 and [e["ident"] for e in group["edits"]["files"]] == [ident_of(2)]


def test_one_ident_twice_in_one_editgroup_is_a_constraint_violation(cat):
    eg = cat.create_editgroup("d", {})
    e = cat.get_file(ident_of(1))
    cat.update_file(eg, ident_of(1), e)
    with pytest.raises(ConstraintViolation) as err:
        cat.update_file(eg, ident_of(1), e)
    assert str(err.value) == DUPLICATE_EDIT_MESSAGE
    assert len(cat.get_editgroup(eg)["edits"]["files"]) == 1  # the failed call left nothing


def test_accepted_editgroup_cannot_be_edited_or_accepted_again(cat):
    eg = cat.create_editgroup("d", {})
    cat.update_file(eg, ident_of(1), cat.get_file(ident_of(1)))
    cat.accept_editgroup(eg)
    with pytest.raises(EditgroupAlreadyAccepted):
        cat.update_file(eg, ident_of(2), cat.get_file(ident_of(2)))
    with pytest.raises(EditgroupAlreadyAccepted):
        cat.accept_editgroup(eg)


def test_unknown_editgroup_or_ident_is_not_found(cat):
    with pytest.raises(NotFound):
        cat.update_file("a" * 26, ident_of(1), {})
    eg = cat.create_editgroup("d", {})
    with pytest.raises(NotFound):
        cat.update_file(eg, ident_of(99), {})
    assert cat.get_editgroup("b" * 26) is None and cat.get_file(ident_of(99)) is None


def test_open_catalog_seeds_missing_catalog_once(tmp_path):
    seed = write_lines(tmp_path / "seed.json", [entity(0), entity(1)], raw_lines={0: "junk"})
    c, report = open_catalog(str(tmp_path / "w" / "c.sqlite"), seed=seed)
    with c:
        assert report.loaded == 2 and report.rejected == 1
        assert Path(report.rejects_path).exists()
    c, report = open_catalog(str(tmp_path / "w" / "c.sqlite"), seed=seed)
    with c:
        assert report is None and c.count_entities() == 2
    with pytest.raises(CatalogError, match="does not exist"):
        open_catalog(str(tmp_path / "nope.sqlite"))


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "pipeline", "catalog", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_load_dump_get(tmp_path):
    export = write_lines(tmp_path / "export.json.gz", [entity(2), entity(1)], raw_lines={1: "oops"})
    db = str(tmp_path / "c.sqlite")
    r = run_cli("load", str(export), "--catalog", db)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["loaded"] == 2
    assert "1 of 3 lines rejected" in r.stderr and (tmp_path / "c.sqlite.rejects.json").exists()
    r = run_cli("dump", "--catalog", db)
    assert [json.loads(x) for x in r.stdout.splitlines()] == [entity(1), entity(2)]
    r = run_cli("get", ident_of(2), "--catalog", db)
    assert r.returncode == 0 and json.loads(r.stdout) == entity(2)
    r = run_cli("get", ident_of(3), "--catalog", db)
    assert r.returncode == 1 and "no file entity" in r.stderr
    r = run_cli("dump", "--catalog", str(tmp_path / "missing.sqlite"))
    assert r.returncode == 1 and "no catalog at" in r.stderr


def _one_by_one(cat, groups):
    """What `commit_editgroups` must equal: the per-call API, editgroup after editgroup."""
    ids = []
    for _, updates in groups:
        eg = cat.create_editgroup("d", {"agent": "t"})
        for ident, ent in updates:
            cat.update_file(eg, ident, ent)
        cat.accept_editgroup(eg)
        ids.append(eg)
    return ids


def _state(cat, idents):
    """Entities and their accepted edits, revision ids replaced by their order of appearance
    (new uuids on every run)."""
    names: dict = {}

    def name(rev):
        return names.setdefault(rev, f"r{len(names)}") if rev and not rev.startswith("0000") else rev

    out = []
    for ident in idents:
        ent = cat.get_file(ident)
        edits = [(name(e["prev_revision"]), name(e["revision"]), e["changelog_index"])
                 for e in cat.edits_of(ident)]
        out.append(({**ent, "revision": name(ent["revision"])}, edits))
    return out


def test_commit_editgroups_writes_what_the_calls_one_by_one_write(tmp_path):
    """Several editgroups in one transaction: the same entities, edits, prev_revision chain
    (one ident edited by two of the editgroups) and sha1 lookups as the per-call API."""
    export = write_lines(tmp_path / "export.json", [entity(i) for i in range(5)])
    load_export(tmp_path / "a.sqlite", export)
    load_export(tmp_path / "b.sqlite", export)
    with SqliteCatalog(tmp_path / "a.sqlite") as a, SqliteCatalog(tmp_path / "b.sqlite") as b:
        e1, e2 = a.get_file(ident_of(1)), a.get_file(ident_of(2))
        moved = hashes(42)["sha1"]  # an edit that changes the (indexed) sha1
        groups = [("a" * 26, [(ident_of(1), {**e1, "size": 7}), (ident_of(2), {**e2, "sha1": moved})]),
                  ("b" * 26, [(ident_of(1), {**e1, "size": 8, "md5": "d" * 32})])]
        made = a.commit_editgroups("d", {"agent": "t"}, groups)
        _one_by_one(b, groups)
        assert [[e["ident"] for e in edits] for edits in made] == [[ident_of(1), ident_of(2)],
                                                                  [ident_of(1)]]
        assert made[1][0]["prev_revision"] == made[0][0]["revision"]
        idents = [ident_of(i) for i in range(5)]
        assert _state(a, idents) == _state(b, idents)
        assert a.get_file(ident_of(1))["size"] == 8
        assert a.lookup_sha1(moved)["ident"] == ident_of(2)
        assert a.lookup_sha1(hashes(2)["sha1"]) is None
        assert [g["changelog_index"] for g in a.editgroups()] == [1, 2]
        # written with SQLite's own foreign key checks off, every reference holds all the
        # same, and the checks are back on for every other call
        assert a.db.execute("PRAGMA foreign_key_check").fetchall() == []
        assert a.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        with pytest.raises(NotFound):  # an unknown ident: refused before anything is written
            a.commit_editgroups("d", {}, [("c" * 26, [(ident_of(9), e1)])])
        assert a.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_commit_editgroups_is_one_transaction(tmp_path):
    """A failure in the second editgroup (an unknown ident) leaves the first one unwritten too."""
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "export.json", [entity(0)]))
    with SqliteCatalog(tmp_path / "c.sqlite") as cat:
        e0 = cat.get_file(ident_of(0))
        with pytest.raises(NotFound):
            cat.commit_editgroups("d", {}, [("a" * 26, [(ident_of(0), {**e0, "size": 7})]),
                                            ("b" * 26, [(ident_of(9), e0)])])
        assert cat.editgroups() == [] and cat.get_file(ident_of(0)) == e0
        assert cat.edits_of(ident_of(0), accepted_only=False) == []


def test_new_uuids_are_time_ordered_version_7_uuids_unique_and_ascending():
    import time
    import uuid

    from pipeline.catalog.sqlite_schema import new_uuids
    before = time.time_ns() // 1_000_000
    ids = new_uuids(2000)
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 2000 and new_uuids(0) == [] and len(new_uuids(1)) == 1
    assert ids == sorted(ids)  # ascending: appended to the end of the indexes keyed by them
    for text in ids:
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 7 and u.variant == uuid.RFC_4122
        assert before <= u.int >> 80 <= after  # the first 48 bits: the clock's milliseconds
    # every hex digit of the random part is used (the variant digit takes 8, 9, a and b)
    assert {t[19] for t in ids} == set("89ab") and {t[-1] for t in ids} == set("0123456789abcdef")
    assert {t[15] for t in ids} == set("0123456789abcdef")


def test_a_new_catalog_has_16_kib_pages_and_an_existing_one_keeps_its_own(tmp_path):
    import sqlite3

    from pipeline.catalog.sqlite import PAGE_SIZE
    load_export(tmp_path / "new.sqlite", write_lines(tmp_path / "export.json", [entity(0)]))
    with SqliteCatalog(tmp_path / "new.sqlite") as cat:
        assert cat.db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
    # a catalog made with SQLite's default pages (an older catalog) opens and edits as before
    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("PRAGMA page_size=4096")
    old.execute("CREATE TABLE t (x)")
    old.close()
    with SqliteCatalog(tmp_path / "old.sqlite") as cat:
        assert cat.db.execute("PRAGMA page_size").fetchone()[0] == 4096
        cat.insert_rows([(ident_of(1), "active", 1, None, "a" * 40, "{}")])
        eg = cat.create_editgroup("d", {})
        cat.update_file(eg, ident_of(1), {"ident": ident_of(1), "size": 3})
        cat.accept_editgroup(eg)
        assert cat.get_file(ident_of(1))["size"] == 3
