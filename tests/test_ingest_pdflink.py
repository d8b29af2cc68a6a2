"""PDF-link extraction on realistic landing pages of the common platforms."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest.pdflink import extract_pdf_link, parse_links

OJS3_ARTICLE = """<!DOCTYPE html>
<html lang="en-US" xml:lang="en-US">
<head>
  <meta charset="utf-8">
  <title>Soil carbon in alpine meadows | Journal of Mountain Ecology</title>
  <meta name="generator" content="Open Journal Systems 3.2.1.1">
  <link rel="stylesheet" href="https://journals.example.edu/index.php/jme/$$$call$$$/page/page/css?name=stylesheet" type="text/css" />
  <meta name="DC.Title" content="Soil carbon in alpine meadows"/>
  <meta name="citation_journal_title" content="Journal of Mountain Ecology"/>
  <meta name="citation_title" content="Soil carbon in alpine meadows"/>
  <meta name="citation_author" content="Rossi, Anna"/>
  <meta name="citation_date" content="2019/06/30"/>
  <meta name="citation_abstract_html_url" content="https://journals.example.edu/index.php/jme/article/view/4411"/>
</head>
<body class="pkp_page_article pkp_op_view">
  <div class="pkp_structure_page">
    <header class="pkp_structure_head" role="banner">
      <nav><ul><li><a href="https://journals.example.edu/index.php/jme/issue/current">Current</a></li>
      <li><a href="https://journals.example.edu/index.php/jme/issue/archive">Archives</a></li></ul></nav>
    </header>
    <article class="obj_article_details">
      <h1 class="page_title">Soil carbon in alpine meadows</h1>
      <section class="item abstract"><h2 class="label">Abstract</h2><p>We measured ...</p></section>
      <div class="item galleys">
        <ul class="value galleys_links">
          <li>
            <a class="obj_galley_link pdf" href="https://journals.example.edu/index.php/jme/article/view/4411/3120">
              PDF
            </a>
          </li>
        </ul>
      </div>
    </article>
  </div>
</body>
</html>
"""

OJS_GALLEY_VIEW = """<!DOCTYPE html>
<html lang="en-US">
<head><meta charset="utf-8">
<title>View of Soil carbon in alpine meadows</title></head>
<body>
  <header class="header_view">
    <a href="https://journals.example.edu/index.php/jme/article/view/4411" class="return">
      <span class="pkp_screen_reader">Return to Article Details</span>
    </a>
    <a href="https://journals.example.edu/index.php/jme/article/view/4411" class="title">Soil carbon</a>
    <a href="https://journals.example.edu/index.php/jme/article/download/4411/3120/15233" class="download" download>
      <span class="label">Download</span>
      <span class="pkp_screen_reader">Download PDF</span>
    </a>
  </header>
  <div id="pdfCanvasContainer" class="galley_view">
    <iframe src="https://journals.example.edu/plugins/generic/pdfJsViewer/pdf.js/web/viewer.html?file=https%3A%2F%2Fjournals.example.edu%2Findex.php%2Fjme%2Farticle%2Fdownload%2F4411%2F3120%2F15233" width="100%" height="100%" style="min-height: 500px;" allowfullscreen webkitallowfullscreen></iframe>
  </div>
</body>
</html>
"""

HIGHWIRE = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<title>Calcium signalling in the heart | Journal of Cell Science</title>
<link rel="alternate" type="application/rss+xml" title="Current issue" href="/rss/current.xml" />
<meta name="citation_title" content="Calcium signalling in the heart" />
</head>
<body>
<div id="col-2">
  <ul class="tabs">
    <li><a href="/content/118/4/635.abstract">Abstract</a></li>
    <li class="active"><a href="/content/118/4/635.full">Full Text</a></li>
    <li><a href="/content/118/4/635.full.pdf+html" rel="view-full-text.pdf">Full Text (PDF)</a></li>
  </ul>
  <a href="/content/118/4/635/suppl/DC1">Supplementary data</a>
</div>
</body>
</html>
"""

DSPACE = """<!DOCTYPE html>
<html class="no-js">
<head>
<meta charset="UTF-8">
<title>Water governance in the Andes</title>
<meta name="DC.creator" content="Quispe, L." />
<link rel="schema.DCTERMS" href="http://purl.org/dc/terms/" />
</head>
<body>
<div id="ds-main">
 <div class="item-summary-view-metadata">
  <h2 class="page-header first-page-header">Water governance in the Andes</h2>
  <div class="item-page-field-wrapper table word-break">
    <h5>Files</h5>
    <div>
      <a href="/bitstream/handle/10568/77321/thumbnail.jpg?sequence=5">
        <img alt="Thumbnail" src="/bitstream/handle/10568/77321/thumbnail.jpg?sequence=5" /></a>
      <a href="/bitstream/handle/10568/77321/Water_governance.pdf?sequence=1&amp;isAllowed=y">
        <i aria-hidden="true" class="glyphicon glyphicon-file"></i> Water_governance.pdf (1.210Mb)
      </a>
    </div>
  </div>
  <a href="/handle/10568/77321?show=full">Show full item record</a>
 </div>
</div>
</body>
</html>
"""

BEPRESS = """<!DOCTYPE html>
<html lang="en">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">
<title>"Tort Reform and Rural Hospitals" by Jane Smith</title>
<meta name="bepress_citation_title" content="Tort Reform and Rural Hospitals">
<meta name="bepress_citation_author" content="Smith, Jane">
<meta name="bepress_citation_date" content="2011">
<meta name="bepress_citation_pdf_url" content="https://scholarship.law.example.edu/cgi/viewcontent.cgi?article=1042&amp;context=lawreview">
<meta name="bepress_citation_abstract_html_url" content="https://scholarship.law.example.edu/lawreview/vol12/iss1/3">
</head>
<body>
<div id="alpha">
  <h1><a href="https://scholarship.law.example.edu/lawreview/vol12/iss1/3">Tort Reform and Rural Hospitals</a></h1>
  <div id="beta-pdf">
    <a id="pdf" href="https://scholarship.law.example.edu/cgi/viewcontent.cgi?article=1042&amp;context=lawreview" title="Tort Reform and Rural Hospitals">Download</a>
  </div>
</div>
</body>
</html>
"""


def test_citation_pdf_url_wins_and_is_joined():
    page = """<html><head>
    <meta name="citation_title" content="A paper">
    <meta name="citation_pdf_url" content="/doi/pdf/10.1234/abc.2001.5">
    </head><body><a href="/files/other.pdf">PDF</a></body></html>"""
    assert extract_pdf_link("https://pub.example.com/doi/10.1234/abc.2001.5", page) == {
        "next_url": "https://pub.example.com/doi/pdf/10.1234/abc.2001.5",
        "technique": "citation_pdf_url",
    }


def test_bepress_meta_tag():
    assert extract_pdf_link("https://scholarship.law.example.edu/lawreview/vol12/iss1/3", BEPRESS) == {
        "next_url": "https://scholarship.law.example.edu/cgi/viewcontent.cgi?article=1042&context=lawreview",
        "technique": "bepress_citation_pdf_url",
    }


def test_bepress_viewcontent_link_without_meta():
    page = BEPRESS.replace('<meta name="bepress_citation_pdf_url"', '<meta name="x"')
    got = extract_pdf_link("https://scholarship.law.example.edu/lawreview/vol12/iss1/3", page)
    assert got == {
        "next_url": "https://scholarship.law.example.edu/cgi/viewcontent.cgi?article=1042&context=lawreview",
        "technique": "bepress",
    }


def test_ojs_article_page_to_galley():
    got = extract_pdf_link("https://journals.example.edu/index.php/jme/article/view/4411", OJS3_ARTICLE)
    assert got == {
        "next_url": "https://journals.example.edu/index.php/jme/article/view/4411/3120",
        "technique": "ojs",
    }


def test_ojs_galley_page_to_download():
    got = extract_pdf_link("https://journals.example.edu/index.php/jme/article/view/4411/3120",
                           OJS_GALLEY_VIEW.encode())
    assert got == {
        "next_url": "https://journals.example.edu/index.php/jme/article/download/4411/3120/15233",
        "technique": "ojs",
    }


def test_highwire_full_pdf_html_becomes_full_pdf():
    got = extract_pdf_link("http://jcs.biologists.org/content/118/4/635.full", HIGHWIRE.encode())
    assert got == {"next_url": "http://jcs.biologists.org/content/118/4/635.full.pdf",
                   "technique": "highwire"}


def test_dspace_bitstream():
    got = extract_pdf_link("https://cgspace.example.org/handle/10568/77321", DSPACE)
    assert got == {
        "next_url": "https://cgspace.example.org/bitstream/handle/10568/77321/Water_governance.pdf?sequence=1&isAllowed=y",
        "technique": "dspace",
    }


def test_generic_labelled_pdf_link_with_base_href():
    page = """<html><head><base href="http://www.example.org/papers/2004/"></head><body>
    <p><a href="../../index.html">Home</a> <a href="slides.ppt">Slides</a>
    <a href="smith04.pdf">Full text (PDF, 210 KB)</a></p></body></html>"""
    assert extract_pdf_link("http://www.example.org/pubs.php?id=3", page) == {
        "next_url": "http://www.example.org/papers/2004/smith04.pdf",
        "technique": "generic_pdf_link",
    }


def test_generic_link_labelled_download_pdf_without_pdf_suffix():
    page = """<html><body><a href="/about">About</a>
    <a class="btn" href="/paper/8812/file?format=original">Download PDF</a></body></html>"""
    assert extract_pdf_link("https://repo.example.net/paper/8812", page) == {
        "next_url": "https://repo.example.net/paper/8812/file?format=original",
        "technique": "generic_pdf_link",
    }


def test_meta_refresh():
    page = """<html><head><meta http-equiv="Refresh" content="0; URL='/content/pdf/fulltext.pdf'">
    <title>Redirecting</title></head><body>If you are not redirected, click <a href="/">here</a>.</body></html>"""
    assert extract_pdf_link("http://old.example.com/article/77", page) == {
        "next_url": "http://old.example.com/content/pdf/fulltext.pdf",
        "technique": "meta_refresh",
    }


def test_no_link_on_a_page_without_one():
    page = """<html><head><title>Login</title></head><body>
    <form action="/login" method="post"><input name="user"></form>
    <a href="javascript:void(0)">PDF</a> <a href="mailto:x@example.com">Contact PDF team</a>
    <a href="#top">Top</a></body></html>"""
    assert extract_pdf_link("https://pub.example.com/article/1", page) is None


def test_unparseable_bytes_do_not_crash():
    assert extract_pdf_link("https://pub.example.com/x", b"\xff\xfe<html\x00<a href=>>><<") is None


def test_relative_fragment_dropped_and_non_http_scheme_ignored():
    page = '<meta name="citation_pdf_url" content="ftp://files.example.com/a.pdf">' \
           '<a href="paper.pdf#page=2">PDF</a>'
    assert extract_pdf_link("https://x.example.com/dir/landing.html", page) == {
        "next_url": "https://x.example.com/dir/paper.pdf",
        "technique": "generic_pdf_link",
    }


# -- article pages that link other documents (tests/landing_pages/) ------------
# Each page is one rule's case: references and footnotes citing PDFs elsewhere
# (no answer), pages whose only PDF link is the article's own (that link), and
# pages with both (the article's own). docs/landing_pages.md has the table.

PAGES = Path(__file__).parent / "landing_pages"
NO_LINK = None
LANDING_CASES = [
    ("refs_bare_url.html", "https://eahr.example.org/articles/2291", NO_LINK),
    ("footnotes_pdf_label.html", "https://history-notes.example.com/2017/05/census-1911/", NO_LINK),
    ("refs_heading_only.html", "http://ceramics.example.jp/papers/77.html", NO_LINK),
    ("foreign_pdf_in_text.html", "https://agletters.example.com/articles/3318", NO_LINK),
    ("highwire_cites_other_journal.html", "http://ajrp.example.org/content/288/5/F1025.abstract", NO_LINK),
    ("dspace_related_items.html", "https://repo.delta.example.edu/handle/1/4410", NO_LINK),
    ("own_pdfs_many.html", "https://bag.example.org/bulletin/12/3/", NO_LINK),
    ("own_pdf_unlabelled.html", "https://www.ire.example.org/publications/wp/2014-07/",
     {"next_url": "https://www.ire.example.org/publications/wp/2014-07-ferreira.pdf",
      "technique": "sole_pdf_link"}),
    ("own_pdf_url_text.html", "http://tropical-ecology.example.edu/proc/2009/112.html",
     {"next_url": "http://www.tropical-ecology.example.edu/proc/2009/paper112.pdf",
      "technique": "sole_pdf_link"}),
    ("both_related_first.html", "https://paddyscience.example.org/articles/6021",
     {"next_url": "https://paddyscience.example.org/articles/6021/download.pdf",
      "technique": "generic_pdf_link"}),
    ("both_refs_first_own_unlabelled.html", "https://limnology-letters.example.org/2012/lake-ice",
     {"next_url": "https://limnology-letters.example.org/papers/2012/lake-ice.pdf",
      "technique": "sole_pdf_link"}),
    ("highwire_own_and_refs.html", "http://cardiacphys.example.org/content/97/2/210.full",
     {"next_url": "http://cardiacphys.example.org/content/97/2/210.full.pdf", "technique": "highwire"}),
    ("ojs_refs_before_galley.html", "https://jurnal.pendidikan.example.ac.id/index.php/jpt/article/view/874",
     {"next_url": "https://jurnal.pendidikan.example.ac.id/index.php/jpt/article/view/874/601",
      "technique": "ojs"}),
]


@pytest.mark.parametrize(("name", "page_url", "expected"), LANDING_CASES, ids=[c[0] for c in LANDING_CASES])
def test_article_pages_citing_other_pdfs(name, page_url, expected):
    assert extract_pdf_link(page_url, (PAGES / name).read_bytes()) == expected


def test_every_landing_page_file_has_a_case():
    assert sorted(p.name for p in PAGES.glob("*.html")) == sorted(c[0] for c in LANDING_CASES)


def test_bare_url_text_is_no_label_but_a_pdf_word_is():
    links = parse_links('<a href="https://x.example/a.pdf">https://x.example/a.pdf</a>'
                        '<a href="https://x.example/b.pdf" class="pdf-link">doi:10.1234/b</a>')
    assert [a.label for a in links.anchors] == ["", "pdf-link"]


@pytest.mark.parametrize("container", [
    '<ol class="ref-list">{}</ol>', '<div id="references">{}</div>', '<section class="footnotes">{}</section>',
    '<div role="doc-endnotes">{}</div>', '<aside epub:type="footnote">{}</aside>', "<cite>{}</cite>",
    '<div class="related">{}</div>', "<div><h3>Literature cited</h3><p>{}</p></div>",
])
def test_links_inside_citing_containers_are_not_followed(container):
    page = "<html><body><p>Text</p>" + container.format(
        '<a href="https://other.example.org/paper.pdf">Download PDF</a>') + "</body></html>"
    assert extract_pdf_link("https://journal.example.com/a/1", page) is None
    # the same link outside the container is the article's PDF
    outside = page.replace("<p>Text</p>", '<p><a href="/a/1.pdf">Download PDF</a></p>')
    assert extract_pdf_link("https://journal.example.com/a/1", outside) == {
        "next_url": "https://journal.example.com/a/1.pdf", "technique": "generic_pdf_link"}


def test_citing_container_ends_with_its_element():
    page = ('<div class="references"><ul><li><a href="https://o.example/x.pdf">PDF</a></ul></div>'
            '<div class="tools"><a href="https://cdn.example.net/files/1.pdf">PDF</a></div>')
    assert extract_pdf_link("https://j.example.com/a/1", page) == {
        "next_url": "https://cdn.example.net/files/1.pdf", "technique": "generic_pdf_link"}
