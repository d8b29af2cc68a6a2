"""Best-capture order (docs/statuses.md) and the URL rules."""

from __future__ import annotations

from dataclasses import replace

from fakes import row_for

from pipeline.ingest.capture import best_capture
from pipeline.ingest.urls import join_location, matching_pattern

URL = "http://x.example.org/a.pdf"
PDF = "application/pdf"


def row(dt="20200101000000", status=200, mimetype=PDF, warc_path="c-00000.warc.gz"):
    return row_for(URL, b"x", dt=dt, status=status, mimetype=mimetype, warc_path=warc_path)


def test_no_rows():
    assert best_capture([], PDF) is None


def test_good_status_beats_newer_bad_status():
    old_ok = row(dt="20100101000000", status=200)
    assert best_capture([row(dt="20220101000000", status=404), old_ok,
                         row(dt="20220101000000", status=302)], PDF) == old_ok


def test_226_counts_as_good_and_lower_code_wins():
    r200, r226 = row(status=200), row(status=226)
    assert best_capture([r226, r200], PDF) == r200
    r301, r302 = row(status=301), row(status=302)
    assert best_capture([r302, r301], PDF) == r301
    assert best_capture([r302, r226], PDF) == r226


def test_wanted_mimetype_then_not_revisit():
    html = row(mimetype="text/html", dt="20210101000000")
    pdf = row(mimetype=PDF, dt="20100101000000")
    assert best_capture([html, pdf], PDF) == pdf
    revisit = row(mimetype="warc/revisit", status=200, dt="20210101000000")
    assert best_capture([revisit, pdf], "warc/revisit") == revisit  # mimetype criterion first
    same_mt_rev = replace(row(dt="20210101000000"), mimetype="warc/revisit")
    assert best_capture([same_mt_rev, html], "text/html") == html


def test_revisit_without_status_ranks_below_any_status():
    rev = row(status=None, mimetype="warc/revisit", dt="20220101000000")
    r404 = row(status=404, dt="20100101000000")
    assert best_capture([rev, r404], PDF) == r404
    assert best_capture([rev], PDF) == rev


def test_year_month_then_warc_path_then_full_timestamp():
    newer_month_no_path = row(dt="20200301000000", warc_path="-")
    older_month = row(dt="20200201000000")
    assert best_capture([older_month, newer_month_no_path], PDF) == newer_month_no_path
    same_month_no_path = row(dt="20200315000000", warc_path="-")
    same_month_path = row(dt="20200302000000")
    assert best_capture([same_month_no_path, same_month_path], PDF) == same_month_path
    a, b = row(dt="20200302000000"), row(dt="20200302120000")
    assert best_capture([a, b], PDF) == b and best_capture([b, a], PDF) == b


def test_tie_keeps_first():
    a = row()
    b = replace(row(), warc_offset=99)
    assert best_capture([a, b], PDF) is a


def test_join_location():
    base = "http://host.example.org/a/b/page.html?x=1"
    assert join_location(base, "/c/d.pdf") == "http://host.example.org/c/d.pdf"
    assert join_location(base, "d.pdf") == "http://host.example.org/a/b/d.pdf"
    assert join_location(base, "../d.pdf?y=2") == "http://host.example.org/a/d.pdf?y=2"
    assert join_location(base, "//cdn.example.net/f.pdf") == "http://cdn.example.net/f.pdf"
    assert join_location(base, "https://other.example.com/f.pdf#p=1") == "https://other.example.com/f.pdf"
    assert join_location(base, "?download=1") == "http://host.example.org/a/b/page.html?download=1"
    assert join_location(base, "  /spaced.pdf \r\n") == "http://host.example.org/spaced.pdf"
    assert join_location(base, None) is None
    assert join_location(base, "") is None
    assert join_location(base, "javascript:alert(1)") is None
    assert join_location(base, "ftp://files.example.org/x.pdf") is None


def test_matching_pattern():
    assert matching_pattern("https://doi.org/10.2307/1", ["orcid.org", "doi.org/10.2307/"]) == "doi.org/10.2307/"
    assert matching_pattern("https://doi.org/10.1000/1", ["orcid.org", "doi.org/10.2307/"]) is None
    assert matching_pattern("https://x.org/", ["", "  "]) is None


def test_settings_from_the_ingest_section():
    from luigi_config import config_options

    from pipeline import config
    from pipeline.ingest.settings import IngestSettings

    options = {"max_hops": "3", "url_blocklist": "example.org/private,\n  ://intranet. ,",
               "cookie_patterns": "cookieWall"}
    with config_options("ingest", options):
        s = IngestSettings.from_config(config.ingest())
    assert s.max_hops == 3 and s.max_redirects == 25 and s.cdx_limit == 25
    assert s.blocklist == ("example.org/private", "://intranet.")
    assert s.cookie_patterns == ("cookieWall",)
    assert IngestSettings().blocklist[:2] == ("://localhost", "://127.0.0.1")
