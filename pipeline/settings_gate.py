"""The gate every Luigi run passes: settings checked once, this host's leftovers swept once.

Why apart from the base task: the settings check must run before luigi asks
any step anything (the first `complete()`), whichever step the run was
started with, and the sweep only in a process about to write; both are done
once per process, and wrappers that publish nothing need them too.
"""

from __future__ import annotations

import os
from typing import Any

from pipeline import config
from pipeline.logfilter import install_error_filter
from pipeline.runlock import sweep_temp_files
from pipeline.schedcheck import check_scheduler

_checked_settings: dict[str, str] = {}  # settings fingerprint -> the work directory
_swept: set[str] = set()


def check_settings_once() -> str:
    """Check every setting once per process and configuration (see `pipeline.preflight`);
    raises `SettingsError` naming each bad one. Returns the work directory.

    Called by `complete()` as well as `deps()`: luigi asks the first task whether it is
    complete before anything else, and that must not be where a bad value surfaces.
    """
    from pipeline.preflight import check_settings, raise_problems

    key = config.settings_fingerprint()
    if key not in _checked_settings:
        raise_problems(config.unreadable_settings())
        sections = (config.backfill(), config.ingest(), config.importer(), config.grobid())
        check_settings(*sections)
        _checked_settings[key] = sections[0].workdir
    return _checked_settings[key]


def preflight() -> None:
    """The settings check (run when luigi asks for a step's dependencies)."""
    check_settings_once()


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
