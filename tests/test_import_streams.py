"""Parallel import streams (issue 18): still exactly once, across SIGKILLs, in the API.

The kill trials run `catalog import --streams N` against the fatcat stand-in
in a subprocess and SIGKILL it after a seeded random number of journal
events (the streams' `created` and `accepted` lines; a kill lands between
an editgroup's creation, its edits, its accept and its journal line), some
trials twice (the rerun killed as well), then rerun it to the end with
another number of streams. After each: every entity edited exactly once,
the counts target the true totals of a run never killed, no editgroup left
open with edits in it, and the journal with nothing open. `STREAMS_SEED=N`
tries other points.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from catalog_world import entity, file_meta, hashes, ident_of, write_lines
from fatcat_standin import EDITOR_ID, FatcatStandin, macaroon_token

from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.importer import import_file_meta
from pipeline.importer.journal import ImportJournal
from pipeline.importer.streams import stream_of

ROOT = Path(__file__).resolve().parents[1]
TOKEN = macaroon_token(EDITOR_ID)
SEED = int(os.environ.get("STREAMS_SEED", "1818"))
N = 400  # entities to fill
COMPLETE = 20  # entities already complete
NO_MATCH = 10
TRIALS = 6


def _world(tmp_path: Path):
    ents = [entity(i) for i in range(N)] + [entity(N + i, complete=True) for i in range(COMPLETE)]
    rows = [file_meta(i) for i in range(N + COMPLETE + NO_MATCH)]
    rows[50:50] = [file_meta(7), file_meta(300)]  # duplicate sha1s: one stream each
    fm = write_lines(tmp_path / "fm.json", rows)
    want = {"total": len(rows), "skip": 0, "insert": 0, "exists": 0, "update": N,
            "skip-existing-complete": COMPLETE + 2, "skip-no-match": NO_MATCH}
    return ents, fm, want


def _cmd(api: FatcatStandin, fm: Path, work: Path, streams: int) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--workdir", str(work), "catalog", "import", str(fm),
            "--catalog", api.url, "--journal", str(work / "journal.json"), "--batch-size", "10",
            "--streams", str(streams), "--counts", str(work / "counts.json")]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "FATCAT_API_AUTH_TOKEN": TOKEN}


def _events(work: Path) -> int:
    try:
        return (work / "journal.json").read_bytes().count(b"\n")
    except OSError:
        return 0


def _group_members(pgid: int) -> list[int]:
    """The processes of process group `pgid` that have not exited (zombies have)."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members.append(int(name))
    return members


def _wait_group_gone(pgid: int, what: str) -> None:
    """Wait for every process of the run (the parent and its stream processes) to have exited:
    a stream outliving its killed parent would edit beside the rerun."""
    deadline = time.monotonic() + 60
    while members := _group_members(pgid):
        assert time.monotonic() < deadline, f"{what}: processes {members} outlived it"
        time.sleep(0.01)


def _started(api: FatcatStandin, fm: Path, work: Path, streams: int, after_events: int,
             stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """The import, in a process group of its own, once its journal holds `after_events`
    events (or it has ended)."""
    proc = subprocess.Popen(_cmd(api, fm, work, streams), cwd=ROOT, env=_env(), text=True,
                            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and _events(work) < after_events:
        assert time.monotonic() < deadline, "the import neither reached the kill point nor ended"
        time.sleep(0.001)
    return proc


def _killed(api: FatcatStandin, fm: Path, work: Path, streams: int, after_events: int) -> str:
    """Run the import and SIGKILL its parent process (the run) after `after_events` journal
    events; return once every process of the run is gone."""
    proc = _started(api, fm, work, streams, after_events)
    if proc.poll() is not None:
        _wait_group_gone(proc.pid, "the import")
        return f"finished before event {after_events}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait_group_gone(proc.pid, "the killed import")
    return f"killed at {_events(work)} events"


def _exactly_once(api: FatcatStandin, work: Path, want: dict) -> None:
    for i in range(N):
        edits = api.edits_of(ident_of(i))
        assert len(edits) == 1, (i, edits)
        assert api.get_file(ident_of(i))["sha256"] == hashes(i)["sha256"]
    for i in range(N, N + COMPLETE):
        assert api.edits_of(ident_of(i), accepted_only=False) == []
    # nothing open that a person could accept later by mistake, nothing open in the journal
    assert all(g["changelog_index"] is not None for g in api.editgroups() if g["edit_count"])
    assert ImportJournal(work / "journal.json").open_editgroups(api.url) == []
    assert json.loads((work / "counts.json").read_text()) == want


def test_streams_partition_by_sha1_alone():
    rows = [file_meta(i) for i in range(200)]
    for n in (1, 2, 4, 8):
        seen = {stream_of(r, n) for r in rows}
        assert seen == set(range(n))  # every stream gets a share
        for r in rows:  # a sha1 lands in one stream whatever its case or the rest of the record
            assert stream_of({"sha1hex": r["sha1hex"].upper()}, n) == stream_of(r, n)


def test_four_streams_edit_each_entity_once_with_true_counts(tmp_path):
    ents, fm, want = _world(tmp_path)
    with FatcatStandin(TOKEN, ents) as api, FatcatCatalog(api.url, token=TOKEN, backoff=0.001) as c:
        result = import_file_meta(fm, c, journal_path=tmp_path / "journal.json", batch_size=10,
                                  streams=4)
        (tmp_path / "counts.json").write_text(json.dumps(result.counters()))
        _exactly_once(api, tmp_path, want)
        streams = {e.get("stream") for e in ImportJournal(tmp_path / "journal.json").events()}
        assert streams == {0, 1, 2, 3}  # each stream wrote its own editgroups
        # each editgroup was written by one stream only: its entities all fall in that stream
        by_sha1 = {hashes(i)["sha1"]: i for i in range(N)}
        for eg in api.editgroups():
            got = api.get_editgroup(eg["editgroup_id"])
            shares = {stream_of({"sha1hex": api.get_file(e["ident"])["sha1"]}, 4)
                      for e in got["edits"]["files"]}
            assert len(shares) == 1, eg
        assert len(by_sha1) == N


class AliasingCatalog(FatcatCatalog):
    """An API where a second sha1 resolves to the same entity (fatcat's lookup can do that for
    a merged entity): `ALIAS` looks up entity 0, like its own sha1 does."""

    ALIAS = "f" * 40

    def lookup_sha1(self, sha1):
        return super().lookup_sha1(hashes(0)["sha1"] if sha1 == self.ALIAS else sha1)

    def for_stream(self):
        return AliasingCatalog(self.base_url, TOKEN, backoff=0.001)


def test_two_sha1s_of_one_entity_in_two_streams_edit_it_once(tmp_path):
    alias = dict(file_meta(0), sha1hex=AliasingCatalog.ALIAS)
    assert stream_of(alias, 2) != stream_of(file_meta(0), 2)  # the case this test is about
    fm = write_lines(tmp_path / "fm.json", [file_meta(0), alias])
    with FatcatStandin(TOKEN, [entity(0)], delay=0.01) as api, \
            AliasingCatalog(api.url, token=TOKEN, backoff=0.001) as c:
        result = import_file_meta(fm, c, journal_path=tmp_path / "journal.json", streams=2)
        assert len(api.edits_of(ident_of(0), accepted_only=False)) == 1
    assert (result.counts["update"], result.counts["skip-existing-complete"]) == (1, 1)


def test_a_failing_stream_stops_the_run_and_the_rerun_settles_everything(tmp_path):
    ents, fm, want = _world(tmp_path)
    with FatcatStandin(TOKEN, ents) as api:
        # every accept fails past the client's 4 retries, whichever stream asks first
        api.add_fault("POST", "accept", "503", times=10_000)
        with FatcatCatalog(api.url, token=TOKEN, backoff=0.001) as c, pytest.raises(Exception) as e:
            import_file_meta(fm, c, journal_path=tmp_path / "journal.json", batch_size=10,
                             streams=4)
        assert "accept" in str(e.value) and "gave up after 5 attempts" in str(e.value)
        assert not (tmp_path / "counts.json").exists()
        # the streams stopped with their editgroups open, edits in them, as a kill leaves them
        assert any(g["changelog_index"] is None and g["edit_count"] for g in api.editgroups())
        api.faults.clear()
        with FatcatCatalog(api.url, token=TOKEN, backoff=0.001) as c:
            result = import_file_meta(fm, c, journal_path=tmp_path / "journal.json",
                                      batch_size=10, streams=3)
        (tmp_path / "counts.json").write_text(json.dumps(result.counters()))
        _exactly_once(api, tmp_path, want)


def test_sigkill_at_random_points_of_a_multi_stream_import(tmp_path):
    rng = random.Random(SEED)
    editgroups = -(-N // 10)
    log = []
    for trial in range(TRIALS):
        work = tmp_path / f"trial-{trial}"
        work.mkdir()
        ents, fm, want = _world(work)
        streams, rerun_streams = rng.choice((2, 4, 8)), rng.choice((1, 3, 4))
        first = rng.randint(1, 2 * editgroups - 10)
        with FatcatStandin(TOKEN, ents, delay=0.001) as api:
            what = [_killed(api, fm, work, streams, first)]
            if trial % 2:  # the rerun is killed as well, further on
                what.append(_killed(api, fm, work, rerun_streams,
                                    _events(work) + rng.randint(1, editgroups // 2)))
            if what[-1].startswith("killed"):  # (a run that ended has written its counts)
                rerun = subprocess.run(_cmd(api, fm, work, rerun_streams), cwd=ROOT, env=_env(),
                                       capture_output=True, text=True, timeout=300)
                assert rerun.returncode == 0, rerun.stderr[-3000:]
            _exactly_once(api, work, want)
        log.append(f"trial {trial}: {streams} streams, {', '.join(what)}; rerun {rerun_streams}")
    print("\n".join(log))
    assert sum(line.count("killed") for line in log) >= TRIALS, log


def _stream_owners(work: Path) -> dict[int, int]:
    """{stream: pid of its process} as the journal's events name them."""
    return {e["stream"]: e["owner"]["pid"] for e in ImportJournal(work / "journal.json").events()
            if "stream" in e}


def test_sigkill_of_one_stream_process_fails_the_run_and_the_rerun_settles_it(tmp_path):
    """A stream process killed alone (the OOM killer, an operator's kill -9 of a pid): the run
    notices, stops the other streams and fails naming the stream; the rerun settles every
    stream's editgroups, each entity edited exactly once."""
    rng = random.Random(SEED + 1)
    editgroups = -(-N // 10)
    log = []
    for trial in range(3):
        work = tmp_path / f"trial-{trial}"
        work.mkdir()
        ents, fm, want = _world(work)
        after = rng.randint(4, editgroups)
        with FatcatStandin(TOKEN, ents, delay=0.001) as api:
            proc = _started(api, fm, work, 4, after, stderr=subprocess.PIPE)
            last = ImportJournal(work / "journal.json").events()[-1]
            victim = _stream_owners(work)[last["stream"]]  # the stream that wrote last: at work
            os.kill(victim, signal.SIGKILL)
            try:
                _, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(f"trial {trial}: the run did not end after stream "
                                     f"{last['stream']} was killed") from None
            _wait_group_gone(proc.pid, "the import")
            if proc.returncode == 0:  # the victim had already reported: nothing to settle
                log.append(f"trial {trial}: stream {last['stream']} had finished")
            else:
                assert f"import stream {last['stream']} (pid {victim}) ended without finishing " \
                       "(killed by signal 9)" in err, err[-2000:]
                assert not (work / "counts.json").exists()
                rerun = subprocess.run(_cmd(api, fm, work, rng.choice((1, 3, 4))), cwd=ROOT,
                                       env=_env(), capture_output=True, text=True, timeout=300)
                assert rerun.returncode == 0, rerun.stderr[-3000:]
                log.append(f"trial {trial}: stream {last['stream']} killed at {after} events")
            _exactly_once(api, work, want)
    print("\n".join(log))
    assert sum("killed" in line for line in log) >= 2, log
