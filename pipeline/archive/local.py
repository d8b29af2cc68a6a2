"""The embedded archive: a pywb-layout collection directory read without any server.

    <collection>/archive/*.warc.gz     the WARC files (index rows name them relative to here)
    <collection>/indexes/*.cdxj        pywb CDXJ, sorted by SURT key
    <collection>/indexes/*.cdx         classic 11-field CDX, sorted likewise

This is the default archive of the pipeline and the reference the HTTP
clients are tested against: the same rows and captures must come back over
pywb serving this very directory.

A file of the collection that exists but cannot be read (permission denied,
an I/O error, a directory in its place) is `ArchiveUnreadable`: the shard
stops, naming the file, instead of giving every request that needs it a
final `wayback-error` that no rerun would retry.
"""

from __future__ import annotations

import errno
import glob
import os
from contextlib import contextmanager

from pipeline.archive.model import ArchiveUnreadable, CdxError, CdxRow, WaybackError
from pipeline.archive.rows import lookup_key, matches_url, newest_first, parse_index_line
from pipeline.archive.sortedindex import SortedIndex, UnsortedIndex, verify_sorted
from pipeline.archive.warcclient import WarcContentClient


class LocalCdxClient:
    """Exact-URL lookups over every index file of a collection, by binary search.

    Index files are listed, and verified sorted (`verify_sorted`: an unsorted
    file is a `CdxError` naming file and line), when the client is built.
    Safe to share between threads.
    """

    def __init__(self, collection: str, index_check_cache: str | None = None):
        self.collection = collection
        index_dir = os.path.join(collection, "indexes")
        if not os.path.isdir(index_dir):
            raise CdxError(f"not a collection (no indexes/ directory): {collection}")
        paths = sorted(glob.glob(os.path.join(index_dir, "*.cdxj")) +
                       glob.glob(os.path.join(index_dir, "*.cdx")))
        if not paths:
            raise CdxError(f"no *.cdxj or *.cdx index in {index_dir}")
        for path in paths:
            try:
                verify_sorted(path, index_check_cache)
            except UnsortedIndex as exc:
                raise CdxError(str(exc)) from None
            except OSError as exc:
                raise CdxError(f"cannot read index {path}: {exc}") from exc
        self.indexes = [SortedIndex(path) for path in paths]

    def lookup(self, url: str, limit: int = 25) -> list[CdxRow]:
        """The newest `limit` rows for exactly `url`, newest first; [] when none.

        Raises CdxError when a line of this URL's key is broken (a damaged
        index must not look like a miss), ArchiveUnreadable when an index file
        cannot be read.
        """
        key = lookup_key(url, limit)
        rows: list[CdxRow] = []
        for index in self.indexes:
            try:
                lines = list(index.lines_for(key))
            except OSError as exc:
                raise unreadable("index", index.path, exc) from exc
            for line in lines:
                row = parse_index_line(line, cdxj=index.cdxj)
                if matches_url(row, key, url):
                    rows.append(row)
        return newest_first(rows, limit)


class LocalContentClient(WarcContentClient):
    """Reads records straight from the collection's `archive/` directory."""

    whole_records = True  # every failing disk read is ArchiveUnreadable (`_DiskReads`)

    def __init__(self, collection: str, cdx: LocalCdxClient | None = None):
        super().__init__(cdx or LocalCdxClient(collection))
        self.archive_dir = os.path.join(collection, "archive")

    @contextmanager
    def open_row(self, row: CdxRow):
        path = self._warc_file(row.warc_path)
        try:
            handle = open(path, "rb")
        except FileNotFoundError as exc:
            if not os.path.isdir(self.archive_dir):  # the whole archive gone: a lost mount
                raise unreadable("directory", self.archive_dir, exc) from exc
            raise WaybackError(f"cannot open WARC {row.warc_path}: {exc.strerror}") from exc
        except OSError as exc:
            raise unreadable("WARC", path, exc) from exc
        with handle:
            reads = _DiskReads(handle, path)
            reads.seek(row.warc_offset)
            yield reads

    def _warc_file(self, warc_path: str) -> str:
        """The WARC's path; index rows may not point outside the archive directory."""
        parts = warc_path.replace("\\", "/").split("/")
        if os.path.isabs(warc_path) or ".." in parts:
            raise WaybackError(f"WARC path escapes the collection: {warc_path!r}")
        return os.path.join(self.archive_dir, *parts)


def unreadable(kind: str, path: str, exc: OSError) -> ArchiveUnreadable:
    """The one-line failure naming the file and what the system said."""
    why = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc)
    return ArchiveUnreadable(f"local archive {kind} {path} cannot be read: {why}; fix the file "
                             "(permissions, disk) and rerun: no request got a status for it")


class _DiskReads:
    """read/readline of a WARC file (what the record parser uses), a failing disk read made
    ArchiveUnreadable so the parser does not take it for a damaged record."""

    def __init__(self, handle, path: str):
        self.handle = handle
        self.path = path

    def seek(self, offset: int) -> None:
        try:
            self.handle.seek(offset)
        except OSError as exc:
            raise unreadable("WARC", self.path, exc) from exc

    def read(self, length=-1):
        try:
            return self.handle.read(length)
        except OSError as exc:
            raise unreadable("WARC", self.path, exc) from exc

    def readline(self, length=-1):
        try:
            return self.handle.readline(length)
        except OSError as exc:
            raise unreadable("WARC", self.path, exc) from exc


def open_local(collection: str,
               index_check_cache: str | None = None) -> tuple[LocalCdxClient, LocalContentClient]:
    cdx = LocalCdxClient(collection, index_check_cache)
    return cdx, LocalContentClient(collection, cdx)
