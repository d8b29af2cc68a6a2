"""Parallel import streams: one import run as several editgroup writers, still exactly once.

Why: through the fatcat API every call is a round trip, and one importer
waits for each in turn (the runbook's 324k records: about 46 minutes at 117
records/s). The runbook ran 8 importers at once by hand, with nothing to stop
two of them editing one entity. Here one run splits its records into
`[importer] streams` streams, each a `FileMetaImporter` in a process of its
own (forked once the run's recovery is done) with its own catalog client (its
own HTTP session and keep-alive connections), its own editgroups and its own
journal events (`stream` and the stream's process in each line). Processes,
not threads: a call costs the client about half a millisecond of CPU
(`requests`), so 8 streams in one process were bound by its one GIL well
below what the API allowed; each stream's process has its own.

What keeps it exactly once:
- records are partitioned by sha1 (`stream_of`): one sha1 is always in one
  stream, so its duplicates meet that stream's pending-edit bookkeeping; the
  parent reads the input once and hands each stream its batches;
- two sha1s of one entity may still fall in two streams: the first stream to
  edit the entity claims it (`Claims`, kept by the parent, asked over each
  stream's pipe), and the other counts its record `skip-existing-complete`,
  as one stream does with its own pending edit;
- each editgroup has one writer (its stream); the run's recovery and its
  refusal to start beside another run happen once, in the parent, before any
  stream starts, over the whole journal; the streams' journal appends are
  serialised across processes (`ImportJournal.for_stream`);
- a stream process dies with its parent (`die_with_parent`: a kill -9 of the
  run kills every stream at once, like threads) and holds the parent's run
  locks while it lives (inherited), so a rerun can never start beside one;
  the parent watches its streams: one that fails, or dies without reporting
  (a kill -9 of a stream alone), stops the others at their next batch and
  fails the run, their open editgroups left as a kill leaves them, for the
  rerun's recovery;
- the counters are the streams' sum; the journal's accepted edits since the
  last finished run (every stream's) make the true totals after a resume
  (`pipeline.importer.run.add_earlier_attempts`).
The embedded catalog runs one stream whatever the setting: its editgroups are
SQLite transactions, one writer at a time, and its lookups already batched;
only a catalog declaring `parallel_streams` (`for_stream`) runs several.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import threading
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.catalog.base import Catalog
from pipeline.checks import StepFailed
from pipeline.importer.counters import check_counts, new_counter
from pipeline.importer.importer import LOOKUP_BATCH, FileMetaImporter
from pipeline.importer.journal import ImportJournal
from pipeline.runlock import die_with_parent

log = logging.getLogger(__name__)

# batches a stream may have waiting: bounds memory, and the reader runs at most this far ahead
QUEUED_BATCHES = 4
POLL_SECONDS = 0.1


def stream_of(row: dict[str, Any], streams: int) -> int:
    """The stream of a record: a function of its sha1 alone (case folded), the same in every
    run and on every host, so a sha1's duplicates always meet in one stream."""
    sha1 = row.get("sha1hex")
    key = sha1.lower() if isinstance(sha1, str) else repr(sha1)
    return zlib.crc32(key.encode("utf-8")) % streams


class Claims:
    """Which stream edits which entity in this run: the first to ask gets it, for good."""

    def __init__(self) -> None:
        self._owner: dict[str, int] = {}

    def claim(self, ident: str, stream: int) -> bool:
        return self._owner.setdefault(ident, stream) == stream


class _Stopped(Exception):
    """A sibling stream failed: this one stops at its next batch, leaving its editgroup open."""


@dataclass
class _Stream:
    """The parent's side of one stream process: its batches, its pipe, how it ended."""

    k: int
    process: Any
    batches: Any  # multiprocessing queue of record batches, None at the end
    conn: Any  # claims asked and answered, then the stream's outcome
    outcome: tuple | None = None
    errors: list[BaseException] = field(default_factory=list)


def run_streams(records: Iterable[dict[str, Any]], catalog: Catalog, journal: ImportJournal | None,
                streams: int, **importer_kw: Any) -> tuple[Counter, list[str]]:
    """Import `records` in `streams` parallel stream processes; (summed counters, accepted
    editgroups).

    The caller has already settled the killed attempts' editgroups (`recover`)
    and checked that no other run is writing: the streams only import.
    """
    ctx = multiprocessing.get_context("fork")  # the catalog client and its subclass as they are
    stop = ctx.Event()
    parent = os.getpid()
    handles: list[_Stream] = []
    try:
        for k in range(streams):
            batches = ctx.Queue(maxsize=QUEUED_BATCHES)
            mine, theirs = ctx.Pipe()
            process = ctx.Process(target=_stream_main, name=f"import-stream-{k}", daemon=True,
                                  args=(k, catalog, journal, batches, theirs, stop, parent,
                                        importer_kw))
            process.start()
            theirs.close()  # the stream's end: its pipe reads EOF in here once it is gone
            handles.append(_Stream(k, process, batches, mine))
        service = threading.Thread(target=_serve, args=(handles, Claims(), stop),
                                   name="import-streams", daemon=True)
        service.start()
        try:
            _dispatch(records, [h.batches for h in handles], stop)
        except _Stopped:
            pass  # a stream failed: its error is raised below
        except BaseException:
            stop.set()
            raise
        finally:
            service.join()
    finally:
        stop.set()  # streams still starting (an error above) stop at their first batch
        for h in handles:
            if h.outcome is None or h.outcome[0] != "done":
                h.batches.cancel_join_thread()  # batches no stream will read are dropped
            h.process.join()
            h.conn.close()
    errors = [e for h in handles for e in h.errors]
    if errors:
        raise errors[0]
    counts = new_counter()
    for h in handles:
        counts.update(h.outcome[1])
    check_counts(counts)
    editgroups = [eg for h in handles for eg in h.outcome[2]]
    log.info("import in %d streams: %s", streams,
             ", ".join(f"stream {h.k}: {h.outcome[1]['total']} records, "
                       f"{len(h.outcome[2])} editgroups" for h in handles))
    return counts, editgroups


def _serve(handles: list[_Stream], claims: Claims, stop: Any) -> None:
    """The parent's side of the pipes, until every stream has ended: claims answered, outcomes
    kept; a stream that failed or died without a word stops the others."""
    live = {h.conn: h for h in handles}
    while live:
        for conn in multiprocessing.connection.wait(list(live)):
            h = live[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                del live[conn]
                if h.outcome is None:  # killed, or ended by a bug before it could say so
                    h.process.join()
                    h.errors.append(StepFailed(
                        f"import stream {h.k} (pid {h.process.pid}) ended without finishing "
                        f"({_exit_status(h.process.exitcode)}): the other streams stopped; rerun "
                        "the import, which settles every stream's open editgroups"))
                    stop.set()
                continue
            if message[0] == "claim":
                conn.send(claims.claim(message[1], h.k))
                continue
            h.outcome = message
            if message[0] == "failed":
                h.errors.append(message[1])
                stop.set()


def _exit_status(code: int | None) -> str:
    return f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"


def _stream_main(k: int, catalog: Catalog, journal: ImportJournal | None, batches: Any, conn: Any,
                 stop: Any, parent: int, importer_kw: dict[str, Any]) -> None:
    """One stream, in its own process: import the batches it is handed, report how it ended."""
    die_with_parent(parent)
    client = catalog.for_stream()

    def claim(ident: str) -> bool:
        conn.send(("claim", ident))
        return conn.recv()

    importer = FileMetaImporter(client, claim=claim,
                                journal=journal.for_stream(k) if journal is not None else None,
                                **importer_kw)
    try:
        while (batch := _get(batches, stop, parent)) is not None:
            importer.run_batch(batch)
        importer.finish()
        conn.send(("done", dict(importer.counts), importer.editgroups))
    except _Stopped:
        log.warning("import stream %d stopped: another stream failed", k)
        conn.send(("stopped",))
    except BaseException as e:  # noqa: BLE001 - handed to the parent, which raises it
        log.debug("import stream %d failed", k, exc_info=True)
        conn.send(("failed", _portable(e)))
    finally:
        client.close()


def _portable(e: BaseException) -> BaseException:
    """`e` as the parent can receive it: itself when it survives pickling, else its text."""
    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001 - an exception whose arguments do not round-trip
        return StepFailed(f"{type(e).__name__}: {e}")


def _dispatch(records: Iterable[dict[str, Any]], queues: list[Any], stop: Any) -> None:
    """Read the records once, in order, handing each stream its share a batch at a time."""
    n = len(queues)
    pending: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for row in records:
        k = stream_of(row, n)
        pending[k].append(row)
        if len(pending[k]) >= LOOKUP_BATCH:
            _put(queues[k], pending[k], stop)
            pending[k] = []
    for k in range(n):
        if pending[k]:
            _put(queues[k], pending[k], stop)
        _put(queues[k], None, stop)


def _put(q: Any, item: Any, stop: Any) -> None:
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            q.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue


def _get(q: Any, stop: Any, parent: int) -> Any:
    while True:
        # a parent gone (where its death does not kill its streams): stop, as on a failure
        if stop.is_set() or os.getppid() != parent:
            raise _Stopped()
        try:
            return q.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
