"""Configuration sections (docs/configuration.md) as `luigi.Config` classes.

Each class is a section of `luigi.cfg`, and every key can be overridden on the
luigi command line (`--backfill-workdir DIR`, `--kafka-hosts H`). Values are
read when a section is instantiated (inside a task or a CLI call), never at
import time, and a section is made once per configuration
(`pipeline/configmemo.py`). Secrets are not here: the fatcat token comes only
from the environment (`FATCAT_API_AUTH_TOKEN`). Defaults are not written here but read
from the plain modules that use them (the worker's knobs, the editgroup
description, the sample world's paths), so each is written once.

`significant=False` is the one declaration that a setting does not change
any step's output: such a setting is never recorded in a sidecar, and
changing it reruns nothing. Every other setting is recorded by the steps it
affects (`tests/test_config.py` checks both ways). Task parameters of Luigi
are not involved: these sections are read, never passed.
"""

from __future__ import annotations

import hashlib
import os

import luigi

from pipeline import httpretry
from pipeline.catalog.factory import is_api_url
from pipeline.catalog.fatcat_token import TOKEN_ENV
from pipeline.configmemo import RememberedSection, raw_section
from pipeline.importer.importer import BATCH_SIZE, DEFAULT_DESCRIPTION
from pipeline.ingest.settings import (
    DEFAULT_BLOCKLIST,
    DEFAULT_COOKIE_PATTERNS,
    IngestSettings,
    split_list,
)
from pipeline.postprocess.grobid import TIMEOUT as GROBID_TIMEOUT
from pipeline.progress import INTERVAL as PROGRESS_INTERVAL
from pipeline.sinks.kafka import MESSAGE_MAX_BYTES, MESSAGE_TIMEOUT_MS
from pipeline.targets import DEFAULT_WORKDIR, SAMPLE_ARCHIVE, SAMPLE_EXPORT


def _patience(kind: type[luigi.Parameter], default, description: str) -> luigi.Parameter:
    """An [ingest] patience setting: insignificant, since none changes a result, only when it
    comes (so changing one never invalidates a finished target). Each keeps its own
    description: --help-all shows it."""
    return kind(default=default, significant=False, description=description)


class backfill(luigi.Config, metaclass=RememberedSection):  # noqa: N801 - the class name is the cfg section name
    """[backfill]: where the work goes and what it reads."""

    workdir = luigi.Parameter(default=DEFAULT_WORKDIR,
                              description="directory of every target, sidecar, journal and lock of the run")
    export = luigi.Parameter(default=SAMPLE_EXPORT,
                             description="the catalog's file-entity export (JSON lines, plain or gzip)")
    archive = luigi.Parameter(
        default=SAMPLE_ARCHIVE,
        description="web archive: a local collection directory, or a wayback base URL (CDX + replay)")
    catalog = luigi.Parameter(default="", description="empty: <workdir>/catalog.sqlite")
    catalog_seed = luigi.Parameter(default="", significant=False,
                                   description="empty: the export (read once, to create the catalog)")
    file_hashes = luigi.Parameter(
        default="", description="file_hashes.tsv(.gz) dump for the count check; empty: no check")
    extra_results = luigi.ListParameter(
        default=[], description="earlier ingest results merged with the shards' (a JSON list of paths)")
    sample_min_success = luigi.FloatParameter(
        default=0.5, significant=False,
        description="QA gate: the least share of the sample's requests that must succeed")
    # shards names the shard targets (task parameters), it changes no step's settings
    shards = luigi.IntParameter(default=4, significant=False,
                                description="ingest shards, 1..4096 (each a task workers share)")
    sample_size = luigi.IntParameter(default=1000,
                                     description="requests ingested first as the QA sample")
    sample_seed = luigi.IntParameter(default=0, description="seed of the sample's random choice")
    progress_seconds = luigi.FloatParameter(
        default=PROGRESS_INTERVAL, significant=False,
        description="seconds between progress reports of a long step (scheduler and log)")
    change_settings = luigi.BoolParameter(
        default=False, significant=False,
        description="accept settings that differ from the run's manifest (run.manifest.json): "
                    "its superseded targets are moved under superseded/ and made again")

    def catalog_path(self) -> str:
        """The catalog: an http(s) URL as given, a file path made absolute (workers started in
        other directories, or on other hosts over shared storage, name the same file)."""
        spec = self.catalog or os.path.join(self.workdir, "catalog.sqlite")
        return spec if is_api_url(spec) else os.path.abspath(spec)

    def catalog_seed_path(self) -> str:
        return self.catalog_seed or self.export


class ingest(luigi.Config, metaclass=RememberedSection):  # noqa: N801
    """[ingest]: knobs of the ingest worker (URL rules are configuration, not code)."""

    concurrency = luigi.IntParameter(default=4, significant=False,
                                     description="requests in flight per shard (threads; a local "
                                                 "archive without GROBID: processes, one per CPU at most)")
    max_hops = luigi.IntParameter(default=IngestSettings.max_hops,
                                  description="landing page to PDF hops followed at most")
    max_redirects = luigi.IntParameter(default=IngestSettings.max_redirects,
                                       description="archived redirects followed per hop at most")
    max_body_bytes = luigi.IntParameter(default=IngestSettings.max_body_bytes,
                                        description="largest body fetched (bytes); larger: body-too-large")
    cdx_limit = luigi.IntParameter(default=IngestSettings.cdx_limit,
                                   description="CDX rows asked for per lookup (newest first)")
    cdx_dialect = luigi.Parameter(default="auto", significant=False,
                                  description="auto | ia | pywb: how to ask for the newest rows")
    warc_base = luigi.Parameter(
        default="", description="HTTP archive only: read WARC records by Range from this base URL"
    )
    archive_proxy = luigi.Parameter(
        default="", significant=False,
        description="HTTP archive only: proxy URL for CDX, replay and WARC reads (empty: direct; "
                    "HTTP_PROXY and friends are never read)",
    )
    # patience with an HTTP archive (docs/archive.md, docs/configuration.md): none changes a
    # result, only when it comes
    retries = _patience(luigi.IntParameter, httpretry.RETRIES,
                        "attempts after the first of one archive call")
    retry_backoff = _patience(luigi.FloatParameter, httpretry.BACKOFF,
                              "seconds before the first retry (doubling, with jitter)")
    retry_backoff_max = _patience(luigi.FloatParameter, httpretry.BACKOFF_MAX,
                                  "longest backoff between two attempts (s)")
    retry_after_max = _patience(luigi.FloatParameter, httpretry.RETRY_AFTER_MAX,
                                "longest Retry-After of a 429 or 503 that is waited out (s)")
    max_requests_per_second = _patience(
        luigi.FloatParameter, 0.0,
        "archive calls started per second by one worker process, all its threads "
        "together (0: no limit); see docs/archive.md for N processes on M hosts")
    breaker_failures = _patience(luigi.IntParameter, httpretry.BREAKER_FAILURES,
                                 "failed archive calls in a row that pause the shard (circuit breaker)")
    probe_seconds = _patience(luigi.FloatParameter, httpretry.PROBE_SECONDS,
                              "seconds between probes of a paused archive at first (doubling)")
    probe_max_seconds = _patience(luigi.FloatParameter, httpretry.PROBE_MAX_SECONDS,
                                  "longest wait between two probes (s)")
    outage_seconds = _patience(luigi.FloatParameter, httpretry.OUTAGE_SECONDS,
                               "seconds an archive may stay down before the shard fails without a target")
    retry_pass_retries = _patience(luigi.IntParameter, httpretry.RETRY_PASS_RETRIES,
                                   "attempts after the first of each call in the retry pass (IngestRetry)")
    url_blocklist = luigi.Parameter(default=DEFAULT_BLOCKLIST,
                                    description="URL substrings never fetched (skip-url-blocklist), comma or newline separated")
    cookie_patterns = luigi.Parameter(default=DEFAULT_COOKIE_PATTERNS,
                                      description="URL substrings of cookie walls (blocked-cookie), comma or newline separated")

    def blocklist(self) -> list[str]:
        return split_list(self.url_blocklist)

    def cookies(self) -> list[str]:
        return split_list(self.cookie_patterns)


class grobid(luigi.Config, metaclass=RememberedSection):  # noqa: N801
    """[grobid]: GROBID base URL (empty disables GROBID: results say `disabled`), how many PDFs
    are at GROBID at once (size it to GROBID's own worker pool), and the request timeout."""

    host = luigi.Parameter(default="", description="GROBID base URL; empty: GROBID off")
    concurrency = luigi.IntParameter(default=4, significant=False,
                                     description="PDFs at GROBID at once (its worker pool's size)")
    timeout = luigi.FloatParameter(default=GROBID_TIMEOUT, significant=False,
                                   description="seconds a GROBID call may take in total")


class kafka(luigi.Config, metaclass=RememberedSection):  # noqa: N801
    """[kafka]: bootstrap servers (empty: file sinks in the work directory) and topic env."""

    hosts = luigi.Parameter(default="",
                            description="Kafka bootstrap servers; empty: file sinks under the work directory")
    env = luigi.Parameter(default="dev", description="topic environment: sandcrawler-<env>.<topic>")
    message_max_bytes = luigi.IntParameter(default=MESSAGE_MAX_BYTES, significant=False,
                                           description="largest message produced (bytes)")
    delivery_timeout = luigi.FloatParameter(
        default=MESSAGE_TIMEOUT_MS / 1000, significant=False,
        description="seconds a message may wait for the broker's acknowledgement before the shard fails")


class pdftext(luigi.Config, metaclass=RememberedSection):  # noqa: N801
    """[pdftext]: text, info and page-0 thumbnail of every ingested PDF (on by default)."""

    enabled = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                  description="true or false: text and thumbnails of every PDF")


class importer(luigi.Config, metaclass=RememberedSection):  # noqa: N801
    """[importer]: editgroup shape of the catalog import, and its parallel streams (the fatcat
    API: one process, editgroup writer and HTTP session each; the embedded catalog runs one)."""

    batch_size = luigi.IntParameter(default=BATCH_SIZE, significant=False,
                                    description="edits per editgroup")
    streams = luigi.IntParameter(
        default=1, significant=False,
        description="parallel editgroup writers (the fatcat API; the embedded catalog runs one)")
    description = luigi.Parameter(default=DEFAULT_DESCRIPTION,
                                  description="the editgroups' description")


# Every section of the pipeline's own, in the order docs/configuration.md lists them.
SECTIONS: tuple[type[luigi.Config], ...] = (backfill, ingest, grobid, kafka, pdftext, importer)

_KINDS = ((luigi.BoolParameter, "true or false"), (luigi.IntParameter, "an integer"),
          (luigi.FloatParameter, "a number"),
          (luigi.ListParameter, 'a JSON list, e.g. ["/srv/a.json.gz"]'))


def settings_fingerprint() -> str:
    """What the settings are made of, as given: the command line, the raw values of the
    pipeline's sections and the API token (hashed). Equal fingerprints, equal settings: the
    settings check (run before every `complete()`) is done once per fingerprint, and this
    costs microseconds where reading every value costs milliseconds."""
    from luigi.cmdline_parser import CmdlineParser

    parser = CmdlineParser.get_instance()
    cfg = luigi.configuration.get_config()
    given = sorted(vars(parser.known_args).items()) if parser is not None else None
    raw = [raw_section(cfg, s.get_task_family()) for s in SECTIONS]
    token = os.environ.get(TOKEN_ENV, "").encode("utf-8", "surrogateescape")
    return repr((given, raw, hashlib.sha256(token).hexdigest()))


def unreadable_settings() -> list[str]:
    """Every value of the pipeline's sections that cannot be read, as one problem each.

    Why here, not in `luigi`: luigi parses a section's values only when the
    section is first instantiated, inside whichever step asks, and reports
    an unparsable `--backfill-shards abc` as an unhandled exception with a
    traceback (exit 40), or only after earlier steps ran (`--pdftext-enabled
    maybe`). Reading each value on its own here names the setting and what
    it should be. A value given empty on the command line
    (`--backfill-export ''`, e.g. from an unset shell variable) is refused
    too: luigi silently takes it as "not given" and the run would use the
    default (the sample world's export).
    """
    from luigi.cmdline_parser import CmdlineParser

    parser = CmdlineParser.get_instance()
    given = vars(parser.known_args) if parser is not None else {}
    problems = []
    for section in SECTIONS:
        family = section.get_task_family()
        for name, param in section.get_params():
            option = f"--{family}-{name.replace('_', '-')}"
            # luigi's own name for the option's argparse destination
            raw = given.get(param._parser_global_dest(name, family))
            if raw == "" and param._default not in ("", None, (), []):
                problems.append(f"[{family}] {name} is given empty ({option} ''); give a value, "
                                f"or leave the option out for the default {param._default!r}")
                continue
            try:
                param.task_value(family, name)
            except Exception:  # noqa: BLE001 - any parse error of any parameter type is reported
                if raw is None:
                    raw = luigi.configuration.get_config().get(family, name, None)
                kind = next((k for cls, k in _KINDS if isinstance(param, cls)), "readable")
                problems.append(f"[{family}] {name} must be {kind}, got {raw!r}")
    return problems
