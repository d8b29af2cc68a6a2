"""What the import does to one file entity: fill missing fields, clean its URLs.

Why a module of its own: these rules are the part of docs/delivery.md a reviewer checks
line by line (never overwrite; an empty string or a size of 0 is missing; fatcat's URL
cleanups in a fixed order), and they are pure functions, tested without any
catalog.
"""

from __future__ import annotations

from typing import Any

from pipeline.entity_urls import url_list_problem

# catalog field -> file_meta field that fills it
FILL_FIELDS = {"md5": "md5hex", "sha256": "sha256hex", "size": "size_bytes", "mimetype": "mimetype"}


def is_missing(value: Any) -> bool:
    """Absent, null, an empty string or a size of 0: all count as missing (docs/delivery.md).

    Why 0 too: fatcat's FileMetaImporter tests each field for truthiness, both to
    call an entity complete and to fill it (`existing.size = existing.size or
    fe.size`), so it fills a recorded size of 0; an import that kept it would
    leave those entities unlike the ones fatcat's own tool produces.
    """
    return value is None or value == "" or (value == 0 and not isinstance(value, bool))


def entity_problem(entity: dict[str, Any]) -> str | None:
    """Why the import cannot edit this catalog entity (no string ident, a malformed URL
    list), or None. The export filter and the catalog load reject such entities, so only
    an API catalog can hand one over: the import skips it instead of failing the run."""
    if not isinstance(entity.get("ident"), str):
        return "no string ident"
    return url_list_problem(entity.get("urls"))


def is_complete(entity: dict[str, Any]) -> bool:
    """Has md5, sha256, size and mimetype: nothing for this import to do."""
    return not any(is_missing(entity.get(field)) for field in FILL_FIELDS)


def fill_missing(entity: dict[str, Any], file_meta: dict[str, Any]) -> dict[str, Any]:
    """A copy of `entity` with only its missing fields taken from `file_meta`.

    A shallow copy: nested values (urls, extra, release_ids) are shared with
    `entity`, and nothing here mutates them (`cleanup_urls` builds new lists
    and dicts, or returns a list it leaves alone as it is). `copy.deepcopy`
    was a quarter of the import's CPU.
    """
    out = dict(entity)
    for field, meta_field in FILL_FIELDS.items():
        if is_missing(out.get(field)):
            out[field] = file_meta[meta_field]
    return out


ARCHIVE_DOWNLOAD = "://archive.org/download/"
WAYBACK = "://web.archive.org/web/"
SHORT_2017 = "://web.archive.org/web/2017/"


def cleanup_urls(urls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The URL cleanups of docs/delivery.md as fatcat's file importers make them, in order.

    1. rels: `social` (legacy) becomes `academicsocial`; `repository` on an
       `archive.org/download/` URL becomes `archive`;
    2. exact duplicate (url, rel) pairs are dropped, the first kept;
    3. near-duplicates are dropped, every entry with that URL whatever its rel:
       an `http://` URL whose `https://` twin is present; a URL with the
       default port (`:80/`) whose twin without it is present; a
       `web.archive.org/web/2017/` URL (a year, not a capture time) when a
       wayback URL of the same target with a 10+ digit timestamp is present.

    Why all of fatcat's rules: an edit made here should be the edit fatcat's
    own importers would make, not one they would redo. A list none of them
    can change (`_untouched`: most entities) comes back as it is.
    """
    if _untouched(urls):
        return urls
    unique: list[dict[str, Any]] = []
    seen: set[tuple[Any, Any]] = set()
    for u in urls:
        u = _renamed(u)
        key = (u.get("url"), u.get("rel"))
        if key not in seen:
            seen.add(key)
            unique.append(u)

    all_urls = {u.get("url") for u in unique}
    wayback = [url for url in all_urls if isinstance(url, str) and WAYBACK in url]
    redundant = {url for url in all_urls if _redundant(url, all_urls, wayback)}
    return [u for u in unique if u.get("url") not in redundant]


def _untouched(urls: list[dict[str, Any]]) -> bool:
    """True when no cleanup can change `urls` (checked in one pass, no copies): no rel to
    rename, no (url, rel) pair twice, and, with more than one URL, none that can be a
    near-duplicate (an `http://` URL, a `:80/` port, a `/web/2017/` capture). A single
    URL is never a near-duplicate of itself. Why: every edit cleans its URLs, and
    building the sets of the full rules for a list they leave alone was most of it."""
    several = len(urls) > 1
    seen: set[tuple[Any, Any]] = set()
    for u in urls:
        rel, url = u.get("rel"), u.get("url")
        if rel == "social" or rel == "repository":
            return False
        if several:
            if (url, rel) in seen:
                return False
            seen.add((url, rel))
            if isinstance(url, str) and (url.startswith("http://") or ":80/" in url
                                         or SHORT_2017 in url):
                return False
    return True


def _renamed(u: dict[str, Any]) -> dict[str, Any]:
    u = dict(u)
    url = u.get("url")
    if u.get("rel") == "repository" and isinstance(url, str) and ARCHIVE_DOWNLOAD in url:
        u["rel"] = "archive"
    if u.get("rel") == "social":
        u["rel"] = "academicsocial"
    return u


def _redundant(url: Any, all_urls: set[Any], wayback: list[str]) -> bool:
    """Is `url` a near-duplicate of another URL of the same entity?"""
    if not isinstance(url, str):
        return False
    if url.startswith("http://") and "https://" + url[len("http://"):] in all_urls:
        return True
    if ":80/" in url and url.replace(":80", "", 1) in all_urls:
        return True  # the first ":80" removed, as fatcat does
    if SHORT_2017 in url:
        target = "/".join(url.split("/")[5:])  # what follows /web/2017/
        if len(target) > 5:
            for other in wayback:
                parts = other.split("/")
                if len(parts) > 4 and len(parts[4]) >= 10 and target in other:
                    return True
    return False


def apply_file_meta(entity: dict[str, Any], file_meta: dict[str, Any]) -> dict[str, Any]:
    """The full edit of one entity: fill missing fields, then clean its URLs."""
    out = fill_missing(entity, file_meta)
    if isinstance(out.get("urls"), list):
        out["urls"] = cleanup_urls(out["urls"])
    return out
