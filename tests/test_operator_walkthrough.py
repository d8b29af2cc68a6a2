"""The operator walk-through, end to end, with real services: the README followed as written.

One luigid, one Kafka-protocol broker (tansu, topics made by the project's own
`python -m pipeline kafka create-topics`), the GROBID stand-in and the fatcat
stand-in; the luigi CLI in subprocesses, as an operator types it (a central
scheduler, never `--local-scheduler`). In order:

1. the first run with every service's flags ends 0, the catalog is updated at the
   API and GROBID's results are on the broker;
2. a rerun without the flags takes them from the run manifest: nothing runs, nothing
   is rewritten;
3. a changed `--backfill-shards` is refused (35, naming old and new values) and goes
   through with `--backfill-change-settings`, the old shards set aside, no entity
   edited twice;
4. a GROBID outage during a run ends it 30 with the count, and the README's recovery
   recipe (its two commands, read from README.md) ends 0 with a complete report.

Step 4 is the operator's trial of a whole GROBID outage: GROBID answered its health check
but no PDF for the whole run, every result carried a GROBID error, `GrobidRetry` completed
during the outage, the run ended ":)" with exit 0 and the recipe afterwards did nothing.
Here the run fails with the count in one line and publishes no retry output, and the
recipe retries every PDF (each line says the 503 it replaces).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from broker import run_tansu
from fatcat_standin import FatcatStandin
from luigid_service import run_luigid

from pipeline.jsonio import read_json
from pipeline.sinks.message import GROBID, topic_name

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-walkthrough-7c1e"
KAFKA_ENV = "walk"
README_HOST = "http://grobid.internal:8070"

pytestmark = pytest.mark.services


def recipe() -> list[list[str]]:
    """The luigi commands of the README's GROBID recovery recipe, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("recovering after a GROBID outage", 1)[1].split("\n### ", 1)[0]
    block = next(b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if README_HOST in b)
    return [shlex.split(line) for line in block.splitlines() if line.strip()]


class Operator:
    """Types luigi command lines against one luigid, with the catalog token in the environment."""

    def __init__(self, scheduler_port: int):
        self.port = scheduler_port
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), FATCAT_API_AUTH_TOKEN=TOKEN)
        self.env.pop("LUIGI_CONFIG_PATH", None)

    def luigi(self, task: str, *args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", task,
               "--scheduler-host", "127.0.0.1", "--scheduler-port", str(self.port), *args]
        return subprocess.run(cmd, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600)

    def pipeline(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)


def first_run_flags(world: Path, grobid_url: str, catalog_url: str, hosts: str, shards: int) -> list[str]:
    return ["--backfill-export", str(world / "file_export.json.gz"),
            "--backfill-archive", str(world / "collection"), "--backfill-sample-size", "50",
            "--backfill-shards", str(shards), "--backfill-catalog", catalog_url,
            "--grobid-host", grobid_url, "--kafka-hosts", hosts, "--kafka-env", KAFKA_ENV,
            "--pdftext-enabled", "false"]


def files(work: Path) -> dict[str, int]:
    """Every file of the work directory and its modification time (ns)."""
    return {str(p.relative_to(work)): p.stat().st_mtime_ns for p in work.rglob("*") if p.is_file()}


def count_messages(hosts: str, topic: str, expected: int) -> int:
    """Messages on every partition of `topic`, read from the beginning (tansu's offsets lie):
    until `expected` arrived (a slow fetch on a busy machine never cuts the count short), then
    a second more, so that a surplus shows."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": hosts, "group.id": f"walk-{time.monotonic_ns()}",
                         "enable.auto.commit": False, "receive.message.max.bytes": 100_000_000})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    seen, last, deadline = 0, time.monotonic() + 3.0, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if seen < expected:
                last = time.monotonic()
            elif time.monotonic() - last >= 1.0:
                break
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            assert not msg.error(), msg.error()
            seen += 1
            last = time.monotonic()
    finally:
        consumer.close()
    return seen


def shard_messages(work: Path, topic: str) -> int:
    """The messages the shards' sidecars say they stored on `topic`."""
    return sum(read_json(sidecar)["counts"]["messages"][topic]
               for sidecar in (work / "ingest_results").glob("shard-*.json.gz.meta.json"))


# luigid ignores "pending" for a task it saw done within `stable_done_cooldown_secs` (10 s):
# the recovery recipe (step 4) deletes targets and reruns with the same settings, which the
# README says to do 10 s after a run; this luigid has no cooldown so that no step has to wait.
# (A changed-settings run needs no wait: tests/test_operations.py.)
NO_COOLDOWN = "[scheduler]\nstable_done_cooldown_secs = 0\n"


def test_the_operator_walkthrough(world, grobid, tmp_path):
    work = tmp_path / "backfill"
    with run_luigid(tmp_path / "luigid", NO_COOLDOWN) as luigid, run_tansu(tmp_path) as broker, \
            FatcatStandin.from_export(TOKEN, world / "file_export.json.gz") as api:
        op = Operator(luigid.port)
        made = op.pipeline("kafka", "create-topics", "--hosts", broker.hosts, "--env", KAFKA_ENV)
        assert made.returncode == 0, made.stdout + made.stderr
        assert made.stdout.count("created") == 3, made.stdout

        # 1. the first run, with every service's flags
        flags = first_run_flags(world, grobid.url, api.url, broker.hosts, shards=2)
        first = op.luigi("Backfill", "--backfill-workdir", str(work), *flags)
        assert first.returncode == 0, first.stderr[-3000:]
        updates = [r for r in api.requests if r["op"] == "update_file"]
        assert len(updates) == 1161  # the sample world's updates, made at the API
        assert grobid.requests and {r["mode"] for r in grobid.requests} == {"ok"}
        topic = topic_name(GROBID, KAFKA_ENV)
        sent = shard_messages(work, topic)
        on_topic = count_messages(broker.hosts, topic, sent)
        assert on_topic > 1000 and on_topic == sent, on_topic
        report = read_json(work / "report.json")
        assert report["outcome"] == {"partial": False, "why": []}

        # 2. a rerun without the flags: the manifest supplies them, nothing runs or is rewritten
        before = files(work)
        rerun = op.luigi("Backfill", "--backfill-workdir", str(work))
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "Did not run any tasks" in rerun.stderr, rerun.stderr[-3000:]
        assert files(work) == before

        # 3. a changed shard count: refused, then accepted with --backfill-change-settings
        refused = op.luigi("Backfill", "--backfill-workdir", str(work), "--backfill-shards", "3")
        assert refused.returncode == 35, refused.stderr[-3000:]
        assert any("[backfill] shards: 2 -> 3" in line for line in refused.stderr.splitlines()), \
            refused.stderr[-3000:]
        assert files(work) == before
        changed = op.luigi("Backfill", "--backfill-workdir", str(work), "--backfill-shards", "3",
                           "--backfill-change-settings")
        assert changed.returncode == 0, changed.stderr[-3000:]
        shards = sorted(p.name for p in (work / "ingest_results").glob("shard-*.json.gz"))
        assert shards == [f"shard-00{i}-of-003.json.gz" for i in range(3)]
        assert len(list((work / "superseded").glob("*/ingest_results/shard-*-of-002.json.gz"))) == 2
        with api.lock:
            edited = [e["ident"] for e in api.edits]
        assert len(edited) == len(set(edited)) == 1161  # no entity edited twice
        assert max(len(api.edits_of(i)) for i in set(edited)) == 1

        # 4. a GROBID outage during a run, then the README's recovery recipe
        outage = tmp_path / "outage"
        grobid.set_mode("busy")  # alive, but answers no PDF
        down = op.luigi("Backfill", "--backfill-workdir", str(outage), *flags)
        assert down.returncode == 30, down.stderr[-3000:]
        failed = [line for line in down.stderr.splitlines() if "PDFs still have GROBID errors" in line]
        m = re.search(r"(\d+) of (\d+) PDFs still have GROBID errors; GROBID at " + re.escape(grobid.url)
                      + r" did not answer (\d+) of them \(HTTP 503: (\d+)\)", failed[0] if failed else "")
        assert m and len(set(m.groups())) == 1 and int(m.group(1)) > 1000, down.stderr[-3000:]
        assert "failed    GrobidRetry(" in down.stderr
        assert not (outage / "files_missing_sha256.grobid_retry.json.gz").exists()
        assert not (outage / "report.json").exists()

        grobid.set_mode("ok")
        steps = recipe()
        assert [c[3] for c in steps] == ["Backfill", "GrobidRetry"]
        recovery = []
        for cmd in steps:
            args = [{"/srv/backfill": str(outage), README_HOST: grobid.url, "24": "2"}.get(a, a)
                    for a in cmd[4:]]
            recovery.append(op.luigi(cmd[3], *args))
            assert recovery[-1].returncode == 0, recovery[-1].stderr[-3000:]
        assert "Did not run any tasks" in recovery[-1].stderr
        report = read_json(outage / "report.json")
        assert report["outcome"] == {"partial": False, "why": []}
        retried = int(m.group(1))
        assert report["grobid"]["retry"] == {"retried": retried, "status": {"success": retried}}
        with gzip.open(outage / "files_missing_sha256.grobid_retry.json.gz", "rt") as f:
            lines = [json.loads(line) for line in f]
        assert len(lines) == retried and {x["status"] for x in lines} == {"success"}
        assert {x["previous"]["status_code"] for x in lines} == {503}

    # the catalog token is in no output and no file of either work directory
    outputs = [p.stdout + p.stderr for p in (first, rerun, refused, changed, down, *recovery)]
    assert not [i for i, text in enumerate(outputs) if TOKEN in text]
    assert not [p for d in (work, outage) for p in d.rglob("*") if p.is_file()
                and TOKEN.encode() in p.read_bytes()]
