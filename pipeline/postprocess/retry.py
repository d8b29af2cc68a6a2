"""Re-sending the PDFs whose GROBID call failed, once GROBID is healthy again.

Why: GROBID fails in bursts (busy, restarted, timeouts under load) and the
runbook re-ran those PDFs by hand. A failed GROBID call never fails an ingest
(docs/statuses.md), so the failures sit in the shard results with a `grobid.status`
of `error` or `error-timeout`; this collects them from every shard (once per
sha1hex), fetches each PDF's bytes from the archive again by the result's
`cdx` row, checks they are the same file, sends them to GROBID and publishes
the outcome to the sinks (keyed by sha1hex: a compacted topic then holds the
retried outcome). Each retried PDF gets one line in the output:
`{"sha1hex", "cdx", "previous": <old grobid>, "grobid": <new grobid>}` (or
`"status": "fetch-error" | "sha1-mismatch"` with an `error_msg` when its bytes
could not be had again).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator

from pipeline.archive.model import ArchiveError, CdxRow, ContentClient
from pipeline.ingest.filemeta import BadGzipEncoding, GzipTooLarge, undo_transfer_gzip
from pipeline.jsonio import AtomicWriter, BadLine, iter_objects
from pipeline.ordered_pool import run_ordered
from pipeline.postprocess.grobid import ERROR_STATUSES, GrobidPostProcessor
from pipeline.sinks.base import Sink


def grobid_failures(paths: Iterable[str]) -> Iterator[tuple[str, dict]]:
    """(path, result) of each successful ingest whose GROBID status is an error, once per sha1."""
    seen: set[str] = set()
    for path in paths:
        for _, obj in iter_objects(path):
            if isinstance(obj, BadLine) or obj.get("status") != "success":
                continue
            grobid = obj.get("grobid") or {}
            sha1 = (obj.get("file_meta") or {}).get("sha1hex")
            if grobid.get("status") in ERROR_STATUSES and sha1 and obj.get("cdx") and sha1 not in seen:
                seen.add(sha1)
                yield path, obj


def refetch(content: ContentClient, result: dict, max_bytes: int) -> bytes:
    """The PDF's bytes again, from the capture its result names; ValueError when they differ."""
    row = CdxRow(**result["cdx"])
    capture = content.fetch(row, max_bytes)
    if capture.body_truncated:
        raise ValueError(f"body of {row.url} ({row.datetime}) is larger than {max_bytes} bytes")
    body = undo_transfer_gzip(capture.body, capture.mimetype or row.mimetype, max_bytes)
    want = result["file_meta"]["sha1hex"]
    got = hashlib.sha1(body).hexdigest()
    if got != want:
        raise LookupError(f"capture {row.url} ({row.datetime}) now has sha1 {got}, not {want}")
    return body


class _Retrier:
    """Retries one failed result (`process` runs on the ordered pool's threads)."""

    def __init__(self, content: ContentClient, grobid: GrobidPostProcessor, max_bytes: int):
        self.content = content
        self.grobid = grobid
        self.max_bytes = max_bytes

    def process(self, result: dict) -> dict:
        line = {"sha1hex": result["file_meta"]["sha1hex"], "cdx": result["cdx"],
                "previous": result["grobid"]}
        try:
            body = refetch(self.content, result, self.max_bytes)
        except LookupError as e:
            return line | {"status": "sha1-mismatch", "error_msg": str(e)}
        except (ArchiveError, ValueError, BadGzipEncoding, GzipTooLarge, TypeError) as e:
            return line | {"status": "fetch-error", "error_msg": f"{type(e).__name__}: {e}"}
        line["file_meta"] = result["file_meta"]
        line["grobid"] = self.grobid.process(body, line)  # queues the message on `line`
        del line["file_meta"]
        line["status"] = line["grobid"]["status"]
        return line


def retry_grobid(paths: Iterable[str], out_path: str, content: ContentClient,
                 grobid: GrobidPostProcessor, sink: Sink, max_bytes: int,
                 concurrency: int = 4) -> dict:
    """Retry every GROBID failure of `paths`; write one line per PDF; publish; return counts.

    Lines are written (and messages published) in the order the failures were
    found, a bounded window at a time; the output is committed only after
    `sink.close()` confirmed every message.
    """
    statuses: Counter = Counter()
    with AtomicWriter(out_path) as out:
        def write(line: dict) -> None:
            sink.publish_result(line)
            out.write_obj(line)
            statuses[line["status"]] += 1

        failures = (result for _, result in grobid_failures(paths))
        run_ordered(failures, _Retrier(content, grobid, max_bytes).process, write, concurrency,
                    "grobid-retry")
        published = sink.close()
        out.commit()
    return {"total": statuses.total(), "status": dict(sorted(statuses.items())),
            "messages": published}
