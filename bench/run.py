"""`make bench` / `make bench-quick`: every step against its shell anchor, on the scale world.

    python bench/run.py [--size quick|full] [--repeat N] [--only export_filter,uniq,...]

Generates (once, cached under data/bench/<size>/) the world of
bench/worldgen_scale.py, then times each pipeline step and the one-liner or
floor it replaces in the same run, `--repeat` times each, alternating. Every
run is a process of its own: wall time from the parent, peak RSS and CPU
time from bench/rusage.py, a small process that spawns it (for a shell
pipeline, the largest process in it). Prints a
table of medians, ratios, peak RSS and the issue's goals, and writes it all
(every run's time, RSS, counts, the load average) to bench/results/<size>.json.
The machine is shared, so the load average before and after each step is
recorded with its figures.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench import worldgen_scale  # noqa: E402

PY = sys.executable
STEP = [PY, str(ROOT / "bench" / "step.py")]
RESULTS = ROOT / "bench" / "results"
MB = 1 << 20
JQ = "select(.request.ext_ids.sha1 == .file_meta.sha1hex) | .file_meta"


# Runs of a row whose run takes under a second (the sample world's shard), at least: on a
# shared 2-core machine one run's CPU time varies by 15% or more, so its median takes more
# runs than a row of minutes needs (9 runs of the shard and 9 of its floor: about 11 s).
SHORT_REPEAT = 9


def run_once(cmd: list[str] | str, before=None) -> dict:
    """Run `cmd` (a list, or a bash pipeline string); wall seconds, peak RSS (MB), stdout.

    Untimed first: `before()`, and the disk catching up with what earlier runs and steps
    wrote (`sync`), so a run never pays for the writeback of another."""
    if before:
        before()
    os.sync()
    argv = ["bash", "-o", "pipefail", "-c", cmd] if isinstance(cmd, str) else cmd
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as usage_file:
        # peak RSS and CPU are read by a small process of its own (see bench/rusage.py)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "rusage.py"),
                                 usage_file.name, *argv], stdout=out, stderr=err, cwd=ROOT)
        proc.wait()
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
        usage = json.loads(Path(usage_file.name).read_text() or "{}")
    if proc.returncode != 0 or not usage:
        raise SystemExit(f"bench: {cmd} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return {"seconds": seconds, "rss_mb": usage["rss_mb"], "cpu_s": usage["cpu_s"],
            "stdout": stdout.strip(), "stderr": stderr[-20000:]}


def measure(variants: dict[str, list | str], repeat: int, before=None) -> dict[str, dict]:
    """Run each variant `repeat` times, interleaved (so load changes hit all alike)."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    load_before = os.getloadavg()[0]
    for _ in range(repeat):
        for name, cmd in variants.items():
            runs[name].append(run_once(cmd, before))
    out = {}
    for name, rs in runs.items():
        outputs = {r["stdout"] for r in rs}
        out[name] = {
            "median_s": statistics.median(r["seconds"] for r in rs),
            "min_s": min(r["seconds"] for r in rs),
            "peak_rss_mb": max(r["rss_mb"] for r in rs),
            "median_cpu_s": statistics.median(r["cpu_s"] for r in rs),
            "runs": [{k: v for k, v in r.items() if k not in ("stdout", "stderr")} for r in rs],
            "counts": json.loads(rs[-1]["stdout"]) if rs[-1]["stdout"].startswith("{") else None,
            "same_output_every_run": len(outputs) == 1,
            "load_before": load_before, "load_after": os.getloadavg()[0],
        }
    return out


@contextlib.contextmanager
def luigi_config(cfg: Path):
    """LUIGI_CONFIG_PATH set to `cfg` for the runs inside (they inherit this environment)."""
    old = os.environ.get("LUIGI_CONFIG_PATH")
    os.environ["LUIGI_CONFIG_PATH"] = str(cfg)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("LUIGI_CONFIG_PATH")
        else:
            os.environ["LUIGI_CONFIG_PATH"] = old


def gz_lines(path: Path) -> int:
    out = subprocess.run(f"zcat {path} | wc -l", shell=True, check=True, capture_output=True)
    return int(out.stdout)


class Bench:
    def __init__(self, size: str, repeat: int, only: set[str] | None):
        self.size = size
        self.repeat = repeat
        self.short_repeat = max(repeat, SHORT_REPEAT)
        self.only = only
        self.dir = ROOT / "data" / "bench" / size
        self.work = self.dir / "work"
        self.tmp = self.dir / "tmp"
        self.work.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(exist_ok=True)
        self.rows: list[dict] = []

    @functools.cached_property
    def world(self) -> dict:
        """The scale world, generated (once, cached on disk) when a step first needs it: the
        sample-world row alone (`--only ingest_sample`) does without it."""
        return worldgen_scale.generate(self.size, ROOT / "data" / "bench")

    def want(self, name: str) -> bool:
        return self.only is None or name in self.only

    def row(self, name: str, ours: dict, anchor: dict | None, anchor_name: str, *,
            goal: str = "", met: bool | None = None, **extra) -> dict:
        r = {"step": name, "pipeline": ours, "anchor_name": anchor_name, "anchor": anchor,
             "ratio": ours["median_s"] / anchor["median_s"] if anchor else None,
             "goal": goal, "met": met, **extra}
        self.rows.append(r)
        return r

    # -- the steps -----------------------------------------------------------------------

    def export_filter(self) -> None:
        export, out, rej = self.world["export"], self.work / "filtered.json.gz", self.tmp / "rej.gz"
        m = measure({
            "pipeline": [*STEP, "export-filter", export, str(out), str(rej)],
            "anchor": f"zcat {export} | rg -v '\"sha256\":' | pigz > {self.tmp}/rg.json.gz",
        }, self.repeat)
        ratio = m["pipeline"]["median_s"] / m["anchor"]["median_s"]
        self.row("export filter", m["pipeline"], m["anchor"], "zcat | rg -v | pigz",
                 goal="<= 0.6x, RSS < 256 MB",
                 met=ratio <= 0.6 and m["pipeline"]["peak_rss_mb"] < 256,
                 lines=self.world["export_lines"], anchor_lines=gz_lines(self.tmp / "rg.json.gz"))

    def requests(self) -> None:
        src = self.work / "filtered.json.gz"
        out, rej = self.work / "requests.json.gz", self.tmp / "req-rej.gz"
        m = measure({
            "pipeline": [*STEP, "requests", str(src), str(out), str(rej)],
            "anchor": f"zcat {src} | {PY} bench/anchor_requests.py | pigz > {self.tmp}/req.json.gz",
        }, self.repeat)
        self.row("ingest requests", m["pipeline"], m["anchor"], "json.loads/json.dumps per line",
                 goal="RSS < 256 MB", met=m["pipeline"]["peak_rss_mb"] < 256)

    def merge_uniq(self) -> None:
        shards = self.world["shards"]
        merged, rej = self.work / "merged.json.gz", self.tmp / "merge-rej.gz"
        uniq, dupes = self.work / "uniq.json.gz", self.tmp / "dupes.json"
        m = measure({
            "pipeline": [*STEP, "merge", str(merged), str(rej), *shards],
            "anchor": f"zcat {' '.join(shards)} | rg '\"sha256hex\"' | jq -c '{JQ}' "
                      f"| pigz > {self.tmp}/jq.json.gz",
        }, self.repeat)
        u = measure({
            "pipeline": [*STEP, "uniq", str(merged), str(uniq), str(dupes)],
            "anchor": f"zcat {self.tmp}/jq.json.gz | sort -u -S 4G | pigz > {self.tmp}/sort.json.gz",
        }, self.repeat)
        self.row("merge + select", m["pipeline"], m["anchor"], "zcat | rg | jq select | pigz",
                 goal="RSS < 256 MB", met=m["pipeline"]["peak_rss_mb"] < 256,
                 results=sum(gz_lines(Path(s)) for s in shards))
        uniq_ratio = u["pipeline"]["median_s"] / u["anchor"]["median_s"]
        self.row("uniq", u["pipeline"], u["anchor"], "sort -u -S 4G",
                 goal="<= 1.0x, RSS < 256 MB",
                 met=uniq_ratio <= 1.0 and u["pipeline"]["peak_rss_mb"] < 256)
        ours = m["pipeline"]["median_s"] + u["pipeline"]["median_s"]
        theirs = m["anchor"]["median_s"] + u["anchor"]["median_s"]
        self.rows.append({"step": "merge + uniq", "pipeline": {
                          "median_s": ours, "median_cpu_s": m["pipeline"]["median_cpu_s"]
                          + u["pipeline"]["median_cpu_s"],
                          "peak_rss_mb": max(m["pipeline"]["peak_rss_mb"], u["pipeline"]["peak_rss_mb"])},
                          "anchor": {"median_s": theirs, "median_cpu_s": m["anchor"]["median_cpu_s"]
                                     + u["anchor"]["median_cpu_s"], "peak_rss_mb": max(
                              m["anchor"]["peak_rss_mb"], u["anchor"]["peak_rss_mb"])},
                          "anchor_name": "jq | sort -u", "ratio": ours / theirs,
                          "goal": "<= 0.5x", "met": ours / theirs <= 0.5})

    def uniq_10m(self) -> None:
        src = self.world.get("uniq_input")
        if not src:
            return
        out, dupes = self.tmp / "uniq10m.json.gz", self.tmp / "uniq10m-dupes.json"
        m = measure({
            "pipeline": [*STEP, "uniq", src, str(out), str(dupes)],
            "anchor": f"zcat {src} | sort -u -S 4G | pigz > {self.tmp}/sort10m.json.gz",
        }, self.repeat)
        ratio = m["pipeline"]["median_s"] / m["anchor"]["median_s"]
        self.row("uniq 10M lines (~2 GB)", m["pipeline"], m["anchor"], "sort -u -S 4G",
                 goal="<= 1.0x, RSS < 256 MB",
                 met=ratio <= 1.0 and m["pipeline"]["peak_rss_mb"] < 256)

    def ingest(self) -> None:
        coll = self.dir / "collection"
        reqs = self.dir / "collection_requests.json.gz"
        n = self.world["pdfs"]
        pdf_mb = self.world["collection"]["pdf_bytes"] / MB
        m = measure({
            "pipeline": [*STEP, "ingest", str(reqs), str(self.tmp / "ingest.json.gz"), str(coll)],
            "anchor": [PY, str(ROOT / "bench" / "ingest_floor.py"), str(coll)],
        }, self.repeat)
        ours, floor = m["pipeline"], m["anchor"]
        share = floor["median_s"] / ours["median_s"]
        self.row("ingest, local collection", ours, floor, "read+gunzip+hash floor",
                 goal=">= 0.7 of the floor", met=share >= 0.7, requests=n,
                 requests_per_s=n / ours["median_s"], mb_per_s=pdf_mb / ours["median_s"],
                 floor_mb_per_s=pdf_mb / floor["median_s"], share_of_floor=share)
        from services import run_pywb
        with tempfile.TemporaryDirectory() as root, run_pywb(Path(root)) as pywb:
            url = pywb.serve(coll, "bench")
            h = measure({"pipeline": [*STEP, "ingest", str(reqs), str(self.tmp / "ingest-http.json.gz"),
                                      url]}, max(1, self.repeat // 2))
        self.row("ingest, pywb over HTTP", h["pipeline"], None, "", requests=n,
                 requests_per_s=n / h["pipeline"]["median_s"],
                 mb_per_s=pdf_mb / h["pipeline"]["median_s"])

    def ingest_sample(self) -> None:
        """Issue 20's row: the sample world (data/world, small PDFs and one 129 MiB body), one
        shard through luigi (`IngestShard --shards 1 --local-scheduler`: interpreter, luigi and
        pipeline start-up, scheduling and completeness checks included), text extraction and
        GROBID off, against the floor on the same collection. Everything the shard needs (the
        requests, the warm-up sample) is built once, untimed; each run removes the shard's
        target, sidecars and sink files first. The pipeline's modules are byte-compiled first,
        as an installed package's are (this box sets PYTHONDONTWRITEBYTECODE, which would make
        every run compile them again: ~0.1 s that no installed run pays)."""
        world = ROOT / "data" / "world"
        coll = world / "collection"
        if not (coll / "archive").is_dir():
            print("  ingest_sample: no sample world (make world); row skipped", flush=True)
            return
        base = ROOT / "data" / "bench" / "sample-ingest"
        work = base / "work"
        base.mkdir(parents=True, exist_ok=True)
        cfg = base / "luigi.cfg"
        cfg.write_text("[backfill]\n"
                       f"workdir = {work}\n"
                       f"export = {world / 'file_export.json.gz'}\n"
                       f"archive = {coll}\n"
                       "shards = 1\n"
                       "sample_min_success = 0\n"
                       "[pdftext]\n"
                       "enabled = false\n")
        subprocess.run([PY, "-m", "compileall", "-q", str(ROOT / "pipeline")], check=True,
                       capture_output=True)
        shard = [str(Path(PY).parent / "luigi"), "--module", "pipeline.tasks", "IngestShard",
                 "--shard", "0", "--shards", "1", "--local-scheduler"]

        def fresh() -> None:
            for name in ("ingest_results", "sinks"):
                shutil.rmtree(work / name, ignore_errors=True)

        with luigi_config(cfg):
            subprocess.run(shard, cwd=ROOT, check=True, capture_output=True)  # the inputs, once
            # the floor first in each round, so the last run of all is the shard's (read below)
            m = measure({"anchor": [PY, str(ROOT / "bench" / "ingest_floor.py"), str(coll)],
                         "pipeline": shard}, self.short_repeat, before=fresh)
        counts = json.loads((work / "ingest_results" / "shard-000-of-001.counts.json").read_text())
        expected = json.loads((world / "summary.json").read_text())["statuses"]
        right = {k: v for k, v in counts.items() if k != "total"} == expected
        ours, floor = m["pipeline"], m["anchor"]
        share = floor["median_s"] / ours["median_s"]
        inflated_mb = floor["counts"]["bytes_inflated"] / MB
        # a fast shard with other statuses than the world's oracle meets nothing
        self.row("ingest, sample world, luigi", ours, floor, "read+gunzip+hash floor",
                 goal=">= 0.7 of the floor", met=share >= 0.7 and right, requests=counts["total"],
                 requests_per_s=counts["total"] / ours["median_s"],
                 mb_per_s=inflated_mb / ours["median_s"], share_of_floor=share,
                 share_of_floor_cpu=floor["median_cpu_s"] / ours["median_cpu_s"],
                 statuses_as_the_world_says=right)

    def _catalog_for(self, file_meta: Path, limit: int | None,
                     unmatched: int = 0) -> tuple[Path, Path, Path]:
        """A seeded catalog (loaded once, untimed) holding an entity lacking sha256 per record
        (the first `limit` records of `file_meta`, all by default) and `unmatched` entities no
        record finds (the sha1s of the records after them). A cached catalog built with other
        pages than the embedded catalog makes now (an older bench's) is built again."""
        import sqlite3

        from isal import igzip

        from pipeline.catalog.export import load_export
        from pipeline.catalog.sqlite import PAGE_SIZE
        tag = f"{limit or 'all'}" + (f"+{unmatched}" if unmatched else "")
        base = self.tmp / f"catalog-{tag}.sqlite"
        records = self.tmp / f"import-{tag}.json.gz"
        export = self.tmp / f"catalog-seed-{tag}.json.gz"
        if base.exists() and records.exists() and export.exists():
            with contextlib.closing(sqlite3.connect(base)) as db:
                if db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE:
                    return base, records, export
        seeded = None if limit is None else limit + unmatched
        with igzip.open(file_meta, "rb") as src, igzip.open(export, "wb") as seed, \
                igzip.open(records, "wb") as rec:
            for i, line in enumerate(src):
                if seeded is not None and i >= seeded:
                    break
                fm = json.loads(line)
                if limit is None or i < limit:
                    rec.write(line)
                seed.write(json.dumps({
                    "ident": worldgen_scale.ident_for(i), "mimetype": "application/pdf",
                    "revision": str(uuid.UUID(int=i + 1)), "sha1": fm["sha1hex"], "state": "active",
                    "release_ids": [worldgen_scale.ident_for(i + 1 << 40)],
                    "urls": [{"rel": "web", "url": f"https://example.org/{i}.pdf"}],
                }).encode() + b"\n")
        base.unlink(missing_ok=True)
        load_export(str(base), str(export), rejects_path=str(self.tmp / "catalog-rejects.json"))
        return base, records, export

    def import_(self) -> None:
        """The embedded import at this size's scale (every uniq record into a catalog of as
        many entities) and, at full size, issue 20's own row (100k updates into a catalog of
        200k entities); then the import through the HTTP stand-in, once."""
        uniq = self.work / "uniq.json.gz"
        runs = [("import", None, 0, "import into SQLite")]
        if self.size == "full":
            runs.append(("import", 100_000, 100_000, "import into SQLite, 100k of 200k"))
        runs.append(("import-http", 1_000 if self.size == "quick" else 2_000, 0,
                     "import via HTTP stand-in"))
        for step, limit, unmatched, label in runs:
            base, records, export = self._catalog_for(uniq, limit, unmatched)
            run_db, journal = self.tmp / "run.sqlite", self.tmp / "journal.json"

            def fresh(base=base, run_db=run_db, journal=journal) -> None:
                for p in (run_db, Path(f"{run_db}-wal"), Path(f"{run_db}-shm"), journal):
                    p.unlink(missing_ok=True)
                shutil.copyfile(base, run_db)

            target = run_db if step == "import" else export
            m = measure({"pipeline": [*STEP, step, str(records), str(target), str(journal)]},
                        self.repeat if step == "import" else 1,
                        before=fresh)
            n = m["pipeline"]["counts"]["total"]
            rate = n / m["pipeline"]["median_s"]
            # the box is shared: records per CPU second is the figure load does not inflate
            self.row(label, m["pipeline"], None, "", records=n, records_per_s=rate,
                     records_per_cpu_s=n / m["pipeline"]["median_cpu_s"],
                     catalog_entities=(limit + unmatched) if limit is not None else n,
                     goal=">= 20,000 records/s" if step == "import" else "",
                     met=rate >= 20_000 if step == "import" else None)

    def noop_rerun(self) -> None:
        """The whole pipeline (Backfill) at this scale, built once, then rerun with nothing to do."""
        work = self.dir / "pipeline"
        cfg = self.dir / "pipeline.cfg"
        cfg.write_text(
            "[backfill]\n"
            f"workdir = {work}\n"
            f"export = {self.world['export']}\n"
            f"archive = {self.dir / 'collection'}\n"
            "sample_min_success = 0\n")
        env = {**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}
        luigi = [str(Path(PY).parent / "luigi"), "--module", "pipeline.tasks", "Backfill",
                 "--local-scheduler"]
        done = work / ".bench-built"
        if not done.exists():
            t0 = time.perf_counter()
            subprocess.run(luigi, cwd=ROOT, env=env, check=True, capture_output=True)
            done.write_text(f"{time.perf_counter() - t0:.1f}\n")
            print(f"  pipeline built at this scale in {done.read_text().strip()} s", flush=True)
        with luigi_config(cfg):
            m = measure({"pipeline": luigi}, self.repeat)
            last = run_once(luigi)
        self.row("no-op rerun of Backfill", m["pipeline"], None, "", goal="<= 2 s",
                 met=m["pipeline"]["median_s"] <= 2.0,
                 nothing_run="Did not run any tasks" in last["stdout"] + last.get("stderr", ""),
                 first_build_s=float(done.read_text()))

    # -- output ----------------------------------------------------------------------------

    def table(self) -> str:
        nan = float("nan")
        lines = [f"{'step':26} {'ours s':>7} {'cpu s':>6} {'anchor s':>8} {'cpu s':>6} {'ratio':>6} "
                 f"{'RSS MB':>6} {'anch RSS':>8}  {'rate':30} {'goal':22} met  anchor"]
        for r in self.rows:
            a = r.get("anchor") or {}
            p = r["pipeline"]
            rate = ""
            if "records_per_s" in r:
                rate = f"{r['records_per_s']:,.0f} records/s"
                if "records_per_cpu_s" in r:
                    rate += f" ({r['records_per_cpu_s']:,.0f}/CPU s)"
            elif "requests_per_s" in r:
                rate = f"{r['requests_per_s']:,.1f} req/s, {r['mb_per_s']:,.0f} MB/s"
                if "share_of_floor" in r:
                    rate += f", {r['share_of_floor']:.2f} of floor"
                if "share_of_floor_cpu" in r:
                    rate += f" (CPU {r['share_of_floor_cpu']:.2f})"
            met = {True: "yes", False: "NO", None: ""}[r.get("met")]
            ratio = r["ratio"] if r.get("ratio") is not None else nan
            lines.append(
                f"{r['step']:26} {p['median_s']:7.2f} {p.get('median_cpu_s', nan):6.2f} "
                f"{a.get('median_s', nan):8.2f} {a.get('median_cpu_s', nan):6.2f} {ratio:6.2f} "
                f"{p.get('peak_rss_mb', nan):6.0f} {a.get('peak_rss_mb', nan):8.0f}  {rate:30} "
                f"{r.get('goal', ''):22} {met:4} {r.get('anchor_name', '')}")
        return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(worldgen_scale.SIZES), default="quick")
    ap.add_argument("--repeat", type=int, default=None, help="runs per variant (default 3; the "
                    "HTTP ingest and the import through the stand-in run once, the sample "
                    f"world's shard at least {SHORT_REPEAT} times)")
    ap.add_argument("--only", default=None, help="comma-separated: export_filter,requests,"
                    "merge_uniq,uniq_10m,ingest,ingest_sample,import_,noop_rerun")
    args = ap.parse_args(argv)
    for tool in ("pigz", "rg", "jq"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (make bench installs pigz ripgrep jq)")
    t0 = time.perf_counter()
    b = Bench(args.size, args.repeat or 3,
              set(args.only.split(",")) if args.only else None)
    steps = ["export_filter", "requests", "merge_uniq", "uniq_10m", "ingest", "ingest_sample",
             "import_", "noop_rerun"]
    if any(b.want(n) for n in steps if n != "ingest_sample"):
        b.world  # noqa: B018 (generated here, before any timing)
        print(f"world ready in {time.perf_counter() - t0:.1f} s: {b.dir}", flush=True)
    for name in steps:
        if b.want(name) and hasattr(b, name):
            s0 = time.perf_counter()
            getattr(b, name)()
            print(f"  {name}: {time.perf_counter() - s0:.1f} s", flush=True)
    table = b.table()
    print(f"\n== bench ({args.size}; {b.repeat} runs each, the sample world's shard "
          f"{b.short_repeat}, medians; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}) ==")
    print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.size}.json"
    out.write_text(json.dumps({
        "size": args.size, "world": b.__dict__.get("world"), "repeat": b.repeat, "short_repeat": b.short_repeat,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "loadavg_end": os.getloadavg()},
        "seconds_total": time.perf_counter() - t0, "rows": b.rows, "table": table,
    }, indent=1, default=str) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
