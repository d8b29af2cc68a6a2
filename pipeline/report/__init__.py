"""The run report: what every step read, kept, rejected and why, and how long it took.

Why: after a run of days an operator (and whoever reviews the backfill) needs
one page that says where the 521k entities went: each step's in/out/rejects by
reason, the ingest status histogram per shard and overall, where duplicates
came from, what the import did, each step's duration and rate. Every figure is
read back from the targets' `.meta.json` sidecars and companion files, never
recomputed, so the report shows what the steps themselves checked.

`gather_report(workdir)` builds the plain dict (written as `report.json`);
`render_html(report)` turns it into one self-contained page with its charts
(inline SVG, one fixed colour per status: `palette`). The page also has the
run's total and per-step times, GROBID's outcomes and the messages each sink
stored. Plain code: no Luigi here.
"""

from pipeline.report.gather import gather_report
from pipeline.report.html import render_html
from pipeline.report.write import write_report

__all__ = ["gather_report", "render_html", "write_report"]
