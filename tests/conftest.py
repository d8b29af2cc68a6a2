"""Shared pytest fixtures. Each block says whose area it serves; add yours, keep the others."""

from __future__ import annotations

import pytest
from services import run_pywb

# --- pywb (web archive over HTTP) ----------------------------------------------------------


@pytest.fixture(scope="session")
def pywb(tmp_path_factory):
    """One pywb `wayback` server for the session; `pywb.serve(collection_dir, name)` publishes
    a pywb-layout collection and returns its base URL (http://127.0.0.1:PORT/<name>)."""
    with run_pywb(tmp_path_factory.mktemp("pywb-root")) as server:
        yield server
