"""The one base task: output paths from the work directory, provenance sidecars, staleness.

Why: every step publishes a file named by docs/targets.md under the work directory and
a `<target>.meta.json` sidecar saying what made it (task, settings, inputs with
sizes, counts, version). The sidecar is written last, so a target without one
was never finished. A task is complete only when its target and sidecar exist,
the settings recorded there are today's, its inputs are the same files it
read (same size and mtime, or failing that the same sha256), and every
upstream step it reads from is complete too. Deleting or remaking a middle
target therefore reruns that step and the steps downstream of it, and nothing
else; a downstream step whose inputs come back byte-identical keeps its target.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from itertools import takewhile
from pathlib import Path
from typing import Any

import luigi

from pipeline import __version__, config
from pipeline.checks import StepFailed, format_counts
from pipeline.errors import disk_full_reported
from pipeline.exitgc import skip_exit_collection
from pipeline.jsonio import write_json
from pipeline.progress import Progress
from pipeline.provenance import (
    current_digest,
    file_identity,
    jsonable,
    meta_path,
    seal_meta,
    utc_now,
)
from pipeline.runlock import RunLock
from pipeline.staleness import stale_reasons
from pipeline.tasks.graph import walk_tasks
from pipeline.tasks.run_identity import InRun, tell_scheduler
from pipeline.tasks.settings_gate import PreflightMixin, check_settings_once, record_run, sweep_once

log = logging.getLogger("luigi-interface")


class BackfillTask(PreflightMixin, InRun, luigi.Task):
    """Base of every step that publishes a file.

    Subclasses set `target_name` (relative to the work directory), implement
    `requires()`, `settings()` (the configuration values that change the
    result) and `work()`, which calls plain functions and ends with
    `self.finish(counts)`. `run()` is the base's: it re-checks completeness
    first, so a step whose inputs came back byte-identical does no work.
    """

    target_name: str = ""
    jsonl: bool = True  # the target is JSON lines (False: one JSON document)

    def on_failure(self, exception: BaseException) -> str:
        # the scheduler's error text (the visualiser's "Traceback"): its own "command to
        # re-run" lacks the run's settings, so the complete one is given here
        from pipeline.tasks.rerun import rerun_command

        return f"{super().on_failure(exception)}\nTo re-run with this run's settings: {rerun_command(self)}"

    def run(self) -> None:
        """The template every step follows: nothing to do when already complete, else `work()`.

        Luigi decides what to run before anything runs. When an upstream step is
        remade and its output has the same bytes as before (a deleted shard
        ingested again), the steps after it were scheduled but their inputs did
        not change: they keep their published targets instead of redoing the
        work (the import would otherwise query the catalog again for nothing).
        """
        sweep_once(self.workdir)
        skip_exit_collection()
        if self.complete():
            log.info("%s: inputs have the same content as before; target kept", self)
            return
        # one maker per target: a second run on this work directory making the same target
        # at the same time fails at once instead of mixing its work into ours
        with disk_full_reported(self.output().path), \
                RunLock(self.lock_path(), f"step {self.task_family} ({self.target_name})"):
            if self.complete():  # made by another run while we were scheduled
                log.info("%s: made by another run meanwhile; target kept", self)
                return
            record_run()
            self._started = (utc_now(), time.monotonic())
            self._inputs_at_start = {p: _stat(p) for p in self.input_files()}
            self.work()

    def work(self) -> None:
        """The step itself: call plain functions, then `self.finish(counts)`."""
        raise NotImplementedError(f"{self.task_family} does not say what it does (work())")

    @property
    def workdir(self) -> Path:
        """The run's work directory, absolute: the same files whatever directory a worker
        was started in (recorded inputs compare equal across workers and hosts)."""
        return Path(self.run_dir)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(os.fspath(self.workdir / self.target_name))

    def settings(self) -> dict[str, Any]:
        """Configuration values that change this step's output (recorded; a change reruns it)."""
        return {}

    def input_files(self) -> list[str]:
        """Every file this step reads: upstream targets plus external inputs."""
        return [t.path for t in luigi.task.flatten(self.input()) if hasattr(t, "path")]

    def extra_outputs(self) -> list[str]:
        """Companion files published with the target (rejects, reports)."""
        return []

    def output_files(self) -> list[str]:
        """The target and its companions, absolute: recorded in the sidecar and compared with
        it, so a run started from another directory (a relative workdir) finds the same files."""
        return [os.path.abspath(p) for p in [self.output().path, *self.extra_outputs()]]

    # -- completeness -----------------------------------------------------
    def complete(self) -> bool:
        """Target, companions and sidecar are the ones this step wrote, made with today's
        settings from the same inputs, and every data upstream step is complete too.

        A target or companion that differs from what the sidecar recorded (a shard
        cut short by hand, a truncated sink file, garbage in `report.json`), or a
        sidecar edited since it was written (its checksum), makes the step
        incomplete: it is made again, never passed on downstream.
        """
        check_settings_once()
        outputs = self.output_files()
        if any(not os.path.exists(p) for p in outputs):  # the cheapest test first
            return False
        inputs = self.input_files()
        reasons = stale_reasons(meta_path(self.output().path), jsonable(self.settings()),
                                outputs, inputs)
        first = next(reasons, None)
        if first is not None:
            if first.kind == "seal":
                _say_once(f"{self}: {first.text}; the step is made again")
            elif first.kind == "output":
                changed = [first.path, *(r.path for r in takewhile(
                    lambda r: r.kind == "output", reasons))]
                _say_once(f"{self}: {', '.join(changed)} not as its sidecar recorded "
                          "(edited, cut short or replaced); the step is made again")
            return False
        # Luigi looks no further than a complete task, so without this a shard deleted three
        # steps up would never be remade
        return all(dep.complete() for dep in self.data_upstream(inputs))

    def data_upstream(self, inputs: list[str] | None = None) -> Iterator[luigi.Task]:
        """The upstream steps whose output this step reads (`inputs`: its `input_files()`).

        Requirements that are gates, not data (the sample QA run), are not in
        `input_files()` and do not count: remaking them must not redo the work after them.
        """
        read = set(self.input_files() if inputs is None else inputs)
        for dep in luigi.task.flatten(self.requires()):
            if {t.path for t in luigi.task.flatten(dep.output()) if hasattr(t, "path")} & read:
                yield dep

    # -- progress ---------------------------------------------------------
    def label(self) -> str:
        """The step's name in progress lines: `IngestShard 001/004`, else the family."""
        shard = getattr(self, "shard", None)
        if shard is None:
            return self.task_family
        return f"{self.task_family} {shard:03d}/{self.shards:03d}"

    def progress(self, total: int | None, unit: str = "lines") -> Progress:
        """A progress reporter for this step's main loop: its reports go to the scheduler
        (progress percentage, status message, seen in the visualiser) and to the log.
        Use as `with self.progress(n) as p: plain_function(..., progress=p)`."""
        p = Progress(self.label(), total, unit=unit, interval=config.backfill().progress_seconds)
        p.log_to(log)
        p.add_listener(self.tell_scheduler)
        self._progress = p
        return p

    def tell_scheduler(self, message: str, percent: float | None = None) -> None:
        tell_scheduler(self, message, percent)

    # -- publishing -------------------------------------------------------
    def lock_path(self) -> Path:
        """The lock held while this step makes its target (under `<workdir>/.locks/`)."""
        return self.workdir / ".locks" / f"{self.target_name}.lock"

    def finish(self, counts: dict[str, Any]) -> None:
        """Write the provenance sidecar: the last act of a successful run.

        Refuses when an input changed while the step ran (another run on this
        work directory remade it): the target would mix two runs' work.
        """
        target = self.output().path
        for path, before in getattr(self, "_inputs_at_start", {}).items():
            if _stat(path) != before:
                raise StepFailed(f"{self.task_family}: input {path} changed while this step ran "
                                 "(another run on this work directory?); run the step again")
        meta = {
            "task": self.task_family,
            "params": self.to_str_params(only_significant=True),
            "settings": jsonable(self.settings()),
            "inputs": [file_identity(p, current_digest(p)) for p in self.input_files()],
            "outputs": [file_identity(p) for p in self.output_files()],
            "counts": counts,
            "version": __version__,
            "finished": utc_now(),
        }
        started = getattr(self, "_started", None)
        if started is not None:  # the run report's duration and rate of each step
            meta["started"] = started[0]
            meta["seconds"] = round(time.monotonic() - started[1], 3)
        write_json(meta_path(target), seal_meta(meta))
        log.info("%s: %s", self.task_family, format_counts(counts))
        # the final counts stay in the scheduler's status message
        final = f"done: {format_counts(counts)}"
        if meta.get("seconds") is not None:
            final += f" in {meta['seconds']:.1f} s"
        progress = getattr(self, "_progress", None)
        if progress is not None and progress.last_message:
            final += "\n" + progress.last_message
        self.tell_scheduler(final, 100.0)


def walk_steps(root: luigi.Task) -> Iterator[BackfillTask]:
    """Every BackfillTask under `root`, dependencies first, each once."""
    return (task for task in walk_tasks(root) if isinstance(task, BackfillTask))


_said: set[str] = set()


def _say_once(message: str) -> None:
    """Log why a step is not complete once per process (Luigi asks `complete()` many times)."""
    if message not in _said:
        _said.add(message)
        log.warning("%s", message)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)
