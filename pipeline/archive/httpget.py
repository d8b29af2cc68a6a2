"""The one way the archive clients speak HTTP: no redirect followed, no environment read.

Why: the CDX API, raw replay and the WARC store are the archive. `requests`
by default follows redirects and takes proxies (and `.netrc` credentials)
from the environment, so a misconfigured service or a stray `HTTP_PROXY`
could send the pipeline's reads to another host, and a capture would come
from there. Here a 3xx is an answer like any other (the caller decides what
it means) and a proxy is used only when configured (`[ingest] archive_proxy`).
Every exchange runs on a `pipeline.httpdeadline` session, so the caller's
`Deadline` ends it however slowly the service answers.
"""

from __future__ import annotations

from collections.abc import Mapping

import requests

from pipeline import httpdeadline, httpwatch
from pipeline.locations import is_http_url


def proxies_for(proxy: str | None) -> dict[str, str]:
    """`requests` proxies mapping for one configured proxy URL (empty: connect directly)."""
    if not proxy:
        return {}
    if not is_http_url(proxy):
        raise ValueError(f"archive proxy must be an http(s):// URL, not {proxy!r}")
    return {"http": proxy, "https": proxy}


def get_unfollowed(url: str, *, timeout: float, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None,
                   proxy: str | None = None) -> requests.Response:
    """GET `url` once: redirects not followed, body streamed (not read yet).

    `timeout` is the exchange's deadline (`httpdeadline.socket_timeouts`).
    `requests.get(..., allow_redirects=False)` would still read a 3xx body
    whole (to free the connection for a redirect it will not make) and would
    still consult the environment; the transport adapter alone does neither.
    """
    session = httpwatch.session()  # no proxy variables, no .netrc credentials
    # one request per connection: the socket closes with the answer's last byte, not when
    # this throwaway session is garbage-collected
    headers = {"Connection": "close", **(headers or {})}
    prepared = session.prepare_request(requests.Request("GET", url, params=params, headers=headers))
    return session.get_adapter(url).send(prepared, stream=True,
                                         timeout=httpdeadline.socket_timeouts(timeout),
                                         proxies=proxies_for(proxy))
