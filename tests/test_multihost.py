"""Three worker hosts on one work directory and one luigid; one host dies inside a shard.

The README's multi-host mode, for real on one machine: each "host" is a worker
process in its own PID and UTS namespace (`unshare`), with its own host name
and its own process table (its luigi worker is pid 1 there, as on every other
"host"), sharing the work directory and the scheduler. Host A is held by a pause
point right after it began writing a shard, hosts B and C join, then everything
in A's namespace is killed. B and C must finish the run with every shard made
once, leave A's temporary file alone (its pid means nothing in their namespaces),
and `status` must list it under A; a process started again as A (pid 1 again,
another start time) removes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from luigid_service import run_luigid

from pipeline.jsonio import read_json
from pipeline.tempnames import temp_owner

ROOT = Path(__file__).resolve().parents[1]
UNSHARE = ["unshare", "--pid", "--uts", "--fork", "--mount-proc", "--kill-child"]
SHARDS = 3
# a worker that stops pinging (host A, killed) loses its running shard after this many
# seconds; live workers ping every second, so this is far beyond any pause of theirs
SCHEDULER_CFG = """[scheduler]
worker_disconnect_delay = 15
retry_delay = 1
prune_on_get_work = true
"""


def _namespaces_refused() -> str | None:
    """Why this machine cannot give a process its own PID and UTS namespace, or None."""
    try:
        proc = subprocess.run([*UNSHARE, "sh", "-c", "hostname probe-host && hostname && echo $$"],
                              capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "no unshare command (util-linux)"
    if proc.returncode != 0 or proc.stdout.split() != ["probe-host", "1"]:
        return f"unshare --pid --uts refused here: {proc.stderr.strip() or proc.stdout.strip()}"
    return None


def _host(name: str, args: list[str], log: Path, pause_dir: Path | None = None) -> subprocess.Popen:
    """A luigi worker as host `name` (own PID and UTS namespace); SIGKILL of the returned
    process kills everything in that namespace (`--kill-child`, then the kernel)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    env.pop("PIPELINE_PAUSE_DIR", None)
    if pause_dir is not None:
        env["PIPELINE_PAUSE_DIR"] = str(pause_dir)
    cmd = [*UNSHARE, "sh", "-c", 'hostname "$0" && exec "$@"', name,
           sys.executable, "-m", "luigi", "--module", "pipeline.tasks", *args]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _wait_for(path_glob: Path, proc: subprocess.Popen, log: Path, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(path_glob.parent.glob(path_glob.name))
        if found:
            return found[0]
        assert proc.poll() is None, f"host ended before {path_glob.name}: {log.read_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{path_glob} never appeared: {log.read_text()[-3000:]}")


def _status(work: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "pipeline", "--workdir", str(work), "status"],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=300)
    # 1: not every step of the default configuration (4 shards, the import) is complete
    assert proc.returncode in (0, 1) and not proc.stderr, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def namespaces():
    why = _namespaces_refused()
    if why:
        pytest.skip(why)


def test_a_host_killed_inside_a_shard_loses_nothing_and_its_temporaries_stay_its_own(
        namespaces, world, tmp_path):
    work, logs, pause = tmp_path / "work", tmp_path / "logs", tmp_path / "pause-a"
    logs.mkdir()
    pause.mkdir()
    (pause / "ingest-shard.arm").touch()  # hold inside a shard (other pause points: never)
    (pause / "ingest-shard-000-of-001.go").touch()  # the sample's ingest is not held
    with run_luigid(tmp_path / "luigid", SCHEDULER_CFG) as luigid:
        args = ["UniqFileMeta", "--scheduler-host", "127.0.0.1", "--scheduler-port",
                str(luigid.port), "--workers", "1", "--no-lock", "--worker-keep-alive",
                "--backfill-workdir", str(work),
                "--backfill-export", str(world / "file_export.json.gz"),
                "--backfill-archive", str(world / "collection"),
                "--backfill-shards", str(SHARDS), "--backfill-sample-size", "50",
                "--pdftext-enabled", "false"]
        host_a = _host("host-a", args, logs / "host-a.log", pause)
        try:
            reached = _wait_for(pause / f"ingest-shard-*-of-{SHARDS:03d}.reached", host_a,
                                logs / "host-a.log")
            held = int(re.search(r"ingest-shard-(\d+)", reached.name).group(1))
            a_temps = sorted(work.rglob("*.tmp-*"))  # only host A has run so far
            shard_file = f"shard-{held:03d}-of-{SHARDS:03d}.json.gz"
            # the shard and its sink files, all begun by its pid 1 (its own process table)
            assert {p.name.split(".tmp-")[0] for p in a_temps} >= {shard_file}, a_temps
            assert all(f"shard-{held:03d}-" in p.name and temp_owner(p.name).host == "host-a"
                       and temp_owner(p.name).pid == 1 for p in a_temps), a_temps
            others = [_host(h, args, logs / f"{h}.log") for h in ("host-b", "host-c")]
        finally:
            host_a.kill()  # unshare, then (--kill-child) the namespace's init and all in it
            host_a.wait(timeout=60)
        try:
            for h, proc in zip(("host-b", "host-c"), others, strict=True):
                # luigi's exit code is each process's own view: 10 (already_running) or 25
                # (not_run) when another host ran some of its tasks; never a failure
                code = proc.wait(timeout=900)
                assert code in (0, 10, 25), (logs / f"{h}.log").read_text()[-4000:]
                assert not re.search(r"\* \d+ failed", (logs / f"{h}.log").read_text())
        finally:
            for proc in others:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        done = [t["name"] for t in luigid.tasks("DONE").values()]
        assert done.count("IngestShard") == SHARDS and "UniqFileMeta" in done
        assert luigid.tasks("FAILED") == {}

    # every shard made once: one `done` line per shard across B and C, none on A
    text = {h: (logs / f"{h}.log").read_text() for h in ("host-a", "host-b", "host-c")}
    for shard in range(SHARDS):
        line = re.compile(rf"Worker .* done +IngestShard\(.*shard={shard}\b")
        assert sum(len(line.findall(text[h])) for h in ("host-b", "host-c")) == 1, shard
        assert not line.search(text["host-a"])
    # nothing lost: the shards and the merged result are a clean run's
    expected = json.loads((world / "expected.json").read_text())
    shard_totals = [read_json(p)["total"] for p in sorted((work / "ingest_results").glob("*.counts.json"))]
    assert shard_totals == [418, 418, 417]
    uniq_meta = work / "files_missing_sha256.file_meta.uniq.json.gz.meta.json"
    assert read_json(uniq_meta)["counts"]["out"] == expected["merge"]["uniq"]

    # the dead host's temporary file: not swept by B or C, listed by status under its host
    assert all(p.exists() for p in a_temps)
    status = _status(work)
    assert f"temporary files of host-a ({len(a_temps)})" in status, status
    assert "python -m pipeline sweep --host host-a" in status
    assert all(os.path.relpath(p, work) in status for p in a_temps)

    # a process on host-a again (pid 1 again, started later) sweeps them when it makes a target
    uniq_meta.unlink()
    again = _host("host-a", [*args[:1], "--local-scheduler", *args[5:]], logs / "host-a-again.log")
    assert again.wait(timeout=600) == 0, (logs / "host-a-again.log").read_text()[-4000:]
    assert not any(p.exists() for p in a_temps)
    assert "temporary files of host-a" not in _status(work)
    assert read_json(uniq_meta)["counts"]["out"] == expected["merge"]["uniq"]
