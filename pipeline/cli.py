"""Operator CLI: `python -m pipeline ...` or the `backfill` console script.

Why: operators need to see, without reading Luigi's logs, which targets exist,
how big they are, what each step counted and which temporary files killed
processes left (`status`; `sweep`, `pipeline.cli_temp`), where a step writes
(`path STEP`), to load, inspect or import into the catalog (`catalog ...`,
`pipeline.cli_catalog`) and to index a local collection (`archive index`,
`pipeline.cli_archive`). This is the only entry point besides Luigi's own
`luigi --module pipeline.tasks`. Every number shown comes from the targets
and their `.meta.json` sidecars.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import luigi

from pipeline import __version__
from pipeline.checks import format_counts
from pipeline.cli_archive import add_parser as add_archive
from pipeline.cli_catalog import add_parser as add_catalog
from pipeline.cli_kafka import add_parser as add_kafka
from pipeline.cli_temp import add_parser as add_sweep
from pipeline.cli_temp import leftover_lines, workdir
from pipeline.errors import OperatorError
from pipeline.jsonio import InputError, count_lines, read_json
from pipeline.provenance import jsonable, meta_path
from pipeline.staleness import why_stale
from pipeline.tasks.base import BackfillTask, walk_steps
from pipeline.tasks.settings_gate import check_settings_once


def damaged(what: str, path: str | os.PathLike, why: object) -> InputError:
    """The one-line error of a sidecar or counters file the CLI cannot report from."""
    return InputError(f"{what} {path} is damaged ({why}); remove it and rerun the step")


def json_document(path: str | os.PathLike, what: str) -> Any:
    """A JSON file the CLI reports from; a damaged one is an `InputError` naming it (one line
    on stderr, not json's traceback)."""
    try:
        return read_json(path)
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise damaged(what, path, e) from None


def finished_meta(task: BackfillTask) -> dict | None:
    """A step's sidecar, None when the step has not finished; `InputError` when damaged."""
    sidecar = meta_path(task.output().path)
    if not sidecar.exists():
        return None
    meta = json_document(sidecar, "sidecar")
    if not isinstance(meta, dict) or not isinstance(meta.get("counts"), dict):
        raise damaged("sidecar", sidecar, "no counts object")
    return meta


def step_status(task: BackfillTask) -> dict:
    """Existence, line count and recorded counts of one step's target (a damaged sidecar is
    shown on its row, the other steps are still listed)."""
    path = task.output().path
    row = {"step": task.task_id, "target": path, "exists": os.path.exists(path), "lines": None,
           "problem": None}
    if row["exists"] and task.jsonl:
        try:
            row["lines"] = count_lines(path)
        except InputError as e:
            row["lines"] = f"unreadable: {e}"
    try:
        meta = finished_meta(task)
    except InputError as e:
        meta, row["problem"] = None, str(e)
    row["counts"] = meta["counts"] if meta is not None else {}
    row["complete"] = task.complete()
    row["why"] = why_stale(task, jsonable(task.settings()), incomplete_upstream(task)) \
        if row["exists"] and not row["complete"] else []
    return row


def incomplete_upstream(task: BackfillTask) -> list[str]:
    """The steps `task` reads from that are not complete (a reason it is stale)."""
    return [label(dep) for dep in task.data_upstream() if not dep.complete()]


def cmd_status(args: argparse.Namespace) -> int:
    from pipeline.tasks import Backfill

    check_settings_once()  # the run's manifest first: the graph of the run's own settings
    rows = [step_status(t) for t in walk_steps(Backfill())]
    for r in rows:
        mark = "done" if r["complete"] else ("stale" if r["exists"] else "missing")
        lines = "-" if r["lines"] is None else r["lines"]
        print(f"{mark:8} {lines!s:>8}  {r['target']}")
        if r["problem"]:
            print(f"{'':18}{r['problem']}")
        for why in r["why"]:
            print(f"{'':18}why: {why}")
        if r["counts"] and not args.brief:
            print(f"{'':18}{format_counts(r['counts'])}")
            for key, value in r["counts"].items():
                if isinstance(value, dict) and value:
                    inner = ", ".join(f"{k}: {v}" for k, v in value.items())
                    print(f"{'':18}{key}: {inner}")
    for line in leftover_lines(workdir()):
        print(line)
    return 0 if all(r["complete"] for r in rows) else 1


def cmd_steps(args: argparse.Namespace) -> int:
    from pipeline.tasks import Backfill

    seen: set[str] = set()
    for t in walk_steps(Backfill()):
        if t.task_family in seen:  # one line per step, not per shard
            continue
        seen.add(t.task_family)
        doc = (type(t).__doc__ or "").strip().splitlines()[0]
        print(f"{t.task_family:24} {doc}")
    return 0


def find_steps(name: str) -> list[BackfillTask]:
    """Steps named by family (all shards), task id, or luigi's `Family(param=...)` form."""
    from pipeline.tasks import Backfill

    check_settings_once()
    return [t for t in walk_steps(Backfill())
            if name in (t.task_family, t.task_id, str(t), label(t))]


def label(task: BackfillTask) -> str:
    """`IngestShard(shard=0, shards=4)` for a parametrised step, else just its name (the run,
    which every task carries, is the work directory the command was given)."""
    params = {k: v for k, v in task.to_str_params(only_significant=True).items() if k != "run_dir"}
    if not params:
        return task.task_family
    return f"{task.task_family}({', '.join(f'{k}={v}' for k, v in params.items())})"


def no_such_step(name: str) -> int:
    print(f"no step named {name!r}; see `python -m pipeline steps`", file=sys.stderr)
    return 2


def cmd_path(args: argparse.Namespace) -> int:
    steps = find_steps(args.step)
    for t in steps:
        print(t.output().path)
    return 0 if steps else no_such_step(args.step)


def step_counter(task: BackfillTask) -> dict[str, int] | None:
    """A finished step's counters in the runbook's shape (status histogram + total for ingest)."""
    meta = finished_meta(task)
    if meta is None:
        return None
    if not task.jsonl:  # a counters document (the import): exactly that
        counts = json_document(task.output().path, "counters")
        if not isinstance(counts, dict):
            raise damaged("counters", task.output().path, "not a JSON object")
    else:
        counts = meta["counts"]
        if isinstance(counts.get("status"), dict) and "rejects" not in counts:
            counts = {"total": counts.get("in"), **counts["status"]}
    return {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}


def cmd_counter(args: argparse.Namespace) -> int:
    """Print `Step: Counter({...})` for each finished step matching the name."""
    steps = find_steps(args.step)
    if not steps:
        return no_such_step(args.step)
    rc = 0
    for t in steps:
        counter = step_counter(t)
        if counter is None:
            print(f"{label(t)} has not run yet", file=sys.stderr)
            rc = 1
            continue
        ordered = dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
        print(f"{label(t)}: Counter({ordered!r})")
    return rc


def cmd_messages(args: argparse.Namespace) -> int:
    """Print the messages each finished shard (and GrobidRetry) stored, per topic, and the totals."""
    import collections

    from pipeline.tasks import GrobidRetry

    totals: collections.Counter = collections.Counter()
    for t in [*find_steps("IngestShard"), GrobidRetry()]:
        meta = finished_meta(t)
        messages = meta["counts"].get("messages") if meta is not None else None
        if messages is None:
            continue
        if not isinstance(messages, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in messages.values()):
            raise damaged("sidecar", meta_path(t.output().path), "messages is not a count per topic")
        totals.update(messages)
        print(f"{label(t)}: {format_counts(messages) or 'no messages'}")
    print(f"all sinks: {format_counts(dict(sorted(totals.items()))) or 'no messages'}")
    return 0


WORKDIR_HELP = "override [backfill] workdir"


def common_options() -> argparse.ArgumentParser:
    """The options every command takes, as an argparse parent of the top-level parser."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--workdir", help=WORKDIR_HELP)
    return parent


def subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every (nested) subcommand parser under `parser`."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += [sub, *subparsers_of(sub)]
    return found


def accept_common_options_anywhere(parser: argparse.ArgumentParser) -> None:
    """`messages --workdir X` as well as `--workdir X messages`: operators put options after
    the subcommand. The subcommands' copies default to SUPPRESS, so they never overwrite a
    value given before the subcommand; the modules adding subcommands need not know."""
    for sub in subparsers_of(parser):
        if "--workdir" not in sub._option_string_actions:
            sub.add_argument("--workdir", default=argparse.SUPPRESS, help=WORKDIR_HELP)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="backfill", description=__doc__.splitlines()[0],
                                parents=[common_options()])
    p.add_argument("--version", action="version", version=__version__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("status", help="each step's target, whether it exists, lines and counts")
    s.add_argument("--brief", action="store_true", help="one line per step")
    s.set_defaults(func=cmd_status)
    s = sub.add_parser("steps", help="list the steps of the pipeline")
    s.set_defaults(func=cmd_steps)
    s = sub.add_parser("counter", help="print a finished step's counters as the runbook's Counter line")
    s.add_argument("step")
    s.set_defaults(func=cmd_counter)
    s = sub.add_parser("messages", help="messages each shard's sinks stored, per topic")
    s.set_defaults(func=cmd_messages)
    s = sub.add_parser("path", help="print the target path of a step")
    s.add_argument("step")
    s.set_defaults(func=cmd_path)
    add_catalog(sub)
    add_archive(sub)
    add_kafka(sub)
    add_sweep(sub)
    accept_common_options_anywhere(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workdir:
        luigi.configuration.get_config().set("backfill", "workdir", args.workdir)
    try:
        return args.func(args)
    except OperatorError as e:  # a bad setting, a damaged file...: one line, no traceback
        print(f"backfill {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `backfill catalog dump | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
