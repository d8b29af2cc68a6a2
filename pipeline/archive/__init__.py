"""Web-archive access: CDX lookups and capture fetches, from a local collection or over HTTP.

`open_archive(spec, settings)` returns a (CdxClient, ContentClient) pair; the
types they speak are in `pipeline.archive.model`.
"""

from pipeline.archive.factory import open_archive

__all__ = ["open_archive"]
