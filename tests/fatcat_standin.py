"""A loopback stand-in for the fatcat v0 API, for the catalog and import tests.

Speaks the part of fatcat's contract the import uses, as fatcat's server
implements it: `GET /v0/file/lookup?sha1=` (404 NotFound on a miss, 400
MalformedChecksum on a bad hash), `GET /v0/file/{ident}`,
`GET /v0/editgroup/{id}` (with `edits.files`, and `changelog_index` once
accepted), `POST /v0/editgroup` (201), `PUT /v0/editgroup/{id}/file/{ident}`,
`POST /v0/editgroup/{id}/accept`. Writes need `Authorization: Bearer <token>`;
without it fatcat answers InvalidCredentials, with HTTP 403 in the server's
implementation (its OpenAPI document also lists 401; `auth_status` picks one).
Errors have fatcat's body `{"success": false, "error": NAME, "message": ...}`:
editing an accepted editgroup is 400 EditgroupAlreadyAccepted, a second edit
of one ident in one editgroup is 400 ConstraintViolation with fatcat's
`file_edit_editgroup_id_ident_id_key` message.

State lives in an embedded `SqliteCatalog`, so the tests can inspect edits
and editgroups directly. Faults can be queued to test the client's retries:
`"503"` answers 503 without doing anything, `"drop"` does the work and then
closes the connection without answering (a lost response).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pipeline.catalog.base import (
    IDENT_RE,
    CatalogError,
    ConstraintViolation,
    EditgroupAlreadyAccepted,
    NotFound,
)
from pipeline.catalog.sqlite import SqliteCatalog

SHA1_RE = re.compile(r"^[a-f0-9]{40}$")
ROUTES = [
    ("GET", re.compile(r"^/v0/file/lookup$"), "lookup"),
    ("GET", re.compile(r"^/v0/file/([^/]+)$"), "get_file"),
    ("GET", re.compile(r"^/v0/editgroup/([^/]+)$"), "get_editgroup"),
    ("POST", re.compile(r"^/v0/editgroup$"), "create_editgroup"),
    ("PUT", re.compile(r"^/v0/editgroup/([^/]+)/file/([^/]+)$"), "update_file"),
    ("POST", re.compile(r"^/v0/editgroup/([^/]+)/accept$"), "accept"),
]
WRITES = {"create_editgroup", "update_file", "accept"}
EDITOR_ID = "aaaaaaaaaaaaaeditoraaaaaai"


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class FatcatStandin:
    """Run with `with FatcatStandin(catalog, token) as api: api.url` (…/v0)."""

    def __init__(self, catalog: SqliteCatalog, token: str, *, auth_status: int = 403,
                 delay: float = 0.0, echo_auth_in_errors: bool = False):
        self.catalog = catalog
        self.token = token
        self.auth_status = auth_status
        self.delay = delay
        self.echo_auth_in_errors = echo_auth_in_errors
        self.lock = threading.Lock()
        self.faults: list[tuple[str, str, str]] = []  # (method, operation, "503"|"drop")
        self.requests: list[dict] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v0"

    def add_fault(self, method: str, operation: str, kind: str, times: int = 1) -> None:
        for _ in range(times):
            self.faults.append((method, operation, kind))

    def __enter__(self) -> FatcatStandin:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # one write per answer and no Nagle delay: keep-alive calls take ~1 ms, not 40
            wbufsize = 1 << 16
            disable_nagle_algorithm = True

            def log_message(self, format, *args):  # noqa: A002 - stdlib signature
                pass

            def do_GET(self):
                standin._handle(self, "GET")

            def do_POST(self):
                standin._handle(self, "POST")

            def do_PUT(self):
                standin._handle(self, "PUT")

            def do_DELETE(self):
                standin._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    # -- request handling ---------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        auth = h.headers.get("Authorization")
        op, args = None, ()
        for m, pattern, name in ROUTES:
            match = pattern.match(parts.path)
            if m == method and match:
                op, args = name, match.groups()
                break
        with self.lock:
            self.requests.append({"method": method, "path": parts.path, "op": op,
                                  "authorized": auth is not None})
            fault = next((f for f in self.faults if f[0] == method and f[1] == op), None)
            if fault:
                self.faults.remove(fault)
        if fault and fault[2] == "503":
            return self._send(h, 503, {"success": False, "error": "DatabaseError",
                                       "message": "unexpected database error: connection pool timeout"})
        try:
            if op is None:
                raise HttpError(404, "NotFound", f"no route for {method} {parts.path}")
            if op in WRITES:
                self._check_auth(auth)
            body = None
            if method in ("POST", "PUT") and raw:
                try:
                    body = json.loads(raw)
                except ValueError as e:
                    raise HttpError(400, "BadRequest", f"invalid JSON body: {e}") from None
            with self.lock:
                status, payload = getattr(self, f"_op_{op}")(parse_qs(parts.query), body, *args)
        except HttpError as e:
            message = e.message
            if self.echo_auth_in_errors and auth:
                message += f" (header was {auth})"
            status, payload = e.status, {"success": False, "error": e.error, "message": message}
        if fault and fault[2] == "drop":
            h.close_connection = True
            return
        self._send(h, status, payload)

    def _check_auth(self, auth: str | None) -> None:
        msg = "auth token was missing, expired, revoked, or corrupt: "
        if auth is None:
            raise HttpError(self.auth_status, "InvalidCredentials", msg + "no token supplied")
        parts = auth.split()
        if len(parts) != 2 or parts[0] != "Bearer":
            raise HttpError(self.auth_status, "InvalidCredentials", "invalid Bearer Auth HTTP header")
        if parts[1] != self.token:
            raise HttpError(self.auth_status, "InvalidCredentials", msg + "macaroon verification failed")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def _catalog_call(func, *args):
        try:
            return func(*args)
        except NotFound as e:
            raise HttpError(404, "NotFound", str(e)) from None
        except (ConstraintViolation, EditgroupAlreadyAccepted) as e:
            raise HttpError(400, e.error, str(e)) from None
        except CatalogError as e:
            raise HttpError(500, "InternalError", str(e)) from None

    @staticmethod
    def _check_ident(ident: str) -> None:
        if not IDENT_RE.match(ident):
            raise HttpError(400, "InvalidFatcatId",
                            f"invalid fatcat identifier (expect 26-char base32 encoded): {ident}")

    @staticmethod
    def _found(thing, kind: str, key: str):
        """`thing`, or fatcat's 404 for a `kind` ("file", "editgroup") not found by `key`."""
        if thing is None:
            raise HttpError(404, "NotFound", f"no such {kind} found: {key}")
        return thing

    # -- operations -----------------------------------------------------------
    def _op_lookup(self, query, body):
        sha1 = (query.get("sha1") or [""])[0]
        if not SHA1_RE.match(sha1):
            raise HttpError(400, "MalformedChecksum",
                            f"checksum doesn't match required pattern (SHA-1 in hex encoding): {sha1}")
        return 200, self._found(self.catalog.lookup_sha1(sha1), "file", f"sha1:{sha1}")

    def _op_get_file(self, query, body, ident):
        self._check_ident(ident)
        return 200, self._found(self.catalog.get_file(ident), "file", ident)

    def _op_get_editgroup(self, query, body, editgroup_id):
        self._check_ident(editgroup_id)
        eg = self._found(self.catalog.get_editgroup(editgroup_id), "editgroup", editgroup_id)
        return 200, {**eg, "editor_id": EDITOR_ID}

    def _op_create_editgroup(self, query, body):
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "editgroup body must be a JSON object")
        eg_id = self._catalog_call(self.catalog.create_editgroup, body.get("description"), body.get("extra"))
        eg = self.catalog.get_editgroup(eg_id)
        eg.pop("edits", None)
        return 201, {**eg, "editor_id": EDITOR_ID}

    def _op_update_file(self, query, body, editgroup_id, ident):
        self._check_ident(editgroup_id)
        self._check_ident(ident)
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "file entity body must be a JSON object")
        return 200, self._catalog_call(self.catalog.update_file, editgroup_id, ident, body)

    def _op_accept(self, query, body, editgroup_id):
        self._check_ident(editgroup_id)
        self._catalog_call(self.catalog.accept_editgroup, editgroup_id)
        return 200, {"success": True, "message": "horray!"}
