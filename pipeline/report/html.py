"""The report as one self-contained HTML page (tables plus inline SVG charts).

Why hand-written HTML: a page of a few tables and images needs no template
engine; every value is escaped, and the page loads nothing from the network
(operators open it from shared storage or a mail attachment). It is for
someone who looks rather than reads: a row of tiles with the run's few key
numbers first, each chart in its section, and no Python value printed raw
(booleans are yes/no, dicts and lists are small tables).
"""

from __future__ import annotations

import html
from typing import Any

from pipeline.report.charts import all_charts

CHART_TITLES = {
    "steps": "Records in, out and rejected per step",
    "status_overall": "Ingest status, all shards (log scale)",
    "failures_overall": "Failed requests by status, all shards",
    "failures_per_shard": "Failed requests per shard, by status",
    "status_sample": "Ingest status, warm-up sample (log scale)",
    "grobid": "GROBID status, all shards (log scale)",
    "durations": "Duration of each step",
}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
#shards td:last-child { max-width: 640px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
.text { text-align: left; display: block; }
.bad { color: #b71c1c; font-weight: bold; }
.ok { color: #2e7d32; }
figure { margin: 1em 0; }
figcaption { font-weight: bold; }
.glance { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.glance div { border: 1px solid #ccc; border-radius: 6px; padding: 0.4em 0.9em; }
.glance b { display: block; font-size: 1.5em; }
table.inner td { border: none; padding: 0 6px 0 0; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):  # before int: True is an int, and "1" says nothing
        return "yes" if value else "no"
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


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.1f}%"


def _inline(counts: dict[str, int]) -> str:
    """`status count` pairs on wrapping lines, the most frequent first (a compact table cell)."""
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return '<span class="text">' + ", ".join(f"{_e(k)}&nbsp;{_num(v)}" for k, v in items) + "</span>"


def _shards_table(report: dict) -> str:
    ingest = report["ingest"]
    rows = [[f"shard {s['shard']:03d}", _num(s["total"]), _num(s["success"]),
             _percent(s["success_rate"]), _inline({k: v for k, v in s["status"].items()
                                                   if k != "success"})]
            for s in ingest["shards"]]
    o = ingest["overall"]
    rows.append(["<b>all shards</b>", _num(o["total"]), _num(o["success"]), _percent(o["success_rate"]),
                 _inline({k: v for k, v in o["status"].items() if k != "success"})])
    return _table(["shard", "requests", "success", "success rate", "failed, by status"], rows,
                  "shards")


def _value(value: Any) -> str:
    """Any JSON value as words and small tables: never Python's repr of a dict or a list."""
    if isinstance(value, dict):
        if not value:
            return "none"
        rows = "".join(f"<tr><td>{_e(k)}</td><td>{_value(v)}</td></tr>" for k, v in value.items())
        return f'<table class="inner">{rows}</table>'
    if isinstance(value, list):
        if not value:
            return "none"
        return '<span class="text">' + "<br>".join(_value(v) for v in value) + "</span>"
    return _num(value)


def _kv_table(values: dict, table_id: str) -> str:
    rows = [[_e(k), _value(v)] for k, v in sorted(values.items())]
    return _table(["counter", "value"], rows, table_id)


def _duration(seconds: float | None) -> str:
    """Seconds as an operator reads them: 42.0 s, 12 min 5 s, 3 h 20 min."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _glance(report: dict) -> str:
    """The few numbers someone looking for a second wants, as large tiles."""
    tiles = []
    timing = report.get("timing") or {}
    if timing.get("wall_seconds") is not None:
        tiles.append(("run time", _duration(timing["wall_seconds"])))
    overall = report["ingest"]["overall"]
    if overall["total"]:
        tiles.append(("requests", _num(overall["total"])))
        tiles.append(("ingest success", _percent(overall["success_rate"])))
        tiles.append(("failed requests", _num(overall["total"] - overall["success"])))
    grobid = report.get("grobid")
    if grobid and grobid["sent"]:
        tiles.append(("GROBID success", f"{grobid['succeeded'] / grobid['sent'] * 100:.1f}%"))
    imp = (report.get("import") or {}).get("import")
    if imp:
        tiles.append(("catalog updates", _num(imp.get("update", 0) + imp.get("insert", 0))))
    outcome = report.get("outcome") or {}
    tiles.append(("outcome", '<span class="bad">PARTIAL</span>' if outcome.get("partial")
                  else '<span class="ok">complete</span>'))
    bad = [c for c in report["consistency"] if not c["ok"]]
    tiles.append(("hand-offs", '<span class="bad">MISMATCH</span>' if bad
                  else '<span class="ok">all add up</span>'))
    body = "".join(f"<div>{_e(name)}<b>{value}</b></div>" for name, value in tiles)
    return f'<div class="glance" id="glance">{body}</div>'


def _timing(timing: dict) -> str:
    rows = [[_e(r["step"]), _num(r["runs"]), _duration(r["seconds"])] for r in timing["per_step"]]
    rows.append(["<b>all steps</b>", _num(sum(r["runs"] for r in timing["per_step"])),
                 _duration(timing["step_seconds"])])
    intro = ""
    if timing.get("wall_seconds") is not None:
        intro = (f"<p>The run took <b>{_duration(timing['wall_seconds'])}</b>, from "
                 f"{_e(timing['started'])} to {_e(timing['finished'])} (the first step's start to the "
                 "last step's end; steps that ran in parallel overlap, so their sum below is "
                 "larger).</p>")
    return intro + _table(["step", "tasks", "time"], rows, "timing")


def _grobid(grobid: dict) -> str:
    rows = [["sent to GROBID", _num(grobid["sent"])], ["succeeded", _num(grobid["succeeded"])]]
    rows += [[f"error: {_e(kind)}", _num(n)] for kind, n in grobid["errors_by_kind"].items()]
    out = _table(["PDFs", "count"], rows, "grobid")
    retry = grobid.get("retry")
    if retry is not None:
        rows = [["retried", _num(retry["retried"])]]
        rows += [[_e(status), _num(n)] for status, n in retry["status"].items()]
        out += "<h3>GrobidRetry</h3>" + _table(["PDFs", "count"], rows, "grobid-retry")
    return out


def _retry(retry: dict) -> str:
    statuses = sorted(set(retry["before"]) | set(retry["after"]),
                      key=lambda k: (-retry["before"].get(k, 0), k))
    rows = [[_e(k), _num(retry["before"].get(k, 0)), _num(retry["after"].get(k, 0))]
            for k in statuses]
    return (f"<p>{_num(retry['retried'])} requests with a transient status (cdx-error, "
            f"wayback-error, error) ingested again; {_num(retry['recovered'])} of them got "
            "an answer. The merge takes each request's latest result.</p>"
            + _table(["status", "before the retry pass", "after"], rows, "ingest-retry"))


def _sinks(sinks: dict) -> str:
    topics = list(sinks["total"])
    rows = []
    for r in sinks["per_step"]:
        label = r["step"] if r["shard"] is None else f"{r['step']} {int(r['shard']):03d}"
        rows.append([_e(label)] + [_num(r["messages"].get(t, 0)) for t in topics])
    rows.append(["<b>all</b>"] + [f"<b>{_num(sinks['total'][t])}</b>" for t in topics])
    return (f"<p>Sink: <b>{_e(sinks['sink'])}</b>. Messages stored (acknowledged by the broker, or "
            "written to the sink files) per topic.</p>" + _table(["step"] + topics, rows, "sinks"))


def _duplicates(dupes: dict) -> str:
    scalars = {k: v for k, v in dupes.items() if not isinstance(v, dict | list)}
    out = _kv_table(scalars, "duplicates")
    most = dupes.get("most_duplicated") or []
    if most:
        rows = [[_e(m.get("sha1hex")), _num(m.get("lines")), _num(m.get("requests"))] for m in most]
        out += _table(["most duplicated sha1", "lines", "requests"], rows, "most-duplicated")
    return out


def _consistency(checks: list[dict]) -> str:
    rows = [[_e(c["check"]), _value(c["expected"]), _value(c["found"]),
             '<span class="ok">ok</span>' if c["ok"] else '<span class="bad">MISMATCH</span>']
            for c in checks]
    return _table(["hand-off", "expected", "found", ""], rows, "consistency")


def _figure(name: str, svg: str) -> str:
    return f'<figure id="chart-{_e(name)}"><figcaption>{_e(CHART_TITLES.get(name, name))}</figcaption>{svg}</figure>'


def render_html(report: dict[str, Any], charts: dict[str, str] | None = None) -> str:
    """The page for `report` (charts drawn here unless given): each chart in its section."""
    charts = all_charts(report) if charts is None else charts

    def figures(*names: str) -> list[str]:
        return [_figure(n, charts[n]) for n in names if n in charts]

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Backfill run report: {_e(report['workdir'])}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Backfill run report</h1>",
        f"<p>Work directory <code>{_e(report['workdir'])}</code>, generated {_e(report['generated'])} "
        f"by version {_e(report['version'])}. Every figure is read from the steps' "
        "<code>.meta.json</code> sidecars.</p>",
        _glance(report),
        *(f'<p class="bad">Partial run: {_e(why)}.</p>' for why in (report.get("outcome") or {}).get("why", [])),
    ]
    if report["ingest"]["shards"]:
        parts += ['<h2 id="ingest">Ingest</h2>',
                  *figures("status_overall", "failures_overall", "failures_per_shard"),
                  _shards_table(report), *figures("status_sample")]
    if report.get("retry"):
        parts += ['<h2 id="ingest-retry-section">Retry pass</h2>', _retry(report["retry"])]
    if report.get("grobid"):
        parts += ['<h2 id="grobid-section">GROBID</h2>', _grobid(report["grobid"]),
                  *figures("grobid")]
    if report.get("sinks"):
        parts += ['<h2 id="sinks-section">Sinks</h2>', _sinks(report["sinks"])]
    if report.get("timing"):
        parts += ['<h2 id="run-time">Run time</h2>', _timing(report["timing"]),
                  *figures("durations")]
    parts += ['<h2 id="steps-section">Steps</h2>', _steps_table(report), *figures("steps")]
    if report["consistency"]:
        parts += ["<h2>Hand-offs between steps</h2>", _consistency(report["consistency"])]
    used = {"status_overall", "failures_overall", "failures_per_shard", "status_sample", "grobid",
            "durations", "steps"}
    parts += figures(*(n for n in charts if n not in used))
    if report.get("duplicates"):
        parts += ["<h2>Duplicates</h2>", _duplicates(report["duplicates"])]
    imp = report.get("import") or {}
    if imp.get("import"):
        parts += ["<h2>Catalog import</h2>", _kv_table(imp["import"], "import")]
    if imp.get("sample_dry_run"):
        parts += ["<h3>Sample dry run</h3>", _kv_table(imp["sample_dry_run"], "import-sample")]
    if report.get("count_check"):
        parts += ["<h2>Count check against file_hashes</h2>",
                  _kv_table(report["count_check"], "count-check")]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
