"""The one interface every catalog backend speaks, and the errors it raises.

Why: the importer must run the same way against the embedded SQLite catalog
(the default, and what the tests use) and against the fatcat REST API. Both
follow fatcat's editing model: an edit is a new revision of an entity placed
in an editgroup; nothing changes in the catalog until the editgroup is
accepted; one editgroup may hold at most one edit per entity. Errors are
mapped onto fatcat's own error names (`NotFound`, `ConstraintViolation`,
`EditgroupAlreadyAccepted`, `InvalidCredentials`) so the importer handles one
set of exceptions whatever the backend.

Entities cross this interface in export shape (docs/data.md): a dict whose absent
fields are absent keys, with `ident`, `state` and (when there is one)
`revision`.
"""

from __future__ import annotations

import base64
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any

from pipeline.errors import OperatorError

IDENT_RE = re.compile(r"^[a-z2-7]{26}$")
ENTITY_STATES = ("wip", "active", "redirect", "deleted")
# Keys that describe an entity's place in the catalog rather than its content.
CATALOG_KEYS = ("ident", "revision", "state")


class CatalogError(OperatorError):
    """Base of every catalog failure; `error` is fatcat's error name."""

    error = "CatalogError"


class NotFound(CatalogError):
    error = "NotFound"


class ConstraintViolation(CatalogError):
    """A database constraint refused the write (e.g. one ident twice in one editgroup)."""

    error = "ConstraintViolation"


class EditgroupAlreadyAccepted(CatalogError):
    error = "EditgroupAlreadyAccepted"


class InvalidCredentials(CatalogError):
    """The API refused (or would refuse) a write for want of a valid token."""

    error = "InvalidCredentials"


class BadRequest(CatalogError):
    error = "BadRequest"


class CatalogUnavailable(CatalogError):
    """The catalog service kept failing (5xx, connection errors) after every retry."""

    error = "CatalogUnavailable"


ERRORS_BY_NAME = {
    cls.error: cls
    for cls in (NotFound, ConstraintViolation, EditgroupAlreadyAccepted, InvalidCredentials, BadRequest)
}

# fatcat's message for the unique (editgroup, ident) constraint, as its API returns it.
DUPLICATE_EDIT_MESSAGE = (
    "unexpected database error: duplicate key value violates unique constraint "
    '"file_edit_editgroup_id_ident_id_key"'
)


def new_fatcat_id() -> str:
    """A fatcat-style identifier: a random UUID in 26 lower-case base32 characters."""
    return base64.b32encode(uuid.uuid4().bytes).decode("ascii").rstrip("=").lower()


def editgroup_is_accepted(editgroup: dict[str, Any]) -> bool:
    """fatcat marks a merged editgroup by its `changelog_index`."""
    return editgroup.get("changelog_index") is not None


def editgroup_file_edits(editgroup: dict[str, Any]) -> list[dict[str, Any]]:
    return list((editgroup.get("edits") or {}).get("files") or [])


class Catalog(ABC):
    """File entities, editgroups and edits: the calls the importer needs.

    What a backend offers beyond the per-call methods is declared here, never
    sniffed: the importer reads these declarations and has one path per
    capability (docs/architecture.md, "A new catalog backend").
    - `atomic_editgroups`: `commit_editgroup` writes a whole editgroup (create,
      edits, accept) in one transaction, so a kill leaves it accepted or absent;
      `commit_editgroups` writes several (the embedded catalog: in one transaction).
      When False the importer edits call by call and its journal settles what a
      kill leaves open; the two are different guarantees, so there is no
      non-atomic `commit_editgroup` to fall back on.
    - `lookup_sha1_many`, `get_file_many`: batched reads, always called by the
      importer; by default a loop over `lookup_sha1`/`get_file`, overridden by a
      backend that can do better (one query, concurrent requests).
    - `parallel_streams`: `for_stream` gives an independent client that may edit
      beside the others; each import stream calls it in its own forked process,
      on the catalog object it inherited (`pipeline.importer.streams`).
    - `lock_path()`: the file whose `flock` makes one import at a time this
      catalog's writer, or None when the catalog cannot be locked from here (an API).
    """

    #: a stable, secret-free name of this catalog (path or base URL), used by
    #: the import journal to tell catalogs apart.
    name: str = ""
    #: `commit_editgroup` writes an editgroup in one transaction (see the class docstring)
    atomic_editgroups: bool = False
    #: `for_stream` gives independent clients for parallel import streams
    parallel_streams: bool = False

    @abstractmethod
    def lookup_sha1(self, sha1: str) -> dict[str, Any] | None:
        """The entity whose `sha1` this is, or None when there is none."""

    @abstractmethod
    def get_file(self, ident: str) -> dict[str, Any] | None:
        """The current state of one entity, or None when the ident is unknown."""

    @abstractmethod
    def create_editgroup(self, description: str, extra: dict[str, Any]) -> str:
        """Open a new editgroup; return its `editgroup_id`."""

    @abstractmethod
    def update_file(self, editgroup_id: str, ident: str, entity: dict[str, Any]) -> dict[str, Any]:
        """Put a new revision of `ident` into the open editgroup; return the edit.

        The edit is a dict like fatcat's `entity_edit`: `edit_id`, `ident`,
        `revision`, `prev_revision`, `editgroup_id`. `prev_revision` is the
        revision the catalog had for the entity when it took the edit: the
        importer compares it with the one it looked up (another run may have
        edited the entity in between).
        """

    @abstractmethod
    def delete_edit(self, editgroup_id: str, edit_id: str) -> None:
        """Take one edit out of an open editgroup (fatcat's `delete_file_edit`): the entity is
        left as it is. Used to drop an edit made over another run's (see the importer)."""

    @abstractmethod
    def open_editgroups(self, agent: str) -> list[dict[str, Any]]:
        """The editgroups of this catalog's editor that are not accepted and whose
        `extra.agent` is `agent`, each as `get_editgroup` returns it (with its edits)."""

    @abstractmethod
    def accept_editgroup(self, editgroup_id: str) -> None:
        """Merge the editgroup: every edit in it becomes its entity's current state."""

    @abstractmethod
    def get_editgroup(self, editgroup_id: str) -> dict[str, Any] | None:
        """The editgroup (`editgroup_id`, `description`, `extra`, `changelog_index` when
        accepted, `edits.files`), or None when unknown. Used to resume after a crash."""

    def lookup_sha1_many(self, sha1s: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`lookup_sha1` for many sha1s: {lower-case sha1: entity}, a sha1 with no entity absent.
        By default one `lookup_sha1` each."""
        found = {sha1: self.lookup_sha1(sha1) for sha1 in sorted({s.lower() for s in sha1s})}
        return {sha1: entity for sha1, entity in found.items() if entity is not None}

    def get_file_many(self, idents: list[str]) -> dict[str, dict[str, Any] | None]:
        """`get_file` for many idents: {ident: entity or None}. By default one `get_file` each."""
        return {ident: self.get_file(ident) for ident in idents}

    def commit_editgroup(self, editgroup_id: str, description: str, extra: dict[str, Any] | None,
                         updates: list[tuple[str, dict[str, Any]]],
                         keep: Callable[[str, str | None], bool] | None = None) -> list[dict[str, Any]]:
        """Create editgroup `editgroup_id`, make `updates` (ident, entity) whose current revision
        `keep(ident, revision)` accepts, and accept it, all in one transaction; return the
        edits made. Only a catalog declaring `atomic_editgroups` has it."""
        raise NotImplementedError(f"{type(self).__name__} does not declare atomic_editgroups")

    def commit_editgroups(self, description: str, extra: dict[str, Any] | None,
                          groups: list[tuple[str, list[tuple[str, dict[str, Any]]]]],
                          keep: Callable[[str, str | None], bool] | None = None,
                          ) -> list[list[dict[str, Any]]]:
        """`commit_editgroup` for several (editgroup_id, updates), in order; return each one's
        edits. By default one transaction per editgroup; a backend that can (the embedded
        catalog) makes them all one, so a kill leaves every editgroup of the call accepted or
        none. Either way each editgroup is whole or absent, which is what the importer's
        journal and recovery rely on. Only a catalog declaring `atomic_editgroups` has it."""
        return [self.commit_editgroup(eg_id, description, extra, updates, keep)
                for eg_id, updates in groups]

    def for_stream(self) -> Catalog:
        """Another client of the same catalog for one parallel import stream. Only a catalog
        declaring `parallel_streams` has it."""
        raise NotImplementedError(f"{type(self).__name__} does not declare parallel_streams")

    def lock_path(self) -> str | None:
        """The lock file an import holds for its whole length so that it is this catalog's one
        writer (`pipeline.runlock`), or None when there is none to take (an API)."""
        return None

    def identity(self) -> str | None:
        """What tells this catalog apart from another one under the same `name` (an embedded
        catalog replaced at its path); None when the name says it all (an API URL)."""
        return None

    def check_writable(self) -> None:
        """Raise before any work when writes are sure to be refused (by default they are not)."""
        return None

    def check_access(self) -> None:
        """Raise before an import does any work when its writes would be refused: what
        `check_writable` can tell alone, and for a remote catalog the service's own answer
        (a token it rejects, a URL that does not answer), so that is known in seconds,
        not after the first editgroup. By default `check_writable`."""
        self.check_writable()

    @abstractmethod
    def close(self) -> None:
        """Release connections; the catalog is not used afterwards."""

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
