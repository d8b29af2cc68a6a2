"""The command that re-runs a failed step with its run's settings, for the scheduler's error text.

Why: luigid's visualiser offers a "command to re-run" for a failed task built
from the task's own parameters only (`luigi --module pipeline.tasks IngestShard
--run-dir ... --shard 3 --shards 24`). The pipeline's settings are not task
parameters but config sections (`[backfill]`, `[grobid]`, ...), so that command
drops `--grobid-host`, `--backfill-workdir` and every other option the run was
given and, pasted as it is, re-runs the step with luigi.cfg's values. A failed
step's error text therefore ends with the command including every setting that
differs from its default (never the fatcat token: it is not a setting).
"""

from __future__ import annotations

import shlex

import luigi

from pipeline import config

SECTIONS = (config.backfill, config.ingest, config.grobid, config.kafka, config.pdftext,
            config.importer)


def changed_settings() -> list[str]:
    """`--section-key value` for every setting of today's configuration that is not its default."""
    args = []
    for section in SECTIONS:
        current = section()
        for name, param in section.get_params():
            value = param.serialize(getattr(current, name))
            default = getattr(param, "_default", None)
            if default is not None and default is not luigi.parameter._no_value:
                if value == param.serialize(param.normalize(default)):
                    continue
            args += [f"--{section.get_task_family()}-{name.replace('_', '-')}", shlex.quote(value)]
    return args


def rerun_command(task: luigi.Task) -> str:
    """The luigi command line that re-runs `task` (and what it needs) with this run's settings."""
    params = [f"--{k.replace('_', '-')} {shlex.quote(v)}"
              for k, v in task.to_str_params(only_significant=True, only_public=True).items()
              if k != "run_dir"]  # derived from --backfill-workdir
    return " ".join(["luigi --module pipeline.tasks", task.task_family, *params,
                     *changed_settings()])
