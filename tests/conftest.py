"""Shared pytest fixtures. Each block says whose area it serves; add yours, keep the others."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings as hypothesis_settings
from services import run_pywb

# --- property tests (hypothesis) ---------------------------------------------------------


def pytest_configure(config):
    """Property tests draw the same examples on every run ("repeatable"): a suite that turns
    red because one run drew a new case is not a suite CI can trust. Exploring is a
    deliberate act: `HYPOTHESIS_PROFILE=explore make test` draws new examples each run, and
    a failure it finds goes into the test as an `@example`."""
    hypothesis_settings.register_profile("repeatable", derandomize=True)
    hypothesis_settings.register_profile("explore", derandomize=False)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


# --- pywb (web archive over HTTP) ----------------------------------------------------------


@pytest.fixture(scope="session")
def pywb(tmp_path_factory):
    """One pywb `wayback` server for the session; `pywb.serve(collection_dir, name)` publishes
    a pywb-layout collection and returns its base URL (http://127.0.0.1:PORT/<name>)."""
    with run_pywb(tmp_path_factory.mktemp("pywb-root")) as server:
        yield server


@pytest.fixture(scope="session")
def wayback(pywb, world):
    """Base URL of the sample world's collection served by pywb (http://127.0.0.1:PORT/world):
    pass it as `[backfill] archive` to run the pipeline against a wayback service."""
    return pywb.serve(world / "collection", "world")


@pytest.fixture
def faultproxy(wayback):
    """A fault-and-latency proxy (tests/faultproxy.py) in front of the sample world's pywb, fresh
    per test: `faultproxy.url` is the collection's URL through it; set `faultproxy.plan`, flip
    `start_outage()/end_outage()`, read `faultproxy.calls`."""
    from faultproxy import FaultProxy

    with FaultProxy(wayback) as proxy:
        yield proxy


# --- sample world (data/generate_world.py) ------------------------------------------------


@pytest.fixture(scope="session")
def world_generator():
    """The generator module, loaded by path (`data/` is not a package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "data" / "generate_world.py"
    spec = importlib.util.spec_from_file_location("generate_world", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def world(tmp_path_factory, world_generator):
    """The seed-0 sample world, generated once per session (~2 s); the Path of its directory
    (file_export.json.gz, collection/, expected.json, file_hashes.tsv.gz, summary.json)."""
    out = tmp_path_factory.mktemp("sample-world") / "world"
    world_generator.generate(out, seed=0)
    return out


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, world):
    """(work directory, its CompletedProcess): one finished `Backfill` of the sample world made
    by the luigi CLI (local scheduler, 2 shards, a 50-request sample), shared by the tests that
    read it or rerun it with its settings (a no-op that writes nothing); none may change it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("finished-run") / "work"
    env = dict(os.environ, PYTHONPATH=str(root))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run([sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill",
                           "--local-scheduler", "--backfill-workdir", str(work),
                           "--backfill-export", str(world / "file_export.json.gz"),
                           "--backfill-archive", str(world / "collection"),
                           "--backfill-sample-size", "50", "--backfill-shards", "2"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


# --- ops: central scheduler and headless browser -------------------------------------------


@pytest.fixture
def luigid(tmp_path):
    """A fresh `luigid` on a free 127.0.0.1 port (state and logs under tmp_path/luigid)."""
    from luigid_service import run_luigid

    with run_luigid(tmp_path / "luigid") as server:
        yield server


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium (installed with apt-get when missing); skips with the reason when it
    cannot be installed here."""
    from browser import BrowserUnavailable, ensure_chromium

    try:
        return ensure_chromium()
    except BrowserUnavailable as e:
        pytest.skip(f"no headless chromium: {e}")


# --- sinks: Kafka-protocol broker (tansu) and GROBID stand-in --------------------------------


@pytest.fixture
def broker(tmp_path):
    """A fresh tansu broker (memory only) on a free loopback port, with sandcrawler-test.* topics;
    `broker.hosts` for `[kafka] hosts`, `broker.consume(topic)`, `broker.stop()/start()`."""
    from broker import run_tansu

    from pipeline.sinks.message import TOPICS, topic_name

    with run_tansu(tmp_path) as b:
        b.create_topics([topic_name(kind, "test") for kind in TOPICS])
        yield b


@pytest.fixture
def grobid():
    """A GROBID stand-in on a free loopback port (`grobid.url`, `grobid.set_mode(...)`)."""
    from grobid_standin import run_grobid_standin

    with run_grobid_standin() as state:
        yield state


# --- run manifest: options a work directory's manifest set are put back after each test ----


@pytest.fixture(autouse=True)
def _forget_manifest_options():
    yield
    from pipeline.tasks.runsettings import forget_applied

    forget_applied()
