"""A step's own checks: counts that must add up before anything is published.

Why a plain module: every step (Luigi task or plain function) fails the same
way when its books do not balance, and none of them should need Luigi for it.
"""

from __future__ import annotations

from typing import Any

from pipeline.errors import OperatorError


class StepFailed(OperatorError):
    """A step's own check failed (counts that do not add up, a QA gate): never publish."""


def check_balance(step: str, n_in: int, parts: dict[str, int]) -> None:
    """Fail loudly unless in = out + rejects (+ any other named part)."""
    total = sum(parts.values())
    if total != n_in:
        detail = " + ".join(f"{k} {v}" for k, v in parts.items())
        raise StepFailed(f"{step}: counts do not add up: in {n_in} != {detail} = {total}")


def format_counts(counts: dict[str, Any]) -> str:
    """`in=10, out=9, rejects=1`: the scalar counts of a step, for logs and `status`."""
    return ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list))
