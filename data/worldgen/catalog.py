"""Catalog-side building blocks: idents, revisions, hashes and URL lists of file entities.

Why it exists: the export must look like a real fatcat file export (docs/data.md)
with the untidiness the importer and the request builder must cope with:
wayback URLs in front of the usable one, legacy `social` rels, duplicate
url/rel pairs, http/https twins, and fields that are missing or empty.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid

WAYBACK_PREFIX = "https://web.archive.org/web/"


def ident(rng: random.Random) -> str:
    """A fatcat ident: 26 chars of lower-case base32 (a UUID's 128 bits)."""
    raw = rng.getrandbits(128).to_bytes(16, "big")
    return base64.b32encode(raw).decode("ascii").lower().rstrip("=")[:26]


def revision(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def random_hex(rng: random.Random, nbytes: int) -> str:
    return rng.getrandbits(8 * nbytes).to_bytes(nbytes, "big").hex()


def hashes(body: bytes) -> dict:
    return {
        "sha1": hashlib.sha1(body).hexdigest(),
        "sha256": hashlib.sha256(body).hexdigest(),
        "md5": hashlib.md5(body).hexdigest(),
        "size": len(body),
    }


def wayback_url(ts: str, url: str) -> str:
    return f"{WAYBACK_PREFIX}{ts}/{url}"


def url_list(rng: random.Random, base_url: str, ts: str, quirks: set[str]) -> list[dict]:
    """The `urls` array of an entity whose first usable URL is `base_url`.

    `quirks` picks the untidiness: wayback-first, wayback-after, social,
    dup-pair, https-twin, repository-second.
    """
    urls: list[dict] = []
    if "wayback-first" in quirks:
        urls.append({"url": wayback_url(ts, base_url), "rel": "webarchive"})
    rel = "social" if "social" in quirks else rng.choice(
        ["web", "web", "web", "web", "publisher", "repository"])
    urls.append({"url": base_url, "rel": rel})
    if "dup-pair" in quirks:
        urls.append({"url": base_url, "rel": rel})
    if "https-twin" in quirks and base_url.startswith("http://"):
        urls.append({"url": "https://" + base_url[len("http://"):], "rel": "web"})
    if "repository-second" in quirks:
        urls.append({"url": f"https://europepmc.org/articles/pmc{rng.randint(1000000, 9999999)}?pdf=render",
                     "rel": "repository"})
    if "wayback-after" in quirks:
        urls.append({"url": wayback_url(ts, base_url), "rel": "webarchive"})
    return urls


def pick_quirks(rng: random.Random) -> set[str]:
    q: set[str] = set()
    r = rng.random()
    if r < 0.12:
        q.add("wayback-first")
    elif r < 0.40:
        q.add("wayback-after")
    if rng.random() < 0.04:
        q.add("social")
    if rng.random() < 0.04:
        q.add("dup-pair")
    if rng.random() < 0.05:
        q.add("https-twin")
    if rng.random() < 0.06:
        q.add("repository-second")
    return q
