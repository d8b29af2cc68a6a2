"""The import's checks of its input: which file_meta records are wanted, and a sound file.

Why apart from the importer: these rules (five fields present, well-formed
hashes, a positive size, a text mimetype; a damaged file stops the import
before any write) are what a reviewer compares with docs/delivery.md, and
they need no catalog. `sample_file_meta` gives the QA dry run exactly what
the merge step would keep (`pipeline.records`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

from pipeline.jsonfast import decode_block, decode_fields, present_fields, struct_decoder
from pipeline.jsonio import InputError, block_lines, iter_objects, iter_raw_blocks
from pipeline.jsonline import BadLine
from pipeline.records import FILE_META_FIELDS, drop_reason

MIMETYPE_RE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


_HEX_DIGITS = "0123456789abcdef"
_MIMETYPE_MATCH = MIMETYPE_RE.match


def want_reason(row: dict[str, Any]) -> str | None:
    """Why a file_meta record is not imported (`skip-...`), or None when it is wanted.

    The rules in a row: any of the five fields absent, null, "" or 0 (as
    fatcat's want) is missing; each hash lower-case hex of its length, the size
    a positive integer, the mimetype `type/subtype` in lower case, or it is
    malformed. Written out field by field (no loop over FILE_META_FIELDS): it
    runs once per record of the import."""
    get = row.get
    sha1, sha256, md5 = get("sha1hex"), get("sha256hex"), get("md5hex")
    size, mimetype = get("size_bytes"), get("mimetype")
    if not (sha1 and sha256 and md5 and size and mimetype):
        return "skip-missing-field"
    if not (isinstance(sha1, str) and len(sha1) == 40 and not sha1.strip(_HEX_DIGITS)
            and isinstance(sha256, str) and len(sha256) == 64 and not sha256.strip(_HEX_DIGITS)
            and isinstance(md5, str) and len(md5) == 32 and not md5.strip(_HEX_DIGITS)):
        return "skip-malformed-field"
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return "skip-malformed-field"
    if not isinstance(mimetype, str) or not _MIMETYPE_MATCH(mimetype):
        return "skip-malformed-field"
    return None


# The import reads these fields of a record (`want_reason`, `apply_file_meta`); the rest of
# each line is checked (`pipeline.jsonfast`: the verdicts of `parse_object`), never built.
_IMPORT_DECODER = struct_decoder("FileMetaImportFields", FILE_META_FIELDS)
_CHECK_DECODER = struct_decoder("FileMetaLine", ())


def check_file_meta(path: str | os.PathLike) -> int:
    """Count the records of a file_meta JSON-lines file, checking every line first.

    A line that is not a JSON object stops the import before any write, with
    its line number: the file is produced by our own checked steps, so such a
    line means a damaged file, not a record to skip. Nothing of a line is built
    (parsing every value twice, here and in `iter_file_meta`, was a tenth of
    the import's CPU).
    """
    return sum(len(values) for values, _ in _decoded_blocks(path, _CHECK_DECODER, ()))


def iter_file_meta(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The records of a file_meta file as the import reads them: each with just the
    FILE_META_FIELDS it has (`json.loads` restricted to them)."""
    fields = FILE_META_FIELDS
    for values, whole in _decoded_blocks(path, _IMPORT_DECODER, fields):
        if whole:
            for struct in values:
                yield present_fields(fields, struct)
        else:
            yield from values


def _decoded_blocks(path: str | os.PathLike, decoder, fields: tuple[str, ...]
                    ) -> Iterator[tuple[list, bool]]:
    """Per block of lines of `path`: (msgspec's Structs of its lines, True) when msgspec
    takes the block whole (`decode_block`: one call, no Python work per line), else
    (`decode_fields`'s dicts of its lines, False). A line that is not a JSON object
    raises `InputError` with its line number."""
    for n, block in iter_raw_blocks(path):
        fast = None if isinstance(block, BadLine) else decode_block(decoder, block)
        if fast is not None:
            yield fast[1], True
            continue
        lines = [(block.line, block)] if isinstance(block, BadLine) else block_lines(block, n)
        dicts = []
        for line_n, raw in lines:
            obj = decode_fields(decoder, fields, line_n, raw)
            if isinstance(obj, BadLine):
                raise InputError(f"{os.fspath(path)}: line {line_n}: {obj.reason} ({obj.detail})")
            dicts.append(obj)
        yield dicts, False


def sample_file_meta(results_path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The file_meta of the sample's ingest results that the merge step would keep.

    Why: the QA dry run must count what the real import will see, so it
    applies the merge step's own rule (a successful hit whose fetched sha1 is
    the requested one). Lines that are not JSON objects are an error here:
    the sample results file is our own output.
    """
    for n, obj in iter_objects(results_path):
        if isinstance(obj, BadLine):
            raise InputError(f"{os.fspath(results_path)}: line {n}: {obj.reason}")
        if drop_reason(obj) is None:
            yield obj["file_meta"]
