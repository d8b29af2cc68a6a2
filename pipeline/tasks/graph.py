"""Walking a run's task graph: every task under a root, dependencies first, each once.

Why its own module: the base task (`walk_steps`: what `status` lists) and the
settings gate (`runsettings.redo_steps`: what a change of settings redoes)
both walk the graph, and the gate sits below the base task and imports none
of it; one walk here serves both.
"""

from __future__ import annotations

from collections.abc import Iterator

import luigi


def walk_tasks(root: luigi.Task) -> Iterator[luigi.Task]:
    """Every task under `root` (wrappers included), each after its dependencies, each once."""
    seen: set[str] = set()

    def visit(task: luigi.Task) -> Iterator[luigi.Task]:
        if task.task_id in seen:
            return
        seen.add(task.task_id)
        for dep in luigi.task.flatten(task.requires()):
            yield from visit(dep)
        yield task

    yield from visit(root)
