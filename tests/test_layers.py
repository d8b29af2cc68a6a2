"""The layers of docs/architecture.md hold: plain modules never load Luigi.

Only the Luigi layer (the tasks, the base task, the config sections, the
wiring and the CLI) may import `luigi`. Every other module of the package is
imported in a fresh interpreter, and Luigi must not be among the modules it
pulled in: plain code stays usable (and testable) without the scheduler.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pipeline

ROOT = Path(__file__).resolve().parent.parent

# The Luigi layer: the only modules allowed to import luigi (docs/architecture.md).
LUIGI_LAYER = {"pipeline.tasks", "pipeline.config", "pipeline.configmemo", "pipeline.wiring",
               "pipeline.cli",
               "pipeline.cli_catalog", "pipeline.cli_archive", "pipeline.cli_kafka",
               "pipeline.cli_temp", "pipeline.__main__"}


def all_modules() -> list[str]:
    names = ["pipeline"]
    for info in pkgutil.walk_packages(pipeline.__path__, "pipeline."):
        names.append(info.name)
    return sorted(names)


def in_luigi_layer(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in LUIGI_LAYER)


def plain_modules() -> list[str]:
    return [n for n in all_modules() if not in_luigi_layer(n)]


def test_module_list_is_complete():
    """The walk sees the packages this test is about (a broken walk would pass vacuously)."""
    names = set(all_modules())
    for expected in ("pipeline.provenance", "pipeline.checks", "pipeline.importer.importer",
                     "pipeline.importer.journal", "pipeline.catalog.factory",
                     "pipeline.steps.merge", "pipeline.ingest.worker", "pipeline.tasks"):
        assert expected in names
    assert len(plain_modules()) >= 40


def test_plain_modules_do_not_load_luigi():
    """Each plain module, imported alone in a fresh interpreter, leaves `luigi` unloaded."""
    script = (
        "import importlib, json, sys\n"
        "bad = {}\n"
        "for name in json.loads(sys.argv[1]):\n"
        "    before = set(sys.modules)\n"
        "    importlib.import_module(name)\n"
        "    if 'luigi' in sys.modules:\n"
        "        bad[name] = sorted(m for m in set(sys.modules) - before if m.startswith('pipeline'))\n"
        "        break\n"
        "print(json.dumps(bad))\n"
    )
    # One fresh interpreter imports them all, one after the other: luigi appears in
    # sys.modules at the first module that loads it (directly or through another), which
    # is reported with the package modules it pulled in. (An interpreter per module would
    # say the same, fifty times slower.)
    names = plain_modules()
    p = subprocess.run([sys.executable, "-c", script, json.dumps(names)], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {}, f"plain modules loading luigi: {p.stdout}"


def test_the_check_catches_a_module_that_loads_luigi():
    """The same probe reports a Luigi-layer module (so the test above can fail)."""
    probe = ("import importlib, sys; importlib.import_module('pipeline.tasks.base'); "
             "print('luigi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "True"


def test_the_tasks_load_pdfium_only_when_text_extraction_runs():
    """Every step's process imports `pipeline.tasks`; PDFium's bindings (~15 ms) are loaded
    by the shard that extracts text, not by every start-up (issue 20: the sample shard's
    start-up is part of its time)."""
    script = ("import sys\n"
              "import pipeline.tasks, pipeline.wiring\n"
              "print(sorted(m for m in sys.modules if m.startswith('pypdfium2')))\n"
              "from pipeline.postprocess.pdftext import PdfTextPostProcessor\n"
              "print('pypdfium2' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    assert out[:2] == ["[]", "True"]
