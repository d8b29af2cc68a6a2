"""What the import does to one file entity: fill missing fields, clean its URLs.

Why a module of its own: these rules are the part of SPEC §5 a reviewer checks
line by line (never overwrite; an empty string is missing; three URL cleanups
in a fixed order), and they are pure functions, tested without any catalog.
"""

from __future__ import annotations

import copy
from typing import Any

# catalog field -> file_meta field that fills it
FILL_FIELDS = {"md5": "md5hex", "sha256": "sha256hex", "size": "size_bytes", "mimetype": "mimetype"}


def is_missing(value: Any) -> bool:
    """Absent, null or empty string: all count as missing (SPEC §2.1, §5)."""
    return value is None or value == ""


def is_complete(entity: dict[str, Any]) -> bool:
    """Has md5, sha256, size and mimetype: nothing for this import to do."""
    return not any(is_missing(entity.get(field)) for field in FILL_FIELDS)


def fill_missing(entity: dict[str, Any], file_meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of `entity` with only its missing fields taken from `file_meta`."""
    out = copy.deepcopy(entity)
    for field, meta_field in FILL_FIELDS.items():
        if is_missing(out.get(field)):
            out[field] = file_meta[meta_field]
    return out


def cleanup_urls(urls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The three URL cleanups of SPEC §5, in order.

    1. `rel: social` (legacy) becomes `academicsocial`;
    2. exact duplicate (url, rel) pairs are dropped, the first kept;
    3. an `http://` URL is dropped when its `https://` twin is present,
       whatever either one's rel.
    """
    renamed = []
    for u in urls:
        u = dict(u)
        if u.get("rel") == "social":
            u["rel"] = "academicsocial"
        renamed.append(u)

    seen: set[tuple[Any, Any]] = set()
    unique = []
    for u in renamed:
        key = (u.get("url"), u.get("rel"))
        if key not in seen:
            seen.add(key)
            unique.append(u)

    all_urls = {u.get("url") for u in unique}
    kept = []
    for u in unique:
        url = u.get("url")
        if isinstance(url, str) and url.startswith("http://"):
            if "https://" + url[len("http://") :] in all_urls:
                continue
        kept.append(u)
    return kept


def apply_file_meta(entity: dict[str, Any], file_meta: dict[str, Any]) -> dict[str, Any]:
    """The full edit of one entity: fill missing fields, then clean its URLs."""
    out = fill_missing(entity, file_meta)
    if isinstance(out.get("urls"), list):
        out["urls"] = cleanup_urls(out["urls"])
    return out
