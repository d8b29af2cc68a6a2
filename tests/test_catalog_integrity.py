"""The embedded catalog: sealed and checked before it is published, never reused when damaged,
and tied to the export it was loaded from."""

from __future__ import annotations

import gzip
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.catalog import open_catalog
from pipeline.catalog.base import CatalogError
from pipeline.catalog.export import load_export

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def small_disk():  # a file-size limit: writes beyond it fail like a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=120, preexec_fn=small_disk if limit else None)


def test_published_catalog_is_self_contained_and_checked(tmp_path, world):
    cat = tmp_path / "catalog.sqlite"
    load_export(cat, world / "file_export.json.gz")
    header = cat.read_bytes()[:100]
    # file format bytes 18/19: 1 = rollback journal; 2 would mean WAL, whose data may still sit
    # in a -wal file that a failed checkpoint at close leaves behind
    assert header[18:20] == b"\x01\x01"
    assert not Path(f"{cat}-wal").exists() and not list(tmp_path.glob("*.tmp-*"))


# the disk fills while the new file gets its tables (16 KiB pages) / while its rows go in
@pytest.mark.parametrize("limit", [150_000, 1_000_000], ids=["schema", "rows"])
def test_load_on_a_full_disk_publishes_nothing_and_says_so(tmp_path, world, limit):
    cat = tmp_path / "catalog.sqlite"
    proc = _cli("catalog", "load", str(world / "file_export.json.gz"), "--catalog", str(cat),
                limit=limit)
    assert proc.returncode == 1
    assert "no catalog was published" in proc.stderr and "Traceback" not in proc.stderr
    assert not cat.exists() and not list(tmp_path.glob("catalog.sqlite.tmp-*"))
    # space freed: the next load works
    proc = _cli("catalog", "load", str(world / "file_export.json.gz"), "--catalog", str(cat))
    assert proc.returncode == 0, proc.stderr


def test_damaged_catalog_is_never_reused(tmp_path, world):
    cat = tmp_path / "catalog.sqlite"
    export = world / "file_export.json.gz"
    load_export(cat, export)
    data = bytearray(cat.read_bytes())
    data[len(data) // 2: len(data) // 2 + 8192] = b"\xa5" * 8192  # pages of garbage
    cat.write_bytes(bytes(data))
    with pytest.raises(CatalogError) as err:
        open_catalog(str(cat), seed=str(export))
    assert "is damaged" in str(err.value) and "never reused" in str(err.value)
    proc = _cli("catalog", "get", "a" * 26, "--catalog", str(cat))
    assert proc.returncode == 1 and "is damaged" in proc.stderr and "Traceback" not in proc.stderr


def test_not_a_database_at_the_catalog_path(tmp_path, world):
    cat = tmp_path / "catalog.sqlite"
    cat.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(CatalogError, match="is damaged"):
        open_catalog(str(cat), seed=str(world / "file_export.json.gz"))


def test_catalog_from_another_export_is_refused(tmp_path, world):
    export = world / "file_export.json.gz"
    cat = tmp_path / "catalog.sqlite"
    open_catalog(str(cat), seed=str(export))[0].close()
    # the same export (even copied elsewhere): fine
    same = tmp_path / "copy.json.gz"
    same.write_bytes(export.read_bytes())
    open_catalog(str(cat), seed=str(same))[0].close()
    # another export: the stale catalog would answer skip-no-match for everything
    other = tmp_path / "other.json.gz"
    other.write_bytes(gzip.compress(gzip.decompress(export.read_bytes())[:-200] + b"\n"))
    with pytest.raises(CatalogError) as err:
        open_catalog(str(cat), seed=str(other))
    msg = str(err.value)
    assert str(export) in msg and str(other) in msg and "skip-no-match" in msg


def test_the_cheap_header_check_sees_garbage_and_a_cut_file(tmp_path):
    """`header_problem` (run at every completeness check of the import) reads 100 bytes."""
    import sqlite3

    from pipeline.catalog.integrity import header_problem

    cat = tmp_path / "c.sqlite"
    db = sqlite3.connect(cat)
    db.execute("CREATE TABLE t (x TEXT)")
    db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    db.commit()
    db.close()
    assert header_problem(cat) is None
    whole = cat.read_bytes()
    cat.write_bytes(whole[:4096 * 3])  # cut at a page boundary: SQLite itself may not notice
    assert header_problem(cat).startswith("cut short")
    cat.write_bytes(b"\0" * len(whole))
    assert header_problem(cat) == "not a SQLite database"
    assert header_problem(tmp_path / "missing.sqlite").startswith("unreadable")
