"""Reading and atomically writing the JSON-lines files every step exchanges.

Why this module exists: the runbook lost data in three ways this code rules out.
A half-written `.json.gz` from a killed job looked like a finished one (we
write to a temporary name and rename only after the file is closed and
checked); a line that was not JSON vanished in a `jq` error (we hand it back
as a `BadLine` so the step can write it to a rejects file with its line
number); and a truncated gzip ended a loop early without a word (we raise
`InputError` naming the file).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from isal import igzip

GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """An input file cannot be read to its end (truncated gzip, missing file...)."""


@dataclass(frozen=True)
class BadLine:
    """A line that is not a JSON object: kept with its reason for the rejects file."""

    line: int
    raw: str
    reason: str  # short and countable: invalid-json | not-an-object
    detail: str = ""


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open plain or gzip text by content (not by file name: exports come both ways)."""
    if is_gzip(path):
        return igzip.open(path, "rt", encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its newline); blank lines are skipped.

    A truncated or corrupt gzip raises `InputError` naming the file, so a
    step fails loudly instead of publishing a silently short output.
    """
    path = os.fspath(path)
    try:
        with open_text(path) as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n").rstrip("\r")
                if line.strip():
                    yield n, line
    except FileNotFoundError as e:
        raise InputError(f"{path}: file not found") from e
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: unreadable or truncated input ({type(e).__name__}: {e})") from e
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e})") from e


def parse_object(n: int, line: str) -> dict | BadLine:
    """Parse one line; anything but a JSON object comes back as a `BadLine`."""
    try:
        obj = json.loads(line)
    except ValueError as e:
        return BadLine(n, line, "invalid-json", str(e))
    if not isinstance(obj, dict):
        return BadLine(n, line, "not-an-object", f"a JSON {type(obj).__name__}")
    return obj


def iter_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict | BadLine]]:
    """Yield (line number, dict or BadLine) for every non-blank line of a JSON-lines file."""
    for n, line in iter_lines(path):
        yield n, parse_object(n, line)


def dumps(obj: Any) -> str:
    """The one serialisation of a record: sorted keys, compact, UTF-8 kept as is."""
    return json.dumps(obj, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def reject_record(reason: str, line: int, source: str, record: Any = None, raw: str | None = None) -> dict:
    """A rejects line as SPEC §6 shapes it: the parsed record, or the raw text."""
    out: dict[str, Any] = {"reason": reason, "line": line, "source": source}
    if raw is not None:
        out["raw"] = raw
    else:
        out["record"] = record
    return out


def reject_bad_line(bad: BadLine, source: str) -> dict:
    """The rejects line of an unparseable input line (reason, plus the parser's detail)."""
    return reject_record(bad.reason, bad.line, source, raw=bad.raw) | {"detail": bad.detail}


class AtomicWriter:
    """Write lines to `<path>.tmp-<pid>` and rename onto `path` only on `commit()`.

    Gzip when the path ends in `.gz` (isal's igzip: same format, several
    times faster than zlib at the default level). Closing without `commit()`
    (an exception, a kill) removes the temporary file, so the final path
    either holds a complete, checked file or nothing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.tmp = self.path.with_name(f"{self.path.name}.tmp-{os.getpid()}")
        self.lines = 0
        self._f: IO[str] | None = None

    def __enter__(self) -> AtomicWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.name.endswith(".gz"):
            # no name and mtime 0 in the header (like `gzip -n`): the same content gives the
            # same bytes on every run, so a remade target can be recognised as unchanged
            raw = open(self.tmp, "wb")
            self._raw = raw
            self._f = igzip.IGzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
            self._f = _TextOverBinary(self._f)
        else:
            self._raw = None
            self._f = open(self.tmp, "w", encoding="utf-8", newline="\n")
        return self

    def write_line(self, text: str) -> None:
        self._f.write(text + "\n")
        self.lines += 1

    def write_obj(self, obj: Any) -> None:
        self.write_line(dumps(obj))

    def _close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
        if self._raw is not None:
            self._raw.flush()
            os.fsync(self._raw.fileno())
            self._raw.close()
            self._raw = None

    def commit(self) -> None:
        self._close()
        os.replace(self.tmp, self.path)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._close()
        if self.tmp.exists():
            self.tmp.unlink()


class _TextOverBinary:
    """Minimal UTF-8 text face over a binary gzip stream (faster than TextIOWrapper here)."""

    def __init__(self, binary):
        self._b = binary

    def write(self, s: str) -> None:
        self._b.write(s.encode("utf-8"))

    def close(self) -> None:
        self._b.close()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write one pretty JSON document (counters, reports, sidecars)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, sort_keys=True, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def count_lines(path: str | os.PathLike) -> int:
    """Non-blank lines of a plain or gzip JSON-lines file."""
    return sum(1 for _ in iter_lines(path))
