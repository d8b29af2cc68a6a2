"""Write `report.json` and `report.html` for a work directory, each atomically."""

from __future__ import annotations

import os
from typing import Any

from pipeline.jsonio import write_json, write_text
from pipeline.report.gather import gather_report
from pipeline.report.html import render_html


def write_report(workdir: str | os.PathLike, json_path: str | os.PathLike,
                 html_path: str | os.PathLike, targets: list[str] | None = None) -> dict[str, Any]:
    """Gather the report of `workdir` (from `targets`' sidecars, or all found), write both files.

    The page is written first and the JSON last, so `report.json` existing
    means both are complete. Returns the report dict.
    """
    report = gather_report(workdir, targets)
    write_text(html_path, render_html(report))
    write_json(json_path, report)
    return report
