"""Choosing the best capture among a URL's index rows (docs/statuses.md).

Why: a URL usually has several captures (errors, redirects, revisits, the
same file again); the ingest fetches only one, the best by a fixed order, so
that results are reproducible and the same whichever client served the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.archive.model import CdxRow

GOOD_STATUS = frozenset({200, 226})


def capture_rank(row: CdxRow, wanted_mimetype: str) -> tuple:
    """Sort key, larger is better, in the order of docs/statuses.md: good status, lower status code, wanted
    mimetype, not a revisit, newest year-month, a real WARC path, full timestamp.

    A row without a status (revisit rows may have none) ranks below every
    status code in the "lower status code" criterion.
    """
    status = row.status_code
    return (
        status in GOOD_STATUS,
        -status if status is not None else -10_000,
        row.mimetype == wanted_mimetype,
        not row.is_revisit,
        row.datetime[:6],
        has_warc_path(row),
        row.datetime,
    )


def best_capture(rows: Sequence[CdxRow], wanted_mimetype: str) -> CdxRow | None:
    """The best row, or None for no rows. Ties keep the first row given (stable)."""
    best = None
    best_key = None
    for row in rows:
        key = capture_rank(row, wanted_mimetype)
        if best_key is None or key > best_key:
            best, best_key = row, key
    return best


def has_warc_path(row: CdxRow) -> bool:
    """A row whose record can be read: not the "-" or empty path of an index-only row."""
    return row.warc_path.strip() not in ("", "-")
