"""Luigi configuration options set for the length of a test, then put back as they were.

Why: the tasks read `[backfill]` and `[ingest]` from luigi's process-wide
configuration; a test that sets them must leave the next test the values
(or the absence of values) it found.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import luigi


@contextlib.contextmanager
def config_options(section: str, values: dict[str, str]) -> Iterator[None]:
    """Set `values` in luigi's `section` inside the block; restore or remove them after it."""
    config = luigi.configuration.get_config()
    saved = {k: config.get(section, k, None) for k in values}
    for k, v in values.items():
        config.set(section, k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                config.remove_option(section, k)
            else:
                config.set(section, k, v)
