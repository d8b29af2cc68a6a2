"""The one base task: output paths from the work directory, provenance sidecars, staleness.

Why: every step publishes a file named by SPEC §6 under the work directory and
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

import datetime as _dt
import functools
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import luigi

from pipeline import __version__, config
from pipeline.jsonio import read_json, write_json

log = logging.getLogger("luigi-interface")

META_SUFFIX = ".meta.json"


class StepFailed(Exception):
    """A step's own check failed (counts that do not add up, a QA gate): never publish."""


def meta_path(target: str | os.PathLike) -> Path:
    return Path(f"{os.fspath(target)}{META_SUFFIX}")


def file_identity(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """Path, size, mtime and content digest of a file (the digest computed unless given)."""
    st = os.stat(path)
    return {
        "path": os.fspath(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256 or content_digest(path),
    }


def content_digest(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def current_digest(path: str) -> str:
    """The digest of a file now: from its producer's sidecar when that describes the file as
    it is (same size and mtime), else computed (external inputs, or a file changed by hand)."""
    sidecar = meta_path(path)
    if sidecar.exists():
        st = os.stat(path)
        try:
            outputs = read_json(sidecar).get("outputs", [])
        except (OSError, ValueError):
            outputs = []
        for out in outputs:
            if out.get("path") == path and (out.get("size"), out.get("mtime_ns")) == (
                st.st_size,
                st.st_mtime_ns,
            ) and out.get("sha256"):
                return out["sha256"]
    return content_digest(path)


def unchanged(recorded: dict | None, path: str) -> bool:
    """Whether `path` is the file a step read: same size and mtime, or else the same bytes."""
    if recorded is None:
        return False
    st = os.stat(path)
    if (recorded.get("size"), recorded.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
        return True
    return recorded.get("size") == st.st_size and recorded.get("sha256") == current_digest(path)


def run_key() -> str:
    """The run a task belongs to: the absolute path of `[backfill] workdir`.

    Why: luigid tells tasks apart by family and parameters only. Without the
    run in the parameters, `Backfill()` started in /srv/a and in /srv/b is
    one task to a shared scheduler, and the second run is skipped as done or
    running. The work directory is what a run is (every target lives there),
    it is derived from the `--backfill-workdir` option every run already
    gives, and a rerun of the same run gets the same task ids.
    """
    return os.path.abspath(config.backfill().workdir)


class RunParameter(luigi.Parameter):
    """`run_dir`: empty (the default) means the run of today's configuration (`run_key()`)."""

    def normalize(self, x: Any) -> str:
        return x or run_key()


class InRun:
    """Every task of the pipeline carries its run in its id (see `run_key`).

    Never passed by hand: each task derives it from `[backfill] workdir` when
    it is built, so every task of one process's graph names the same run.
    """

    run_dir = RunParameter(default="", positional=False,
                           description="the run (absolute work directory); derived, do not set")


class BackfillTask(InRun, luigi.Task):
    """Base of every step that publishes a file.

    Subclasses set `target_name` (relative to the work directory), implement
    `requires()`, `settings()` (the configuration values that change the
    result) and `run()`, which calls plain functions and ends with
    `self.finish(counts)`.
    """

    target_name: str = ""
    jsonl: bool = True  # the target is JSON lines (False: one JSON document)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give every step's `run()` the same first act: nothing to do when already complete.

        Luigi decides what to run before anything runs. When an upstream step is
        remade and its output has the same bytes as before (a deleted shard
        ingested again), the steps after it were scheduled but their inputs did
        not change: they keep their published targets instead of redoing the
        work (the import would otherwise query the catalog again for nothing).
        """
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is None:
            return

        @functools.wraps(run)
        def run_unless_complete(self: BackfillTask) -> Any:
            if self.complete():
                log.info("%s: inputs have the same content as before; target kept", self)
                return None
            self._started = (_dt.datetime.now(_dt.UTC), time.monotonic())
            return run(self)

        cls.run = run_unless_complete

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

    # -- completeness -----------------------------------------------------
    def complete(self) -> bool:
        target = self.output().path
        sidecar = meta_path(target)
        if not (os.path.exists(target) and sidecar.exists()):
            return False
        if any(not os.path.exists(p) for p in self.extra_outputs()):
            return False
        try:
            meta = read_json(sidecar)
        except (OSError, ValueError):
            return False
        if meta.get("settings") != _jsonable(self.settings()):
            return False
        recorded = {i["path"]: i for i in meta.get("inputs", [])}
        inputs = self.input_files()
        for path in inputs:
            if not os.path.exists(path) or not unchanged(recorded.get(path), path):
                return False
        return self._data_upstream_complete(set(inputs))

    def _data_upstream_complete(self, inputs: set[str]) -> bool:
        """Every upstream step whose output this step reads is itself complete.

        Luigi looks no further than a complete task, so without this a shard
        deleted three steps up would never be remade. Requirements that are
        gates, not data (the sample QA run), are not in `input_files()` and do
        not count: remaking them must not redo the work after them.
        """
        for dep in luigi.task.flatten(self.requires()):
            outs = {t.path for t in luigi.task.flatten(dep.output()) if hasattr(t, "path")}
            if outs & inputs and not dep.complete():
                return False
        return True

    # -- publishing -------------------------------------------------------
    def finish(self, counts: dict[str, Any]) -> None:
        """Write the provenance sidecar: the last act of a successful run."""
        target = self.output().path
        meta = {
            "task": self.task_family,
            "params": self.to_str_params(only_significant=True),
            "settings": _jsonable(self.settings()),
            "inputs": [file_identity(p, current_digest(p)) for p in self.input_files()],
            "outputs": [file_identity(p) for p in [target, *self.extra_outputs()]],
            "counts": counts,
            "version": __version__,
            "finished": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        started = getattr(self, "_started", None)
        if started is not None:  # the run report's duration and rate of each step
            meta["started"] = started[0].strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["seconds"] = round(time.monotonic() - started[1], 3)
        write_json(meta_path(target), meta)
        log.info("%s: %s", self.task_family, format_counts(counts))


def check_balance(step: str, n_in: int, parts: dict[str, int]) -> None:
    """Fail loudly unless in = out + rejects (+ any other named part)."""
    total = sum(parts.values())
    if total != n_in:
        detail = " + ".join(f"{k} {v}" for k, v in parts.items())
        raise StepFailed(f"{step}: counts do not add up: in {n_in} != {detail} = {total}")


def format_counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list))


def _jsonable(value: Any) -> Any:
    """Normalise tuples and luigi's frozen containers so recorded == current compares."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
