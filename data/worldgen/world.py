"""The world under construction: its rng, URL space, entities, captures and expectations.

Why it exists: every scenario (success.py, failure.py, population.py) adds
file entities (the export), the captures their URLs lead to (the archive)
and, for each entity that becomes an ingest request, the status that request
must end with. `World` holds that shared state and the small generators the
scenarios use: unique URLs (unique by SURT key, so no two scenarios ever
share a capture by accident), timestamps, PDFs, landing pages, redirects.
The statuses are decided by construction, following docs/statuses.md: hop limit 6
(redirects inside a hop are not hops), at most 25 redirects, best-capture
ordering, blocklist and cookie checks on every hop and terminal URL.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from collections.abc import Callable

from . import catalog as cat
from . import html
from .archive import ArchiveBuilder
from .pdf import VOCABULARY, make_pdf

MISSING_WARC = "WORLD-CRAWL-2018-00009.warc.gz"
BULK_WARC = "WORLD-BULK-2021-00004.warc.gz"
# the record with damaged bytes gets a file of its own: a sequential reader of that file
# stops at it, and every other WARC stays readable from end to end
DAMAGED_WARC = "WORLD-CRAWL-2019-00005.warc.gz"
BODY_TOO_LARGE = 129 * 1024 * 1024
PDF = [("Content-Type", "application/pdf")]

FIRST_NAMES = ("Ana Wei Lukas Priya Kenji Fatima Olga Mateo Chen Amara Jonas Leila Tomasz Ines "
               "Rahul Sofia Daniel Yuki Nadia Pablo Hana Omar Elena Kwame Marta").split()
LAST_NAMES = ("Silva Zhang Becker Sharma Tanaka Haddad Ivanova Garcia Liu Okafor Berg Karimi "
              "Nowak Costa Gupta Rossi Meyer Sato Petrova Lopez Kim Nasser Popescu Mensah Ruiz").split()

JOURNAL_HOSTS = [
    "www.jmedsci-press.com", "journals.northfield-press.co.uk", "www.scholarly-letters.org",
    "pubs.chemsoc-online.org", "www.geoscience-letters.net", "jbiol.sciencehub.org",
    "www.econ-review-journal.org", "www.materials-frontiers.com", "annals.hydrology-society.org",
]
UNIV_HOSTS = [
    "www.cs.univ-lyon-est.fr", "faculty.midwest-state.edu", "people.math.kth-north.se",
    "www2.informatik.uni-hafenstadt.de", "staff.science.uva-oost.nl", "www.eng.pacific-tech.ac.jp",
]
REPO_HOSTS = [
    "eprints.lakeside.ac.uk", "repository.tech-institute.edu", "dspace.univ-andina.edu.pe",
    "hal.archives-recherche.fr", "digitalcommons.prairie-state.edu", "research.hochschule-sued.de",
]
OJS_HOSTS = [
    "ojs.unimar.ac.id", "revistas.univalle-sur.edu.co", "journal.ipb-bogor.ac.id",
    "periodicos.ufsul.br", "www.jurnal-teknik.or.id",
]
MISC_HOSTS = [
    "papers.scholarhub-archive.org", "citeseer.ist.example-psu.edu", "www.researchgate-mirror.net",
    "cdn.openaccess-files.com", "files.eric-ed.example.gov", "WWW.Historical-Society.ORG",
]


class World:
    """Accumulates entities, captures and expectations while scenarios run."""

    def __init__(self, rng: random.Random, archive: ArchiveBuilder, surt: Callable[[str], str]):
        self.rng = rng
        self.archive = archive
        self.surt = surt
        self.entities: list[dict] = []
        self.expected: dict[str, dict] = {}  # ident -> expectation
        self.pdfs: dict[str, dict] = {}  # sha1 -> {"pages", "size"}
        self.damaged: list[dict] = []
        self.used_keys: set[str] = set()
        self.used_idents: set[str] = set()
        self._n = 0

    # -- small generators -----------------------------------------------------

    def ident(self) -> str:
        while True:
            i = cat.ident(self.rng)
            if i not in self.used_idents:
                self.used_idents.add(i)
                return i

    def ts(self, lo: int = 2013, hi: int = 2022) -> str:
        start = dt.datetime(lo, 1, 1)
        span = int((dt.datetime(hi, 12, 28) - start).total_seconds())
        return (start + dt.timedelta(seconds=self.rng.randrange(span))).strftime("%Y%m%d%H%M%S")

    @staticmethod
    def later(ts: str, seconds: int) -> str:
        d = dt.datetime.strptime(ts, "%Y%m%d%H%M%S") + dt.timedelta(seconds=seconds)
        return d.strftime("%Y%m%d%H%M%S")

    def words(self, n: int) -> str:
        size = len(VOCABULARY)
        return " ".join(VOCABULARY[int(size * self.rng.random() ** 1.6)] for _ in range(n))

    def title(self) -> str:
        t = self.words(self.rng.randint(5, 11))
        return t[0].upper() + t[1:]

    def authors(self) -> list[str]:
        return [f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
                for _ in range(self.rng.randint(1, 4))]

    def abstract(self) -> str:
        return ". ".join(self.words(self.rng.randint(10, 20)).capitalize() for _ in range(3)) + "."

    def slug(self) -> str:
        return "-".join(self.words(self.rng.randint(2, 4)).split())[:48]

    def doi(self, prefix: str | None = None) -> str:
        prefix = prefix or f"10.{self.rng.randint(1000, 9999)}"
        return f"{prefix}/{self.rng.choice(['j', 'art', 'jmr', 's'])}.{self.rng.randint(2005, 2021)}.{self.rng.randint(100, 99999)}"

    def claim(self, url: str) -> str:
        """Reserve a URL; its SURT key must be new (so scenarios never share a capture)."""
        key = self.surt(url)
        if key in self.used_keys:
            raise KeyError(url)
        self.used_keys.add(key)
        return url

    def fresh(self, make: Callable[[], str]) -> str:
        for _ in range(100):
            try:
                return self.claim(make())
            except KeyError:
                continue
        raise RuntimeError("could not make a unique URL")

    def pdf_url(self) -> str:
        r = self.rng
        style = r.choices(range(10), weights=[22, 14, 14, 8, 10, 8, 8, 4, 6, 6])[0]

        def make() -> str:
            n = r.randint(100, 99999)
            if style == 0:
                return f"https://{r.choice(JOURNAL_HOSTS)}/content/{r.randint(1, 60)}/{r.randint(1, 12)}/{n}.full.pdf"
            if style == 1:
                return f"http://{r.choice(UNIV_HOSTS)}/~{r.choice(LAST_NAMES).lower()}/papers/{self.slug()}.pdf"
            if style == 2:
                return f"https://{r.choice(REPO_HOSTS)}/{n}/1/{self.slug()}.pdf"
            if style == 3:
                return (f"http://{r.choice(MISC_HOSTS[:2])}/viewdoc/download?doi=10.1.1.{n}.{r.randint(1000, 9999)}"
                        "&rep=rep1&type=pdf")
            if style == 4:
                return f"https://{r.choice(OJS_HOSTS)}/index.php/{r.choice(['jtm', 'jiph', 'agri', 'jpe'])}/article/download/{n}/{r.randint(1000, 99999)}"
            if style == 5:
                return f"http://{r.choice(MISC_HOSTS[2:5])}/pdfs/{r.randint(2001, 2020)}/{self.slug()}.pdf"
            if style == 6:
                return (f"https://{r.choice(OJS_HOSTS)}/files/journals/{r.randint(1, 9)}/articles/{n}/submission/"
                        f"{n}-{r.randint(100, 999)}-1-PB.pdf")
            if style == 7:
                return f"http://{r.choice(REPO_HOSTS)}:8080/jspui/bitstream/123456789/{n}/1/{self.slug()}.pdf"
            if style == 8:
                # query arguments out of SURT order (SURT sorts them)
                return f"https://{r.choice(MISC_HOSTS[3:5])}/download.php?id={n}&file={self.slug()}.pdf"
            return f"http://{MISC_HOSTS[5]}/Papers/{self.slug().title()}.PDF"

        return self.fresh(make)

    def new_pdf(self) -> bytes:
        r = self.rng
        if r.random() < 0.85:
            target = int(1100 * (6.0 ** r.random()))  # 1.1-6.6 KB, log-uniform
        else:
            target = int(6000 * ((37000 / 6000) ** r.random()))  # the tail up to ~37 KB
        pages = max(1, min(12, int(target / 2600) + r.randint(0, 2)))
        body = make_pdf(r, self.title(), pages, target)
        self.pdfs[cat.hashes(body)["sha1"]] = {"pages": pages, "size": len(body)}
        return body

    # -- captures ---------------------------------------------------------------

    def index(self) -> str:
        return "cdx" if self.rng.random() < 0.1 else "cdxj"

    def pdf_capture(self, url: str, body: bytes, ts: str, *, ctype: str | None = None,
                    index: str | None = None, extra: list | None = None, damage: str | None = None):
        if ctype is None:
            ctype = self.rng.choices(
                ["application/pdf", "application/octet-stream", "application/pdf; charset=binary",
                 "application/x-pdf"], weights=[85, 7, 4, 4])[0]
        headers = [("Content-Type", ctype)] + (extra or [])
        if self.rng.random() < 0.3:
            headers.append(("Content-Disposition", f'inline; filename="{url.rstrip("/").split("/")[-1][:40]}"'))
        return self.archive.response(url, ts, 200, headers, body, index=index or self.index(),
                                     damage=damage, warc=DAMAGED_WARC if damage == "bytes" else None)

    def redirect(self, url: str, location: str | None, ts: str, status: int = 302,
                 index: str | None = None):
        headers = [("Content-Type", "text/html; charset=iso-8859-1")]
        if location is not None:
            headers.insert(0, ("Location", location))
        body = html.redirect_stub(location) if location else b""
        return self.archive.response(url, ts, status, headers, body, index=index or self.index())

    def page(self, url: str, body: bytes, ts: str, *, status: int = 200, gzip_encoded: bool = False,
             ctype: str = "text/html; charset=utf-8", index: str | None = None):
        headers = [("Content-Type", ctype)]
        if gzip_encoded:
            body = gzip.compress(body, mtime=0)
            headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        return self.archive.response(url, ts, status, headers, body, index=index or self.index())

    def landing(self, url: str, pdf_url: str, ts: str, *, meta: str = "citation_pdf_url",
                xhtml: bool = False, gzip_encoded: bool = False) -> None:
        body = html.highwire(self.title(), self.authors(), self.rng.choice(
            ["Journal of Applied Studies", "Letters in Natural Science", "Review of Methods"]),
            self.doi(), ts[:4], pdf_url, self.abstract(), meta_name=meta, xhtml=xhtml)
        ctype = "application/xhtml+xml; charset=utf-8" if xhtml else "text/html; charset=utf-8"
        self.page(url, body, ts, gzip_encoded=gzip_encoded, ctype=ctype)

    def landing_url(self) -> str:
        r = self.rng

        def make() -> str:
            host = r.choice(JOURNAL_HOSTS)
            return r.choice([
                f"https://{host}/content/{r.randint(1, 60)}/{r.randint(1, 12)}/{r.randint(100, 99999)}",
                f"https://{host}/doi/abs/{self.doi()}",
                f"https://{host}/article/view/{r.randint(100, 99999)}",
                f"https://{host}/articles/{self.slug()}",
            ])

        return self.fresh(make)

    # -- entities and expectations ------------------------------------------------

    def entity(self, *, ident: str | None = None, sha1: str | None, base_url: str | None,
               pdf: bytes | None = None, urls: list[dict] | None = None,
               ts: str | None = None, complete: bool = False, **fields) -> dict:
        r = self.rng
        e: dict = {"ident": ident or self.ident(), "revision": cat.revision(r),
                   "release_ids": [self.ident()], "state": "active"}
        if urls is None:
            urls = cat.url_list(r, base_url, ts or self.ts(), cat.pick_quirks(r)) if base_url else []
        e["urls"] = urls
        if sha1 is not None:
            e["sha1"] = sha1
        if pdf is not None:
            h = cat.hashes(pdf)
            if complete or r.random() < 0.8:
                e["md5"] = h["md5"]
            if complete or r.random() < 0.8:
                e["size"] = h["size"]
            if complete:
                e["sha256"] = h["sha256"]
        elif complete:
            e.update(md5=cat.random_hex(r, 16), sha256=cat.random_hex(r, 32),
                     size=r.randint(20_000, 9_000_000))
        else:
            if r.random() < 0.5:
                e["md5"] = cat.random_hex(r, 16)
            if r.random() < 0.5:
                e["size"] = r.randint(20_000, 9_000_000)
        if complete or r.random() < 0.85:
            e["mimetype"] = "application/pdf"
        if not complete:
            if r.random() < 0.1:
                e["sha256"] = ""
            if r.random() < 0.04:
                e.pop("state")
        if r.random() < 0.05:
            e["extra"] = {"longtail_oa": True} if r.random() < 0.5 else {"shadows": {"scimag_id": str(r.randint(10**6, 10**7))}}
        e.update(fields)
        e = {k: v for k, v in e.items() if v is not None}
        self.entities.append(e)
        return e

    def request(self, base_url: str, status: str, why: str, *, pdf: bytes | None = None,
                sha1: str | None = None, fetched: bytes | None = None, ident: str | None = None,
                ts: str | None = None, urls: list[dict] | None = None) -> dict:
        """An entity lacking sha256 whose request must end with `status`."""
        if sha1 is None:
            sha1 = cat.hashes(pdf)["sha1"] if pdf is not None else cat.random_hex(self.rng, 20)
        e = self.entity(ident=ident, sha1=sha1, base_url=base_url, pdf=pdf, ts=ts, urls=urls)
        exp = {"ident": e["ident"], "base_url": base_url, "sha1": sha1, "status": status, "why": why}
        if fetched is not None:
            exp["fetched_sha1"] = cat.hashes(fetched)["sha1"]
        self.expected[e["ident"]] = exp
        return e

    def mark_damaged(self, url: str, ts: str, index: str, kind: str, why: str, status: str,
                     warc: str, over_http: str | None = None) -> None:
        """Name a deliberately inconsistent capture; `over_http` is the status a request for it
        gets through pywb when that differs (pywb cannot replay it: docs/archive.md)."""
        self.damaged.append({"url": url, "timestamp": ts, "index": index, "kind": kind,
                             "why": why, "status": status, "filename": warc,
                             "status_over_http": over_http or status})

    def over_http(self, entity: dict, status: str) -> None:
        """Record the status this request gets through pywb, where it differs from the local one."""
        self.expected[entity["ident"]]["status_over_http"] = status


