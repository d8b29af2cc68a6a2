"""A loopback stand-in for the fatcat v0 API, for the catalog and import tests.

It keeps its own minimal store (files, revisions, editgroups, edits, a
changelog) and shares no code with `pipeline.catalog`: a wrong idea of
fatcat's answers in the project would otherwise pass on both sides. Request
and response shapes follow fatcat's published OpenAPI document
(`fatcat-openapi2.yml`): `file_entity`, `editgroup` (with `edits.files` of
`entity_edit` and `changelog_index` once accepted), `entity_edit` (`edit_id`,
`ident`, `revision`, `prev_revision`, `editgroup_id`, `extra` from the body's
`edit_extra`), `success` and `error_response` (`{"success": false, "error":
NAME, "message": ...}`). tests/test_fatcat_standin.py runs the official
generated client (`fatcat-openapi-client`) against it.

Calls: `GET /v0/file/lookup?sha1=` (404 NotFound on a miss, 400
MalformedChecksum on a bad hash; the live entity with the lowest ident when
several share a hash), `GET /v0/file/{ident}`, `GET /v0/editgroup/{id}`,
`POST /v0/editgroup` (201), `PUT /v0/editgroup/{id}/file/{ident}`,
`POST /v0/editgroup/{id}/accept`, `DELETE /v0/editgroup/{id}/file/edit/{edit_id}`
(`delete_file_edit`: takes an edit out of an open editgroup),
`GET /v0/editor/{editor_id}/editgroups` (`get_editor_editgroups`: newest
first, `limit` 20 by default and at most 100, editgroups without their edit
lists) and `GET /v0/auth/check` (`auth_check`). Writes need `Authorization: Bearer <token>`;
without it fatcat answers InvalidCredentials, with HTTP 403 in the server's
implementation (its OpenAPI document also lists 401; `auth_status` picks one).
Editing or accepting an accepted editgroup is 400 EditgroupAlreadyAccepted; a
second edit of one ident in one editgroup is 400 ConstraintViolation (fatcat's
unique-constraint message).

Faults can be queued to test the client's retries: `"503"` and `"429"` answer
that status without doing anything (with a `Retry-After` header when asked),
`"drop"` does the work and then closes the connection without answering (a
lost response). `pause(method, operation)` holds the next such request before it does anything until the test releases it, so two
clients can be interleaved exactly. Tokens: fatcat's are macaroons whose
`editor_id = ...` caveat names the editor; `macaroon_token(editor_id)` makes
one of that shape (not signed: the stand-in only compares the whole token),
and editgroups record the editor the token names (`EDITOR_ID` when it names
none). Tests read the state through
`get_file`, `iter_entities`, `get_editgroup`, `editgroups` and `edits_of`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

IDENT = re.compile(r"^[a-z2-7]{26}$")
HEX = {"md5": re.compile(r"^[a-f0-9]{32}$"), "sha1": re.compile(r"^[a-f0-9]{40}$"),
       "sha256": re.compile(r"^[a-f0-9]{64}$")}
CHECKSUM_NAMES = {"md5": "MD5", "sha1": "SHA-1", "sha256": "SHA-256"}
STATES = ("wip", "active", "redirect", "deleted")
# fields of a file_entity that say where it is in the catalog, not what it is
PLACE = ("ident", "revision", "state", "redirect", "edit_extra")
ROUTES = [
    ("GET", re.compile(r"^/v0/file/lookup$"), "lookup"),
    ("GET", re.compile(r"^/v0/file/([^/]+)$"), "get_file"),
    ("GET", re.compile(r"^/v0/editgroup/([^/]+)$"), "get_editgroup"),
    ("POST", re.compile(r"^/v0/editgroup$"), "create_editgroup"),
    ("PUT", re.compile(r"^/v0/editgroup/([^/]+)/file/([^/]+)$"), "update_file"),
    ("POST", re.compile(r"^/v0/editgroup/([^/]+)/accept$"), "accept"),
    ("DELETE", re.compile(r"^/v0/editgroup/([^/]+)/file/edit/([^/]+)$"), "delete_file_edit"),
    ("GET", re.compile(r"^/v0/editor/([^/]+)/editgroups$"), "get_editor_editgroups"),
    ("GET", re.compile(r"^/v0/auth/check$"), "auth_check"),
]
WRITES = {"create_editgroup", "update_file", "accept", "delete_file_edit", "auth_check"}
EDITOR_ID = "aaaaaaaaaaaaaeditoraaaaaai"
EDIT_KINDS = ("containers", "creators", "files", "filesets", "webcaptures", "releases", "works")


def _fatcat_id() -> str:
    return base64.b32encode(uuid.uuid4().bytes).decode("ascii").rstrip("=").lower()


def macaroon_token(editor_id: str, location: str = "standin.fatcat.test") -> str:
    """A token shaped like fatcat's (a macaroon, V2 binary format, base64): location, key id,
    an `editor_id = <id>` and a `time > ...` first-party caveat, a 32-byte signature."""

    def field(kind: int, data: bytes) -> bytes:
        return bytes([kind, len(data)]) + data

    caveats = [f"editor_id = {editor_id}".encode(), b"time > 2026-01-01T00:00:00Z"]
    raw = b"\x02" + field(1, location.encode()) + field(2, b"20260101-standin-key") + b"\x00"
    for caveat in caveats:
        raw += field(2, caveat) + b"\x00"
    raw += b"\x00" + field(6, uuid.uuid4().bytes + uuid.uuid4().bytes)
    return base64.b64encode(raw).decode("ascii")


def editor_of_token(token: str) -> str:
    """The editor a token names (its `editor_id = ...` caveat), EDITOR_ID when it names none."""
    try:
        raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_")
    except ValueError:
        raw = b""
    match = re.search(rb"editor_id = ([a-z2-7]{26})", raw)
    return match.group(1).decode() if match else EDITOR_ID


class Pause:
    """One request held by the stand-in: `reached` is set when it arrives, `release()` lets it go."""

    def __init__(self, method: str, operation: str, skip: int = 0):
        self.method, self.operation = method, operation
        self.skip = skip  # matching requests let through before the one held
        self.reached = threading.Event()
        self._go = threading.Event()

    def release(self) -> None:
        self._go.set()

    def wait_reached(self, timeout: float = 60.0) -> None:
        if not self.reached.wait(timeout):
            raise AssertionError(f"no {self.method} {self.operation} reached the stand-in")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_export(path) -> list[dict]:
    """File entities of an export (JSON lines, gzip or plain); lines that are not objects skipped."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class FatcatStandin:
    """Run with `with FatcatStandin(TOKEN, entities) as api: api.url` (…/v0)."""

    def __init__(self, token: str, entities=(), *, auth_status: int = 403, delay: float = 0.0,
                 echo_auth_in_errors: bool = False, port: int = 0):
        self.token = token
        self.port = port
        self.auth_status = auth_status
        self.delay = delay
        self.echo_auth_in_errors = echo_auth_in_errors
        self.lock = threading.RLock()
        self.busy = 0  # requests being handled (a client that timed out leaves them running)
        self.idle = threading.Condition()
        # (method, operation, "503"|"429"|"drop", Retry-After header or None)
        self.faults: list[tuple[str, str, str, str | None]] = []
        self.pauses: list[Pause] = []
        self.requests: list[dict] = []
        # the store: ident -> {"state", "revision"}; revision -> entity body; editgroups in
        # creation order; edits in creation order; accepted editgroup ids in changelog order
        self.idents: dict[str, dict] = {}
        self.revisions: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self.edits: list[dict] = []
        # indexes over the store, so no call scans it all (the stand-in must never be what a
        # bench measures): sha1 -> idents whose current revision has it; editgroup -> {ident:
        # its edit}; edit_id -> edit
        self._by_sha1: dict[str, set[str]] = {}
        self._group_edits: dict[str, dict[str, dict]] = {}
        self._edit_by_id: dict[str, dict] = {}
        self.changelog: list[str] = []
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.add_entities(entities)

    @classmethod
    def from_export(cls, token: str, path, **kw) -> FatcatStandin:
        return cls(token, read_export(path), **kw)

    # -- state ----------------------------------------------------------------
    def add_entities(self, entities) -> None:
        """Put exported file entities into the catalog as they are (ident, revision, state kept)."""
        with self.lock:
            for e in entities:
                ident = e.get("ident") or _fatcat_id()
                revision = e.get("revision") or str(uuid.uuid4())
                self.revisions[revision] = {k: v for k, v in e.items() if k not in PLACE}
                self._place(ident, e.get("state") or "active", revision)

    def _place(self, ident: str, state: str, revision: str) -> None:
        """Point `ident` at `revision` (under the lock), keeping the sha1 index true."""
        old = self.idents.get(ident)
        if old is not None:
            self._by_sha1.get(self.revisions[old["revision"]].get("sha1"), set()).discard(ident)
        self.idents[ident] = {"state": state, "revision": revision}
        self._by_sha1.setdefault(self.revisions[revision].get("sha1"), set()).add(ident)

    def reset(self, entities=()) -> None:
        """Forget every entity, editgroup, edit, request, fault and pause, then hold `entities`:
        one running stand-in (one URL) meets several runs as a fresh catalog each time."""
        with self.lock:
            for store in (self.faults, self.pauses, self.requests, self.idents, self.revisions,
                          self.groups, self.edits, self.changelog):
                store.clear()
        self.add_entities(entities)

    def get_file(self, ident: str) -> dict | None:
        """The entity as `GET /file/{ident}` returns it (None: no such ident)."""
        with self.lock:
            place = self.idents.get(ident)
            if place is None:
                return None
            entity = {"ident": ident, "revision": place["revision"], "state": place["state"]}
            if place["state"] != "deleted":
                entity.update(copy.deepcopy(self.revisions[place["revision"]]))
            return entity

    def iter_entities(self):
        with self.lock:
            idents = sorted(self.idents)
        for ident in idents:
            yield self.get_file(ident)

    def get_editgroup(self, editgroup_id: str) -> dict | None:
        """The editgroup as `GET /editgroup/{id}` returns it, with every edit list."""
        with self.lock:
            group = self.groups.get(editgroup_id)
            if group is None:
                return None
            out = {k: copy.deepcopy(v) for k, v in group.items() if v is not None}
            out["edits"] = {kind: [] for kind in EDIT_KINDS}
            out["edits"]["files"] = [self._edit_view(e)
                                     for e in self._group_edits.get(editgroup_id, {}).values()]
            return out

    def editgroups(self) -> list[dict]:
        """Every editgroup in creation order with its changelog index (None: open) and edit count."""
        with self.lock:
            return [{"editgroup_id": g, "changelog_index": group.get("changelog_index"),
                     "edit_count": len(self._group_edits.get(g, ()))}
                    for g, group in self.groups.items()]

    def edits_of(self, ident: str, accepted_only: bool = True) -> list[dict]:
        """The edits of one entity in creation order, each with its editgroup's changelog index."""
        with self.lock:
            out = []
            for e in self.edits:
                if e["ident"] != ident:
                    continue
                index = self.groups[e["editgroup_id"]].get("changelog_index")
                if accepted_only and index is None:
                    continue
                out.append(self._edit_view(e) | {"changelog_index": index})
            return out

    @staticmethod
    def _edit_view(edit: dict) -> dict:
        return {k: copy.deepcopy(v) for k, v in edit.items() if v is not None}

    # -- server -----------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v0"

    def pause(self, method: str, operation: str, skip: int = 0) -> Pause:
        """Hold the next `method operation` request (e.g. "POST", "accept") until released;
        with `skip`, the one after the next `skip` such requests."""
        held = Pause(method, operation, skip)
        with self.lock:
            self.pauses.append(held)
        return held

    def add_fault(self, method: str, operation: str, kind: str, times: int = 1,
                  retry_after: str | None = None) -> None:
        """Queue `kind` ("503", "429": answered without doing anything, with `Retry-After:
        retry_after` when given; "drop": done, then the connection closed unanswered)."""
        for _ in range(times):
            self.faults.append((method, operation, kind, retry_after))

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

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
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
    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until no request is being handled (e.g. those a client stopped waiting for)."""
        with self.idle:
            if not self.idle.wait_for(lambda: self.busy == 0, timeout):
                raise RuntimeError(f"{self.busy} requests still being handled after {timeout} s")

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self.idle:
            self.busy += 1
        try:
            self._handle_one(h, method)
        finally:
            with self.idle:
                self.busy -= 1
                self.idle.notify_all()

    def _handle_one(self, h: BaseHTTPRequestHandler, method: str) -> None:
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
            held = next((p for p in self.pauses if p.method == method and p.operation == op), None)
            if held and held.skip:
                held.skip -= 1
                held = None
            elif held:
                self.pauses.remove(held)
        if held:  # outside the store's lock: other clients go on meanwhile
            held.reached.set()
            if not held._go.wait(120):
                raise RuntimeError(f"paused {method} {op} never released")
        if fault and fault[2] in ("503", "429"):
            headers = {"Retry-After": fault[3]} if fault[3] is not None else {}
            return self._send(h, int(fault[2]), {"success": False, "error": "DatabaseError",
                                                 "message": "unexpected database error: connection "
                                                            "pool timeout"}, headers)
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
    def _send(h: BaseHTTPRequestHandler, status: int, payload, headers: dict | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    # -- checks -----------------------------------------------------------------
    @staticmethod
    def _check_ident(ident: str) -> None:
        if not IDENT.match(ident):
            raise HttpError(400, "InvalidFatcatId",
                            f"invalid fatcat identifier (expect 26-char base32 encoded): {ident}")

    @staticmethod
    def _check_checksum(kind: str, value) -> None:
        if not isinstance(value, str) or not HEX[kind].match(value):
            raise HttpError(400, "MalformedChecksum",
                            f"checksum doesn't match required pattern ({CHECKSUM_NAMES[kind]} in hex "
                            f"encoding): {value}")

    def _check_file_body(self, body) -> dict:
        """A file_entity request body as fatcat validates it: types, checksums, url objects."""
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "file entity body must be a JSON object")
        for kind in HEX:
            if kind in body:
                self._check_checksum(kind, body[kind])
        if "size" in body and (not isinstance(body["size"], int) or body["size"] < 0):
            raise HttpError(400, "BadRequest", f"size must be a non-negative integer: {body['size']!r}")
        for u in body.get("urls") or []:
            if not isinstance(u, dict) or not isinstance(u.get("url"), str) or not isinstance(u.get("rel"), str):
                raise HttpError(400, "BadRequest", f"a file url needs string 'url' and 'rel': {u!r}")
        if "state" in body and body["state"] not in STATES:
            raise HttpError(400, "BadRequest", f"invalid entity state: {body['state']!r}")
        if "edit_extra" in body and not isinstance(body["edit_extra"], dict):
            raise HttpError(400, "BadRequest", "edit_extra must be an object")
        return body

    def _open_group(self, editgroup_id: str) -> dict:
        self._check_ident(editgroup_id)
        group = self.groups.get(editgroup_id)
        if group is None:
            raise HttpError(404, "NotFound", f"no such editgroup found: {editgroup_id}")
        if group.get("changelog_index") is not None:
            raise HttpError(400, "EditgroupAlreadyAccepted",
                            "attempted to accept or mutate an editgroup which was already accepted: "
                            f"{editgroup_id}")
        return group

    # -- operations -----------------------------------------------------------
    def _op_lookup(self, query, body):
        sha1 = (query.get("sha1") or [""])[0]
        self._check_checksum("sha1", sha1)
        live = sorted(i for i in self._by_sha1.get(sha1, ()) if self.idents[i]["state"] == "active")
        if not live:
            raise HttpError(404, "NotFound", f"no such file found: sha1:{sha1}")
        return 200, self.get_file(live[0])

    def _op_get_file(self, query, body, ident):
        self._check_ident(ident)
        entity = self.get_file(ident)
        if entity is None:
            raise HttpError(404, "NotFound", f"no such file found: {ident}")
        return 200, entity

    def _op_get_editgroup(self, query, body, editgroup_id):
        self._check_ident(editgroup_id)
        group = self.get_editgroup(editgroup_id)
        if group is None:
            raise HttpError(404, "NotFound", f"no such editgroup found: {editgroup_id}")
        return 200, group

    def _op_create_editgroup(self, query, body):
        if not isinstance(body, dict):
            raise HttpError(400, "BadRequest", "editgroup body must be a JSON object")
        if "extra" in body and body["extra"] is not None and not isinstance(body["extra"], dict):
            raise HttpError(400, "BadRequest", "editgroup extra must be an object")
        editgroup_id = _fatcat_id()
        self.groups[editgroup_id] = {
            "editgroup_id": editgroup_id, "editor_id": editor_of_token(self.token), "created": _now(),
            "description": body.get("description"), "extra": copy.deepcopy(body.get("extra")),
            "changelog_index": None,
        }
        created = {k: v for k, v in self.groups[editgroup_id].items() if v is not None}
        return 201, created

    def _op_update_file(self, query, body, editgroup_id, ident):
        group = self._open_group(editgroup_id)
        self._check_ident(ident)
        body = self._check_file_body(body)
        place = self.idents.get(ident)
        if place is None:
            raise HttpError(404, "NotFound", f"no such file found: {ident}")
        if ident in self._group_edits.get(editgroup_id, {}):
            raise HttpError(400, "ConstraintViolation",
                            "unexpected database error: duplicate key value violates unique "
                            'constraint "file_edit_editgroup_id_ident_id_key"')
        revision = str(uuid.uuid4())
        self.revisions[revision] = copy.deepcopy({k: v for k, v in body.items() if k not in PLACE})
        edit = {"edit_id": str(uuid.uuid4()), "ident": ident, "revision": revision,
                "prev_revision": place["revision"], "editgroup_id": group["editgroup_id"],
                "extra": copy.deepcopy(body.get("edit_extra"))}
        self.edits.append(edit)
        self._group_edits.setdefault(editgroup_id, {})[ident] = edit
        self._edit_by_id[edit["edit_id"]] = edit
        return 200, self._edit_view(edit)

    def _op_accept(self, query, body, editgroup_id):
        self._open_group(editgroup_id)
        for e in self._group_edits.get(editgroup_id, {}).values():
            self._place(e["ident"], "active", e["revision"])
        self.changelog.append(editgroup_id)
        self.groups[editgroup_id]["changelog_index"] = len(self.changelog)
        return 200, {"success": True, "message": "horray!"}

    def _op_delete_file_edit(self, query, body, editgroup_id, edit_id):
        self._check_ident(editgroup_id)
        try:
            uuid.UUID(edit_id)
        except ValueError:
            raise HttpError(400, "MalformedExternalId", f"not a UUID: {edit_id}") from None
        edit = self._edit_by_id.get(edit_id)
        if edit is None:
            raise HttpError(404, "NotFound", f"no such file edit found: {edit_id}")
        if edit["editgroup_id"] != editgroup_id:
            raise HttpError(400, "BadRequest", "editgroup_id parameter didn't match that of the edit")
        self._open_group(editgroup_id)
        self.edits.remove(edit)
        del self._edit_by_id[edit_id]
        del self._group_edits[editgroup_id][edit["ident"]]
        return 200, {"success": True,
                     "message": f"Successfully deleted work-in-progress FileEntity edit: {edit_id}"}

    def _op_get_editor_editgroups(self, query, body, editor_id):
        self._check_ident(editor_id)
        try:
            limit = min(100, int((query.get("limit") or ["20"])[0]))
        except ValueError:
            raise HttpError(400, "BadRequest", "limit must be an integer") from None
        mine = [g for g in self.groups.values() if g["editor_id"] == editor_id]
        newest_first = sorted(mine, key=lambda g: g["created"], reverse=True)[:limit]
        return 200, [{k: copy.deepcopy(v) for k, v in g.items() if v is not None} for g in newest_first]

    def _op_auth_check(self, query, body):
        return 200, {"success": True, "message": "auth check successful!"}


def main(argv: list[str] | None = None) -> int:
    """`FATCAT_API_AUTH_TOKEN=... python tests/fatcat_standin.py --port 9411 --export EXPORT`:
    serve the export's entities until interrupted, for a trial run by hand
    (`--backfill-catalog http://127.0.0.1:9411/v0` with the same token in the environment)."""
    import argparse
    import os
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9411, help="127.0.0.1 port (0: a free one)")
    parser.add_argument("--export", help="file entities to start with (export JSON lines, .gz or not)")
    args = parser.parse_args(argv)
    token = os.environ.get("FATCAT_API_AUTH_TOKEN")
    if not token:
        print("set FATCAT_API_AUTH_TOKEN (the token writes must carry; give the pipeline the same)",
              file=sys.stderr)
        return 2
    entities = read_export(args.export) if args.export else []
    with FatcatStandin(token, entities, port=args.port) as api:
        print(f"fatcat stand-in at {api.url} ({len(entities)} file entities); Ctrl-C stops it",
              flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
