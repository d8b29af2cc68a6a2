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
from itertools import compress
from operator import attrgetter, not_

import msgspec

from pipeline.entity_urls import BAD_URLS, url_list_problem
from pipeline.jsonfast import UNSET, decode_block, decode_fields, struct_decoder
from pipeline.jsonio import block_lines, iter_raw_blocks, joined_lines
from pipeline.jsonline import BadLine
from pipeline.ordered_pool import block_workers, map_ordered
from pipeline.progress import Progress, counting
from pipeline.steps.split import SplitWriter

# line by line (a block `decode_block` did not take), the URL list is built for every line:
# one decode costs less than a second one for the selected lines (measured on the world export)
_FIELDS = ("sha256", "urls")
_DECODER = struct_decoder("ExportSha256Urls", _FIELDS)
# a whole block in one call (`decode_block`): the sha256 of every line; then the URL lists of
# the selected lines in one more call, typed as well-formed ones (`url_list_problem` finds
# nothing wrong with them). A block where either refuses a line goes line by line (_DECODER).
_BLOCK_FIELDS = ("sha256",)
_BLOCK_DECODER = struct_decoder("ExportSha256", _BLOCK_FIELDS)
_Url = msgspec.defstruct("ExportUrl", [("url", str), ("rel", str)])
_URLS_DECODER = msgspec.json.Decoder(msgspec.defstruct("ExportGoodUrls", [
    ("urls", msgspec.UnsetType | None | list[_Url], UNSET)]))
_SHA256_OF = attrgetter("sha256")


def lacks_sha256(entity: dict) -> bool:
    """docs/data.md: an absent key or an empty string both mean "no sha256"."""
    return not entity.get("sha256")


def _block_result(item: tuple[int, bytes | BadLine]) -> tuple[int, int, bytes] | None:
    """(lines, kept lines, the kept lines joined with their newlines) of a block taken whole
    (`_block_kept`); None: line by line."""
    block = item[1]
    if isinstance(block, BadLine):
        return None
    fast = _block_kept(block)
    if fast is None:
        return None
    lines, kept = fast
    return len(lines), len(kept), joined_lines(kept)


def filter_missing_sha256(export: str, out_path: str, rejects_path: str,
                          progress: Progress | None = None, workers: int | None = None) -> dict:
    """Write entities lacking sha256 to `out_path`; non-objects, and selected entities whose
    URL list is malformed (`bad-urls`), to `rejects_path`.

    Returns counts: in, out (missing sha256), has_sha256, rejects, rejects_by_reason.

    A block of lines msgspec takes whole (`decode_block`: every line an object, the
    selected ones with a well-formed URL list) is filtered by list operations, with no
    Python work per line, in `workers` processes (`block_workers`); any other block goes
    line by line here, with the same verdicts. The output does not depend on `workers`.
    """
    n_in = has_sha256 = 0
    source = os.path.basename(export)
    workers = block_workers([export], workers)
    results = map_ordered(iter_raw_blocks(export), _block_result, workers)
    with SplitWriter("export filter", out_path, rejects_path) as split:
        for (n, block), fast in results:
            if isinstance(block, BadLine):
                n_in += 1
                split.reject_bad_line(block, source)
                if progress is not None:
                    progress.update()
                continue
            if fast is not None:
                lines, n_kept, kept = fast
                split.keep_joined(kept, n_kept)
                n_in += lines
                has_sha256 += lines - n_kept
                if progress is not None:
                    progress.update(lines)
                continue
            for m, raw in counting(block_lines(block, n), progress):
                n_in += 1
                has_sha256 += _filter_line(split, source, m, raw)
        return split.publish(n_in, has_sha256=has_sha256)


def _block_kept(block: bytes) -> tuple[list[bytes], list[bytes]] | None:
    """(the block's lines, those lacking sha256) when msgspec takes the block whole and the
    selected lines' URL lists are all well-formed; else None (the block goes line by line)."""
    fast = decode_block(_BLOCK_DECODER, block)
    if fast is None:
        return None
    lines, values = fast
    kept = list(compress(lines, map(not_, map(_SHA256_OF, values))))
    del values
    if kept:
        try:
            _URLS_DECODER.decode_lines(b"\n".join(kept))  # each line already one object
        except (msgspec.MsgspecError, RecursionError):
            return None
    return lines, kept


def _filter_line(split: SplitWriter, source: str, n: int, raw: bytes | BadLine) -> int:
    """One line of a block `decode_block` did not take; 1 when it has a sha256."""
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
        return 1
    return 0
