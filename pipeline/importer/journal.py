"""The import journal: which editgroups an import opened, and which it finished.

Why: an import killed between creating an editgroup and accepting it leaves
edits that are in the catalog but not merged. The catalog can say what an
editgroup holds, but not which editgroups were ours; the journal keeps that,
one JSON line per event, flushed and fsynced before the import goes on:

    {"event": "created",   "editgroup_id": ..., "catalog": ..., "time": ...}
    {"event": "accepted",  "editgroup_id": ..., "catalog": ..., "edits": N, ...}
    {"event": "abandoned", "editgroup_id": ..., "catalog": ..., "reason": ..., ...}

`created` is written right after the editgroup exists and before any edit is
put in it, so every editgroup that can hold our edits is in the journal. A
last line cut short by a kill is ignored; any other unreadable line is an
error (the journal was damaged and recovery must not guess).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pipeline.catalog.base import CatalogError
from pipeline.provenance import utc_now

OPEN, ACCEPTED, ABANDONED = "created", "accepted", "abandoned"


class JournalError(CatalogError):
    """The journal cannot be read safely."""


class ImportJournal:
    """Append-only record of editgroup events for one work directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

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
                if not isinstance(event, dict) or "event" not in event or "editgroup_id" not in event:
                    raise ValueError("not an event object")
            except ValueError as e:
                raise JournalError(f"{self.path}: line {n} unreadable ({e}); fix or move the journal") from None
            out.append(event)
        return out

    def open_editgroups(self, catalog: str) -> list[str]:
        """Editgroups of `catalog` that were created but neither accepted nor abandoned."""
        state: dict[str, str] = {}
        for e in self.events():
            if e.get("catalog") == catalog:
                state[e["editgroup_id"]] = e["event"]
        return [eg for eg, ev in state.items() if ev == OPEN]

    def record(self, event: str, editgroup_id: str, catalog: str, **fields: Any) -> None:
        entry = {"event": event, "editgroup_id": editgroup_id, "catalog": catalog,
                 "time": utc_now(micro=True), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
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
