"""The one operator CLI: `python -m pipeline` (the `backfill` script) and its subcommands."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from archive_collections import CollectionBuilder

ROOT = Path(__file__).resolve().parent.parent
PDF = b"%PDF-1.4\n" + b"x" * 300 + b"\n%%EOF\n"


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_archive_index_subcommand_indexes_a_collection(tmp_path):
    b = CollectionBuilder(tmp_path / "c")
    b.response("http://example.org/a.pdf", "20190101000000", PDF)
    b.response("http://example.org/b.pdf", "20190102000000", PDF)
    b.close_files()
    p = run_cli("archive", "index", str(b.root), "--name", "index.cdxj")
    assert p.returncode == 0, p.stderr
    assert "2 rows ->" in p.stderr
    lines = (b.root / "indexes" / "index.cdxj").read_text().splitlines()
    assert [line.split(" ")[0] for line in lines] == ["org,example)/a.pdf", "org,example)/b.pdf"]


def test_archive_index_of_a_missing_directory_fails(tmp_path):
    p = run_cli("archive", "index", str(tmp_path / "nothing-here"))
    assert p.returncode == 2
    assert "is not a directory" in p.stderr
    assert not (tmp_path / "nothing-here").exists()  # no empty index made up


def test_steps_lists_each_step_once(tmp_path):
    p = run_cli("--workdir", str(tmp_path / "work"), "steps")
    assert p.returncode == 0, p.stderr
    families = [line.split()[0] for line in p.stdout.splitlines()]
    assert families.count("IngestShard") == 1
    assert len(families) == len(set(families))
    assert {"ExportMissingSha256", "MergeFileMeta", "ImportFileMeta"} <= set(families)


def test_the_cli_is_the_only_entry_point():
    """No module of the package but `pipeline.cli` defines `main` or runs as a script."""
    offenders = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "main" and rel != "pipeline/cli.py":
                offenders.append(f"{rel}: def main")
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                offenders.append(f"{rel}: if __name__ == '__main__'")
    assert offenders == []


def test_options_are_accepted_after_the_subcommand_too(tmp_path):
    before = run_cli("--workdir", str(tmp_path / "a"), "path", "UniqFileMeta")
    after = run_cli("path", "UniqFileMeta", "--workdir", str(tmp_path / "a"))
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
    assert after.stdout.strip() == str(tmp_path / "a" / "files_missing_sha256.file_meta.uniq.json.gz")
    messages = run_cli("messages", "--workdir", str(tmp_path / "a"))
    assert messages.returncode == 0, messages.stderr
    assert messages.stdout.strip() == "all sinks: no messages"
    # nested subcommands too; the one given last wins, as for any repeated option
    dump = run_cli("--workdir", str(tmp_path / "a"), "catalog", "dump", "--workdir", str(tmp_path / "b"))
    assert f"no catalog at {tmp_path / 'b' / 'catalog.sqlite'}" in dump.stderr


def test_status_lists_leftover_temporaries_by_host_and_sweep_removes_them(tmp_path):
    """Another host's temporaries are only listed; `sweep` removes this host's dead ones and
    `sweep --host NAME` that host's, each with its own command."""
    from pipeline.tempnames import host_name, temp_name

    work = tmp_path / "work"
    (work / "ingest_results").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    theirs = work / "ingest_results" / "shard-001-of-004.json.gz.tmp-worker-b-4711-99"
    mine_dead = work / f"files_missing_sha256.json.gz.tmp-{host_name()}-{dead.pid}-1"
    for p in (theirs, mine_dead):
        p.write_text("partial")
    (work / ".uniq-runs-x1.tmp-worker-b-4711-99").mkdir()
    p = run_cli("--workdir", str(work), "status", "--brief")
    assert "temporary files of worker-b (2)" in p.stdout, p.stdout + p.stderr
    assert "sweep --host worker-b" in p.stdout and "ingest_results/shard-001-of-004" in p.stdout
    assert f"temporary files of {host_name()} (1)" in p.stdout
    live = Path(temp_name(work / "x.json.gz"))  # this test process: live, never listed
    live.write_text("being written")
    assert live.name not in run_cli("--workdir", str(work), "status").stdout

    p = run_cli("--workdir", str(work), "sweep")
    assert p.returncode == 0, p.stderr
    assert not mine_dead.exists() and theirs.exists() and live.exists()
    p = run_cli("--workdir", str(work), "sweep", "--host", "worker-b")
    assert p.returncode == 0, p.stderr
    assert "removed 2 temporary file(s) of worker-b" in p.stdout
    assert not theirs.exists() and not (work / ".uniq-runs-x1.tmp-worker-b-4711-99").exists()
    assert live.exists()
    assert "temporary files of" not in run_cli("--workdir", str(work), "status").stdout
