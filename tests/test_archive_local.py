"""The local collection: binary-searched indexes and verified WARC reads."""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import random
import re

import pytest
from archive_collections import CollectionBuilder, cdxj, write_lines

from pipeline.archive import local as local_module
from pipeline.archive import open_archive
from pipeline.archive import sortedindex as sortedindex_module
from pipeline.archive.indexer import index_collection
from pipeline.archive.local import LocalCdxClient, LocalContentClient, open_local
from pipeline.archive.model import CdxError, WaybackContentError, WaybackError
from pipeline.archive.rows import sha1_hex_to_b32
from pipeline.archive.sortedindex import SortedIndex
from pipeline.archive.surt import surt
from pipeline.checks import StepFailed
from pipeline.ingest.settings import IngestSettings
from pipeline.ingest.shard import run_shard
from pipeline.ingest.worker import IngestWorker

PDF = b"%PDF-1.4\n" + b"x" * 5000 + b"\n%%EOF\n"
DIGEST = sha1_hex_to_b32(hashlib.sha1(PDF).hexdigest())


def _digest(body: bytes) -> str:
    return sha1_hex_to_b32(hashlib.sha1(body).hexdigest())


# --- index search ------------------------------------------------------------------------


def _spread_index(tmp_path):
    """Rows of several URLs spread over a CDXJ and a classic CDX file."""
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True)
    (root / "archive").mkdir()
    urls = ["http://aaa.example/first", "http://mmm.example/middle", "http://zzz.example/last"]
    cdxj_lines, cdx_lines = [], []
    for n, url in enumerate(urls):
        for year in (2015, 2017, 2019):
            ts = f"{year}0101000000"
            fields = dict(url=url, mime="application/pdf", status="200", digest=DIGEST,
                          length="100", offset=str(n * 1000 + year), filename="a.warc.gz")
            if year == 2017:  # the middle capture lives in the classic CDX file
                cdx_lines.append(f"{surt(url)} {ts} {url} application/pdf 200 {DIGEST} - - 100 "
                                 f"{n * 1000 + year} b.warc.gz")
            else:
                cdxj_lines.append(cdxj(surt(url), ts, **fields))
    write_lines(root / "indexes" / "one.cdxj", cdxj_lines)
    write_lines(root / "indexes" / "two.cdx", [" CDX N b a m s k r M S V g"] + cdx_lines)
    return root, urls


def test_lookup_merges_files_newest_first(tmp_path):
    root, urls = _spread_index(tmp_path)
    cdx = LocalCdxClient(str(root))
    for url in urls:  # the first and the last key of each file, and one in between
        rows = cdx.lookup(url)
        assert [r.datetime for r in rows] == ["20190101000000", "20170101000000", "20150101000000"]
        assert {r.url for r in rows} == {url}
        assert rows[1].warc_path == "b.warc.gz" and rows[0].warc_path == "a.warc.gz"
        assert rows[0].sha1hex == hashlib.sha1(PDF).hexdigest()
    assert [r.datetime for r in cdx.lookup(urls[1], limit=2)] == ["20190101000000", "20170101000000"]


def test_lookup_misses_before_between_and_after_keys(tmp_path):
    root, _urls = _spread_index(tmp_path)
    cdx = LocalCdxClient(str(root))
    for url in ["http://0.example/", "http://bbb.example/x", "http://mmm.example/middl",
                "http://mmm.example/middle2", "http://zzzz.example/", "http://zzz.example/last/x"]:
        assert cdx.lookup(url) == []


def test_lookup_canonicalises_the_asked_url(tmp_path):
    root, _urls = _spread_index(tmp_path)
    cdx = LocalCdxClient(str(root))
    rows = cdx.lookup("https://WWW.mmm.example:443/middle")
    assert len(rows) == 3 and rows[0].url == "http://mmm.example/middle"


def test_row_filed_under_a_foreign_key_is_not_a_match(tmp_path):
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True)
    key = surt("http://example.com/a")
    write_lines(root / "indexes" / "i.cdxj", [
        cdxj(key, "20200101000000", url="http://example.com/a", mime="text/html", status="200",
             digest=DIGEST, length="1", offset="0", filename="a.warc.gz"),
        cdxj(key, "20210101000000", url="http://example.com/OTHER", mime="text/html",
             status="200", digest=DIGEST, length="1", offset="0", filename="a.warc.gz"),
    ])
    rows = LocalCdxClient(str(root)).lookup("http://example.com/a")
    assert [r.datetime for r in rows] == ["20200101000000"]


@pytest.mark.parametrize("broken", [
    'com,example)/a 20200101000000 {"url": "http://example.com/a", "mime": ',  # cut JSON
    "com,example)/a 2020 {}",
    "com,example)/a",
])
def test_broken_line_among_the_keys_rows_is_a_cdx_error(tmp_path, broken):
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True)
    good = cdxj("com,example)/a", "20190101000000", url="http://example.com/a", mime="text/html",
                status="200", digest=DIGEST, length="1", offset="0", filename="a.warc.gz")
    write_lines(root / "indexes" / "i.cdxj", [good, broken])
    with pytest.raises(CdxError) as err:
        LocalCdxClient(str(root)).lookup("http://example.com/a")
    assert "CDXJ" in str(err.value)


def test_broken_line_of_another_key_does_not_matter(tmp_path):
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True)
    good = cdxj("com,example)/a", "20190101000000", url="http://example.com/a", mime="text/html",
                status="200", digest=DIGEST, length="1", offset="0", filename="a.warc.gz")
    write_lines(root / "indexes" / "i.cdxj", [good, "com,example)/b 2020 garbage"])
    assert len(LocalCdxClient(str(root)).lookup("http://example.com/a")) == 1
    with pytest.raises(CdxError):
        LocalCdxClient(str(root)).lookup("http://example.com/b")


def test_bad_classic_cdx_line_is_a_cdx_error(tmp_path):
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True)
    write_lines(root / "indexes" / "i.cdx", [
        "com,example)/a 20190101000000 http://example.com/a text/html 200 NOTADIGEST - - 1 0 a.warc.gz"])
    with pytest.raises(CdxError, match="digest"):
        LocalCdxClient(str(root)).lookup("http://example.com/a")


def test_collection_without_indexes_is_refused(tmp_path):
    with pytest.raises(CdxError, match="indexes"):
        LocalCdxClient(str(tmp_path))
    (tmp_path / "indexes").mkdir()
    with pytest.raises(CdxError, match="no \\*.cdxj"):
        LocalCdxClient(str(tmp_path))


def test_binary_search_agrees_with_a_scan_and_reads_little(tmp_path, monkeypatch):
    rng = random.Random(7)
    keys = sorted({f"org,example{rng.randint(0, 10**6)})/p/{rng.randint(0, 10**6)}"
                   for _ in range(40_000)})
    lines = []
    for key in keys:
        for ts in range(rng.randint(1, 3)):
            lines.append(f"{key} 2020010100000{ts} {{}}")
    path = tmp_path / "big.cdxj"
    write_lines(path, lines)
    size = path.stat().st_size
    assert size > 2_000_000

    read_bytes = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):  # every byte a lookup reads comes through pread
        data = real_pread(fd, n, offset)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(sortedindex_module.os, "pread", counting_pread)
    index = SortedIndex(str(path))
    by_key = {}
    for line in lines:
        by_key.setdefault(line.split(" ", 1)[0], []).append(line)
    probes = rng.sample(keys, 200) + [keys[0], keys[-1], "a", "zzz", keys[500] + "0"]
    for key in probes:
        read_bytes.clear()
        found = [line.rstrip("\n") for line in index.lines_for(key)]
        assert found == by_key.get(key, [])
        # the binary search's probes and one block, not a scan of the file
        assert sum(read_bytes) < size / 20, f"{sum(read_bytes)} bytes read for one key"
        assert len(read_bytes) <= size.bit_length(), f"{len(read_bytes)} reads for one key"


# --- content -----------------------------------------------------------------------------


@pytest.fixture()
def collection(tmp_path):
    """A small collection with a PDF, a redirect, an encoded landing page and revisits."""
    b = CollectionBuilder(tmp_path / "coll")
    b.response("http://example.com/paper.pdf", "20200101000000", PDF)
    b.response("http://example.com/moved", "20200102000000", b"moved",
               status="302 Found", headers=[("Location", "/paper.pdf"), ("Content-Type", "text/html")])
    b.response("http://example.com/landing", "20200103000000", b"<html>landing</html>",
               headers=[("Content-Type", "text/html")], gzip_encode=True)
    b.revisit("http://example.com/paper.pdf", "20210101000000",
              refers_to=("http://example.com/paper.pdf", "20200101000000"),
              headers=[("Content-Type", "application/pdf"), ("X-Revisit", "yes")])
    b.revisit("http://example.com/paper.pdf", "20220101000000",
              refers_to=("http://example.com/paper.pdf", "20200101000000"), status=None)
    b.revisit("http://example.com/paper.pdf", "20230101000000", refers_to=None,
              digest_of=("http://example.com/paper.pdf", "20200101000000"))
    b.revisit("http://example.com/paper.pdf", "20240101000000",
              refers_to=("http://example.com/paper.pdf", "20210101000000"))
    b.revisit("http://example.com/gone.pdf", "20240101000000",
              refers_to=("http://example.com/gone.pdf", "20190101000000"),
              digest_of=("http://example.com/paper.pdf", "20200101000000"))
    b.finish()
    return b.root


def _row(cdx, url, ts):
    rows = [r for r in cdx.lookup(url, limit=100) if r.datetime == ts]
    assert len(rows) == 1, rows
    return rows[0]


def test_fetch_response_verifies_and_returns_the_payload(collection):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    assert row.sha1b32 == DIGEST and row.status_code == 200 and row.mimetype == "application/pdf"
    capture = content.fetch(row, max_bytes=10**6)
    assert capture.body == PDF and capture.status_code == 200
    assert capture.mimetype == "application/pdf" and not capture.body_truncated
    assert capture.revisit_of is None and capture.location is None


def test_fetch_redirect_keeps_the_raw_location(collection):
    cdx, content = open_local(str(collection))
    capture = content.fetch(_row(cdx, "http://example.com/moved", "20200102000000"), 1000)
    assert capture.status_code == 302 and capture.location == "/paper.pdf"


def test_content_encoding_is_undone_but_digest_is_of_stored_bytes(collection):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/landing", "20200103000000")
    assert row.sha1b32 != _digest(b"<html>landing</html>")  # the index digests gzip bytes
    capture = content.fetch(row, 1000)
    assert capture.body == b"<html>landing</html>"
    assert capture.headers["content-encoding"] == "gzip"


def test_body_is_cut_at_max_bytes(collection):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    capture = content.fetch(row, max_bytes=100)
    assert capture.body_truncated and capture.body == b""  # never used, so never held
    exact = content.fetch(row, max_bytes=len(PDF))
    assert not exact.body_truncated and exact.body == PDF


def test_body_sha1_is_handed_on_only_when_the_body_is_every_stored_byte(collection):
    """The digest check's SHA-1 stands in for file_meta's only where the body is exactly
    the hashed payload: not for a decoded Content-Encoding, not for a cut body."""
    cdx, content = open_local(str(collection))
    pdf_row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    assert content.fetch(pdf_row, 10**6).body_sha1hex == hashlib.sha1(PDF).hexdigest()
    assert content.fetch(pdf_row, len(PDF)).body_sha1hex == hashlib.sha1(PDF).hexdigest()
    assert content.fetch(pdf_row, len(PDF) - 1).body_sha1hex is None
    encoded = content.fetch(_row(cdx, "http://example.com/landing", "20200103000000"), 1000)
    assert encoded.body == b"<html>landing</html>" and encoded.body_sha1hex is None
    revisit = content.fetch(_row(cdx, "http://example.com/paper.pdf", "20210101000000"), 10**6)
    assert revisit.body == PDF and revisit.body_sha1hex == hashlib.sha1(PDF).hexdigest()


def test_revisit_resolves_to_original_with_its_own_headers(collection):
    cdx, content = open_local(str(collection))
    original = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    row = _row(cdx, "http://example.com/paper.pdf", "20210101000000")
    assert row.is_revisit and row.status_code is None
    capture = content.fetch(row, 10**6)
    assert capture.revisit_of == original and capture.row == row
    assert capture.body == PDF and capture.headers["x-revisit"] == "yes"


def test_revisit_without_http_headers_takes_the_originals(collection):
    cdx, content = open_local(str(collection))
    capture = content.fetch(_row(cdx, "http://example.com/paper.pdf", "20220101000000"), 10**6)
    assert capture.status_code == 200 and capture.headers == {"content-type": "application/pdf"}
    assert capture.revisit_of.datetime == "20200101000000"


def test_revisit_without_refers_to_date_resolves_by_digest(collection):
    cdx, content = open_local(str(collection))
    capture = content.fetch(_row(cdx, "http://example.com/paper.pdf", "20230101000000"), 10**6)
    assert capture.revisit_of.datetime == "20200101000000" and capture.body == PDF


def test_revisit_of_a_revisit_is_a_content_error(collection):
    cdx, content = open_local(str(collection))
    with pytest.raises(WaybackContentError, match="another revisit"):
        content.fetch(_row(cdx, "http://example.com/paper.pdf", "20240101000000"), 10**6)


def test_unresolvable_revisit_is_the_archives_failure(collection):
    """An original missing from the index is the archive's loss (`wayback-error`, as
    sandcrawler reports it), not damaged content."""
    cdx, content = open_local(str(collection))
    with pytest.raises(WaybackError, match="not in the index") as err:
        content.fetch(_row(cdx, "http://example.com/gone.pdf", "20240101000000"), 10**6)
    assert not isinstance(err.value, WaybackContentError)


def _rewrite_index(collection, url, ts, **changes):
    """Edit one row of the collection's CDXJ (to make it disagree with its WARC)."""
    path = collection / "indexes" / "index.cdxj"
    lines = []
    for line in path.read_text().splitlines():
        key, stamp, blob = line.split(" ", 2)
        fields = json.loads(blob)
        if fields["url"] == url and stamp == ts:
            fields.update(changes)
        lines.append(cdxj(key, stamp, **fields))
    write_lines(path, lines)


def _rewritten(collection, url, ts, **changes):
    """The content client and the row after `_rewrite_index`, reopened to see the change."""
    _rewrite_index(collection, url, ts, **changes)
    cdx, content = open_local(str(collection))
    return content, _row(cdx, url, ts)


def test_digest_mismatch_is_a_content_error(collection):
    content, row = _rewritten(collection, "http://example.com/paper.pdf", "20200101000000",
                              digest=_digest(b"something else"))
    with pytest.raises(WaybackContentError, match="digest"):
        content.fetch(row, 10**6)


@pytest.mark.parametrize("cut", [1, 8, 60, 200])
def test_truncated_record_is_a_content_error(collection, cut):
    cdx, _ = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    content, row = _rewritten(collection, row.url, row.datetime, length=str(row.warc_csize - cut))
    with pytest.raises(WaybackContentError):
        content.fetch(row, 10**6)


def test_truncated_warc_file_is_a_content_error(collection):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/landing", "20200103000000")
    warc = collection / "archive" / row.warc_path
    data = warc.read_bytes()
    warc.write_bytes(data[: row.warc_offset + row.warc_csize - 30])
    with pytest.raises(WaybackContentError, match="truncated"):
        content.fetch(row, 10**6)


@pytest.mark.parametrize("shift", [1, 17, -5])
def test_record_not_at_offset_is_a_content_error(collection, shift):
    cdx, _ = open_local(str(collection))
    row = _row(cdx, "http://example.com/moved", "20200102000000")
    content, row = _rewritten(collection, row.url, row.datetime, offset=str(row.warc_offset + shift))
    with pytest.raises(WaybackContentError):
        content.fetch(row, 10**6)


def test_offset_of_another_record_is_a_content_error(collection):
    cdx, _ = open_local(str(collection))
    other = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    row = _row(cdx, "http://example.com/moved", "20200102000000")
    content, row = _rewritten(collection, row.url, row.datetime, offset=str(other.warc_offset),
                              length=str(other.warc_csize))
    with pytest.raises(WaybackContentError, match="is for 'http://example.com/paper.pdf'"):
        content.fetch(row, 10**6)


def test_offset_beyond_the_file_is_a_content_error(collection):
    cdx, _ = open_local(str(collection))
    row = _row(cdx, "http://example.com/moved", "20200102000000")
    content, row = _rewritten(collection, row.url, row.datetime, offset="99999999")
    with pytest.raises(WaybackContentError, match="no WARC record"):
        content.fetch(row, 10**6)


def test_row_says_revisit_but_record_is_a_response(collection):
    cdx, _ = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    content, row = _rewritten(collection, row.url, row.datetime, mime="warc/revisit")
    with pytest.raises(WaybackContentError, match="says revisit"):
        content.fetch(row, 10**6)


def test_missing_warc_is_a_wayback_error(collection):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    (collection / "archive" / row.warc_path).unlink()
    with pytest.raises(WaybackError) as err:
        content.fetch(row, 10**6)
    assert not isinstance(err.value, WaybackContentError)


def test_warc_path_outside_the_collection_is_refused(collection):
    content, row = _rewritten(collection, "http://example.com/paper.pdf", "20200101000000",
                              filename="../../etc/passwd")
    with pytest.raises(WaybackError, match="escapes"):
        content.fetch(row, 10**6)


def test_uncompressed_warc_and_classic_cdx_index(tmp_path):
    b = CollectionBuilder(tmp_path / "plain", warc_name="plain.warc")
    b.response("http://example.org/a.pdf", "20190101000000", PDF)
    b.response("http://example.org/b.pdf", "20190102000000", PDF[:100])
    b.finish("index.cdx")
    cdx, content = open_local(str(b.root))
    rows = cdx.lookup("http://example.org/b.pdf")
    assert len(rows) == 1 and rows[0].warc_path == "plain.warc"
    assert content.fetch(rows[0], 10**6).body == PDF[:100]


def test_indexer_indexes_a_collection(tmp_path):
    b = CollectionBuilder(tmp_path / "c")
    b.response("http://example.org/a.pdf", "20190101000000", PDF)
    b.close_files()
    assert index_collection(str(b.root)) == 1
    line = (b.root / "indexes" / "index.cdxj").read_text()
    assert line.startswith("org,example)/a.pdf 20190101000000 {")


def test_open_archive_picks_local_and_rejects_nonsense(collection, tmp_path):
    cdx, content = open_archive(str(collection))
    assert isinstance(cdx, LocalCdxClient) and isinstance(content, LocalContentClient)
    with pytest.raises(ValueError, match="does not exist"):
        open_archive(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="http"):
        open_archive("ftp://example.com/coll")


# --- an archive that cannot be read: the machine failed, not a capture ----------------------


class _FailingReads:
    """A file whose reads fail as a dying disk's do (EIO)."""

    def __init__(self, real):
        self.real = real

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def seek(self, offset):
        return self.real.seek(offset)

    def read(self, length=-1):
        raise OSError(errno.EIO, "Input/output error")

    readline = read


def _inject(fault, warc, monkeypatch):
    """Make `warc` unreadable: a directory in its place (root reads any file whatever its mode),
    or, through the module's `open`, a permission denied or an I/O error on read."""
    if fault == "directory":
        warc.unlink()
        warc.mkdir()
        return "Is a directory"

    def fake_open(path, mode="r", *args, **kwargs):
        if str(path) != str(warc):
            return builtins.open(path, mode, *args, **kwargs)
        if fault == "permission":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return _FailingReads(builtins.open(path, mode, *args, **kwargs))

    monkeypatch.setattr(local_module, "open", fake_open, raising=False)
    return {"permission": "Permission denied", "eio": "Input/output error"}[fault]


@pytest.mark.parametrize("fault", ["directory", "permission", "eio"])
def test_unreadable_warc_stops_the_shard_naming_the_file(collection, monkeypatch, fault):
    cdx, content = open_local(str(collection))
    row = _row(cdx, "http://example.com/paper.pdf", "20200101000000")
    warc = collection / "archive" / row.warc_path
    why = _inject(fault, warc, monkeypatch)
    line = f"local archive WARC {re.escape(str(warc))} cannot be read: {why}"
    with pytest.raises(StepFailed, match=line):  # not a per-request ArchiveError
        content.fetch(row, 10**6)
    worker = IngestWorker(cdx, content, IngestSettings())
    request = {"base_url": row.url, "ingest_type": "pdf"}
    with pytest.raises(StepFailed, match=line):
        worker.process(request)
    written = []
    with pytest.raises(StepFailed, match=line):
        run_shard([request] * 6, worker, written.append, concurrency=2)
    assert written == []
    with pytest.raises(StepFailed, match=line):  # from a worker process, as a shard runs it
        run_shard([request] * 6, worker, written.append, concurrency=2, processes=True)
    assert written == []


def test_index_unreadable_after_start_stops_the_shard(collection):
    cdx, _ = open_local(str(collection))
    index = next((collection / "indexes").iterdir())
    index.unlink()
    index.mkdir()
    with pytest.raises(StepFailed, match=f"local archive index {re.escape(str(index))} cannot be "
                                         "read"):
        cdx.lookup("http://example.com/paper.pdf")


@pytest.mark.parametrize("max_bytes,expected", [
    (0, (b"", True)), (1, (b"", True)), (2, (b"", True)), (3, (b"", True)),
    (5, (b"", True)), (6, (b"abcdef", False)), (7, (b"abcdef", False)),
])
def test_read_capped_keeps_a_body_up_to_the_limit_and_none_above_it(max_bytes, expected):
    from pipeline.archive.warcread import read_capped
    assert read_capped(iter([b"ab", b"cd", b"ef"]), max_bytes) == expected


def _fetch_traced(root, url: str, limit: int):
    """The capture of `url` and the peak of memory Python allocated while fetching it."""
    import tracemalloc
    cdx, content = open_local(str(root))
    row = _row(cdx, url, "20200101000000")
    tracemalloc.start()
    try:
        capture = content.fetch(row, limit)
        return capture, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_body_above_the_limit_by_its_stored_length_is_never_held(tmp_path):
    """A 129 MiB body in the sample world made the shard's RSS 520 MB: the cut-off body was
    held as its chunks, joined, and sliced. Its stored length says it is too large before a
    byte of it is read, so now it is only hashed (the digest check) as it streams by."""
    body = random.Random(7).randbytes(6 << 20)  # incompressible: warcio's buffers stay small
    b = CollectionBuilder(tmp_path / "big")
    b.response("http://example.com/big.pdf", "20200101000000", body)
    b.finish()
    limit = 4 << 20
    capture, peak = _fetch_traced(b.root, "http://example.com/big.pdf", limit)
    assert capture.body_truncated and capture.body == b""
    assert peak < limit / 2, f"peak {peak / 2**20:.1f} MiB for a {limit >> 20} MiB limit"


def test_a_content_encoded_body_above_the_limit_is_dropped_not_joined(tmp_path):
    """Decoded, a body's size is known only once read: up to the limit is held, then dropped
    at the byte past it, never joined into a second copy."""
    body = random.Random(8).randbytes(6 << 20)
    b = CollectionBuilder(tmp_path / "big")
    b.response("http://example.com/big.pdf", "20200101000000", body, gzip_encode=True)
    b.finish()
    limit = 4 << 20
    capture, peak = _fetch_traced(b.root, "http://example.com/big.pdf", limit)
    assert capture.body_truncated and capture.body == b""
    assert peak < 1.5 * limit, f"peak {peak / 2**20:.1f} MiB for a {limit >> 20} MiB limit"


def test_a_highly_compressed_record_is_inflated_a_bounded_step_at_a_time(tmp_path):
    """warcio inflates 16 KiB of the member at once: for a body of zeros that is 16 MiB in one
    piece. The record's reader inflates at most 1 MiB per step, whatever the ratio."""
    b = CollectionBuilder(tmp_path / "zeros")
    b.response("http://example.com/zeros.pdf", "20200101000000", bytes(48 << 20))
    b.finish()
    capture, peak = _fetch_traced(b.root, "http://example.com/zeros.pdf", 1 << 20)
    assert capture.body_truncated and capture.body == b""
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MiB"


def test_the_records_gzip_member_is_inflated_by_isal(collection, monkeypatch):
    """isal inflates 2-3x faster than zlib; the answer must not change with it."""
    from pipeline.archive import warcread
    made = []
    real = warcread.isal_zlib.decompressobj

    def counting(*args, **kwargs):
        made.append(args or kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(warcread.isal_zlib, "decompressobj", counting)
    cdx, content = open_local(str(collection))
    capture = content.fetch(_row(cdx, "http://example.com/paper.pdf", "20200101000000"), 10**6)
    assert capture.body == PDF and made
