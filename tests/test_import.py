"""The file_meta import (docs/delivery.md) on both catalog backends: counters, fills, editgroups."""

import json

import pytest
from catalog_world import entity, file_meta, hashes, ident_of, write_lines
from fatcat_standin import FatcatStandin

from pipeline.catalog.export import load_export
from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.importer import (
    AGENT,
    DEFAULT_DESCRIPTION,
    FileMetaImporter,
    import_file_meta,
    new_counter,
    want_reason,
)
from pipeline.jsonio import InputError

TOKEN = "import-test-token-QQQ"


def counter_world():
    """Entities and file_meta records giving every counter case once or more."""
    entities = [
        entity(0),                                                    # update
        entity(1, complete=True),                                     # skip-existing-complete
        entity(6, md5="d" * 32, mimetype="", sha256=""),              # update, md5 kept
        entity(7, urls=[{"url": "http://h/7.pdf", "rel": "social"},
                        {"url": "https://h/7.pdf", "rel": "web"},
                        {"url": "https://h/7.pdf", "rel": "web"},
                        {"url": "https://w/7.pdf", "rel": "social"},
                        {"url": "https://w/7.pdf", "rel": "academicsocial"}]),  # update, urls cleaned
        entity(8, state="deleted"),                                   # only active entities match
    ]
    records = [
        file_meta(0),
        file_meta(1),
        file_meta(2),                       # no entity: skip-no-match
        file_meta(3, sha256hex=""),         # skip-missing-field
        {k: v for k, v in file_meta(4).items() if k != "md5hex"},   # skip-missing-field
        file_meta(5, sha1hex=hashes(5)["sha1"].upper()),             # skip-malformed-field
        file_meta(6),
        file_meta(7),
        file_meta(8),                       # deleted entity: skip-no-match
    ]
    return entities, records


EXPECTED = {"total": 9, "update": 3, "skip-existing-complete": 1, "skip-no-match": 2, "skip": 3,
            "skip-missing-field": 2, "skip-malformed-field": 1, "insert": 0, "exists": 0}


@pytest.fixture(params=["sqlite", "fatcat"])
def backend(request, tmp_path):
    """A function building (catalog the importer uses, the SQLite catalog holding the state)."""
    stack = []

    def make(entities):
        load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "export.json", entities))
        db = SqliteCatalog(tmp_path / "c.sqlite")
        stack.append(db)
        if request.param == "sqlite":
            return db, db
        api = FatcatStandin(TOKEN, entities).__enter__()  # its own store, not the SQLite one
        stack.append(api)
        client = FatcatCatalog(api.url, token=TOKEN, backoff=0.001)
        stack.append(client)
        return client, api

    yield make
    for item in reversed(stack):
        if isinstance(item, FatcatStandin):
            item.__exit__(None, None, None)
        else:
            item.close()


def test_every_counter_case(backend):
    entities, records = counter_world()
    cat, db = backend(entities)
    counts = FileMetaImporter(cat).run(records)
    assert dict(counts) == EXPECTED

    e0 = db.get_file(ident_of(0))
    h = hashes(0)
    assert (e0["sha256"], e0["md5"], e0["size"], e0["mimetype"]) == (h["sha256"], h["md5"], h["size"], "application/pdf")
    assert db.get_file(ident_of(1)) == entity(1, complete=True)  # untouched, same revision
    assert "sha256" not in db.get_file(ident_of(8))


def test_fields_never_overwritten_and_empty_strings_filled(backend):
    entities, records = counter_world()
    cat, db = backend(entities)
    FileMetaImporter(cat).run(records)
    e6 = db.get_file(ident_of(6))
    assert e6["md5"] == "d" * 32  # present: kept although file_meta says otherwise
    assert e6["sha256"] == hashes(6)["sha256"] and e6["mimetype"] == "application/pdf"
    assert e6["release_ids"] == entity(6)["release_ids"] and e6["sha1"] == hashes(6)["sha1"]


def test_url_cleanups_applied_in_order(backend):
    entities, records = counter_world()
    cat, db = backend(entities)
    FileMetaImporter(cat).run(records)
    assert db.get_file(ident_of(7))["urls"] == [
        {"url": "https://h/7.pdf", "rel": "web"},
        {"url": "https://w/7.pdf", "rel": "academicsocial"},
    ]


def test_second_import_changes_nothing(backend):
    entities, records = counter_world()
    cat, db = backend(entities)
    FileMetaImporter(cat).run(records)
    before = list(db.iter_entities())
    again = FileMetaImporter(cat).run(records)
    assert again["update"] == 0 and again["skip-existing-complete"] == 4
    assert again["total"] == 9 and again["skip"] == 3 and again["skip-no-match"] == 2
    assert list(db.iter_entities()) == before
    assert len(db.editgroups()) == 1


def test_editgroups_of_at_most_batch_size_with_description_and_extra(backend):
    cat, db = backend([entity(i) for i in range(25)])
    imp = FileMetaImporter(cat, batch_size=10, description="a test backfill")
    counts = imp.run([file_meta(i) for i in range(25)])
    assert counts["update"] == 25
    groups = db.editgroups()
    assert [g["edit_count"] for g in groups] == [10, 10, 5]
    assert all(g["changelog_index"] is not None for g in groups)
    assert imp.editgroups == [g["editgroup_id"] for g in groups]
    eg = db.get_editgroup(groups[0]["editgroup_id"])
    assert eg["description"] == "a test backfill"
    assert eg["extra"]["agent"] == AGENT and eg["extra"]["version"]


def test_default_description_and_batch_of_100(backend):
    cat, db = backend([entity(i) for i in range(205)])
    FileMetaImporter(cat).run([file_meta(i) for i in range(205)])
    groups = db.editgroups()
    assert [g["edit_count"] for g in groups] == [100, 100, 5]
    assert db.get_editgroup(groups[2]["editgroup_id"])["description"] == DEFAULT_DESCRIPTION


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_same_sha1_twice_edits_the_entity_once(backend, batch_size):
    cat, db = backend([entity(0), entity(1)])
    records = [file_meta(0), file_meta(1), file_meta(0, mimetype="application/x-pdf")]
    counts = FileMetaImporter(cat, batch_size=batch_size).run(records)
    assert counts["update"] == 2 and counts["skip-existing-complete"] == 1
    assert len(db.edits_of(ident_of(0), accepted_only=False)) == 1
    assert db.get_file(ident_of(0))["mimetype"] == "application/pdf"  # the first one won


def test_dry_run_counts_like_a_real_run_and_writes_nothing(backend, tmp_path):
    entities, records = counter_world()
    cat, db = backend(entities)
    records = records + [file_meta(0)]  # a duplicate sha1: the dry run must see its own "edit"
    fm = write_lines(tmp_path / "fm.json", records)
    dry = import_file_meta(fm, cat, journal_path=tmp_path / "journal.json", dry_run=True)
    assert db.editgroups() == [] and not (tmp_path / "journal.json").exists()
    assert list(db.iter_entities())[0] == entity(0)
    real = import_file_meta(fm, cat, journal_path=tmp_path / "journal.json")
    assert dict(dry.counts) == dict(real.counts)
    assert real.counts["skip-existing-complete"] == 2 and dry.dry_run and not real.dry_run


def test_counter_line_reads_like_the_runbook(backend):
    cat, _ = backend([entity(0), entity(1), entity(2, complete=True)])
    counts = FileMetaImporter(cat).run([file_meta(0), file_meta(1), file_meta(2)])
    assert repr(counts) == ("Counter({'total': 3, 'update': 2, 'skip-existing-complete': 1, "
                            "'skip': 0, 'insert': 0, 'exists': 0})")
    assert repr(new_counter()) == "Counter({'total': 0, 'skip': 0, 'insert': 0, 'update': 0, 'exists': 0})"


def test_malformed_input_line_stops_before_any_write(backend, tmp_path):
    cat, db = backend([entity(0)])
    fm = write_lines(tmp_path / "fm.json.gz", [file_meta(0)], raw_lines={1: '"just a string"'})
    with pytest.raises(InputError, match="line 2: not-an-object"):
        import_file_meta(fm, cat, journal_path=tmp_path / "j.json")
    assert db.editgroups() == [] and "sha256" not in db.get_file(ident_of(0))


@pytest.mark.parametrize("row,reason", [
    (file_meta(0), None),
    (file_meta(0, mimetype=""), "skip-missing-field"),
    (file_meta(0, size_bytes=None), "skip-missing-field"),
    (file_meta(0, size_bytes=0), "skip-missing-field"),
    (file_meta(0, size_bytes="12"), "skip-malformed-field"),
    (file_meta(0, size_bytes=True), "skip-malformed-field"),
    (file_meta(0, md5hex="z" * 32), "skip-malformed-field"),
    (file_meta(0, sha256hex="a" * 63), "skip-malformed-field"),
    (file_meta(0, mimetype="PDF"), "skip-malformed-field"),
])
def test_want(row, reason):
    assert want_reason(row) == reason


def test_batch_size_beyond_fatcat_editgroup_size_refused(tmp_path):
    with SqliteCatalog(tmp_path / "c.sqlite") as db:
        for bad in (0, 101):
            with pytest.raises(ValueError, match="batch_size"):
                FileMetaImporter(db, batch_size=bad)


def test_counts_json_shape(tmp_path):
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "e.json", [entity(0)]))
    fm = write_lines(tmp_path / "fm.json", [file_meta(0), file_meta(9)])
    with SqliteCatalog(tmp_path / "c.sqlite") as db:
        result = import_file_meta(fm, db, journal_path=tmp_path / "j.json")
    assert result.counters() == {"total": 2, "update": 1, "skip-no-match": 1, "skip": 0,
                                 "insert": 0, "exists": 0}
    report = json.loads(json.dumps(result.report()))
    assert report["editgroups"] == 1 and report["recovery"]["resumed"] == []
    assert report["update"] == 1 and report["dry_run"] is False


def test_an_api_entity_with_a_malformed_url_list_is_one_skipped_record():
    """An API catalog can hand over what the export filter and the catalog load reject: each
    such entity is one `skip-bad-entity` (left untouched), never a failed run, and the
    counters still add up."""
    good = {"url": "http://example.org/x.pdf", "rel": "web"}
    odd = {1: [good, 5], 2: [good, "http://example.org/y.pdf"], 3: [good, None],
           4: [good, {"url": ["http://example.org/z"], "rel": "web"}],
           5: [good, {"url": "http://example.org/z", "rel": ["web"]}],
           6: [{"url": "http://example.org/z.pdf"}],  # no rel: fatcat would refuse the edit
           7: "http://example.org/y.pdf"}
    entities = [entity(0)] + [entity(i, urls=u) for i, u in odd.items()] + [entity(8)]
    with FatcatStandin(TOKEN, entities) as api, \
            FatcatCatalog(api.url, token=TOKEN, backoff=0.001) as cat:
        counts = FileMetaImporter(cat).run([file_meta(i) for i in range(9)])
        assert dict(counts) == {"total": 9, "update": 2, "skip-bad-entity": len(odd), "skip": 0,
                                "insert": 0, "exists": 0}
        for i in odd:
            assert api.get_file(ident_of(i)) == entity(i, urls=odd[i])  # untouched
        assert api.get_file(ident_of(8))["sha256"] == hashes(8)["sha256"]


def fatcat_file_meta_importer(existing: dict, fm: dict) -> tuple[str, dict]:
    """What fatcat's own FileMetaImporter (python/fatcat_tools/importers/file_meta.py) does to
    one looked-up entity, restated field for field: `complete` is a truthiness test of the
    four fields, and each field is filled with `existing.x or fe.x`. The project's code is
    not used here, so the test compares the import with fatcat's rule, not with itself."""
    if existing.get("md5") and existing.get("sha256") and existing.get("size") and existing.get("mimetype"):
        return "skip-existing-complete", existing
    out = dict(existing)
    out["md5"] = existing.get("md5") or fm["md5hex"]
    out["sha256"] = existing.get("sha256") or fm["sha256hex"]
    out["size"] = existing.get("size") or fm["size_bytes"]
    out["mimetype"] = existing.get("mimetype") or fm["mimetype"]
    return "update", out


def test_size_zero_and_empty_fields_are_missing_as_in_fatcat(backend):
    """fatcat fills an existing `size: 0` (and empty md5/sha256/mimetype); the entity is then an
    update, URLs cleaned as fatcat's `generic_file_cleanups` does."""
    h = hashes(20)
    complete_but_size_0 = entity(20, sha256=h["sha256"], md5=h["md5"], size=0, mimetype="application/pdf",
                                 urls=[{"url": "http://h/20.pdf", "rel": "web"},
                                       {"url": "https://h/20.pdf", "rel": "web"}])
    empty_mimetype = entity(21, sha256=hashes(21)["sha256"], md5="", size=7, mimetype="")
    cat, db = backend([complete_but_size_0, empty_mimetype])
    counts = FileMetaImporter(cat).run([file_meta(20), file_meta(21)])
    assert (counts["update"], counts["skip-existing-complete"]) == (2, 0)
    for i, before in ((20, complete_but_size_0), (21, empty_mimetype)):
        kind, want = fatcat_file_meta_importer(before, file_meta(i))
        assert kind == "update"
        got = db.get_file(ident_of(i))
        for field in ("md5", "sha256", "size", "mimetype"):
            assert got[field] == want[field], (i, field)
    assert db.get_file(ident_of(20))["size"] == h["size"]
    assert db.get_file(ident_of(21))["size"] == 7  # a present size is kept
    assert db.get_file(ident_of(20))["urls"] == [{"url": "https://h/20.pdf", "rel": "web"}]


def _want_reason_reference(row):
    """The rules of docs/delivery.md as first written (a loop over the fields): the oracle."""
    from pipeline.importer.records import MIMETYPE_RE
    from pipeline.records import FILE_META_FIELDS, HEX_LENGTHS
    if any(not row.get(k) for k in FILE_META_FIELDS):
        return "skip-missing-field"
    for key, length in HEX_LENGTHS.items():
        value = row[key]
        if not isinstance(value, str) or len(value) != length or value.strip("0123456789abcdef"):
            return "skip-malformed-field"
    size = row["size_bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return "skip-malformed-field"
    if not isinstance(row["mimetype"], str) or not MIMETYPE_RE.match(row["mimetype"]):
        return "skip-malformed-field"
    return None


def test_want_reason_gives_the_reference_verdict_on_odd_records():
    import random
    rnd = random.Random(20)
    values = {
        "sha1hex": ["a" * 40, "A" * 40, "a" * 39, "g" * 40, "", None, 0, 12, ["a"], "a" * 40 + " "],
        "sha256hex": ["b" * 64, "B" * 64, "b" * 65, "", None, 1.5, {"x": 1}],
        "md5hex": ["c" * 32, "c" * 31, "", None, True, "0" * 32],
        "size_bytes": [1, 42, 0, -1, True, False, "12", 1.0, None, 2 ** 70],
        "mimetype": ["application/pdf", "PDF", "text/html; charset=x", "", None, 3, "a/b"],
    }
    verdicts = set()
    for _ in range(5000):
        row = {k: rnd.choice(v) for k, v in values.items() if rnd.random() > 0.05}
        verdicts.add(want_reason(row))
        assert want_reason(row) == _want_reason_reference(row), row
    assert verdicts == {None, "skip-missing-field", "skip-malformed-field"}


def test_the_import_loop_runs_without_the_cycle_collector_and_restores_it(tmp_path):
    import gc
    load_export(tmp_path / "c.sqlite", write_lines(tmp_path / "e.json", [entity(0), entity(1)]))
    seen = []
    with SqliteCatalog(tmp_path / "c.sqlite") as db:
        real = db.commit_editgroups

        def commit(*args, **kw):
            seen.append(gc.isenabled())
            return real(*args, **kw)

        db.commit_editgroups = commit
        assert gc.isenabled()
        FileMetaImporter(db).run([file_meta(0)])
        assert seen == [False] and gc.isenabled()
        gc.disable()
        try:
            FileMetaImporter(db).run([file_meta(1)])
            assert not gc.isenabled()  # a caller's choice is kept
        finally:
            gc.enable()
