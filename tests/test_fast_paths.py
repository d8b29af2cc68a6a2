"""The speed-ups give the verdicts of the plain code: byte reading, partial decoding, external sort.

Each fast path is compared with a reference written the slow, obvious way
(text lines, `json.loads` of the whole line, a dict of first records) on
inputs chosen to hit the places where they could part: JSON that msgspec and
the standard library treat differently, Unicode blank lines, CR LF, a last
line without newline, bytes that are not UTF-8, and runs spilled to disk.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from pipeline.entity_urls import url_list_problem
from pipeline.jsonfast import UNSET, decode_fields, struct_decoder
from pipeline.jsonio import iter_lines, iter_objects, iter_raw_lines
from pipeline.jsonline import BadLine, parse_object
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.ingest_request import build_request, request_line
from pipeline.steps.merge import file_meta_line, merge_results
from pipeline.steps.uniq import uniq_file_meta

# lines on which msgspec and json.loads may disagree, or which are easy to get wrong
TRICKY = [
    b'{"sha256": "a", "sha256": ""}',  # duplicate key: the last one counts
    b'{"sha256": "", "sha256": "a"}',
    b'{"x": NaN, "sha256": "a"}',  # json accepts NaN, msgspec does not
    b'{"sha256": NaN}',
    b'{"sha256": Infinity}',
    b'{"sha256": 1e400}',  # inf: truthy
    b'{"sha256": 1e-400}',  # 0.0: falsy
    b'{"x": 123456789012345678901234567890123}',
    b'{"x": "\\ud800"}',  # a lone surrogate escape
    b'{"sha\\u0032\\u0035\\u0036": "escaped key"}',
    b'{"x": "a\x01b"}',  # a raw control character: invalid
    b'{"a":1} trailing',
    b'\xef\xbb\xbf{"a": 1}',  # a BOM: invalid for json.loads
    b'  {"sha256": 0}  ',
    b'{"sha256": false}', b'{"sha256": []}', b'{"sha256": {}}', b'{"sha256": "0"}',
    b'{"sha256": null}', b'{}', b'[]', b'"text"', b'42', b'null', b'{', b'{"x": .5}',
    b'{"urls": [{"url": "http://a.example/\xc3\xa9.pdf"}], "sha1": "' + b"a" * 40 + b'"}',
    # where msgspec and json.loads part by themselves (issue 15): nesting, huge numbers,
    # NaN and Infinity in a field no step reads, lone surrogate escapes
    b'{"x": ' + b"[" * 1000 + b"]" * 1000 + b'}',  # RecursionError in msgspec and json.loads
    b'{"x": ' + b"[" * 995 + b"]" * 995 + b'}',  # msgspec passes, json.loads fails
    b'{"x": ' + b"[" * 512 + b"]" * 512 + b'}',  # 513 deep: one too many
    b'{"x": ' + b"[" * 511 + b"]" * 511 + b', "sha256": ""}',  # 512 deep: fine
    b'{"x": "' + b"[" * 1200 + b'"}',  # brackets in a string do not nest
    b'[' * 600 + b']' * 600,  # deep and not an object
    b'{"y": ' + b"1" * 5000 + b'}',  # 5,000 digits in a field no step reads: beyond the limit
    b'{"sha256": ' + b"1" * 5000 + b'}',
    b'{"x": ' + b"1" * 4300 + b'}',  # exactly at the limit: fine
    b'{"x": "' + b"1" * 5000 + b'"}',  # digits in a string are text
    b'{"x": 1' + b"0" * 400 + b'.5, "sha256": ""}',  # beyond a double: inf, valid JSON
    b'{"x": -Infinity, "sha256": ""}',
    b'{"urls": [{"url": "http://a.example/x.pdf", "rel": "web", "n": NaN}]}',
    b'{"x": "\\udc00"}',  # lone low surrogate in a field no step reads
    b'{"x": "a\\ud800b", "sha256": ""}',  # lone high surrogate
    b'{"x": "\\ude00\\ud83d"}',  # a pair the wrong way round
    b'{"\\udc00": 1}',  # in a key
    b'{"sha1": "\\udc00"}',  # in a field the request step reads
    b'{"x": "\\\\udc00"}',  # an escaped backslash then "udc00": plain text
    b'{"x": "\\ud83d\\ude00", "sha256": ""}',  # a proper pair: an emoji
]


def reference(raw: bytes, n: int = 1) -> dict | BadLine:
    return parse_object(n, raw.decode("utf-8"))


@pytest.mark.parametrize("raw", TRICKY)
def test_decode_fields_agrees_with_json_loads(raw):
    fields = ("sha256", "urls", "sha1", "x")
    got = decode_fields(struct_decoder("T", fields), fields, 7, raw)
    want = reference(raw, 7)
    if isinstance(want, BadLine):
        assert got == want
    else:
        assert got == {f: want[f] for f in fields if f in want}


def test_iter_raw_lines_matches_iter_lines_semantics(tmp_path):
    text = ('{"a": 1}\r\n\n   \n\x1c\u00a0\u2003\n{"b": "\u00e9"}\r\r\n\t\n'
            + "x" * 3_000_000 + '\n{"last": true}')  # a line longer than one read block
    path = tmp_path / "in.json.gz"
    with gzip.open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    want = [(n, line) for n, line in enumerate(text.split("\n"), 1)
            if line.rstrip("\r").strip()]
    want = [(n, line.rstrip("\r")) for n, line in want]
    assert list(iter_lines(path)) == want
    assert [(n, raw.decode()) for n, raw in iter_raw_lines(path)] == want
    assert [n for n, _ in want] == [1, 5, 7, 8]


def test_bytes_that_are_not_utf8_are_one_reject(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'{"a": 1}\n{"x": "\xff"}\n')  # msgspec alone would accept this line
    lines = list(iter_raw_lines(path))
    assert lines[0] == (1, b'{"a": 1}')
    assert lines[1][0] == 2 and isinstance(lines[1][1], BadLine)
    assert lines[1][1].reason == "invalid-utf8" and "0xff" in lines[1][1].detail
    counts = filter_missing_sha256(str(path), str(tmp_path / "o.gz"), str(tmp_path / "r.gz"))
    assert (counts["in"], counts["out"], counts["rejects_by_reason"]) == (2, 1, {"invalid-utf8": 1})


def _export_reference(raws: list[bytes]) -> tuple[list[bytes], Counter, int]:
    kept, rejected, has = [], Counter(), 0
    for raw in raws:
        obj = reference(raw)
        if isinstance(obj, BadLine):
            rejected[obj.reason] += 1
        elif obj.get("sha256"):
            has += 1
        elif url_list_problem(obj.get("urls")) is not None:
            rejected["bad-urls"] += 1
        else:
            kept.append(raw)
    return kept, rejected, has


def _filtered_as_the_reference(src, raws: list[bytes], tmp_path, workers: int | None = None) -> None:
    counts = filter_missing_sha256(str(src), str(tmp_path / "out.json.gz"), str(tmp_path / "rej.json.gz"),
                                   workers=workers)
    kept, rejected, has = _export_reference(raws)
    with gzip.open(tmp_path / "out.json.gz", "rb") as f:
        assert f.read() == b"".join(raw + b"\n" for raw in kept)
    assert counts["has_sha256"] == has and counts["rejects_by_reason"] == dict(sorted(rejected.items()))
    assert counts["in"] == len(raws) == counts["out"] + has + counts["rejects"]


def test_export_filter_on_tricky_lines_matches_the_json_loads_verdict(tmp_path):
    src = tmp_path / "export.json"
    src.write_bytes(b"\n".join(TRICKY) + b"\n")
    _filtered_as_the_reference(src, TRICKY, tmp_path)


@pytest.mark.parametrize("req", [
    {"base_url": "http://a.example/\u00e9 \"q\"\\.pdf", "sha1": "ab" * 20, "ident": "x"},
    {"base_url": "http://a.example/\u2028\x7f.pdf", "sha1": "AB" * 20},
    {"base_url": "http://b.example/p.pdf", "sha1": "cd" * 20, "ident": None},
    {"base_url": "http://b.example/p.pdf", "sha1": "cd" * 20, "ident": ["a", 1]},
])
def test_request_line_is_dumps(req):
    from pipeline.jsonio import dumps
    entity = {"urls": [{"url": req["base_url"]}], "sha1": req["sha1"]}
    if "ident" in req:
        entity["ident"] = req["ident"]
    request = build_request(entity)
    assert request_line(request) == dumps(request).encode()


@pytest.mark.parametrize("record", [
    {"sha1hex": "a" * 40, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": 12,
     "mimetype": "application/pdf"},
    {"sha1hex": "a" * 40, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": 12,
     "mimetype": "text/\u00e9\"x\""},
    {"sha1hex": "a" * 40, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": True,
     "mimetype": "application/pdf"},
    {"sha1hex": "a" * 40, "size_bytes": 1.5, "mimetype": None},
    {"sha1hex": "a" * 40, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": 10 ** 30,
     "mimetype": "application/pdf"},
])
def test_file_meta_line_is_dumps(record):
    from pipeline.jsonio import dumps
    assert file_meta_line(record) == dumps(record).encode()


def test_merge_refuses_a_result_with_a_nan_anywhere(tmp_path):
    sha1 = "ab" * 20
    good = {"hit": True, "status": "success", "request": {"ext_ids": {"sha1": sha1}},
            "file_meta": {"sha1hex": sha1, "size_bytes": 3, "mimetype": "application/pdf"}}
    line = json.dumps(good)[:-1] + ', "score": NaN}'  # NaN is not JSON: refused by both decoders
    src = tmp_path / "shard.json"
    src.write_text(json.dumps(good) + "\n" + line + "\n")
    counts = merge_results([str(src)], str(tmp_path / "m.json.gz"), str(tmp_path / "r.json.gz"))
    assert counts["out"] == 1 and counts["rejects_by_reason"] == {"invalid-json": 1}
    [(_, reject)] = list(iter_objects(tmp_path / "r.json.gz"))
    assert reject["line"] == 2 and "NaN is not JSON" in reject["detail"]


def _uniq_reference(lines: list[str]) -> tuple[list[str], Counter]:
    first: dict[str, str] = {}
    count: Counter = Counter()
    for line in lines:
        sha1 = json.loads(line)["sha1hex"].lower()
        count[sha1] += 1
        first.setdefault(sha1, line)
    return [first[s] for s in sorted(first)], count


@pytest.mark.parametrize("budget", [1 << 30, 2_000, 300])  # in memory; a few runs; one line a run
def test_uniq_spilling_to_disk_gives_the_in_memory_result(tmp_path, budget):
    lines = []
    for i in range(400):
        k = (i * 7919) % 130  # repeats, in no order
        sha1 = f"{k:040x}" if i % 3 else f"{k:040X}"  # mixed case: one sha1
        size = k if i % 97 else k + 1  # a few conflicting records, first one kept
        lines.append(json.dumps({"sha1hex": sha1, "size_bytes": size}, sort_keys=True))
    src = tmp_path / "merged.json.gz"
    with gzip.open(src, "wt") as f:
        f.write("\n".join(lines) + "\n")
    counts = uniq_file_meta(str(src), str(tmp_path / "u.json.gz"), str(tmp_path / "d.json"), None,
                            memory_budget=budget)
    want, per_sha1 = _uniq_reference(lines)
    assert [line for _, line in iter_lines(tmp_path / "u.json.gz")] == want
    report = json.loads((tmp_path / "d.json").read_text())
    assert counts["in"] == 400 and counts["out"] == len(want) == 130
    ranked = sorted(((k, s) for s, k in per_sha1.items() if k > 1), key=lambda t: (-t[0], t[1]))[:20]
    assert [(m["lines"], m["sha1hex"]) for m in report["most_duplicated"]] == ranked
    assert report["duplicated_sha1"] == sum(1 for k in per_sha1.values() if k > 1)
    assert report["conflicting_sha1"] > 0
    assert not list(tmp_path.glob(".uniq-runs-*"))  # spilled runs are removed


def test_uniq_keeps_memory_flat_by_spilling(tmp_path, monkeypatch):
    import pipeline.steps.uniq as uniq
    spilled = []
    real = uniq._spill
    monkeypatch.setattr(uniq, "_spill", lambda run, d, i: spilled.append(len(run)) or real(run, d, i))
    src = tmp_path / "m.json"
    src.write_text("".join(json.dumps({"sha1hex": f"{i:040x}"}) + "\n" for i in range(1000)))
    uniq.uniq_file_meta(str(src), str(tmp_path / "u.json"), str(tmp_path / "d.json"), None,
                        memory_budget=50_000)
    assert len(spilled) > 5 and max(spilled) * (len(json.dumps({"sha1hex": "0" * 40})) + 200) < 60_000
    assert sum(spilled) == 1000


# -- whole blocks at once (pipeline.jsonfast.decode_block, the uniq's block path) -------------

GOOD = b'{"sha256": "", "urls": [], "sha1": "x"}'


def _blocks():
    """Every tricky line alone, between good lines, and lines a joined parse could merge."""
    for raw in TRICKY:
        yield raw
        yield GOOD + b"\n" + raw + b"\n" + GOOD
    # lines that are not one object each but could add up to as many values as lines
    yield b'{"a": 1} {"b": 2}\n{"c": [{}\n{}]}'
    yield b'{"a": 1}{"b": 2}\n{"c": [\n]}'
    yield b'{"a": [1,\n2]}\n{}'
    yield b'{"a": "x\ny"}'
    yield GOOD + b"\n\n" + GOOD  # a blank line
    yield GOOD + b"\n \n" + GOOD
    yield GOOD + b"\r\n" + GOOD


@pytest.mark.parametrize("block", list(_blocks()))
def test_decode_block_agrees_with_decode_fields_line_by_line(block):
    from pipeline.jsonfast import decode_block
    from pipeline.jsonio import block_lines
    fields = ("sha256", "urls", "sha1", "x")
    decoder = struct_decoder("T", fields)
    got = decode_block(decoder, block)
    if got is None:
        return  # the caller decodes line by line: decode_fields decides, as always
    lines, values = got
    assert lines == block.split(b"\n")
    assert len(list(block_lines(block, 0))) == len(lines)  # no line skipped as blank
    for n, (raw, value) in enumerate(zip(lines, values, strict=True), 1):
        want = decode_fields(decoder, fields, n, raw)
        assert not isinstance(want, BadLine), raw
        assert {f: getattr(value, f) for f in fields if getattr(value, f) is not UNSET} == want


def test_decode_block_takes_a_block_of_plain_objects_whole():
    from pipeline.jsonfast import decode_block
    block = b"\n".join([GOOD] * 50)
    got = decode_block(struct_decoder("T", ("sha256",)), block)
    assert got is not None and len(got[0]) == len(got[1]) == 50


def test_write_joined_keeps_order_and_count_between_single_lines(tmp_path):
    from pipeline.jsonio import AtomicWriter
    with AtomicWriter(tmp_path / "a.json.gz") as w:
        w.write_raw(b"1")
        w.write_joined(b"2\n3\n", 2)
        w.write_joined(b"", 0)
        w.write_raw(b"4")
        w.commit()
    assert w.lines == 4
    with gzip.open(tmp_path / "a.json.gz", "rb") as f:
        assert f.read() == b"1\n2\n3\n4\n"


def _spread_uniq_lines(n: int) -> list[str]:
    """file_meta lines with sha1s spread like real ones (so spilling fills many prefix
    files), repeats, conflicts, and odd lines a block decode must hand to the slow path."""
    import hashlib
    lines = []
    for i in range(n):
        k = (i * 7919) % (n // 3)
        sha1 = hashlib.sha1(b"%d" % k).hexdigest()
        record = {"sha1hex": sha1 if i % 5 else sha1.upper(), "size_bytes": k if i % 89 else -1,
                  "mimetype": "application/pdf"}
        line = json.dumps(record, sort_keys=True)
        if i % 211 == 0:
            line = line + "\r"  # CR LF: the block goes line by line
        elif i % 307 == 0:
            line = " " + line  # leading space: line by line
        elif i % 401 == 0:
            line = json.dumps(record | {"mimetype": "text/\u00e9"}, sort_keys=True,
                              ensure_ascii=False)  # UTF-8
        lines.append(line)
    # sha1s whose prefix is short or odd: one character, non-ASCII, the last code point
    lines += [json.dumps({"sha1hex": s}) for s in ("a", "A", "\u00e9\u00e9x", "0\U0010ffff1",
                                                   "0\U0010ffff", "a")]
    return lines


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("budget", [1 << 30, 40_000, 4_000])  # in memory; prefix files; too big
def test_uniq_of_spread_sha1s_spilled_by_prefix_gives_the_reference(tmp_path, budget, workers):
    lines = _spread_uniq_lines(3000)
    src = tmp_path / "merged.json.gz"
    with gzip.open(src, "wt", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    counts = uniq_file_meta(str(src), str(tmp_path / "u.json.gz"), str(tmp_path / "d.json"),
                            None, memory_budget=budget, workers=workers)
    want, per_sha1 = _uniq_reference([line.rstrip("\r") for line in lines])
    got = [line for _, line in iter_lines(tmp_path / "u.json.gz")]
    assert got == want
    report = json.loads((tmp_path / "d.json").read_text())
    assert counts["in"] == len(lines) and counts["out"] == len(want)
    ranked = sorted(((k, s) for s, k in per_sha1.items() if k > 1), key=lambda t: (-t[0], t[1]))[:20]
    assert [(m["lines"], m["sha1hex"]) for m in report["most_duplicated"]] == ranked
    assert report["duplicated_sha1"] == sum(1 for k in per_sha1.values() if k > 1)
    assert report["duplicate_lines"] == len(lines) - len(want)
    assert report["conflicting_sha1"] > 0
    assert not list(tmp_path.glob(".uniq-runs-*"))


def test_uniq_sorts_spilled_prefix_files_in_memory_a_file_at_a_time(tmp_path, monkeypatch):
    """Memory stays flat: past the budget, no batch sorted in memory is bigger than the
    budget and one read block (1 MiB), and the prefix files are sorted alone (no run merged
    line by line)."""
    import pipeline.steps.uniq as uniq
    sizes = []
    real = uniq._sort_batch
    monkeypatch.setattr(uniq, "_sort_batch", lambda k, v: sizes.append(sum(map(len, v))) or real(k, v))
    monkeypatch.setattr(uniq, "sorted_records", None)  # the external merge sort: not needed
    lines = _spread_uniq_lines(40_000)
    src = tmp_path / "m.json"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    budget = 1_000_000
    counts = uniq.uniq_file_meta(str(src), str(tmp_path / "u.json"), str(tmp_path / "d.json"),
                                 None, memory_budget=budget)
    assert counts["in"] == 40_006
    assert sum(map(len, lines)) > 4 * budget and len(sizes) > 200  # 256 prefix files and more
    assert max(sizes) < budget + (1 << 20)
    assert max(sizes[-200:]) < budget // 2  # the prefix files


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("odd_every", [0, 997, 3001])  # blocks all plain; some odd lines; one
def test_export_filter_block_path_gives_the_line_by_line_verdicts(tmp_path, odd_every, workers):
    """Blocks of a megabyte taken whole (sha256 of every line, then the URL lists of the
    selected ones) keep and count exactly what the line-by-line rules would."""
    odd = [b'{"sha256": "", "urls": [{"url": 1, "rel": "web"}]}',  # selected, bad urls
           b'{"urls": "x"}', b'{"sha256": "", "urls": [{"url": "u", "rel": "w", "rel": 3}]}',
           b'{"sha256": "ab", "urls": 7}',  # bad urls but has a sha256: not a reject
           b'{"sha256": NaN}', b'[1]', b'{"sha256": "", "urls": [{"url": "\\ud800", "rel": "w"}]}']
    raws = []
    for i in range(12_000):
        urls = [{"url": f"http://j{i}.example.org/a/{i}.pdf", "rel": "web"}] * (1 + i % 3)
        entity = {"ident": f"{i:026d}", "urls": urls, "sha1": f"{i:040x}", "state": "active"}
        if i % 3 == 0:
            entity["sha256"] = f"{i:064x}"
        elif i % 3 == 1:
            entity["sha256"] = "" if i % 2 else None
        raws.append(json.dumps(entity).encode())
        if i == 5:
            raws.append(b'{"sha256": "ab", "urls": 7}')  # in a block taken whole
        if odd_every and i % odd_every == 0:
            raws.append(odd[(i // odd_every) % len(odd)])
    assert sum(map(len, raws)) > 3 << 20  # several blocks
    src = tmp_path / "export.json.gz"
    with gzip.open(src, "wb") as f:
        f.write(b"\n".join(raws) + b"\n")
    _filtered_as_the_reference(src, raws, tmp_path, workers)
    got = [(r["line"], r["reason"]) for _, r in iter_objects(tmp_path / "rej.json.gz")]
    want = []
    for n, raw in enumerate(raws, 1):
        obj = reference(raw)
        if isinstance(obj, BadLine):
            want.append((n, obj.reason))
        elif not obj.get("sha256") and url_list_problem(obj.get("urls")) is not None:
            want.append((n, "bad-urls"))
    assert got == want


# -- the merge a block at a time, in worker processes ------------------------------------------


def _old_drop_reason(result: dict) -> str | None:
    """The rule as it was first written (generators and helpers), the reference."""
    import math
    import re

    def is_hex(value, n):
        return isinstance(value, str) and re.fullmatch(f"[0-9a-fA-F]{{{n}}}", value) is not None

    request = result.get("request")
    sha1 = None
    if isinstance(request, dict) and isinstance(request.get("ext_ids"), dict):
        sha1 = request["ext_ids"].get("sha1")
    if not sha1:
        return "bad-result"
    if not result.get("hit") or result.get("status") != "success":
        return "ingest-failed"
    fm = result.get("file_meta")
    if not isinstance(fm, dict) or not fm.get("sha1hex"):
        return "no-file-meta"
    if not is_hex(sha1, 40) or not is_hex(fm["sha1hex"], 40):
        return "bad-sha1"
    if any(k in fm and not is_hex(fm[k], n) for k, n in
           {"sha1hex": 40, "sha256hex": 64, "md5hex": 32}.items()):
        return "bad-file-meta"
    if any(isinstance(fm.get(k), float) and not math.isfinite(fm[k]) for k in ("size_bytes", "mimetype")):
        return "bad-file-meta"
    if fm["sha1hex"].lower() != sha1.lower():
        return "sha1-mismatch"
    return None


def _results(n: int) -> list[bytes]:
    """Ingest results of every kind the merge tells apart, in a repeating mix."""
    sha = [f"{i:040x}" for i in range(n)]
    variants = [
        lambda s: {},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": False, "status": "no-capture"},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": True, "status": "success"},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": True, "status": "success",
                   "file_meta": {"sha1hex": s.upper(), "sha256hex": "A" * 64, "md5hex": "b" * 32,
                                 "size_bytes": 5, "mimetype": "application/pdf"}},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": True, "status": "success",
                   "file_meta": {"sha1hex": s, "sha256hex": "a" * 63, "size_bytes": 5}},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": True, "status": "success",
                   "file_meta": {"sha1hex": "f" * 40, "size_bytes": 5}},
        lambda s: {"request": {"ext_ids": {"sha1": "xyz"}}, "hit": True, "status": "success",
                   "file_meta": {"sha1hex": "xyz"}},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": False, "status": 1},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": False, "status": True},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": False, "status": 1.0},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": False, "status": None},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": 1, "status": "success",
                   "file_meta": {"sha1hex": s, "size_bytes": 1.5, "mimetype": None, "x": [1]}},
        lambda s: {"request": {"ext_ids": {"sha1": s}}, "hit": True, "status": "success",
                   "file_meta": {"md5hex": "0" * 32, "mimetype": "text/\u00e9\"", "sha1hex": s,
                                 "sha256hex": "1" * 64, "size_bytes": 10 ** 20}},
    ]
    good = lambda s: {"request": {"ext_ids": {"sha1": s}, "base_url": "http://a.example/x.pdf"},  # noqa: E731
                      "hit": True, "status": "success", "cdx": {"surt": "x" * 300},
                      "file_meta": {"md5hex": "c" * 32, "mimetype": "application/pdf",
                                    "sha1hex": s, "sha256hex": "d" * 64, "size_bytes": 123}}
    lines = []
    for i, s in enumerate(sha):
        record = variants[i % 41] (s) if i % 41 < len(variants) else good(s)
        lines.append(json.dumps(record, ensure_ascii=False).encode())
    return lines


def _merge_reference(files: dict[str, list[bytes]], latest: dict) -> tuple[list[bytes], list[dict]]:
    from pipeline.jsonio import dumps
    from pipeline.records import file_meta_record
    kept, rejects = [], []
    for source, lines in files.items():
        for n, raw in enumerate(lines, 1):
            raw = latest.get(source, {}).get(n, raw)
            obj = reference(raw, n)
            if isinstance(obj, BadLine):
                rejects.append({"reason": obj.reason, "line": n})
                continue
            reason = _old_drop_reason(obj)
            if reason is None:
                kept.append(dumps(file_meta_record(obj["file_meta"])).encode())
            else:
                rejects.append({"reason": reason, "line": n, "source": source, "record": obj})
    return kept, rejects


@pytest.mark.parametrize("workers", [1, 2])
def test_merge_in_blocks_and_processes_gives_the_line_by_line_result(tmp_path, workers):
    lines = _results(9000)
    files = {"a.json.gz": lines[:6000] + [b'{"hit": NaN}', b"[]"] + lines[6000:7000],
             "b.json": lines[7000:], "c.json.gz": lines[:10]}
    paths = []
    for name, body in files.items():
        path = tmp_path / name
        data = b"\n".join(body) + b"\n"
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
        paths.append(str(path))
    assert sum(map(len, lines)) > 2 << 20  # several blocks
    latest = {"a.json.gz": {3: lines[2], 4000: b'{"x": 1}'}}  # a retried result, in place
    counts = merge_results(paths, str(tmp_path / "m.json.gz"), str(tmp_path / "r.json.gz"),
                           workers=workers, latest=latest)
    kept, rejects = _merge_reference(files, latest)
    with gzip.open(tmp_path / "m.json.gz", "rb") as f:
        assert f.read() == b"".join(k + b"\n" for k in kept)
    got = [obj for _, obj in iter_objects(tmp_path / "r.json.gz")]
    assert [(r["reason"], r["line"]) for r in got] == [(r["reason"], r["line"]) for r in rejects]
    assert [r["record"] for r in got if "record" in r] == [r["record"] for r in rejects if "record" in r]
    assert counts["in"] == sum(map(len, files.values())) == counts["out"] + counts["rejects"]
    assert counts["per_source"] == {name: len(body) for name, body in files.items()}
    assert counts["rejects_by_reason"] == dict(sorted(Counter(r["reason"] for r in rejects).items()))
    statuses = Counter(str(r.get("status")) for lines in files.values() for n, raw in enumerate(lines, 1)
                       if isinstance(r := reference(latest.get("a.json.gz" if lines is files["a.json.gz"]
                                                               else "", {}).get(n, raw)), dict))
    assert counts["status"] == dict(sorted(statuses.items()))
    assert {"1", "True", "1.0", "None"} <= set(counts["status"])


def test_merge_output_does_not_depend_on_workers(tmp_path):
    lines = _results(9000)
    src = tmp_path / "s.json.gz"
    src.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    outs = []
    for workers in (1, 2, 3):
        out, rej = tmp_path / f"m{workers}.json.gz", tmp_path / f"r{workers}.json.gz"
        merge_results([str(src)], str(out), str(rej), workers=workers)
        outs.append((out.read_bytes(), rej.read_bytes()))
    assert outs[0] == outs[1] == outs[2]


def test_drop_reason_of_is_the_rule_as_first_written():
    from pipeline.records import drop_reason
    for raw in _results(400) + TRICKY:
        obj = reference(raw)
        if not isinstance(obj, BadLine):
            assert drop_reason(obj) == _old_drop_reason(obj), raw
