"""One JSON line's verdict: a JSON object, or a `BadLine` with a countable reason.

Why a module of its own: every step that reads JSON lines must give a line the
same verdict, whichever decoder it uses (`json.loads` here, msgspec in
`pipeline.jsonfast`); the rules (`parse_object`) and the test of which lines
the fast decoder must hand over (`may_be_refused`) live together here, apart
from reading files and writing them atomically (`pipeline.jsonio`).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

# Nesting deeper than this is refused (`invalid-json`). Why a limit of our own: json.loads and
# msgspec both fail somewhere near the interpreter's recursion limit, each at its own depth and
# that depth moving with the caller's stack, so the same line could pass one step and break
# another. 512 is far enough below the recursion limit (1000) that neither fails first from
# any call depth a step runs at, and no entity or ingest result nests beyond a few levels.
MAX_DEPTH = 512
# A line shorter than this can neither nest MAX_DEPTH deep (a JSON value `D` deep is at least
# 2*D bytes) nor hold an integer longer than Python's int-string limit (4300 digits unless
# PYTHONINTMAXSTRDIGITS lowers it below this, which the pipeline does not support).
SUSPECT_LEN = 2 * MAX_DEPTH
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True)
class BadLine:
    """A line that is not a JSON object: kept with its reason for the rejects file."""

    line: int
    raw: str
    reason: str  # short and countable: invalid-json | not-an-object | invalid-utf8 | line-too-long
    detail: str = ""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _depth(text: str) -> int:
    """How deep the arrays and objects of a JSON text nest (brackets inside strings ignored)."""
    depth = deepest = 0
    for c in _STRING.sub("", text):
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def may_be_refused(line: str | bytes) -> bool:
    """Could `parse_object` refuse this line for a rule msgspec does not apply to the values
    it skips (nesting beyond MAX_DEPTH, an integer beyond Python's int-string limit)?

    Why: `pipeline.jsonfast` decodes lines with msgspec and hands only the lines for which
    this is true to `parse_object`, so both decoders give every line the same verdict. It
    must be cheap: most lines are shorter than `SUSPECT_LEN` and end at the first test
    (which `decode_fields` makes before the call).
    """
    if len(line) < SUSPECT_LEN:
        return False
    if isinstance(line, bytes):
        if line.count(b"[") + line.count(b"{") > MAX_DEPTH:
            return True
        digits = rb"[0-9]{%d}"
    else:
        if line.count("[") + line.count("{") > MAX_DEPTH:
            return True
        digits = r"[0-9]{%d}"
    limit = sys.get_int_max_str_digits()
    return bool(limit) and len(line) > limit and re.search(digits % (limit + 1), line) is not None


def _lone_surrogate(line: str, obj: Any) -> bool:
    """Does a string of `obj` (parsed from `line`) hold a lone surrogate (`"\\udc00"`)?"""
    if "\\u" not in line or not _SURROGATE_ESCAPE.search(line):
        return False  # the common case: no surrogate escape at all
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_object(n: int, line: str | BadLine) -> dict | BadLine:
    """Parse one line; anything but a JSON object comes back as a `BadLine` (passed on as is).

    `invalid-json` also covers what `json.loads` alone would let through or
    choke on: `NaN`/`Infinity` (not JSON: a record holding one could never be
    written back as JSON), a lone surrogate escape such as `"\\udc00"` (valid
    ASCII, but not Unicode text: writing it as UTF-8 fails), nesting deeper
    than `MAX_DEPTH`, and an integer longer than Python's int-string limit
    (4300 digits). `pipeline.jsonfast.decode_fields` gives the same verdicts.
    """
    if isinstance(line, BadLine):
        return line
    if may_be_refused(line) and _depth(line) > MAX_DEPTH:
        return BadLine(n, line[:200] + "...", "invalid-json", f"nested deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(line, parse_constant=_refuse_constant)
    except ValueError as e:
        return BadLine(n, line, "invalid-json", str(e))
    except RecursionError:
        return BadLine(n, line[:200] + "...", "invalid-json", "nested too deeply")
    if not isinstance(obj, dict):
        return BadLine(n, line, "not-an-object", f"a JSON {type(obj).__name__}")
    if _lone_surrogate(line, obj):
        return BadLine(n, line, "invalid-json", "a lone surrogate escape (such as \\udc00): "
                       "a string that is not Unicode text")
    return obj
