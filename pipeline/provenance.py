"""Provenance sidecars: which files a step read and wrote, and whether they are still those files.

Why a plain module: the sidecar (`<target>.meta.json`) is the pipeline's
record of what made a target (see docs/targets.md). Deciding whether a file
is the one a step read (same size and mtime, or failing that the same
sha256) and reading a finished step's counts are plain file operations; the
Luigi base task, the CLI and tests all use them without Luigi.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pipeline.jsonio import InputError, read_json

META_SUFFIX = ".meta.json"
# the sidecar's own checksum: sha256 of the rest of the sidecar (see `seal_meta`)
CHECKSUM_KEY = "checksum"


class SidecarError(InputError, ValueError):
    """A sidecar that is not what its step wrote (unreadable, or edited since): its counts
    cannot be trusted, and the step that wrote it is not complete."""


def utc_now(*, micro: bool = False) -> str:
    """The current UTC time as text: `2026-01-31T12:00:00Z` (sidecars), or with
    microseconds, `2026-01-31T12:00:00.123456Z` (catalog records, journal events)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def meta_path(target: str | os.PathLike) -> Path:
    """The sidecar of a target: `<target>.meta.json`."""
    return Path(f"{os.fspath(target)}{META_SUFFIX}")


def read_meta(target: str | os.PathLike) -> dict[str, Any] | None:
    """A target's sidecar as a dict, or None when the step has not finished."""
    sidecar = meta_path(target)
    return read_json(sidecar) if sidecar.exists() else None


def read_counts(target: str | os.PathLike) -> dict[str, Any]:
    """The counts a finished step recorded for `target` (its sidecar must exist and be the one
    the step wrote: an edited sidecar raises `SidecarError` rather than hand on its figures)."""
    return read_sealed_meta(target)["counts"]


def seal_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` with its checksum: the sha256 of the rest of it, canonically serialised.

    Why a checksum inside the sidecar: its counts are what the next step, the
    report and the operator trust, and a hand edit ("fix" a count, paste another
    run's sidecar) would otherwise pass for the step's own record. It guards
    against edits and accidents, not against someone who recomputes it.
    """
    body = {k: v for k, v in meta.items() if k != CHECKSUM_KEY}
    return {**body, CHECKSUM_KEY: _meta_digest(body)}


def seal_problem(meta: Any) -> str | None:
    """Why `meta` is not a sidecar as its step wrote it, or None when its checksum holds."""
    if not isinstance(meta, dict):
        return "is not a JSON object"
    recorded = meta.get(CHECKSUM_KEY)
    if recorded is None:
        return "has no checksum (written by hand or by an older version)"
    if recorded != _meta_digest({k: v for k, v in meta.items() if k != CHECKSUM_KEY}):
        return "does not match its checksum (edited since its step wrote it)"
    return None


def _meta_digest(body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_sealed_meta(target: str | os.PathLike) -> dict[str, Any]:
    """A target's sidecar, checked against its checksum (`SidecarError` when it fails)."""
    sidecar = meta_path(target)
    try:
        meta = read_json(sidecar)
    except ValueError as e:
        raise SidecarError(f"sidecar {sidecar} is not JSON ({e}); rerun its step") from None
    problem = seal_problem(meta)
    if problem:
        raise SidecarError(f"sidecar {sidecar} {problem}; rerun its step")
    return meta


def changed_outputs(meta: dict[str, Any], paths: list[str]) -> list[str]:
    """Which of a step's `paths` (its target and companions) are not the files its sidecar
    `meta` recorded: missing, unrecorded, or with other content.

    Same size and mtime is the same file (a no-op rerun reads no byte); only a
    file whose mtime changed is hashed, and kept if its bytes are the recorded ones.
    """
    recorded = {o.get("path"): o for o in meta.get("outputs") or [] if isinstance(o, dict)}
    return [p for p in paths if not os.path.exists(p) or not unchanged(recorded.get(p), p)]


def file_identity(path: str | os.PathLike, sha256: str | None = None) -> dict[str, Any]:
    """Path, size, mtime and content digest of a file (the digest computed unless given)."""
    st = os.stat(path)
    return {
        "path": os.fspath(path),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256 or content_digest(path),
    }


def content_digest(path: str | os.PathLike) -> str:
    """The sha256 of a file, computed once per file state (path, size, mtime) in a process:
    an external input such as the export has no sidecar, and every step that reads it,
    and the embedded catalog's seed check, would otherwise hash it again."""
    st = os.stat(path)
    return _digest(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def current_digest(path: str) -> str:
    """The digest of a file now: from its producer's sidecar when that describes the file as
    it is (same size and mtime), else computed (external inputs, or a file changed by hand)."""
    sidecar = meta_path(path)
    if sidecar.exists():
        st = os.stat(path)
        try:
            outputs = read_json(sidecar).get("outputs", [])
        except (OSError, ValueError):
            outputs = []
        for out in outputs:
            if out.get("path") == path and (out.get("size"), out.get("mtime_ns")) == (
                st.st_size,
                st.st_mtime_ns,
            ) and out.get("sha256"):
                return out["sha256"]
    return content_digest(path)


def unchanged(recorded: dict | None, path: str) -> bool:
    """Whether `path` is the file a step read: same size and mtime, or else the same bytes."""
    if recorded is None:
        return False
    st = os.stat(path)
    if (recorded.get("size"), recorded.get("mtime_ns")) == (st.st_size, st.st_mtime_ns):
        return True
    return recorded.get("size") == st.st_size and recorded.get("sha256") == current_digest(path)


def upstream_count(path: str, key: str = "out") -> int | None:
    """A count the step that made `path` recorded in its sidecar (the next step's total)."""
    try:
        value = read_counts(path)[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) else None


def jsonable(value: Any) -> Any:
    """Tuples and luigi's frozen containers as plain JSON values, so that recorded settings
    (read back from a sidecar) and today's compare equal when they are."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
