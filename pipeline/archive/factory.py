"""One place that turns the `[backfill] archive` setting into a pair of clients.

A directory is a local pywb-layout collection; an http(s) URL is a wayback
service (its CDX API and raw replay), optionally with a WARC store read by
byte ranges instead of replay. Workers receive the pair and never branch on
where the archive lives.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pipeline.archive.local import open_local
from pipeline.archive.model import CdxClient, ContentClient
from pipeline.locations import is_http_url

# The Internet Archive keeps its CDX API and replay under different paths.
_IA_HOSTS = ("web.archive.org",)


def wayback_endpoints(base_url: str) -> tuple[str, str]:
    """(cdx_url, replay_prefix) of a wayback base URL.

    pywb: `http://host:port/<coll>` -> `<base>/cdx`, `<base>/<ts>id_/<url>`.
    Internet Archive: `https://web.archive.org` -> `/cdx/search/cdx`, `/web/<ts>id_/<url>`.
    """
    base = base_url.rstrip("/")
    parts = urlsplit(base)
    if parts.hostname in _IA_HOSTS:
        root = f"{parts.scheme}://{parts.netloc}"
        return f"{root}/cdx/search/cdx", f"{root}/web"
    return f"{base}/cdx", base


def open_archive(spec: str, settings=None, *, warc_base: str | None = None,
                 index_check_cache: str | None = None) -> tuple[CdxClient, ContentClient]:
    """Clients for `spec`: a collection directory or the http(s) base URL of a wayback service.

    `settings` is the `[ingest]` section (or anything with `cdx_dialect`:
    auto | ia | pywb, and `archive_proxy`: the only proxy the HTTP clients use,
    environment proxy variables are ignored); `warc_base`, for an HTTP archive, reads content by
    Range requests from that WARC store instead of replay. A local collection's
    indexes are verified sorted, remembered in `index_check_cache` (a JSON
    file) when given. Raises ValueError
    for a spec that is neither an existing directory nor an http(s) URL.
    """
    if is_http_url(spec):
        # Imported here: the HTTP stack (requests) costs a local-collection run ~0.1 s of startup.
        from pipeline.archive.cdxapi import HttpCdxClient
        from pipeline.archive.rangeread import HttpRangeWarcClient
        from pipeline.archive.replay import HttpReplayClient

        dialect = getattr(settings, "cdx_dialect", "auto") if settings is not None else "auto"
        proxy = getattr(settings, "archive_proxy", "") or None
        cdx_url, replay_prefix = wayback_endpoints(spec)
        retry = archive_policy(spec, settings, [cdx_url, warc_base or replay_prefix], proxy)
        cdx = HttpCdxClient(cdx_url, dialect=dialect, proxy=proxy, retry=retry)
        if warc_base:
            return cdx, HttpRangeWarcClient(warc_base, cdx, proxy=proxy, retry=retry)
        return cdx, HttpReplayClient(replay_prefix, cdx, proxy=proxy, retry=retry)
    if "://" in spec:
        raise ValueError(f"archive must be a directory or an http(s) URL, not {spec!r}")
    if not os.path.isdir(spec):
        raise ValueError(f"archive directory does not exist: {spec!r}")
    if warc_base:
        raise ValueError("warc_base applies only to an HTTP archive")
    return open_local(spec, index_check_cache)


PROBE_SECONDS_DEADLINE = 10.0


def archive_policy(name: str, settings, probe_urls: list[str], proxy: str | None = None):
    """The one retry policy of an HTTP archive's clients (CDX and content share it: one rate
    limit, one circuit breaker per archive and worker process), from the `[ingest]` settings
    (`retries`, `retry_backoff`, `retry_backoff_max`, `retry_after_max`,
    `max_requests_per_second`, `breaker_failures`, `probe_seconds`, `probe_max_seconds`,
    `outage_seconds`; the defaults of `pipeline.httpretry` and `pipeline.circuitbreaker` for
    any not given).

    Returns a `pipeline.httpretry.Retrying` (imported here, like the clients: a local
    collection's run does without the HTTP stack). The breaker's probe asks each of
    `probe_urls` (the CDX API, the replay prefix or WARC store) once; any answer but
    5xx/429 means it is back.
    """
    import requests

    from pipeline import circuitbreaker, httpretry
    from pipeline.archive.httpget import get_unfollowed
    from pipeline.httpdeadline import complete
    from pipeline.ratelimit import TokenBucket

    def get(key: str, default):
        value = getattr(settings, key, None) if settings is not None else None
        return default if value is None else value

    def probe() -> bool:
        for url in probe_urls:
            try:
                answer = complete(lambda u=url: get_unfollowed(u, timeout=PROBE_SECONDS_DEADLINE,
                                                               proxy=proxy),
                                  f"archive probe GET {url}", PROBE_SECONDS_DEADLINE, 65536,
                                  refuse=False)
            except requests.RequestException:
                return False
            if answer.status_code in httpretry.OVERLOAD_STATUSES:
                return False
        return True

    rate = float(get("max_requests_per_second", 0.0))
    breaker = circuitbreaker.CircuitBreaker(
        name, probe, failures=int(get("breaker_failures", circuitbreaker.BREAKER_FAILURES)),
        probe_seconds=float(get("probe_seconds", circuitbreaker.PROBE_SECONDS)),
        probe_max_seconds=float(get("probe_max_seconds", circuitbreaker.PROBE_MAX_SECONDS)),
        outage_seconds=float(get("outage_seconds", circuitbreaker.OUTAGE_SECONDS)))
    return httpretry.Retrying(
        int(get("retries", httpretry.RETRIES)), float(get("retry_backoff", httpretry.BACKOFF)),
        backoff_max=float(get("retry_backoff_max", httpretry.BACKOFF_MAX)),
        retry_after_max=float(get("retry_after_max", httpretry.RETRY_AFTER_MAX)),
        limiter=TokenBucket(rate) if rate > 0 else None, breaker=breaker)
