"""Scenarios whose requests must end in each failure status of docs/statuses.md.

Why it exists: every failure an archive can produce needs a request that
really produces it (and the oracle needs to know which). The rare statuses
get one to five requests each.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib

from . import html
from .archive import ZeroTailBody, sha1_b32
from .world import (
    BODY_TOO_LARGE,
    BULK_WARC,
    JOURNAL_HOSTS,
    MISSING_WARC,
    PDF,
    REPO_HOSTS,
    UNIV_HOSTS,
    World,
)

# ============================================================================
# failure scenarios


def no_capture(w: World, n: int = 14) -> None:
    r = w.rng
    for _ in range(n):
        w.request(w.pdf_url(), "no-capture", "URL never archived")
    # near misses: a capture exists for a URL whose key merely starts like the base URL's
    for _ in range(3):
        stored = w.pdf_url()
        w.pdf_capture(stored, w.new_pdf(), w.ts())
        base = w.claim(stored.rsplit(".", 1)[0] if stored.lower().endswith(".pdf") else stored + "x")
        w.request(base, "no-capture", "only a different URL sharing a key prefix is archived")
    base = w.pdf_url()
    stored = w.claim(base + ("&" if "?" in base else "?") + f"sessionid={r.randint(10**6, 10**7)}")
    w.pdf_capture(stored, w.new_pdf(), w.ts())
    w.request(base, "no-capture", "only the URL with an extra session query argument is archived")
    for _ in range(2):
        base = w.pdf_url()
        target = w.pdf_url()
        w.redirect(base, target, w.ts())
        w.request(base, "no-capture", "redirect target never archived")


def link_loop(w: World) -> None:
    a, b = w.landing_url(), w.landing_url()
    ts = w.ts()
    w.landing(a, b, ts)
    w.landing(b, a, w.later(ts, 5))
    w.request(a, "link-loop", "landing page A links to landing page B whose PDF link is A")
    x, page = w.pdf_url(), w.landing_url()
    ts = w.ts()
    w.redirect(x, page, ts)
    w.landing(page, x, w.later(ts, 1))
    w.request(x, "link-loop", "base URL redirects to a landing page whose citation_pdf_url is the base URL")


def _png() -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + bytes([(x * 7 + y * 3) % 256 for x in range(16)]) for y in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _zip(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(name, date_time=(2016, 5, 4, 12, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, text)
    return buf.getvalue()


def wrong_mimetype(w: World) -> None:
    url = w.fresh(lambda: f"https://{w.rng.choice(REPO_HOSTS)}/{w.rng.randint(100, 9999)}/2/supplementary-data.zip")
    body = _zip("data/measurements.csv", "site,value\n" + "\n".join(f"{i},{i * 3 % 17}" for i in range(200)))
    w.archive.response(url, w.ts(), 200, [("Content-Type", "application/zip")], body)
    w.request(url, "wrong-mimetype", "the capture is a zip archive", fetched=body)
    url = w.fresh(lambda: f"http://{w.rng.choice(UNIV_HOSTS)}/images/fig{w.rng.randint(1, 99)}.png")
    body = _png()
    w.archive.response(url, w.ts(), 200, [("Content-Type", "image/png")], body)
    w.request(url, "wrong-mimetype", "the capture is a PNG image", fetched=body)
    page, data = w.landing_url(), w.fresh(lambda: f"https://{JOURNAL_HOSTS[0]}/suppl/{w.rng.randint(1000, 9999)}/dataset.zip")
    ts = w.ts()
    body = _zip("readme.txt", "Supplementary material.\n" * 20)
    w.landing(page, data, ts)
    w.archive.response(data, w.later(ts, 3), 200, [("Content-Type", "application/zip")], body)
    w.request(page, "wrong-mimetype", "landing page whose citation_pdf_url is a zip archive", fetched=body)


def terminal_bad_status(w: World) -> None:
    r = w.rng
    for status, why in ((404, "only capture is a 404"), (500, "only capture is a 500"),
                        (403, "only capture is a 403")):
        url = w.pdf_url()
        body = html.soft_not_found("site") if status != 500 else b"<html><body><h1>Internal Server Error</h1></body></html>\n"
        w.page(url, body, w.ts(), status=status)
        w.request(url, "terminal-bad-status", why)
    url = w.pdf_url()
    t1 = w.ts(2013, 2017)
    w.page(url, html.soft_not_found("site"), t1, status=404)
    w.page(url, b"<html><body><h1>Bad Gateway</h1></body></html>\n", w.later(t1, 86400 * r.randint(10, 500)),
           status=502)
    w.request(url, "terminal-bad-status", "a 404 capture and a newer 502 capture, nothing better")
    base, target = w.pdf_url(), w.pdf_url()
    ts = w.ts()
    w.redirect(base, target, ts, status=301)
    w.page(target, html.soft_not_found("site"), w.later(ts, 1), status=404)
    w.request(base, "terminal-bad-status", "redirect to a 404 capture")


def redirect_loops(w: World) -> None:
    r = w.rng
    a, b = w.pdf_url(), w.pdf_url()
    ts = w.ts()
    w.redirect(a, b, ts)
    w.redirect(b, a, w.later(ts, 1), status=301)
    w.request(a, "redirect-loop", "A -> B -> A (absolute Locations)")
    host = r.choice(JOURNAL_HOSTS)
    n = r.randint(1000, 99999)
    a = w.claim(f"https://{host}/article/{n}/fulltext.pdf")
    b = w.claim(f"https://{host}/session/check?next=/article/{n}/fulltext.pdf")
    ts = w.ts()
    w.redirect(a, f"/session/check?next=/article/{n}/fulltext.pdf", ts)
    w.redirect(b, f"/article/{n}/fulltext.pdf", w.later(ts, 1))
    w.request(a, "redirect-loop", "A -> B -> A (root-relative Locations)")
    a, b, c = w.pdf_url(), w.pdf_url(), w.pdf_url()
    ts = w.ts()
    w.redirect(a, b, ts)
    w.redirect(b, c, w.later(ts, 1))
    w.redirect(c, a, w.later(ts, 2))
    w.request(a, "redirect-loop", "A -> B -> C -> A")


def null_body(w: World) -> None:
    url = w.pdf_url()
    w.archive.response(url, w.ts(), 200, PDF, b"")
    w.request(url, "null-body", "200 PDF capture with an empty body")
    base, target = w.pdf_url(), w.pdf_url()
    ts = w.ts()
    w.redirect(base, target, ts)
    w.archive.response(target, w.later(ts, 1), 200, [("Content-Type", "application/octet-stream")], b"")
    w.request(base, "null-body", "redirect to a 200 capture with an empty body")


def no_pdf_link(w: World) -> None:
    ts = w.ts()
    url = w.landing_url()
    w.page(url, html.paywall_abstract(w.title(), "Journal of Applied Studies", w.doi(), w.abstract()), ts)
    w.request(url, "no-pdf-link", "subscription abstract page: login and purchase links only")
    url = w.landing_url()
    w.page(url, html.soft_not_found("Letters in Natural Science"), w.ts())
    w.request(url, "no-pdf-link", "soft-404 page served with status 200")
    url = w.landing_url()
    w.page(url, html.app_shell("Review of Methods"), w.ts())
    w.request(url, "no-pdf-link", "JavaScript application shell with no links")


def blocklist(w: World) -> None:
    r = w.rng
    jstor = w.claim(f"https://doi.org/10.2307/{r.randint(1000000, 9999999)}")
    ts = w.ts()
    w.redirect(jstor, f"https://www.jstor-archive.org/stable/{jstor.rsplit('/', 1)[1]}", ts)
    w.request(jstor, "skip-url-blocklist", "base URL is a doi.org/10.2307/ (JSTOR) DOI")
    orcid = w.claim(f"https://orcid.org/0000-000{r.randint(1, 3)}-{r.randint(1000, 9999)}-{r.randint(1000, 9999)}")
    w.page(orcid, html.app_shell("ORCID"), w.ts())
    w.request(orcid, "skip-url-blocklist", "base URL is an orcid.org profile")
    base = w.fresh(lambda: f"https://hdl.handle-resolver.net/{r.randint(10000, 99999)}/{r.randint(100, 999)}")
    gbif = w.claim(f"https://doi.org/10.15468/{''.join(r.choice('abcdefghjkmnpqrstuvwxyz0123456789') for _ in range(6))}")
    ts = w.ts()
    w.redirect(base, gbif, ts)
    w.page(gbif, html.soft_not_found("dataset"), w.later(ts, 1))
    w.request(base, "skip-url-blocklist", "redirect target is a doi.org/10.15468/ (GBIF) DOI")
    page, pdf = w.landing_url(), w.pdf_url()
    ts = w.ts()
    wayback = f"https://web.archive.org/web/{w.later(ts, -86400 * 400)}/{pdf}"
    w.claim(wayback)
    body = w.new_pdf()
    w.landing(page, wayback, ts)
    w.pdf_capture(wayback, body, w.later(ts, 10))
    w.request(page, "skip-url-blocklist", "landing page's citation_pdf_url is a web.archive.org/web/ URL",
              pdf=body)


def cookie_walls(w: World) -> None:
    r = w.rng
    targets = [
        ("https://www.tandem-journals.com/action/cookieAbsent", "redirect to /cookieAbsent"),
        (f"https://www.tandem-journals.com/doi/full/{w.doi()}?cookieSet=1", "redirect to a cookieSet=1 URL"),
        (f"https://link.sprocket-science.com/article/{w.doi()}?error=cookies_not_supported&code={r.randint(10**7, 10**8)}",
         "redirect to an error=cookies_not_supported URL"),
    ]
    for target, why in targets:
        base = w.pdf_url()
        ts = w.ts()
        w.claim(target)
        w.redirect(base, target, ts, status=r.choice([302, 303]))
        w.page(target, html.cookie_wall("publisher"), w.later(ts, 1))
        w.request(base, "blocked-cookie", why)


def bad_redirects(w: World) -> None:
    url = w.pdf_url()
    w.redirect(url, None, w.ts())
    w.request(url, "bad-redirect", "302 capture without a Location header")
    base, mid = w.pdf_url(), w.pdf_url()
    ts = w.ts()
    w.redirect(base, mid, ts, status=301)
    w.redirect(mid, None, w.later(ts, 1), status=301)
    w.request(base, "bad-redirect", "second redirect of a chain has no Location header")


def too_many_redirects(w: World) -> None:
    host = JOURNAL_HOSTS[2]
    n = w.rng.randint(1000, 9999)
    chain = [w.claim(f"https://{host}/track/{n}/step{i}") for i in range(31)]
    body = w.new_pdf()
    final = w.pdf_url()
    ts = w.ts()
    for i in range(30):
        w.redirect(chain[i], chain[i + 1], w.later(ts, i))
    w.redirect(chain[30], final, w.later(ts, 30))
    w.pdf_capture(final, body, w.later(ts, 31))
    w.request(chain[0], "redirects-exceeded", "a chain of 31 redirects before the PDF (limit 25)",
              pdf=body)


def too_many_hops(w: World) -> None:
    for length in (8, 10):
        body = w.new_pdf()
        pages = [w.landing_url() for _ in range(length)]
        pdf = w.pdf_url()
        ts = w.ts()
        for i, p in enumerate(pages):
            w.landing(p, pages[i + 1] if i + 1 < length else pdf, w.later(ts, i))
        w.pdf_capture(pdf, body, w.later(ts, length))
        w.request(pages[0], "max-hops-exceeded",
                  f"{length} landing pages in a row before the PDF (limit 6 hops)", pdf=body)


def bad_gzip(w: World) -> None:
    body = gzip.compress(w.new_pdf(), mtime=0)
    url = w.pdf_url()
    w.archive.response(url, w.ts(), 200, PDF, body[: len(body) // 2])
    w.request(url, "bad-gzip-encoding", "gzip magic, stream cut in half, Content-Type application/pdf")
    url = w.pdf_url()
    corrupt = body[:10] + b"\xff" + body[11:]
    w.archive.response(url, w.ts(), 200, PDF, corrupt)
    w.request(url, "bad-gzip-encoding", "gzip magic, invalid deflate block, Content-Type application/pdf")


def too_large(w: World) -> None:
    url = w.pdf_url()
    body = ZeroTailBody(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", BODY_TOO_LARGE)
    w.archive.response(url, "20210607080910", 200, PDF, body, warc=BULK_WARC)
    w.request(url, "body-too-large", "a 129 MiB PDF body (limit 128 MiB)")


def wayback_errors(w: World) -> None:
    url = w.pdf_url()
    ts = w.ts()
    body = w.new_pdf()
    w.archive.row_only(url, ts, "application/pdf", 200, sha1_b32(body), MISSING_WARC,
                       len(body) // 3 + 700, 1_234_567)
    w.request(url, "wayback-error", "index row points at a WARC file that does not exist", pdf=body)
    w.mark_damaged(url, ts, "cdxj", "missing-warc", "WARC file absent", "wayback-error", MISSING_WARC)
    base, target = w.pdf_url(), w.pdf_url()
    ts = w.ts()
    body = w.new_pdf()
    w.redirect(base, target, ts, index="cdxj")
    w.archive.row_only(target, w.later(ts, 1), "application/pdf", 200, sha1_b32(body), MISSING_WARC,
                       len(body) // 3 + 700, 2_345_678)
    w.request(base, "wayback-error", "redirect target's only row points at a missing WARC file", pdf=body)
    w.mark_damaged(target, w.later(ts, 1), "cdxj", "missing-warc", "WARC file absent", "wayback-error",
                   MISSING_WARC)


def content_errors(w: World) -> None:
    r = w.rng
    for damage, why in (("bytes", "stored gzip member is damaged (invalid deflate block)"),
                        ("offset", "index row's offset points 13 bytes into the record"),
                        ("digest", "index row's digest differs from the record's payload")):
        url = w.pdf_url()
        body = w.new_pdf()
        ts = w.ts()
        rec = w.pdf_capture(url, body, ts, index="cdxj", damage=damage)
        e = w.request(url, "wayback-content-error", why, pdf=body)
        # pywb does not check digests, but it cannot replay a broken member or a wrong offset
        http = "wayback-content-error" if damage == "digest" else "wayback-error"
        if http != "wayback-content-error":
            w.over_http(e, http)
        w.mark_damaged(url, ts, "cdxj", damage, why, "wayback-content-error", rec.warc, http)
    # a revisit whose original is not in the index
    url = w.pdf_url()
    body = w.new_pdf()
    t0 = w.ts(2013, 2016)
    t1 = w.later(t0, 86400 * r.randint(30, 300))
    rec = w.archive.revisit(url, t1, (url, t0), sha1_b32(body), PDF, index="cdxj")
    # the archive lost the original: sandcrawler's "revisit resolution failed" (docs/archive.md)
    w.request(url, "wayback-error", "only capture is a revisit whose original is not archived", pdf=body)
    w.mark_damaged(url, t1, "cdxj", "unresolvable-revisit", "refers to a capture not in the index",
                   "wayback-error", rec.warc)
    # a revisit of a revisit
    orig, mid, top = w.pdf_url(), w.pdf_url(), w.pdf_url()
    body = w.new_pdf()
    t0 = w.ts(2013, 2015)
    t1 = w.later(t0, 86400 * 100)
    t2 = w.later(t1, 86400 * 100)
    w.pdf_capture(orig, body, t0, index="cdxj")
    w.archive.revisit(mid, t1, (orig, t0), sha1_b32(body), PDF, index="cdxj")
    rec = w.archive.revisit(top, t2, (mid, t1), sha1_b32(body), PDF, index="cdxj")
    e = w.request(top, "wayback-content-error", "only capture is a revisit of a revisit", pdf=body)
    w.over_http(e, "wayback-error")
    w.mark_damaged(top, t2, "cdxj", "revisit-of-revisit", "refers to a capture that is itself a revisit",
                   "wayback-content-error", rec.warc, "wayback-error")


def cdx_errors(w: World) -> None:
    url = w.pdf_url()
    body = w.new_pdf()
    ts = w.ts()
    w.pdf_capture(url, body, ts, index="cdxj")
    bad_ts = w.later(ts, 86400 * 5)
    w.archive.raw_line("cdxj", f'{w.surt(url)} {bad_ts} {{"url": "{url}", "mime": "application/pdf", "status": "200", "digest": "sha1:')
    w.request(url, "cdx-error", "one of the URL's two index lines is truncated JSON", pdf=body)
    w.mark_damaged(url, bad_ts, "cdxj", "broken-index-line", "truncated CDXJ line", "cdx-error", "")


FAILURES = [no_capture, terminal_bad_status, link_loop, wrong_mimetype, redirect_loops, null_body, no_pdf_link,
            blocklist, cookie_walls, bad_redirects, too_many_redirects, too_many_hops, bad_gzip,
            too_large, wayback_errors, content_errors, cdx_errors]
