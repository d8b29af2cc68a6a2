"""`python -m pipeline archive index COLLECTION`: index a directory of WARCs.

Part of the one operator CLI (`pipeline.cli` registers it). The indexing is
`pipeline.archive.indexer`; this only reads the command line.
"""

from __future__ import annotations

import argparse
import os
import sys

from pipeline.archive.indexer import index_collection
from pipeline.cli_groups import add_group


def cmd_index(args: argparse.Namespace) -> int:
    archive = os.path.join(args.collection, "archive")
    if not os.path.isdir(archive):
        print(f"archive index: {archive} is not a directory (a collection keeps its WARCs "
              "under archive/)", file=sys.stderr)
        return 2
    count = index_collection(args.collection, args.name)
    print(f"{count} rows -> {os.path.join(args.collection, 'indexes', args.name)}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `archive index` on the operator CLI."""
    p, sub = add_group(subparsers, "archive", help="local web-archive collections")
    s = sub.add_parser("index", help="write the sorted index of a collection's WARCs "
                                     "(what a local collection is searched by)")
    s.add_argument("collection", help="a directory with archive/*.warc.gz")
    s.add_argument("--name", default="index.cdxj", help="index file name (.cdxj or .cdx)")
    s.set_defaults(func=cmd_index)
    return p
