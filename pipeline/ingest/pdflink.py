"""Find the PDF link on a landing page: the next hop of an ingest (SPEC §2.5).

Why: many catalog URLs point at an article's landing page, not at the PDF.
Publishers say where the PDF is in a few well-known ways, tried in order of
trust: the `citation_pdf_url` / `bepress_citation_pdf_url` meta tags (Google
Scholar's convention), then platform-specific link shapes (OJS, Highwire,
DSpace, bepress), then a generic link to a `.pdf` labelled as the PDF or a
download, then a `<meta http-equiv=refresh>` redirect.

The page is parsed with the standard library's tolerant HTML parser (no regex
over markup); relative links are joined against `<base href>` or the page URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

PARSE_LIMIT_BYTES = 4 * 1024 * 1024  # landing pages are small; never parse a huge body whole
PDF_LABEL = re.compile(r"\bpdf\b|download|full[\s-]*text", re.IGNORECASE)
PDF_WORD = re.compile(r"\bpdf\b", re.IGNORECASE)
REFRESH_URL = re.compile(r"""^\s*\d*(?:\.\d*)?\s*[;,]?\s*url\s*=\s*['"]?([^'"]+)['"]?\s*$""", re.I)


@dataclass
class Anchor:
    href: str
    text: str = ""
    cls: str = ""
    title: str = ""
    kind: str = "a"  # a | iframe | embed | object | link
    type: str = ""

    @property
    def label(self) -> str:
        return " ".join(x for x in (self.text, self.cls, self.title) if x)


@dataclass
class PageLinks:
    """What a landing page says about links: meta tags, anchors, embeds, base and refresh."""

    meta: dict[str, str] = field(default_factory=dict)  # first value of each lower-cased name
    refresh: str | None = None
    base: str | None = None
    anchors: list[Anchor] = field(default_factory=list)


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageLinks()
        self._open: Anchor | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag == "meta":
            name = (a.get("name") or a.get("property") or "").lower()
            if name and a.get("content") and name not in self.page.meta:
                self.page.meta[name] = a["content"]
            if a.get("http-equiv", "").lower() == "refresh" and self.page.refresh is None:
                m = REFRESH_URL.match(a.get("content", ""))
                if m:
                    self.page.refresh = m.group(1).strip()
        elif tag == "base" and a.get("href") and self.page.base is None:
            self.page.base = a["href"]
        elif tag == "a" and a.get("href"):
            self._close_anchor()
            self._open = Anchor(a["href"], cls=a.get("class", ""), title=a.get("title", ""),
                                type=a.get("type", ""))
            self.page.anchors.append(self._open)
        elif tag == "link" and a.get("href"):
            self.page.anchors.append(Anchor(a["href"], cls=a.get("rel", ""), title=a.get("title", ""),
                                            kind="link", type=a.get("type", "")))
        elif tag in ("iframe", "embed", "frame") and a.get("src"):
            self.page.anchors.append(Anchor(a["src"], kind=tag, type=a.get("type", "")))
        elif tag == "object" and a.get("data"):
            self.page.anchors.append(Anchor(a["data"], kind=tag, type=a.get("type", "")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self._close_anchor()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text = " ".join((self._open.text + " " + data).split())

    def _close_anchor(self) -> None:
        self._open = None


def parse_links(html: bytes | str) -> PageLinks:
    """Parse a landing page (bytes are decoded as UTF-8, bad bytes replaced)."""
    if isinstance(html, bytes):
        html = html[:PARSE_LIMIT_BYTES].decode("utf-8", errors="replace")
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    return parser.page


# -- the rules ---------------------------------------------------------------

def _path(url: str) -> str:
    return urlsplit(url).path.lower()


def _is_pdf_path(url: str) -> bool:
    return _path(url).endswith(".pdf")


def _ojs(page_url: str, page: PageLinks) -> str | None:
    """OJS: the article page links galleys (`/article/view/A/G`); a galley page embeds
    or links `/article/download/A/G`, which serves the file."""
    for a in page.anchors:
        if "/article/download/" in a.href and (a.kind != "a" or PDF_LABEL.search(a.label)
                                               or "download" in a.cls.lower()):
            return a.href
    for a in page.anchors:
        if a.kind == "a" and "/article/view/" in a.href and PDF_WORD.search(a.label):
            return a.href
    return None


def _highwire(page_url: str, page: PageLinks) -> str | None:
    """Highwire-hosted journals: `<a href="/content/9/2/15.full.pdf+html">` -> the `.full.pdf`."""
    for a in page.anchors:
        path = _path(a.href)
        if path.endswith(".full.pdf") or path.endswith(".full.pdf+html"):
            href = a.href
            cut = href.lower().find(".full.pdf+html")
            return href[: cut + len(".full.pdf")] if cut >= 0 else href
    return None


def _dspace(page_url: str, page: PageLinks) -> str | None:
    """DSpace repositories serve files under `/bitstream/...`."""
    for a in page.anchors:
        if a.kind == "a" and "/bitstream/" in a.href and (
                _is_pdf_path(a.href) or PDF_WORD.search(a.label)):
            return a.href
    return None


def _bepress(page_url: str, page: PageLinks) -> str | None:
    """bepress Digital Commons: `viewcontent.cgi?article=N&context=C` serves the file."""
    for a in page.anchors:
        if "viewcontent.cgi" in a.href and "article=" in a.href:
            return a.href
    return None


def _generic(page_url: str, page: PageLinks) -> str | None:
    """A link to a `.pdf` labelled as such or as a download; else any link labelled PDF."""
    anchors = [a for a in page.anchors if a.kind in ("a", "link", "iframe", "embed", "object")]
    for a in anchors:
        if (_is_pdf_path(a.href) or a.type.lower() == "application/pdf") and (
                a.kind != "a" or PDF_LABEL.search(a.label) or a.type.lower() == "application/pdf"):
            return a.href
    for a in anchors:
        if a.kind == "a" and PDF_WORD.search(a.text) and PDF_LABEL.search(a.text):
            return a.href
    for a in anchors:
        if a.kind == "a" and _is_pdf_path(a.href):
            return a.href
    return None


Rule = Callable[[str, PageLinks], "str | None"]
RULES: tuple[tuple[str, Rule], ...] = (
    ("ojs", _ojs),
    ("highwire", _highwire),
    ("dspace", _dspace),
    ("bepress", _bepress),
    ("generic_pdf_link", _generic),
)
META_TAGS = ("citation_pdf_url", "bepress_citation_pdf_url")


def _usable(href: str | None) -> bool:
    if not href:
        return False
    low = href.strip().lower()
    return not low.startswith(("javascript:", "mailto:", "#", "data:", "tel:"))


def _absolute(page_url: str, page: PageLinks, href: str) -> str | None:
    base = urljoin(page_url, page.base) if page.base else page_url
    url = urljoin(base, href.strip())
    url = url.split("#", 1)[0]
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else None


def extract_pdf_link(page_url: str, html: bytes | str) -> dict | None:
    """`{"next_url", "technique"}` for the PDF link of a landing page, or None.

    Techniques: `citation_pdf_url`, `bepress_citation_pdf_url`, `ojs`,
    `highwire`, `dspace`, `bepress`, `generic_pdf_link`, `meta_refresh`.
    """
    page = parse_links(html)
    candidates: list[tuple[str, str | None]] = [(t, page.meta.get(t)) for t in META_TAGS]
    candidates += [(name, rule(page_url, page)) for name, rule in RULES]
    candidates.append(("meta_refresh", page.refresh))
    for technique, href in candidates:
        if _usable(href):
            url = _absolute(page_url, page, href)
            if url:
                return {"next_url": url, "technique": technique}
    return None
