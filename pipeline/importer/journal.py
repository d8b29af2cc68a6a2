"""The import journal: which editgroups an import opened, and which it finished.

Why: an import killed between creating an editgroup and accepting it leaves
edits that are in the catalog but not merged. The catalog can say what an
editgroup holds, but not which editgroups were ours; the journal keeps that,
one JSON line per event, flushed and (for an API catalog) fsynced before the
import goes on:

    {"event": "created",   "editgroup_id": ..., "catalog": ..., "time": ...}
    {"event": "accepted",  "editgroup_id": ..., "catalog": ..., "edits": N, ...}
    {"event": "abandoned", "editgroup_id": ..., "catalog": ..., "reason": ..., ...}
    {"event": "finished",  "catalog": ..., "counts": {...}, ...}

Every event names its `owner` (pid, host, process start time), so a recovery
leaves alone an editgroup whose creator is still running, and, in a run of
several streams, its `stream` (each stream a process of the run). `finished` closes
one import run: the edits accepted since the previous `finished` (by killed
attempts, by recovery, by the last attempt) are that run's, and its counts
target reports them all.

`created` is written right after the editgroup exists and before any edit is
put in it, so every editgroup that can hold our edits is in the journal. A
last line cut short by a kill is ignored; any other unreadable line is an
error (the journal was damaged and recovery must not guess).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from pipeline.catalog.base import CatalogError
from pipeline.provenance import utc_now
from pipeline.runlock import FileLock, is_alive, is_me, me

OPEN, ACCEPTED, ABANDONED = "created", "accepted", "abandoned"
# one import run (all its attempts, killed or not) ends with FINISHED and its true totals
FINISHED = "finished"


class JournalError(CatalogError):
    """The journal cannot be read safely."""


class ImportJournal:
    """Append-only record of editgroup events for one work directory."""

    def __init__(self, path: str | os.PathLike, *, stream: int | None = None,
                 lock: threading.Lock | FileLock | None = None):
        self.path = Path(path)
        self.owner = me()  # recorded in every event: recovery never touches a live run's work
        self.stream = stream  # the import stream writing (None: a run of one stream)
        self._lock = lock or threading.Lock()

    def for_stream(self, stream: int) -> ImportJournal:
        """The same journal as written by one stream process of a run (`pipeline.importer.streams`,
        called in that process): its events name the stream and the process, and every append
        holds an exclusive `flock` on the journal, so no process's tail check sees a sibling's
        line half written. The editgroups are this run's all the same (the journal lists them)."""
        return ImportJournal(self.path, stream=stream, lock=FileLock(self.path))

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as f:
            text = f.read()
        lines = text.split("\n")
        # every event ends with a newline: text after the last one is a line cut short by a kill
        lines = lines[:-1]
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                if not isinstance(event, dict) or "event" not in event or (
                        "editgroup_id" not in event and event["event"] != FINISHED):
                    raise ValueError("not an event object")
            except ValueError as e:
                raise JournalError(f"{self.path}: line {n} unreadable ({e}); fix or move the journal") from None
            out.append(event)
        return out

    def open_editgroups(self, catalog: str) -> list[str]:
        """Editgroups of `catalog` that were created but neither accepted nor abandoned."""
        return list(self.open_editgroup_owners(catalog))

    def open_editgroup_owners(self, catalog: str) -> dict[str, dict | None]:
        """Open editgroups of `catalog` (as `open_editgroups`) and the process that created
        each (pid, host, start; None in journals written before owners were recorded)."""
        state: dict[str, str] = {}
        owner: dict[str, dict | None] = {}
        for e in self.events():
            if e.get("catalog") == catalog and "editgroup_id" in e:
                state[e["editgroup_id"]] = e["event"]
                if e["event"] == OPEN:
                    owner[e["editgroup_id"]] = e.get("owner")
        return {eg: owner.get(eg) for eg, ev in state.items() if ev == OPEN}

    def editgroup_ids(self, catalog: str) -> set[str]:
        """Every editgroup of `catalog` this journal names: the runs of this work directory's."""
        return {e["editgroup_id"] for e in self.events()
                if e.get("catalog") == catalog and "editgroup_id" in e}

    def accepted_since_finished(self, catalog: str) -> int:
        """Edits of `catalog` accepted since the last import run that finished: the current
        run's, over all its attempts (a killed attempt's, a recovery's, this attempt's)."""
        return sum(int(e.get("edits") or 0) for e in self._accepted_in_run(catalog))

    def editgroups_since_finished(self, catalog: str) -> list[str]:
        """The editgroups of `catalog` accepted in the current run, over all its attempts, in
        order: what the run used (an attempt alone knows only its own)."""
        return [e["editgroup_id"] for e in self._accepted_in_run(catalog)]

    def _accepted_in_run(self, catalog: str) -> list[dict]:
        run: list[dict] = []
        for e in self.events():
            if e.get("catalog") != catalog:
                continue
            if e["event"] == FINISHED:
                run = []
            elif e["event"] == ACCEPTED:
                run.append(e)
        return run

    @staticmethod
    def owner_is_live_other(owner: dict | None) -> bool:
        """Whether `owner` is a live process other than this one (its editgroups are not ours)."""
        return bool(owner) and not is_me(owner) and is_alive(owner)

    def record(self, event: str, editgroup_id: str | None, catalog: str, *, sync: bool = True,
               **fields: Any) -> None:
        """Append one event; `sync=False` skips the fsync (the line still survives a killed
        process: it is in the kernel's page cache) where the catalog's own transaction is
        what makes the edits exactly once (an embedded catalog's atomic editgroups)."""
        self._append(self._line(event, editgroup_id, catalog, fields), sync)

    def record_each(self, event: str, editgroups: list[tuple[str, dict[str, Any]]], catalog: str,
                    *, sync: bool = True) -> None:
        """`record(event, editgroup_id, catalog, **fields)` for each (editgroup_id, fields), in
        order, in one append. Why: an embedded catalog's transaction holds 20 editgroups, and
        an append per line (a tail check and two opens each) was 6% of the import's time. A
        kill in the middle leaves the lines before it and at most one line cut short, which
        reading ignores, as with appends one by one."""
        if editgroups:
            self._append("".join(self._line(event, eg_id, catalog, fields)
                                 for eg_id, fields in editgroups), sync)

    def _line(self, event: str, editgroup_id: str | None, catalog: str, fields: dict[str, Any]) -> str:
        entry = {"event": event, "catalog": catalog, "owner": self.owner,
                 "time": utc_now(micro=True), **fields}
        if editgroup_id is not None:
            entry["editgroup_id"] = editgroup_id
        if self.stream is not None:
            entry["stream"] = self.stream
        return json.dumps(entry, sort_keys=True) + "\n"

    def _append(self, text: str, sync: bool) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._drop_torn_tail()
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                if sync:
                    os.fsync(f.fileno())

    def _drop_torn_tail(self) -> None:
        """Cut a last line left without its newline by a kill, so appends stay line-aligned."""
        if not self.path.exists():
            return
        with open(self.path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)
