"""The data steps as plain functions: exact outputs, rejects with reasons, bad input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from pipeline.checks import StepFailed
from pipeline.jsonio import InputError, iter_lines
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.file_hashes import compare, count_missing_sha256
from pipeline.steps.ingest_request import Rejected, build_request, build_requests
from pipeline.steps.merge import merge_results
from pipeline.steps.sample import draw_sample
from pipeline.steps.uniq import uniq_file_meta


def read(path) -> list[dict]:
    return [json.loads(line) for _, line in iter_lines(path)]


def write_gz(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def entity(i: int, **kw) -> dict:
    e = {
        "ident": f"{'abcdefghijklmnopqrstuvwxyz'[i % 26]}{i:025d}"[:26],
        "revision": f"00000000-0000-0000-0000-{i:012d}",
        "sha1": f"{i:040x}",
        "mimetype": "application/pdf",
        "state": "active",
        "urls": [{"url": f"http://journal.example/{i}.pdf", "rel": "web"}],
    }
    e.update(kw)
    return {k: v for k, v in e.items() if v is not None}


# -- export filter -------------------------------------------------------------


def test_export_filter_keeps_missing_and_empty_sha256_and_rejects_bad_lines(tmp_path):
    lines = [
        json.dumps(entity(1)),  # missing sha256 -> out
        json.dumps(entity(2, sha256="")),  # empty string counts as missing -> out
        json.dumps(entity(3, sha256="ab" * 32)),  # complete -> skipped
        "{not json",
        "[1, 2, 3]",
        "",  # blank lines are not records
        '{"ident": "truncated',
    ]
    export = write_gz(tmp_path / "export.json.gz", lines)
    out, rej = tmp_path / "out.json.gz", tmp_path / "rej.json.gz"
    counts = filter_missing_sha256(str(export), str(out), str(rej))

    assert counts == {
        "in": 6,
        "out": 2,
        "has_sha256": 1,
        "rejects": 3,
        "rejects_by_reason": {"invalid-json": 2, "not-an-object": 1},
    }
    # selected lines are the export's lines, byte for byte
    assert [line for _, line in iter_lines(out)] == [lines[0], lines[1]]
    rejects = read(rej)
    assert [(r["line"], r["raw"]) for r in rejects] == [(4, "{not json"), (5, "[1, 2, 3]"), (7, lines[6])]
    assert [r["reason"] for r in rejects] == ["invalid-json", "not-an-object", "invalid-json"]
    assert all(r["source"] == "export.json.gz" and r["detail"] for r in rejects)


def test_export_filter_reads_plain_text_too(tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps(entity(1)) + "\n" + json.dumps(entity(2, sha256="cd" * 32)) + "\n")
    counts = filter_missing_sha256(str(export), str(tmp_path / "o.json.gz"), str(tmp_path / "r.json.gz"))
    assert (counts["in"], counts["out"], counts["has_sha256"]) == (2, 1, 1)


def test_truncated_gzip_fails_naming_the_file_and_publishes_nothing(tmp_path):
    good = write_gz(tmp_path / "full.json.gz", [json.dumps(entity(i)) for i in range(2000)])
    data = good.read_bytes()
    bad = tmp_path / "truncated.json.gz"
    bad.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.json.gz"
    with pytest.raises(InputError, match="truncated.json.gz"):
        filter_missing_sha256(str(bad), str(out), str(tmp_path / "rej.json.gz"))
    assert not out.exists()
    assert list(tmp_path.glob("*.tmp-*")) == []


def test_empty_input_gives_empty_output(tmp_path):
    export = tmp_path / "empty.json.gz"
    write_gz(export, [])
    out = tmp_path / "out.json.gz"
    counts = filter_missing_sha256(str(export), str(out), str(tmp_path / "rej.json.gz"))
    assert counts["in"] == counts["out"] == 0
    assert out.exists() and read(out) == []


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="nope.json.gz: file not found"):
        filter_missing_sha256(str(tmp_path / "nope.json.gz"), str(tmp_path / "o.gz"), str(tmp_path / "r.gz"))


# -- ingest requests -------------------------------------------------------------


def test_request_shape_and_first_usable_url():
    e = entity(
        7,
        urls=[
            {"url": "https://web.archive.org/web/2016/http://a.example/x.pdf", "rel": "webarchive"},
            {"url": "https://archive.org/download/item/x.pdf", "rel": "repository"},
            {"url": "http://a.example/x.pdf", "rel": "web"},
            {"url": "http://b.example/y.pdf", "rel": "repository"},
        ],
    )
    req = build_request(e)
    assert req == {
        "base_url": "http://a.example/x.pdf",
        "ext_ids": {"sha1": e["sha1"]},
        "ingest_request_source": "file-backfill",
        "ingest_type": "pdf",
        "link_source": "fatcat",
        "link_source_id": f"file_{e['ident']}",
    }


@pytest.mark.parametrize(
    "kw,reason",
    [
        ({"mimetype": "text/html"}, "not-pdf-mimetype"),
        ({"mimetype": "text/html", "state": "deleted", "sha1": None}, "not-pdf-mimetype"),
        ({"state": "redirect"}, "not-active"),
        ({"state": "wip", "urls": []}, "not-active"),
        ({"urls": [{"url": "https://web.archive.org/web/1/http://x/", "rel": "webarchive"}]}, "no-usable-url"),
        ({"urls": [], "sha1": None}, "no-usable-url"),
        ({"sha1": None}, "no-sha1"),
        ({"sha1": ""}, "no-sha1"),
    ],
)
def test_request_reject_reasons_in_order(kw, reason):
    with pytest.raises(Rejected) as e:
        build_request(entity(1, **kw))
    assert e.value.reason == reason


def test_absent_mimetype_and_state_are_accepted():
    e = entity(3, mimetype=None, state=None)
    assert "mimetype" not in e and "state" not in e
    assert build_request(e)["base_url"] == "http://journal.example/3.pdf"


def test_build_requests_writes_sorted_keys_and_rejects(tmp_path):
    src = write_gz(
        tmp_path / "in.json.gz",
        [json.dumps(entity(1)), json.dumps(entity(2, state="deleted")), "oops"],
    )
    out, rej = tmp_path / "req.json.gz", tmp_path / "rej.json.gz"
    counts = build_requests(str(src), str(out), str(rej))
    assert counts == {"in": 3, "out": 1, "rejects": 2, "rejects_by_reason": {"invalid-json": 1, "not-active": 1}}
    line = next(iter_lines(out))[1]
    assert list(json.loads(line)) == sorted(json.loads(line))
    rejects = read(rej)
    assert rejects[0]["reason"] == "not-active" and rejects[0]["record"]["ident"] == entity(2)["ident"]
    assert rejects[1]["line"] == 3 and rejects[1]["raw"] == "oops"


# -- sample ------------------------------------------------------------------------


def test_sample_is_byte_identical_and_seed_dependent(tmp_path):
    src = write_gz(tmp_path / "req.json.gz", [json.dumps({"n": i}) for i in range(500)])
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    draw_sample(str(src), str(a), 50, 0)
    draw_sample(str(src), str(b), 50, 0)
    draw_sample(str(src), str(c), 50, 1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    ns = [r["n"] for r in read(a)]
    assert len(ns) == 50 == len(set(ns)) and ns == sorted(ns)  # input order kept


def test_sample_larger_than_input_takes_everything(tmp_path):
    src = write_gz(tmp_path / "req.json.gz", [json.dumps({"n": i}) for i in range(7)])
    counts = draw_sample(str(src), str(tmp_path / "s.json"), 1000, 0)
    assert counts["out"] == 7 and [r["n"] for r in read(tmp_path / "s.json")] == list(range(7))


# -- merge and uniq ----------------------------------------------------------------


def fm(sha1: str, size: int = 100) -> dict:
    return {"sha1hex": sha1, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": size, "mimetype": "application/pdf"}


def result(sha1_req: str, status: str = "success", sha1_got: str | None = None) -> dict:
    r = {"request": {"base_url": "http://x/", "ext_ids": {"sha1": sha1_req}}, "hit": status == "success", "status": status}
    if status in ("success", "wrong-mimetype"):
        r["file_meta"] = fm(sha1_got or sha1_req)
    return r


def test_merge_keeps_only_matching_hits_and_counts_drops(tmp_path):
    s1 = write_gz(
        tmp_path / "shard-000-of-002.json.gz",
        [
            json.dumps(result("1" * 40)),
            json.dumps(result("2" * 40, sha1_got="9" * 40)),  # archive served another file
            json.dumps(result("3" * 40, status="no-capture")),
        ],
    )
    s2 = write_gz(
        tmp_path / "shard-001-of-002.json.gz",
        [json.dumps(result("4" * 40, status="wrong-mimetype")), json.dumps({"status": "success"}), "garbage"],
    )
    batch1 = tmp_path / "batch1.json"
    batch1.write_text(json.dumps(result("1" * 40)) + "\n" + json.dumps(result("5" * 40)) + "\n")
    out, rej = tmp_path / "fm.json.gz", tmp_path / "rej.json.gz"
    counts = merge_results([str(s1), str(s2), str(batch1)], str(out), str(rej))

    assert [r["sha1hex"] for r in read(out)] == ["1" * 40, "1" * 40, "5" * 40]
    assert read(out)[0] == fm("1" * 40)
    assert counts["in"] == 8 and counts["out"] == 3 and counts["rejects"] == 5
    assert counts["rejects_by_reason"] == {
        "bad-result": 1,
        "invalid-json": 1,
        "ingest-failed": 2,
        "sha1-mismatch": 1,
    }
    assert counts["per_source"] == {"shard-000-of-002.json.gz": 3, "shard-001-of-002.json.gz": 3, "batch1.json": 2}
    reasons = {(r["source"], r["line"]): r["reason"] for r in read(rej)}
    assert reasons[("shard-000-of-002.json.gz", 2)] == "sha1-mismatch"
    assert reasons[("shard-001-of-002.json.gz", 3)] == "invalid-json"


def test_uniq_attributes_duplicates_to_requests_and_repeats(tmp_path):
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    merged = write_gz(
        tmp_path / "merged.json.gz",
        # b twice (two entities share b); a three times (one request, merged thrice); c once
        [json.dumps(fm(x)) for x in (b, a, b, a, c, a)],
    )
    requests = write_gz(
        tmp_path / "req.json.gz",
        [json.dumps({"ext_ids": {"sha1": x}}) for x in (a, b, b, c)],
    )
    out, report = tmp_path / "uniq.json.gz", tmp_path / "dupes.json"
    counts = uniq_file_meta(str(merged), str(out), str(report), str(requests))
    assert [r["sha1hex"] for r in read(out)] == [a, b, c]
    rep = json.loads(report.read_text())
    assert rep["duplicate_lines"] == 3
    assert rep["from_duplicate_requests"] == 1
    assert rep["from_repeated_results"] == 2
    assert rep["duplicated_sha1"] == 2
    assert rep["conflicting_sha1"] == 0
    assert rep["most_duplicated"][0] == {"sha1hex": a, "lines": 3, "requests": 1}
    assert counts["in"] == 6 and counts["out"] == 3


def test_uniq_reports_conflicting_records_and_keeps_the_first(tmp_path):
    a = "a" * 40
    merged = write_gz(tmp_path / "m.json.gz", [json.dumps(fm(a, 10)), json.dumps(fm(a, 11))])
    out, report = tmp_path / "u.json.gz", tmp_path / "d.json"
    uniq_file_meta(str(merged), str(out), str(report), None)
    assert read(out) == [fm(a, 10)]
    assert json.loads(report.read_text())["conflicting_examples"] == [a]


@pytest.mark.parametrize("where", ["writer", "sort"])
def test_uniq_balance_catches_a_lost_line(tmp_path, monkeypatch, where):
    """The balance compares counts taken apart (read, written, dropped as a duplicate), so a
    line lost by the writer or in the external sort fails the step instead of passing as one
    more "duplicate" (a figure defined as in - out would always add up)."""
    import pipeline.steps.uniq as uniq

    shas = [f"{i:040x}" for i in range(40)]
    merged = write_gz(tmp_path / "m.json.gz", [json.dumps(fm(x)) for x in shas + shas[:5]])
    if where == "writer":
        real = uniq.AtomicWriter.write_joined

        def lossy(self, data, lines):
            if lines:  # a batch's first line is lost, neither written nor counted
                data, lines = data[data.index(b"\n") + 1:], lines - 1
            real(self, data, lines)

        monkeypatch.setattr(uniq.AtomicWriter, "write_joined", lossy)
    else:
        real_run = uniq._read_run

        def lossy_run(path):
            rows = list(real_run(path))
            return iter(rows[1:])  # each spilled run loses its first line

        monkeypatch.setattr(uniq, "_read_run", lossy_run)
    out = tmp_path / "u.json.gz"
    with pytest.raises(StepFailed, match=r"uniq: counts do not add up: in 45 != out \d+ \+ "
                                         r"duplicate_lines \d+ = \d+"):
        uniq_file_meta(str(merged), str(out), str(tmp_path / "d.json"), None, memory_budget=2000)
    assert not out.exists()


def test_uniq_refuses_a_corrupt_merged_file(tmp_path):
    merged = write_gz(tmp_path / "m.json.gz", [json.dumps(fm("a" * 40)), '{"size_bytes": 3}'])
    with pytest.raises(StepFailed, match="line 2"):
        uniq_file_meta(str(merged), str(tmp_path / "u.json.gz"), str(tmp_path / "d.json"), None)
    assert not (tmp_path / "u.json.gz").exists()


# -- count check ---------------------------------------------------------------------


def test_file_hashes_count_and_compare(tmp_path):
    tsv = tmp_path / "file_hashes.tsv.gz"
    write_gz(
        tsv,
        [
            "ident\trev\tsha1\tsha256\tmd5",
            "i1\tr1\t" + "1" * 40 + "\t\t",
            "i2\tr2\t" + "2" * 40 + "\t" + "f" * 64 + "\t" + "e" * 32,
            "i3\tr3\t" + "3" * 40 + "\t\t" + "e" * 32,
            "broken line",
        ],
    )
    counts = count_missing_sha256(str(tsv))
    assert counts == {"rows": 3, "missing_sha256": 2, "malformed": 1, "malformed_lines": [5]}
    assert compare(counts, 2)["match"] is True
    mismatch = compare(counts, 5)
    assert mismatch["match"] is False and mismatch["difference"] == 3


def test_gzip_targets_are_byte_identical_across_runs(tmp_path):
    """No temporary name or time in the gzip header: a remade target with the same content is
    the same file, which is what lets the steps after it keep their targets."""
    from pipeline.jsonio import AtomicWriter

    paths = []
    for i in range(2):
        path = tmp_path / f"run{i}" / "out.json.gz"
        with AtomicWriter(path) as w:
            for n in range(1000):
                w.write_obj({"n": n})
            w.commit()
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert b".tmp-" not in paths[0].read_bytes()[:64]
