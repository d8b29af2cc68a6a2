"""Every case of the bad-input corpus ends in a reject with its reason or a clear error."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from cases import ENTITY, EXPORT, EXTRA, FILE_HASHES, SEED, Case
from catalog_world import entity, ident_of

from pipeline.catalog.export import load_export
from pipeline.jsonio import InputError, iter_objects
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.file_hashes import count_missing_sha256
from pipeline.steps.ingest_request import build_requests
from pipeline.steps.merge import merge_results

GOOD_BEFORE = 2  # good lines before the damaged one: it is line 3
ENTITY_IDENT = ENTITY["ident"]


def _bytes(content) -> bytes:
    return content if isinstance(content, bytes) else content.encode("utf-8")


def _file(tmp_path: Path, case: Case, good: list[str], name: str) -> Path:
    """The case's file: the damaged line between good lines (gzip), or the case's whole bytes."""
    path = tmp_path / name
    if case.whole:
        path.write_bytes(_bytes(case.content))
        return path
    lines = [g.encode() for g in good[:GOOD_BEFORE]] + [_bytes(case.content)] + \
        [g.encode() for g in good[GOOD_BEFORE:]]
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", mtime=0))
    return path


def _rejects(path) -> list[dict]:
    return [obj for _, obj in iter_objects(path)]


def _expect_reject(case: Case, rejects: list[dict], source: str) -> None:
    reason = case.expected.split(":", 1)[1]
    mine = [r for r in rejects if r["reason"] == reason]
    assert mine, f"{case.id}: no {reason} reject in {rejects}"
    assert all(r["source"] == source for r in mine)
    if not case.whole:
        assert [r["line"] for r in mine] == [GOOD_BEFORE + 1]


def _expect_error(case: Case, err: Exception, path: Path) -> None:
    msg = str(err)
    assert path.name in msg and case.expected.split(":", 1)[1] in msg, msg


GOOD_ENTITIES = [json.dumps(entity(i), sort_keys=True) for i in range(4)]


@pytest.mark.parametrize("case", EXPORT, ids=lambda c: c.id)
def test_export(tmp_path, case):
    export = _file(tmp_path, case, GOOD_ENTITIES, "export.json.gz")
    out, rej = tmp_path / "missing.json.gz", tmp_path / "missing.rejects.json.gz"
    if case.expected.startswith("error:"):
        with pytest.raises(InputError) as err:
            filter_missing_sha256(str(export), str(out), str(rej))
        _expect_error(case, err.value, export)
        assert not out.exists() and not rej.exists()  # nothing published
        return
    counts = filter_missing_sha256(str(export), str(out), str(rej))
    assert counts["in"] == counts["out"] + counts["has_sha256"] + counts["rejects"]
    rejects = _rejects(rej)
    if rejects:
        _expect_reject(case, rejects, "export.json.gz")
        return
    # the line parsed: the request step is where it must be rejected
    req, req_rej = tmp_path / "req.json.gz", tmp_path / "req.rejects.json.gz"
    counts = build_requests(str(out), str(req), str(req_rej))
    assert counts["in"] == counts["out"] + counts["rejects"] == len(GOOD_ENTITIES) + 1
    _expect_reject(case, _rejects(req_rej), "missing.json.gz")


GOOD_SEED = [json.dumps(entity(i), sort_keys=True) for i in range(4)]


@pytest.mark.parametrize("case", SEED, ids=lambda c: c.id)
def test_catalog_seed(tmp_path, case):
    export = _file(tmp_path, case, GOOD_SEED, "seed.json.gz")
    rej = tmp_path / "catalog.rejects.json.gz"
    report = load_export(tmp_path / "catalog.sqlite", export, rej)
    assert report.lines == report.loaded + report.rejected == len(GOOD_SEED) + 1
    assert report.loaded == len(GOOD_SEED)
    _expect_reject(case, _rejects(rej), str(export))
    assert ident_of(0) in {r.get("record", {}).get("ident") for r in _rejects(rej)} or \
        case.name != "duplicate-ident"


def _result(i: int) -> str:
    e = entity(i)
    return json.dumps({"request": {"ext_ids": {"sha1": e["sha1"]}, "base_url": e["urls"][0]["url"],
                                   "ingest_type": "pdf"},
                       "hit": True, "status": "success",
                       "file_meta": {"sha1hex": e["sha1"], "sha256hex": "8" * 64, "md5hex": "7" * 32,
                                     "size_bytes": 10, "mimetype": "application/pdf"}}, sort_keys=True)


GOOD_RESULTS = [_result(i) for i in range(4)]


@pytest.mark.parametrize("case", EXTRA, ids=lambda c: c.id)
def test_extra_results(tmp_path, case):
    shard = tmp_path / "shard-000-of-001.json.gz"
    shard.write_bytes(gzip.compress(("\n".join(GOOD_RESULTS) + "\n").encode()))
    extra = _file(tmp_path, case, GOOD_RESULTS, "batch1.json.gz")
    out, rej = tmp_path / "fm.json.gz", tmp_path / "fm.rejects.json.gz"
    if case.expected.startswith("error:"):
        with pytest.raises(InputError) as err:
            merge_results([str(shard), str(extra)], str(out), str(rej))
        _expect_error(case, err.value, extra)
        assert not out.exists()
        return
    counts = merge_results([str(shard), str(extra)], str(out), str(rej))
    assert counts["in"] == counts["out"] + counts["rejects"] == 2 * len(GOOD_RESULTS) + 1
    assert counts["out"] == 2 * len(GOOD_RESULTS)
    _expect_reject(case, _rejects(rej), "batch1.json.gz")


GOOD_HASHES = ["ident\trev\tsha1\tsha256\tmd5"] + [f"i{i}\tr{i}\t{'1' * 40}\t\t" for i in range(4)]


@pytest.mark.parametrize("case", FILE_HASHES, ids=lambda c: c.id)
def test_file_hashes(tmp_path, case):
    path = _file(tmp_path, case, GOOD_HASHES, "file_hashes.tsv.gz")
    if case.expected.startswith("error:"):
        with pytest.raises(InputError) as err:
            count_missing_sha256(str(path))
        _expect_error(case, err.value, path)
        return
    counts = count_missing_sha256(str(path))
    assert counts == {"rows": 4, "missing_sha256": 4, "malformed": 1,
                      "malformed_lines": [GOOD_BEFORE + 1]}


def test_operator_sees_rejects_not_tracebacks(tmp_path, world):
    """Every damaged export and extra-results line of the corpus in one real luigi run of the
    whole pipeline: exit 0, each line a reject with its reason, no traceback on stderr."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    lines = gzip.decompress((world / "file_export.json.gz").read_bytes()).rstrip(b"\n").split(b"\n")
    bad_export = [c for c in EXPORT if not c.whole and c.name != "huge-line"]  # unit-tested above
    export = tmp_path / "export.json.gz"
    export.write_bytes(gzip.compress(b"\n".join(lines + [_bytes(c.content) for c in bad_export]) + b"\n"))
    bad_extra = [c for c in EXTRA if not c.whole]
    extra = tmp_path / "batch1.json.gz"
    extra.write_bytes(gzip.compress(b"\n".join(_bytes(c.content) for c in bad_extra) + b"\n"))
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill", "--local-scheduler",
         "--backfill-workdir", str(work), "--backfill-export", str(export),
         "--backfill-archive", str(world / "collection"),
         "--backfill-extra-results", json.dumps([str(extra)])],
        cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    n0 = len(lines)
    rejects = {(r["reason"], r["line"]) for r in _rejects(work / "files_missing_sha256.rejects.json.gz")}
    requests_rejected = _rejects(work / "files_missing_sha256.ingest_request.rejects.json.gz")
    for i, case in enumerate(bad_export, n0 + 1):
        reason = case.expected.split(":", 1)[1]
        at_filter = (reason, i) in rejects
        at_requests = any(r["reason"] == reason and r["record"].get("ident") == ENTITY_IDENT
                          for r in requests_rejected)
        assert at_filter or at_requests, case.id
    merged = {(r["reason"], r["line"]) for r in _rejects(work / "files_missing_sha256.file_meta.rejects.json.gz")
              if r["source"] == "batch1.json.gz"}
    assert merged == {(c.expected.split(":", 1)[1], i) for i, c in enumerate(bad_extra, 1)}
