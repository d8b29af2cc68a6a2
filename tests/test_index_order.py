"""A local index is verified sorted when the collection is opened (issue: a slightly unsorted
CDXJ lost captures silently as `no-capture`)."""

from __future__ import annotations

import json
import os

import pytest
from archive_collections import cdxj

from pipeline.archive import sortedindex
from pipeline.archive.local import LocalCdxClient
from pipeline.archive.model import ArchiveUnreadable, CdxError
from pipeline.archive.surt import surt

DIGEST = "A" * 32


def _collection(tmp_path, n=60, moved=0):
    """A CDXJ of `n` URLs, sorted; with `moved`, its last `moved` lines put at the top."""
    root = tmp_path / "coll"
    (root / "indexes").mkdir(parents=True, exist_ok=True)
    (root / "archive").mkdir(exist_ok=True)
    urls = [f"http://host{i:03d}.example/paper.pdf" for i in range(n)]
    lines = sorted(cdxj(surt(u), "20200101000000", url=u, mime="application/pdf", status="200",
                        digest=DIGEST, length="100", offset="0", filename="a.warc.gz") for u in urls)
    if moved:
        lines = lines[-moved:] + lines[:-moved]
    _write(root / "indexes" / "index.cdxj", lines)
    return root, urls


def _write(path, lines):
    """Lines exactly in the order given (the test helper's `write_lines` sorts them)."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_sorted_index_opens_and_finds_every_row(tmp_path):
    root, urls = _collection(tmp_path)
    cdx = LocalCdxClient(str(root))
    assert all(len(cdx.lookup(u)) == 1 for u in urls)


def test_unsorted_index_is_an_error_naming_file_and_line(tmp_path):
    # the issue's case: the last 40 lines moved to the top; the first line out of order is 41
    root, _ = _collection(tmp_path, moved=40)
    with pytest.raises(CdxError) as err:
        LocalCdxClient(str(root))
    msg = str(err.value)
    assert str(root / "indexes" / "index.cdxj") in msg
    assert "line 41:" in msg and "not sorted" in msg and "LC_ALL=C sort" in msg


def test_verdict_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    root, _ = _collection(tmp_path)
    index = str(root / "indexes" / "index.cdxj")
    cache = str(tmp_path / "work" / "order.json")
    LocalCdxClient(str(root), cache)
    assert json.loads(open(cache).read()) == {
        os.path.realpath(index): [os.stat(index).st_size, os.stat(index).st_mtime_ns]}
    # a new process (empty memory) trusts the cache file for the same size and mtime ...
    monkeypatch.setattr(sortedindex, "_verified", set())
    opened = []
    real_open = open

    def counting_open(path, *a, **k):
        if os.fspath(path) == index:
            opened.append(path)
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", counting_open)
    LocalCdxClient(str(root), cache)
    assert opened == []
    monkeypatch.setattr("builtins.open", real_open)
    # ... and verifies again once the file changed (here: made unsorted behind our back)
    lines = real_open(index).read().splitlines()
    _write(root / "indexes" / "index.cdxj", lines[1:] + lines[:1])
    with pytest.raises(CdxError, match="line 60:"):
        LocalCdxClient(str(root), cache)


def test_damaged_cache_file_only_costs_a_pass(tmp_path):
    root, urls = _collection(tmp_path)
    cache = tmp_path / "order.json"
    cache.write_text("{not json")
    cdx = LocalCdxClient(str(root), str(cache))
    assert len(cdx.lookup(urls[0])) == 1
    assert json.loads(cache.read_text())  # rewritten with this file's verdict


# --- the binary search itself: what every lookup finds, and the probes it remembers ---------


def _scan(path, key: bytes) -> list[str]:
    """What a lookup must yield: every line whose first field is `key`, by a linear scan."""
    with open(path, "rb") as f:
        return [raw.decode() for raw in f if raw.rstrip(b"\r\n").split(b" ", 1)[0] == key]


def _index_with_long_lines(tmp_path):
    """Header lines, keys with several lines, and lines longer than one 4 KiB probe read."""
    lines = [" CDX N b a m s k r M S V g", "!meta something"]
    for i in range(0, 300, 3):
        key = f"org,example,h{i:04d})/p"
        lines += [f"{key} 2020010100000{j} {{\"pad\": \"{'x' * (5000 if i % 7 == 0 else 20)}\"}}"
                  for j in range(1 + i % 3)]
    path = tmp_path / "index.cdxj"
    _write(path, sorted(lines))
    return path


def test_lookups_find_exactly_the_lines_a_scan_finds(tmp_path):
    path = _index_with_long_lines(tmp_path)
    index = sortedindex.SortedIndex(str(path))
    for i in range(-1, 302):  # every key present, and the gaps before, between and after them
        key = f"org,example,h{i:04d})/p"
        assert list(index.lines_for(key)) == _scan(path, key.encode()), key
    assert list(index.lines_for("~ after everything")) == []
    assert list(index.lines_for(" ")) == []


def test_remembered_probes_are_forgotten_when_the_file_changes(tmp_path):
    path = _index_with_long_lines(tmp_path)
    index = sortedindex.SortedIndex(str(path))
    key = "org,example,h0150)/p"
    assert list(index.lines_for(key)) == _scan(path, key.encode()) != []
    _write(path, sorted([f"org,example,a{i:04d})/p 20200101000000 {{}}" for i in range(50)]
                        + [f"{key} 20210101000000 {{\"new\": 1}}"]))
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert list(index.lines_for(key)) == [f"{key} 20210101000000 {{\"new\": 1}}\n"]


def test_a_warm_index_reads_only_the_last_probes_from_the_file(tmp_path, monkeypatch):
    """Every search probes the same top positions: after a few lookups those come from memory."""
    path = _index_with_long_lines(tmp_path)
    index = sortedindex.SortedIndex(str(path))
    reads = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        reads.append(offset)
        return real_pread(fd, n, offset)

    monkeypatch.setattr(sortedindex.os, "pread", counting_pread)
    list(index.lines_for("org,example,h0000)/p"))
    cold = len(reads)
    for i in range(0, 300, 3):
        list(index.lines_for(f"org,example,h{i:04d})/p"))
    reads.clear()
    list(index.lines_for("org,example,h0151)/p"))
    assert cold > 4 and len(reads) <= 2, (cold, len(reads))  # cold: one read per probe


# --- the open file kept between lookups, and what makes a lookup open it again ----------------


def _counting_opens(monkeypatch, path) -> list[str]:
    """The opens of `path` from now on (by `open` or `os.open`)."""
    opened: list[str] = []
    real_open, real_os_open = open, os.open

    def counting(real):
        def call(name, *args, **kwargs):
            if str(name) == str(path):
                opened.append(str(name))
            return real(name, *args, **kwargs)
        return call

    monkeypatch.setattr(sortedindex, "open", counting(real_open), raising=False)
    monkeypatch.setattr(sortedindex.os, "open", counting(real_os_open))
    return opened


def test_the_index_stays_open_between_lookups_until_its_file_changes(tmp_path, monkeypatch):
    """Opening the file for every lookup was 3 system calls of ~10 per lookup; one `stat`
    now says whether the file held open is still the path's (same inode, size, mtime, ctime)."""
    path = _index_with_long_lines(tmp_path)
    opened = _counting_opens(monkeypatch, path)
    index = sortedindex.SortedIndex(str(path))
    key = "org,example,h0150)/p"
    for _ in range(5):
        assert list(index.lines_for(key)) == _scan(path, key.encode()) != []
    assert opened == [str(path)]
    os.chmod(path, 0o600)  # a new mode (a new ctime): opened again, where a reader may fail
    assert list(index.lines_for(key)) == _scan(path, key.encode())
    assert opened == [str(path)] * 2
    new = tmp_path / "new.cdxj"
    _write(new, [f"{key} 20210101000000 {{\"replaced\": 1}}"])
    os.replace(new, path)  # another file at the path, as an index rebuilt and moved in place
    assert list(index.lines_for(key)) == [f"{key} 20210101000000 {{\"replaced\": 1}}\n"]
    assert len(opened) == 3


def test_an_index_removed_after_a_lookup_fails_the_next_one(tmp_path):
    """The file held open still reads; the lookup must not: the archive lost its index."""
    root, urls = _collection(tmp_path)
    cdx = LocalCdxClient(str(root))
    assert cdx.lookup(urls[0])
    (root / "indexes" / "index.cdxj").unlink()
    with pytest.raises(ArchiveUnreadable, match="index.cdxj cannot be read: No such file"):
        cdx.lookup(urls[0])
