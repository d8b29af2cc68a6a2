"""The per-entity rules of the import: fill only what is missing, clean URLs in order."""

from pipeline.catalog.entity import apply_file_meta, cleanup_urls, fill_missing, is_complete

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
