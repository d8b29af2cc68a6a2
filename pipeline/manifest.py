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
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import luigi

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

# options this module set in luigi's configuration: (section, key) -> (our raw value, the
# raw value it replaced or None); undone before another work directory's manifest is applied
_applied: dict[tuple[str, str], tuple[str, str | None]] = {}


def manifest_path(workdir: str | os.PathLike) -> Path:
    return Path(workdir) / MANIFEST_NAME


def recorded_params() -> list[tuple[str, str, luigi.Parameter]]:
    """(section, key, parameter) of every setting a manifest records."""
    from pipeline.config import SECTIONS

    found = []
    for section in SECTIONS:
        family = section.get_task_family()
        for name, param in section.get_params():
            key = f"{family}.{name}"
            if key not in NOT_RECORDED and (param.significant or key in ALSO_RECORDED):
                found.append((family, name, param))
    return found


def normalise(key: str, value: Any) -> Any:
    """A setting's value as a manifest holds it: JSON types, paths absolute (URLs and empty
    values as given)."""
    if isinstance(value, list | tuple):
        value = [normalise(key, v) for v in value]
    elif key in PATH_SETTINGS and isinstance(value, str) and value and "://" not in value:
        value = os.path.abspath(value)
    return value


def _given_on_command_line(family: str, name: str, param: luigi.Parameter) -> str | None:
    from luigi.cmdline_parser import CmdlineParser

    parser = CmdlineParser.get_instance()
    if parser is None:
        return None
    return getattr(parser.known_args, param._parser_global_dest(name, family), None)


def _explicit(family: str, name: str, param: luigi.Parameter) -> bool:
    """Set on the command line or in a config file (an option this module set does not count)."""
    if _given_on_command_line(family, name, param) is not None:
        return True
    cfg = luigi.configuration.get_config()
    ours = _applied.get((family, name))
    if ours is not None and cfg.get(family, name, None) == ours[0]:
        return ours[1] is not None
    return cfg.has_option(family, name)


def current_settings() -> dict[str, Any]:
    """Today's value of every recorded setting (as the sections read it), normalised."""
    return {f"{f}.{n}": normalise(f"{f}.{n}", p.task_value(f, n)) for f, n, p in recorded_params()}


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
    path = manifest_path(workdir)
    doc = {"written": utc_now(), "settings": settings}
    if path.exists():
        try:
            doc["created"] = read_json(path).get("created")
        except (OSError, ValueError, AttributeError):
            pass
    doc.setdefault("created", doc["written"])
    doc["created"] = doc["created"] or doc["written"]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, doc)


def _set_option(family: str, name: str, param: luigi.Parameter, value: Any) -> None:
    """Make `value` the setting's value in this process (command line value or config option)."""
    raw = param.serialize(tuple(value) if isinstance(value, list) else value)
    parser_value = _given_on_command_line(family, name, param)
    if parser_value is not None:
        from luigi.cmdline_parser import CmdlineParser

        setattr(CmdlineParser.get_instance().known_args, param._parser_global_dest(name, family), raw)
        return
    cfg = luigi.configuration.get_config()
    if (family, name) not in _applied:
        _applied[(family, name)] = (raw, cfg.get(family, name, None))
    else:
        _applied[(family, name)] = (raw, _applied[(family, name)][1])
    cfg.set(family, name, raw)


def forget_applied() -> None:
    """Put back every config option a manifest set (before another work directory's run, and
    after each test)."""
    cfg = luigi.configuration.get_config()
    for (family, name), (ours, before) in list(_applied.items()):
        if cfg.get(family, name, None) == ours:
            if before is None:
                cfg.remove_option(family, name)
            else:
                cfg.set(family, name, before)
    _applied.clear()
    _applied_for.clear()


_applied_for: list[str] = []  # the work directory whose manifest is applied now


def apply_manifest(workdir: str) -> list[tuple[str, Any, Any]]:
    """Take the manifest's values for every setting not set explicitly, and path settings
    absolute; returns the changes: (key, manifest value, explicit value) of every explicit
    setting that differs from the manifest (empty without a manifest)."""
    if _applied_for != [workdir]:
        forget_applied()
        _applied_for[:] = [workdir]
    recorded = read_manifest(workdir)
    changes = []
    for family, name, param in recorded_params():
        key = f"{family}.{name}"
        explicit = _explicit(family, name, param)
        current = param.task_value(family, name)
        wanted = normalise(key, current)
        if recorded is not None and key in recorded:
            if explicit and wanted != recorded[key]:
                changes.append((key, recorded[key], wanted))
            elif not explicit:
                wanted = recorded[key]
        if wanted != _plain(current):
            _set_option(family, name, param, wanted)
    return changes


def _plain(value: Any) -> Any:
    """`value` in JSON types (luigi's tuples as lists), for comparing with a manifest's."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) else value


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


def redo_steps(root: luigi.Task, workdir: str) -> tuple[list[Any], list[Path]]:
    """The steps under `root` that today's settings would make again (their recorded settings
    differ, or they have no sidecar while the work directory holds a finished step of their
    family outside today's graph, e.g. another shard count), with every finished step after
    them; and the sidecars of the finished steps outside today's graph."""
    from pipeline.base import BackfillTask, _jsonable
    from pipeline.provenance import meta_path

    tasks: list[luigi.Task] = []
    seen: set[str] = set()

    def visit(task: luigi.Task) -> None:  # dependencies first, wrappers included
        if task.task_id not in seen:
            seen.add(task.task_id)
            for dep in luigi.task.flatten(task.requires()):
                visit(dep)
            tasks.append(task)

    visit(root)
    steps = [t for t in tasks if isinstance(t, BackfillTask)]
    in_graph = {os.path.abspath(t.output().path) for t in steps}
    families = {t.task_family for t in steps}
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
    orphans = [meta_path(p) for p in old if p not in in_graph]
    orphan_families = {old[p]["task"] for p in old if p not in in_graph}
    redo: list[Any] = []
    redo_ids: set[str] = set()
    for task in tasks:
        after = any(d.task_id in redo_ids for d in luigi.task.flatten(task.requires()))
        if not isinstance(task, BackfillTask):
            if after:
                redo_ids.add(task.task_id)
            continue
        meta = old.get(os.path.abspath(task.output().path))
        gone = meta is None and task.task_family in orphan_families
        direct = gone or (meta is not None and meta.get("settings") != _jsonable(task.settings()))
        if direct or (after and meta is not None):
            redo.append(task)
            redo_ids.add(task.task_id)
    return redo, orphans


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
