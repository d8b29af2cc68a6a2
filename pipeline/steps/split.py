"""An output file and its rejects file, written and published together.

Why: every filtering step splits its input into kept records and rejects with
reasons, and must only publish when the two add up to what it read. Keeping
that bookkeeping in one place means no step can forget to count a reject,
check the balance, or publish one file without the other.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pipeline.checks import check_balance
from pipeline.jsonio import AtomicWriter, reject_bad_line, reject_record, reject_text
from pipeline.jsonline import BadLine


class SplitWriter:
    """`keep_raw()` to the output, `reject*()` to the rejects file; `publish(n_in)` checks and renames."""

    def __init__(self, step: str, out_path: str, rejects_path: str):
        self.step = step
        self.out = AtomicWriter(out_path)
        self.rejects = AtomicWriter(rejects_path)
        self.reasons: Counter = Counter()

    def __enter__(self) -> SplitWriter:
        self.out.__enter__()
        self.rejects.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.rejects.__exit__(*exc)
        self.out.__exit__(*exc)

    def keep_raw(self, line: bytes) -> None:
        self.out.write_raw(line)

    def keep_joined(self, data: bytes, lines: int) -> None:
        self.out.write_joined(data, lines)

    def reject_joined(self, data: bytes, lines: int, reasons: Counter) -> None:
        """`lines` reject lines given joined, each with its newline (a block filtered
        elsewhere), and the reasons they were rejected for."""
        self.rejects.write_joined(data, lines)
        self.reasons.update(reasons)

    def reject(self, reason: str, line: int, source: str, record: Any) -> None:
        self.reasons[reason] += 1
        self.rejects.write_obj(reject_record(reason, line, source, record=record))

    def reject_text(self, reason: str, line: int, source: str, record_json: str,
                    detail: str | None = None) -> None:
        """Like `reject`, with the record as the JSON text it was read as (already known to
        parse): the line is embedded as is instead of being serialised again."""
        self.reasons[reason] += 1
        self.rejects.write_line(reject_text(reason, line, source, record_json, detail))

    def reject_bad_line(self, bad: BadLine, source: str) -> None:
        self.reasons[bad.reason] += 1
        self.rejects.write_obj(reject_bad_line(bad, source))

    def publish(self, n_in: int, **other: int) -> dict:
        """Fail unless in = out + rejects (+ other named parts), then publish both files."""
        check_balance(self.step, n_in, {"out": self.out.lines, "rejects": self.rejects.lines, **other})
        self.out.commit()
        self.rejects.commit()
        return {
            "in": n_in,
            "out": self.out.lines,
            **other,
            "rejects": self.rejects.lines,
            "rejects_by_reason": dict(sorted(self.reasons.items())),
        }
