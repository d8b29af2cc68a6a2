"""Binary search over one sorted index file (CDXJ or classic CDX), by byte offsets.

Real indexes run to many gigabytes, so a lookup seeks: about log2(size)
probes, each reading one line, then a sequential read of the key's lines.
Nothing but those lines is held in memory. The file must be sorted
byte-wise (`LC_ALL=C sort`), as pywb and the CDX tools write it; header
lines (` CDX ...`, `!meta ...`) sort first and never match a SURT key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator


class SortedIndex:
    """One sorted index file; `lines_for(key)` yields the lines whose first field is `key`.

    The file is opened per call, so one instance may serve many threads.
    """

    def __init__(self, path: str):
        self.path = path
        self.cdxj = path.endswith(".cdxj")

    def lines_for(self, key: str) -> Iterator[str]:
        target = key.encode("utf-8")
        prefix = target + b" "
        with open(self.path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(_first_line_at_or_after(handle, size, target))
            for raw in handle:
                if not raw.startswith(prefix):
                    # A line of the same key without its separator is still "ours":
                    # it is broken, and the caller must hear about it.
                    if _line_key(raw) == target:
                        yield raw.decode("utf-8", "replace")
                        continue
                    break
                yield raw.decode("utf-8", "replace")


def _line_key(raw: bytes) -> bytes:
    return raw.rstrip(b"\r\n").split(b" ", 1)[0]


def _line_start(handle, position: int) -> int:
    """Start of the first line beginning at or after `position`."""
    if position == 0:
        handle.seek(0)
        return 0
    handle.seek(position - 1)
    handle.readline()
    return handle.tell()


def _first_line_at_or_after(handle, size: int, target: bytes) -> int:
    """Offset of the first line whose key is >= target (or `size`).

    Searches byte positions p for the smallest one whose following line has a
    key >= target; that predicate only flips once along the file.
    """
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        start = _line_start(handle, middle)
        line = handle.readline() if start < size else b""
        if not line or _line_key(line) >= target:
            high = middle
        else:
            low = middle + 1
    return _line_start(handle, low)
