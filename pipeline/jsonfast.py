"""Decoding only the fields a step looks at, with the standard library's verdict as the rule.

Why: the export filter, the requests step and the merge read every line of
files of up to a million lines, and `json.loads` building every value of
every line was most of their time. msgspec decodes a line into a Struct
declaring only the fields a step reads; the rest of the line is still
validated (so a line that is not JSON still fails) but never built. It is
about ten times faster per line (bench/: measured on the export).

Exactness: msgspec refuses a few inputs `json.loads` accepts (NaN and
Infinity, lone surrogate escapes, floats beyond range in a decoded field).
`decode_fields` therefore falls back to `parse_object` whenever msgspec
refuses a line, and the step applies its usual rules to that result. msgspec
also accepts a few lines `parse_object` refuses, since it never builds the
values it skips (an integer beyond Python's 4300-digit limit, nesting deeper
than `MAX_DEPTH`): the rare lines where that is possible at all
(`may_be_refused`: long ones with many brackets or a long run of digits) go
to `parse_object` directly. So every line gets the verdict `parse_object`
gives it. The one thing msgspec does not check, that the bytes of a skipped
string are UTF-8, `iter_raw_lines` checks for every block it reads.
"""

from __future__ import annotations

import sys
from itertools import repeat
from operator import add
from typing import Any

import msgspec
import msgspec.structs

from pipeline.jsonio import MAX_LINE_BYTES
from pipeline.jsonline import MAX_DEPTH, SUSPECT_LEN, BadLine, may_be_refused, parse_object

UNSET = msgspec.UNSET


def struct_decoder(name: str, fields: tuple[str, ...], required: type | None = None
                   ) -> msgspec.json.Decoder:
    """A decoder of JSON objects into a Struct with just `fields` (absent ones are UNSET);
    with `required`, every field must be present and of that type (else msgspec refuses)."""
    if required is None:
        struct = msgspec.defstruct(name, [(f, Any, UNSET) for f in fields])
    else:
        struct = msgspec.defstruct(name, [(f, required) for f in fields])
    return msgspec.json.Decoder(struct)


def decode_fields(decoder: msgspec.json.Decoder, fields: tuple[str, ...], n: int,
                  raw: bytes | BadLine) -> dict | BadLine:
    """The line's `fields` present (a dict, like `json.loads(line)` restricted to them),
    or a `BadLine` exactly as `parse_object` would give it (a line `iter_raw_lines` already
    found bad, not UTF-8 or too long, is passed on)."""
    if isinstance(raw, BadLine):
        return raw
    obj = None
    if len(raw) < SUSPECT_LEN or not may_be_refused(raw):
        try:
            obj = decoder.decode(raw)
        except (msgspec.MsgspecError, RecursionError):
            obj = None
    if obj is None:  # parse_object decides
        parsed = parse_object(n, raw.decode("utf-8"))
        if isinstance(parsed, BadLine):
            return parsed
        return {f: parsed[f] for f in fields if f in parsed}
    return present_fields(fields, obj)


def present_fields(fields: tuple[str, ...], struct) -> dict[str, Any]:
    """The fields a decoded Struct of `fields` holds (those its line had), as a dict."""
    return {f: v for f, v in zip(fields, msgspec.structs.astuple(struct), strict=True)
            if v is not UNSET}


def decode_block(decoder: msgspec.json.Decoder, block: bytes) -> tuple[list[bytes], list] | None:
    """The lines of a block of whole lines (`pipeline.jsonio.iter_raw_blocks`) and what
    `decoder` makes of each, in one msgspec call; or None when some line may get another
    verdict line by line (the caller then decodes the block a line at a time).

    Why: a Python call per line was most of a step's time once the decoding itself was fast.
    Why the answer is exact: a block is taken only when it is UTF-8, has no CR, no blank
    line, and every line begins with `{` and ends with `}` and is shorter than
    `SUSPECT_LEN` (or cannot be refused, `may_be_refused`). JSON strings cannot hold a raw
    newline, and inside a value a `}` is never followed by a `{`, so no value can span two
    such lines: when msgspec then reads as many values as there are lines, each line is one
    object msgspec accepts alone, the verdict `decode_fields` would give it.
    """
    if b"\r" in block:
        return None
    if not block.isascii():
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            return None
    lines = block.split(b"\n")
    # (map of a method: no Python call per line; bytes.count of "\n{" was 3x slower)
    if not all(map(bytes.startswith, lines, repeat(b"{"))) \
            or not all(map(bytes.endswith, lines, repeat(b"}"))):
        return None
    longest = max(map(len, lines))
    if longest > MAX_LINE_BYTES:
        return None
    if longest >= SUSPECT_LEN:  # `may_be_refused` of every line, its bracket count mapped in C
        brackets = map(add, map(bytes.count, lines, repeat(b"[")), map(bytes.count, lines, repeat(b"{")))
        if max(brackets) > MAX_DEPTH:
            return None
        limit = sys.get_int_max_str_digits()
        if limit and longest > limit and any(
                may_be_refused(line) for line in lines if len(line) > limit):
            return None
    try:
        values = decoder.decode_lines(block)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if len(values) != len(lines):
        return None
    return lines, values
