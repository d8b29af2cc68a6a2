"""The report's charts: horizontal bar charts written directly as inline SVG.

Why SVG by hand: the page needs only bars, labels and a legend. matplotlib's
import and five PNG renders made the report step take 4-16 s; writing the
SVG text takes milliseconds, the page stays one self-contained file, its
text stays selectable and sharp at any zoom, and every colour is exactly the
status's fixed colour (pipeline.report.palette), so the same status looks the
same in every chart. Failures get charts of their own on a linear scale:
on a chart with success they would be slivers of a 95% bar.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from pipeline.report.palette import SUCCESS, status_color

WIDTH = 760
ROW = 20  # height of one bar's row
BAR = 14
FONT = 12
CHAR_W = 7.0  # rough width of one character at FONT px (labels column sizing)
TOP = 8
FLOW_COLORS = {"in": "#90a4ae", "out": "#37474f", "rejects": "#e65100"}
DURATION_COLOR = "#455a64"


def _fmt(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _text(x: float, y: float, text: str, anchor: str = "start", weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-weight="{weight}">'
            f"{escape(text)}</text>")


def _svg(height: float, body: list[str], label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(label)}" '
            f'width="{WIDTH}" height="{math.ceil(height)}" viewBox="0 0 {WIDTH} {math.ceil(height)}" '
            f'font-family="system-ui, sans-serif" font-size="{FONT}">' + "".join(body) + "</svg>")


def _scale(values: list[float], log: bool):
    """x offset (0..1) of a value: linear, or log10(1 + v) so small counts stay visible."""
    top = max([v for v in values if v] or [1])
    if log:
        return lambda v: math.log10(1 + v) / math.log10(1 + top) if v > 0 else 0.0
    return lambda v: v / top if v > 0 else 0.0


def bar_chart(rows: list[tuple[str, list[tuple[float, str, str]]]], label: str, *,
              log: bool = False, unit: str = "", legend: list[tuple[str, str]] | None = None) -> str:
    """One group of bars per row: `(row label, [(value, colour, series name), ...])`.

    Each bar carries its value at its end; a log scale is said in the axis
    note, never hidden. Single-bar rows are the status histograms.
    """
    label_w = CHAR_W * max([len(r[0]) for r in rows] + [4]) + 10
    value_w = 90
    plot_w = WIDTH - label_w - value_w
    scale = _scale([v for _, bars in rows for v, _, _ in bars], log)
    body: list[str] = []
    y = TOP
    if legend:
        y = _legend(body, legend, y)
    for row_label, bars in rows:
        group_h = max(ROW, len(bars) * (BAR - 2) + 6)
        body.append(_text(label_w - 6, y + group_h / 2 + 4, row_label, anchor="end"))
        bar_h = BAR if len(bars) == 1 else BAR - 3
        for i, (value, color, series) in enumerate(bars):
            by = y + (group_h - len(bars) * bar_h) / 2 + i * bar_h
            w = max(scale(value) * plot_w, 1.5 if value else 0)
            body.append(f'<rect x="{label_w:.1f}" y="{by:.1f}" width="{w:.1f}" height="{bar_h - 1}" '
                        f'fill="{color}"><title>{escape(series)}: {_fmt(value)}{unit}</title></rect>')
            if len(bars) == 1 or value:
                body.append(f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 3:.1f}" '
                            f'font-size="{FONT - 1}">{escape(_fmt(value) + unit)}</text>')
        y += group_h
    note = "log scale: each step of the axis is ten times the last" if log else "linear scale"
    body.append(f'<line x1="{label_w:.1f}" y1="{TOP}" x2="{label_w:.1f}" y2="{y:.1f}" stroke="#555"/>')
    body.append(f'<text x="{label_w:.1f}" y="{y + 16:.1f}" fill="#555" font-size="{FONT - 1}">'
                f"{escape(note)}</text>")
    return _svg(y + 24, body, label)


def _legend(body: list[str], items: list[tuple[str, str]], y: float) -> float:
    """Swatches and names in rows across the top; returns the y below them."""
    x = 10.0
    for name, color in items:
        w = 18 + CHAR_W * len(name) + 14
        if x + w > WIDTH:
            x, y = 10.0, y + 18
        body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" fill="{color}"/>')
        body.append(_text(x + 16, y + 10, name))
        x += w
    return y + 24


def stacked_chart(rows: list[tuple[str, list[tuple[str, float]], str]], label: str) -> str:
    """One stacked bar per row: `(row label, [(status, count), ...], note at the bar's end)`.

    Linear in counts, so a shard with twice the failures has twice the bar.
    """
    statuses = sorted({s for _, segs, _ in rows for s, v in segs if v})
    label_w = CHAR_W * max([len(r[0]) for r in rows] + [4]) + 10
    value_w = 200
    plot_w = WIDTH - label_w - value_w
    top = max([sum(v for _, v in segs) for _, segs, _ in rows] + [1])
    body: list[str] = []
    y = _legend(body, [(s, status_color(s)) for s in statuses], TOP)
    y0 = y
    for row_label, segs, note in rows:
        body.append(_text(label_w - 6, y + ROW / 2 + 4, row_label, anchor="end"))
        x = label_w
        for status, value in segs:
            if not value:
                continue
            w = value / top * plot_w
            body.append(f'<rect x="{x:.1f}" y="{y + 3:.1f}" width="{w:.1f}" height="{BAR}" '
                        f'fill="{status_color(status)}"><title>{escape(status)}: {_fmt(value)}'
                        "</title></rect>")
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + ROW - 5:.1f}" font-size="{FONT - 1}">'
                    f"{escape(note)}</text>")
        y += ROW
    body.append(f'<line x1="{label_w:.1f}" y1="{y0}" x2="{label_w:.1f}" y2="{y:.1f}" stroke="#555"/>')
    body.append(f'<text x="{label_w:.1f}" y="{y + 16:.1f}" fill="#555" font-size="{FONT - 1}">'
                "linear scale, counts</text>")
    return _svg(y + 24, body, label)


def status_rows(statuses: dict[str, int]) -> list[tuple[str, list[tuple[float, str, str]]]]:
    """Most frequent first, each bar in its status's fixed colour."""
    items = sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(k, [(v, status_color(k), k)]) for k, v in items]


def failures(statuses: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in statuses.items() if k != SUCCESS and v}


def step_flow(rows: list[dict[str, Any]]) -> str:
    """In, out and rejects of every step (shards summed), on a log scale (rejects are few)."""
    merged: dict[str, list[int]] = {}
    for r in rows:
        if r["in"] is None:
            continue
        acc = merged.setdefault(r["step"], [0, 0, 0])
        acc[0] += r["in"] or 0
        acc[1] += r["out"] or 0
        acc[2] += r["rejects"] or 0
    data = [(step, [(v[i], FLOW_COLORS[name], name) for i, name in enumerate(FLOW_COLORS)])
            for step, v in merged.items()]
    return bar_chart(data, "Records in, out and rejected per step", log=True,
                     legend=list(FLOW_COLORS.items()))


def shard_failures(shards: list[dict[str, Any]]) -> str:
    """Failures of each shard stacked by status; the success rate written at the bar's end."""
    rows = []
    for s in shards:
        fails = failures(s["status"])
        rate = s["success_rate"]
        note = f"{sum(fails.values()):,} failed of {s['total']:,}"
        if rate is not None:
            note += f" (success {rate * 100:.1f}%)"
        rows.append((f"shard {s['shard']:03d}", sorted(fails.items()), note))
    return stacked_chart(rows, "Failed requests per shard, by status")


def step_durations(rows: list[dict[str, Any]]) -> str | None:
    """Seconds per step (shards separately); None when no step recorded its duration."""
    timed = [r for r in rows if r["seconds"] is not None]
    if not timed:
        return None
    data = [(_label(r), [(float(r["seconds"]), DURATION_COLOR, "seconds")]) for r in timed]
    return bar_chart(data, "Duration of each step", unit=" s")


def _label(row: dict[str, Any]) -> str:
    params = row.get("params") or {}
    if "shard" in params:
        return f"{row['step']} {int(params['shard']):03d}"
    return row["step"]


def all_charts(report: dict[str, Any]) -> dict[str, str]:
    """Every chart the report has data for, by name (the page places each in its section)."""
    charts: dict[str, str] = {}
    rows = report["steps"]
    if rows:
        charts["steps"] = step_flow(rows)
    ingest = report["ingest"]
    overall = ingest["overall"]["status"]
    if overall:
        charts["status_overall"] = bar_chart(status_rows(overall), "Ingest status, all shards",
                                             log=True)
        if failures(overall):
            charts["failures_overall"] = bar_chart(status_rows(failures(overall)),
                                                   "Failed requests by status, all shards")
            charts["failures_per_shard"] = shard_failures(ingest["shards"])
    if ingest["sample"] and ingest["sample"]["status"]:
        charts["status_sample"] = bar_chart(status_rows(ingest["sample"]["status"]),
                                            "Ingest status, warm-up sample", log=True)
    grobid = report.get("grobid") or {}
    if grobid.get("status"):
        charts["grobid"] = bar_chart(status_rows(grobid["status"]), "GROBID status, all shards",
                                     log=True)
    durations = step_durations(rows)
    if durations:
        charts["durations"] = durations
    return charts
