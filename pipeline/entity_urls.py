"""The shape of a file entity's URL list that every step can handle, checked where entities enter.

Why: a `urls` item that is not `{"url": <string>, "rel": <string>}` (a bare
string, a number, null, a list as `url` or `rel`) slipped past the request
step, which only looks for one usable URL, and then broke the import's URL
cleanup (`pipeline.importer.entity.cleanup_urls`) on every rerun. fatcat's
schema requires both keys as strings, and its API refuses an edit without
them. So the export filter and the catalog load reject such an entity once,
as `bad-urls`, and the import skips one it meets in an API catalog.
"""

from __future__ import annotations

from typing import Any

BAD_URLS = "bad-urls"


def _kind(value: Any) -> str:
    return "null" if value is None else f"a JSON {type(value).__name__}"


def url_list_problem(urls: Any) -> str | None:
    """What is wrong with an entity's `urls` (absent or null: no URLs, fine), or None."""
    if urls is None:
        return None
    if type(urls) is list:  # the common case, a well-formed list, decided in one quick pass
        for item in urls:
            if type(item) is not dict or type(item.get("url")) is not str \
                    or type(item.get("rel")) is not str:
                break
        else:
            return None
        for i, item in enumerate(urls):
            if not isinstance(item, dict):
                return f"urls[{i}] is {_kind(item)}, not an object"
            for key in ("url", "rel"):
                if key not in item:
                    return f"urls[{i}] has no {key!r}"
                if not isinstance(item[key], str):
                    return f"urls[{i}].{key} is {_kind(item[key])}, not a string"
    return f"urls is {_kind(urls)}, not a list"
