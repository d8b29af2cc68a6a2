"""Reading and atomically writing the JSON-lines files every step exchanges.

Why this module exists: the runbook lost data in three ways this code rules out.
A half-written `.json.gz` from a killed job looked like a finished one (we
write to a temporary name and rename only after the file is closed and
checked); a line that was not JSON vanished in a `jq` error (we hand it back
as a `BadLine`, `pipeline.jsonline`, so the step can write it to a rejects file with its line
number); and a truncated gzip ended a loop early without a word (we raise
`InputError` naming the file).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from isal import igzip_threaded

from pipeline.errors import OperatorError
from pipeline.jsonline import BadLine, parse_object
from pipeline.tempnames import temp_name

GZIP_MAGIC = b"\x1f\x8b"
# A catalog entity or ingest result is a few KB; a longer line is damage (a missing newline,
# a binary file, a gzip bomb), and is rejected without ever being held whole in memory.
MAX_LINE_BYTES = 16 * 1024 * 1024
class InputError(OperatorError):
    """An input file cannot be read to its end (truncated gzip, missing file...)."""


def is_gzip(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def _open_binary(path: str) -> IO[bytes]:
    """Plain or gzip bytes by content; gzip is inflated by isal in a thread of its own."""
    if is_gzip(path):
        return igzip_threaded.open(path, "rb", threads=1)
    return open(path, "rb")


def _nonblank(raw: bytes) -> bool:
    """str.strip()'s idea of a blank line (Unicode whitespace too), decided on the bytes."""
    return raw[:1] == b"{" or raw.decode("utf-8").strip() != ""


def iter_raw_lines(path: str | os.PathLike) -> Iterator[tuple[int, bytes | BadLine]]:
    """Yield (1-based line number, line as UTF-8 bytes without its newline); blank lines skipped.

    Why bytes: a step that can decide on a line's bytes (a byte pre-check, a
    decoder of bytes) skips decoding it to text. Lines end at `\n`, trailing
    `\r`s are dropped, and every block is checked to be UTF-8. A line that is
    not UTF-8, or longer than `MAX_LINE_BYTES`, comes back as a `BadLine`
    (`invalid-utf8`, `line-too-long`) for the step to reject by itself
    (`parse_object` and `decode_fields` pass it on): one damaged line must not
    fail a million good ones, and an endless line (a gzip bomb) is never held
    whole. A truncated or corrupt gzip or a missing file raise `InputError`
    naming the file and the last line read.
    """
    for n, block in iter_raw_blocks(path):
        if isinstance(block, BadLine):
            yield block.line, block
        else:
            yield from block_lines(block, n)


def iter_raw_blocks(path: str | os.PathLike) -> Iterator[tuple[int, bytes | BadLine]]:
    """The file as blocks of whole lines: (lines before the block, the block without its last
    newline); `block_lines(block, n)` gives its lines exactly as `iter_raw_lines` does.

    Why: a step that can decide on a whole block at once (`pipeline.jsonfast.decode_block`)
    spends no Python work per line. An over-long line that spans reads comes as
    (its number, its `BadLine`); errors are those of `iter_raw_lines`.
    """
    path = os.fspath(path)
    n = 0
    try:
        with _open_binary(path) as f:
            carry = b""
            skipped = 0  # bytes of an over-long line seen so far (0: not in one)
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                cut = block.rfind(b"\n")
                if skipped:
                    first = block.find(b"\n")
                    if first < 0:
                        skipped += len(block)
                        continue
                    n += 1
                    yield n, _too_long(n, carry, skipped + first)
                    carry, skipped = b"", 0
                    block = block[first + 1:]
                    cut = block.rfind(b"\n")
                if cut < 0:
                    carry += block
                    if len(carry) > MAX_LINE_BYTES:
                        carry, skipped = carry[:200], len(carry)
                    continue
                chunk = carry + block[:cut]
                carry = block[cut + 1:]
                yield n, chunk
                n += chunk.count(b"\n") + 1
            if skipped:
                yield n + 1, _too_long(n + 1, carry, skipped)
            elif carry:
                yield n, carry
    except FileNotFoundError as e:
        raise InputError(f"{path}: file not found") from e
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as e:
        raise InputError(f"{path}: unreadable or truncated input after line {n} "
                         f"({type(e).__name__}: {e})") from e


def block_lines(chunk: bytes, n: int) -> Iterator[tuple[int, bytes | BadLine]]:
    """The non-blank lines of a block of whole lines, numbered after line `n`."""
    try:
        chunk.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False  # some line of the block is not UTF-8: check them one by one
    for raw in chunk.split(b"\n"):
        n += 1
        if len(raw) > MAX_LINE_BYTES:
            yield n, _too_long(n, raw[:200], len(raw))
            continue
        if raw[-1:] == b"\r":
            raw = raw.rstrip(b"\r")
        if not valid:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield n, BadLine(n, raw.decode("utf-8", "backslashreplace"), "invalid-utf8",
                                 f"byte 0x{raw[e.start]:02x} at byte {e.start + 1} of the line "
                                 "is not UTF-8")
                continue
        if raw and _nonblank(raw):
            yield n, raw


def _too_long(n: int, head: bytes, size: int) -> BadLine:
    return BadLine(n, head[:200].decode("utf-8", "backslashreplace") + "...", "line-too-long",
                   f"{size} bytes; a line may hold at most {MAX_LINE_BYTES}")


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, str | BadLine]]:
    """Yield (1-based line number, line without its newline); blank lines are skipped.

    Lines that are not UTF-8 or too long come back as `BadLine`s (see
    `iter_raw_lines`). A truncated or corrupt gzip raises `InputError` naming
    the file, so a step fails loudly instead of publishing a silently short output.
    """
    for n, raw in iter_raw_lines(path):
        yield n, raw if isinstance(raw, BadLine) else raw.decode("utf-8")


def iter_objects(path: str | os.PathLike) -> Iterator[tuple[int, dict | BadLine]]:
    """Yield (line number, dict or BadLine) for every non-blank line of a JSON-lines file."""
    for n, line in iter_lines(path):
        yield n, parse_object(n, line)


def dumps(obj: Any) -> str:
    """The one serialisation of a record: sorted keys, compact, UTF-8 kept as is.

    NaN and Infinity raise `ValueError` instead of being written as the bare
    words `NaN`/`Infinity`, which are not JSON: every reader after us would
    refuse the line. The decoders refuse `NaN` and `Infinity`; a number beyond
    a double's range (`1e999`, valid JSON) still parses as `inf`, so a step
    that writes a parsed value checks it first (`pipeline.records.drop_reason`,
    `pipeline.catalog.export.load_export`), or writes the line's own text.
    """
    return json.dumps(obj, sort_keys=True, separators=(", ", ": "), ensure_ascii=False,
                      allow_nan=False)


def reject_record(reason: str, line: int, source: str, record: Any = None, raw: str | None = None) -> dict:
    """A rejects line as docs/data.md shapes it: the parsed record, or the raw text."""
    out: dict[str, Any] = {"reason": reason, "line": line, "source": source}
    if raw is not None:
        out["raw"] = raw
    else:
        out["record"] = record
    return out


def reject_text(reason: str, line: int, source: str, record_json: str, detail: str | None = None) -> str:
    """`dumps(reject_record(...))` with the record given as the JSON text it was read as
    (known to parse): embedded as is, neither parsed nor serialised again. Why: the text
    is what the input held, and a parsed value that cannot be written back as JSON (`1e999`
    parses as `inf`) never has to be."""
    head = f'{{"detail": {dumps(detail)}, ' if detail is not None else "{"
    return (f'{head}"line": {line}, "reason": {dumps(reason)}, "record": {record_json}, '
            f'"source": {dumps(source)}}}')


def reject_bad_line(bad: BadLine, source: str) -> dict:
    """The rejects line of an unparseable input line (reason, plus the parser's detail)."""
    return reject_record(bad.reason, bad.line, source, raw=bad.raw) | {"detail": bad.detail}


def joined_lines(lines: list[bytes]) -> bytes:
    """Whole lines joined, each with its newline: what `AtomicWriter.write_joined` takes."""
    return b"\n".join(lines) + b"\n" if lines else b""


class AtomicWriter:
    """Write lines to `<path>.tmp-<host>-<pid>-<start>` and rename onto `path` only on `commit()`.

    Gzip when the path ends in `.gz`: isal compresses in a thread of its own
    (igzip_threaded), fed 1 MiB chunks of whole lines, so the compressed
    bytes depend only on the content (no name, mtime 0: the same lines give
    the same file on every run and machine, and a remade target is recognised
    as unchanged). Closing without `commit()` (an exception, a kill) removes
    the temporary file, so the final path either holds a complete, checked
    file or nothing.
    """

    CHUNK = 1 << 20

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.tmp = Path(temp_name(self.path))
        self.lines = 0
        self._f: IO[bytes] | None = None
        self._raw: IO[bytes] | None = None
        self._buf: list[bytes] = []
        self._pending = 0

    def __enter__(self) -> AtomicWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp, "wb")
        if self.path.name.endswith(".gz"):
            self._f = igzip_threaded.open(self._raw, "wb", threads=1)
        else:
            self._f = self._raw
        return self

    def write_raw(self, line: bytes) -> None:
        """One line given as UTF-8 bytes without its newline (kept byte for byte)."""
        self._buf.append(line)
        self.lines += 1
        self._pending += len(line) + 1
        if self._pending >= self.CHUNK:
            self._flush()

    def write_joined(self, data: bytes, lines: int) -> None:
        """`lines` whole lines given joined, each with its newline (a block a worker process
        filtered: one object to pass back instead of a list). The chunks the compressor gets
        end at these blocks' ends, not at the line that fills a chunk: the same lines give
        the same file again, not the bytes `write_raw` would."""
        if not lines:
            return
        self._flush()
        self._f.write(data)
        self.lines += lines

    def write_line(self, text: str) -> None:
        self.write_raw(text.encode("utf-8"))

    def write_obj(self, obj: Any) -> None:
        self.write_raw(dumps(obj).encode("utf-8"))

    def _flush(self) -> None:
        if self._buf:
            self._buf.append(b"")
            self._f.write(b"\n".join(self._buf))
            self._buf = []
            self._pending = 0

    def _close(self, flush: bool) -> None:
        try:
            if flush and self._f is not None:
                self._flush()
        finally:
            if self._f is not None and self._f is not self._raw:
                self._f.close()
            self._f = None
            if self._raw is not None:
                if flush:
                    self._raw.flush()
                    os.fsync(self._raw.fileno())
                self._raw.close()
                self._raw = None

    def commit(self) -> None:
        self._close(flush=True)
        os.replace(self.tmp, self.path)

    def __exit__(self, exc_type, exc, tb) -> None:
        """Discard what was not committed. Nothing here may raise over the error that got us
        here: closing the compressor writes its last buffered bytes, which a full disk refuses
        again, and that second error would hide the first (and leave the file behind)."""
        try:
            self._close(flush=False)
        except OSError:
            for f in (self._f, self._raw):
                if f is not None:
                    with contextlib.suppress(OSError, ValueError):
                        f.close()
            self._f = self._raw = None
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write one pretty JSON document (counters, reports, sidecars)."""
    write_text(path, json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Temporary name, then rename: a reader never sees half a document."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_name(path))
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def count_lines(path: str | os.PathLike) -> int:
    """Non-blank lines of a plain or gzip JSON-lines file."""
    return sum(1 for _ in iter_raw_lines(path))
