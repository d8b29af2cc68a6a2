"""The import's counters: their names, their starting order, and the sums they must make."""

from __future__ import annotations

from collections import Counter

from pipeline.checks import StepFailed

# an entity another writer changed between this run's lookup and its edit or accept
CONCURRENT = "skip-concurrent-edit"
BASE_COUNTERS = ("total", "skip", "insert", "update", "exists")


def new_counter() -> Counter:
    """The counters in the runbook's order: `Counter({'total': ..., 'skip': 0, 'insert': 0, ...})`."""
    return Counter({k: 0 for k in BASE_COUNTERS})


def check_counts(counts: Counter) -> None:
    """Every record is counted exactly once (a failure here is a bug, never an input)."""
    parts = ["skip", "insert", "update", "exists", "skip-no-match", "skip-existing-complete",
             "skip-bad-entity", CONCURRENT]
    if counts["total"] != sum(counts[p] for p in parts):
        raise StepFailed(f"import counters do not add up: {counts!r}")
    want_fails = sum(v for k, v in counts.items() if k in ("skip-missing-field", "skip-malformed-field"))
    if counts["skip"] != want_fails:
        raise StepFailed(f"import counters: skip != want failures: {counts!r}")
