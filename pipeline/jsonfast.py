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

from typing import Any

import msgspec
import msgspec.structs

from pipeline.jsonline import SUSPECT_LEN, BadLine, may_be_refused, parse_object

UNSET = msgspec.UNSET


def struct_decoder(name: str, fields: tuple[str, ...]) -> msgspec.json.Decoder:
    """A decoder of JSON objects into a Struct with just `fields` (absent ones are UNSET)."""
    struct = msgspec.defstruct(name, [(f, Any, UNSET) for f in fields])
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
    return {f: v for f, v in zip(fields, msgspec.structs.astuple(obj), strict=True) if v is not UNSET}
