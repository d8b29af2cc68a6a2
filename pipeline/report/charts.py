"""The report's charts: matplotlib figures rendered to PNG data URIs.

Why data URIs: the report is one file an operator can mail or archive with the
run; it must show its charts with no directory of images beside it. The
figures are built with matplotlib's object API on an Agg canvas (no pyplot,
no global backend switch, no display needed), imported only when a chart is
drawn, so importing the report costs nothing.
"""

from __future__ import annotations

import base64
import io
from typing import Any

SUCCESS_COLOR = "#2e7d32"
# colours of the other statuses, in order of their overall frequency
PALETTE = ("#c62828", "#ef6c00", "#f9a825", "#6a1b9a", "#1565c0", "#00838f", "#4e342e",
           "#ad1457", "#558b2f", "#37474f", "#8d6e63", "#5c6bc0")
OTHER = "other"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def status_colors(statuses: list[str]) -> dict[str, str]:
    """Stable colours: success is green; the others take the palette by rank, the rest grey."""
    colors = {"success": SUCCESS_COLOR}
    others = [s for s in statuses if s != "success"]
    for status, color in zip(others, PALETTE, strict=False):
        colors[status] = color
    for status in others[len(PALETTE):]:
        colors[status] = "#9e9e9e"
    return colors


def status_histogram(statuses: dict[str, int], title: str) -> str:
    """Horizontal bars, one per status, the count written at each bar's end."""
    items = sorted(statuses.items(), key=lambda kv: (-kv[1], kv[0]))
    fig = _figure(7.5, 0.9 + 0.28 * max(1, len(items)))
    ax = fig.add_subplot()
    names = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    colors = status_colors([k for k, _ in items])
    bars = ax.barh(names, values, color=[colors[n] for n in names])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("requests (log scale)")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=8)
    return to_data_uri(fig)


def shards_stacked(shards: list[dict[str, Any]], overall_order: list[str]) -> str:
    """One stacked bar per shard: the share of each status (success first)."""
    order = ["success"] + [s for s in overall_order if s != "success"]
    colors = status_colors(order)
    # tall enough for every bar and for the legend (one line per status)
    fig = _figure(7.5, max(1.2 + 0.3 * len(shards), 0.8 + 0.17 * len(order)))
    ax = fig.add_subplot()
    labels = [f"shard {s['shard']:03d}" for s in shards][::-1]
    left = [0.0] * len(shards)
    for status in order:
        shares = [(s["status"].get(status, 0) / s["total"] * 100 if s["total"] else 0.0)
                  for s in shards][::-1]
        if not any(shares):
            continue
        ax.barh(labels, shares, left=left, color=colors[status], label=status)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of the shard's requests")
    ax.set_title("Ingest status per shard")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    return to_data_uri(fig)


def step_flow(rows: list[dict[str, Any]]) -> str:
    """In, out and rejects of every step (shards summed), grouped bars."""
    merged: dict[str, list[int]] = {}
    for r in rows:
        if r["in"] is None:
            continue
        acc = merged.setdefault(r["step"], [0, 0, 0])
        acc[0] += r["in"] or 0
        acc[1] += r["out"] or 0
        acc[2] += r["rejects"] or 0
    names = list(merged)
    fig = _figure(7.5, 1.0 + 0.45 * max(1, len(names)))
    ax = fig.add_subplot()
    height = 0.27
    ys = list(range(len(names)))[::-1]
    for i, (label, color) in enumerate((("in", "#90a4ae"), ("out", SUCCESS_COLOR),
                                        ("rejects", "#c62828"))):
        values = [merged[n][i] for n in names]
        ax.barh([y + (1 - i) * height for y in ys], values, height=height, color=color, label=label)
    ax.set_yticks(ys, names, fontsize=8)
    ax.set_xlabel("records")
    ax.set_title("Records in, out and rejected per step")
    ax.legend(fontsize=8, frameon=False)
    return to_data_uri(fig)


def step_durations(rows: list[dict[str, Any]]) -> str | None:
    """Seconds per step (shards separately); None when no step recorded its duration."""
    timed = [r for r in rows if r["seconds"] is not None]
    if not timed:
        return None
    labels = [_label(r) for r in timed][::-1]
    values = [r["seconds"] for r in timed][::-1]
    fig = _figure(7.5, 0.9 + 0.28 * len(timed))
    ax = fig.add_subplot()
    bars = ax.barh(labels, values, color="#1565c0")
    ax.bar_label(bars, labels=[f"{v:,.1f} s" for v in values], padding=3, fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_title("Duration of each step")
    ax.tick_params(axis="y", labelsize=8)
    return to_data_uri(fig)


def _label(row: dict[str, Any]) -> str:
    params = row.get("params") or {}
    if "shard" in params:
        return f"{row['step']} {int(params['shard']):03d}"
    return row["step"]


def all_charts(report: dict[str, Any]) -> dict[str, str]:
    """Every chart the report has data for, by name (the page embeds them in this order)."""
    charts: dict[str, str] = {}
    rows = report["steps"]
    if rows:
        charts["steps"] = step_flow(rows)
    ingest = report["ingest"]
    if ingest["overall"]["status"]:
        charts["status_overall"] = status_histogram(ingest["overall"]["status"],
                                                    "Ingest status, all shards")
        charts["status_per_shard"] = shards_stacked(ingest["shards"],
                                                    list(ingest["overall"]["status"]))
    if ingest["sample"] and ingest["sample"]["status"]:
        charts["status_sample"] = status_histogram(ingest["sample"]["status"],
                                                   "Ingest status, warm-up sample")
    durations = step_durations(rows)
    if durations:
        charts["durations"] = durations
    return charts
