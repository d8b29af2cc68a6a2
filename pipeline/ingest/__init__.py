"""Ingest: fetch each request's file from the web archive and describe it (docs/data.md and docs/statuses.md)."""
