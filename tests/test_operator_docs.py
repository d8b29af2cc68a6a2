"""What luigi.cfg's comments, the README and a failed step's error text tell an operator is true."""

from __future__ import annotations

import re
from pathlib import Path

import luigi
from luigi_config import config_options

from pipeline import config
from pipeline.tasks.base import walk_steps
from pipeline.tasks.rerun import rerun_command

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {c.get_task_family(): c for c in (config.backfill, config.ingest, config.grobid,
                                            config.kafka, config.pdftext, config.importer)}


def commented_values() -> list[tuple[str, str, str]]:
    """(section, key, value) of every commented-out `# key = value` line of luigi.cfg."""
    out, section = [], None
    for line in (ROOT / "luigi.cfg").read_text().splitlines():
        if m := re.match(r"\[(\w+)\]", line):
            section = m.group(1)
        elif section and (m := re.match(r"# (\w+) = (.+)$", line)):
            out.append((section, m.group(1), m.group(2).strip()))
    return out


def test_luigi_cfg_numbers_and_switches_are_the_defaults():
    """The file says a number or switch it shows is the default (it once showed 16, 8 and 50
    where the code's defaults were 4, 4 and 100)."""
    checked = 0
    for section, key, value in commented_values():
        if section not in SECTIONS or not re.fullmatch(r"-?\d+(\.\d+)?|true|false", value):
            continue
        param = dict(SECTIONS[section].get_params())[key]
        assert param.parse(value) == param._default, f"[{section}] {key} = {value}: the default is {param._default}"
        checked += 1
    assert checked >= 6


def test_readme_step_table_lists_every_step():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| step | target | beside it |", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^\| `(\w+)`", table, re.M))
    from pipeline.tasks import Backfill

    with config_options("grobid", {"host": "http://grobid.invalid:8070"}), \
            config_options("backfill", {"file_hashes": "/x/file_hashes.tsv.gz"}):
        steps = {t.task_family for t in walk_steps(Backfill()) if hasattr(t, "target_name")}
    assert "ImportFileMetaSample" in steps
    assert steps - listed == set()


def test_a_failed_steps_error_text_carries_the_rerun_command_with_the_runs_settings(tmp_path):
    from pipeline.tasks import IngestShard

    with config_options("backfill", {"workdir": str(tmp_path / "w")}), \
            config_options("grobid", {"host": "http://grobid.internal:8070"}):
        text = IngestShard(shard=3, shards=24).on_failure(RuntimeError("boom"))
        command = rerun_command(IngestShard(shard=3, shards=24))
    assert text.endswith(f"To re-run with this run's settings: {command}")
    assert command.startswith("luigi --module pipeline.tasks IngestShard --shard 3 --shards 24 ")
    assert f"--backfill-workdir {tmp_path / 'w'}" in command
    assert "--grobid-host http://grobid.internal:8070" in command
    assert "--run-dir" not in command  # derived from the work directory
    assert "--ingest-concurrency" not in command  # defaults are not repeated
    # luigi parses it back into the same task and settings
    argv = [*command.split()[3:], "--local-scheduler"]
    with luigi.cmdline_parser.CmdlineParser.global_instance(argv) as cp:
        task = cp.get_task_obj()
        assert (task.shard, task.shards) == (3, 24)
        assert config.grobid().host == "http://grobid.internal:8070"
