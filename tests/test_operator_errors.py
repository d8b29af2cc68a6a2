"""Errors an operator fixes are one line, never a traceback: a full disk, a damaged sidecar or
catalog, a temporary file that cannot be cleaned up; anything else keeps its traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.archive.model import ArchiveError
from pipeline.catalog.base import CatalogError
from pipeline.checks import StepFailed
from pipeline.errors import DiskFull, OperatorError, disk_full_reported
from pipeline.jsonio import AtomicWriter, InputError
from pipeline.preconditions import PreconditionFailed
from pipeline.preflight import SettingsError
from pipeline.runlock import LockHeld
from pipeline.sinks.base import SinkError

ROOT = Path(__file__).resolve().parents[1]


def test_operator_facing_errors_share_one_base():
    for cls in (SettingsError, InputError, CatalogError, ArchiveError, LockHeld, StepFailed,
                PreconditionFailed, SinkError, DiskFull):
        assert issubclass(cls, OperatorError), cls
    assert issubclass(SettingsError, ValueError)  # callers catching ValueError still do
    assert not issubclass(KeyError, OperatorError)


def test_a_full_disk_names_the_path_and_the_space_left(tmp_path):
    target = tmp_path / "out.json.gz"
    with pytest.raises(DiskFull) as info, disk_full_reported(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    message = str(info.value)
    assert str(target) in message and " free of " in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    import sqlite3

    with pytest.raises(DiskFull), disk_full_reported(target):
        raise sqlite3.OperationalError("database or disk is full")
    with pytest.raises(OSError) as other, disk_full_reported(target):  # not a full disk: as is
        raise OSError(errno.EACCES, "Permission denied")
    assert not isinstance(other.value, DiskFull)


class _RefusingFile:
    """A file whose close fails as a full disk makes it fail (the last buffered bytes)."""

    def __init__(self, f):
        self._f = f

    def close(self):
        self._f.close()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_discarding_a_temporary_file_never_hides_the_error_that_got_there(tmp_path):
    path = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="the step's own error"):
        with AtomicWriter(path) as w:
            w.write_line("{}")
            w._raw = w._f = _RefusingFile(w._raw)
            raise RuntimeError("the step's own error")
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone all the same


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if needle in line]
    assert len(lines) == 1, proc.stderr[-3000:]


@pytest.mark.parametrize("garbage", [b"garbage{", b"[1, 2]", b"\xff\xfe not utf-8"])
def test_a_damaged_sidecar_is_one_line_in_status_counter_and_messages(tmp_path, garbage):
    work = tmp_path / "work"
    shard = work / "ingest_results" / "shard-000-of-004.json.gz"
    export = work / "files_missing_sha256.json.gz"
    for target in (shard, export):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
        Path(f"{target}.meta.json").write_bytes(garbage)
    (work / "files_missing_sha256.rejects.json.gz").write_bytes(b"")  # the sidecar is read

    status = run_cli("--workdir", str(work), "status")
    assert status.returncode == 1
    assert "Traceback" not in status.stderr, status.stderr[-3000:]
    damaged = [line for line in status.stdout.splitlines() if "is damaged" in line]
    assert len(damaged) == 2 and f"{export}.meta.json" in damaged[0], status.stdout
    assert "files_missing_sha256.import.counts.json" in status.stdout  # the other steps: listed

    counter = run_cli("--workdir", str(work), "counter", "ExportMissingSha256")
    assert counter.returncode == 1
    one_line_error(counter, f"sidecar {export}.meta.json is damaged")

    messages = run_cli("--workdir", str(work), "messages")
    assert messages.returncode == 1
    one_line_error(messages, f"sidecar {shard}.meta.json is damaged")


def test_a_damaged_counters_document_is_one_line_in_counter(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    counts = work / "files_missing_sha256.import.counts.json"
    counts.write_text("not json")
    Path(f"{counts}.meta.json").write_text('{"counts": {"update": 1}}')
    proc = run_cli("--workdir", str(work), "counter", "ImportFileMeta")
    assert proc.returncode == 1
    one_line_error(proc, f"counters {counts} is damaged")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_catalog_dump_of_a_damaged_catalog_is_one_line(tmp_path, damage):
    catalog = tmp_path / "catalog.sqlite"
    if damage == "garbage":
        catalog.write_bytes(b"this is not a database\n" * 100)
    else:
        import sqlite3

        db = sqlite3.connect(catalog)
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
        db.commit()
        db.close()
        data = catalog.read_bytes()
        catalog.write_bytes(data[: len(data) // 2])
    proc = run_cli("catalog", "dump", "--catalog", str(catalog))
    assert proc.returncode == 1 and proc.stdout == ""
    one_line_error(proc, f"embedded catalog {catalog} is damaged")


# The import's COMMIT meeting a full disk: SQLite's own error, raised where the editgroups
# are committed (what a full disk does to the embedded catalog mid-import).
FULL_AT_COMMIT = (
    "import sqlite3, sys\n"
    "from luigi.cmdline import luigi_run\n"
    "from pipeline.catalog.sqlite import SqliteCatalog\n"
    "def full(self, *args, **kwargs):\n"
    "    raise sqlite3.OperationalError('database or disk is full')\n"
    "SqliteCatalog.commit_editgroups = full\n"
    "luigi_run(sys.argv[1:])\n"
)


def test_a_full_disk_at_the_import_commit_is_one_line(tmp_path, world):
    work = tmp_path / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", FULL_AT_COMMIT, "--module", "pipeline.tasks", "ImportFileMeta",
         "--local-scheduler", "--backfill-workdir", str(work),
         "--backfill-export", str(world / "file_export.json.gz"),
         "--backfill-archive", str(world / "collection"), "--backfill-shards", "2",
         "--backfill-sample-size", "50"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 30, proc.stderr[-3000:]  # [retcode] task_failed
    one_line_error(proc, "DiskFull: no space left on device while writing")
    assert f"{work / 'files_missing_sha256.import.counts.json'}" in proc.stderr
    assert not (work / "files_missing_sha256.import.counts.json").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs: room for the export steps, not for the shards' sink files (needs root
    and a kernel that lets this process mount; skipped otherwise)."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_in_the_shards_is_one_line_each(small_disk, world):
    work = small_disk / "work"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
         "--local-scheduler", "--backfill-workdir", str(work),
         "--backfill-export", str(world / "file_export.json.gz"),
         "--backfill-archive", str(world / "collection"), "--backfill-shards", "2",
         "--backfill-sample-size", "50"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 30, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, \
        proc.stderr[-3000:]
    for shard in ("shard-000-of-002", "shard-001-of-002"):
        failed = [line for line in proc.stderr.splitlines()
                  if f"shard={int(shard[6:9])}, shards=2): DiskFull: no space left" in line]
        assert len(failed) == 1, proc.stderr[-3000:]
        assert f"{work}/ingest_results/{shard}.json.gz" in failed[0] and " free of 2.0 MiB" in failed[0]
    assert not list(work.rglob("*.tmp-*"))  # nothing half-written left behind
