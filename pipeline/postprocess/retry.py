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

A retry that GROBID did not answer (no connection, a timeout) or answered "not
now" (HTTP 502, 503, 504) fixes nothing: publishing that pass as done is how a
whole GROBID outage used to end green, with nothing left to retry it. Such PDFs
are asked again in two more passes (a busy GROBID frees up); when some are still
unanswered the step publishes no output and fails with how many PDFs still have
errors, so it stays incomplete and its next run retries them all. Any other error is
GROBID's own answer for that PDF (4xx, 500, an unusable TEI): final, counted,
and the run report calls the run partial (docs/sinks.md, "GrobidRetry").
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterable, Iterator

from pipeline.archive.model import ArchiveError, CdxRow, ContentClient
from pipeline.checks import StepFailed
from pipeline.ingest.filemeta import BadGzipEncoding, GzipTooLarge, undo_transfer_gzip
from pipeline.jsonio import AtomicWriter, iter_objects
from pipeline.jsonline import BadLine
from pipeline.ordered_pool import run_ordered
from pipeline.postprocess.grobid import (
    CONNECT_STATUS_CODE,
    ERROR_STATUSES,
    TIMEOUT_STATUS_CODE,
    GrobidPostProcessor,
)
from pipeline.sinks.base import Sink

# GROBID did not answer, or said to come back later: a rerun can fix these
UNAVAILABLE_CODES = frozenset({CONNECT_STATUS_CODE, TIMEOUT_STATUS_CODE, 502, 503, 504})
ROUNDS = 3  # passes over the PDFs GROBID did not answer, in one run of the step
ROUND_WAIT = 2.0  # seconds before the second pass (doubled before each later one)
HOLD_MAX = 10_000  # PDFs kept for a next pass (a whole outage must not fill memory)


class GrobidStillUnavailable(StepFailed):
    """The retry pass ended with PDFs that GROBID did not answer: nothing was published."""


def grobid_unavailable(grobid: dict) -> bool:
    """Whether a `grobid` sub-result is an error GROBID's availability caused (not the PDF)."""
    return grobid.get("status") in ERROR_STATUSES and (
        grobid.get("status") == "error-timeout" or grobid.get("status_code") in UNAVAILABLE_CODES)


def count_failures(paths: Iterable[str]) -> int:
    """How many distinct PDFs of `paths` wait for a GROBID retry."""
    return sum(1 for _ in grobid_failures(paths))


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
        line["file_meta"] = result["file_meta"]  # for the message; kept for a next round
        line["grobid"] = self.grobid.process(body, line)  # queues the message on `line`
        line["status"] = line["grobid"]["status"]
        return line


def retry_grobid(paths: Iterable[str], out_path: str, content: ContentClient,
                 grobid: GrobidPostProcessor, sink: Sink, max_bytes: int,
                 concurrency: int = 4, rounds: int = ROUNDS, round_wait: float = ROUND_WAIT) -> dict:
    """Retry every GROBID failure of `paths`; write one line per PDF; publish; return counts.

    Lines are written (and messages published) in the order the failures were
    found, a bounded window at a time; a PDF GROBID did not answer is asked
    again in up to `rounds` passes (`round_wait` s before the second, doubling),
    as a busy GROBID frees up, and written after the others. The output is
    committed only after `sink.close()` confirmed every message, and only when
    GROBID answered every PDF (else `GrobidStillUnavailable`).
    """
    counts: Counter = Counter()
    unanswered: Counter = Counter()  # status_code -> PDFs GROBID did not answer in any round
    retrier = _Retrier(content, grobid, max_bytes)
    with AtomicWriter(out_path) as out:
        pending: Iterable[dict] = (result for _, result in grobid_failures(paths))
        for n in range(rounds):
            held: list[dict] = []
            last = n == rounds - 1

            def write(line: dict, held: list = held, last: bool = last) -> None:
                file_meta = line.pop("file_meta", None)
                again = line["status"] in ERROR_STATUSES and grobid_unavailable(line["grobid"])
                if again and not last and len(held) < HOLD_MAX:
                    held.append({"file_meta": file_meta, "cdx": line["cdx"], "grobid": line["previous"]})
                    return
                if again:
                    unanswered[line["grobid"].get("status_code")] += 1
                sink.publish_result(line)
                out.write_obj(line)
                counts[line["status"]] += 1
                counts["total"] += 1

            run_ordered(pending, retrier.process, write, concurrency, "grobid-retry")
            if not held:
                break
            time.sleep(round_wait * 2 ** n)
            pending = held
        published = sink.close()
        if unanswered:  # leaves the output unpublished: the next run retries every PDF again
            raise GrobidStillUnavailable(still_failing(counts, unanswered, grobid.client.host))
        out.commit()
    total = counts.pop("total", 0)
    return {"total": total, "status": dict(sorted(counts.items())), "messages": published}


def still_failing(counts: dict, unanswered: Counter, host: str) -> str:
    """The one line saying how many PDFs still have GROBID errors, and what to do."""
    left = counts.get("total", 0) - counts.get("success", 0)
    words = {TIMEOUT_STATUS_CODE: "timed out", CONNECT_STATUS_CODE: "no connection"}
    why = ", ".join(f"{words.get(code, f'HTTP {code}')}: {n}" for code, n in unanswered.most_common())
    return (f"{left} of {counts.get('total', 0)} PDFs still have GROBID errors; GROBID at {host} "
            f"did not answer {sum(unanswered.values())} of them ({why}). Nothing was published as "
            "retried: when GROBID answers again, rerun Backfill (or GrobidRetry)")
