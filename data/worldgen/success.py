"""Scenarios whose requests must end in `success` (docs/statuses.md), one function per kind.

Why it exists: most real requests succeed, but along many roads: a direct PDF,
redirect chains with every Location style, landing pages of each platform,
several captures of one URL where only the best one is the PDF, revisits,
transfer- and content-encoded bodies, and URLs SURT treats as equal.
"""

from __future__ import annotations

import gzip

from . import html
from .archive import sha1_b32
from .world import JOURNAL_HOSTS, MISC_HOSTS, OJS_HOSTS, PDF, REPO_HOSTS, World

# ============================================================================
# success scenarios


def direct_pdf(w: World, n: int) -> None:
    for _ in range(n):
        url = w.pdf_url()
        body = w.new_pdf()
        ts = w.ts()
        w.pdf_capture(url, body, ts)
        w.request(url, "success", "direct PDF capture", pdf=body, fetched=body, ts=ts)


def redirect_chains(w: World, n: int) -> None:
    """base -> 1-3 redirects -> PDF; the last Location absolute, root-, path- or scheme-relative."""
    r = w.rng
    styles = ["absolute", "root-relative", "path-relative", "scheme-relative", "cross-host"]
    for i in range(n):
        style = styles[i % len(styles)]
        body = w.new_pdf()
        final = w.pdf_url()
        scheme, _, host = final.split("/")[:3]
        final_dir = final.split("?")[0].rsplit("/", 1)[0]
        chain = []
        for k in range(r.randint(1, 3)):
            if style == "cross-host" and k == 0:
                chain.append(w.fresh(lambda: f"http://{r.choice(REPO_HOSTS)}/handle/{r.randint(1000, 99999)}/{r.randint(1, 9999)}"))
            else:
                chain.append(w.fresh(lambda k=k: f"{scheme}//{host}/go/{r.randint(10000, 99999)}/{k}"))  # noqa: B023 (called at once)
        if style == "path-relative":
            chain[-1] = w.fresh(lambda: f"{final_dir}/fetch-{r.randint(10000, 99999)}")  # noqa: B023 (called at once)
        ts = w.ts()
        urls = chain + [final]
        for k, (src, dst) in enumerate(zip(urls, urls[1:], strict=False)):
            loc = dst
            if k == len(chain) - 1:
                if style == "root-relative":
                    loc = "/" + dst.split("/", 3)[3]
                elif style == "path-relative":
                    loc = dst[len(final_dir) + 1:]
                elif style == "scheme-relative":
                    loc = "//" + dst.split("//", 1)[1]
            w.redirect(src, loc, w.later(ts, k), status=r.choice([301, 302, 302, 303, 307, 308]))
        w.pdf_capture(final, body, w.later(ts, len(chain)))
        w.request(urls[0], "success", f"{len(chain)} redirect(s), last Location {style}, to a PDF",
                  pdf=body, fetched=body, ts=ts)


def landing_pages(w: World) -> None:
    """Landing pages of every kind the link extractor must handle, each leading to a PDF."""
    r = w.rng
    kinds = (["citation-absolute"] * 36 + ["citation-relative"] * 14 + ["bepress"] * 10
             + ["ojs"] * 8 + ["dspace"] * 8 + ["xhtml"] * 2 + ["gzip-encoded"] * 4)
    for kind in kinds:
        body = w.new_pdf()
        ts = w.ts()
        t2 = w.later(ts, r.randint(2, 90))
        if kind in ("citation-absolute", "xhtml", "gzip-encoded"):
            page = w.landing_url()
            pdf = w.pdf_url()
            w.landing(page, pdf, ts, xhtml=kind == "xhtml", gzip_encoded=kind == "gzip-encoded")
            why = {"citation-absolute": "landing page with an absolute citation_pdf_url",
                   "xhtml": "XHTML landing page with citation_pdf_url",
                   "gzip-encoded": "landing page stored with Content-Encoding: gzip"}[kind]
        elif kind == "citation-relative":
            host = r.choice(JOURNAL_HOSTS)
            n = r.randint(100, 99999)
            page = w.fresh(lambda: f"https://{host}/content/{r.randint(1, 60)}/{r.randint(1, 12)}/{n}")  # noqa: B023 (called at once)
            rel = page.split(host, 1)[1] + ".full.pdf"
            pdf = w.claim(f"https://{host}{rel}")
            w.landing(page, rel, ts)
            why = "landing page with a root-relative citation_pdf_url"
        elif kind == "bepress":
            host = "digitalcommons.prairie-state.edu"
            ctx = r.choice(["facpub", "etd", "theses", "econ_wp"])
            art = r.randint(1000, 9999)
            page = w.fresh(lambda: f"https://{host}/{ctx}/{art}/")  # noqa: B023 (called at once)
            pdf = w.claim(f"https://{host}/cgi/viewcontent.cgi?article={art}&context={ctx}")
            w.page(page, html.bepress(w.title(), w.authors(), "Prairie State University", ts[:4],
                                      pdf, w.abstract()), ts)
            why = "Digital Commons page with bepress_citation_pdf_url"
        elif kind == "ojs":
            host = r.choice(OJS_HOSTS)
            j = r.choice(["jtm", "jiph", "agri", "jpe"])
            art = r.randint(100, 9999)
            gid = r.randint(1000, 9999)
            page = w.fresh(lambda: f"https://{host}/index.php/{j}/article/view/{art}")  # noqa: B023 (called at once)
            pdf = w.claim(f"https://{host}/index.php/{j}/article/download/{art}/{gid}")
            cite = f"https://{host}/index.php/{j}/citationstylelanguage/download/ris?submissionId={art}&publicationId={art + 7}"
            w.page(page, html.ojs(w.title(), w.authors(), "Jurnal Ilmu Terapan", pdf, cite,
                                  w.abstract()), ts)
            why = "OJS article page without meta tags: PDF galley link (/article/download/)"
        else:  # dspace
            host = r.choice(["repository.tech-institute.edu", "dspace.univ-andina.edu.pe"])
            handle = f"123456789/{r.randint(100, 99999)}"
            fname = w.slug() + ".pdf"
            page = w.fresh(lambda: f"https://{host}/handle/{handle}")  # noqa: B023 (called at once)
            href = f"/bitstream/handle/{handle}/{fname}?sequence=1&isAllowed=y"
            pdf = w.claim(f"https://{host}{href}")
            w.page(page, html.dspace(w.title(), w.authors(), handle, href, fname, w.abstract()), ts)
            why = "DSpace item page without meta tags: relative /bitstream/ link"
        w.pdf_capture(pdf, body, t2)
        w.request(page, "success", why, pdf=body, fetched=body, ts=ts)


def doi_resolver_chains(w: World, n: int) -> None:
    """doi.org-style base URL -> 302 to a landing page -> PDF (sometimes itself redirected)."""
    r = w.rng
    for i in range(n):
        body = w.new_pdf()
        ts = w.ts()
        doi = w.claim(f"https://doi.org/{w.doi()}")
        page = w.landing_url()
        pdf = w.pdf_url()
        w.redirect(doi, page, ts, status=r.choice([302, 301]))
        if i % 3 == 0:
            # the PDF link itself redirects (a CDN hand-off): same hop, not a new one
            link = w.fresh(lambda: f"https://{page.split('/')[2]}/doi/pdf/{w.doi()}")  # noqa: B023 (called at once)
            w.landing(page, link, w.later(ts, 1))
            w.redirect(link, pdf, w.later(ts, 30), status=302)
            why = "doi.org redirect -> landing page -> redirected PDF link"
        else:
            w.landing(page, pdf, w.later(ts, 1))
            why = "doi.org redirect -> landing page -> PDF"
        w.pdf_capture(pdf, body, w.later(ts, 31))
        w.request(doi, "success", why, pdf=body, fetched=body, ts=ts)


def sha1_mismatch(w: World, n: int) -> None:
    """The archive serves a PDF, but not the one the catalog describes: merge drops it."""
    for _ in range(n):
        url = w.pdf_url()
        body = w.new_pdf()
        w.pdf_capture(url, body, w.ts())
        w.request(url, "success", "PDF fetched, but its sha1 differs from the entity's (merge drops it)",
                  fetched=body)


def best_capture(w: World) -> None:
    """URLs with several captures where only the best one leads to the PDF."""
    r = w.rng
    cases = (["newer-5xx"] * 4 + ["newer-404"] * 4 + ["newer-revisit"] * 5 + ["newer-html"] * 4
             + ["newer-redirect"] * 3 + ["split-index"] * 3)
    for case in cases:
        url = w.pdf_url()
        body = w.new_pdf()
        t1 = w.ts(2013, 2018)
        t2 = w.later(t1, r.randint(86400 * 40, 86400 * 900))
        old_index = "cdx" if case == "split-index" else None
        # a plain application/pdf Content-Type: the "mimetype == wanted" rank must favour it
        w.pdf_capture(url, body, t1, ctype="application/pdf", index=old_index)
        if case in ("newer-5xx", "split-index"):
            w.page(url, b"<html><body><h1>Service Unavailable</h1></body></html>\n", t2,
                   status=r.choice([500, 502, 503]), index="cdxj")
            why = "200 PDF capture beside a newer 5xx capture" + (
                " (rows in two index files)" if case == "split-index" else "")
        elif case == "newer-404":
            w.page(url, html.soft_not_found("site"), t2, status=404)
            why = "200 PDF capture beside a newer 404 capture"
        elif case == "newer-revisit":
            w.archive.revisit(url, t2, (url, t1), sha1_b32(body), PDF, index=w.index())
            why = "200 PDF capture beside a newer revisit of it"
        elif case == "newer-html":
            dead = w.fresh(lambda: url.rsplit("/", 1)[0] + f"/fulltext-{r.randint(1, 99999)}.pdf")  # noqa: B023 (called at once)
            w.landing(url, dead, t2)
            why = "200 PDF capture beside a newer 200 text/html capture (PDF mimetype preferred)"
        else:
            dead = w.fresh(lambda: f"https://{url.split('/')[2]}/login?return={r.randint(1, 99999)}")  # noqa: B023 (called at once)
            w.redirect(url, dead, t2)
            why = "200 PDF capture beside a newer 302 capture"
        w.request(url, "success", why, pdf=body, fetched=body, ts=t1)


def revisit_only(w: World, n: int) -> None:
    """The requested URL's only capture is a revisit of the same bytes at another URL."""
    r = w.rng
    for _ in range(n):
        original = w.pdf_url()
        body = w.new_pdf()
        t1 = w.ts(2013, 2017)
        w.pdf_capture(original, body, t1)
        mirror = w.fresh(lambda: f"https://{r.choice(MISC_HOSTS[2:5])}/mirror/{r.randint(1000, 99999)}/{original.rsplit('/', 1)[1] or 'file'}")  # noqa: B023 (called at once)
        t2 = w.later(t1, r.randint(86400, 86400 * 700))
        w.archive.revisit(mirror, t2, (original, t1), sha1_b32(body), PDF, index=w.index())
        w.request(mirror, "success", "only capture is a revisit resolving to an earlier capture of another URL",
                  pdf=body, fetched=body, ts=t2)


def encodings(w: World) -> None:
    """A PDF stored gzip-compressed without a Content-Encoding header, and two with one."""
    body = w.new_pdf()
    url = w.pdf_url()
    stored = gzip.compress(body, mtime=0)
    w.archive.response(url, w.ts(), 200, PDF, stored, index="cdxj")
    w.request(url, "success", "PDF stored gzip-compressed, Content-Type application/pdf and no "
              "Content-Encoding (transfer-encoded: gunzip and hash again)", pdf=body, fetched=body)
    for _ in range(2):
        body = w.new_pdf()
        url = w.pdf_url()
        stored = gzip.compress(body, mtime=0)
        w.archive.response(url, w.ts(), 200, PDF + [("Content-Encoding", "gzip")], stored,
                           index="cdxj")
        w.request(url, "success", "PDF stored with Content-Encoding: gzip (the archive decodes it)",
                  pdf=body, fetched=body)


def surt_equal_urls(w: World) -> None:
    """Base URLs that differ from their capture's URL only in ways SURT ignores."""
    r = w.rng
    for variant in ("https", "www", "fragment", "query-order"):
        body = w.new_pdf()
        host = r.choice(JOURNAL_HOSTS[1:4])
        path = f"/files/{r.randint(1000, 99999)}/{w.slug()}.pdf"
        if variant == "https":
            stored, base = f"https://{host}{path}", f"http://{host}{path}"
            why = "captured under the https twin of the http base URL (same SURT key)"
        elif variant == "www":
            bare = host.removeprefix("www.")
            stored, base = f"http://www.{bare}{path}", f"http://{bare}{path}"
            why = "captured under the www. form of the base URL (same SURT key)"
        elif variant == "fragment":
            stored, base = f"https://{host}{path}", f"https://{host}{path}#page=1"
            why = "base URL carries a #fragment; the capture has none (same SURT key)"
        else:
            stored = f"https://{host}/getfile?type=pdf&id={r.randint(1000, 99999)}"
            a, b = stored.split("?")[1].split("&")
            base = f"{stored.split('?')[0]}?{b}&{a}"
            why = "base URL query arguments in another order than the capture's (same SURT key)"
        w.claim(stored)
        w.pdf_capture(stored, body, w.ts())
        w.request(base, "success", why, pdf=body, fetched=body)


