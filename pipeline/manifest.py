"""The run manifest: a work directory remembers the settings its run was made with.

Why: the sidecars record each step's settings, but nothing said which settings the
*run* had. Rerunning a finished GROBID + Kafka run without its flags silently took
luigi.cfg's defaults (GROBID off, file sinks) and remade every shard over the
results; a changed `--backfill-shards` remade everything and left the old shard
files beside the new ones, and `status` judged a run made with flags by luigi.cfg.

`run.manifest.json` in the work directory holds the run's significant settings
(every `significant` setting of `pipeline.config`, and `[backfill] shards`; never
the token, never the work directory itself), path settings made absolute. The
first run started from the luigi command line on a work directory writes it.

Precedence, for every later invocation on that work directory:
a value set explicitly (on the command line, or in a luigi config file) wins; a
setting set nowhere takes the manifest's value, not the code's default. An
explicit value that differs from the manifest is a *change*: refused before any
step runs (`SettingsError`, exit 35), one line per setting with the old and the
new value and the steps it would redo, unless `--backfill-change-settings` is
given; then the superseded targets are moved under `superseded/<UTC time>/` in
the work directory (no step can read them) and the manifest is rewritten.

This module is plain (the file, its values, setting targets aside); applying it
to luigi's configuration and finding the steps a change redoes is
`pipeline.tasks.runsettings`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pipeline.jsonio import read_json, write_json
from pipeline.provenance import META_SUFFIX, utc_now

MANIFEST_NAME = "run.manifest.json"
SUPERSEDED_DIR = "superseded"
# settings holding paths: made absolute, so another working directory names the same files
PATH_SETTINGS = {"backfill.export", "backfill.archive", "backfill.catalog", "backfill.file_hashes",
                 "backfill.extra_results"}
# not `significant` (it changes no step's recorded settings) but it names the shard targets
ALSO_RECORDED = {"backfill.shards"}
NOT_RECORDED = {"backfill.workdir"}


def old_sidecars(workdir: str | os.PathLike, families: set[str]) -> dict[str, dict[str, Any]]:
    """Finished steps of `families` in the work directory (not those set aside): absolute
    target path -> its sidecar."""
    old = {}
    for sidecar in Path(workdir).rglob(f"*{META_SUFFIX}"):
        if SUPERSEDED_DIR in sidecar.relative_to(workdir).parts:
            continue
        try:
            meta = read_json(sidecar)
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("task") in families:
            old[os.path.abspath(str(sidecar)[: -len(META_SUFFIX)])] = meta
    return old

def manifest_path(workdir: str | os.PathLike) -> Path:
    return Path(workdir) / MANIFEST_NAME


def normalise(key: str, value: Any) -> Any:
    """A setting's value as a manifest holds it: JSON types, paths absolute (URLs and empty
    values as given)."""
    if isinstance(value, list | tuple):
        value = [normalise(key, v) for v in value]
    elif key in PATH_SETTINGS and isinstance(value, str) and value and "://" not in value:
        value = os.path.abspath(value)
    return value


def read_manifest(workdir: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest's settings, None when the work directory has none; a damaged one is a
    `SettingsError` naming it."""
    from pipeline.preflight import SettingsError

    path = manifest_path(workdir)
    if not path.exists():
        return None
    try:
        doc = read_json(path)
    except (OSError, ValueError) as e:
        raise SettingsError(f"run manifest {path} is damaged ({e}); restore it or remove it "
                            "(the next run then records today's settings)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), dict):
        raise SettingsError(f"run manifest {path} holds no settings object; restore it or remove it")
    return doc["settings"]


def write_manifest(workdir: str | os.PathLike, settings: dict[str, Any]) -> None:
    """Only the settings, no time: a run's manifest is the same file however often, and from
    whichever attempt, the run was started (a killed run rerun equals a clean one)."""
    path = manifest_path(workdir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"settings": settings})


def plain(value: Any) -> Any:
    """`value` in JSON types (luigi's tuples as lists), for comparing with a manifest's."""
    return [plain(v) for v in value] if isinstance(value, list | tuple) else value


def label(key: str) -> str:
    family, name = key.split(".", 1)
    return f"[{family}] {name}"


def change_lines(changes: list[tuple[str, Any, Any]], redo: list[Any]) -> list[str]:
    """One line per changed setting: old and new value and the steps it would redo."""
    steps = ", ".join(step_names(redo)) or "no finished step"
    return [f"{label(k)}: {old!r} -> {new!r} (redoes {steps})" for k, old, new in changes]


def step_names(steps: list[Any]) -> list[str]:
    """`IngestShard x4, MergeFileMeta`: each family once, with its count when several."""
    counts: dict[str, int] = {}
    for t in steps:
        counts[t.task_family] = counts.get(t.task_family, 0) + 1
    return [f if n == 1 else f"{f} x{n}" for f, n in counts.items()]


def set_aside(workdir: str, sidecars: list[Path], stamp: str | None = None) -> Path | None:
    """Move each sidecar and the files it recorded as outputs (those under the work directory)
    to `superseded/<stamp>/`, keeping their relative paths; returns that directory."""
    root = Path(workdir).resolve()
    dest = root / SUPERSEDED_DIR / (stamp or utc_now().replace(":", ""))
    moved = False
    for sidecar in sidecars:
        try:
            outputs = [o.get("path") for o in read_json(sidecar).get("outputs", [])]
        except (OSError, ValueError, AttributeError):
            outputs = []
        for path in [*outputs, str(sidecar)]:
            if not path or not os.path.exists(path):
                continue
            p = Path(path).resolve()
            if root not in p.parents:
                continue  # never move a file outside the run (extra_results, the export)
            target = dest / p.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(os.fspath(p), os.fspath(target))
            moved = True
    return dest if moved else None
