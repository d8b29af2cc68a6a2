"""The API token is cleaned or refused before any step and never written anywhere; a catalog
URL's scheme is matched case-insensitively, and a URL that is not http(s) is refused.

The token cases come from the runbook: `export FATCAT_API_AUTH_TOKEN=$(cat token.txt)` of a
file saved with CRLF line ends leaves a CR (or a LF) at the end of the token; `requests`
refuses such a header, and its error (quoting the header) went to the log five times.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fatcat_standin import FatcatStandin, read_export

from pipeline.catalog.base import InvalidCredentials
from pipeline.catalog.factory import is_api_url
from pipeline.catalog.fatcat import FatcatCatalog
from pipeline.catalog.fatcat_token import clean_token
from pipeline.locations import is_http_url, url_scheme

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-5e1b-9a7c-catalog-bot"


def backfill(work: Path, world: Path, catalog: str, token: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), FATCAT_API_AUTH_TOKEN=token)
    env.pop("LUIGI_CONFIG_PATH", None)
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline.tasks", "Backfill", "--local-scheduler",
           "--backfill-workdir", str(work), "--backfill-export", str(world / "file_export.json.gz"),
           "--backfill-archive", str(world / "collection"), "--backfill-shards", "2",
           "--backfill-sample-size", "50", "--backfill-catalog", catalog]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def leaks(secret: str, texts: list[str], work: Path) -> list[str]:
    """Where `secret` (or its core, without the whitespace around it) appears."""
    core = secret.strip()
    found = [f"output {i}" for i, text in enumerate(texts) if core in text]
    found += [str(p) for p in work.rglob("*") if p.is_file() and core.encode() in p.read_bytes()]
    return found


@pytest.fixture(scope="module")
def api_run(tmp_path_factory, world):
    """One work directory and one running API stand-in (its URL's scheme in capitals) for the
    three token runs: the first runs the whole Backfill; the next ones find its ingest done and
    run the import again (its targets removed) against the stand-in reset to the export."""
    with FatcatStandin.from_export(TOKEN, world / "file_export.json.gz") as api:
        yield tmp_path_factory.mktemp("token-runs") / "work", api


def import_outputs(work: Path) -> list[Path]:
    """What ImportFileMeta wrote (an API catalog: the journal and the counts target)."""
    return [p for p in work.glob("files_missing_sha256.import.*") if ".sample." not in p.name]


@pytest.mark.parametrize("suffix", ["\r\n", "\n", "\r"])
def test_a_token_ending_in_cr_or_lf_works_and_never_leaks(api_run, world, suffix):
    work, api = api_run
    for p in import_outputs(work):
        p.unlink()
    api.reset(read_export(world / "file_export.json.gz"))
    proc = backfill(work, world, api.url.replace("http://", "HTTP://"), TOKEN + suffix)
    writes = [r for r in api.requests if r["op"] == "update_file"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(writes) == 1161  # the sample world's updates, made at the API
    assert not list(work.glob("*.sqlite")) and not list(work.parent.rglob("HTTP:*"))  # no SQLite
    assert leaks(TOKEN, [proc.stdout, proc.stderr], work) == []


@pytest.mark.parametrize("token, what", [
    ("Zq7x\u20acW9p", "a non-ASCII character at position 5"),   # not even Latin-1
    ("Zq7x W9p", "a space or control character at position 5"),
    ("Zq7x\tW9p", "a space or control character at position 5"),
])
def test_an_unsendable_token_is_refused_in_one_line_before_any_step(tmp_path, world, token, what):
    work = tmp_path / "work"
    proc = backfill(work, world, "http://127.0.0.1:9/v0", token)  # never asked: refused first
    assert proc.returncode == 35, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    refused = [line for line in proc.stderr.splitlines() if "FATCAT_API_AUTH_TOKEN holds" in line]
    assert len(refused) == 1 and what in refused[0], proc.stderr[-3000:]
    assert "running   " not in proc.stderr
    for part in token.split():
        assert part not in refused[0].split("FATCAT_API_AUTH_TOKEN", 1)[1]
    assert leaks(token, [proc.stdout, proc.stderr], work) == []


def test_the_token_is_stripped_or_refused_naming_only_the_variable():
    assert clean_token(TOKEN + "\r\n") == TOKEN
    assert clean_token("  \n") is None and clean_token(None) is None
    with pytest.raises(InvalidCredentials) as info:
        clean_token("secret\u0151value")
    assert "FATCAT_API_AUTH_TOKEN" in str(info.value) and "secret" not in str(info.value)
    cat = FatcatCatalog("http://127.0.0.1:9/v0", token=TOKEN + "\r\n")
    assert cat._token == TOKEN


def test_the_scrubber_removes_escaped_forms_of_the_token():
    token = 'sEcR\\et"x'  # visible ASCII, but a repr or JSON escapes it
    cat = FatcatCatalog("http://127.0.0.1:9/v0", token=token)
    header = f"Bearer {token}"
    for text in (header, repr(header), repr({"Authorization": header}), repr(header.encode()),
                 '{"auth": "Bearer sEcR\\\\et\\"x"}'):
        scrubbed = cat._scrub(f"refused: {text}")
        assert "[token]" in scrubbed and "sEcR" not in scrubbed, (text, scrubbed)


def test_schemes_are_matched_case_insensitively():
    for url in ("HTTPS://api.fatcat.wiki/v0", "Http://127.0.0.1:9/v0", "https://x"):
        assert is_api_url(url) and is_http_url(url)
    for spec in ("ftp://x", "/srv/catalog.sqlite", "catalog.sqlite", "http:/x", "", None):
        assert not is_api_url(spec or "") and not is_http_url(spec)
    assert url_scheme("FTP://x") == "ftp" and url_scheme("/a/b") is None
    assert FatcatCatalog("HTTPS://api.example/v0").base_url == "https://api.example/v0"


def test_the_catalog_cli_refuses_a_url_that_is_not_http(tmp_path, world):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("LUIGI_CONFIG_PATH", None)
    proc = subprocess.run([sys.executable, "-m", "pipeline", "catalog", "load",
                           str(world / "file_export.json.gz"), "--catalog", "ftp://x/catalog"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "catalog load: --catalog is a ftp:// URL ('ftp://x/catalog'); only an http(s) URL or a "
        "local path is accepted"]
    assert list(tmp_path.iterdir()) == []  # no SQLite file named after the URL
