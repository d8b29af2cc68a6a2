"""The floor of ingesting a local collection: read, gunzip and hash every WARC record once.

    python bench/ingest_floor.py COLLECTION_DIR

No CDX lookup, no HTTP parsing, no redirects or landing pages: only the work
no ingest can avoid (reading the bytes, inflating them with isal, computing
the sha1, sha256 and md5 a file_meta needs). The bench compares the ingest's
requests/s and MB/s with this. Prints one JSON line.

Each gzip member (a WARC record) is inflated on its own, so a damaged member
(the sample world damages some on purpose) costs the floor only that member:
it skips to the next gzip header and goes on, as the ingest gives that one
record its status and goes on.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from isal import isal_zlib

GZIP_HEADER = b"\x1f\x8b\x08"
BLOCK = 1 << 20


def inflate_members(f):
    """Yield the inflated blocks of every gzip member read from `f`, streaming (1 MiB in and
    out at a time); a damaged member is skipped from where it fails to the next gzip header."""
    pending = b""
    d = isal_zlib.decompressobj(wbits=31)
    while True:
        if not pending:
            pending = f.read(BLOCK)
            if not pending:
                return
        try:
            block = d.decompress(pending, BLOCK)
        except isal_zlib.error:
            d = isal_zlib.decompressobj(wbits=31)
            pending = _next_header(pending[1:], f)
            continue
        if block:
            yield block
        if d.eof:
            pending = d.unused_data
            d = isal_zlib.decompressobj(wbits=31)
        else:
            pending = d.unconsumed_tail


def _next_header(data: bytes, f) -> bytes:
    """`data` (and what follows in `f`) from the next gzip header on; b"" at the end."""
    while True:
        at = data.find(GZIP_HEADER)
        if at >= 0:
            return data[at:]
        more = f.read(BLOCK)
        if not more:
            return b""
        data = data[-(len(GZIP_HEADER) - 1):] + more


def floor(collection: Path) -> dict:
    t0 = time.perf_counter()
    n_bytes = 0
    for warc in sorted((collection / "archive").glob("*.warc.gz")):
        hashes = [hashlib.sha1(), hashlib.sha256(), hashlib.md5()]
        with open(warc, "rb") as f:
            for block in inflate_members(f):
                n_bytes += len(block)
                for h in hashes:
                    h.update(block)
    return {"bytes_inflated": n_bytes, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    print(json.dumps(floor(Path(sys.argv[1]))))
