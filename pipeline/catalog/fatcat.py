"""The fatcat REST API (v0) as a catalog backend, over plain `requests`.

Why not the generated openapi client: its default host is the public
production API, so one missing argument sends test edits to production. Here
the base URL is required (e.g. `https://api.fatcat.wiki/v0`, or a QA or
loopback instance) and nothing has a default host.

Calls (fatcat v0 API):
- `GET  /file/lookup?sha1=` -> file entity; 404 means no match;
- `GET  /file/{ident}`, `GET /editgroup/{id}` (the latter lists `edits.files`
  and carries `changelog_index` once accepted): used to resume after a crash;
- `POST /editgroup` {description, extra} -> 201 editgroup with `editgroup_id`;
- `PUT  /editgroup/{id}/file/{ident}` file entity -> entity_edit;
- `POST /editgroup/{id}/accept` -> success;
- `DELETE /editgroup/{id}/file/edit/{edit_id}` -> success (`delete_file_edit`);
- `GET /editor/{editor_id}/editgroups?limit=` -> the editor's editgroups,
  newest first, without edit lists (`get_editor_editgroups`, a read): the
  open editgroups of another run. The editor is the one the token names:
  fatcat's tokens are macaroons with an `editor_id = ...` caveat (fatcat's
  web interface reads it the same way);
- `GET /auth/check` with the token (`check_access`): called before an import
  does any work, as fatcat's own tools do, so a rejected token or an API
  that does not answer fails the run in seconds, not at its first write.
Errors come back as `{"success": false, "error": NAME, "message": ...}` and
are raised as the matching `pipeline.catalog.base` exception.

The token comes only from `FATCAT_API_AUTH_TOKEN` and is sent as
`Authorization: Bearer <token>` on writes. It is never logged, written or put
into an exception: every text that leaves this module passes `_scrub`, and
exceptions are raised `from None` so no chained request object carries it.

Each call (headers and body) ends within `timeout` seconds in total and an
answer above `MAX_ANSWER_BYTES` is refused (`pipeline.httpdeadline`): an API
that answers a byte at a time is a timeout like any other.

5xx and 429 answers, connection errors and timeouts are retried a bounded
number of times with exponential backoff, waiting longer when a 429 or 503
says so in `Retry-After` (`pipeline.httpretry`, the archive clients' policy). Because a write may have succeeded when its answer was
lost, a retried write is checked against the catalog's state: a retried PUT
that meets ConstraintViolation is a success if the editgroup already holds
that edit; a retried accept that meets EditgroupAlreadyAccepted is a success.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import requests
from requests.structures import CaseInsensitiveDict

from pipeline.catalog.base import (
    CATALOG_KEYS,
    ERRORS_BY_NAME,
    Catalog,
    CatalogError,
    CatalogUnavailable,
    ConstraintViolation,
    EditgroupAlreadyAccepted,
    InvalidCredentials,
    NotFound,
    editgroup_file_edits,
    editgroup_is_accepted,
)
from pipeline.catalog.fatcat_token import TOKEN_ENV, clean_token, editor_id_of_token, token_forms
from pipeline.httpdeadline import BodyTooLarge, complete, socket_timeouts
from pipeline.httpretry import Retrying
from pipeline.httpwatch import DeadlineAdapter, watch
from pipeline.locations import is_http_url

log = logging.getLogger(__name__)

USER_AGENT = "filemeta-backfill"
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # an editgroup of a large batch is a few MB
# the editor's newest editgroups looked at for another run's open ones (the API's maximum)
EDITGROUPS_LIMIT = 100
# the longest `Retry-After` of a 429 or 503 the API is waited for (s)
MAX_RETRY_AFTER = 60.0
# answers tried again (the `Retry-After` of a 429 or 503 honoured: `pipeline.httpretry`)
RETRY_STATUSES = frozenset((429, *range(500, 600)))
# concurrent reads (lookups ahead of the writes, re-checks before an accept) per client
LOOKUP_WORKERS = 4

class FatcatCatalog(Catalog):
    """A fatcat API at an explicit base URL; the token is read from the environment."""

    # an editgroup is made call by call (no transaction spans calls), so the import's journal
    # settles one a kill leaves open; no lock file guards a remote catalog (`lock_path`: None)
    atomic_editgroups = False
    parallel_streams = True  # `for_stream`: a client with its own session per import stream

    def __init__(self, base_url: str, token: str | None = None, *, retries: int = 4,
                 backoff: float = 0.5, timeout: float = 60.0,
                 session: requests.Session | None = None,
                 max_retry_after: float = MAX_RETRY_AFTER):
        parts = urlsplit(base_url or "")
        if not is_http_url(base_url) or not parts.netloc:
            raise ValueError(f"fatcat API base URL must be an explicit http(s) URL, got {base_url!r}")
        if parts.username or parts.password:
            raise ValueError("fatcat API base URL must not carry credentials; use FATCAT_API_AUTH_TOKEN")
        self.base_url = urlunsplit(parts).rstrip("/")  # the scheme lower-cased (`HTTPS://`)
        self.name = self.base_url
        self._token = clean_token(token if token is not None else os.environ.get(TOKEN_ENV))
        self.retry = Retrying(retries, backoff, retry_after_max=max_retry_after)
        self.timeout = timeout
        if session is None:
            session = requests.Session()
            # keep-alive connections for this catalog's own threads (`lookup_sha1_many`)
            adapter = DeadlineAdapter(pool_connections=1, pool_maxsize=LOOKUP_WORKERS + 2)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        self.session = watch(session)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.trust_env = False  # no proxy or .netrc credentials picked up by surprise
        self._adapter = self.session.get_adapter(self.base_url)  # every call goes through it
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"FatcatCatalog({self.base_url!r}, token={'set' if self._token else 'unset'})"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.session.close()

    def for_stream(self) -> FatcatCatalog:
        """Another client of the same API, token and retry policy with a session (and
        connection pool) of its own: one per import stream (`pipeline.importer.streams`)."""
        return FatcatCatalog(self.base_url, self._token, retries=self.retry.retries,
                             backoff=self.retry.backoff, timeout=self.timeout,
                             max_retry_after=self.retry.retry_after_max)

    def _map(self, call, items: list) -> list:
        """`call` over `items` on this client's few threads (one keep-alive connection each):
        reads that need not wait for one another, so a round trip is paid once per
        `LOOKUP_WORKERS` of them rather than once each."""
        if len(items) <= 1:
            return [call(item) for item in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(LOOKUP_WORKERS, thread_name_prefix="fatcat-read")
        return list(self._pool.map(call, items))

    def lookup_sha1_many(self, sha1s: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The entities of many sha1s (lower-cased keys; misses absent), looked up concurrently:
        the importer looks a batch up ahead of its writes."""
        wanted = sorted({s.lower() for s in sha1s})
        found = self._map(self.lookup_sha1, wanted)
        return {sha1: entity for sha1, entity in zip(wanted, found, strict=True) if entity is not None}

    def get_file_many(self, idents: list[str]) -> dict[str, dict[str, Any] | None]:
        """The current state of many entities, fetched concurrently (the re-check before an
        accept: one round trip per `LOOKUP_WORKERS` edits, not per edit)."""
        return dict(zip(idents, self._map(self.get_file, idents), strict=True))

    def check_writable(self) -> None:
        """No token, no edits: say so before the first lookup, not after thousands."""
        if not self._token:
            raise InvalidCredentials(f"{TOKEN_ENV} is not set: fatcat writes need a token")

    def check_access(self) -> None:
        """The token set and accepted by the API (`GET /auth/check`, as fatcat's own tools
        do when they start): a wrong token or a URL that does not answer fails here, naming
        the variable and the URL (never the token's value), before any lookup or edit."""
        self.check_writable()
        try:
            resp, _ = self._request("GET", "/auth/check", write=True)
        except CatalogUnavailable as e:
            raise self._error(CatalogUnavailable, f"the fatcat API at {self.base_url} does not "
                              f"answer, so {TOKEN_ENV} could not be checked ({e}); check that it "
                              "runs and the catalog URL") from None
        if resp.status_code in (401, 403):
            raise self._error(InvalidCredentials, f"{TOKEN_ENV} was refused by the fatcat API at "
                              f"{self.base_url} (GET /auth/check: HTTP {resp.status_code} InvalidCredentials); export "
                              "the token of the bot account that makes the edits")
        if resp.status_code != 200:
            self._raise_for("GET", "/auth/check", resp)

    # -- plumbing -----------------------------------------------------------
    def _scrub(self, text: str) -> str:
        """The text without the token, in any of the forms an error message may quote it."""
        if self._token:
            for form in token_forms(self._token):
                text = text.replace(form, "[token]")
        return text

    def _error(self, cls: type[CatalogError], text: str) -> CatalogError:
        return cls(self._scrub(text))

    def _request(self, method: str, path: str, *, params: dict | None = None,
                 body: Any = None, write: bool = False) -> tuple[requests.Response, int]:
        """One call with retries; returns (response, attempts). 4xx answers are returned."""
        headers = {"Accept": "application/json"}
        if write:
            self.check_writable()
            headers["Authorization"] = f"Bearer {self._token}"
        url = self.base_url + path

        def retrying(attempt: int, why: str) -> None:
            log.warning("fatcat %s %s failed (%s); retry %d/%d in %.1fs", method, path,
                        self._scrub(why), attempt, self.retry.retries, self.retry.delay(attempt - 1))

        def unreachable(exc: requests.RequestException) -> CatalogError:
            return self._error(CatalogUnavailable, f"fatcat {method} {path}: gave up after "
                               f"{self.retry.retries + 1} attempts: {type(exc).__name__}: {exc}")

        if params:
            url += "?" + urlencode(params)
        data = None if body is None else json.dumps(body, allow_nan=False).encode("utf-8")

        def send() -> requests.Response:
            return complete(lambda: self._send(method, url, headers, data),
                            f"fatcat {method} {path}", self.timeout, MAX_ANSWER_BYTES)

        try:
            resp, attempts = self.retry.send_counted(send, RETRY_STATUSES, unreachable, retrying)
        except CatalogUnavailable as e:
            raise e from None  # the connection error's own text is in the message, scrubbed
        except BodyTooLarge as e:
            raise self._error(CatalogError, str(e)) from None
        if resp.status_code in RETRY_STATUSES:
            raise self._error(CatalogUnavailable, f"fatcat {method} {path}: gave up after {attempts} "
                              f"attempts: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp, attempts

    def _send(self, method: str, url: str, headers: dict[str, str],
              data: bytes | None) -> requests.Response:
        """One request, prepared here and handed to the session's adapter (its keep-alive pool,
        its deadline-aware connections), streamed, never redirected.

        Why not `session.request`: its per-call merging (environment, cookies, hooks,
        settings) and URL re-parsing were about a third of the client's CPU per call, and
        an import makes three calls a record; nothing of it applies here (no cookies, no
        proxies, no redirects, a URL built from a checked base and quoted parts)."""
        prepared = requests.PreparedRequest()
        prepared.method = method
        prepared.url = url
        prepared.headers = CaseInsensitiveDict({**self.session.headers, **headers})
        if data is not None:
            prepared.headers["Content-Type"] = "application/json"
        if data is not None or method in ("POST", "PUT"):
            prepared.headers["Content-Length"] = str(len(data or b""))
        prepared.body = data
        prepared.hooks = {"response": []}
        return self._adapter.send(prepared, stream=True, timeout=socket_timeouts(self.timeout))

    def _raise_for(self, method: str, path: str, resp: requests.Response) -> None:
        """Map a 4xx answer onto the catalog exceptions by fatcat's error name."""
        try:
            data = resp.json()
        except ValueError:
            data = {}
        name = data.get("error") if isinstance(data, dict) else None
        message = data.get("message") if isinstance(data, dict) else None
        if resp.status_code in (401, 403):
            cls: type[CatalogError] = InvalidCredentials
        elif resp.status_code == 404:
            cls = NotFound
        else:
            cls = ERRORS_BY_NAME.get(name or "", CatalogError)
        detail = message or resp.text[:300]
        raise self._error(cls, f"fatcat {method} {path}: HTTP {resp.status_code} {name or ''}: {detail}") from None

    def _json(self, resp: requests.Response, method: str, path: str) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise self._error(CatalogError, f"fatcat {method} {path}: answer is not JSON") from None

    def _get_or_none(self, path: str, params: dict | None = None) -> Any:
        """The JSON of a GET answered 200; None when answered 404."""
        resp, _ = self._request("GET", path, params=params)
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            self._raise_for("GET", path, resp)
        return self._json(resp, "GET", path)

    # -- the interface ------------------------------------------------------
    def lookup_sha1(self, sha1: str) -> dict[str, Any] | None:
        return self._get_or_none("/file/lookup", params={"sha1": sha1})

    def get_file(self, ident: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/file/{quote(ident, safe='')}")

    def get_editgroup(self, editgroup_id: str) -> dict[str, Any] | None:
        return self._get_or_none(f"/editgroup/{quote(editgroup_id, safe='')}")

    def create_editgroup(self, description: str, extra: dict[str, Any]) -> str:
        path = "/editgroup"
        resp, _ = self._request("POST", path, body={"description": description, "extra": extra},
                                write=True)
        if resp.status_code not in (200, 201):
            self._raise_for("POST", path, resp)
        data = self._json(resp, "POST", path)
        editgroup_id = data.get("editgroup_id") if isinstance(data, dict) else None
        if not editgroup_id:
            raise self._error(CatalogError, "fatcat POST /editgroup: answer has no editgroup_id")
        return editgroup_id

    def update_file(self, editgroup_id: str, ident: str, entity: dict[str, Any]) -> dict[str, Any]:
        path = f"/editgroup/{quote(editgroup_id, safe='')}/file/{quote(ident, safe='')}"
        body = {k: v for k, v in entity.items() if k not in CATALOG_KEYS}
        resp, attempts = self._request("PUT", path, body=body, write=True)
        if resp.status_code == 200:
            return self._json(resp, "PUT", path)
        if attempts > 1 and resp.status_code == 400:
            # An earlier attempt may have been applied with its answer lost.
            try:
                self._raise_for("PUT", path, resp)
            except ConstraintViolation:
                edit = self._existing_edit(editgroup_id, ident)
                if edit is not None:
                    log.info("fatcat PUT %s: an earlier attempt was applied; keeping its edit", path)
                    return edit
                raise
        self._raise_for("PUT", path, resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def _existing_edit(self, editgroup_id: str, ident: str) -> dict[str, Any] | None:
        eg = self.get_editgroup(editgroup_id)
        for edit in editgroup_file_edits(eg or {}):
            if edit.get("ident") == ident:
                return edit
        return None

    def delete_edit(self, editgroup_id: str, edit_id: str) -> None:
        path = f"/editgroup/{quote(editgroup_id, safe='')}/file/edit/{quote(edit_id, safe='')}"
        resp, attempts = self._request("DELETE", path, write=True)
        if resp.status_code == 200:
            return
        if attempts > 1 and resp.status_code == 404:
            log.info("fatcat DELETE %s: an earlier attempt was applied", path)
            return
        self._raise_for("DELETE", path, resp)

    def open_editgroups(self, agent: str) -> list[dict[str, Any]]:
        editor = editor_id_of_token(self._token)
        if editor is None:
            log.warning("the fatcat token names no editor (not a fatcat macaroon?): cannot look "
                        "for another run's open editgroups")
            return []
        listed = self._get_or_none(f"/editor/{quote(editor, safe='')}/editgroups",
                                   params={"limit": EDITGROUPS_LIMIT})
        if listed is None:  # no such editor: it has no editgroups (and its writes will fail)
            return []
        if not isinstance(listed, list):
            raise self._error(CatalogError, f"fatcat GET /editor/{editor}/editgroups: not a list")
        wanted = [eg["editgroup_id"] for eg in listed
                  if isinstance(eg, dict) and not editgroup_is_accepted(eg)
                  and (eg.get("extra") or {}).get("agent") == agent]
        # the listing has no edits: each is fetched whole, a few at once (`_map`)
        return [full for full in self._map(self.get_editgroup, wanted)
                if full is not None and not editgroup_is_accepted(full)]

    def accept_editgroup(self, editgroup_id: str) -> None:
        path = f"/editgroup/{quote(editgroup_id, safe='')}/accept"
        resp, attempts = self._request("POST", path, write=True)
        if resp.status_code == 200:
            return
        if attempts > 1:
            try:
                self._raise_for("POST", path, resp)
            except EditgroupAlreadyAccepted:
                log.info("fatcat POST %s: an earlier attempt was applied", path)
                return
        self._raise_for("POST", path, resp)
