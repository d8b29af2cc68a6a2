"""Select the catalog export's file entities that lack a SHA-256.

Replaces the runbook's `zcat export | rg -v '"sha256":' | pigz`. A text grep
cannot tell a missing key from an empty one (`"sha256": ""` counts as missing
here) and silently drops lines that are not JSON objects; this step parses
every line, keeps the original text of the selected entities byte for byte,
and writes every unparseable line to a rejects file with its line number.
A selected entity whose URL list is malformed is rejected here too
(`bad-urls`, `pipeline.entity_urls`): this is where entities enter the
pipeline, and no later step has to cope with it.
"""

from __future__ import annotations

import os

from pipeline.entity_urls import BAD_URLS, url_list_problem
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import iter_raw_lines
from pipeline.jsonline import BadLine
from pipeline.progress import Progress, counting
from pipeline.steps.split import SplitWriter

# the URL list is built for every line: one decode costs less than a second one for the
# selected lines (measured on the world export)
_FIELDS = ("sha256", "urls")
_DECODER = struct_decoder("ExportSha256Urls", _FIELDS)


def lacks_sha256(entity: dict) -> bool:
    """docs/data.md: an absent key or an empty string both mean "no sha256"."""
    return not entity.get("sha256")


def filter_missing_sha256(export: str, out_path: str, rejects_path: str,
                          progress: Progress | None = None) -> dict:
    """Write entities lacking sha256 to `out_path`; non-objects, and selected entities whose
    URL list is malformed (`bad-urls`), to `rejects_path`.

    Returns counts: in, out (missing sha256), has_sha256, rejects, rejects_by_reason.
    """
    n_in = has_sha256 = 0
    source = os.path.basename(export)
    with SplitWriter("export filter", out_path, rejects_path) as split:
        for n, raw in counting(iter_raw_lines(export), progress):
            n_in += 1
            # every line is decoded (only its sha256 and urls built); the kept line is the input's bytes
            obj = decode_fields(_DECODER, _FIELDS, n, raw)
            if isinstance(obj, BadLine):
                split.reject_bad_line(obj, source)
            elif lacks_sha256(obj):
                problem = url_list_problem(obj.get("urls"))
                if problem is None:
                    split.keep_raw(raw)
                else:
                    split.reject_text(BAD_URLS, n, source, raw.decode("utf-8"), detail=problem)
            else:
                has_sha256 += 1
        return split.publish(n_in, has_sha256=has_sha256)
