"""A runbook-scale world for the benchmarks, written once under data/bench/ and reused.

    python bench/worldgen_scale.py [--size full|quick] [--out data/bench]

Why it exists: the sample world (data/world) has 2,500 entities, too few to
show what a step costs on the runbook's 1,000,000-line export. This writes,
per size, into `<out>/<size>/` (each piece skipped when already there, so
reruns cost nothing):

- `export.json.gz`: the catalog export; at full size 1,000,000 lines of
  ~600 bytes of which 521,553 entities lack sha256 (a few with `"sha256": ""`),
  a few hundred that requests reject (not PDF, not active, only wayback URLs),
  and a handful of lines that are not JSON objects;
- `collection/`: a pywb-layout collection (archive/*.warc.gz, indexes/index.cdxj)
  of PDFs of realistic sizes (50 KB - 20 MB, log-normal), each reached directly,
  through a 302 redirect or through a landing page with `citation_pdf_url`;
  `collection_requests.json.gz` holds the ingest requests for them;
- `shards/shard-NNN-of-004.json.gz` plus `shards/extra-batch.json.gz`: ingest
  results in the pipeline's own format, ~20% of them duplicates (shared sha1s
  and a repeated earlier batch), some failed, some sha1 mismatches;
- `uniq_input.json.gz` (full size only): 10,000,000 merged file_meta lines
  (~2 GB uncompressed) for the external-sort uniq.

Every piece is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "data")]

from isal import igzip  # noqa: E402
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402
from worldgen import html  # noqa: E402
from worldgen.archive import ArchiveBuilder, http_date, warc_date  # noqa: E402
from worldgen.pdf import make_pdf  # noqa: E402

from pipeline.archive.surt import surt  # noqa: E402
from pipeline.jsonio import dumps  # noqa: E402

B32 = "abcdefghijklmnopqrstuvwxyz234567"
SHARDS = 4


@dataclass(frozen=True)
class Size:
    export_lines: int
    missing: int
    pdfs: int
    pdf_max: int
    results: int
    extra_batch: int
    uniq_lines: int


SIZES = {
    # the runbook: 1M-line export, 521,553 lacking sha256, 400k+ results, 86,520 duplicates
    "full": Size(1_000_000, 521_553, 2_000, 20 << 20, 420_000, 20_000, 10_000_000),
    "quick": Size(100_000, 52_155, 120, 4 << 20, 42_000, 2_000, 0),
}


def out_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class GzipLines:
    """Gzip JSON lines to a temporary name, renamed onto `path` on success."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = out_path(path)
        self.buf: list[str] = []

    def __enter__(self) -> GzipLines:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = igzip.open(self.tmp, "wb", compresslevel=1)
        return self

    def write(self, line: str) -> None:
        self.buf.append(line)
        if len(self.buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        self.f.write(("\n".join(self.buf) + "\n").encode("utf-8"))
        self.buf = []

    def __exit__(self, exc_type, *_) -> None:
        if self.buf and exc_type is None:
            self.flush()
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def ident(rng: random.Random) -> str:
    return "".join(rng.choices(B32, k=26))


def ident_for(n: int) -> str:
    """A fatcat-style ident (26 base32 letters) that is a function of `n`."""
    h = int.from_bytes(hashlib.blake2b(n.to_bytes(16, "little"), digest_size=17).digest(), "big")
    return "".join(B32[(h >> (5 * k)) & 31] for k in range(26))


# -- the collection ------------------------------------------------------------------

HOSTS = ["www.jmedsci-press.com", "eprints.lakeside.ac.uk", "ojs.unimar.ac.id",
         "repository.tech-institute.edu", "www.scholarly-letters.org", "cdn.openaccess-files.com"]


def pdf_size(rng: random.Random, cap: int) -> int:
    """Log-normal sizes like a journal crawl: median ~400 KB, a long tail to the cap."""
    return int(min(cap, max(50_000, math.exp(rng.gauss(math.log(400_000), 1.1)))))


def pdf_body(rng: random.Random, n: int, size: int) -> bytes:
    """A real small PDF followed by incompressible bytes (as embedded images are) up to `size`."""
    head = make_pdf(rng, f"Benchmark article {n}", 2, 4000)
    return head + b"%" + rng.randbytes(max(0, size - len(head) - 1))


def _record(url: str, ts: str, status: int, headers: list[tuple[str, str]], body: bytes,
            rng: random.Random) -> bytes:
    """One WARC response record as its own gzip member."""
    raw = io.BytesIO()
    writer = WARCWriter(raw, gzip=False)
    full = [("Date", http_date(ts)), ("Server", "Apache"), *headers,
            ("Content-Length", str(len(body)))]
    http = StatusAndHeaders(f"{status} {'OK' if status == 200 else 'Found'}", full,
                            protocol="HTTP/1.1")
    rid = f"<urn:uuid:{rng.getrandbits(128):032x}>"
    rec = writer.create_warc_record(url, "response", payload=io.BytesIO(body), length=len(body),
                                    http_headers=http,
                                    warc_headers_dict={"WARC-Record-ID": rid,
                                                       "WARC-Date": warc_date(ts)})
    writer.write_record(rec)
    return igzip.compress(raw.getvalue(), compresslevel=1, mtime=0)


def write_collection(dest: Path, size: Size, seed: int = 11) -> dict:
    """Write `collection/` and `collection_requests.json.gz` (one request per PDF)."""
    coll, requests = dest / "collection", dest / "collection_requests.json.gz"
    if (coll / "indexes" / "index.cdxj").exists() and requests.exists():
        return json.loads((dest / "collection.json").read_text())
    rng = random.Random(seed)
    tmp = out_path(coll)
    (tmp / "archive").mkdir(parents=True)
    (tmp / "indexes").mkdir()
    rows: list[str] = []
    warc_n, warc_f, warc_name = -1, None, ""
    total = 0
    kinds = {"direct": 0, "redirect": 0, "landing": 0}
    with GzipLines(requests) as req_out:
        for n in range(size.pdfs):
            if warc_f is None or warc_f.tell() > (512 << 20):
                if warc_f:
                    warc_f.close()
                warc_n += 1
                warc_name = f"BENCH-CRAWL-{warc_n:05d}.warc.gz"
                warc_f = open(tmp / "archive" / warc_name, "wb")
            host = HOSTS[n % len(HOSTS)]
            ts = f"20{15 + n % 8:02d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 24:02d}{n % 60:02d}{n % 60:02d}"
            pdf_url = f"https://{host}/files/{n}/article-{n}.pdf"
            body = pdf_body(rng, n, pdf_size(rng, size.pdf_max))
            total += len(body)
            captures = [(pdf_url, ts, 200, [("Content-Type", "application/pdf")], body)]
            kind = ("direct", "direct", "redirect", "landing")[n % 4]
            kinds[kind] += 1
            base_url = pdf_url
            if kind == "redirect":
                base_url = f"https://{host}/download?id={n}"
                captures.append((base_url, ts, 302, [("Location", pdf_url),
                                                     ("Content-Type", "text/html")],
                                 html.redirect_stub(pdf_url)))
            elif kind == "landing":
                base_url = f"https://{host}/article/view/{n}"
                page = html.highwire(f"Benchmark article {n}", ["Ana Silva"], "Review of Methods",
                                     f"10.5555/bench.{n}", ts[:4], pdf_url, "An abstract.")
                captures.append((base_url, ts, 200, [("Content-Type", "text/html; charset=utf-8")],
                                 page))
            for url, cts, status, headers, cbody in captures:
                offset = warc_f.tell()
                warc_f.write(_record(url, cts, status, headers, cbody, rng))
                digest = base64.b32encode(hashlib.sha1(cbody).digest()).decode()
                mime = headers[-1][1].split(";")[0] if status == 200 else "text/html"
                rows.append(ArchiveBuilder._cdxj_line(surt(url), cts, url, mime, str(status),
                                                      digest, warc_f.tell() - offset, offset,
                                                      warc_name))
            req_out.write(dumps({
                "base_url": base_url, "ext_ids": {"sha1": hashlib.sha1(body).hexdigest()},
                "ingest_request_source": "file-backfill", "ingest_type": "pdf",
                "link_source": "fatcat", "link_source_id": f"file_{ident(rng)}"}))
        warc_f.close()
    rows.sort(key=lambda s: s.encode("utf-8"))
    (tmp / "indexes" / "index.cdxj").write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    if coll.exists():
        import shutil
        shutil.rmtree(coll)
    os.replace(tmp, coll)
    info = {"pdfs": size.pdfs, "pdf_bytes": total, "kinds": kinds, "cdx_rows": len(rows),
            "warc_bytes": sum(p.stat().st_size for p in (coll / "archive").iterdir())}
    (dest / "collection.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# -- the export ----------------------------------------------------------------------

def export_lines(size: Size, seed: int = 7) -> Iterator[str]:
    """`size.export_lines` lines; exactly `size.missing` entities lack sha256."""
    rng = random.Random(seed)
    n_bad = 5
    n_entities = size.export_lines - n_bad
    missing = set(rng.sample(range(n_entities), size.missing))
    bad_at = set(rng.sample(range(size.export_lines), n_bad))
    k = 0
    for i in range(size.export_lines):
        if i in bad_at:
            yield ('{"ident": "truncated-line", "urls": [{"url": "http://x.example/a.pdf"'
                   if i % 2 else '["an", "array", "not an object"]')
            continue
        lacks = k in missing
        k += 1
        r = rng.random()
        host = HOSTS[k % len(HOSTS)]
        path = f"/content/{k % 97}/{k % 13}/{k}/fulltext-article-{rng.getrandbits(40):x}.pdf"
        urls = [{"rel": "web", "url": f"https://{host}{path}"},
                {"rel": "webarchive",
                 "url": f"https://web.archive.org/web/2017{k % 100000:010d}/https://{host}{path}"}]
        mimetype = "application/pdf"
        state = "active"
        if lacks and r < 0.0005:
            mimetype = "text/html"
        elif lacks and r < 0.001:
            state = "deleted"
        elif lacks and r < 0.0015:
            urls = urls[1:]
        e = {"extra": {"shadows": {"scimag_doi": f"10.1234/bench.{k}"}} if k % 4 == 0 else None,
             "ident": ident(rng), "mimetype": mimetype,
             "release_ids": [ident(rng)], "revision": f"{rng.getrandbits(128):032x}",
             "sha1": f"{rng.getrandbits(160):040x}", "size": rng.randint(50_000, 20_000_000),
             "state": state, "urls": urls}
        if e["extra"] is None:
            del e["extra"]
        if not lacks:
            e["md5"] = f"{rng.getrandbits(128):032x}"
            e["sha256"] = f"{rng.getrandbits(256):064x}"
        elif r > 0.9995:
            e["sha256"] = ""  # an empty hash counts as missing
        yield json.dumps(e, sort_keys=True)


def write_export(dest: Path, size: Size) -> Path:
    path = dest / "export.json.gz"
    if not path.exists():
        with GzipLines(path) as out:
            for line in export_lines(size):
                out.write(line)
    return path


# -- shard results -------------------------------------------------------------------

FAILS = ["no-capture", "no-capture", "no-capture", "terminal-bad-status", "no-pdf-link",
         "wrong-mimetype", "redirect-loop", "wayback-error"]


def result_line(rng: random.Random, sha1: str, i: int, status: str, mismatch: bool) -> str:
    host = HOSTS[i % len(HOSTS)]
    url = f"https://{host}/content/{i % 97}/{i}/fulltext-article.pdf"
    request = {"base_url": url, "ext_ids": {"sha1": sha1}, "ingest_request_source": "file-backfill",
               "ingest_type": "pdf", "link_source": "fatcat",
               "link_source_id": f"file_{ident(rng)}"}
    r = {"hit": status == "success", "hops": [url], "request": request, "status": status}
    if status == "success":
        got = hashlib.sha1(sha1.encode() + (b"x" if mismatch else b"")).hexdigest() \
            if mismatch else sha1
        ts = f"2017{i % 12 + 1:02d}{i % 28 + 1:02d}005950"
        size = int(got[:5], 16) * 19 + 50_000
        r["file_meta"] = {"md5hex": hashlib.md5(got.encode()).hexdigest(),
                          "mimetype": "application/pdf", "sha1hex": got,
                          "sha256hex": hashlib.sha256(got.encode()).hexdigest(),
                          "size_bytes": size}
        r["cdx"] = {"datetime": ts, "mimetype": "application/pdf",
                    "sha1b32": base64.b32encode(bytes.fromhex(got)).decode(), "sha1hex": got,
                    "status_code": 200, "surt": surt(url), "url": url, "warc_csize": size + 600,
                    "warc_offset": i * 4096, "warc_path": f"BENCH-CRAWL-{i % 50:05d}.warc.gz"}
        r["grobid"] = {"status": "disabled"}
        r["terminal"] = {"terminal_dt": ts, "terminal_sha1hex": got, "terminal_status_code": 200,
                         "terminal_url": url}
    return dumps(r)


def write_shards(dest: Path, size: Size, seed: int = 5) -> list[Path]:
    """SHARDS result files (round-robin) plus an earlier batch that repeats some results."""
    d = dest / "shards"
    paths = [d / f"shard-{s:03d}-of-{SHARDS:03d}.json.gz" for s in range(SHARDS)]
    extra = d / "extra-batch.json.gz"
    if all(p.exists() for p in paths) and extra.exists():
        return paths + [extra]
    rng = random.Random(seed)
    n_unique = int(size.results * 0.84)
    pool = [f"{rng.getrandbits(160):040x}" for _ in range(n_unique)]
    plan = []
    for i in range(size.results):
        sha1 = pool[i] if i < n_unique else pool[rng.randrange(n_unique)]  # shared sha1s
        x = rng.random()
        status = "success" if x < 0.9 else rng.choice(FAILS)
        plan.append((sha1, status, x < 0.0008))
    outs = [GzipLines(p).__enter__() for p in paths]
    try:
        for i, (sha1, status, mismatch) in enumerate(plan):
            outs[i % SHARDS].write(result_line(rng, sha1, i, status, mismatch))
    finally:
        for o in outs:
            o.__exit__(None, None, None)
    with GzipLines(extra) as out:  # an earlier batch merged again: repeated results
        for _ in range(size.extra_batch):
            i = rng.randrange(size.results)
            sha1, status, mismatch = plan[i]
            out.write(result_line(random.Random(i), sha1, i, "success", mismatch))
    return paths + [extra]


# -- a 10M-line uniq input -----------------------------------------------------------

def write_uniq_input(dest: Path, size: Size, seed: int = 3) -> Path | None:
    """Merged file_meta lines (the merge step's output format), ~15% duplicates, unsorted."""
    if not size.uniq_lines:
        return None
    path = dest / "uniq_input.json.gz"
    if path.exists():
        return path
    rng = random.Random(seed)
    n_unique = int(size.uniq_lines * 0.85)
    with GzipLines(path) as out:
        for i in range(size.uniq_lines):
            k = i if i < n_unique else rng.randrange(n_unique)
            h = hashlib.sha256(k.to_bytes(8, "little")).hexdigest()
            out.write(f'{{"md5hex": "{h[:32]}", "mimetype": "application/pdf", '
                      f'"sha1hex": "{h[24:64]}", "sha256hex": "{h}", '
                      f'"size_bytes": {50_000 + k % 20_000_000}}}')
    return path


def generate(size_name: str, out: Path) -> dict:
    size = SIZES[size_name]
    dest = out / size_name
    dest.mkdir(parents=True, exist_ok=True)
    export = write_export(dest, size)
    coll = write_collection(dest, size)
    shards = write_shards(dest, size)
    uniq = write_uniq_input(dest, size)
    summary = {"size": size_name, **size.__dict__, "export": str(export),
               "export_bytes": export.stat().st_size, "collection": coll,
               "shards": [str(p) for p in shards], "uniq_input": str(uniq) if uniq else None}
    (dest / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="quick")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "bench")
    args = ap.parse_args(argv)
    print(json.dumps(generate(args.size, args.out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
