"""The ingest bench's floor (bench/ingest_floor.py) reads every record of a collection, a
damaged one included: it stopped with an IsalError at the sample world's broken WARC."""

from __future__ import annotations

import gzip
import io

from bench.ingest_floor import floor, inflate_members


def _members(*parts: bytes) -> bytes:
    return b"".join(gzip.compress(p) for p in parts)


def test_a_damaged_member_is_skipped_and_the_members_after_it_are_read():
    damaged = bytearray(gzip.compress(b"B" * 5000))
    damaged[15:25] = b"\xff" * 10  # its deflate stream, past the header
    data = _members(b"A" * 3000) + bytes(damaged) + _members(b"C" * 4000, b"D" * 10)
    out = b"".join(inflate_members(io.BufferedReader(io.BytesIO(data), 64)))
    assert out.startswith(b"A" * 3000) and out.endswith(b"C" * 4000 + b"D" * 10)
    assert b"B" * 5000 not in out


def test_members_across_read_blocks_inflate_whole(monkeypatch, tmp_path):
    import bench.ingest_floor as ingest_floor
    monkeypatch.setattr(ingest_floor, "BLOCK", 7)  # headers and trailers split across reads
    bodies = [bytes(range(256)) * 40, b"x" * 9999, b""]
    out = b"".join(inflate_members(io.BytesIO(_members(*bodies))))
    assert out == b"".join(bodies)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "a.warc.gz").write_bytes(_members(*bodies))
    assert floor(tmp_path)["bytes_inflated"] == len(b"".join(bodies))
