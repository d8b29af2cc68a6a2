"""Binary search over one sorted index file (CDXJ or classic CDX), by byte offsets.

Real indexes run to many gigabytes, so a lookup seeks: about log2(size)
probes, each reading one line, then a sequential read of the key's lines.
Nothing but those lines is held in memory. The file must be sorted
byte-wise (`LC_ALL=C sort`), as pywb and the CDX tools write it; header
lines (` CDX ...`, `!meta ...`) sort first and never match a SURT key.

A file that is not sorted makes the binary search miss captures without a
word (they would become `no-capture`), so `verify_sorted` reads each index
once, streaming, before it is used, and raises `UnsortedIndex` naming the
file and the first line out of order. The verdict is remembered by path,
size and mtime (in memory, and in a small JSON cache file when one is given,
so parallel shard processes do not each re-read a multi-gigabyte index).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator

from pipeline.tempnames import temp_name

_verified: set[tuple[str, int, int]] = set()
_verified_lock = threading.Lock()


class UnsortedIndex(ValueError):
    """An index file whose keys are not in byte order (binary search would miss rows)."""


def verify_sorted(path: str, cache_file: str | None = None) -> None:
    """Raise `UnsortedIndex` unless every line's key is >= the previous line's key.

    One streaming pass, skipped when this file (same path, size, mtime) was
    verified before, in this process or according to `cache_file`.
    """
    st = os.stat(path)
    ident = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    with _verified_lock:
        if ident in _verified:
            return
    cached = _read_cache(cache_file)
    if cached.get(ident[0]) == [ident[1], ident[2]]:
        with _verified_lock:
            _verified.add(ident)
        return
    previous = b""
    with open(path, "rb") as handle:
        for n, raw in enumerate(handle, 1):
            key = _line_key(raw)
            if key < previous:
                shown = key.decode("utf-8", "backslashreplace")[:200]
                before = previous.decode("utf-8", "backslashreplace")[:200]
                raise UnsortedIndex(
                    f"{path}: line {n}: index is not sorted: key {shown!r} sorts before "
                    f"{before!r} of the line above; lookups would miss captures. "
                    "Sort it byte-wise (LC_ALL=C sort) and rerun."
                )
            previous = key
    with _verified_lock:
        _verified.add(ident)
    if cache_file:
        _write_cache(cache_file, ident)


def _read_cache(cache_file: str | None) -> dict:
    if not cache_file:
        return {}
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: verify again
    return data if isinstance(data, dict) else {}


def _write_cache(cache_file: str, ident: tuple[str, int, int]) -> None:
    data = _read_cache(cache_file)
    data[ident[0]] = [ident[1], ident[2]]
    tmp = temp_name(cache_file)
    try:
        os.makedirs(os.path.dirname(cache_file) or ".", exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, sort_keys=True, indent=1)
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a cache only saves time; a read-only place costs one more pass next time
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class SortedIndex:
    """One sorted index file; `lines_for(key)` yields the lines whose first field is `key`.

    The file is opened per call, so one instance may serve many threads and a file
    that becomes unreadable is noticed at the next lookup. Every binary search of a
    file probes the same positions first, so what a probe found (the line starting
    at or after a position, and its key) is remembered, up to `PROBE_CACHE` probes,
    for as long as the file keeps its size and mtime: a lookup then reads only the
    few deepest probes from the file, with one `pread` each.
    """

    PROBE_CACHE = 16384

    def __init__(self, path: str):
        self.path = path
        self.cdxj = path.endswith(".cdxj")
        self._probes: dict[int, tuple[int, bytes | None]] = {}
        self._probes_of: tuple[int, int] | None = None

    def lines_for(self, key: str) -> Iterator[str]:
        target = key.encode("utf-8")
        prefix = target + b" "
        with open(self.path, "rb") as handle:
            st = os.fstat(handle.fileno())
            handle.seek(self._first_line_at_or_after(handle.fileno(), st, target))
            for raw in handle:
                if not raw.startswith(prefix):
                    # A line of the same key without its separator is still "ours":
                    # it is broken, and the caller must hear about it.
                    if _line_key(raw) == target:
                        yield raw.decode("utf-8", "replace")
                        continue
                    break
                yield raw.decode("utf-8", "replace")

    def _first_line_at_or_after(self, fd: int, st: os.stat_result, target: bytes) -> int:
        """Offset of the first line whose key is >= target (or the file's size).

        Searches byte positions p for the smallest one whose following line has a
        key >= target; that predicate only flips once along the file.
        """
        size = st.st_size
        if self._probes_of != (size, st.st_mtime_ns):
            self._probes = {}  # another file at this path now: nothing remembered holds
            self._probes_of = (size, st.st_mtime_ns)
        probes = self._probes
        low, high = 0, size
        while low < high:
            middle = (low + high) // 2
            found = probes.get(middle)
            if found is None:
                found = _probe(fd, size, middle)
                if len(probes) < self.PROBE_CACHE:
                    probes[middle] = found
            key = found[1]
            if key is None or key >= target:
                high = middle
            else:
                low = middle + 1
        return _probe(fd, size, low)[0]


_PROBE_BYTES = 4096


def _probe(fd: int, size: int, position: int) -> tuple[int, bytes | None]:
    """(start, key) of the first line beginning at or after `position`; key None past the
    last line. Reads with `os.pread`, so the handle's own position is left alone."""
    start = 0
    if position > 0:
        at = position - 1
        while True:
            block = os.pread(fd, _PROBE_BYTES, at)
            if not block:
                return size, None
            newline = block.find(b"\n")
            if newline >= 0:
                start = at + newline + 1
                break
            at += len(block)
    if start >= size:
        return size, None
    line = b""
    while True:
        block = os.pread(fd, _PROBE_BYTES, start + len(line))
        newline = block.find(b"\n")
        if newline >= 0 or not block:
            line += block if newline < 0 else block[: newline + 1]
            break
        line += block
    return start, _line_key(line) if line else None


def _line_key(raw: bytes) -> bytes:
    return raw.rstrip(b"\r\n").split(b" ", 1)[0]
