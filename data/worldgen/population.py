"""The rest of the catalog: duplicate entities, rejected entities, complete entities, bad lines.

Why it exists: the request builder, the uniq step and the importer each have
cases that no single request shows: entities sharing a sha1 (duplicate
requests, and the catalog lookup picking the active entity with the lowest
ident), entities the request builder must reject (each docs/data.md reason),
the bulk of entities that already have sha256 (filtered out up front), and
export lines that are not JSON objects.
"""

from __future__ import annotations

from . import catalog as cat
from .world import World

MALFORMED_LINES = [
    '{"ident": "q3nouwy3nzbh3jqlqqsfmdrjam", "sha1": "0a1b2c3d4e5f", "urls": [{"url": "http://',
    '["file", "aaaaaaaaaaaaaaaaaaaaaaaaaa", "application/pdf"]',
    "file entity export interrupted: connection reset by peer",
    '"just a JSON string"',
    '{"ident": "b4gcidxyrfaprm5ovcsuwvhn7e", "state": "active"}} trailing',
]


def duplicate_groups(w: World) -> None:
    """Entities sharing a sha1: duplicate requests, and the lookup-by-sha1 choices."""
    for _ in range(8):
        url = w.pdf_url()
        body = w.new_pdf()
        ts = w.ts()
        w.pdf_capture(url, body, ts)
        for _ in range(2):
            w.request(url, "success", "duplicate entity: same sha1 and same URL as another request",
                      pdf=body, fetched=body, ts=ts)
    for size in [2] * 6 + [3] * 3:
        body = w.new_pdf()
        for _ in range(size):
            url = w.pdf_url()
            ts = w.ts()
            w.pdf_capture(url, body, ts)
            w.request(url, "success", "duplicate entity: same sha1 as another request, other URL",
                      pdf=body, fetched=body, ts=ts)
    # an active complete entity with the same sha1 and a LOWER ident: the import finds it complete
    _beside_entity(w, 3, "same sha1 as a complete entity with a lower ident",
                   entity_ident="lower", complete=True)
    # the complete duplicate has the HIGHER ident: the import updates the incomplete one
    _beside_entity(w, 2, "same sha1 as a complete entity with a higher ident",
                   entity_ident="higher", complete=True)
    # a wip entity with the same sha1 and a lower ident: lookups skip it (not active)
    _beside_entity(w, 2, "same sha1 as a wip entity with a lower ident",
                   entity_ident="lower", wip=True)


def _beside_entity(w: World, n: int, why: str, *, entity_ident: str, complete: bool = False,
                   wip: bool = False) -> None:
    """`n` requests for a PDF whose sha1 another entity (complete, or wip with a PDF mimetype)
    already has; that entity has the `entity_ident` ("lower" or "higher") of the two idents,
    the request's own entity the other."""
    for _ in range(n):
        low, high = sorted([w.ident(), w.ident()])
        theirs, ours = (low, high) if entity_ident == "lower" else (high, low)
        body, url = w.new_pdf(), w.pdf_url()
        w.pdf_capture(url, body, w.ts())
        fields = {"state": "wip", "mimetype": "application/pdf"} if wip else {}
        w.entity(ident=theirs, sha1=cat.hashes(body)["sha1"], base_url=w.pdf_url(), pdf=body,
                 complete=complete, **fields)
        w.request(url, "success", why, pdf=body, fetched=body, ident=ours)


def rejected(w: World) -> None:
    """Entities lacking sha256 that must not become requests, one group per docs/data.md reason."""
    r = w.rng
    for mt in ["text/html", "application/postscript", "application/x-gzip", "application/msword",
               "application/xml", "image/png", "application/octet-stream", "text/plain",
               "application/zip", "application/vnd.ms-powerpoint", "application/x-tar",
               "application/epub+zip"]:
        w.entity(sha1=cat.random_hex(r, 20), base_url=w.pdf_url(), mimetype=mt)
    # not-pdf beats the later checks
    w.entity(sha1=cat.random_hex(r, 20), base_url=None, mimetype="text/html", state="wip",
             urls=[{"url": cat.wayback_url(w.ts(), w.pdf_url()), "rel": "webarchive"}])
    w.entity(sha1=None, base_url=w.pdf_url(), mimetype="application/postscript")
    for state in ["wip"] * 4 + ["redirect"] * 3:
        extra = {"redirect": w.ident()} if state == "redirect" else {}
        w.entity(sha1=cat.random_hex(r, 20), base_url=w.pdf_url(), state=state, **extra)
    for _ in range(3):
        w.entities.append({"ident": w.ident(), "state": "deleted"})
    # no usable URL: wayback / archive.org only, or none at all
    for _ in range(5):
        ts, orig = w.ts(), w.pdf_url()
        w.entity(sha1=cat.random_hex(r, 20), base_url=None, urls=[
            {"url": cat.wayback_url(ts, orig), "rel": "webarchive"},
            {"url": cat.wayback_url(w.later(ts, 86400 * 30), orig), "rel": "webarchive"}][: r.randint(1, 2)])
    for _ in range(3):
        item = f"{w.slug()}-{r.randint(100, 999)}"
        w.entity(sha1=cat.random_hex(r, 20), base_url=None, urls=[
            {"url": f"https://archive.org/download/{item}/{item}.pdf", "rel": "repository"}])
    w.entity(sha1=cat.random_hex(r, 20), base_url=None, urls=[])
    e = w.entity(sha1=cat.random_hex(r, 20), base_url=None, urls=[])
    e.pop("urls")
    # no sha1: usable URL, but nothing to check the fetched file against
    for _ in range(6):
        w.entity(sha1=None, base_url=w.pdf_url(), md5=cat.random_hex(r, 16))


def complete(w: World, n: int) -> None:
    """Entities that already have sha256: the export filter drops them before anything else."""
    r = w.rng
    for _ in range(n):
        fields: dict = {}
        x = r.random()
        if x < 0.04:
            fields["mimetype"] = r.choice(["text/html", "application/postscript", "application/xml"])
        elif x < 0.06:
            fields["state"] = r.choice(["wip", "redirect"])
        base = w.pdf_url()
        urls = None
        if r.random() < 0.03:
            urls = [{"url": cat.wayback_url(w.ts(), base), "rel": "webarchive"}]
        w.entity(sha1=cat.random_hex(r, 20), base_url=base, urls=urls, complete=True, **fields)
