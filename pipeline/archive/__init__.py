"""Web-archive access: CDX lookups and capture fetches, from a local collection or over HTTP."""
