"""The sample world (data/generate_world.py) is deterministic, well-formed and its oracle honest.

Other areas use the world's `expected.json` as the oracle of their tests, so
these tests check the world itself: byte-identical regeneration, sorted
indexes, every index row pointing at a real record with the right digest
(and the deliberately damaged ones really damaged), valid PDFs, the export's
mix of entities, and the oracle's request list derived from the export by
docs/data.md's rules.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pypdf
import pytest
import surt as surt_package
from warcio.archiveiterator import ArchiveIterator

from pipeline.archive.surt import surt as project_surt

ROOT = Path(__file__).resolve().parent.parent
STATUSES = {
    "success", "no-capture", "link-loop", "wrong-mimetype", "redirect-loop", "wayback-error",
    "null-body", "no-pdf-link", "skip-url-blocklist", "terminal-bad-status", "cdx-error",
    "wayback-content-error", "blocked-cookie", "bad-redirect", "redirects-exceeded",
    "max-hops-exceeded", "bad-gzip-encoding", "body-too-large",
}
WAYBACK = ("://web.archive.org/", "://archive.org/")


# -- helpers -------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def export_objects(world: Path) -> list[tuple[int, dict | None, str]]:
    out = []
    with gzip.open(world / "file_export.json.gz", "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            out.append((n, obj if isinstance(obj, dict) else None, line))
    return out


def spec_request(e: dict) -> tuple[str | None, str | None]:
    """docs/data.md written out again, independently of the generator: (base_url, reject reason)."""
    if "mimetype" in e and e["mimetype"] != "application/pdf":
        return None, "not-pdf-mimetype"
    if "state" in e and e["state"] != "active":
        return None, "not-active"
    usable = [u["url"] for u in e.get("urls", []) if not any(m in u["url"] for m in WAYBACK)]
    if not usable:
        return None, "no-usable-url"
    if not e.get("sha1"):
        return None, "no-sha1"
    return usable[0], None


def index_rows(world: Path) -> list[dict]:
    """Every row of both index files, parsed (broken lines come back with `broken`)."""
    rows = []
    idx = world / "collection" / "indexes"
    for n, line in enumerate((idx / "index.cdxj").read_text("utf-8").splitlines(), 1):
        key, ts, rest = line.split(" ", 2)
        try:
            f = json.loads(rest)
        except ValueError:
            rows.append({"index": "cdxj", "line": n, "key": key, "ts": ts, "broken": True})
            continue
        rows.append({"index": "cdxj", "line": n, "key": key, "ts": ts, "url": f["url"],
                     "mime": f["mime"], "status": f.get("status"),
                     "digest": f["digest"].removeprefix("sha1:"), "length": int(f["length"]),
                     "offset": int(f["offset"]), "filename": f["filename"]})
    lines = (idx / "extra.cdx").read_text("utf-8").splitlines()
    assert lines[0] == " CDX N b a m s k r M S V g"
    for n, line in enumerate(lines[1:], 2):
        key, ts, url, mime, status, digest, redirect, meta, length, offset, filename = line.split(" ")
        rows.append({"index": "cdx", "line": n, "key": key, "ts": ts, "url": url, "mime": mime,
                     "status": None if status == "-" else status, "digest": digest,
                     "length": int(length), "offset": int(offset), "filename": filename})
    return rows


def read_member(path: Path, offset: int, length: int) -> bytes:
    """The one gzip member at offset/length, inflated; raises if it is not exactly one member."""
    with open(path, "rb") as f:
        f.seek(offset)
        raw = f.read(length)
    d = zlib.decompressobj(zlib.MAX_WBITS | 16)
    out = d.decompress(raw)
    if not d.eof or d.unused_data:
        raise ValueError("not exactly one complete gzip member")
    return out


def b32(data: bytes) -> str:
    return base64.b32encode(hashlib.sha1(data).digest()).decode()


def damaged_by_key(expected: dict) -> dict[tuple[str, str], dict]:
    return {(d["url"], d["timestamp"]): d for d in expected["damaged_captures"]}


@pytest.fixture(scope="module")
def expected(world):
    return json.loads((world / "expected.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def rows(world):
    return index_rows(world)


# -- determinism, layout and atomic writing ---------------------------------------------------


def test_same_seed_gives_byte_identical_world(world, world_generator, tmp_path):
    again = tmp_path / "again"
    world_generator.generate(again, seed=0)
    first, second = tree(world), tree(again)
    assert sorted(first) == sorted(second)
    for name in first:
        assert first[name] == second[name], name


def test_layout_and_size(world, expected):
    names = set(tree(world))
    for required in ("file_export.json.gz", "expected.json", "file_hashes.tsv.gz", "summary.json",
                     "collection/indexes/index.cdxj", "collection/indexes/extra.cdx"):
        assert required in names
    warcs = sorted(n for n in names if n.startswith("collection/archive/"))
    assert len(warcs) >= 4 and all(n.endswith(".warc.gz") for n in warcs)
    total = sum((world / n).stat().st_size for n in names)
    assert total < 8_000_000, total  # "a few MB", the 129 MiB body included
    summary = json.loads((world / "summary.json").read_text())
    assert summary["requests"] == len(expected["requests"])
    assert summary["statuses"] == expected["counts"]
    assert not list(world.parent.glob(".world.tmp-*"))


def test_interrupted_run_leaves_previous_world_and_no_temp(world_generator, tmp_path, monkeypatch):
    out = tmp_path / "w"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # an earlier world
    from worldgen import archive

    def boom(self, coll_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(archive.ArchiveBuilder, "write", boom)
    with pytest.raises(KeyboardInterrupt):
        world_generator.generate(out, seed=0)
    assert (out / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


def test_refuses_to_replace_something_that_is_not_a_world(world_generator, tmp_path):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a generated world"):
        world_generator.generate(precious, seed=0)
    assert (precious / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a directory"):
        world_generator.generate(a_file, seed=0)


def test_cli_writes_a_world_and_rejects_bad_arguments(tmp_path):
    script = str(ROOT / "data" / "generate_world.py")
    out = tmp_path / "cli-world"
    done = subprocess.run([sys.executable, script, "--out", str(out), "--seed", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["seed"] == 1 and (out / "summary.json").is_file()
    bad = subprocess.run([sys.executable, script, "--seed", "zero"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "invalid int value" in bad.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x").write_text("x")
    bad = subprocess.run([sys.executable, script, "--out", str(tmp_path / "other")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "refusing to replace" in bad.stderr


# -- the export and the oracle -------------------------------------------------------------------


def test_export_mix(world):
    objs = export_objects(world)
    entities = [o for _, o, _ in objs if o is not None]
    bad = [line for _, o, line in objs if o is None]
    assert len(entities) == 2500 and len(bad) == 5
    kinds = Counter()
    for line in bad:
        try:
            kinds[type(json.loads(line)).__name__] += 1
        except ValueError:
            kinds["not-json"] += 1
    assert kinds["list"] == 1 and kinds["not-json"] >= 3
    for e in entities:
        assert len(e["ident"]) == 26 and set(e["ident"]) <= set("abcdefghijklmnopqrstuvwxyz234567")
        assert all(v is not None for v in e.values())
    missing = [e for e in entities if not e.get("sha256")]
    assert 1000 <= len(missing) <= 1400
    assert any(e.get("sha256") == "" for e in entities)
    assert any("md5" not in e and "sha1" in e for e in missing)
    assert any("size" not in e and "sha1" in e for e in missing)
    assert any("sha1" not in e and e.get("state") != "deleted" for e in missing)
    assert {e.get("state") for e in entities} >= {"active", "wip", "redirect", "deleted"}
    rels = Counter(u["rel"] for e in entities for u in e.get("urls", []))
    assert rels["social"] and rels["webarchive"] and rels["repository"]
    urls = [e.get("urls", []) for e in missing]
    assert any(u and "web.archive.org" in u[0]["url"] and len(u) > 1 for u in urls)  # wayback first
    assert any(len(u) != len({(x["url"], x["rel"]) for x in u}) for u in urls)  # dup url/rel
    assert any({x["url"].split("://", 1)[1] for x in u if x["url"].startswith("http://")}
               & {x["url"].split("://", 1)[1] for x in u if x["url"].startswith("https://")}
               for u in urls)  # http/https twins
    sha1s = Counter(e["sha1"] for e in entities if e.get("sha1"))
    assert sum(1 for c in sha1s.values() if c > 1) >= 15


def test_oracle_lists_exactly_the_requests_the_export_yields(world, expected):
    derived, rejects = [], Counter()
    for n, e, _ in export_objects(world):
        if e is None or e.get("sha256"):
            continue
        base_url, reason = spec_request(e)
        if reason:
            rejects[reason] += 1
        else:
            derived.append({"line": n, "ident": e["ident"], "base_url": base_url, "sha1": e["sha1"]})
    listed = [{k: r[k] for k in ("line", "ident", "base_url", "sha1")} for r in expected["requests"]]
    assert listed == derived
    assert dict(rejects) == expected["request_reject_counts"]
    assert set(rejects) == {"not-pdf-mimetype", "not-active", "no-usable-url", "no-sha1"}
    for r in expected["requests"]:
        assert set(r) <= {"line", "ident", "base_url", "sha1", "status", "why", "fetched_sha1",
                          "status_over_http"}
        assert r.get("status_over_http", "wayback-error") == "wayback-error"
        assert r["status"] in STATUSES and r["why"]


def test_every_status_present_and_rare_ones_rare(expected):
    counts = expected["counts"]
    assert set(counts) == STATUSES
    assert counts == dict(Counter(r["status"] for r in expected["requests"]))
    for status, n in counts.items():
        if status not in ("success", "no-capture"):
            assert 1 <= n <= 5, (status, n)
    assert counts["success"] > 0.9 * len(expected["requests"])


def test_http_differences_are_the_unreplayable_captures(expected):
    """Requests whose status differs through pywb are exactly those of damaged captures that
    pywb cannot replay (docs/archive.md), and the HTTP counts add up."""
    differ = {r["base_url"] for r in expected["requests"] if "status_over_http" in r}
    unreplayable = {d["url"] for d in expected["damaged_captures"]
                    if d["status_over_http"] != d["status"]}
    assert differ == unreplayable and len(differ) == 3
    assert sum(expected["counts_over_http"].values()) == len(expected["requests"])
    assert (expected["counts_over_http"]["wayback-error"]
            == expected["counts"]["wayback-error"] + len(differ))


def test_revisit_failures_are_planted_with_sandcrawlers_statuses(expected):
    """A revisit whose original is not in the index is the archive's failure
    (`wayback-error`, everywhere); a revisit of a revisit is damaged content locally."""
    by_kind = {d["kind"]: d for d in expected["damaged_captures"]}
    lost, chained = by_kind["unresolvable-revisit"], by_kind["revisit-of-revisit"]
    assert (lost["status"], lost["status_over_http"]) == ("wayback-error", "wayback-error")
    assert (chained["status"], chained["status_over_http"]) == ("wayback-content-error", "wayback-error")
    requests = {r["base_url"]: r for r in expected["requests"]}
    assert requests[lost["url"]]["status"] == "wayback-error"
    assert "status_over_http" not in requests[lost["url"]]
    assert requests[chained["url"]]["status"] == "wayback-content-error"


def test_merge_and_import_counts_follow_from_the_requests(world, expected):
    ok = [r for r in expected["requests"] if r["status"] == "success"]
    matched = [r for r in ok if r.get("fetched_sha1") == r["sha1"]]
    merge = expected["merge"]
    assert merge["file_meta"] == len(matched) and merge["sha1_mismatch"] == len(ok) - len(matched) > 0
    assert merge["uniq"] == len({r["sha1"] for r in matched}) and merge["duplicate_lines"] > 0
    imp = expected["import"]
    assert imp["total"] == merge["uniq"]
    assert imp["update"] + imp["skip-existing-complete"] + imp.get("skip-no-match", 0) == imp["total"]
    assert imp["skip-existing-complete"] >= 1


def test_file_hashes_dump(world):
    entities = {o["ident"]: o for _, o, _ in export_objects(world) if o is not None}
    with gzip.open(world / "file_hashes.tsv.gz", "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(entities)
    for line in lines:
        ident, rev, sha1, sha256, md5 = line.split("\t")
        e = entities[ident]
        assert (rev, sha1, sha256, md5) == (e.get("revision", ""), e.get("sha1", ""),
                                            e.get("sha256", ""), e.get("md5", ""))
    # The runbook's count check: the dump and the export agree on how many lack sha256.
    lacking = sum(1 for e in entities.values() if not e.get("sha256"))
    assert sum(1 for line in lines if not line.split("\t")[3]) == lacking
    assert any(not line.split("\t")[2] for line in lines)  # entities without a sha1 are rows too


# -- the archive ---------------------------------------------------------------------------------


def test_indexes_sorted_with_surt_keys(world, rows):
    idx = world / "collection" / "indexes"
    cdxj = (idx / "index.cdxj").read_bytes().splitlines()
    assert cdxj == sorted(cdxj)
    cdx = (idx / "extra.cdx").read_bytes().splitlines()[1:]
    assert cdx == sorted(cdx) and len(cdx) >= 50
    for row in rows:
        assert len(row["ts"]) == 14 and row["ts"].isdigit()
        if "url" in row:
            assert row["key"] == surt_package.surt(row["url"]) == project_surt(row["url"]), row
    keys = Counter(r["key"] for r in rows)
    assert max(keys.values()) <= 25  # "the newest 25" never hides a row
    by_key: dict[str, set] = {}
    for r in rows:
        by_key.setdefault(r["key"], set()).add(r["index"])
    assert any(v == {"cdx", "cdxj"} for v in by_key.values())  # some URLs need both files


def test_every_row_points_at_its_record(world, rows, expected):
    """Offset/length hold exactly one gzip member whose record matches the row, digest included;
    the rows expected.json names as damaged fail in the way it says."""
    archive = world / "collection" / "archive"
    damaged = damaged_by_key(expected)
    originals = {(r["url"], r["ts"]): r for r in rows if "url" in r}
    seen_damage = set()
    for row in rows:
        key = (row.get("url"), row["ts"])
        if row.get("broken"):
            d = next(d for d in expected["damaged_captures"] if d["kind"] == "broken-index-line")
            assert d["timestamp"] == row["ts"] and project_surt(d["url"]) == row["key"]
            seen_damage.add("broken-index-line")
            continue
        kind = damaged.get(key, {}).get("kind")
        path = archive / row["filename"]
        if kind == "missing-warc":
            assert not path.exists()
            seen_damage.add(kind)
            continue
        if kind in ("bytes", "offset"):
            with pytest.raises((zlib.error, ValueError)):
                read_member(path, row["offset"], row["length"])
            seen_damage.add(kind)
            continue
        raw = read_member(path, row["offset"], row["length"])
        record = next(iter(ArchiveIterator(io.BytesIO(raw), no_record_parse=False)))
        h = record.rec_headers
        assert h.get_header("WARC-Target-URI") == row["url"]
        date = h.get_header("WARC-Date")
        assert date.replace("-", "").replace(":", "").replace("T", "").rstrip("Z") == row["ts"]
        declared = h.get_header("WARC-Payload-Digest").removeprefix("sha1:")
        if record.rec_type == "revisit":
            assert row["mime"] == "warc/revisit" and row["status"] is None
            assert declared == row["digest"]
            ref = (h.get_header("WARC-Refers-To-Target-URI"),
                   h.get_header("WARC-Refers-To-Date").replace("-", "").replace(":", "")
                   .replace("T", "").rstrip("Z"))
            target = originals.get(ref)
            if kind == "unresolvable-revisit":
                assert target is None
            elif kind == "revisit-of-revisit":
                assert target is not None and target["mime"] == "warc/revisit"
            else:
                assert target is not None and target["mime"] != "warc/revisit"
                assert target["digest"] == row["digest"]
            if kind:
                seen_damage.add(kind)
            continue
        assert record.rec_type == "response"
        assert str(record.http_headers.get_statuscode()) == row["status"]
        digest = hashlib.sha1()
        while chunk := record.raw_stream.read(1 << 20):
            digest.update(chunk)
        actual = base64.b32encode(digest.digest()).decode()
        assert actual == declared
        if kind == "digest":
            assert actual != row["digest"]
            seen_damage.add(kind)
        else:
            assert actual == row["digest"], row
    assert seen_damage == {d["kind"] for d in expected["damaged_captures"]}


def test_every_stored_pdf_opens_with_its_page_count(world, rows, expected):
    pdfs = json.loads((world / "pdfs.json").read_text())
    archive = world / "collection" / "archive"
    damaged = damaged_by_key(expected)
    checked = set()
    for row in rows:
        if row.get("broken") or row["mime"] == "warc/revisit" or (row["url"], row["ts"]) in damaged:
            continue
        if row["length"] > 100_000:  # the 129 MiB body: not a real PDF
            continue
        raw = read_member(archive / row["filename"], row["offset"], row["length"])
        record = next(iter(ArchiveIterator(io.BytesIO(raw))))
        body = record.content_stream().read()
        if body[:2] == b"\x1f\x8b":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                continue  # the bad-gzip-encoding captures
        if not body.startswith(b"%PDF"):
            continue
        sha1 = hashlib.sha1(body).hexdigest()
        if sha1 in checked:
            continue
        assert sha1 in pdfs, row["url"]
        assert len(pypdf.PdfReader(io.BytesIO(body)).pages) == pdfs[sha1]["pages"]
        assert len(body) == pdfs[sha1]["size"]
        assert 1000 <= len(body) <= 40 * 1024
        checked.add(sha1)
    assert len(checked) >= 1000
    assert len({p["pages"] for p in pdfs.values()}) >= 5
    fetched = {r["fetched_sha1"] for r in expected["requests"] if r["status"] == "success"}
    assert fetched <= checked


def test_big_body_is_big_on_read_and_small_on_disk(world, rows, expected):
    r = next(x for x in expected["requests"] if x["status"] == "body-too-large")
    row = next(x for x in rows if x.get("url") == r["base_url"])
    assert row["length"] < 200_000
    raw = read_member(world / "collection" / "archive" / row["filename"], row["offset"], row["length"])
    record = next(iter(ArchiveIterator(io.BytesIO(raw))))
    size = 0
    while chunk := record.content_stream().read(1 << 22):
        size += len(chunk)
    assert size > 128 * 1024 * 1024


def test_index_agrees_with_the_project_indexer(world, rows, expected):
    """Re-indexing the WARCs with pipeline.archive.indexer gives the generator's rows back
    (apart from the deliberately inconsistent ones)."""
    from pipeline.archive.indexer import index_warc

    damaged = damaged_by_key(expected)
    ours = {(r["key"], r["ts"], r["url"], r["mime"], r["status"], r["digest"], r["length"],
             r["offset"], r["filename"])
            for r in rows if "url" in r and (r["url"], r["ts"]) not in damaged}
    theirs = set()
    for path in sorted((world / "collection" / "archive").glob("*.warc.gz")):
        if any(d["filename"] == path.name and d["kind"] == "bytes" for d in expected["damaged_captures"]):
            continue  # a sequential reader cannot get past the damaged member
        for e in index_warc(str(path)):
            if (e.url, e.timestamp) not in damaged:
                theirs.add((e.urlkey, e.timestamp, e.url, e.mime, e.status,
                            e.digest.removeprefix("sha1:"), e.length, e.offset, e.filename))
    assert ours == theirs
