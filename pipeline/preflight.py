"""Settings checked before any step runs, and the errors an operator sees without a traceback.

Why: a bad value used to surface late or never: `--backfill-shards 0` failed
only after the export, requests and sample ingest had run for hours,
`sample_min_success 1.5` was never range-checked (no run could pass the
gate), and an empty export made an empty run that exited 0. Every value is
checked here at once, when the scheduler first asks a step for its
dependencies, and all problems are reported together in one message.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from pipeline.archive.cdxapi import DIALECTS
from pipeline.catalog.factory import is_api_url
from pipeline.catalog.fatcat_token import TOKEN_ENV, token_problem
from pipeline.errors import OperatorError
from pipeline.ingest.settings import IngestSettings
from pipeline.jsonio import InputError, iter_lines
from pipeline.locations import unusable_url_problem

# More shards than this is a typo, not a plan: 100,000,000 shards spent minutes scheduling
# before anything ran. 4096 shards of a 200-million-entity export is ~50,000 lookups each.
MAX_SHARDS = 4096


class SettingsError(OperatorError, ValueError):
    """A configuration value is out of range or names an unusable input; nothing was run."""


def settings_problems(backfill: Any, ingest: Any, importer: Any, grobid: Any = None,
                      environ: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the `[backfill]`, `[ingest]`, `[importer]` (and `[grobid]`) values and
    of the catalog token in `environ` (default: the process environment); empty: fine."""
    problems = []
    if not str(backfill.workdir).strip():
        problems.append("[backfill] workdir is empty")
    if backfill.shards < 1:
        problems.append(f"[backfill] shards must be >= 1, got {backfill.shards}")
    if backfill.shards > MAX_SHARDS:
        problems.append(f"[backfill] shards must be <= {MAX_SHARDS}, got {backfill.shards}")
    if not (math.isfinite(backfill.progress_seconds) and backfill.progress_seconds > 0):
        problems.append(f"[backfill] progress_seconds must be > 0, got {backfill.progress_seconds}")
    if not isinstance(backfill.extra_results, list | tuple) or not all(
            isinstance(p, str) for p in backfill.extra_results):
        problems.append("[backfill] extra_results must be a JSON list of paths, got "
                        f"{backfill.extra_results!r}")
    problems += catalog_problems(backfill, environ if environ is not None else os.environ)
    for key, value in (("[backfill] archive", backfill.archive),
                       ("[ingest] warc_base", ingest.warc_base),
                       ("[ingest] archive_proxy", ingest.archive_proxy),
                       ("[grobid] host", getattr(grobid, "host", ""))):
        problem = unusable_url_problem(key, value)
        if problem:
            problems.append(problem)
    if not 0 <= backfill.sample_min_success <= 1:
        problems.append(f"[backfill] sample_min_success must be within 0..1, got "
                        f"{backfill.sample_min_success}")
    if backfill.sample_size < 0:
        problems.append(f"[backfill] sample_size must be >= 0, got {backfill.sample_size}")
    archive = backfill.archive
    if "://" not in archive and not os.path.isdir(archive):
        problems.append(f"[backfill] archive is neither a directory nor an http(s) URL: {archive!r}")
    if not 1 <= importer.batch_size <= 100:
        problems.append(f"[importer] batch_size must be within 1..100, got {importer.batch_size}")
    if ingest.concurrency < 1:
        problems.append(f"[ingest] concurrency must be >= 1, got {ingest.concurrency}")
    if ingest.cdx_dialect not in DIALECTS:
        problems.append(f"[ingest] cdx_dialect must be one of {', '.join(DIALECTS)}, got "
                        f"{ingest.cdx_dialect!r}")
    try:
        IngestSettings.from_config(ingest)
    except ValueError as exc:
        problems.append(f"[ingest] {exc}")
    problem = export_problem(backfill.export)
    if problem:
        problems.append(problem)
    return problems


def catalog_problems(backfill: Any, environ: Mapping[str, str]) -> list[str]:
    """`[backfill] catalog` is an http(s) URL or a path; the API token can be sent; an
    embedded catalog still to be made has its seed export.

    The token is checked here, before any step, so no request is ever made
    with a token `requests` would refuse (its error quotes the header). Only
    the variable's name is ever written, never its value.
    """
    problem = unusable_url_problem("[backfill] catalog", backfill.catalog)
    if problem:
        return [problem]
    if is_api_url(backfill.catalog):
        problem = token_problem(environ.get(TOKEN_ENV))
        return [f"[backfill] catalog {backfill.catalog}: {problem}"] if problem else []
    seed = backfill.catalog_seed
    if seed and not os.path.exists(seed) and not os.path.exists(backfill.catalog_path()):
        return [f"[backfill] catalog_seed {seed} does not exist (the catalog "
                f"{backfill.catalog_path()} is to be loaded from it)"]
    return []


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


def check_settings(backfill: Any, ingest: Any, importer: Any, grobid: Any = None) -> None:
    raise_problems(settings_problems(backfill, ingest, importer, grobid))


def raise_problems(problems: list[str]) -> None:
    """All problems found, in one `SettingsError` (nothing when there is none)."""
    if problems:
        raise SettingsError("configuration rejected before any step ran: " + "; ".join(problems))
