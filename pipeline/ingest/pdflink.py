"""Find the PDF link on a landing page: the next hop of an ingest (docs/statuses.md).

Why: many catalog URLs point at an article's landing page, not at the PDF.
Publishers say where the PDF is in a few well-known ways, tried in order of
trust: the `citation_pdf_url` / `bepress_citation_pdf_url` meta tags (Google
Scholar's convention), then platform-specific link shapes (OJS, Highwire,
DSpace, bepress), then a generic link to a `.pdf` labelled as the PDF or a
download, then a `<meta http-equiv=refresh>` redirect, and last the one
unlabelled `.pdf` link on the page's own site, if there is exactly one.

Article pages also link other documents: the reference list and footnotes cite
PDFs elsewhere, often with the URL itself as the anchor text. Following one of
those fetches an unrelated paper (and sends it to GROBID), so the generic and
platform rules ignore links inside reference, footnote and related-article
containers, and a bare URL is never taken as a "PDF" label (sandcrawler, whose
statuses we match, has no "any .pdf link" rule at all).

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
BARE_URL = re.compile(r"^\s*(?:https?://|ftp://|www\.|doi:|10\.\d{4,}/)\S*\s*$", re.IGNORECASE)
# class/id tokens and roles of containers whose links cite other documents
CITED_TOKEN = re.compile(
    r"(?:^|[-_])(?:refs?|references?|reflist|bibliography|bibliographie|bibl?|footnotes?|fn\d*|"
    r"endnotes?|notes|citations?|cited|citedby|literature|related|similar|recommended)(?:$|[-_\d])",
    re.IGNORECASE)
CITED_ROLES = ("doc-bibliography", "doc-endnotes", "doc-footnote", "doc-biblioentry", "doc-endnote")
CITED_HEADING = re.compile(
    r"^\s*(?:\d+\.?\s*)?(?:references?|bibliography|literature( cited)?|works cited|notes|"
    r"footnotes|endnotes|cited by|related articles|similar articles)\s*:?\s*$", re.IGNORECASE)
# containers tracked for the context above (tolerant: an end tag closes back to its opener)
CONTAINERS = frozenset({"section", "div", "ol", "ul", "li", "aside", "footer", "table", "dl",
                        "article", "cite", "sup", "p", "span", "nav", "main", "body"})
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
REFRESH_URL = re.compile(r"""^\s*\d*(?:\.\d*)?\s*[;,]?\s*url\s*=\s*['"]?([^'"]+)['"]?\s*$""", re.I)


@dataclass
class Anchor:
    href: str
    text: str = ""
    cls: str = ""
    title: str = ""
    kind: str = "a"  # a | iframe | embed | object | link
    type: str = ""
    cited: bool = False  # inside a reference list, footnotes or related-articles box

    @property
    def label(self) -> str:
        """Text, class and title; anchor text that is just a URL says nothing about the target."""
        text = "" if BARE_URL.match(self.text) else self.text
        return " ".join(x for x in (text, self.cls, self.title) if x)


@dataclass
class PageLinks:
    """What a landing page says about links: meta tags, anchors, embeds, base and refresh."""

    meta: dict[str, str] = field(default_factory=dict)  # first value of each lower-cased name
    refresh: str | None = None
    base: str | None = None
    anchors: list[Anchor] = field(default_factory=list)


def _cites(tag: str, a: dict[str, str]) -> bool:
    """Does this element hold citations of other documents (references, footnotes, related)?"""
    if tag == "cite" or a.get("role", "").lower() in CITED_ROLES:
        return True
    if "epub:type" in a and any(t in a["epub:type"].lower() for t in ("bibliography", "footnote", "endnote")):
        return True
    return any(CITED_TOKEN.search(tok) for tok in (a.get("class", "") + " " + a.get("id", "")).split())


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageLinks()
        self._open: Anchor | None = None
        self._stack: list[list] = []  # [tag, cites] of the open containers
        self._heading: list[str] | None = None  # text of the open h1..h6
        self._after_cited_heading = False  # a "References" heading outside any container

    def _cited(self) -> bool:
        return self._after_cited_heading or any(c for _, c in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "").strip() for k, v in attrs}
        if tag in CONTAINERS:
            self._stack.append([tag, _cites(tag, a)])
        elif tag in HEADINGS:
            self._heading = []
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
                                type=a.get("type", ""), cited=self._cited() or _cites(tag, a))
            self.page.anchors.append(self._open)
        elif tag == "link" and a.get("href"):
            self.page.anchors.append(Anchor(a["href"], cls=a.get("rel", ""), title=a.get("title", ""),
                                            kind="link", type=a.get("type", "")))
        elif tag in ("iframe", "embed", "frame") and a.get("src"):
            self.page.anchors.append(Anchor(a["src"], kind=tag, type=a.get("type", ""),
                                            cited=self._cited()))
        elif tag == "object" and a.get("data"):
            self.page.anchors.append(Anchor(a["data"], kind=tag, type=a.get("type", ""),
                                            cited=self._cited()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self._close_anchor()
        elif tag in CONTAINERS or tag in HEADINGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_anchor()
        elif tag in HEADINGS and self._heading is not None:
            if CITED_HEADING.match(" ".join(self._heading)):
                # the heading names a reference list: the rest of its container cites
                if self._stack:
                    self._stack[-1][1] = True
                else:
                    self._after_cited_heading = True
            self._heading = None
        elif tag in CONTAINERS:
            for i in range(len(self._stack) - 1, -1, -1):
                if self._stack[i][0] == tag:
                    del self._stack[i:]
                    break

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.text = " ".join((self._open.text + " " + data).split())
        if self._heading is not None:
            self._heading.append(data)

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
    try:
        return urlsplit(url).path.lower()
    except ValueError:  # an unparseable authority (`http://[::1/x.pdf`): no path of ours
        return ""


def _is_pdf_path(url: str) -> bool:
    return _path(url).endswith(".pdf")


def _site(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def _own(page_url: str, page: PageLinks, a: Anchor) -> bool:
    """Is the link on the page's own site (relative links are)?"""
    target = _absolute(page_url, page, a.href)
    return target is not None and _site(target) == _site(page_url)


def _links(page: PageLinks, kinds: tuple[str, ...] = ("a",)) -> list[Anchor]:
    """The page's own links of these kinds: nothing from references, footnotes, related lists."""
    return [a for a in page.anchors if a.kind in kinds and not a.cited]


def _ojs(page_url: str, page: PageLinks) -> str | None:
    """OJS: the article page links galleys (`/article/view/A/G`); a galley page embeds
    or links `/article/download/A/G`, which serves the file. Both on the journal's own site."""
    links = [a for a in _links(page, ("a", "iframe", "embed", "object")) if _own(page_url, page, a)]
    for a in links:
        if "/article/download/" in a.href and (a.kind != "a" or PDF_LABEL.search(a.label)
                                               or "download" in a.cls.lower()):
            return a.href
    for a in links:
        if a.kind == "a" and "/article/view/" in a.href and PDF_WORD.search(a.label):
            return a.href
    return None


def _highwire(page_url: str, page: PageLinks) -> str | None:
    """Highwire-hosted journals: `<a href="/content/9/2/15.full.pdf+html">` -> the `.full.pdf`,
    on the journal's own site (other journals' `.full.pdf` links are citations)."""
    for a in _links(page):
        path = _path(a.href)
        if (path.endswith(".full.pdf") or path.endswith(".full.pdf+html")) and _own(page_url, page, a):
            href = a.href
            cut = href.lower().find(".full.pdf+html")
            return href[: cut + len(".full.pdf")] if cut >= 0 else href
    return None


def _dspace(page_url: str, page: PageLinks) -> str | None:
    """DSpace repositories serve the item's files under `/bitstream/...` of their own site."""
    for a in _links(page):
        if "/bitstream/" in a.href and _own(page_url, page, a) and (
                _is_pdf_path(a.href) or PDF_WORD.search(a.label)):
            return a.href
    return None


def _bepress(page_url: str, page: PageLinks) -> str | None:
    """bepress Digital Commons: `viewcontent.cgi?article=N&context=C` on its own site serves the file."""
    for a in _links(page):
        if "viewcontent.cgi" in a.href and "article=" in a.href and _own(page_url, page, a):
            return a.href
    return None


def _generic(page_url: str, page: PageLinks) -> str | None:
    """A PDF the page itself presents: an embedded viewer or `<link type=application/pdf>`,
    a `.pdf` link labelled PDF / download / full text, or a link whose text says PDF.
    A label is the anchor's text, class or title; a URL as anchor text is no label."""
    for a in _links(page, ("a", "link", "iframe", "embed", "object")):
        is_pdf_type = a.type.lower() == "application/pdf"
        if (_is_pdf_path(a.href) or is_pdf_type) and (
                a.kind not in ("a", "link") or is_pdf_type or (a.kind == "a" and PDF_LABEL.search(a.label))):
            return a.href
    for a in _links(page):
        text = "" if BARE_URL.match(a.text) else a.text
        if PDF_WORD.search(text):
            return a.href
    return None


def _sole_pdf(page_url: str, page: PageLinks) -> str | None:
    """Last resort: the page's only (unlabelled) `.pdf` link on its own site. Two or more
    distinct ones (an issue's table of contents, a list of reports) give no answer."""
    found = {_absolute(page_url, page, a.href) for a in _links(page)
             if _is_pdf_path(a.href) and _own(page_url, page, a)}
    found.discard(None)
    return found.pop() if len(found) == 1 else None


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
    try:
        base = urljoin(page_url, page.base) if page.base else page_url
        url = urljoin(base, href.strip())
        url = url.split("#", 1)[0]
        parts = urlsplit(url)
    except ValueError:  # a link whose authority does not parse is no link
        return None
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def extract_pdf_link(page_url: str, html: bytes | str) -> dict | None:
    """`{"next_url", "technique"}` for the PDF link of a landing page, or None.

    Techniques: `citation_pdf_url`, `bepress_citation_pdf_url`, `ojs`,
    `highwire`, `dspace`, `bepress`, `generic_pdf_link`, `meta_refresh`,
    `sole_pdf_link`.
    """
    page = parse_links(html)
    candidates: list[tuple[str, str | None]] = [(t, page.meta.get(t)) for t in META_TAGS]
    candidates += [(name, rule(page_url, page)) for name, rule in RULES]
    candidates.append(("meta_refresh", page.refresh))
    candidates.append(("sole_pdf_link", _sole_pdf(page_url, page)))
    for technique, href in candidates:
        if _usable(href):
            url = _absolute(page_url, page, href)
            if url:
                return {"next_url": url, "technique": technique}
    return None
