"""Property-based tests (hypothesis): parsers, SURT keys, URL joining, the request transform,
merge and uniq invariants. Each property holds for every input hypothesis can think of,
not only for the cases written down elsewhere."""

from __future__ import annotations

import gzip
import json
import string
import tempfile
from pathlib import Path

import pytest
import surt as reference_surt
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.archive.model import CdxError
from pipeline.archive.rows import parse_index_line
from pipeline.archive.surt import surt
from pipeline.ingest.urls import is_http_url, join_location
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import InputError, iter_objects, iter_raw_lines
from pipeline.jsonline import MAX_DEPTH, BadLine, parse_object
from pipeline.steps.export_filter import filter_missing_sha256
from pipeline.steps.ingest_request import ARCHIVE_MARKERS, Rejected, build_request
from pipeline.steps.merge import merge_results
from pipeline.steps.uniq import uniq_file_meta

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _write(dirpath: str, name: str, data: bytes, gz: bool) -> str:
    path = Path(dirpath) / name
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return str(path)


# -- JSON-lines reading ------------------------------------------------------------------

@FAST
@given(st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b), max_size=30), st.booleans())
def test_any_bytes_give_numbered_lines_or_bad_lines(lines, gz):
    """Whatever the bytes, reading never raises: every non-blank line comes back once, with
    its own number, as UTF-8 bytes or as a BadLine saying why not."""
    data = b"\n".join(lines) + b"\n"
    with tempfile.TemporaryDirectory() as d:
        path = _write(d, "x.json.gz" if gz else "x.json", data, gz)
        if not gz and data.startswith(b"\x1f\x8b"):  # read as gzip by its content: not one
            with pytest.raises(InputError, match="x.json: unreadable or truncated"):
                list(iter_raw_lines(path))
            return
        got = list(iter_raw_lines(path))
    numbers = [n for n, _ in got]
    assert numbers == sorted(set(numbers))
    for n, item in got:
        original = lines[n - 1]
        if isinstance(item, BadLine):
            assert item.reason == "invalid-utf8" and item.line == n
            try:
                original.decode("utf-8")
                raise AssertionError(f"valid UTF-8 line {n} reported bad")
            except UnicodeDecodeError:
                pass
        else:
            assert item == original.rstrip(b"\r")
    skipped = {i + 1 for i, raw in enumerate(lines)} - set(numbers)
    for n in skipped:  # only blank lines are skipped
        assert not lines[n - 1].decode("utf-8").strip()


@FAST
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=5), max_size=20),
       st.lists(st.integers(0, 20), max_size=5))
def test_objects_round_trip_with_their_line_numbers(objs, blanks):
    lines = [json.dumps(o, ensure_ascii=False) for o in objs]
    for pos in sorted(blanks, reverse=True):
        lines.insert(min(pos, len(lines)), "  ")
    with tempfile.TemporaryDirectory() as d:
        path = _write(d, "x.json.gz", ("\n".join(lines) + "\n").encode(), True)
        got = list(iter_objects(path))
    assert [o for _, o in got] == objs
    assert [lines[n - 1] for n, _ in got] == [json.dumps(o, ensure_ascii=False) for o in objs]


@FAST
@given(st.text(max_size=200))
def test_parse_object_never_raises(text):
    obj = parse_object(7, text)
    assert isinstance(obj, dict) or (isinstance(obj, BadLine) and obj.line == 7)


# Leaves of JSON text on which the two decoders could part, and whether each is refused.
EDGE_LEAVES = {
    "NaN": True, "Infinity": True, "-Infinity": True,  # not JSON
    '"\\udc00"': True, '"a\\ud800"': True, '"\\ude00\\ud83d"': True,  # lone surrogates
    "1" * 4301: True,  # beyond Python's int-string limit
    "1" * 4300: False, "1e999": False, "-1" + "0" * 400 + ".5": False,  # inf, but JSON
    '"\\ud83d\\ude00"': False, '"\\\\udc00"': False,  # a pair; an escaped backslash
    '"' + "[" * 1200 + '"': False, '"' + "9" * 5000 + '"': False,  # text, not structure
    '"x"': False, "0": False, "null": False, "[]": False, "{}": False,
}
DEPTHS = [0, 1, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH, 600, 995, 1000]  # in an object: one more
FIELDS = ("sha256", "urls", "x")


@st.composite
def edge_lines(draw):
    """An object whose values are edge leaves nested in arrays, and whether it is refused."""
    keys = draw(st.lists(st.sampled_from(("sha256", "urls", "x", "y")), min_size=1, max_size=3,
                         unique=True))
    parts, refused = [], False
    for key in keys:
        leaf = draw(st.sampled_from(sorted(EDGE_LEAVES)))
        depth = draw(st.sampled_from(DEPTHS))
        parts.append(f'"{key}": ' + "[" * depth + leaf + "]" * depth)
        levels = 1 + depth + (leaf in ("[]", "{}"))  # the object, the arrays, the leaf's own
        refused = refused or EDGE_LEAVES[leaf] or levels > MAX_DEPTH
    return "{" + ", ".join(parts) + "}", refused


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edge_lines())
def test_fast_and_slow_decoders_give_one_verdict(case):
    """msgspec (the fields a step reads) and json.loads (the whole line) agree on every line
    built from the edge cases: refused exactly when a rule says so, as `invalid-json`, and
    otherwise the same values."""
    line, refused = case
    slow = parse_object(3, line)
    fast = decode_fields(struct_decoder("Edge", FIELDS), FIELDS, 3, line.encode())
    if refused:
        assert isinstance(slow, BadLine) and slow.reason == "invalid-json" and slow.line == 3
        assert fast == slow
    else:
        assert isinstance(slow, dict) and isinstance(fast, dict)
        assert fast == {f: slow[f] for f in FIELDS if f in slow}
        json.dumps(slow, ensure_ascii=False).encode("utf-8")  # Unicode text throughout


# -- index rows ------------------------------------------------------------------------

@FAST
@given(st.text(max_size=120), st.booleans())
def test_an_index_line_is_a_row_or_a_cdx_error(line, cdxj):
    try:
        row = parse_index_line(line, cdxj=cdxj)
    except CdxError:
        return
    assert len(row.datetime) == 14 and row.url and len(row.sha1hex) == 40


# -- SURT keys and URLs ----------------------------------------------------------------

# labels start with a letter: an all-digit host is an IP address, with rules of its own
labels = st.tuples(st.sampled_from(string.ascii_lowercase),
                   st.text(string.ascii_lowercase + string.digits, max_size=7)).map("".join)
hosts = st.lists(labels, min_size=1, max_size=4).map(".".join)
segments = st.lists(st.text(string.ascii_letters + string.digits + "-_.~%", max_size=8), max_size=4)
queries = st.lists(st.tuples(st.text(string.ascii_lowercase, min_size=1, max_size=4),
                             st.text(string.ascii_letters + string.digits, max_size=4)), max_size=3)


@st.composite
def http_urls(draw):
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    host = draw(hosts)
    if draw(st.booleans()):
        host = "www." + host
    if draw(st.booleans()):
        host = host.upper()
    path = "/" + "/".join(draw(segments))
    query = "&".join(f"{k}={v}" for k, v in draw(queries))
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


@FAST
@given(http_urls())
def test_surt_matches_the_reference(url):
    assert surt(url) == reference_surt.surt(url)


@FAST
@given(http_urls())
def test_surt_ignores_scheme_case_and_www(url):
    scheme, rest = url.split("://", 1)
    host, _, tail = rest.partition("/")
    plain = host.lower().removeprefix("www.")
    assert surt(url) == surt(f"http://{plain}/{tail}") == surt(f"https://www.{plain}/{tail}")


@FAST
@given(http_urls(), st.text(max_size=60))
@example(base="http://a/", location="0 ;")  # joined to "http://a/0 ", a space at its end
def test_join_location_never_raises_and_gives_http_or_none(base, location):
    target = join_location(base, location)
    assert target is None or (is_http_url(target) and "#" not in target)


@FAST
@given(http_urls(), http_urls())
def test_absolute_location_wins(base, location):
    scheme, rest = location.split("://", 1)
    assert join_location(base, location) in (location, f"{scheme.lower()}://{rest}")


# -- the request transform -----------------------------------------------------------

entities = st.fixed_dictionaries({}, optional={
    "ident": st.text(max_size=26) | json_values,
    "sha1": st.text("0123456789abcdefABCDEF", min_size=40, max_size=40) | json_values,
    "mimetype": st.sampled_from(["application/pdf", "text/html"]) | json_values,
    "state": st.sampled_from(["active", "deleted"]) | json_values,
    "urls": st.lists(st.fixed_dictionaries({"url": http_urls() | json_values,
                                            "rel": st.sampled_from(["web", "webarchive"])})
                     | json_values, max_size=3) | json_values,
})


@FAST
@given(entities)
def test_request_transform_gives_a_request_or_a_reason(entity):
    try:
        req = build_request(entity)
    except Rejected as r:
        assert r.reason in {"not-pdf-mimetype", "not-active", "no-usable-url", "no-sha1", "bad-sha1"}
        return
    assert sorted(req) == ["base_url", "ext_ids", "ingest_request_source", "ingest_type",
                           "link_source", "link_source_id"]
    assert is_http_url(req["base_url"]) and not any(m in req["base_url"] for m in ARCHIVE_MARKERS)
    assert req["ext_ids"]["sha1"] == entity["sha1"].lower()
    assert not entity.get("mimetype") or entity["mimetype"] == "application/pdf"


@FAST
@given(st.lists(entities.map(json.dumps) | st.text(max_size=30), max_size=25))
def test_export_filter_counts_add_up(lines):
    lines = [ln.replace("\n", " ").replace("\r", " ") for ln in lines]
    with tempfile.TemporaryDirectory() as d:
        export = _write(d, "export.json.gz", ("\n".join(lines) + "\n").encode(), True)
        counts = filter_missing_sha256(export, f"{d}/out.json.gz", f"{d}/rej.json.gz")
    assert counts["in"] == counts["out"] + counts["has_sha256"] + counts["rejects"]
    assert counts["in"] == sum(1 for ln in lines if ln.strip())


# -- merge and uniq --------------------------------------------------------------------

sha1s = st.sampled_from([f"{i:040x}" for i in range(6)])


@st.composite
def results(draw):
    sha1 = draw(sha1s)
    fetched = draw(st.sampled_from([sha1, sha1.upper(), f"{99:040x}"]))
    return {"request": {"ext_ids": {"sha1": sha1}, "base_url": "http://x.example/a.pdf",
                        "ingest_type": "pdf"},
            "hit": draw(st.booleans()), "status": draw(st.sampled_from(["success", "no-capture"])),
            "file_meta": {"sha1hex": fetched, "sha256hex": "a" * 64, "md5hex": "b" * 32,
                          "size_bytes": draw(st.integers(1, 3)), "mimetype": "application/pdf"}}


@settings(max_examples=25, deadline=None)
@given(st.lists(results(), max_size=30), st.lists(results(), max_size=10))
def test_merge_and_uniq_invariants(shard, extra):
    with tempfile.TemporaryDirectory() as d:
        a = _write(d, "shard.json.gz", "".join(json.dumps(r) + "\n" for r in shard).encode(), True)
        b = _write(d, "extra.json.gz", "".join(json.dumps(r) + "\n" for r in extra).encode(), True)
        counts = merge_results([a, b], f"{d}/fm.json.gz", f"{d}/rej.json.gz")
        assert counts["in"] == counts["out"] + counts["rejects"] == len(shard) + len(extra)
        kept = [o for _, o in iter_objects(f"{d}/fm.json.gz")]
        good = [r for r in shard + extra if r["hit"] and r["status"] == "success"
                and r["file_meta"]["sha1hex"].lower() == r["request"]["ext_ids"]["sha1"]]
        assert len(kept) == len(good)
        out = {}
        for budget in (1 << 20, 200):  # in memory, and an external sort of many tiny runs
            u = uniq_file_meta(f"{d}/fm.json.gz", f"{d}/u{budget}.json.gz", f"{d}/dupes.json", None,
                               memory_budget=budget)
            out[budget] = Path(f"{d}/u{budget}.json.gz").read_bytes()
            rows = [o for _, o in iter_objects(f"{d}/u{budget}.json.gz")]
            keys = [r["sha1hex"] for r in rows]
            assert keys == sorted(set(keys)) == sorted({k["sha1hex"] for k in kept})
            assert u["in"] == len(kept) and u["out"] == len(keys)
            assert u["duplicate_lines"] == len(kept) - len(keys)
            # the first record of each sha1 is the one kept
            first = {}
            for k in kept:
                first.setdefault(k["sha1hex"], k)
            assert rows == [first[k] for k in keys]
        assert out[1 << 20] == out[200]
