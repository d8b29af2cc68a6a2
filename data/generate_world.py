"""Generate the deterministic sample world: a catalog export, a web archive, and the oracle.

    python data/generate_world.py [--out data/world] [--seed 0]

Why it exists: the pipeline's steps and its tests need a small, complete,
realistic world to run on without the internet: a fatcat-style file export
(docs/data.md) with every kind of untidy entity, a pywb collection whose
captures drive every ingest status of docs/statuses.md, and `expected.json` saying
which status each request must end with. The same seed gives byte-identical
files. The world is built in a temporary directory beside the output and
renamed into place last, so an interrupted run never leaves something that
looks finished. See data/README.md for what is in it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

# This file is run as a script (`data/` is then sys.path[0]) or loaded by path from the
# tests; either way its helper package `data/worldgen` and the repository root must be
# importable.
for _path in (Path(__file__).resolve().parent, Path(__file__).resolve().parent.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from worldgen import failure, population, success  # noqa: E402
from worldgen.archive import ArchiveBuilder  # noqa: E402
from worldgen.world import BULK_WARC, World  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "world"
TOTAL_ENTITIES = 2500
DIRECT_PDF_REQUESTS = 950
WAYBACK_MARKERS = ("://web.archive.org/", "://archive.org/")


def warc_for(ts: str) -> str:
    """Captures are grouped into WARC files by crawl period, like a crawl's output."""
    year = int(ts[:4])
    if year <= 2015:
        return "WORLD-CRAWL-2015-00000.warc.gz"
    if year <= 2017:
        return "WORLD-CRAWL-2017-00001.warc.gz"
    if year <= 2019:
        return "WORLD-CRAWL-2019-00002.warc.gz"
    return "WORLD-CRAWL-2022-00003.warc.gz"


def default_surt() -> Callable[[str], str]:
    """The project's SURT function: the index keys must be the ones the pipeline looks up."""
    from pipeline.archive.surt import surt

    return surt


def build(seed: int, surt: Callable[[str], str]) -> World:
    """Run every scenario in a fixed order; all randomness comes from `seed`."""
    rng = random.Random(seed)
    archive = ArchiveBuilder(random.Random(f"warc-record-ids-{seed}"), surt, warc_for)
    w = World(rng, archive, surt)
    success.direct_pdf(w, DIRECT_PDF_REQUESTS)
    success.redirect_chains(w, 60)
    success.landing_pages(w)
    success.doi_resolver_chains(w, 10)
    success.sha1_mismatch(w, 8)
    success.best_capture(w)
    success.revisit_only(w, 8)
    success.encodings(w)
    success.surt_equal_urls(w)
    population.duplicate_groups(w)
    for scenario in failure.FAILURES:
        scenario(w)
    population.rejected(w)
    population.complete(w, TOTAL_ENTITIES - len(w.entities))
    return w


def request_or_reason(e: dict) -> tuple[dict | None, str | None]:
    """docs/data.md, checks in order: (request, None) or (None, reject reason)."""
    mimetype = e.get("mimetype")
    if mimetype is not None and mimetype != "application/pdf":
        return None, "not-pdf-mimetype"
    state = e.get("state")
    if state is not None and state != "active":
        return None, "not-active"
    base_url = next((u["url"] for u in e.get("urls", [])
                     if not any(m in u["url"] for m in WAYBACK_MARKERS)), None)
    if base_url is None:
        return None, "no-usable-url"
    if not e.get("sha1"):
        return None, "no-sha1"
    return {"base_url": base_url, "ext_ids": {"sha1": e["sha1"]},
            "ingest_request_source": "file-backfill", "ingest_type": "pdf",
            "link_source": "fatcat", "link_source_id": f"file_{e['ident']}"}, None


def export_lines(w: World, rng: random.Random) -> list[tuple[str, dict | None]]:
    """Entities in a shuffled order with the malformed lines spread among them."""
    entities = list(w.entities)
    rng.shuffle(entities)
    lines: list[tuple[str, dict | None]] = [
        (json.dumps(e, sort_keys=True), e) for e in entities]
    for bad in population.MALFORMED_LINES:
        lines.insert(rng.randrange(1, len(lines)), (bad, None))
    return lines


def oracle(w: World, lines: list[tuple[str, dict | None]]) -> dict:
    """expected.json: per-request statuses in export order, plus the counts other steps must reach."""
    requests, rejects, bad_lines = [], [], []
    has_sha256 = 0
    for lineno, (text, e) in enumerate(lines, 1):
        if e is None:
            bad_lines.append({"line": lineno, "raw": text})
            continue
        if e.get("sha256"):
            has_sha256 += 1
            continue
        req, reason = request_or_reason(e)
        exp = w.expected.get(e["ident"])
        if req is None:
            if exp is not None:
                raise AssertionError(f"scenario request {e['ident']} rejected as {reason}")
            rejects.append({"line": lineno, "ident": e["ident"], "reason": reason})
            continue
        if exp is None or exp["base_url"] != req["base_url"]:
            raise AssertionError(f"entity {e['ident']} yields an unplanned request {req['base_url']}")
        requests.append({"line": lineno, **exp})
    if len(requests) != len(w.expected):
        raise AssertionError("some planned requests are missing from the export")
    counts = Counter(r["status"] for r in requests)
    matched = [r for r in requests if r["status"] == "success" and r.get("fetched_sha1") == r["sha1"]]
    uniq = sorted({r["sha1"] for r in matched})
    return {
        "requests": requests,
        "counts": dict(sorted(counts.items())),
        "statuses": sorted(counts),
        # through pywb (docs/archive.md) the captures pywb cannot replay give wayback-error instead
        "counts_over_http": dict(sorted(Counter(
            r.get("status_over_http", r["status"]) for r in requests).items())),
        "export": {
            "lines": len(lines), "entities": len(lines) - len(bad_lines), "bad_lines": bad_lines,
            "has_sha256": has_sha256, "missing_sha256": len(requests) + len(rejects),
        },
        "request_rejects": rejects,
        "request_reject_counts": dict(sorted(Counter(r["reason"] for r in rejects).items())),
        "merge": {
            "success": counts["success"], "file_meta": len(matched),
            "sha1_mismatch": counts["success"] - len(matched),
            "uniq": len(uniq), "duplicate_lines": len(matched) - len(uniq),
        },
        "import": import_counts(w, uniq),
        "damaged_captures": sorted(w.damaged, key=lambda d: (d["url"], d["timestamp"])),
    }


def import_counts(w: World, uniq_sha1s: list[str]) -> dict:
    """What the embedded catalog import of the unique file_meta must count (docs/delivery.md)."""
    active: dict[str, dict] = {}
    for e in w.entities:
        if e.get("sha1") and e.get("state", "active") == "active":
            cur = active.get(e["sha1"])
            if cur is None or e["ident"] < cur["ident"]:
                active[e["sha1"]] = e
    counts = Counter(total=len(uniq_sha1s))
    for sha1 in uniq_sha1s:
        e = active.get(sha1)
        if e is None:
            counts["skip-no-match"] += 1
        elif all(e.get(k) for k in ("md5", "sha256", "size", "mimetype")):
            counts["skip-existing-complete"] += 1
        else:
            counts["update"] += 1
    return dict(sorted(counts.items()))


def write_gzip_lines(path: Path, lines: list[str]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        for line in lines:
            f.write(line.encode("utf-8") + b"\n")


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


def file_hashes_lines(w: World) -> list[str]:
    """ident, rev, sha1, sha256, md5 for every well-formed entity (empty = missing), by ident.

    Every entity has a row, even one without a sha1 or a revision (a deleted
    one): the runbook's count check compares this dump's rows lacking sha256
    with the export filter's count, and the two must agree on this world.
    """
    rows = []
    for e in sorted(w.entities, key=lambda e: e["ident"]):
        rows.append("\t".join([e["ident"], e.get("revision", ""), e.get("sha1", ""),
                               e.get("sha256", ""), e.get("md5", "")]))
    return rows


def check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an earlier world or an empty directory.

    The output directory is swapped out wholesale, so a mistyped `--out`
    (a home directory, a file) must fail before anything is touched.
    """
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise ValueError(f"{out_dir}: exists and is not a directory; refusing to replace it")
    if any(out_dir.iterdir()) and not (out_dir / "summary.json").is_file():
        raise ValueError(f"{out_dir}: a non-empty directory that is not a generated world "
                         "(no summary.json); refusing to replace it")


def generate(out_dir: Path, seed: int = 0, surt: Callable[[str], str] | None = None) -> dict:
    """Write the world to `out_dir` (replacing it) and return its summary."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    surt = surt or default_surt()
    w = build(seed, surt)
    lines = export_lines(w, random.Random(f"export-order-{seed}"))
    expected = oracle(w, lines)
    expected["seed"] = seed

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        write_gzip_lines(tmp / "file_export.json.gz", [text for text, _ in lines])
        archive_summary = w.archive.write(tmp / "collection")
        write_json(tmp / "expected.json", expected)
        hashes = file_hashes_lines(w)
        write_gzip_lines(tmp / "file_hashes.tsv.gz", hashes)
        pdfs = {sha1: info for sha1, info in sorted(w.pdfs.items())}
        write_json(tmp / "pdfs.json", pdfs)
        summary = {
            "seed": seed,
            "export_lines": len(lines),
            "entities": expected["export"]["entities"],
            "bad_lines": len(expected["export"]["bad_lines"]),
            "has_sha256": expected["export"]["has_sha256"],
            "missing_sha256": expected["export"]["missing_sha256"],
            "requests": len(expected["requests"]),
            "request_rejects": expected["request_reject_counts"],
            "statuses": expected["counts"],
            "file_hashes_rows": len(hashes),
            "pdfs": len(pdfs),
            "records": len(w.archive.records),
            "big_body_warc": BULK_WARC,
            "damaged_captures": len(expected["damaged_captures"]),
            **archive_summary,
        }
        write_json(tmp / "summary.json", summary)
        old = None
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    summary["seconds"] = round(time.monotonic() - started, 2)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (replaced)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        summary = generate(args.out, args.seed)
    except ValueError as e:
        p.error(str(e))
    print(json.dumps(summary, sort_keys=True, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
