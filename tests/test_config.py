"""Defaults are written once: luigi.cfg restates none of the pipeline's defaults.

The defaults live in the plain modules that use them and `pipeline.config`
reads them from there; `luigi.cfg` may only set what differs (docs/configuration.md).
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import luigi

from pipeline import config
from pipeline.importer.importer import DEFAULT_DESCRIPTION
from pipeline.ingest.settings import DEFAULT_BLOCKLIST, IngestSettings, split_list
from pipeline.targets import DEFAULT_WORKDIR, SAMPLE_EXPORT

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = {name: cls for name, cls in vars(config).items()
            if isinstance(cls, type) and issubclass(cls, luigi.Config) and cls is not luigi.Config}





def test_the_sections_are_found():
    assert {"backfill", "ingest", "grobid", "kafka", "importer"} <= set(SECTIONS)


def test_luigi_cfg_restates_no_default():
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "luigi.cfg")
    restated = []
    for section in SECTIONS:
        if not cfg.has_section(section):
            continue
        for key, text in cfg.items(section):
            params = dict(SECTIONS[section].get_params())
            assert key in params, f"[{section}] {key} is not a setting of pipeline.config"
            param = params[key]
            if param.parse(text) == param._default or (
                    isinstance(param._default, str) and split_list(text) == split_list(param._default)
                    and "," in param._default):
                restated.append(f"[{section}] {key}")
    assert restated == [], f"luigi.cfg restates defaults: {restated}"


def test_config_reads_the_defaults_of_the_plain_modules():
    """One value, two readers: the config section and the plain code agree by construction."""
    params = {s: dict(cls.get_params()) for s, cls in SECTIONS.items()}
    assert params["backfill"]["workdir"]._default == DEFAULT_WORKDIR
    assert params["backfill"]["export"]._default == SAMPLE_EXPORT
    assert params["ingest"]["max_hops"]._default == IngestSettings.max_hops
    assert params["ingest"]["url_blocklist"]._default == DEFAULT_BLOCKLIST
    assert tuple(split_list(DEFAULT_BLOCKLIST)) == IngestSettings().blocklist
    assert params["importer"]["description"]._default == DEFAULT_DESCRIPTION


def _changed_text(param, default) -> str:
    """A cfg value different from `default` for this parameter (as luigi.cfg would spell it)."""
    if isinstance(param, luigi.BoolParameter):
        return "false" if default else "true"
    if isinstance(param, luigi.IntParameter):
        return str(default + 1)
    if isinstance(param, luigi.FloatParameter):
        return str(default + 0.25)
    if isinstance(param, luigi.ListParameter):
        return '["elsewhere/results.json.gz"]'
    return f"{default}-changed" if default else "changed"


def _recorded_settings() -> dict[str, object]:
    """What every step would record as its settings under today's configuration."""
    from pipeline import tasks
    from pipeline.tasks.base import BackfillTask

    out = {}
    for cls in vars(tasks).values():
        if isinstance(cls, type) and issubclass(cls, BackfillTask) and cls.target_name != "":
            task = cls(shard=0, shards=4) if cls is tasks.IngestShard else cls()
            out[cls.__name__] = json.dumps(task.settings(), sort_keys=True, default=list)
    return out


def test_significant_means_recorded():
    """The `significant` flag of each setting in pipeline.config is the one declaration of
    what changes results: a setting declared significant changes some step's recorded
    settings (so changing it reruns that step), one declared not never does."""
    from luigi_config import config_options

    base = _recorded_settings()
    assert {"ExportMissingSha256", "IngestShard", "ImportFileMeta"} <= set(base)
    wrong = []
    for section, cls in SECTIONS.items():
        for key, param in cls.get_params():
            with config_options(section, {key: _changed_text(param, param._default)}):
                now = _recorded_settings()
            steps = sorted(k for k in base if now[k] != base[k])
            if param.significant and not steps:
                wrong.append(f"[{section}] {key} is declared significant but no step records it")
            if not param.significant and steps:
                wrong.append(f"[{section}] {key} is declared not significant but changes {steps}")
    assert wrong == [], "\n".join(wrong)
