"""The floor of ingesting a local collection: read, gunzip and hash every WARC record once.

    python bench/ingest_floor.py COLLECTION_DIR

No CDX lookup, no HTTP parsing, no redirects or landing pages: only the work
no ingest can avoid (reading the bytes, inflating them with isal, computing
the sha1, sha256 and md5 a file_meta needs). The bench compares the ingest's
requests/s and MB/s with this. Prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from isal import igzip


def floor(collection: Path) -> dict:
    t0 = time.perf_counter()
    n_bytes = 0
    for warc in sorted((collection / "archive").glob("*.warc.gz")):
        hashes = [hashlib.sha1(), hashlib.sha256(), hashlib.md5()]
        with igzip.open(warc, "rb") as f:
            while block := f.read(1 << 20):
                n_bytes += len(block)
                for h in hashes:
                    h.update(block)
    return {"bytes_inflated": n_bytes, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    print(json.dumps(floor(Path(sys.argv[1]))))
