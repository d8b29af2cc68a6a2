"""The report as one self-contained HTML page (tables plus embedded PNG charts).

Why hand-written HTML: a page of a few tables and images needs no template
engine; every value is escaped, and the page loads nothing from the network
(operators open it from shared storage or a mail attachment).
"""

from __future__ import annotations

import html
from typing import Any

from pipeline.report.charts import all_charts

CHART_TITLES = {
    "steps": "Records per step",
    "status_overall": "Ingest status, all shards",
    "status_per_shard": "Ingest status per shard",
    "status_sample": "Ingest status, warm-up sample",
    "durations": "Duration of each step",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
.text { text-align: left; display: block; }
.bad { color: #b71c1c; font-weight: bold; }
.ok { color: #2e7d32; }
figure { margin: 1em 0; }
figcaption { font-weight: bold; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if value < 1 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return _e(value)


def _reasons(reasons: dict[str, int]) -> str:
    lines = "<br>".join(f"{_e(k)}: {_num(v)}" for k, v in sorted(reasons.items()))
    return f'<span class="text">{lines}</span>' if lines else ""


def _table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _steps_table(report: dict) -> str:
    rows = []
    for r in report["steps"]:
        label = r["step"]
        if "shard" in r["params"]:
            label += f" {int(r['params']['shard']):03d}/{int(r['params']['shards']):03d}"
        rows.append([_e(label), _num(r["in"]), _num(r["out"]), _num(r["rejects"]),
                     _reasons(r["rejects_by_reason"]), _num(r["seconds"]), _num(r["rate_per_s"]),
                     f'<span class="text">{_e(r["target"])}</span>'])
    return _table(["step", "in", "out", "rejects", "rejects by reason", "seconds", "in/s",
                   "target"], rows, "steps")


def _shards_table(report: dict) -> str:
    ingest = report["ingest"]
    rows = [[f"shard {s['shard']:03d}", _num(s["total"]), _num(s["success"]),
             _num(s["success_rate"]), _reasons({k: v for k, v in s["status"].items()
                                                if k != "success"})]
            for s in ingest["shards"]]
    o = ingest["overall"]
    rows.append(["<b>all shards</b>", _num(o["total"]), _num(o["success"]), _num(o["success_rate"]),
                 _reasons({k: v for k, v in o["status"].items() if k != "success"})])
    return _table(["shard", "requests", "success", "success rate", "other statuses"], rows, "shards")


def _kv_table(values: dict, table_id: str) -> str:
    rows = [[_e(k), _num(v) if not isinstance(v, dict | list) else _e(v)]
            for k, v in sorted(values.items())]
    return _table(["counter", "value"], rows, table_id)


def _duplicates(dupes: dict) -> str:
    scalars = {k: v for k, v in dupes.items() if not isinstance(v, dict | list)}
    out = _kv_table(scalars, "duplicates")
    most = dupes.get("most_duplicated") or []
    if most:
        rows = [[_e(m.get("sha1hex")), _num(m.get("lines")), _num(m.get("requests"))] for m in most]
        out += _table(["most duplicated sha1", "lines", "requests"], rows, "most-duplicated")
    return out


def _consistency(checks: list[dict]) -> str:
    rows = [[_e(c["check"]), _num(c["expected"]), _num(c["found"]),
             '<span class="ok">ok</span>' if c["ok"] else '<span class="bad">MISMATCH</span>']
            for c in checks]
    return _table(["hand-off", "expected", "found", ""], rows, "consistency")


def render_html(report: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The page for `report` (charts drawn here unless given)."""
    charts = all_charts(report) if charts is None else charts
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Backfill run report: {_e(report['workdir'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Backfill run report</h1>",
        f"<p>Work directory <code>{_e(report['workdir'])}</code>, generated {_e(report['generated'])} "
        f"by version {_e(report['version'])}. Every figure is read from the steps' "
        "<code>.meta.json</code> sidecars.</p>",
        "<h2>Steps</h2>", _steps_table(report),
    ]
    if report["consistency"]:
        parts += ["<h2>Hand-offs between steps</h2>", _consistency(report["consistency"])]
    if report["ingest"]["shards"]:
        parts += ["<h2>Ingest</h2>", _shards_table(report)]
    for name, uri in charts.items():
        title = CHART_TITLES.get(name, name)
        parts.append(f'<figure id="chart-{_e(name)}"><figcaption>{_e(title)}</figcaption>'
                     f'<img alt="{_e(title)}" src="{uri}"></figure>')
    if report.get("duplicates"):
        parts += ["<h2>Duplicates</h2>", _duplicates(report["duplicates"])]
    imp = report.get("import") or {}
    if imp.get("import"):
        parts += ["<h2>Catalog import</h2>",
                  _kv_table({k: v for k, v in imp["import"].items() if k != "recovery"}, "import")]
    if imp.get("sample_dry_run"):
        parts += ["<h3>Sample dry run</h3>", _kv_table(imp["sample_dry_run"], "import-sample")]
    if report.get("count_check"):
        parts += ["<h2>Count check against file_hashes</h2>",
                  _kv_table(report["count_check"], "count-check")]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
