"""Small, deterministic catalog worlds for the catalog and import tests.

Entity number i has ident `ident_of(i)` and the hashes of the bytes
`file-<i>`, so a test can name an entity and its file_meta by one integer.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

B32 = "abcdefghijklmnopqrstuvwxyz234567"


def ident_of(i: int) -> str:
    """A valid 26-character fatcat ident, distinct per i (sorted like i for i < 26)."""
    digits = []
    for _ in range(26):
        digits.append(B32[i % 32])
        i //= 32
    return "".join(reversed(digits))


def hashes(i: int) -> dict:
    data = f"file-{i}".encode()
    return {"sha1": hashlib.sha1(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest(),
            "md5": hashlib.md5(data).hexdigest(), "size": 1000 + i}


def file_meta(i: int, **override) -> dict:
    h = hashes(i)
    fm = {"sha1hex": h["sha1"], "sha256hex": h["sha256"], "md5hex": h["md5"],
          "size_bytes": h["size"], "mimetype": "application/pdf"}
    fm.update(override)
    return fm


def entity(i: int, *, complete: bool = False, **fields) -> dict:
    """An active entity lacking sha256, md5, size (and mimetype), unless `complete`."""
    h = hashes(i)
    e = {"ident": ident_of(i), "state": "active", "revision": f"00000000-0000-4000-8000-{i:012d}",
         "sha1": h["sha1"], "release_ids": [ident_of(10_000 + i)],
         "urls": [{"url": f"http://example.org/{i}.pdf", "rel": "web"}]}
    if complete:
        e.update(sha256=h["sha256"], md5=h["md5"], size=h["size"], mimetype="application/pdf")
    e.update(fields)
    return {k: v for k, v in e.items() if v is not None}


def write_lines(path: Path, objs: list, raw_lines: dict[int, str] | None = None) -> Path:
    """JSON lines (gzip when the name ends .gz); `raw_lines` puts text at given 0-based positions."""
    lines = [json.dumps(o, sort_keys=True) for o in objs]
    for pos, text in sorted((raw_lines or {}).items()):
        lines.insert(pos, text)
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path
