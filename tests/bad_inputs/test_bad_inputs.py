"""Every case of the bad-input corpus ends in a reject with its reason or a clear error."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from cases import ENTITY, EXPORT, EXTRA, FILE_HASHES, SEED, Case
from catalog_world import entity, ident_of

from pipeline.catalog.export import load_export
from pipeline.jsonio import InputError, iter_lines
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.file_hashes import count_missing_sha256
from pipeline.steps.ingest_request import build_requests
from pipeline.steps.merge import merge_results

ROOT = Path(__file__).resolve().parents[2]
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


def _no_constant(name: str):
    raise AssertionError(f"{name} in a rejects file: not JSON")


def _rejects(path) -> list[dict]:
    """The rejects lines, each read as strict JSON (no NaN or Infinity)."""
    return [json.loads(line, parse_constant=_no_constant) for _, line in iter_lines(path)]


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


def _backfill(tmp_path: Path, world: Path, export: Path, *extra: str) -> Path:
    """One real luigi run of the whole pipeline on `export`; it must exit 0 without a traceback.
    Returns the work directory."""
    import os
    import subprocess
    import sys

    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill", "--local-scheduler",
         "--backfill-workdir", str(work), "--backfill-export", str(export),
         "--backfill-archive", str(world / "collection"),
         # damaged lines are refused before the requests are sampled: a short warm-up
         "--backfill-sample-size", "50", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return work


def test_operator_sees_rejects_not_tracebacks(tmp_path, world):
    """Every damaged export and extra-results line of the corpus in one real luigi run of the
    whole pipeline: exit 0, each line a reject with its reason, no traceback on stderr."""
    lines = gzip.decompress((world / "file_export.json.gz").read_bytes()).rstrip(b"\n").split(b"\n")
    bad_export = [c for c in EXPORT if not c.whole and c.name != "huge-line"]  # unit-tested above
    export = tmp_path / "export.json.gz"
    export.write_bytes(gzip.compress(b"\n".join(lines + [_bytes(c.content) for c in bad_export]) + b"\n"))
    bad_extra = [c for c in EXTRA if not c.whole]
    extra = tmp_path / "batch1.json.gz"
    extra.write_bytes(gzip.compress(b"\n".join(_bytes(c.content) for c in bad_extra) + b"\n"))
    work = _backfill(tmp_path, world, export, "--backfill-extra-results", json.dumps([str(extra)]))
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


def _damage(entity: dict, how: str) -> str:
    """One world entity's export line, damaged one of the ways issue 15 found."""
    if how == "url-item-int":
        return json.dumps({**entity, "urls": entity["urls"] + [5]})
    if how == "url-list":
        return json.dumps({**entity, "urls": entity["urls"] + [{"url": ["http://x.example/a"], "rel": "web"}]})
    if how == "rel-list":
        return json.dumps({**entity, "urls": entity["urls"] + [{"url": "http://x.example/b", "rel": ["web"]}]})
    if how == "lone-surrogate":
        return json.dumps({**entity, "extra": {"title": "\udc00"}})  # written as its escape
    head = json.dumps(entity)[:-1]
    if how == "deep-nesting":
        return head + ', "extra": ' + "[" * 1000 + "]" * 1000 + "}"
    if how == "nan-size":
        return head + ', "size": NaN}'
    if how == "huge-int":
        return head + ', "extra": {"n": ' + "1" * 5000 + "}}"
    raise ValueError(how)


DAMAGES = {"url-item-int": "bad-urls", "url-list": "bad-urls", "rel-list": "bad-urls",
           "lone-surrogate": "invalid-json", "deep-nesting": "invalid-json", "nan-size": "invalid-json",
           "huge-int": "invalid-json"}


def test_backfill_imports_everything_but_the_damaged_entities(tmp_path, world):
    """World entities the import would fill, each damaged one way: the whole pipeline (luigi,
    embedded catalog seeded from the same export) exits 0, each is one reject with its reason
    and line number at the export filter and at the catalog load, and every other entity is
    imported as in the undamaged world."""
    expected = json.loads((world / "expected.json").read_text())
    lines = gzip.decompress((world / "file_export.json.gz").read_bytes()).decode().rstrip("\n").split("\n")
    sha1s = Counter()
    for line in lines:
        try:
            sha1s[json.loads(line).get("sha1")] += 1
        except (ValueError, AttributeError):
            pass
    # entities fetched as asked, whose sha1 no other entity or request shares: one update each
    chosen = [r for r in expected["requests"] if r["status"] == "success" and r["fetched_sha1"] == r["sha1"]
              and sha1s[r["sha1"]] == 1][:len(DAMAGES)]
    assert len(chosen) == len(DAMAGES)
    damaged = {}
    for req, (how, reason) in zip(chosen, DAMAGES.items(), strict=True):
        n = req["line"]
        lines[n - 1] = _damage(json.loads(lines[n - 1]), how)
        damaged[n] = reason
    export = tmp_path / "export.json.gz"
    export.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    work = _backfill(tmp_path, world, export)
    at_filter = {r["line"]: r["reason"] for r in _rejects(work / "files_missing_sha256.rejects.json.gz")
                 if r["line"] in damaged}
    assert at_filter == damaged
    [catalog_rejects] = work.glob("**/*.rejects.json")
    at_load = {r["line"]: r["reason"] for r in _rejects(catalog_rejects) if r["line"] in damaged}
    assert at_load == damaged
    counts = json.loads((work / "files_missing_sha256.import.counts.json").read_text())
    want = expected["import"]
    assert counts["update"] == want["update"] - len(damaged)
    assert counts["total"] == want["total"] - len(damaged)
    assert counts.get("skip-bad-entity", 0) == 0


# Each damage put into a field the reading step uses (where it has one), which is where
# it used to break the step: `{field}` is replaced by the damaged value's JSON text.
EDGE_VALUES = {
    "lone-surrogate": '"\\udc00"',
    "nan": "NaN",
    "infinity": "-Infinity",
    "deep-nesting": "[" * 1000 + "]" * 1000,
    "huge-int": "1" * 5000,
}


def _with(line: str, key: str, value: str) -> str:
    """`line` (a JSON object) with `key` set to the JSON text `value` (replacing it if present)."""
    obj = json.loads(line)
    obj.pop(key, None)
    return json.dumps(obj)[:-1] + f', "{key}": {value}}}'


def _around(tmp_path: Path, name: str, good: str, bad: str, last: str | None = None) -> Path:
    """A file of three lines: `good`, `bad` (line 2), then `last` (default: `good` again)."""
    path = tmp_path / name
    path.write_bytes(gzip.compress(f"{good}\n{bad}\n{last or good}\n".encode(), mtime=0))
    return path


def _only_reject(path: Path, source: str) -> tuple:
    [r] = _rejects(path)
    return r["reason"], r["line"], r["source"] == source


@pytest.mark.parametrize("damage", sorted(EDGE_VALUES))
def test_every_json_lines_reader_makes_an_edge_line_one_reject(tmp_path, damage):
    """Export filter, ingest requests, merge, catalog load: the damaged line is one
    `invalid-json` reject at line 2, the lines around it go through. The import's input check
    and uniq (our own files) stop with the line number instead of writing anything."""
    from pipeline.checks import StepFailed
    from pipeline.importer.records import check_file_meta
    from pipeline.steps.uniq import uniq_file_meta

    value = EDGE_VALUES[damage]
    good_entity = json.dumps(entity(0))
    bad_entity = _with(good_entity, "ident", value)

    export = _around(tmp_path, "export.json.gz", good_entity, bad_entity)
    counts = filter_missing_sha256(str(export), str(tmp_path / "m.gz"), str(tmp_path / "m.rej.gz"))
    assert (counts["out"], counts["rejects"]) == (2, 1)
    assert _only_reject(tmp_path / "m.rej.gz", "export.json.gz") == ("invalid-json", 2, True)

    counts = build_requests(str(export), str(tmp_path / "r.gz"), str(tmp_path / "r.rej.gz"))
    assert (counts["out"], counts["rejects"]) == (2, 1)
    assert _only_reject(tmp_path / "r.rej.gz", "export.json.gz") == ("invalid-json", 2, True)

    seed = _around(tmp_path, "seed.json.gz", good_entity, _with(json.dumps(entity(1)), "ident", value),
                   json.dumps(entity(2)))
    report = load_export(tmp_path / "c.sqlite", seed, tmp_path / "c.rej.json")
    assert (report.loaded, report.rejected, dict(report.reasons)) == (2, 1, {"invalid-json": 1})
    assert _only_reject(tmp_path / "c.rej.json", str(tmp_path / "seed.json.gz")) == ("invalid-json", 2, True)

    good_result = _result(0)
    bad_result = json.loads(good_result)
    results = _around(tmp_path, "batch.json.gz", good_result,
                         good_result.replace('"mimetype": "application/pdf"', f'"mimetype": {value}'))
    assert bad_result["file_meta"]["mimetype"] == "application/pdf"
    counts = merge_results([str(results)], str(tmp_path / "fm.gz"), str(tmp_path / "fm.rej.gz"))
    assert (counts["out"], counts["rejects"]) == (2, 1)
    assert _only_reject(tmp_path / "fm.rej.gz", "batch.json.gz") == ("invalid-json", 2, True)

    fm = json.dumps(bad_result["file_meta"])
    own = _around(tmp_path, "file_meta.json.gz", fm, _with(fm, "mimetype", value))
    with pytest.raises(InputError, match="file_meta.json.gz: line 2: invalid-json"):
        check_file_meta(own)
    with pytest.raises(StepFailed, match="line 2 is not a file_meta record"):
        uniq_file_meta(str(own), str(tmp_path / "u.gz"), str(tmp_path / "u.json"), None)
    assert not (tmp_path / "u.gz").exists()
