"""Settings checked before any step runs, and the errors an operator sees without a traceback.

Why: a bad value used to surface late or never: `--backfill-shards 0` failed
only after the export, requests and sample ingest had run for hours,
`sample_min_success 1.5` was never range-checked (no run could pass the
gate), and an empty export made an empty run that exited 0. Every value is
checked here at once, when the scheduler first asks a step for its
dependencies, and all problems are reported together in one message.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline.ingest.settings import IngestSettings
from pipeline.jsonio import InputError, iter_lines

CDX_DIALECTS = ("auto", "ia", "pywb")


class SettingsError(ValueError):
    """A configuration value is out of range or names an unusable input; nothing was run."""


def settings_problems(backfill: Any, ingest: Any, importer: Any) -> list[str]:
    """Every problem of the `[backfill]`, `[ingest]` and `[importer]` values (empty: fine)."""
    problems = []
    if not str(backfill.workdir).strip():
        problems.append("[backfill] workdir is empty")
    if backfill.shards < 1:
        problems.append(f"[backfill] shards must be >= 1, got {backfill.shards}")
    if not 0 <= backfill.sample_min_success <= 1:
        problems.append(f"[backfill] sample_min_success must be within 0..1, got "
                        f"{backfill.sample_min_success}")
    if backfill.sample_size < 0:
        problems.append(f"[backfill] sample_size must be >= 0, got {backfill.sample_size}")
    archive = backfill.archive
    if not archive.startswith(("http://", "https://")) and not os.path.isdir(archive):
        problems.append(f"[backfill] archive is neither a directory nor an http(s) URL: {archive!r}")
    if not 1 <= importer.batch_size <= 100:
        problems.append(f"[importer] batch_size must be within 1..100, got {importer.batch_size}")
    if ingest.concurrency < 1:
        problems.append(f"[ingest] concurrency must be >= 1, got {ingest.concurrency}")
    if ingest.cdx_dialect not in CDX_DIALECTS:
        problems.append(f"[ingest] cdx_dialect must be one of {', '.join(CDX_DIALECTS)}, got "
                        f"{ingest.cdx_dialect!r}")
    try:
        IngestSettings.from_config(ingest)
    except ValueError as exc:
        problems.append(f"[ingest] {exc}")
    problem = export_problem(backfill.export)
    if problem:
        problems.append(problem)
    return problems


def export_problem(export: str) -> str | None:
    """An export that exists but holds no line at all is an error, not an empty run.

    A missing export is left to the scheduler (missing input data, its own
    exit code). Only the first non-blank line is read.
    """
    if not os.path.exists(export):
        return None
    try:
        for _ in iter_lines(export):
            return None
    except InputError:
        return None  # damaged, not empty: the export step fails on it with file and line
    return f"[backfill] export {export} holds no entities (empty file); check the export step"


def check_settings(backfill: Any, ingest: Any, importer: Any) -> None:
    problems = settings_problems(backfill, ingest, importer)
    if problems:
        raise SettingsError("configuration rejected before any step ran: " + "; ".join(problems))
