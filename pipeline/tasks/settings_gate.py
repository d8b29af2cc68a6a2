"""The gate every Luigi run passes: settings checked (and held to the run's manifest) once,
this host's leftovers swept once.

Why apart from the base task: the settings check must run before luigi asks
any step anything (the first `complete()`), whichever step the run was
started with, and the sweep only in a process about to write; both are done
once per process, and wrappers that publish nothing need them too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pipeline import config, manifest
from pipeline.logfilter import install_error_filter
from pipeline.provenance import meta_path
from pipeline.runlock import sweep_temp_files
from pipeline.schedcheck import check_scheduler
from pipeline.tasks import runsettings
from pipeline.tasks.run_identity import run_key

log = logging.getLogger("luigi-interface")

_checked_settings: dict[str, str] = {}  # settings fingerprint -> the work directory
_swept: set[str] = set()
_recorded: set[str] = set()
_checking: list[bool] = []


def check_settings_once() -> str:
    """Check every setting once per process and configuration (see `pipeline.preflight`);
    raises `SettingsError` naming each bad one, and each setting that differs from the run's
    manifest (unless `[backfill] change_settings`). Returns the work directory.

    Called by `complete()` as well as `deps()`: luigi asks the first task whether it is
    complete before anything else, and that must not be where a bad value surfaces.
    """
    from pipeline.preflight import SettingsError, check_settings, raise_problems

    key = config.settings_fingerprint()
    if key not in _checked_settings:
        if _checking:  # the run's graph, built below to name the steps a change redoes
            return config.backfill().workdir
        raise_problems(config.unreadable_settings())
        changes = runsettings.apply_manifest(run_key())
        sections = (config.backfill(), config.ingest(), config.importer(), config.grobid())
        check_settings(*sections)
        if changes and not sections[0].change_settings:
            lines = manifest.change_lines(changes, _graph_redo()[0])
            for line in lines:  # one line per setting, whatever the log shows of the error
                log.error("setting changed: %s", line)
            raise SettingsError(
                f"the run in {run_key()} was made with other settings (its "
                f"{manifest.MANIFEST_NAME}); give --backfill-change-settings to change them, "
                f"or leave these options out to keep the run's: {'; '.join(lines)}")
        _checked_settings[key] = _checked_settings[config.settings_fingerprint()] = sections[0].workdir
    return _checked_settings[key]


def _graph_redo() -> tuple[list, list]:
    """The steps today's settings would make again, and the finished steps outside today's
    graph (see `runsettings.redo_steps`). The run's graph is that of its top wrapper, looked
    up by name in luigi's registry: the gate sits below the task layer and imports none of it."""
    from luigi.task_register import Register

    _checking.append(True)
    try:
        return runsettings.redo_steps(Register.get_task_cls("Backfill")(), run_key())
    finally:
        _checking.pop()


def record_run() -> None:
    """Write the run's manifest when the luigi command line starts the first step on a work
    directory (a run refused before any step, a failed precondition, leaves nothing)."""
    from luigi.cmdline_parser import CmdlineParser

    workdir = run_key()
    if CmdlineParser.get_instance() is not None and not manifest.manifest_path(workdir).exists():
        manifest.write_manifest(workdir, runsettings.current_settings())


def record_change() -> None:
    """After a change the operator accepted (`--backfill-change-settings`): set the superseded
    targets aside, then rewrite the manifest with today's settings."""
    workdir = run_key()
    recorded = manifest.read_manifest(workdir)
    settings = runsettings.current_settings()
    if recorded is None:
        return
    if all(recorded.get(k, v) == v for k, v in settings.items()):
        if recorded != settings:  # a setting newer than the manifest: recorded as it is now
            manifest.write_manifest(workdir, {**recorded, **settings})
        return
    redo, orphans = _graph_redo()
    sidecars = [meta_path(t.output().path) for t in redo if meta_path(t.output().path).exists()]
    moved = manifest.set_aside(workdir, [*sidecars, *orphans])
    if moved is not None:
        log.warning("settings changed: the superseded targets of %s are now under %s",
                    ", ".join(manifest.step_names(redo)) or "earlier steps", moved)
    manifest.write_manifest(workdir, settings)


def preflight() -> None:
    """The settings check (run when luigi asks for a step's dependencies), then, once per
    work directory, a change of the run's settings the operator accepted (`record_change`)."""
    workdir = check_settings_once()
    if workdir not in _recorded:
        record_change()
        _recorded.add(workdir)


def sweep_once(workdir: str | os.PathLike) -> None:
    """Remove, once per process and work directory, what this host's killed processes left
    (never a final path, never another host's: `pipeline.runlock.sweep_temp_files`).

    Why here and not while luigi builds the graph: a process that only schedules or
    reports (another host joining the run, `status`) must not remove anything; a process
    that is about to make a target does, before it starts writing its own temporaries.
    """
    key = os.path.abspath(workdir)
    if key not in _swept:
        sweep_temp_files(key, recursive=True)
        _swept.add(key)


class PreflightMixin:
    """Steps (and wrappers) check the settings when the scheduler asks for their dependencies:
    before anything runs, whichever step the run was started with."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        install_error_filter()
        check_scheduler()  # the luigi command line's luigid, before anything is scheduled

    def deps(self):
        preflight()
        return super().deps()

    def complete(self) -> bool:
        check_settings_once()
        return super().complete()
