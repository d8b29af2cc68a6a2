"""The second pass: ingest again every request whose status said "the archive failed", not
"this is what the archive holds".

Why: the runbook's shards met 5xx bursts, 429s and outages; a request that met
one got `cdx-error` / `wayback-error` (or `error`, a bug seen once) and nothing
ever asked again. Those statuses are transient: asking later, with patient
settings, gives the answer the archive really has. Every other status is the
archive's answer and is kept. The pass writes one line per retried request,
`{"source": <shard file name>, "line": <its line there>, "previous_status",
"status", "result": <the new result>}`, in shard order; the merge takes each
request's latest result from it (`latest_results`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Iterator

from pipeline.ingest.shard import run_shard
from pipeline.jsonfast import decode_fields, struct_decoder
from pipeline.jsonio import AtomicWriter, dumps, iter_objects, iter_raw_lines
from pipeline.jsonline import BadLine
from pipeline.progress import Progress

# statuses that say the archive failed to answer, not what it holds (docs/statuses.md)
TRANSIENT_STATUSES = ("cdx-error", "wayback-error", "error")
# every line of every shard is read for its status: only these two are built (as the merge
# does, pipeline/jsonfast.py); cdx, file_meta and the rest are validated, not built
_FIELDS = ("status", "request")
_DECODER = struct_decoder("ResultStatusRequest", _FIELDS)


def transient_results(paths: Iterable[str], before: Counter) -> Iterator[dict]:
    """One item per result of `paths` whose status is transient; counts every status into
    `before` (the histogram the report shows next to the one after the pass)."""
    for path in paths:
        source = os.path.basename(path)
        for n, raw in iter_raw_lines(path):
            obj = decode_fields(_DECODER, _FIELDS, n, raw)
            if isinstance(obj, BadLine):
                continue  # the merge rejects it with its reason
            status = obj.get("status")
            before[str(status)] += 1
            if status in TRANSIENT_STATUSES and isinstance(obj.get("request"), dict):
                yield {"source": source, "line": n, "previous_status": status,
                       "request": obj["request"]}


class _Again:
    """The ingest worker, run on one retried request (`run_shard` runs it on its threads or forked processes)."""

    def __init__(self, worker):
        self.worker = worker

    def process(self, item: dict) -> dict:
        result = self.worker.process(item["request"])
        return {"source": item["source"], "line": item["line"],
                "previous_status": item["previous_status"], "status": result["status"],
                "result": result}


def retry_transient(paths: list[str], out_path: str, worker, concurrency: int,
                    progress: Progress | None = None, processes: bool = False) -> dict:
    """Ingest again every transient result of `paths`; write one line each (atomically).

    Returns the counts: `in`/`out` (requests retried), `previous` and `status`
    (their statuses before and after), and `before`/`after`: the status
    histogram of all the results with and without this pass. `processes`: as `run_shard`.
    """
    before: Counter = Counter()
    previous: Counter = Counter()
    with AtomicWriter(out_path) as out:
        def write(line: dict) -> None:
            previous[line["previous_status"]] += 1
            out.write_obj(line)
            if progress is not None:
                progress.update(status=line["status"])

        counts = run_shard(transient_results(paths, before), _Again(worker), write, concurrency,
                           processes)
        out.commit()
    total = counts.pop("total", 0)
    after = before - previous + Counter(counts)
    return {"in": total, "out": total, "previous": dict(sorted(previous.items())),
            "status": dict(sorted(counts.items())), "recovered": total - sum(
                n for s, n in counts.items() if s in TRANSIENT_STATUSES),
            "before": dict(sorted(before.items())), "after": dict(sorted(after.items()))}


def latest_results(retry_path: str | None) -> dict[str, dict[int, bytes]]:
    """{shard file name: {line: the retried result, as a JSON line}}: what replaces those
    lines in the merge (the retry's result is the request's latest)."""
    latest: dict[str, dict[int, bytes]] = {}
    if retry_path is None:
        return latest
    for _, obj in iter_objects(retry_path):
        if isinstance(obj, BadLine):
            continue
        latest.setdefault(obj["source"], {})[obj["line"]] = dumps(obj["result"]).encode()
    return latest
