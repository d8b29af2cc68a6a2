"""Collect the run report's figures from the targets' `.meta.json` sidecars.

Why a separate step from rendering: `report.json` is for machines (a cron
check, a comparison between runs) and must hold every number the page shows;
the page is only a view of it. Nothing here recomputes a step's work: a figure
that is not in a sidecar or a companion file the step published is absent.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.fswalk import walk_names
from pipeline.jsonio import read_json
from pipeline.provenance import META_SUFFIX, SidecarError, changed_outputs, seal_problem, utc_now
from pipeline.sinks.message import GROBID, topic_name
from pipeline.targets import FILE_META_DUPES

# Dependency order of the steps (the report lists them so); unknown steps follow, by name.
STEP_ORDER = (
    "ExportMissingSha256", "IngestRequests", "IngestRequestSample", "IngestSampleResults",
    "IngestShard", "IngestRetry", "MergeFileMeta", "UniqFileMeta", "ImportFileMetaSample", "ImportFileMeta",
    "CountMissingSha256", "GrobidRetry",
)
MOST_DUPLICATED_SHOWN = 10


def read_sidecars(workdir: str | os.PathLike, targets: list[str] | None = None) -> list[dict]:
    """The sidecars of `targets` (those that exist), or of every target under `workdir`.

    A run's task graph knows its targets; scanning is for a work directory
    looked at by hand, where stale targets of other settings may also lie.
    """
    if targets is None:
        paths = walk_names(workdir, f"*{META_SUFFIX}", files_only=True)
    else:
        paths = [Path(f"{t}{META_SUFFIX}") for t in targets]
    sidecars = []
    for path in paths:
        if not path.exists():
            continue
        try:
            meta = read_json(path)
        except ValueError as e:
            raise SidecarError(f"sidecar {path} is not JSON ({e}); rerun its step") from None
        if isinstance(meta, dict) and meta.get("task"):
            meta = dict(meta, target=str(path)[: -len(META_SUFFIX)])
            sidecars.append(meta)
    return sorted(sidecars, key=_step_key)


def tampered(sidecars: list[dict]) -> list[str]:
    """Sidecars, targets and companions the report reads that are not as their step wrote
    them: a sidecar whose checksum fails, a file whose size/mtime (else sha256) differ."""
    problems = []
    for meta in sidecars:
        sidecar = f"{meta['target']}{META_SUFFIX}"
        problem = seal_problem({k: v for k, v in meta.items() if k != "target"})
        if problem:
            problems.append(f"{sidecar} {problem}")
            continue
        paths = [o["path"] for o in meta.get("outputs") or [] if isinstance(o, dict) and "path" in o]
        problems += [f"{p} is not the file its sidecar recorded" for p in changed_outputs(meta, paths)]
    return problems


def _step_key(meta: dict) -> tuple:
    task = meta["task"]
    rank = STEP_ORDER.index(task) if task in STEP_ORDER else len(STEP_ORDER)
    params = meta.get("params") or {}
    return rank, task, int(params.get("shard", 0) or 0), meta["target"]


def step_row(meta: dict, workdir: str | os.PathLike) -> dict[str, Any]:
    """One line of the steps table: in/out/rejects by reason, duration and rate."""
    counts = meta.get("counts") or {}
    task = meta["task"]
    if task in ("ImportFileMeta", "ImportFileMetaSample"):
        n_in = counts.get("total")
        n_out = counts.get("update", 0) + counts.get("insert", 0)
    elif task == "CountMissingSha256":
        n_in, n_out = counts.get("rows"), counts.get("missing_sha256")
    else:
        n_in, n_out = counts.get("in"), counts.get("out")
    seconds = meta.get("seconds")
    rate = round(n_in / seconds, 1) if n_in and seconds else None
    return {
        "step": task,
        "params": meta.get("params") or {},
        "target": _relative(meta["target"], workdir),
        "in": n_in,
        "out": n_out,
        "rejects": counts.get("rejects"),
        "rejects_by_reason": counts.get("rejects_by_reason") or {},
        "started": meta.get("started"),
        "finished": meta.get("finished"),
        "seconds": seconds,
        "rate_per_s": rate,
    }


def ingest_section(sidecars: list[dict]) -> dict[str, Any]:
    """Status histograms: the sample, every shard, and all shards together."""
    shards = []
    overall: Counter = Counter()
    for meta in sidecars:
        if meta["task"] != "IngestShard":
            continue
        counts = meta.get("counts") or {}
        params = meta.get("params") or {}
        status = counts.get("status") or {}
        overall.update(status)
        shards.append({
            "shard": int(params.get("shard", 0)),
            "shards": int(params.get("shards", 0)),
            "total": counts.get("in", 0),
            "success": counts.get("success", 0),
            "success_rate": counts.get("success_rate"),
            "status": status,
        })
    sample = next((m.get("counts") or {} for m in sidecars if m["task"] == "IngestSampleResults"),
                  None)
    total = sum(s["total"] for s in shards)
    return {
        "sample": None if sample is None else {
            "total": sample.get("in", 0), "success_rate": sample.get("success_rate"),
            "status": sample.get("status") or {}},
        "shards": shards,
        "overall": {
            "total": total,
            "success": overall.get("success", 0),
            "success_rate": round(overall.get("success", 0) / total, 4) if total else None,
            "status": dict(sorted(overall.items(), key=lambda kv: (-kv[1], kv[0]))),
        },
    }


def retry_section(sidecars: list[dict]) -> dict | None:
    """The retry pass (IngestRetry): how many requests it asked for again, and the status
    histogram of all results before and after it (the merge takes the after)."""
    counts = next((m.get("counts") or {} for m in sidecars if m["task"] == "IngestRetry"), None)
    if counts is None:
        return None
    return {"retried": counts.get("in", 0), "recovered": counts.get("recovered", 0),
            "before": counts.get("before") or {}, "after": counts.get("after") or {}}


def duplicates_section(workdir: str | os.PathLike, sidecars: list[dict]) -> dict | None:
    """UniqFileMeta's analysis: how many duplicates, and whether entities or reruns caused them."""
    uniq = next((m for m in sidecars if m["task"] == "UniqFileMeta"), None)
    if uniq is None:
        return None
    path = Path(workdir) / FILE_META_DUPES
    dupes = read_json(path) if path.exists() else dict(uniq.get("counts") or {})
    dupes = dict(dupes)
    if isinstance(dupes.get("most_duplicated"), list):
        dupes["most_duplicated"] = dupes["most_duplicated"][:MOST_DUPLICATED_SHOWN]
    return dupes


def import_section(sidecars: list[dict]) -> dict | None:
    found = {m["task"]: m.get("counts") or {} for m in sidecars
             if m["task"] in ("ImportFileMeta", "ImportFileMetaSample")}
    if not found:
        return None
    return {"import": found.get("ImportFileMeta"), "sample_dry_run": found.get("ImportFileMetaSample")}


def consistency(rows: list[dict], ingest: dict) -> list[dict]:
    """Hand-offs between steps that must agree; each says expected, found and whether it holds."""
    first = {}
    for row in rows:
        first.setdefault(row["step"], row)
    checks = []

    def check(name: str, expected: Any, found: Any) -> None:
        if expected is not None and found is not None:
            checks.append({"check": name, "expected": expected, "found": found,
                           "ok": expected == found})

    if "IngestRequests" in first and ingest["shards"]:
        check("every request ingested in exactly one shard", first["IngestRequests"]["out"],
              ingest["overall"]["total"])
    if "MergeFileMeta" in first and "UniqFileMeta" in first:
        check("uniq reads what merge kept", first["MergeFileMeta"]["out"], first["UniqFileMeta"]["in"])
    if "UniqFileMeta" in first and "ImportFileMeta" in first:
        check("import reads every unique record", first["UniqFileMeta"]["out"],
              first["ImportFileMeta"]["in"])
    return checks


def grobid_section(sidecars: list[dict]) -> dict | None:
    """What GROBID was sent and answered, from the shards' sidecars and GrobidRetry's.

    `sent` is the messages published to the GROBID topic (one per PDF per
    shard); the statuses and error codes are those the shard's sink counted.
    None when no shard ran with GROBID.
    """
    shards = [m for m in sidecars if m["task"] == "IngestShard"
              and ((m.get("settings") or {}).get("grobid") or (m.get("counts") or {}).get("grobid"))]
    if not shards:
        return None
    status: Counter = Counter()
    codes: Counter = Counter()
    sent = 0
    for meta in shards:
        counts = meta.get("counts") or {}
        topic = topic_name(GROBID, (meta.get("settings") or {}).get("kafka_env") or "dev")
        sent += (counts.get("messages") or {}).get(topic, 0)
        status.update(counts.get("grobid") or {})
        codes.update(counts.get("grobid_error_codes") or {})
    retry = next((m.get("counts") or {} for m in sidecars if m["task"] == "GrobidRetry"), None)
    return {
        "sent": sent,
        "succeeded": status.get("success", 0),
        "status": dict(sorted(status.items(), key=lambda kv: (-kv[1], kv[0]))),
        "errors_by_kind": {grobid_error_kind(code): n for code, n in
                           sorted(codes.items(), key=lambda kv: (-kv[1], kv[0]))},
        "retry": None if retry is None else {
            "retried": retry.get("total", 0),
            "status": dict(sorted((retry.get("status") or {}).items(),
                                  key=lambda kv: (-kv[1], kv[0])))},
    }


def outcome_section(grobid: dict | None) -> dict:
    """Whether the run did all its work: `partial` with the reasons when it did not.

    A run that completes can still leave PDFs without GROBID output: those GROBID
    itself refused on their retry (4xx, 500), or whose bytes could not be had again
    (a run whose GROBID did not answer fails instead; docs/sinks.md, "GrobidRetry").
    """
    why = []
    if grobid is not None:
        retry = grobid.get("retry")
        if retry is not None:
            left = retry["retried"] - retry["status"].get("success", 0)
            if left:
                outcomes = ", ".join(f"{k}: {n}" for k, n in retry["status"].items() if k != "success")
                why.append(f"{left} PDFs have no GROBID output after GrobidRetry ({outcomes})")
        elif grobid["sent"] > grobid["succeeded"]:
            why.append(f"{grobid['sent'] - grobid['succeeded']} GROBID errors not retried yet")
    return {"partial": bool(why), "why": why}


def grobid_error_kind(status_code: str) -> str:
    """A GROBID error's status code in words (docs/sinks.md's table)."""
    return {"-4": "timed out", "-2": "could not connect",
            "200": "unusable answer (HTTP 200)"}.get(status_code, f"HTTP {status_code}")


def sinks_section(sidecars: list[dict], workdir: str | os.PathLike) -> dict | None:
    """Messages stored per topic by every shard's sink (and GrobidRetry's), and where they went."""
    rows = []
    totals: Counter = Counter()
    kinds = set()
    for meta in sidecars:
        messages = (meta.get("counts") or {}).get("messages")
        if meta["task"] not in ("IngestShard", "GrobidRetry") or messages is None:
            continue
        kinds.add((meta.get("settings") or {}).get("sink") or "unknown")
        totals.update(messages)
        files = [_relative(o["path"], workdir) for o in meta.get("outputs") or []
                 if isinstance(o, dict) and f"{os.sep}sinks{os.sep}" in str(o.get("path"))]
        params = meta.get("params") or {}
        rows.append({"step": meta["task"], "shard": params.get("shard"),
                     "messages": dict(sorted(messages.items())), "files": files})
    if not rows:
        return None
    return {"sink": ", ".join(sorted(kinds)), "per_step": rows,
            "total": dict(sorted(totals.items()))}


def timing_section(sidecars: list[dict]) -> dict | None:
    """The run's time: first step start to last step end, and each step's seconds (shards summed).

    Wall time is what the operator waited (steps overlap when workers run
    shards in parallel); the sum of step seconds is the work done.
    """
    spans = [(_parse_time(m.get("started")), _parse_time(m.get("finished"))) for m in sidecars]
    spans = [(a, b) for a, b in spans if a is not None and b is not None]
    per_step: dict[str, dict[str, Any]] = {}
    for meta in sidecars:
        seconds = meta.get("seconds")
        if seconds is None:
            continue
        row = per_step.setdefault(meta["task"], {"step": meta["task"], "runs": 0, "seconds": 0.0})
        row["runs"] += 1
        row["seconds"] = round(row["seconds"] + seconds, 3)
    if not spans and not per_step:
        return None
    start = min(a for a, _ in spans) if spans else None
    end = max(b for _, b in spans) if spans else None
    return {
        "started": None if start is None else start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished": None if end is None else end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_seconds": None if start is None else (end - start).total_seconds(),
        "step_seconds": round(sum(r["seconds"] for r in per_step.values()), 3),
        "per_step": list(per_step.values()),
    }


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def untouched_check(sidecars: list[dict]) -> list[dict]:
    """The report's figures come from sidecars: they hold only if every sidecar, target and
    companion is still what its step wrote (a luigi run remakes what is not first)."""
    if not sidecars:
        return []
    problems = tampered(sidecars)
    return [{"check": "every sidecar and target is as its step wrote it", "expected": [],
             "found": problems, "ok": not problems}]


def gather_report(workdir: str | os.PathLike, targets: list[str] | None = None) -> dict[str, Any]:
    """The whole report as a JSON-able dict (see the module docstring)."""
    sidecars = read_sidecars(workdir, targets)
    rows = [step_row(m, workdir) for m in sidecars]
    ingest = ingest_section(sidecars)
    count_check = next((m.get("counts") for m in sidecars if m["task"] == "CountMissingSha256"),
                       None)
    timed = [r["seconds"] for r in rows if r["seconds"] is not None]
    grobid = grobid_section(sidecars)
    return {
        "workdir": os.fspath(workdir),
        "generated": utc_now(),
        "version": __version__,
        "steps": rows,
        "ingest": ingest,
        "retry": retry_section(sidecars),
        "duplicates": duplicates_section(workdir, sidecars),
        "import": import_section(sidecars),
        "count_check": count_check,
        "consistency": consistency(rows, ingest) + untouched_check(sidecars),
        "total_step_seconds": round(sum(timed), 3) if timed else None,
        "timing": timing_section(sidecars),
        "grobid": grobid,
        "sinks": sinks_section(sidecars, workdir),
        "outcome": outcome_section(grobid),
    }


def _relative(path: str, workdir: str | os.PathLike) -> str:
    try:
        return os.path.relpath(path, workdir)
    except ValueError:
        return path
