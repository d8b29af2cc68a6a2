"""filemeta-backfill: fill missing file-level metadata in a scholarly catalog from a web archive."""

__version__ = "0.1.0"
