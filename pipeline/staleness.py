"""Why a step is not complete: the reasons `status` prints under a stale step.

Why: `status` used to say `stale` and nothing more; the operator had to read
the sidecar to learn whether a setting, an input or the target itself had
changed. These are the same tests `BackfillTask.complete()` makes, each
turned into a sentence (the recorded and today's value of a setting; the
input or output that is not the file recorded).
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.jsonio import read_json
from pipeline.provenance import changed_outputs, meta_path, seal_problem, unchanged


def why_stale(task: Any, settings: Any, incomplete_upstream: list[str]) -> list[str]:
    """Every reason `task` (a finished-looking `BackfillTask`, whose settings are `settings`
    as its sidecar would record them) is not complete; `incomplete_upstream` names the steps
    it reads from that are not complete. Empty when none of these tests fails (e.g. the
    catalog it imported into is gone)."""
    sidecar = meta_path(task.output().path)
    if not sidecar.exists():
        return [f"no sidecar {sidecar}: the step did not finish"]
    try:
        meta = read_json(sidecar)
    except (OSError, ValueError) as e:
        return [f"sidecar {sidecar} is unreadable ({e})"]
    problem = seal_problem(meta)
    if problem:
        return [f"sidecar {sidecar} {problem}"]
    reasons = []
    recorded, current = meta.get("settings") or {}, settings
    for key in sorted(set(recorded) | set(current)):
        if recorded.get(key) != current.get(key):
            reasons.append(f"setting {key} was {recorded.get(key)!r}, is now {current.get(key)!r}")
    for path in changed_outputs(meta, task.output_files()):
        reasons.append(f"{path} is not the file its sidecar recorded" if os.path.exists(path)
                       else f"{path} is missing")
    inputs = {i["path"]: i for i in meta.get("inputs", []) if isinstance(i, dict)}
    for path in task.input_files():
        if not os.path.exists(path):
            reasons.append(f"input {path} is missing")
        elif path not in inputs:
            reasons.append(f"input {path} was not read by the step's last run")
        elif not unchanged(inputs[path], path):
            reasons.append(f"input {path} changed since the step read it")
    if not reasons:
        reasons += [f"upstream step {name} is not complete" for name in incomplete_upstream]
    return reasons
