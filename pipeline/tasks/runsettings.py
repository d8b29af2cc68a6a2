"""The run manifest (`pipeline.manifest`) applied to this process's luigi settings.

Why apart from `pipeline.manifest`: deciding which value a setting takes (the
command line, a config file, the manifest) and which steps a change redoes
needs luigi's parser, configuration and task graph; the manifest file itself
is plain.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import luigi

from pipeline.manifest import (
    ALSO_RECORDED,
    NOT_RECORDED,
    manifest_path,
    normalise,
    old_sidecars,
    plain,
    read_manifest,
)
from pipeline.tasks.graph import walk_tasks

# options this module set in luigi's configuration: (section, key) -> (our raw value, the
# raw value it replaced or None); undone before another work directory's manifest is applied
_applied: dict[tuple[str, str], tuple[str, str | None]] = {}
_applied_for: list[str] = []  # the work directory whose manifest is applied now


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


def _set_option(family: str, name: str, param: luigi.Parameter, value: Any) -> None:
    """Make `value` the setting's value in this process (command line value or config option)."""
    raw = param.serialize(tuple(value) if isinstance(value, list) else value)
    if _given_on_command_line(family, name, param) is not None:
        from luigi.cmdline_parser import CmdlineParser

        setattr(CmdlineParser.get_instance().known_args, param._parser_global_dest(name, family), raw)
        return
    cfg = luigi.configuration.get_config()
    ours = _applied.get((family, name))
    _applied[(family, name)] = (raw, ours[1] if ours else cfg.get(family, name, None))
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
        wanted, explicit, current = _effective(recorded, family, name, param)
        if explicit and recorded is not None and key in recorded and wanted != recorded[key]:
            changes.append((key, recorded[key], wanted))
        if wanted != plain(current):
            _set_option(family, name, param, wanted)
    return changes


def _effective(recorded: dict[str, Any] | None, family: str, name: str,
               param: luigi.Parameter) -> tuple[Any, bool, Any]:
    """(the setting's value in this run, whether it was set explicitly, its raw value today):
    the manifest's value unless the setting was given explicitly (command line, config
    file), else today's, normalised. The one rule both the applied settings and the task
    ids' digest follow, so the two cannot drift apart."""
    key = f"{family}.{name}"
    explicit = _explicit(family, name, param)
    current = param.task_value(family, name)
    if recorded is not None and key in recorded and not explicit:
        return recorded[key], explicit, current
    return normalise(key, current), explicit, current


_generations: dict[tuple[Any, ...], str] = {}  # (workdir, manifest stat, settings) -> digest


def settings_generation(workdir: str) -> str:
    """A short digest of the settings this process's run has: the manifest's values, with
    the explicit ones (command line, config files) over them; "" when they cannot be read.

    Why: luigid ignores a worker saying a task is pending for `stable_done_cooldown_secs`
    (10 s) after it saw the task done. A run with changed settings sets the old targets
    aside right after the last run finished, so its steps must not be the tasks luigid just
    saw done: the digest goes into every task's id (`InRun`). Reruns with the same settings,
    from any host, with the options given or left to the manifest, get the same ids.
    """
    from pipeline import config

    try:
        stat = manifest_path(workdir).stat()
        stamp: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        stamp = None
    key = (workdir, stamp, config.settings_fingerprint())
    if key not in _generations:
        try:
            recorded = read_manifest(workdir) or {}
            effective = {f"{family}.{name}": _effective(recorded, family, name, param)[0]
                         for family, name, param in recorded_params()}
            blob = json.dumps(effective, sort_keys=True, default=str).encode()
            _generations[key] = hashlib.sha256(blob).hexdigest()[:12]
        except Exception:  # noqa: BLE001 -- a bad setting is the settings check's to name
            _generations[key] = ""
    return _generations[key]


def redo_steps(root: luigi.Task, workdir: str) -> tuple[list[Any], list[Path]]:
    """The steps under `root` that today's settings would make again (their recorded settings
    differ, or they have no sidecar while the work directory holds a finished step of their
    family outside today's graph, e.g. another shard count), with every finished step after
    them; and the sidecars of the finished steps outside today's graph."""
    from pipeline.provenance import jsonable, meta_path

    def is_step(task: luigi.Task) -> bool:  # a step publishes a target made with settings
        return callable(getattr(task, "settings", None))

    tasks = list(walk_tasks(root))  # dependencies first, wrappers included
    steps = [t for t in tasks if is_step(t)]
    in_graph = {os.path.abspath(t.output().path) for t in steps}
    old = old_sidecars(workdir, {t.task_family for t in steps})
    orphans = [meta_path(p) for p in old if p not in in_graph]
    orphan_families = {old[p]["task"] for p in old if p not in in_graph}
    redo: list[Any] = []
    redo_ids: set[str] = set()
    for task in tasks:
        after = any(d.task_id in redo_ids for d in luigi.task.flatten(task.requires()))
        if not is_step(task):
            if after:
                redo_ids.add(task.task_id)
            continue
        meta = old.get(os.path.abspath(task.output().path))
        gone = meta is None and task.task_family in orphan_families
        direct = gone or (meta is not None and meta.get("settings") != jsonable(task.settings()))
        if direct or (after and meta is not None):
            redo.append(task)
            redo_ids.add(task.task_id)
    return redo, orphans
