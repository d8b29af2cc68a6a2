"""Draw the reproducible warm-up sample of ingest requests.

The sample runs before the full ingest as a QA gate (docs/architecture.md step 3). Same
input, size and seed give the same bytes: the chosen line numbers come from a
seeded `random.Random` and the lines are written in input order, so the
sample can be diffed between runs and its results compared.
"""

from __future__ import annotations

import random

from pipeline.jsonio import AtomicWriter, InputError, count_lines, iter_lines
from pipeline.jsonline import BadLine


def choose_lines(total: int, size: int, seed: int) -> set[int]:
    """Indices (0-based, over non-blank lines) of the sample; all lines when size >= total."""
    if size >= total:
        return set(range(total))
    return set(random.Random(seed).sample(range(total), size))


def draw_sample(requests_path: str, out_path: str, size: int, seed: int) -> dict:
    """Write `size` requests chosen with `seed`, in input order, as plain JSON lines."""
    if size < 0:
        raise ValueError(f"sample size must be >= 0, got {size}")
    total = count_lines(requests_path)
    chosen = choose_lines(total, size, seed)
    with AtomicWriter(out_path) as out:
        for i, (n, line) in enumerate(iter_lines(requests_path)):
            if isinstance(line, BadLine):  # our own output: a damaged file, not a record
                raise InputError(f"{requests_path}: line {n}: {line.reason} ({line.detail})")
            if i in chosen:
                out.write_line(line)
        if out.lines != len(chosen):
            raise RuntimeError(f"sample: wrote {out.lines} lines, expected {len(chosen)}")
        out.commit()
    return {"in": total, "out": out.lines, "size": size, "seed": seed}
