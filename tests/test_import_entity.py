"""The per-entity rules of the import: fill only what is missing, clean URLs in order."""

import pytest

from pipeline.importer.entity import apply_file_meta, cleanup_urls, fill_missing, is_complete

FM = {"sha1hex": "a" * 40, "sha256hex": "b" * 64, "md5hex": "c" * 32, "size_bytes": 42,
      "mimetype": "application/pdf"}


def test_fill_only_missing_fields_and_never_overwrite():
    entity = {"ident": "x", "sha1": "a" * 40, "md5": "d" * 32, "mimetype": "application/x-pdf", "size": ""}
    out = fill_missing(entity, FM)
    assert out["md5"] == "d" * 32  # kept, though file_meta disagrees
    assert out["mimetype"] == "application/x-pdf"
    assert out["sha256"] == "b" * 64  # absent -> filled
    assert out["size"] == 42  # empty string counts as missing
    assert entity["size"] == ""  # the input is not modified


def test_is_complete_treats_empty_string_and_null_as_missing():
    full = {"md5": "d", "sha256": "e", "size": 1, "mimetype": "application/pdf"}
    assert is_complete(full)
    assert not is_complete({**full, "sha256": ""})
    assert not is_complete({**full, "size": None})
    assert not is_complete({k: v for k, v in full.items() if k != "mimetype"})


def test_social_becomes_academicsocial():
    urls = [{"url": "https://a/1", "rel": "social"}, {"url": "https://b/1", "rel": "web"}]
    assert cleanup_urls(urls) == [{"url": "https://a/1", "rel": "academicsocial"},
                                  {"url": "https://b/1", "rel": "web"}]


def test_exact_duplicates_dropped_keeping_first_and_order():
    urls = [{"url": "https://a/1", "rel": "web"}, {"url": "https://b/1", "rel": "web"},
            {"url": "https://a/1", "rel": "web"}, {"url": "https://a/1", "rel": "repository"}]
    assert cleanup_urls(urls) == [urls[0], urls[1], urls[3]]


def test_rename_happens_before_dedupe():
    # social and academicsocial of one URL become an exact duplicate only after the rename
    urls = [{"url": "https://a/1", "rel": "academicsocial"}, {"url": "https://a/1", "rel": "social"}]
    assert cleanup_urls(urls) == [{"url": "https://a/1", "rel": "academicsocial"}]


def test_http_dropped_when_https_twin_present_whatever_rel():
    urls = [{"url": "http://a/1.pdf", "rel": "web"}, {"url": "https://a/1.pdf", "rel": "publisher"},
            {"url": "http://b/2.pdf", "rel": "web"}, {"url": "https://b/2.pdf?x", "rel": "web"}]
    assert cleanup_urls(urls) == [urls[1], urls[2], urls[3]]


def test_https_never_dropped_for_http_twin():
    urls = [{"url": "https://a/1.pdf", "rel": "web"}, {"url": "http://a/1.pdf", "rel": "web"}]
    assert cleanup_urls(urls) == [urls[0]]


def test_apply_file_meta_without_urls_keeps_urls_absent():
    out = apply_file_meta({"ident": "x", "sha1": "a" * 40}, FM)
    assert "urls" not in out
    assert is_complete(out)


# -- fatcat's generic file cleanups (docs/url_cleanups.md has the table) -----------
# Cases written after fatcat's own importer tests (tests/import_file_generic.py in
# fatcat's repository), with this project's own URLs: (case, urls, expected).

def _u(url, rel="web"):
    return {"url": url, "rel": rel}


WB = "https://web.archive.org/web"
FATCAT_CLEANUP_CASES = [
    ("no urls", [], []),
    ("social becomes academicsocial",
     [_u("https://scholar-share.example.com/p/77.pdf", "social")],
     [_u("https://scholar-share.example.com/p/77.pdf", "academicsocial")]),
    ("archive.org download: repository becomes archive",
     [_u("https://archive.org/download/conf-proc-1998/paper12.pdf", "repository")],
     [_u("https://archive.org/download/conf-proc-1998/paper12.pdf", "archive")]),
    ("archive.org download with another rel keeps it",
     [_u("https://archive.org/download/conf-proc-1998/paper12.pdf", "web")],
     [_u("https://archive.org/download/conf-proc-1998/paper12.pdf", "web")]),
    ("renamed to archive, then an exact duplicate",
     [_u("https://archive.org/download/x1/a.pdf", "repository"), _u("https://archive.org/download/x1/a.pdf", "archive")],
     [_u("https://archive.org/download/x1/a.pdf", "archive")]),
    (":80 twin dropped beside the URL without it",
     [_u("http://maths.example.edu/~kim/notes/ergodic.pdf"), _u("http://maths.example.edu:80/~kim/notes/ergodic.pdf"),
      _u("http://lab.example.org:80/tr/17.pdf"), _u("http://lab.example.org/tr/17.pdf")],
     [_u("http://maths.example.edu/~kim/notes/ergodic.pdf"), _u("http://lab.example.org/tr/17.pdf")]),
    (":80 alone is kept",
     [_u("http://lab.example.org:80/tr/17.pdf")],
     [_u("http://lab.example.org:80/tr/17.pdf")]),
    ("http twin dropped, wayback URLs kept",
     [_u("https://data.example.gov/reports/survey.pdf"), _u("http://data.example.gov/reports/survey.pdf"),
      _u(f"{WB}/20150101000000/http://data.example.gov/reports/survey.pdf", "webarchive")],
     [_u("https://data.example.gov/reports/survey.pdf"),
      _u(f"{WB}/20150101000000/http://data.example.gov/reports/survey.pdf", "webarchive")]),
    ("http twin dropped whatever its rel",
     [_u("http://repo.example.ac.uk/1/a.pdf", "repository"), _u("https://repo.example.ac.uk/1/a.pdf"),
      _u("http://repo.example.ac.uk/1/a.pdf")],
     [_u("https://repo.example.ac.uk/1/a.pdf")]),
    ("wayback /2017/ dropped beside the full timestamp of the same target",
     [_u(f"{WB}/2017/http://revista.example.br/index.php/r/article/download/51/88", "webarchive"),
      _u(f"{WB}/20170922010835/http://revista.example.br/index.php/r/article/download/51/88", "webarchive")],
     [_u(f"{WB}/20170922010835/http://revista.example.br/index.php/r/article/download/51/88", "webarchive")]),
    ("wayback /2017/ kept beside a capture of another target",
     [_u(f"{WB}/2017/http://revista.example.br/a/51.pdf", "webarchive"),
      _u(f"{WB}/20170922010835/http://revista.example.br/a/52.pdf", "webarchive")],
     [_u(f"{WB}/2017/http://revista.example.br/a/51.pdf", "webarchive"),
      _u(f"{WB}/20170922010835/http://revista.example.br/a/52.pdf", "webarchive")]),
    ("wayback /2017/ kept beside a timestamp shorter than 10 digits",
     [_u(f"{WB}/2017/http://revista.example.br/a/51.pdf", "webarchive"),
      _u(f"{WB}/20170922/http://revista.example.br/a/51.pdf", "webarchive")],
     [_u(f"{WB}/2017/http://revista.example.br/a/51.pdf", "webarchive"),
      _u(f"{WB}/20170922/http://revista.example.br/a/51.pdf", "webarchive")]),
]


@pytest.mark.parametrize(("case", "urls", "expected"), FATCAT_CLEANUP_CASES,
                         ids=[c[0] for c in FATCAT_CLEANUP_CASES])
def test_fatcat_generic_file_cleanups(case, urls, expected):
    before = [dict(u) for u in urls]
    assert cleanup_urls(urls) == expected
    assert urls == before  # the input is not modified


def test_cleanups_are_idempotent():
    for _case, _urls, expected in FATCAT_CLEANUP_CASES:
        assert cleanup_urls(expected) == expected


def test_a_url_list_no_rule_changes_is_kept_and_every_list_gets_the_full_rules(monkeypatch):
    """`cleanup_urls` returns a list no rule can change as it is (no copies); for any list
    its result is that of the full rules (`_untouched` forced False)."""
    import random

    from pipeline.importer import entity as entity_module
    pool = ["https://a.org/1.pdf", "http://a.org/1.pdf", "http://a.org:80/1.pdf", "https://a.org:80/1.pdf",
            "https://archive.org/download/x/1.pdf", "https://web.archive.org/web/2017/https://a.org/1.pdf",
            "https://web.archive.org/web/20170102030405/https://a.org/1.pdf", "https://b.org/2"]
    rels = ["web", "social", "repository", "webarchive", "archive", "academicsocial"]
    rnd = random.Random(20)
    lists = [[{"url": rnd.choice(pool), "rel": rnd.choice(rels)} for _ in range(rnd.randint(0, 4))]
             for _ in range(3000)]
    got = [cleanup_urls(urls) for urls in lists]
    kept = [urls for urls, out in zip(lists, got, strict=True) if out is urls]
    assert kept and len(kept) < len(lists)  # both paths taken
    assert [{"url": "https://b.org/2", "rel": "web"}] in kept
    monkeypatch.setattr(entity_module, "_untouched", lambda urls: False)
    assert got == [cleanup_urls(urls) for urls in lists]
