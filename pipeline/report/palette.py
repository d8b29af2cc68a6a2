"""One fixed colour per status, the same in every chart of the report.

Why a table keyed by status: a colour that followed a status's rank changed
from chart to chart (the same status teal in one, yellow in the next), and
statuses past the palette's end all became one grey, so a reader could not
tell them apart. Here every status of docs/statuses.md (and GROBID's and
GrobidRetry's statuses) has its own colour, the failures distinct from each
other and from success's green; a status the table does not know gets a
colour derived from its name (a hash: the same on every run, never green).
"""

from __future__ import annotations

import colorsys
import hashlib

SUCCESS = "success"
SUCCESS_COLOR = "#2e7d32"

STATUS_COLORS: dict[str, str] = {
    SUCCESS: SUCCESS_COLOR,
    # ingest statuses (docs/statuses.md)
    "no-capture": "#f9a825",
    "cdx-error": "#c62828",
    "wayback-error": "#ad1457",
    "wayback-content-error": "#6a1b9a",
    "skip-url-blocklist": "#546e7a",
    "blocked-cookie": "#a1887f",
    "redirect-loop": "#ef6c00",
    "bad-redirect": "#ff8a65",
    "redirects-exceeded": "#8d3b12",
    "terminal-bad-status": "#1565c0",
    "null-body": "#81d4fa",
    "body-too-large": "#00838f",
    "bad-gzip-encoding": "#4dd0e1",
    "no-pdf-link": "#9575cd",
    "link-loop": "#f48fb1",
    "max-hops-exceeded": "#4e342e",
    "wrong-mimetype": "#283593",
    "error": "#212121",
    # GROBID (docs/sinks.md) and GrobidRetry
    "error-timeout": "#e53935",
    "fetch-error": "#ffca28",
    "sha1-mismatch": "#d81b60",
    # pdf_meta
    "parse-error": "#5c6bc0",
    "encrypted": "#795548",
    "too-large": "#26a69a",
    "text-too-large": "#80cbc4",
    "disabled": "#bdbdbd",
}


def status_color(status: str) -> str:
    """The colour of `status`: from the table, else derived from the name (stable, not green)."""
    known = STATUS_COLORS.get(status)
    if known is not None:
        return known
    digest = hashlib.sha256(status.encode("utf-8")).digest()
    # hues 185-360 and 0-60 degrees: everything but the greens (and green-cyans) success owns
    hue = (digest[0] * 235 / 255 + 185) % 360
    lightness = 0.38 + digest[1] / 255 * 0.2
    r, g, b = colorsys.hls_to_rgb(hue / 360, lightness, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
