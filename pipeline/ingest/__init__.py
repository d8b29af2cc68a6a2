"""Ingest: fetch each request's file from the web archive and describe it (SPEC §2.3-§2.5)."""
