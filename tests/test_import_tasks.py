"""The import tasks on the generated sample world, on the embedded catalog and over HTTP."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import luigi
import pytest
from fatcat_standin import FatcatStandin
from luigi_config import config_options

from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.provenance import meta_path
from pipeline.tasks import Backfill, ImportFileMeta, ImportFileMetaSample, UniqFileMeta

TOKEN = "task-test-token-5d1e"


@pytest.fixture
def cfg(world, tmp_path):
    values = {"workdir": str(tmp_path / "work"), "export": str(world / "file_export.json.gz"),
              "archive": str(world / "collection"), "sample_size": "100", "shards": "2",
              "file_hashes": "", "catalog": "", "catalog_seed": ""}
    with config_options("backfill", values):
        yield Path(values["workdir"])


def build(*tasks):
    return luigi.build(list(tasks), local_scheduler=True, detailed_summary=True, log_level="WARNING")


def uniq_sha1s(work: Path) -> set[str]:
    with gzip.open(work / "files_missing_sha256.file_meta.uniq.json.gz", "rt") as f:
        return {json.loads(line)["sha1hex"] for line in f}


def test_backfill_imports_into_the_embedded_catalog(cfg, world):
    expected = json.loads((world / "expected.json").read_text())["import"]
    res = build(Backfill())
    assert res.status == luigi.LuigiStatusCode.SUCCESS, res.summary_text
    counts = json.loads((cfg / "files_missing_sha256.import.counts.json").read_text())
    assert {k: counts[k] for k in expected} == expected
    assert counts["skip"] == 0 and counts["insert"] == 0 and counts["exists"] == 0

    assert all(isinstance(v, int) for v in counts.values())  # only counters in the target
    assert meta_path(cfg / "files_missing_sha256.import.counts.json").exists()
    report = json.loads(meta_path(cfg / "files_missing_sha256.import.counts.json").read_text())["counts"]
    assert report["editgroups"] == -(-expected["update"] // 100) and report["dry_run"] is False

    sample_path = cfg / "files_missing_sha256.import.sample.counts.json"
    sample = json.loads(sample_path.read_text())
    assert sample["total"] > 0 and sample["update"] + sample.get("skip-existing-complete", 0) \
        + sample.get("skip-no-match", 0) + sample["skip"] == sample["total"]
    assert json.loads(meta_path(sample_path).read_text())["counts"]["dry_run"] is True

    sha1s = uniq_sha1s(cfg)
    with SqliteCatalog(cfg / "catalog.sqlite") as db:
        groups = db.editgroups()
        assert len(groups) == -(-expected["update"] // 100)
        assert all(g["changelog_index"] is not None and g["edit_count"] <= 100 for g in groups)
        first_active: dict[str, str] = {}  # sha1 -> lowest active ident: the one lookup finds
        for e in db.iter_entities():  # sorted by ident
            if e.get("state") == "active" and e.get("sha1") in sha1s:
                first_active.setdefault(e["sha1"], e["ident"])
        assert len(first_active) == expected["total"]
        for e in db.iter_entities():
            edits = db.edits_of(e["ident"])
            if first_active.get(e.get("sha1")) == e["ident"]:
                assert e.get("sha256") and len(edits) <= 1, e["ident"]
            else:
                assert edits == [], e["ident"]  # entities sharing a sha1 beyond the first: untouched

    # a rerun runs nothing and rewrites nothing
    before = {p: p.stat().st_mtime_ns for p in cfg.rglob("*") if p.is_file()}
    res = build(Backfill())
    assert res.status == luigi.LuigiStatusCode.SUCCESS
    assert "Did not run any tasks" in res.summary_text
    assert {p: p.stat().st_mtime_ns for p in cfg.rglob("*") if p.is_file()} == before

    # an embedded catalog that was removed makes both import steps stale
    assert ImportFileMeta().complete() and ImportFileMetaSample().complete()
    (cfg / "catalog.sqlite").unlink()
    assert not ImportFileMeta().complete() and not ImportFileMetaSample().complete()


def test_import_task_over_the_fatcat_api(cfg, world, tmp_path, monkeypatch):
    expected = json.loads((world / "expected.json").read_text())["import"]
    assert build(UniqFileMeta()).status == luigi.LuigiStatusCode.SUCCESS
    monkeypatch.setenv("FATCAT_API_AUTH_TOKEN", TOKEN)
    with FatcatStandin.from_export(TOKEN, world / "file_export.json.gz") as api:
        luigi.configuration.get_config().set("backfill", "catalog", api.url)
        res = build(ImportFileMeta())
        assert res.status == luigi.LuigiStatusCode.SUCCESS, res.summary_text
        counts = json.loads((cfg / "files_missing_sha256.import.counts.json").read_text())
        assert {k: counts[k] for k in expected} == expected
        writes = [r for r in api.requests if r["op"] in ("create_editgroup", "update_file", "accept")]
        assert writes and all(r["authorized"] for r in writes)
        assert not (cfg / "catalog.sqlite").exists()  # nothing embedded was made
    journal = (cfg / "files_missing_sha256.import.journal.json").read_text()
    assert api.url in journal and TOKEN not in journal
