"""Write `report.json` and `report.html` for a work directory, each atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipeline.jsonio import write_json
from pipeline.report.gather import gather_report
from pipeline.report.html import render_html

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def write_text(path: str | os.PathLike, text: str) -> None:
    """Temporary name, then rename: a reader never sees half a page."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
