"""Select the catalog export's file entities that lack a SHA-256.

Replaces the runbook's `zcat export | rg -v '"sha256":' | pigz`. A text grep
cannot tell a missing key from an empty one (`"sha256": ""` counts as missing
here) and silently drops lines that are not JSON objects; this step parses
every line, keeps the original text of the selected entities byte for byte,
and writes every unparseable line to a rejects file with its line number.
"""

from __future__ import annotations

import os
from collections import Counter

from pipeline.base import check_balance
from pipeline.jsonio import AtomicWriter, BadLine, iter_lines, parse_object, reject_bad_line


def lacks_sha256(entity: dict) -> bool:
    """SPEC §2.1: an absent key or an empty string both mean "no sha256"."""
    return not entity.get("sha256")


def filter_missing_sha256(export: str, out_path: str, rejects_path: str) -> dict:
    """Write entities lacking sha256 to `out_path`; non-objects to `rejects_path`.

    Returns counts: in, out (missing sha256), has_sha256, rejects, rejects_by_reason.
    """
    counts: Counter = Counter()
    reasons: Counter = Counter()
    source = os.path.basename(export)
    with AtomicWriter(out_path) as out, AtomicWriter(rejects_path) as rej:
        for n, line in iter_lines(export):
            counts["in"] += 1
            obj = parse_object(n, line)
            if isinstance(obj, BadLine):
                reasons[obj.reason] += 1
                rej.write_obj(reject_bad_line(obj, source))
            elif lacks_sha256(obj):
                out.write_line(line)
            else:
                counts["has_sha256"] += 1
        check_balance(
            "export filter",
            counts["in"],
            {"out": out.lines, "has_sha256": counts["has_sha256"], "rejects": rej.lines},
        )
        out.commit()
        rej.commit()
    return {
        "in": counts["in"],
        "out": out.lines,
        "has_sha256": counts["has_sha256"],
        "rejects": rej.lines,
        "rejects_by_reason": dict(sorted(reasons.items())),
    }
