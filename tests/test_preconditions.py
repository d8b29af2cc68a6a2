"""Preconditions: a run whose archive, catalog, GROBID or broker is unusable stops before any work.

Each test starts the whole pipeline (`Backfill`, the luigi CLI in a
subprocess) with one service wrong, and checks the exit code (`[retcode]
task_failed`), the message (what is wrong, how to fix it), and that no step
wrote anything: the work directory holds no target and no sidecar.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from services import QuietHandler, free_port, serve_http

from pipeline import preconditions

ROOT = Path(__file__).resolve().parents[1]
TASK_FAILED = 30


def backfill(work: Path, world: Path, *extra: str, env_extra: dict | None = None,
             drop_env: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    for name in drop_env:
        env.pop(name, None)
    env.update(env_extra or {})
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
           "--local-scheduler", "--backfill-workdir", str(work),
           "--backfill-export", str(world / "file_export.json.gz"),
           "--backfill-archive", str(world / "collection"), "--backfill-sample-size", "50",
           *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def assert_no_work(work: Path, proc: subprocess.CompletedProcess) -> None:
    made = sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()) \
        if work.exists() else []
    assert made == [], made
    summary = proc.stderr.split("Execution Summary")[1]
    assert "ran successfully" not in summary, summary


def failed_line(proc: subprocess.CompletedProcess, family: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if "PreconditionFailed" in line
             or f"{family}:" in line]
    assert lines, proc.stderr[-3000:]
    return "\n".join(lines)


def test_unreachable_archive_fails_at_once_and_nothing_runs(world, tmp_path):
    port = free_port()  # nothing listens there
    work = tmp_path / "work"
    proc = backfill(work, world, "--backfill-archive", f"http://127.0.0.1:{port}/world")
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "ArchiveReachable")
    assert "archive CDX lookup failed" in message
    assert "fix [backfill] archive" in message
    assert_no_work(work, proc)


def test_failing_archive_is_asked_once_without_retries(world, tmp_path):
    seen: list[str] = []

    class Failing(QuietHandler):
        def do_GET(self):  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            self.reply(503, b"down for maintenance")

    with serve_http(Failing) as url:
        work = tmp_path / "work"
        proc = backfill(work, world, "--backfill-archive", f"{url}/world",
                        "--ingest-cdx-dialect", "pywb")
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    assert "503" in failed_line(proc, "ArchiveReachable")
    # one lookup while scheduling, answered from the cache when the task runs: no retry loop
    assert len(seen) == 1, seen
    assert_no_work(work, proc)


def test_archive_whose_captures_cannot_be_read_fails_before_any_step(world, tmp_path):
    # the index is the world's, the WARC files are gone: lookups answer, fetches cannot
    damaged = tmp_path / "damaged-collection"
    (damaged / "archive").mkdir(parents=True)
    (damaged / "indexes").symlink_to(world / "collection" / "indexes")
    work = tmp_path / "work"
    proc = backfill(work, world, "--backfill-archive", str(damaged))
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "ArchiveReachable")
    assert "answers its CDX lookups but no capture could be fetched" in message
    assert "cannot open WARC" in message
    assert_no_work(work, proc)


def test_archive_holding_none_of_the_exports_urls_passes_with_a_warning(world, tmp_path):
    from pipeline import config

    empty = tmp_path / "empty-collection"
    (empty / "archive").mkdir(parents=True)
    (empty / "indexes").mkdir()
    (empty / "indexes" / "index.cdxj").write_text("")
    note = preconditions.check_archive(str(empty), config.ingest(),
                                       str(world / "file_export.json.gz"))
    assert "none of the export's first 20 URLs has a capture" in note


def test_fatcat_catalog_without_token_fails_before_any_step(world, tmp_path):
    work = tmp_path / "work"
    port = free_port()
    proc = backfill(work, world, "--backfill-catalog", f"http://127.0.0.1:{port}/v0",
                    drop_env=(preconditions.TOKEN_ENV,))
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "CatalogWritable")
    assert "FATCAT_API_AUTH_TOKEN is not set" in message and "export the API token" in message
    assert_no_work(work, proc)


def _timed_backfill(work: Path, world: Path, catalog: str, token: str):
    import time

    t0 = time.monotonic()
    proc = backfill(work, world, "--backfill-catalog", catalog,
                    env_extra={preconditions.TOKEN_ENV: token})
    return proc, time.monotonic() - t0


def test_fatcat_token_the_api_rejects_fails_in_seconds_before_any_step(world, tmp_path):
    """The token is set but wrong: `GET /auth/check` says so before the export or a shard runs
    (the runbook learnt it after the whole ingest). The message names the variable and the
    URL, never the token."""
    from fatcat_standin import FatcatStandin

    wrong = "wrong-token-5d1e2f"
    with FatcatStandin("the-right-token") as api:
        proc, seconds = _timed_backfill(tmp_path / "work", world, api.url, wrong)
        asked = [r["op"] for r in api.requests]
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "CatalogWritable")
    assert "FATCAT_API_AUTH_TOKEN was refused" in message and api.url in message
    assert wrong not in proc.stderr and wrong not in proc.stdout
    assert set(asked) == {"auth_check"}  # no lookup, no editgroup
    assert_no_work(tmp_path / "work", proc)
    assert seconds < 10, seconds


def test_fatcat_api_that_does_not_answer_fails_in_seconds_before_any_step(world, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v0"  # nothing listens there
    proc, seconds = _timed_backfill(tmp_path / "work", world, url, "some-token")
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "CatalogWritable")
    assert f"the fatcat API at {url} does not answer" in message
    assert "FATCAT_API_AUTH_TOKEN could not be checked" in message
    assert_no_work(tmp_path / "work", proc)
    assert seconds < 10, seconds


def test_sqlite_catalog_that_cannot_be_written_fails_before_any_step(world, tmp_path):
    work = tmp_path / "work"
    not_a_file = tmp_path / "catalog.sqlite"
    not_a_file.mkdir()
    proc = backfill(work, world, "--backfill-catalog", str(not_a_file))
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    assert "is a directory, not a SQLite file" in failed_line(proc, "CatalogWritable")
    assert_no_work(work, proc)


def test_grobid_down_fails_before_any_step(world, tmp_path):
    work = tmp_path / "work"
    proc = backfill(work, world, "--grobid-host", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "GrobidAlive")
    assert "is not reachable" in message and "start GROBID" in message
    assert_no_work(work, proc)


def test_broker_down_fails_before_any_step(world, tmp_path):
    work = tmp_path / "work"
    proc = backfill(work, world, "--kafka-hosts", f"127.0.0.1:{free_port()}")
    assert proc.returncode == TASK_FAILED, proc.stderr[-3000:]
    message = failed_line(proc, "BrokerReachable")
    assert "did not answer" in message and "[kafka] hosts" in message
    assert_no_work(work, proc)


def test_a_finished_run_checks_nothing_so_a_rerun_stays_a_no_op(world, finished_run):
    work, first = finished_run  # made with these settings (conftest)
    assert first.returncode == 0, first.stderr[-3000:]
    # plain modules log under their own names (the catalog's load, the import's counters);
    # a luigi run shows their INFO lines, each once
    lines = first.stderr.splitlines()
    for start in ("INFO: catalog ", "INFO: import of "):
        shown = [line for line in lines if line.startswith(start)]
        assert len(shown) == 1, (start, first.stderr[-3000:])
    second = backfill(work, world, "--backfill-shards", "2")
    assert second.returncode == 0 and "Did not run any tasks" in second.stderr


@pytest.mark.parametrize("catalog", ["", "relative/catalog.sqlite"])
def test_catalog_checks_pass_for_a_new_embedded_catalog(tmp_path, catalog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = catalog or str(tmp_path / "work" / "catalog.sqlite")
    assert "writable" in preconditions.check_catalog(path)
