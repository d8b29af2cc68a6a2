"""A local index is verified sorted when the collection is opened (issue: a slightly unsorted
CDXJ lost captures silently as `no-capture`)."""

from __future__ import annotations

import json
import os

import pytest
from archive_collections import cdxj

from pipeline.archive import sortedindex
from pipeline.archive.local import LocalCdxClient
from pipeline.archive.model import CdxError
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
    # the case: the last 40 lines moved to the top; the first line out of order is 41
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
