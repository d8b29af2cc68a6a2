"""Settings are checked before any step runs; operator errors reach stderr without a traceback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import settings_sections

from pipeline.preflight import settings_problems

ROOT = Path(__file__).resolve().parents[1]


def luigi(work: Path, world: Path, *extra: str, task: str = "Backfill") -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task, "--local-scheduler",
            "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"), *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("over, needle", [
    ({"backfill__shards": 0}, "shards must be >= 1"),
    ({"backfill__sample_min_success": 1.5}, "sample_min_success must be within 0..1"),
    ({"backfill__sample_min_success": -0.1}, "sample_min_success must be within 0..1"),
    ({"backfill__sample_size": -1}, "sample_size must be >= 0"),
    ({"backfill__archive": "/no/such/collection"}, "archive is neither a directory"),
    ({"importer__batch_size": 0}, "batch_size must be within 1..100"),
    ({"importer__batch_size": 101}, "batch_size must be within 1..100"),
    ({"ingest__concurrency": 0}, "concurrency must be >= 1"),
    ({"ingest__cdx_dialect": "wayback"}, "cdx_dialect must be one of"),
    ({"ingest__max_hops": 0}, "max_hops must be >= 1"),
])
def test_each_bad_value_is_named(over, needle):
    assert settings_problems(*settings_sections()) == []
    problems = settings_problems(*settings_sections(**over))
    assert len(problems) == 1 and needle in problems[0], problems


def test_empty_export_is_a_problem(tmp_path):
    for name, data in (("empty.json", b""), ("blank.json", b"\n \n"),
                       ("empty.json.gz", gzip.compress(b""))):
        (tmp_path / name).write_bytes(data)
        problems = settings_problems(*settings_sections(backfill__export=str(tmp_path / name)))
        assert len(problems) == 1 and "holds no entities" in problems[0] and name in problems[0]


@pytest.mark.parametrize("option, value, needle", [
    ("--backfill-shards", "0", "shards must be >= 1, got 0"),
    ("--backfill-sample-min-success", "1.5", "sample_min_success must be within 0..1, got 1.5"),
])
def test_bad_setting_fails_before_any_step_runs(tmp_path, world, option, value, needle):
    work = tmp_path / "work"
    proc = luigi(work, world, option, value)
    assert proc.returncode == 35, proc.stderr[-3000:]  # [retcode] scheduling_error
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not work.exists() or not any(work.rglob("*.json*"))  # no step ran


def test_empty_export_fails_clearly(tmp_path, world):
    export = tmp_path / "export.json.gz"
    export.write_bytes(gzip.compress(b""))
    work = tmp_path / "work"
    proc = luigi(work, world, "--backfill-export", str(export), task="ExportMissingSha256")
    assert proc.returncode == 35, proc.stderr[-3000:]
    assert f"export {export} holds no entities" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (work / "files_missing_sha256.json.gz").exists()


def test_data_error_in_a_step_is_one_line_not_a_traceback(tmp_path, world):
    """A truncated export fails its step (exit 30) with the file named, no traceback."""
    # large enough that the first lines read fine (the settings check passes) and the cut
    # is met by the step itself
    lines = gzip.decompress((world / "file_export.json.gz").read_bytes()) * 8
    data = gzip.compress(lines, mtime=0)
    export = tmp_path / "export.json.gz"
    export.write_bytes(data[: len(data) * 7 // 10])
    proc = luigi(tmp_path / "work", world, "--backfill-export", str(export), task="ExportMissingSha256")
    assert proc.returncode == 30, proc.stderr[-3000:]
    assert "InputError" in proc.stderr and str(export) in proc.stderr and "truncated" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("option, value, needle", [
    ("--backfill-shards", "abc", "[backfill] shards must be an integer, got 'abc'"),
    ("--backfill-extra-results", "not-a-list", "[backfill] extra_results must be a JSON list"),
    ("--backfill-progress-seconds", "-1", "[backfill] progress_seconds must be > 0, got -1.0"),
    ("--pdftext-enabled", "maybe", "[pdftext] enabled must be true or false, got 'maybe'"),
    ("--backfill-catalog-seed", "{tmp}/no-such-seed.json.gz",
     "[backfill] catalog_seed {tmp}/no-such-seed.json.gz does not exist"),
    ("--backfill-shards", "100000000", "[backfill] shards must be <= 4096, got 100000000"),
    ("--backfill-export", "", "[backfill] export is given empty (--backfill-export '')"),
    ("--backfill-catalog", "ftp://x", "[backfill] catalog is a ftp:// URL ('ftp://x')"),
    ("--backfill-archive", "FTP://archive.example/", "[backfill] archive is a ftp:// URL"),
])
def test_each_bad_setting_is_one_line_and_exit_35_before_any_step(tmp_path, world, option, value,
                                                                   needle):
    work = tmp_path / "work"
    proc = luigi(work, world, option, value.format(tmp=tmp_path))
    assert proc.returncode == 35, proc.stderr[-3000:]  # [retcode] scheduling_error
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rejected = [line for line in proc.stderr.splitlines() if "configuration rejected" in line]
    assert len(rejected) == 1 and needle.format(tmp=tmp_path) in rejected[0], proc.stderr[-3000:]
    assert "running   " not in proc.stderr  # luigi started no task
    assert not work.exists() or not any(p.is_file() for p in work.rglob("*"))


def test_settings_problems_of_urls_and_ranges():
    assert settings_problems(*settings_sections(backfill__shards=4096)) == []
    assert settings_problems(*settings_sections(backfill__catalog="HTTPS://api.example/v0"),
                             environ={"FATCAT_API_AUTH_TOKEN": "tok\r\n"}) == []
    for over, needle in (
            ({"backfill__progress_seconds": float("nan")}, "progress_seconds must be > 0"),
            ({"backfill__extra_results": "a-string"}, "extra_results must be a JSON list"),
            ({"ingest__archive_proxy": "socks5://p:1080"}, "[ingest] archive_proxy is a socks5://"),
            ({"ingest__warc_base": "s3://bucket/"}, "[ingest] warc_base is a s3:// URL"),
            ({"backfill__archive": "ftp://x"}, "[backfill] archive is a ftp:// URL")):
        problems = settings_problems(*settings_sections(**over))
        assert len(problems) == 1 and needle in problems[0], problems
