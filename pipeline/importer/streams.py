"""Parallel import streams: one import run as several editgroup writers, still exactly once.

Why: through the fatcat API every call is a round trip, and one importer
waits for each in turn (the runbook's 324k records: about 46 minutes at 117
records/s). The runbook ran 8 importers at once by hand, with nothing to stop
two of them editing one entity. Here one run splits its records into
`[importer] streams` streams, each a `FileMetaImporter` with its own catalog
client (its own HTTP session and keep-alive connections), its own editgroups
and its own journal events (`stream` in each line), in a thread of its own:
the waits overlap, and the process's GIL is idle while they wait.

What keeps it exactly once:
- records are partitioned by sha1 (`stream_of`): one sha1 is always in one
  stream, so its duplicates meet that stream's pending-edit bookkeeping;
- two sha1s of one entity may still fall in two streams: the first stream to
  edit the entity claims it (`Claims`), and the other counts its record
  `skip-existing-complete`, as one stream does with its own pending edit;
- each editgroup has one writer (its stream); the run's recovery and its
  refusal to start beside another run happen once, before any stream starts,
  over the whole journal: a killed run's streams all died with their
  process, and their editgroups are settled like a single stream's;
- the counters are the streams' sum; the journal's accepted edits since the
  last finished run (every stream's) make the true totals after a resume
  (`pipeline.importer.run.add_earlier_attempts`).
A stream that fails stops the others at their next batch; their open
editgroups are left as a kill leaves them, for the rerun's recovery. The
embedded catalog runs one stream whatever the setting: its editgroups are
SQLite transactions, one writer at a time, and its lookups already batched;
only a catalog declaring `parallel_streams` (`for_stream`) runs several.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.catalog.base import Catalog
from pipeline.importer.importer import LOOKUP_BATCH, FileMetaImporter, check_counts, new_counter
from pipeline.importer.journal import ImportJournal

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
        self._lock = threading.Lock()

    def for_stream(self, stream: int):
        def claim(ident: str) -> bool:
            with self._lock:
                return self._owner.setdefault(ident, stream) == stream
        return claim


class _Stopped(Exception):
    """A sibling stream failed: this one stops at its next batch, leaving its editgroup open."""


def run_streams(records: Iterable[dict[str, Any]], catalog: Catalog, journal: ImportJournal | None,
                streams: int, **importer_kw: Any) -> tuple[Counter, list[str]]:
    """Import `records` in `streams` parallel streams; (summed counters, accepted editgroups).

    The caller has already settled the killed attempts' editgroups (`recover`)
    and checked that no other run is writing: the streams only import.
    """
    claims = Claims()
    clients = [catalog.for_stream() for _ in range(streams)]
    importers = [FileMetaImporter(client, claim=claims.for_stream(k),
                                  journal=journal.for_stream(k) if journal is not None else None,
                                  **importer_kw)
                 for k, client in enumerate(clients)]
    queues: list[queue.Queue] = [queue.Queue(maxsize=QUEUED_BATCHES) for _ in range(streams)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            while True:
                batch = _get(queues[k], stop)
                if batch is None:
                    break
                importers[k].run_batch(batch)
            importers[k].finish()
        except _Stopped:
            log.warning("import stream %d stopped: another stream failed", k)
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            errors.append(e)
            stop.set()

    threads = [threading.Thread(target=work, args=(k,), name=f"import-stream-{k}", daemon=True)
               for k in range(streams)]
    for t in threads:
        t.start()
    try:
        _dispatch(records, queues, stop)
    except _Stopped:
        pass  # a stream failed: its error is raised below
    except BaseException:
        stop.set()
        raise
    finally:
        for t in threads:
            t.join()
        for client in clients:
            client.close()
    if errors:
        raise errors[0]
    counts = new_counter()
    for imp in importers:
        counts.update(imp.counts)
    check_counts(counts)
    editgroups = [eg for imp in importers for eg in imp.editgroups]
    log.info("import in %d streams: %s", streams,
             ", ".join(f"stream {k}: {imp.counts['total']} records, {len(imp.editgroups)} editgroups"
                       for k, imp in enumerate(importers)))
    return counts, editgroups


def _dispatch(records: Iterable[dict[str, Any]], queues: list[queue.Queue],
              stop: threading.Event) -> None:
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


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            q.put(item, timeout=POLL_SECONDS)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event) -> Any:
    while True:
        if stop.is_set():
            raise _Stopped()
        try:
            return q.get(timeout=POLL_SECONDS)
        except queue.Empty:
            continue
