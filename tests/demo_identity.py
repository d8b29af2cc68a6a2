"""Compare `make demo` of two commits: same output, same targets (a script, not a test module).

Why: a refactoring that moves code must not change a result. This checks out
the BEFORE commit into a temporary directory with its own virtualenv and a
copy of the sample world, runs `make -s demo`, sets the work directory aside,
then does the same with the AFTER commit in the same directory (targets and
task ids hold absolute paths), and compares:

- the demo's standard output, byte for byte (Luigi's summary, `status`, the
  counters);
- Luigi's execution summary, byte for byte;
- the pipeline's own log lines (`INFO:` lines of the steps and the worker),
  with Luigi's worker identity, pids and task-id hashes masked, grouped per
  task run (independent shards run in an order that varies run to run);
- every file under the work directory: byte for byte, except
  * `*.meta.json` sidecars: compared as JSON without timings (`started`,
    `finished`, `seconds`, the `mtime_ns` of inputs and outputs; an input that
    is itself a sidecar or the report is compared by path);
  * `report.json` without timings; `report.html` only present (its charts
    draw the timings);
  * the import journal: compared without each event's `time`, editgroup ids
    renamed in order, the clone's directory masked in the catalog path;
  * `catalog.sqlite`: every table dumped in key order, with the timestamps
    dropped and the random editgroup, revision and edit ids renamed in order
    of first use (so two runs that made the same edits compare equal);
- then runs `make -s demo` again in the AFTER clone and checks it prints
  "Did not run any tasks" and rewrites no file (same bytes and mtimes).

Usage: `python tests/demo_identity.py [--before REV] [--after REV] [--keep]` (defaults:
main and HEAD, so run it on your branch before landing).
Prints one line per compared item and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKDIR = "data/work"

_MASKS = [
    (re.compile(r"Worker\(salt=[^)]*\)"), "Worker(...)"),
    (re.compile(r"\[pid \d+\]"), "[pid N]"),
    (re.compile(r"__[0-9a-f]{10}\b"), "__HASH"),
    (re.compile(r"_[0-9a-f]{10}\b"), "_HASH"),
]


def sh(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, check=True, text=True, **kw)


def prepare(rev: str, dest: Path) -> Path:
    """A clone of `rev` with the sample world copied in and its own virtualenv."""
    sh(["git", "clone", "-q", "--no-checkout", str(REPO), str(dest)], cwd=REPO)
    sh(["git", "checkout", "-q", rev], cwd=dest)
    world = REPO / "data" / "world"
    if (world / "summary.json").exists():
        shutil.copytree(world, dest / "data" / "world", symlinks=True)
        (dest / "data" / "world" / "summary.json").touch()  # newer than the clone's generator
    pywb = REPO / ".venv-pywb"
    if pywb.exists():
        os.symlink(os.path.realpath(pywb), dest / ".venv-pywb")
    sh(["make", "-s", "venv", "world"], cwd=dest, capture_output=True)
    return dest


def run_demo(tree: Path) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LUIGI_CONFIG_PATH"}
    p = subprocess.run(["make", "-s", "demo"], cwd=tree, env=env, text=True,
                       capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"make demo failed in {tree}:\n{p.stdout}\n{p.stderr}")
    return p.stdout, p.stderr


def log_blocks(stderr: str) -> list[tuple[str, ...]]:
    """The step and worker log lines, identities masked, as one block per task run
    (`running X` ... `done X`), sorted: independent shards run in the scheduler's order,
    which changes from run to run."""
    blocks: list[tuple[str, ...]] = []
    current: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith("INFO: ") or "Informed scheduler" in line:
            continue
        for pattern, repl in _MASKS:
            line = pattern.sub(repl, line)
        current.append(line)
        if ") done " in line:
            blocks.append(tuple(current))
            current = []
    if current:
        blocks.append(tuple(current))
    return sorted(blocks)


def summary(text: str) -> str:
    """Luigi's execution summary (between its two banner lines)."""
    banner = "===== Luigi Execution Summary ====="
    parts = text.split(banner)
    return parts[1] if len(parts) >= 3 else ""


# (a sidecar's `checksum` covers its timings, so it differs between two correct runs too)
TIMING_KEYS = ("generated", "started", "finished", "seconds", "rate_per_s", "mtime_ns", "checksum",
               "total_step_seconds")


def without_timings(value):
    """`value` with every timing key dropped, at any depth."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def normal_meta(path: Path) -> dict:
    """A sidecar without timings; an input that holds timings itself (another sidecar, the
    run report) is compared by path only."""
    meta = without_timings(json.loads(path.read_text()))
    for item in meta.get("inputs", []) + meta.get("outputs", []):
        if item["path"].endswith((".meta.json", "report.json", "report.html")):
            item.pop("sha256", None)
            item.pop("size", None)
    return meta


def normal_journal(path: Path) -> list[dict]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids: dict[str, str] = {}
    for e in events:
        e.pop("time", None)
        e.pop("owner", None)  # the process that wrote the event (pid, host)
        if "editgroup_id" in e:
            e["editgroup_id"] = ids.setdefault(e["editgroup_id"], f"eg{len(ids)}")
    return events


def normal_catalog(path: Path) -> dict[str, list]:
    """Every table in key order, timestamps dropped, random ids renamed in order of use."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    names: dict[str, str] = {}

    def name(value: str | None, kind: str) -> str | None:
        if value is None:
            return None
        return names.setdefault(value, f"{kind}{sum(v.startswith(kind) for v in names.values())}")

    groups = [r[0] for r in db.execute("SELECT editgroup_id FROM changelog ORDER BY idx")]
    groups += [r[0] for r in db.execute("SELECT editgroup_id FROM editgroup ORDER BY created, "
                                        "editgroup_id") if r[0] not in groups]
    for g in groups:
        name(g, "eg")
    edits = sorted(db.execute("SELECT editgroup_id, ident, rev_id, edit_id, prev_rev FROM file_edit"),
                   key=lambda r: (names[r[0]], r[1]))
    for _, _, rev, edit, _ in edits:
        name(rev, "rev")
        name(edit, "edit")

    def rename(text):
        if not isinstance(text, str):
            return text
        for old, new in names.items():
            text = text.replace(old, new)
        return text

    out = {
        "changelog": [names[g] for g in groups if g in
                      {r[0] for r in db.execute("SELECT editgroup_id FROM changelog")}],
        "editgroup": sorted((names[g], d, e) for g, d, e in
                            db.execute("SELECT editgroup_id, description, extra FROM editgroup")),
        "file_edit": [(names[g], i, names[r], names[e], rename(p)) for g, i, r, e, p in edits],
        "file_ident": [tuple(rename(v) for v in row) for row in db.execute(
            "SELECT ident, state, active, revision, sha1, body FROM file_ident ORDER BY ident")],
        "file_rev": sorted(tuple(rename(v) for v in row) for row in db.execute(
            "SELECT rev_id, ident, body FROM file_rev")),
    }
    db.close()
    return out


def compare_file(rel: str, a: Path, b: Path) -> tuple[bool, str]:
    if rel.endswith(".meta.json"):
        return normal_meta(a) == normal_meta(b), "sidecar without finished/mtime_ns"
    if rel.endswith(".journal.json"):
        return normal_journal(a) == normal_journal(b), "journal without times, ids renamed"
    if rel == "report.json":
        return (without_timings(json.loads(a.read_text())) == without_timings(json.loads(b.read_text())),
                "report without timings")
    if rel == "report.html":  # a view of report.json whose charts draw the timings
        return a.stat().st_size > 0 and b.stat().st_size > 0, "present (charts show timings)"
    if rel.endswith(".sqlite"):
        return normal_catalog(a) == normal_catalog(b), "catalog tables, ids renamed, no times"
    return a.read_bytes() == b.read_bytes(), "bytes"


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in root.rglob("*") if p.is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="main", help="the commit before the change (default: main)")
    ap.add_argument("--after", default="HEAD")
    ap.add_argument("--keep", action="store_true", help="keep the temporary clones")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="demo-identity-"))
    ok = True
    try:
        # Both commits run in the same directory, one after the other: targets, sidecars
        # and task ids hold absolute paths, which must not differ for a path's sake.
        tree = tmp / "tree"
        prepare(args.before, tree)
        out_a, err_a = run_demo(tree)
        before = tmp / "before"
        before.mkdir()
        shutil.move(tree / WORKDIR, before / WORKDIR)
        shutil.rmtree(tree)
        after = prepare(args.after, tree)
        out_b, err_b = run_demo(after)

        same = out_a == out_b
        ok &= same
        print(f"{'same' if same else 'DIFF'}  demo stdout ({len(out_a.splitlines())} lines)")
        if not same:
            sys.stdout.writelines(line + "\n" for line in _diff(out_a, out_b))
        sa, sb = summary(out_a + err_a), summary(out_b + err_b)
        same = sa == sb and bool(sa)
        ok &= same
        print(f"{'same' if same else 'DIFF'}  Luigi execution summary ({len(sa.splitlines())} lines)")
        if not same:
            sys.stdout.writelines(line + "\n" for line in _diff(sa, sb))
        la, lb = log_blocks(err_a), log_blocks(err_b)
        same = la == lb
        ok &= same
        print(f"{'same' if same else 'DIFF'}  step log lines ({sum(map(len, la))} lines in "
              f"{len(la)} task blocks, identities masked)")
        if not same:
            flat_a, flat_b = ("\n".join(x for b in blocks for x in b) for blocks in (la, lb))
            sys.stdout.writelines(line + "\n" for line in _diff(flat_a, flat_b))

        wa, wb = before / WORKDIR, after / WORKDIR
        fa, fb = files_under(wa), files_under(wb)
        if fa != fb:
            ok = False
            print(f"DIFF  file sets: only before {sorted(fa - fb)}, only after {sorted(fb - fa)}")
        for rel in sorted(fa & fb):
            same, how = compare_file(rel, wa / rel, wb / rel)
            ok &= same
            print(f"{'same' if same else 'DIFF'}  {rel} ({how})")

        snap = snapshot(wb)
        out_c, err_c = run_demo(after)
        quiet = "Did not run any tasks" in out_c + err_c
        untouched = snapshot(wb) == snap
        ok &= quiet and untouched
        print(f"{'same' if quiet else 'DIFF'}  second demo says 'Did not run any tasks'")
        print(f"{'same' if untouched else 'DIFF'}  second demo rewrote no file ({len(snap)} files)")
    finally:
        if args.keep:
            print(f"clones kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("IDENTICAL" if ok else "DIFFERENT")
    return 0 if ok else 1


def _diff(a: str, b: str) -> list[str]:
    import difflib

    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), "before", "after",
                                     lineterm="", n=1))[:60]


if __name__ == "__main__":
    raise SystemExit(main())
