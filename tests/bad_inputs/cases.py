"""The bad-input corpus: damaged versions of every input, with what each must give.

A case is (name, kind, content, expected). `content` is the damaged line (text or
bytes) put between good lines, or a whole file (`whole=True`); `expected` is either
`reject:<reason>` (a rejects line with that reason at the damaged line number) or
`error:<text>` (a clear error mentioning the text, and the file name).
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # export | seed | extra | file_hashes | cdxj | cdx | config
    content: bytes | str | dict
    expected: str
    whole: bool = False  # content is the whole file, not one line among good ones

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.name}"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def truncated_gz(data: bytes) -> bytes:
    blob = gz(data)
    return blob[: len(blob) // 2]


def bomb(n_bytes: int, line: bytes = b"") -> bytes:
    """A small gzip that inflates to `n_bytes` of one line without a newline."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as f:
        f.write(b'{"ident": "')
        chunk = b"a" * (1 << 20)
        for _ in range(n_bytes >> 20):
            f.write(chunk)
        f.write(line)
    return out.getvalue()


def _j(obj) -> str:
    return json.dumps(obj, sort_keys=True)


ENTITY = {"ident": "aaaaaaaaaaaaaaaaaaaaaaaaaz", "state": "active", "mimetype": "application/pdf",
          "revision": "00000000-0000-4000-8000-000000000099", "sha1": "9" * 40,
          "urls": [{"url": "http://journal.example/bad.pdf", "rel": "web"}]}


def entity(**kw) -> str:
    return _j({**ENTITY, **kw})  # ensure_ascii: a lone surrogate is written as its escape


GOOD_URL = ENTITY["urls"][0]


EXPORT = [
    Case("invalid-json", "export", '{"ident": "abc", "sha1": ', "reject:invalid-json"),
    Case("array-not-object", "export", "[1, 2, 3]", "reject:not-an-object"),
    Case("string-not-object", "export", '"just text"', "reject:not-an-object"),
    Case("null-not-object", "export", "null", "reject:not-an-object"),
    Case("invalid-utf8", "export", b'{"ident": "\xff\xfe", "sha1": "abc"}', "reject:invalid-utf8"),
    Case("utf8-encoded-surrogate", "export", b'{"ident": "\xed\xa0\x80"}', "reject:invalid-utf8"),
    Case("byte-order-mark", "export", "\ufeff" + entity(), "reject:invalid-json"),
    Case("deep-nesting", "export", "[" * 100_000 + "]" * 100_000, "reject:invalid-json"),
    Case("huge-line", "export", '{"pad": "' + "x" * (17 * 1024 * 1024) + '"}', "reject:line-too-long"),
    Case("sha1-int", "export", entity(sha1=12345), "reject:bad-sha1"),
    # a malformed URL list is rejected where the entity enters, even beside a usable URL: the
    # request step would skip the bad item, and the import's URL cleanup break on it
    Case("urls-int", "export", entity(urls=5), "reject:bad-urls"),
    Case("url-int", "export", entity(urls=[{"url": 5}]), "reject:bad-urls"),
    Case("urls-string", "export", entity(urls="http://journal.example/x.pdf"), "reject:bad-urls"),
    Case("url-item-string", "export", entity(urls=["http://journal.example/x.pdf"]),
         "reject:bad-urls"),
    Case("url-item-int-after-good", "export", entity(urls=[GOOD_URL, 5]), "reject:bad-urls"),
    Case("url-item-string-after-good", "export", entity(urls=[GOOD_URL, "http://j.example/y.pdf"]),
         "reject:bad-urls"),
    Case("url-item-null-after-good", "export", entity(urls=[GOOD_URL, None]), "reject:bad-urls"),
    Case("url-list-after-good", "export", entity(urls=[GOOD_URL, {"url": ["http://j.example/y"],
                                                                  "rel": "web"}]), "reject:bad-urls"),
    Case("rel-list-after-good", "export", entity(urls=[GOOD_URL, {"url": "http://j.example/y",
                                                                  "rel": ["web"]}]), "reject:bad-urls"),
    Case("rel-missing", "export", entity(urls=[{"url": "http://j.example/y.pdf"}]), "reject:bad-urls"),
    # JSON the two decoders used to judge apart, or that no writer can write back
    Case("deep-nesting-in-object", "export", entity()[:-1] + ', "extra": ' + "[" * 1000 + "]" * 1000 + "}",
         "reject:invalid-json"),
    Case("huge-int", "export", entity()[:-1] + ', "size": ' + "1" * 5000 + "}", "reject:invalid-json"),
    Case("nan-size", "export", entity()[:-1] + ', "size": NaN}', "reject:invalid-json"),
    Case("infinity-in-extra", "export", entity()[:-1] + ', "extra": {"score": -Infinity}}',
         "reject:invalid-json"),
    Case("lone-surrogate", "export", entity(extra={"title": "\udc00"}), "reject:invalid-json"),
    Case("lone-surrogate-in-sha1", "export", entity(sha1="\ud800" + "9" * 39), "reject:invalid-json"),
    Case("url-bad-authority", "export", entity(urls=[{"url": "http://[::1/x.pdf", "rel": "web"}]),
         "reject:no-usable-url"),
    Case("url-ftp", "export", entity(urls=[{"url": "ftp://journal.example/x.pdf", "rel": "web"}]),
         "reject:no-usable-url"),
    Case("mimetype-int", "export", entity(mimetype=7), "reject:not-pdf-mimetype"),
    Case("state-list", "export", entity(state=["active"]), "reject:not-active"),
    Case("truncated-gzip", "export", truncated_gz(("\n".join(entity() for _ in range(2000)) + "\n").encode()),
         "error:truncated", whole=True),
    Case("gzip-bomb", "export", bomb(64 << 20), "reject:line-too-long", whole=True),
    Case("binary-garbage", "export", bytes(range(256)) * 4, "reject:invalid-utf8", whole=True),
]

SEED = [  # the export as the embedded catalog's seed (`catalog load`)
    Case("duplicate-ident", "seed", _j({**ENTITY, "ident": "aaaaaaaaaaaaaaaaaaaaaaaaaa"}),
         "reject:duplicate-ident"),
    Case("bad-ident", "seed", entity(ident="NOT-AN-IDENT"), "reject:bad-ident"),
    Case("ident-int", "seed", entity(ident=5), "reject:bad-ident"),
    Case("bad-state", "seed", entity(state="sleeping"), "reject:bad-state"),
    Case("revision-int", "seed", entity(revision=7), "reject:bad-revision"),
    Case("state-int", "seed", entity(state=1), "reject:bad-state"),
    Case("invalid-utf8", "seed", b'{"ident": "\xc3\x28"}', "reject:invalid-utf8"),
    Case("url-item-int", "seed", entity(urls=[GOOD_URL, 5]), "reject:bad-urls"),
    Case("url-item-null", "seed", entity(urls=[GOOD_URL, None]), "reject:bad-urls"),
    Case("url-list", "seed", entity(urls=[{"url": ["http://j.example/y"], "rel": "web"}]),
         "reject:bad-urls"),
    Case("rel-list", "seed", entity(urls=[{"url": "http://j.example/y", "rel": ["web"]}]),
         "reject:bad-urls"),
    Case("urls-string", "seed", entity(urls="http://j.example/y.pdf"), "reject:bad-urls"),
    Case("lone-surrogate", "seed", entity(extra={"title": "\udc00"}), "reject:invalid-json"),
    Case("lone-surrogate-in-ident", "seed", entity(ident="\udc00"), "reject:invalid-json"),
    Case("deep-nesting-in-object", "seed", entity()[:-1] + ', "extra": ' + "[" * 1000 + "]" * 1000 + "}",
         "reject:invalid-json"),
    Case("huge-int", "seed", entity()[:-1] + ', "size": ' + "1" * 5000 + "}", "reject:invalid-json"),
    Case("nan-size", "seed", entity()[:-1] + ', "size": NaN}', "reject:invalid-json"),
    Case("beyond-double", "seed", entity()[:-1] + ', "size": 1e999}', "reject:bad-number"),
    Case("beyond-double-bad-ident", "seed", entity(ident="BAD")[:-1] + ', "size": 1e999}',
         "reject:bad-ident"),
]


def result(sha1="9" * 40, **kw) -> str:
    r = {"request": {"base_url": "http://journal.example/x.pdf", "ext_ids": {"sha1": sha1},
                     "ingest_type": "pdf"},
         "hit": True, "status": "success",
         "file_meta": {"sha1hex": sha1, "sha256hex": "8" * 64, "md5hex": "7" * 32,
                       "size_bytes": 10, "mimetype": "application/pdf"}}
    r.update(kw)
    return _j(r)


EXTRA = [
    Case("invalid-json", "extra", '{"request": {', "reject:invalid-json"),
    Case("not-object", "extra", "[]", "reject:not-an-object"),
    Case("invalid-utf8", "extra", b'{"status": "\x80"}', "reject:invalid-utf8"),
    Case("sha1-int", "extra", result(sha1=12345), "reject:bad-sha1"),
    Case("request-int", "extra", result(request=5), "reject:bad-result"),
    Case("ext-ids-list", "extra", result(request={"ext_ids": ["x"]}), "reject:bad-result"),
    Case("file-meta-sha1-int", "extra",
         result(file_meta={"sha1hex": 12345, "sha256hex": "8" * 64}), "reject:bad-sha1"),
    Case("file-meta-list", "extra", result(file_meta=[1]), "reject:no-file-meta"),
    Case("size-nan", "extra", result().replace('"size_bytes": 10', '"size_bytes": NaN'),
         "reject:invalid-json"),
    Case("size-infinity", "extra", result().replace('"size_bytes": 10', '"size_bytes": Infinity'),
         "reject:invalid-json"),
    Case("size-beyond-double", "extra", result().replace('"size_bytes": 10', '"size_bytes": 1e999'),
         "reject:bad-file-meta"),
    Case("mimetype-beyond-double", "extra",
         result().replace('"mimetype": "application/pdf"', '"mimetype": -1e999'), "reject:bad-file-meta"),
    Case("huge-int", "extra", result()[:-1] + ', "cdx": {"warc_offset": ' + "7" * 5000 + "}}",
         "reject:invalid-json"),
    Case("deep-nesting-in-object", "extra", result()[:-1] + ', "hops": ' + "[" * 1000 + "]" * 1000 + "}",
         "reject:invalid-json"),
    Case("lone-surrogate", "extra", result(error_message="\udc00"), "reject:invalid-json"),
    Case("lone-surrogate-in-mimetype", "extra",
         result().replace('"mimetype": "application/pdf"', '"mimetype": "application/\\udc00"'),
         "reject:invalid-json"),
    Case("truncated-gzip", "extra", truncated_gz(("\n".join(result() for _ in range(3000)) + "\n").encode()),
         "error:truncated", whole=True),
    Case("empty-gzip-member", "extra", b"\x1f\x8b", "error:truncated", whole=True),
]

FILE_HASHES = [
    Case("wrong-field-count", "file_hashes", "aaaa\trev\tsha1", "malformed"),
    Case("too-many-fields", "file_hashes", "a\tb\tc\td\te\tf", "malformed"),
    Case("invalid-utf8", "file_hashes", b"a\tb\t\xff\td\te", "malformed"),
    Case("truncated-gzip", "file_hashes",
         truncated_gz(b"".join(b"i%d\tr\ts\t\tm\n" % i for i in range(5000))), "error:truncated",
         whole=True),
]

ALL = EXPORT + SEED + EXTRA + FILE_HASHES
