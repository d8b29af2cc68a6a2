"""`python -m pipeline catalog ...`: load, dump, inspect and import into a catalog.

Part of the one operator CLI (`pipeline.cli` registers it); the catalog and
the import journal are built by `pipeline.wiring`, as for the import task.

Why: operators check the embedded catalog the way they would check fatcat
(`get IDENT`, a full `dump` to diff against an export), load it from an
export, and can run the import by hand exactly as the `ImportFileMeta` task
does (`import FILE_META`, with `--dry-run` for a QA pass), like the runbook's
`fatcat_import.py file-meta`.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys

from pipeline import wiring
from pipeline.catalog import is_api_url, rejects_path_for
from pipeline.catalog.base import CatalogError
from pipeline.catalog.export import dump, load_export
from pipeline.catalog.integrity import check_catalog_file
from pipeline.catalog.sqlite import SqliteCatalog
from pipeline.cli_groups import add_group
from pipeline.errors import OperatorError
from pipeline.importer import import_file_meta, record_finished
from pipeline.jsonio import dumps, write_json
from pipeline.locations import unusable_url_problem
from pipeline.runlock import LockHeld
from pipeline.targets import IMPORT_JOURNAL

# exit status when another importer holds the catalog or journal: another process is doing this
# work now (luigi.cfg's already_running is 0, for shared runs; this is no shared run)
LOCKED = 10


def _catalog(args: argparse.Namespace) -> str:
    """`--catalog`, else `[backfill] catalog`: a path or an http(s) URL (scheme in any case);
    another URL (`ftp://...`) is refused, never taken for a file name."""
    spec = args.catalog or wiring.catalog_spec()
    problem = unusable_url_problem("--catalog" if args.catalog else "[backfill] catalog", spec)
    if problem:
        raise CatalogError(problem)
    return spec


def _sqlite_only(spec: str, command: str) -> None:
    if is_api_url(spec):
        raise CatalogError(f"catalog {command} works on the embedded catalog, not on an API URL")


def cmd_load(args: argparse.Namespace) -> int:
    spec = _catalog(args)
    _sqlite_only(spec, "load")
    rejects = args.rejects or rejects_path_for(spec)
    report = load_export(spec, args.export, rejects_path=rejects)
    print(json.dumps(report.as_dict(), sort_keys=True))
    if report.rejected:
        print(f"{report.rejected} of {report.lines} lines rejected ({dict(report.reasons)}); "
              f"see {rejects}", file=sys.stderr)
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    spec = _catalog(args)
    _sqlite_only(spec, "dump")
    if not os.path.exists(spec):
        raise CatalogError(f"no catalog at {spec}; load one with `catalog load EXPORT`")
    check_catalog_file(spec)  # a damaged file: one line saying so, not SQLite's traceback
    try:
        with SqliteCatalog(spec) as cat:
            dump(cat, sys.stdout)
            sys.stdout.flush()
    except BrokenPipeError:  # `catalog dump | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except sqlite3.DatabaseError as e:  # damage the quick check did not reach
        raise CatalogError(f"embedded catalog {spec} is damaged ({e}); load it again "
                           "(`catalog load EXPORT`)") from None
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    spec = _catalog(args)
    if not is_api_url(spec) and not os.path.exists(spec):
        raise CatalogError(f"no catalog at {spec}; load one with `catalog load EXPORT`")
    cat = wiring.open_named_catalog(spec)
    with cat:
        entity = cat.get_file(args.ident)
    if entity is None:
        print(f"no file entity {args.ident} in {cat.name}", file=sys.stderr)
        return 1
    print(dumps(entity))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = wiring.import_options()
    spec = _catalog(args)
    journal = args.journal or wiring.import_journal_path()
    cat = wiring.open_named_catalog(spec, seed=args.seed)
    with cat:
        result = import_file_meta(
            args.file_meta, cat, journal_path=journal,
            batch_size=args.batch_size or settings["batch_size"],
            description=args.description or settings["description"], dry_run=args.dry_run,
            streams=args.streams or settings["streams"])
    print(repr(result.counts))
    if args.counts:
        write_json(args.counts, result.counters())
    if not args.dry_run:
        record_finished(journal, cat.name, result.counters())
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `catalog load|dump|get|import` on the operator CLI."""
    p, sub = add_group(subparsers, "catalog", help="load, dump, inspect or import into the catalog")
    catalog_help = "embedded catalog path (default: [backfill] catalog, <workdir>/catalog.sqlite)"

    s = sub.add_parser("load", help="load an export (plain or gzip JSON lines) into the embedded catalog")
    s.add_argument("export")
    s.add_argument("--catalog", help=catalog_help)
    s.add_argument("--rejects", help="where refused lines go (default: <catalog>.rejects.json)")
    s.set_defaults(func=_guard(cmd_load))

    s = sub.add_parser("dump", help="print every file entity as export JSON lines, sorted by ident")
    s.add_argument("--catalog", help=catalog_help)
    s.set_defaults(func=_guard(cmd_dump))

    s = sub.add_parser("get", help="print one file entity")
    s.add_argument("ident")
    s.add_argument("--catalog", help=catalog_help + "; or a fatcat API URL")
    s.set_defaults(func=_guard(cmd_get))

    s = sub.add_parser("import", help="import file_meta records (what ImportFileMeta runs)")
    s.add_argument("file_meta")
    s.add_argument("--catalog", help=catalog_help + "; or a fatcat API URL")
    s.add_argument("--seed", help="export to load an embedded catalog from when it does not exist")
    s.add_argument("--journal", help=f"import journal (default: <workdir>/{IMPORT_JOURNAL})")
    s.add_argument("--batch-size", type=int, help="edits per editgroup (default: [importer] batch_size)")
    s.add_argument("--description", help="editgroup description (default: [importer] description)")
    s.add_argument("--streams", type=int,
                   help="parallel editgroup streams, fatcat API only (default: [importer] streams)")
    s.add_argument("--dry-run", action="store_true", help="count only; write nothing")
    s.add_argument("--counts", help="also write the counters as a JSON object to this file")
    s.set_defaults(func=_guard(cmd_import))
    return p


def _guard(func):
    """Report operator errors (and a bad value: ValueError) as one line on stderr and exit
    status 1; another importer holding the catalog or journal exits LOCKED (10)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except LockHeld as e:
            print(f"catalog {args.catalog_command}: {e}", file=sys.stderr)
            return LOCKED
        except (OperatorError, ValueError) as e:
            print(f"catalog {args.catalog_command}: {e}", file=sys.stderr)
            return 1

    return run

