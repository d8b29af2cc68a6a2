"""Which run a task belongs to, and what the scheduler is told of it.

Why apart from the base task: luigid tells tasks apart by family and
parameters only, so every task of the pipeline (steps, wrappers and service
checks alike) carries its run, the absolute work directory, in its id; and
every one of them reports progress to the scheduler the same way.
"""

from __future__ import annotations

import os
from typing import Any

import luigi
from luigi.task import task_id_str

from pipeline import config


def run_key() -> str:
    """The run a task belongs to: the absolute path of `[backfill] workdir`.

    Why: luigid tells tasks apart by family and parameters only. Without the
    run in the parameters, `Backfill()` started in /srv/a and in /srv/b is
    one task to a shared scheduler, and the second run is skipped as done or
    running. The work directory is what a run is (every target lives there),
    it is derived from the `--backfill-workdir` option every run already
    gives, and a rerun of the same run gets the same task ids.
    """
    # only the workdir: an unreadable other setting is the settings check's to report, with its
    # name, not an error of building the task (a traceback and luigi's exit code 40)
    return os.path.abspath(config.backfill.workdir.task_value("backfill", "workdir"))


def tell_scheduler(task: luigi.Task, message: str, percent: float | None = None) -> None:
    """Status message and percentage to the scheduler, seen in the visualiser and its API
    (a no-op outside a luigi worker, where the task has no callbacks)."""
    if callable(getattr(task, "set_status_message", None)):
        task.set_status_message(message)
    if percent is not None and callable(getattr(task, "set_progress_percentage", None)):
        task.set_progress_percentage(int(percent))


class RunParameter(luigi.Parameter):
    """`run_dir`: empty (the default) means the run of today's configuration (`run_key()`)."""

    def normalize(self, x: Any) -> str:
        return x or run_key()


class InRun:
    """Every task of the pipeline carries its run in its id (see `run_key`), and the run's
    settings (`runsettings.settings_generation`).

    Never passed by hand: each task derives both from the configuration when it is
    built, so every task of one process's graph names the same run. The settings digest is
    in the id only, not a parameter: task names, logs and rerun commands stay as they were.
    """

    run_dir = RunParameter(default="", positional=False,
                           description="the run (absolute work directory); derived, do not set")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from pipeline.tasks.runsettings import settings_generation

        generation = settings_generation(self.run_dir)
        if generation:
            params = self.to_str_params(only_significant=True, only_public=True)
            self.task_id = task_id_str(self.get_task_family(), {**params, "settings": generation})

    def __hash__(self) -> int:  # luigi hashes the id it computed before the one above
        return hash(self.task_id)
