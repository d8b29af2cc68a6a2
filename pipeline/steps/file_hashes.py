"""The runbook's count check: how many catalog rows lack sha256, from a database dump.

Operators dump `ident, rev, sha1, sha256, md5` from the catalog database
(`file_hashes.tsv.gz`; empty field = missing) and expect the export filter to
find the same number of entities. This step counts the dump independently
and compares; a mismatch is reported (in the counts and the log), not hidden.
"""

from __future__ import annotations

import logging
from collections import Counter

from pipeline.jsonio import iter_lines
from pipeline.jsonline import BadLine

log = logging.getLogger(__name__)

FIELDS = ("ident", "rev", "sha1", "sha256", "md5")


def count_missing_sha256(tsv_path: str) -> dict:
    """Rows, rows lacking sha256, and malformed rows (wrong field count, not UTF-8, over-long)
    of a file_hashes dump; the first malformed line numbers are listed."""
    counts: Counter = Counter()
    bad_examples: list[int] = []
    for n, line in iter_lines(tsv_path):
        fields = [] if isinstance(line, BadLine) else line.split("\t")  # not UTF-8 or over-long
        if n == 1 and fields[0] == "ident":
            continue  # a header row
        if len(fields) != len(FIELDS):
            counts["malformed"] += 1
            if len(bad_examples) < 10:
                bad_examples.append(n)
            continue
        counts["rows"] += 1
        if not fields[3].strip():
            counts["missing_sha256"] += 1
    return {
        "rows": counts["rows"],
        "missing_sha256": counts["missing_sha256"],
        "malformed": counts["malformed"],
        "malformed_lines": bad_examples,
    }


def compare(file_hashes_counts: dict, export_missing: int) -> dict:
    """The comparison the runbook did by eye, as a record."""
    expected = file_hashes_counts["missing_sha256"]
    return {
        "file_hashes_missing_sha256": expected,
        "export_missing_sha256": export_missing,
        "difference": export_missing - expected,
        "match": export_missing == expected,
    }


def check_export_count(tsv_path: str, export_missing: int) -> dict:
    """Count the dump, compare with the export filter's count, log a mismatch as an error."""
    dump = count_missing_sha256(tsv_path)
    result = dump | compare(dump, export_missing)
    if not result["match"]:
        log.error(
            "count check: export has %d entities lacking sha256, file_hashes dump %s has %d",
            export_missing,
            tsv_path,
            result["file_hashes_missing_sha256"],
        )
    return result
