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

    One instance may serve many threads, and forked processes: it reads with `os.pread`
    only, so no file position is shared. The file is kept open between lookups, but
    each lookup first `stat`s the path: when that is not the file held open any more
    (another inode, size, mtime or ctime: replaced, rewritten, its mode changed) the
    file is opened again, so a file that becomes unreadable is noticed at the next
    lookup, as when it was opened per lookup (one `stat` instead of open, fstat, close).

    Every binary search of a file probes the same positions first, so what a probe
    found (the line starting at or after a position, and its key) is remembered, up to
    `PROBE_CACHE` probes, for as long as the file keeps its identity. Once the search is
    down to `BLOCK` bytes, the rest of it, and usually the key's lines, come from one
    read: a lookup reads the file once or twice, not once per probe.
    """

    PROBE_CACHE = 16384
    BLOCK = 4096

    def __init__(self, path: str):
        self.path = path
        self.cdxj = path.endswith(".cdxj")
        # read and replaced whole by any thread (one attribute: no lock, so none a fork could
        # inherit held); a lookup keeps the `_HeldFile` it took, so it stays open under it
        self._held: _HeldFile | None = None

    def lines_for(self, key: str) -> Iterator[str]:
        target = key.encode("utf-8")
        prefix = target + b" "
        held = self._file()  # stays referenced, so open, while lines are read
        start, block, block_at = self._first_line_at_or_after(held, target)
        for raw in _lines_from(held.fd, start, block, block_at):
            if not raw.startswith(prefix):
                # A line of the same key without its separator is still "ours":
                # it is broken, and the caller must hear about it.
                if _line_key(raw) == target:
                    yield raw.decode("utf-8", "replace")
                    continue
                break
            yield raw.decode("utf-8", "replace")

    def _file(self) -> _HeldFile:
        """The open file, opened again when the path's file is another one now (or has
        another mode); OSError when the path cannot be read."""
        current = _identity(os.stat(self.path))
        held = self._held
        if held is not None and held.ident == current:
            return held
        fd = os.open(self.path, os.O_RDONLY)
        try:
            opened = _HeldFile(fd, _identity(os.fstat(fd)))
        except OSError:
            os.close(fd)
            raise
        self._held = opened  # the file held before is closed when no lookup uses it
        return opened

    def _first_line_at_or_after(self, held: _HeldFile, target: bytes) -> tuple[int, bytes, int]:
        """(offset of the first line whose key is >= target, or the file's size; bytes of the
        file read from `block_at` on, which hold that offset when not empty; block_at).

        Searches byte positions p for the smallest one whose following line has a
        key >= target; that predicate only flips once along the file.
        """
        fd, size, probes = held.fd, held.ident[2], held.probes
        low, high = 0, size
        while high - low > self.BLOCK:
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
        return _search_block(fd, low, high, target)


class _HeldFile:
    """An index file's descriptor kept open, the file's identity, and the probes remembered
    of this very file (a file replaced at the path starts with none, and a lookup still in
    the old one never mixes its probes in); closed when the last lookup using it lets go
    (a lookup in another thread may still read the one just replaced)."""

    __slots__ = ("fd", "ident", "probes")

    def __init__(self, fd: int, ident: tuple):
        self.fd = fd
        self.ident = ident
        self.probes: dict[int, tuple[int, bytes | None]] = {}

    def __del__(self) -> None:
        os.close(self.fd)

def _identity(st: os.stat_result) -> tuple:
    """What says "the same file, unchanged, with the same mode" (size third: the search's end)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _search_block(fd: int, low: int, high: int, target: bytes) -> tuple[int, bytes, int]:
    """The end of the binary search, from one read: the first line starting at or after `low`
    whose key is >= target (the search ensured that the line at or after `high` has such
    a key, or that there is none: the end of the file)."""
    at = low - 1 if low > 0 else 0
    block = os.pread(fd, high - at + _PROBE_BYTES, at)
    i = 0
    if low > 0:  # the first line starting at or after `low` follows the newline at or after low-1
        while (newline := block.find(b"\n")) < 0:
            more = os.pread(fd, max(_PROBE_BYTES, len(block)), at + len(block))
            if not more:
                return at + len(block), b"", at + len(block)
            block += more
        i = newline + 1
    while True:
        newline = block.find(b"\n", i)
        if newline < 0:
            more = os.pread(fd, max(_PROBE_BYTES, len(block) - i), at + len(block))
            if more:
                block += more  # a line longer than what was read: read on
                continue
            if i < len(block) and _line_key(block[i:]) >= target:
                return at + i, block, at  # the last line, without its newline
            return at + len(block), b"", at + len(block)
        if _line_key(block[i:newline + 1]) >= target:
            return at + i, block, at
        i = newline + 1


def _lines_from(fd: int, start: int, block: bytes, block_at: int) -> Iterator[bytes]:
    """The file's lines from offset `start` on, the bytes of `block` (the file's from
    `block_at`) first, then read as far as the caller iterates."""
    i = start - block_at
    if not 0 <= i <= len(block):
        block, block_at, i = b"", start, 0
    while True:
        newline = block.find(b"\n", i)
        if newline >= 0:
            yield block[i:newline + 1]
            i = newline + 1
            continue
        more = os.pread(fd, max(_PROBE_BYTES, len(block) - i), block_at + len(block))
        if not more:
            if i < len(block):
                yield block[i:]
            return
        block, block_at, i = block[i:] + more, block_at + i, 0


_PROBE_BYTES = 4096


def _probe(fd: int, size: int, position: int) -> tuple[int, bytes | None]:
    """(start, key) of the first line beginning at or after `position`; key None past the
    last line. Reads with `os.pread`, so no file position is used; one read finds both
    the line's start and, unless the line is long, its key."""
    start, line = 0, b""
    if position > 0:
        at = position - 1
        while True:
            block = os.pread(fd, _PROBE_BYTES, at)
            if not block:
                return size, None
            newline = block.find(b"\n")
            if newline >= 0:
                start, line = at + newline + 1, block[newline + 1:]
                break
            at += len(block)
    if start >= size:
        return size, None
    while (newline := line.find(b"\n")) < 0:
        block = os.pread(fd, _PROBE_BYTES, start + len(line))
        if not block:
            break
        line += block
    if newline >= 0:
        line = line[: newline + 1]
    return start, _line_key(line) if line else None


def _line_key(raw: bytes) -> bytes:
    return raw.rstrip(b"\r\n").split(b" ", 1)[0]
