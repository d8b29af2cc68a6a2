"""Why a step is not complete: the one place that decides it.

Why: `BackfillTask.complete()` needs a yes or no, `status` the reasons under a
stale step (the recorded and today's value of a setting; the input or output
that is not the file recorded). Both come from `stale_reasons`, so the two
can never drift: `complete()` stops at the first reason (no further file is
looked at), `why_stale` lists them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.jsonio import read_json
from pipeline.provenance import changed_outputs, meta_path, seal_problem, unchanged


class Reason(NamedTuple):
    """One reason a step is stale. `kind`: "sidecar" (missing, unreadable, not an object),
    "seal" (its checksum fails), "setting", "output" (`path`: the target or a companion not
    as recorded) or "input"."""

    kind: str
    text: str
    path: str = ""


def stale_reasons(sidecar: Path, settings: Any, outputs: list[str],
                  inputs: list[str]) -> Iterator[Reason]:
    """Every reason the step whose sidecar is `sidecar` is not complete, lazily and cheapest
    first: `settings` as its sidecar would record them (`jsonable`), `outputs` its target and
    companions, `inputs` every file it reads. Upstream steps are the caller's business."""
    if not sidecar.exists():
        yield Reason("sidecar", f"no sidecar {sidecar}: the step did not finish")
        return
    try:
        meta = read_json(sidecar)
    except (OSError, ValueError) as e:
        yield Reason("sidecar", f"sidecar {sidecar} is unreadable ({e})")
        return
    problem = seal_problem(meta)
    if problem:
        yield Reason("seal" if isinstance(meta, dict) else "sidecar", f"sidecar {sidecar} {problem}")
        return
    recorded = meta.get("settings")
    if recorded != settings:
        before, now = recorded if isinstance(recorded, dict) else {}, settings or {}
        keys = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        for key in keys:
            yield Reason("setting", f"setting {key} was {before.get(key)!r}, is now {now.get(key)!r}")
        if not keys:
            yield Reason("setting", f"settings were {recorded!r}, are now {settings!r}")
    for path in changed_outputs(meta, outputs):
        yield Reason("output", f"{path} is not the file its sidecar recorded"
                     if os.path.exists(path) else f"{path} is missing", path)
    read = {i["path"]: i for i in meta.get("inputs") or [] if isinstance(i, dict)}
    for path in inputs:
        if not os.path.exists(path):
            yield Reason("input", f"input {path} is missing")
        elif path not in read:
            yield Reason("input", f"input {path} was not read by the step's last run")
        elif not unchanged(read[path], path):
            yield Reason("input", f"input {path} changed since the step read it")


def why_stale(task: Any, settings: Any, incomplete_upstream: list[str]) -> list[str]:
    """Every reason `task` (a finished-looking `BackfillTask`, whose settings are `settings`
    as its sidecar would record them) is not complete; `incomplete_upstream` names the steps
    it reads from that are not complete. Empty when none of these tests fails (e.g. the
    catalog it imported into is gone)."""
    reasons = [r.text for r in stale_reasons(meta_path(task.output().path), settings,
                                             task.output_files(), task.input_files())]
    if not reasons:
        reasons += [f"upstream step {name} is not complete" for name in incomplete_upstream]
    return reasons
