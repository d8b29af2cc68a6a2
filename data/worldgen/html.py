"""Landing pages as real publisher and repository platforms render them.

Why it exists: the ingest worker must find the PDF link in HTML the way it
will meet it in a crawl: Highwire-style `citation_*` meta tags (absolute and
root-relative), Digital Commons (bepress) pages, OJS article pages whose only
PDF route is the galley link, DSpace item pages with a `/bitstream/` link,
and pages that offer no PDF at all. Each builder returns the page as bytes.
"""

from __future__ import annotations

from html import escape

DOCTYPE = "<!DOCTYPE html>\n"


def _authors_meta(authors: list[str]) -> str:
    return "".join(f'  <meta name="citation_author" content="{escape(a)}">\n' for a in authors)


def _head(title: str, extra_meta: str = "", css: str = "/static/css/site.css") -> str:
    return (
        "<head>\n"
        '  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"  <title>{escape(title)}</title>\n"
        f'  <link rel="stylesheet" href="{css}">\n'
        f"{extra_meta}"
        "</head>\n"
    )


def highwire(title: str, authors: list[str], journal: str, doi: str, date: str,
             pdf_url: str, abstract: str, meta_name: str = "citation_pdf_url",
             xhtml: bool = False) -> bytes:
    """A journal article page carrying Google Scholar `citation_*` tags (Highwire style)."""
    meta = (
        f'  <meta name="citation_title" content="{escape(title)}">\n'
        f"{_authors_meta(authors)}"
        f'  <meta name="citation_journal_title" content="{escape(journal)}">\n'
        f'  <meta name="citation_publication_date" content="{date}">\n'
        f'  <meta name="citation_doi" content="{doi}">\n'
        f'  <meta name="{meta_name}" content="{escape(pdf_url)}">\n'
        f'  <meta name="dc.identifier" content="doi:{doi}">\n'
    )
    if xhtml:
        # XHTML pages close their empty elements and declare the namespace.
        meta = meta.replace('">\n', '" />\n')
    body = (
        '<body class="article-page">\n'
        '<header class="site-header"><a href="/">' + escape(journal) + "</a>\n"
        '  <nav><a href="/content/current">Current issue</a> <a href="/content/by/year">Archive</a>'
        ' <a href="/site/subscriptions">Subscribe</a></nav></header>\n'
        '<main id="content">\n'
        f'  <h1 class="article-title">{escape(title)}</h1>\n'
        f'  <p class="authors">{escape(", ".join(authors))}</p>\n'
        f'  <p class="doi">https://doi.org/{doi}</p>\n'
        '  <section class="abstract"><h2>Abstract</h2>\n'
        f"  <p>{escape(abstract)}</p></section>\n"
        "</main>\n"
        '<footer><a href="/about">About</a> <a href="/privacy">Privacy</a></footer>\n'
        "</body>\n"
    )
    if xhtml:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
            '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            + _head(title, meta).replace('<meta charset="utf-8">',
                                         '<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />')
            .replace('initial-scale=1">', 'initial-scale=1" />')
            .replace('site.css">', 'site.css" />')
            + body + "</html>\n"
        ).encode("utf-8")
    return (DOCTYPE + '<html lang="en">\n' + _head(title, meta) + body + "</html>\n").encode("utf-8")


def bepress(title: str, authors: list[str], institution: str, date: str, pdf_url: str,
            abstract: str) -> bytes:
    """A Digital Commons (bepress) item page: bepress_citation_* tags and a viewcontent.cgi link."""
    meta = (
        f'  <meta name="bepress_citation_title" content="{escape(title)}">\n'
        + "".join(f'  <meta name="bepress_citation_author" content="{escape(a)}">\n'
                  for a in authors)
        + f'  <meta name="bepress_citation_date" content="{date}">\n'
        f'  <meta name="bepress_citation_pdf_url" content="{escape(pdf_url)}">\n'
        f'  <meta name="bepress_citation_abstract_html_url" content="{escape(pdf_url.split("/cgi/")[0])}/">\n'
        f'  <meta name="description" content="{escape(abstract[:150])}">\n'
    )
    body = (
        '<body>\n<div id="container"><div id="header">'
        f'<a href="/" id="banner_link">{escape(institution)} Scholarly Commons</a></div>\n'
        '<div id="navigation"><ul><li><a href="/communities.html">Browse</a></li>'
        '<li><a href="/faq.html">FAQ</a></li><li><a href="/cgi/myaccount.cgi">My Account</a></li>'
        "</ul></div>\n"
        '<div id="main" class="text">\n'
        f'<div id="title" class="element"><h1>{escape(title)}</h1></div>\n'
        f'<div id="authors" class="element"><p class="author">{escape("; ".join(authors))}</p></div>\n'
        f'<div id="publication_date" class="element"><h4>Publication Date</h4><p>{date}</p></div>\n'
        f'<div id="abstract" class="element"><h4>Abstract</h4><p>{escape(abstract)}</p></div>\n'
        '<div class="aside download-button">'
        f'<a id="pdf" href="{escape(pdf_url)}" title="PDF (1 MB) opens in new window" '
        'target="_blank" class="btn"><span>Download</span></a></div>\n'
        "</div></div>\n</body>\n"
    )
    return (DOCTYPE + '<html lang="en">\n' + _head(title, meta, "/ir-style.css") + body
            + "</html>\n").encode("utf-8")


def ojs(title: str, authors: list[str], journal: str, galley_href: str, citation_href: str,
        abstract: str) -> bytes:
    """An OJS 3 article page of a theme without citation meta tags: the PDF galley link only."""
    body = (
        '<body class="pkp_page_article pkp_op_view">\n'
        '<div class="pkp_structure_page">\n'
        f'<header class="pkp_structure_head"><div class="pkp_site_name">'
        f'<a href="../../index" class="is_text">{escape(journal)}</a></div>\n'
        '<nav class="pkp_navigation_primary_wrapper"><ul id="navigationPrimary">'
        '<li><a href="../../issue/current">Current</a></li>'
        '<li><a href="../../issue/archive">Archives</a></li>'
        '<li><a href="../../about">About</a></li></ul></nav></header>\n'
        '<div class="pkp_structure_content"><div class="page page_article">\n'
        '<article class="obj_article_details">\n'
        f'<h1 class="page_title">{escape(title)}</h1>\n'
        '<div class="row"><div class="main_entry">\n'
        '<section class="item authors"><ul class="authors">'
        + "".join(f'<li><span class="name">{escape(a)}</span></li>' for a in authors)
        + "</ul></section>\n"
        f'<section class="item abstract"><h2 class="label">Abstract</h2><p>{escape(abstract)}</p></section>\n'
        "</div>\n"
        '<div class="entry_details">\n'
        '<div class="item galleys"><ul class="value galleys_links"><li>'
        f'<a class="obj_galley_link pdf" href="{escape(galley_href)}">PDF</a>'
        "</li></ul></div>\n"
        '<div class="item citation"><div class="sub_item citation_format">'
        '<h2 class="label">Download Citation</h2><ul class="citation_formats_styles">'
        f'<li><a href="{escape(citation_href)}">Endnote/Zotero/Mendeley (RIS)</a></li>'
        "</ul></div></div>\n"
        "</div></div></article></div></div>\n"
        '<div class="pkp_brand_footer"><a href="../../about/aboutThisPublishingSystem">'
        "Open Journal Systems</a></div>\n</div>\n</body>\n"
    )
    return (DOCTYPE + '<html lang="en-US" xml:lang="en-US">\n' + _head(title, "", "../../$$$call$$$/page/page/css?name=stylesheet")
            + body + "</html>\n").encode("utf-8")


def dspace(title: str, authors: list[str], handle: str, bitstream_href: str, filename: str,
           abstract: str) -> bytes:
    """A DSpace (XMLUI Mirage-style) item page with the file listed as a /bitstream/ link."""
    body = (
        '<body>\n<div id="ds-main">\n'
        '<div id="ds-header-wrapper"><a id="ds-header-logo-link" href="/">Institutional Repository</a>'
        '<ul id="ds-trail"><li><a href="/">Home</a></li>'
        '<li><a href="/handle/' + handle.split("/")[0] + '/1">Research Papers</a></li></ul></div>\n'
        '<div id="ds-body"><div id="aspect_artifactbrowser_ItemViewer_div_item-view" class="ds-static-div primary">\n'
        f'<h2 class="page-header first-page-header">{escape(title)}</h2>\n'
        '<div class="simple-item-view-authors item-page-field-wrapper">'
        + "".join(f"<div>{escape(a)}</div>" for a in authors)
        + "</div>\n"
        '<div class="item-page-field-wrapper table word-break"><h5>View/Open</h5>'
        f'<div><a href="{escape(bitstream_href)}"><i aria-hidden="true" class="glyphicon  glyphicon-file"></i> '
        f"{escape(filename)} (245.1Kb)</a></div></div>\n"
        f'<div class="simple-item-view-description item-page-field-wrapper table"><h5>Abstract</h5><div>{escape(abstract)}</div></div>\n'
        f'<div class="simple-item-view-uri item-page-field-wrapper table"><h5>URI</h5>'
        f'<span><a href="/handle/{handle}">/handle/{handle}</a></span></div>\n'
        f'<div class="simple-item-view-show-full item-page-field-wrapper table"><a href="/handle/{handle}?show=full">Show full item record</a></div>\n'
        "</div></div>\n"
        '<div id="ds-options"><a href="/discover">Search</a> <a href="/login">Login</a></div>\n'
        "</div>\n</body>\n"
    )
    return (DOCTYPE + '<html class="no-js" lang="en">\n' + _head(title, "", "/themes/Mirage2/styles/main.css")
            + body + "</html>\n").encode("utf-8")


def paywall_abstract(title: str, journal: str, doi: str, abstract: str) -> bytes:
    """An abstract page of a subscription journal: bibliographic tags, no full-text route."""
    meta = (
        f'  <meta name="citation_title" content="{escape(title)}">\n'
        f'  <meta name="citation_journal_title" content="{escape(journal)}">\n'
        f'  <meta name="citation_doi" content="{doi}">\n'
    )
    body = (
        "<body>\n"
        f'<header><a href="/">{escape(journal)}</a></header>\n'
        f"<main><h1>{escape(title)}</h1>\n<p>{escape(abstract)}</p>\n"
        '<div class="access-options"><h2>Access options</h2>'
        '<a href="/action/showLogin?uri=%2Fdoi%2Fabs%2F' + doi.replace("/", "%2F") + '">Log in</a> '
        '<a href="/action/ecommerce?doi=' + doi + '">Buy article</a> '
        '<a href="/page/subscriptions">Institutional subscriptions</a></div>\n'
        "</main>\n</body>\n"
    )
    return (DOCTYPE + "<html>\n" + _head(title, meta) + body + "</html>\n").encode("utf-8")


def soft_not_found(site: str) -> bytes:
    """A '200 OK' page that says the article is gone (a soft 404)."""
    body = (
        "<body>\n<div class=\"error-page\"><h1>Page not found</h1>\n"
        "<p>The article you requested has moved or is no longer available. "
        'Try the <a href="/search">search</a> or return to the <a href="/">home page</a>.</p>\n'
        "</div>\n</body>\n"
    )
    return (DOCTYPE + "<html>\n" + _head(f"Not found | {site}") + body + "</html>\n").encode("utf-8")


def app_shell(site: str) -> bytes:
    """A single-page-app shell: everything is loaded by JavaScript, nothing to follow."""
    body = (
        "<body>\n<noscript>You need to enable JavaScript to run this app.</noscript>\n"
        '<div id="root"></div>\n'
        '<script src="/static/js/runtime.4f1c.js"></script>\n'
        '<script src="/static/js/main.8a2e1b.js"></script>\n</body>\n'
    )
    return (DOCTYPE + '<html lang="en">\n' + _head(site, "", "/static/css/main.3c2d.css") + body
            + "</html>\n").encode("utf-8")


def cookie_wall(site: str) -> bytes:
    """What a publisher serves when the crawler did not keep its session cookie."""
    body = (
        "<body>\n<h1>Cookies disabled</h1>\n"
        "<p>Your browser has cookies disabled. This site requires cookies to be enabled "
        'to function. <a href="/">Continue</a></p>\n</body>\n'
    )
    return (DOCTYPE + "<html>\n" + _head(f"Cookie absent | {site}") + body + "</html>\n").encode("utf-8")


def redirect_stub(location: str) -> bytes:
    """The tiny body many servers send with a 3xx."""
    href = escape(location)
    return (
        "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
        "<title>302 Found</title>\n</head><body>\n<h1>Found</h1>\n"
        f'<p>The document has moved <a href="{href}">here</a>.</p>\n</body></html>\n'
    ).encode()
