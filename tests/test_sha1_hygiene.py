"""SHA-1 hygiene where the pipeline reads other tools' data: the export and extra results.

A sha1 that is not 40 hex digits is rejected as `bad-sha1` where it is read
(not fetched and then failed as `sha1-mismatch`); an upper-case one is
lower-cased (otherwise it matches in the merge but the import never finds its
entity: `skip-no-match`, never filled).
"""

from __future__ import annotations

import gzip
import json

import pytest

from pipeline.catalog.export import load_export
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.jsonio import iter_lines
from pipeline.steps.ingest_request import Rejected, build_request, build_requests
from pipeline.steps.merge import merge_results

UPPER = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234ABC"
LOWER = UPPER.lower()


def entity(sha1, **kw) -> dict:
    e = {"ident": "aaaaaaaaaaaaaaaaaaaaaaaaaq", "revision": "00000000-0000-0000-0000-000000000001",
         "sha1": sha1, "mimetype": "application/pdf", "state": "active",
         "urls": [{"url": "http://journal.example/1.pdf", "rel": "web"}]}
    e.update(kw)
    return e


def read(path) -> list[dict]:
    return [json.loads(line) for _, line in iter_lines(path)]


@pytest.mark.parametrize("sha1", [
    "abc", "a" * 39, "a" * 41, "g" * 40, " " + "a" * 39, "a" * 40 + "\n", "0x" + "a" * 38,
    12345, ["a" * 40], {"sha1": "a" * 40}, True,
])
def test_malformed_export_sha1_is_rejected(sha1):
    with pytest.raises(Rejected) as e:
        build_request(entity(sha1))
    assert e.value.reason == "bad-sha1"


def test_upper_case_export_sha1_becomes_lower_case():
    assert build_request(entity(UPPER))["ext_ids"] == {"sha1": LOWER}
    assert build_request(entity(LOWER))["ext_ids"] == {"sha1": LOWER}


def test_bad_sha1_comes_after_the_earlier_checks():
    for kw, reason in (({"state": "deleted"}, "not-active"), ({"urls": []}, "no-usable-url"),
                       ({"mimetype": "text/html"}, "not-pdf-mimetype")):
        with pytest.raises(Rejected) as e:
            build_request(entity("nothex", **kw))
        assert e.value.reason == reason


def test_requests_file_rejects_bad_sha1_with_the_record(tmp_path):
    src = tmp_path / "in.json.gz"
    with gzip.open(src, "wt") as f:
        for sha1 in (UPPER, "deadbeef", LOWER):
            f.write(json.dumps(entity(sha1)) + "\n")
    out, rej = tmp_path / "req.json.gz", tmp_path / "rej.json.gz"
    counts = build_requests(str(src), str(out), str(rej))
    assert counts["rejects_by_reason"] == {"bad-sha1": 1} and counts["out"] == 2
    assert [r["ext_ids"]["sha1"] for r in read(out)] == [LOWER, LOWER]
    [reject] = read(rej)
    assert (reject["reason"], reject["line"], reject["record"]["sha1"]) == ("bad-sha1", 2, "deadbeef")


def _result(req_sha1, **fm) -> dict:
    file_meta = {"sha1hex": req_sha1, "sha256hex": "B" * 64, "md5hex": "C" * 32,
                 "size_bytes": 10, "mimetype": "application/pdf"} | fm
    return {"request": {"base_url": "http://x/", "ext_ids": {"sha1": req_sha1}}, "hit": True,
            "status": "success", "file_meta": file_meta}


def test_extra_results_file_meta_is_checked_and_lower_cased(tmp_path):
    batch = tmp_path / "batch1.json"
    lines = [
        _result(UPPER),                                  # another tool's upper-case hex: kept
        _result(LOWER, sha1hex=UPPER),                   # same file, other case: a match
        _result("1" * 40, sha1hex="1" * 39),             # fetched sha1 malformed
        _result("nothex-" + "1" * 33, sha1hex="1" * 40),  # request sha1 malformed
        _result("2" * 40, sha256hex="2" * 63),           # sha256 malformed
        _result("3" * 40, md5hex="z" * 32),              # md5 malformed
        _result("4" * 40, sha1hex="5" * 40),             # a real mismatch stays one
    ]
    batch.write_text("".join(json.dumps(r) + "\n" for r in lines))
    out, rej = tmp_path / "fm.json.gz", tmp_path / "rej.json.gz"
    counts = merge_results([str(batch)], str(out), str(rej))
    kept = read(out)
    assert kept == [{"sha1hex": LOWER, "sha256hex": "b" * 64, "md5hex": "c" * 32,
                     "size_bytes": 10, "mimetype": "application/pdf"}] * 2
    assert counts["rejects_by_reason"] == {"bad-sha1": 2, "bad-file-meta": 2, "sha1-mismatch": 1}
    assert [r["line"] for r in read(rej) if r["reason"] == "bad-sha1"] == [3, 4]


def test_upper_case_export_sha1_is_found_by_the_lower_case_fetched_sha1(tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(entity(UPPER)) + "\n")
    load_export(tmp_path / "c.sqlite", export)
    with SqliteCatalog(tmp_path / "c.sqlite") as catalog:
        found = catalog.lookup_sha1(LOWER)  # file_meta.sha1hex: hashlib's lower-case hex
    assert found is not None and found["ident"] == entity(UPPER)["ident"]
    assert found["sha1"] == UPPER  # the entity itself is not rewritten
