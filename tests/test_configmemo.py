"""A configuration section is made once per configuration, and made again when it changes.

`pipeline.configmemo` keeps a section luigi resolved and hands it out again while the
luigi command line, the config parser object and the raw values its parameters read are
the same. These tests change each of those and ask that the new value is seen, and that
an unchanged configuration is resolved once.
"""

from __future__ import annotations

import configparser

import luigi
import pytest
from luigi.cmdline_parser import CmdlineParser
from luigi.task_register import Register
from luigi_config import config_options

from pipeline import config
from pipeline.configmemo import remembered
from pipeline.ingest.settings import IngestSettings


@pytest.fixture
def resolutions(monkeypatch):
    """How many times luigi resolved a section's parameters, by section name."""
    counted: dict[str, int] = {}
    real = Register.__call__

    def counting(cls, *args, **kwargs):
        name = cls.__name__ + (" with values" if args or kwargs else "")
        counted[name] = counted.get(name, 0) + 1
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(Register, "__call__", counting)
    return counted


def test_an_unchanged_section_is_resolved_once(resolutions, tmp_path):
    with config_options("backfill", {"workdir": str(tmp_path / "a")}):
        first = config.backfill()
        assert config.backfill() is first and first.workdir == str(tmp_path / "a")
        assert [config.backfill().workdir for _ in range(5)] == [str(tmp_path / "a")] * 5
    assert resolutions == {"backfill": 1}


def test_a_value_set_or_removed_is_seen_at_once(tmp_path):
    with config_options("backfill", {"workdir": str(tmp_path / "a")}):
        assert config.backfill().workdir == str(tmp_path / "a")
        with config_options("backfill", {"workdir": str(tmp_path / "b")}):
            assert config.backfill().workdir == str(tmp_path / "b")
        assert config.backfill().workdir == str(tmp_path / "a")
    with config_options("ingest", {"max_hops": "3"}):
        assert config.ingest().max_hops == 3
    assert config.ingest().max_hops == IngestSettings.max_hops  # removed: the default


def test_a_default_section_value_counts_too():
    parser = luigi.configuration.get_config()
    before = config.backfill().shards
    # as a [DEFAULT] section in a config file would (luigi's own `set` refuses DEFAULT)
    configparser.ConfigParser.set(parser, parser.default_section, "shards", str(before + 6))
    try:
        assert config.backfill().shards == before + 6
    finally:
        parser.remove_option(parser.default_section, "shards")
    assert config.backfill().shards == before


def test_each_command_line_has_its_own_sections(tmp_path):
    args = ["IngestShard", "--shard", "0", "--shards", "1",
            "--backfill-workdir", str(tmp_path / "cli")]
    with config_options("backfill", {"workdir": str(tmp_path / "cfg")}):
        outside = config.backfill()
        with CmdlineParser.global_instance(args):
            assert config.backfill().workdir == str(tmp_path / "cli")
        with CmdlineParser.global_instance(args[:5]):  # another command line, no override
            assert config.backfill().workdir == str(tmp_path / "cfg")
        assert config.backfill() is outside


def test_values_taken_from_the_environment_are_read_every_time(monkeypatch, resolutions,
                                                               tmp_path):
    monkeypatch.setenv("FILEMETA_TEST_WORKDIR", str(tmp_path / "one"))
    with config_options("backfill", {"workdir": "${FILEMETA_TEST_WORKDIR}"}):
        assert config.backfill().workdir == str(tmp_path / "one")
        monkeypatch.setenv("FILEMETA_TEST_WORKDIR", str(tmp_path / "two"))
        assert config.backfill().workdir == str(tmp_path / "two")
    assert resolutions["backfill"] == 2


def test_a_section_asked_for_with_values_is_not_kept(resolutions):
    made = config.ingest(max_hops=2)
    assert made.max_hops == 2 and config.ingest(max_hops=2).max_hops == 2
    assert config.ingest().max_hops == IngestSettings.max_hops
    assert resolutions["ingest with values"] == 2


class memo_probe(luigi.Config):  # noqa: N801 - a section of this test's own
    """Reads `size` from [memo_probe], else under another section's name (`config_path`)."""

    size = luigi.IntParameter(default=1, config_path=dict(section="memo_elsewhere", name="size"))


@pytest.mark.filterwarnings("ignore:The use of the configuration:DeprecationWarning")
def test_a_value_read_from_another_section_counts_too():
    """luigi's own [core] reads old names this way (`default-scheduler-port`); luigi warns that
    the other section is deprecated, which is not what is tested here."""
    parser = luigi.configuration.get_config()
    parser.add_section("memo_elsewhere")
    try:
        with config_options("memo_elsewhere", {"size": "5"}):
            assert remembered(memo_probe).size == 5
            with config_options("memo_elsewhere", {"size": "6"}):
                assert remembered(memo_probe).size == 6
        assert remembered(memo_probe).size == 1
    finally:
        parser.remove_section("memo_elsewhere")


def test_a_command_line_value_rewritten_in_place_is_seen(tmp_path):
    """The run's manifest makes a relative path given on the command line absolute by
    rewriting the parsed arguments (`runsettings._set_option`): same parser, new value."""
    args = ["IngestShard", "--shard", "0", "--shards", "1", "--backfill-export", "rel/x.json.gz"]
    with CmdlineParser.global_instance(args) as command_line:
        assert config.backfill().export == "rel/x.json.gz"
        dest = config.backfill.export._parser_global_dest("export", "backfill")
        setattr(command_line.known_args, dest, str(tmp_path / "rel/x.json.gz"))
        assert config.backfill().export == str(tmp_path / "rel/x.json.gz")
