"""Checks that the services a run needs answer, before any step does work.

Why: the runbook found a missing fatcat token, an unreachable archive or a
down GROBID only when the step needing it ran; an unreachable archive cost
about 14 s of retries per request, an hour before the sample gate failed.
Each check here takes seconds at most (every exchange ends within
`CHECK_TIMEOUT` in total, however slowly a service answers; no retries) and
raises `PreconditionFailed` saying what is wrong and how to fix it. The
Luigi side (`pipeline/tasks/preconditions.py`) makes them requirements of
the first step and of the steps that need them; `checked_once` probes each
service once per process (a run), whoever asks: the scheduler, the task that
reports a failure, or a step that checks again before its first request.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from pipeline.archive.factory import open_archive, wayback_endpoints
from pipeline.archive.model import ArchiveError, ArchiveUnreadable
from pipeline.checks import StepFailed
from pipeline.httpdeadline import deadline_in
from pipeline.jsonio import InputError, iter_objects
from pipeline.locations import is_http_url

log = logging.getLogger(__name__)

TOKEN_ENV = "FATCAT_API_AUTH_TOKEN"
CHECK_TIMEOUT = 5.0
PROBE_URLS = 20
FETCH_ATTEMPTS = 3
FETCH_MAX_BYTES = 64 * 1024 * 1024


class PreconditionFailed(StepFailed):
    """A service or resource the run needs is not usable; the message says how to fix it."""


# (check name, what it checks) -> (what was checked, None) or (None, what is wrong)
_answers: dict[tuple, tuple[str | None, str | None]] = {}


def checked_once(key: tuple, check: Callable[[], str]) -> tuple[str | None, str | None]:
    """(what was checked, None) or (None, what is wrong): `check()` run once per process.

    Why once: a run is one process; the scheduler asks a check whether it is
    complete, the check's task reports the failure, a shard asks before its
    first request. Each asking again would probe the service again (a slow
    archive costs its timeout each time) and could answer differently within
    one run. `key` is the check's name and the settings it reads, so a
    process that runs with other settings checks again.
    """
    if key not in _answers:
        try:
            _answers[key] = (check(), None)
        except PreconditionFailed as e:
            _answers[key] = (None, str(e))
        except Exception as e:  # a check that breaks must still stop the run, saying how
            log.exception("precondition check %s raised", key[0])
            _answers[key] = (None, f"the check itself failed ({type(e).__name__}: {e})")
    return _answers[key]


def probe_urls(export: str, limit: int = PROBE_URLS) -> list[str]:
    """The first `limit` usable URLs of the export's entities lacking sha256 (what will be
    looked up first), read from the head of the export only."""
    from pipeline.steps.ingest_request import first_usable_url

    urls: list[str] = []
    if not os.path.exists(export):
        return urls
    try:
        for n, obj in iter_objects(export):
            if n > 10_000 or len(urls) >= limit:
                break
            if isinstance(obj, dict) and not obj.get("sha256"):
                url = first_usable_url(obj.get("urls"))
                if url:
                    urls.append(url)
    except InputError:
        return urls  # an unreadable export is the export step's error, with its line number
    return urls


def _clients(archive: str, ingest):
    """Archive clients with a short timeout and no retries: a check, not the ingest."""
    if not is_http_url(archive):
        try:
            return open_archive(archive, ingest)
        except ValueError as e:
            raise PreconditionFailed(f"archive: {e}; fix [backfill] archive (--backfill-archive)") from e
    from pipeline.archive.cdxapi import HttpCdxClient
    from pipeline.archive.rangeread import HttpRangeWarcClient
    from pipeline.archive.replay import HttpReplayClient
    from pipeline.httpretry import Retrying

    proxy = getattr(ingest, "archive_proxy", "") or None
    cdx_url, replay_prefix = wayback_endpoints(archive)
    no_retry = Retrying(retries=0)
    cdx = HttpCdxClient(cdx_url, dialect=ingest.cdx_dialect, timeout=CHECK_TIMEOUT,
                        retry=no_retry, proxy=proxy)
    if getattr(ingest, "warc_base", ""):
        return cdx, HttpRangeWarcClient(ingest.warc_base, cdx, timeout=CHECK_TIMEOUT,
                                        retry=no_retry, proxy=proxy)
    return cdx, HttpReplayClient(replay_prefix, cdx, timeout=CHECK_TIMEOUT, retry=no_retry,
                                 proxy=proxy)


def check_archive(archive: str, ingest, export: str) -> str:
    """One CDX lookup that answers and one capture fetched whole: the archive is usable.

    Looks up the export's first usable URLs (up to 20) until one has a
    capture, then fetches it (trying up to 3 captures: one damaged record is
    the ingest's business, not a broken archive; an archive too slow to answer
    within `CHECK_TIMEOUT`, or a local one whose files cannot be read, is, and
    fails the check at once). Returns what was checked.
    """
    cdx, content = _clients(archive, ingest)
    try:
        return _check_archive(archive, cdx, content, export)
    except ArchiveUnreadable as e:
        raise PreconditionFailed(f"archive {archive}: {e}") from e


def _check_archive(archive: str, cdx, content, export: str) -> str:
    how = f"check that it is running and reachable, or fix [backfill] archive (now {archive!r})"
    urls = probe_urls(export) or ["http://example.com/"]
    failures: list[str] = []
    for url in urls:
        try:
            rows = cdx.lookup(url, limit=FETCH_ATTEMPTS)
        except ArchiveError as e:
            raise PreconditionFailed(f"archive CDX lookup failed ({e}); {how}") from e
        for row in rows:
            if len(failures) >= FETCH_ATTEMPTS:
                break
            try:
                capture = content.fetch(row, FETCH_MAX_BYTES)
            except ArchiveError as e:
                if deadline_in(e):
                    raise PreconditionFailed(f"archive {archive}: capture fetch too slow ({e}); "
                                             f"{how}") from e
                failures.append(f"{row.url} @ {row.datetime}: {e}")
                continue
            return (f"archive {archive}: CDX lookup of {url} answered, capture of {row.url} at "
                    f"{row.datetime} fetched ({len(capture.body)} bytes)")
        if len(failures) >= FETCH_ATTEMPTS:
            break
    if failures:
        raise PreconditionFailed(f"archive {archive} answers its CDX lookups but no capture could "
                                 f"be fetched ({'; '.join(failures)}); {how}")
    if urls == ["http://example.com/"]:
        return f"archive {archive}: CDX lookup answered (the export has no URL to fetch)"
    # reachable, but nothing to fetch: not proof of a wrong archive (the sample QA gate judges)
    note = (f"archive {archive}: CDX lookups answered, but none of the export's first "
            f"{len(urls)} URLs has a capture (first: {urls[0]}); is it the right collection?")
    log.warning("%s", note)
    return note


def check_catalog(catalog: str) -> str:
    """The import can write: the API accepts the token (fatcat), or the file is writable (SQLite)."""
    if is_http_url(catalog):
        if not os.environ.get(TOKEN_ENV, "").strip():
            raise PreconditionFailed(
                f"catalog {catalog}: the environment variable {TOKEN_ENV} is not set; export the "
                "API token of the bot account that makes the edits, then rerun")
        return check_api_token(catalog)
    path = Path(catalog)
    if path.exists():
        if path.is_dir():
            raise PreconditionFailed(f"catalog {catalog} is a directory, not a SQLite file; "
                                     "fix [backfill] catalog")
        if not os.access(path, os.R_OK | os.W_OK):
            raise PreconditionFailed(f"catalog {catalog} is not writable by this user; fix its "
                                     "permissions or point [backfill] catalog elsewhere")
    # SQLite writes a journal beside the file: its directory (or the first one that exists,
    # when the work directory is still to be made) must be writable
    parent = path.resolve().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise PreconditionFailed(f"catalog {catalog}: directory {parent} is not writable by this "
                                 "user; fix its permissions or point [backfill] catalog elsewhere")
    return f"catalog {catalog}: writable"


def check_api_token(catalog: str) -> str:
    """`GET /auth/check` with the token, one short try: a rejected token or an API that does
    not answer is found before the ingest, not after it (the runbook found it at the import)."""
    from pipeline.catalog.base import CatalogError
    from pipeline.catalog.fatcat import FatcatCatalog

    try:
        with FatcatCatalog(catalog, retries=0, timeout=CHECK_TIMEOUT) as api:
            api.check_access()
    except (CatalogError, ValueError) as e:
        raise PreconditionFailed(f"catalog {catalog}: {e}; then rerun") from None
    return f"catalog {catalog}: {TOKEN_ENV} accepted (GET /auth/check)"


def check_grobid(host: str) -> str:
    """GROBID's `/api/isalive` answers true (only when `[grobid] host` is set)."""
    from pipeline.postprocess.grobid import GrobidClient, GrobidUnavailable

    try:
        version = GrobidClient(host, isalive_timeout=CHECK_TIMEOUT).check_alive()
    except (GrobidUnavailable, ValueError) as e:
        raise PreconditionFailed(f"{e}; start GROBID (or fix [grobid] host; empty runs without "
                                 "GROBID)") from e
    return f"GROBID at {host} is alive" + (f" (version {version})" if version else "")


def grobid_alive(host: str) -> tuple[str | None, str | None]:
    """`check_grobid(host)` once per process: the precondition task and each shard ask it."""
    return checked_once(("GrobidAlive", host), lambda: check_grobid(host))


def check_broker(hosts: str, env: str) -> str:
    """The Kafka brokers answer and hold the sandcrawler-{env}.* topics (when `[kafka] hosts`)."""
    from pipeline.sinks.base import SinkError
    from pipeline.sinks.kafka import KafkaSink

    try:
        sink = KafkaSink(hosts, env, metadata_timeout=CHECK_TIMEOUT)
    except (SinkError, ValueError) as e:
        raise PreconditionFailed(str(e)) from e
    sink.abort()
    return f"Kafka brokers {hosts} answer; sandcrawler-{env}.* topics present"
