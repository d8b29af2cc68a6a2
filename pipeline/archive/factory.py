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
        cdx = HttpCdxClient(cdx_url, dialect=dialect, proxy=proxy)
        if warc_base:
            return cdx, HttpRangeWarcClient(warc_base, cdx, proxy=proxy)
        return cdx, HttpReplayClient(replay_prefix, cdx, proxy=proxy)
    if "://" in spec:
        raise ValueError(f"archive must be a directory or an http(s) URL, not {spec!r}")
    if not os.path.isdir(spec):
        raise ValueError(f"archive directory does not exist: {spec!r}")
    if warc_base:
        raise ValueError("warc_base applies only to an HTTP archive")
    return open_local(spec, index_check_cache)
