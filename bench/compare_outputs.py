"""Compare two pipeline workdirs (e.g. `make demo` before and after a speed-up): same outputs?

    python bench/compare_outputs.py OLD_WORKDIR NEW_WORKDIR

Every data file must hold the same bytes: gzip targets are compared by their
content (the container may differ: see pipeline/jsonio.py's AtomicWriter),
other files byte for byte. Sidecars (`*.meta.json`) carry times and the
hashes of the gzip containers, so only their `counts` are compared; the
import journal carries editgroup ids and times, so only its events are; the
embedded catalog is compared by its entities (ident, state, sha1, body).
Prints one line per file and exits 1 on any difference.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from isal import igzip


def _entities(path: Path) -> list:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT ident, state, active, sha1, body FROM file_ident ORDER BY ident").fetchall()


def same(a: Path, b: Path) -> bool:
    name = a.name
    if name.endswith(".gz"):
        with igzip.open(a, "rb") as fa, igzip.open(b, "rb") as fb:
            return fa.read() == fb.read()
    if name.endswith(".meta.json"):
        return json.loads(a.read_text()).get("counts") == json.loads(b.read_text()).get("counts")
    if name.endswith(".journal.json"):
        def events(p: Path) -> list:
            return [(e["event"], e.get("edits")) for e in map(json.loads, p.read_text().splitlines())]
        return events(a) == events(b)
    if name.endswith(".sqlite"):
        return _entities(a) == _entities(b)
    return a.read_bytes() == b.read_bytes()


def main(old: Path, new: Path) -> int:
    names = sorted({p.relative_to(old) for p in old.rglob("*") if p.is_file()}
                   | {p.relative_to(new) for p in new.rglob("*") if p.is_file()})
    bad = 0
    for rel in names:
        a, b = old / rel, new / rel
        ok = a.exists() and b.exists() and same(a, b)
        bad += not ok
        print(f"{'same' if ok else 'DIFFERENT'}  {rel}")
    print(f"{len(names) - bad} of {len(names)} files the same")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
