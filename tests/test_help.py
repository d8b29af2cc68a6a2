"""Every setting documents itself where operators look: `luigi ... --help-all`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import luigi
from luigi.task_register import Register

import pipeline.tasks  # noqa: F401 - registers the steps
from pipeline import config

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_and_task_parameter_has_a_description():
    missing = [f"[{s.get_task_family()}] {n}" for s in config.SECTIONS
               for n, p in s.get_params() if not p.description]
    for name, cls in Register._get_reg().items():
        if isinstance(cls, type) and issubclass(cls, luigi.Task) \
                and cls.__module__.startswith("pipeline."):
            missing += [f"{name}.{n}" for n, p in cls.get_params() if not p.description]
    assert missing == []


def test_help_all_prints_each_settings_description():
    out = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
                          "--help-all"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    for section in config.SECTIONS:
        family = section.get_task_family()
        for name, param in section.get_params():
            option = f"--{family}-{name.replace('_', '-')}"
            assert option in text, option
            assert " ".join(param.description.split()) in text, option
