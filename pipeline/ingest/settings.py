"""The ingest worker's knobs as one frozen value, built from `[ingest]` by the caller.

Why: the worker must be testable without Luigi and must never read
configuration behind the caller's back; `pipeline.wiring` builds this once
from the `[ingest]` section and passes it in. The defaults are written here
once; `pipeline.config` reads them from this module.
"""

from __future__ import annotations

from dataclasses import dataclass

# URLs never fetched (matched as substrings), and landing-page URLs that mean
# "this site wants a cookie" (the result is `blocked-cookie`). Cfg text: comma-separated.
DEFAULT_BLOCKLIST = (
    "://localhost,://127.0.0.1,://archive.org/,://www.archive.org/,://web.archive.org/web/,"
    "fatcat.wiki,orcid.org,doi.org/10.2307/,doi.org/10.18730/,doi.org/10.15468/"
)
DEFAULT_COOKIE_PATTERNS = "/cookieAbsent,cookieSet=1,error=cookies_not_supported"


def split_list(value: str) -> list[str]:
    """Comma- or newline-separated cfg value -> list of non-empty, stripped items."""
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


@dataclass(frozen=True)
class IngestSettings:
    max_hops: int = 6
    max_redirects: int = 25
    max_body_bytes: int = 128 * 1024 * 1024
    cdx_limit: int = 25
    blocklist: tuple[str, ...] = tuple(split_list(DEFAULT_BLOCKLIST))
    cookie_patterns: tuple[str, ...] = tuple(split_list(DEFAULT_COOKIE_PATTERNS))
    wanted_mimetype: str = "application/pdf"

    def __post_init__(self) -> None:
        for name in ("max_hops", "max_redirects", "max_body_bytes", "cdx_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"ingest setting {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, section) -> IngestSettings:
        """From an `[ingest]` section (`pipeline.config.ingest()`)."""
        return cls(
            max_hops=section.max_hops,
            max_redirects=section.max_redirects,
            max_body_bytes=section.max_body_bytes,
            cdx_limit=section.cdx_limit,
            blocklist=tuple(section.blocklist()),
            cookie_patterns=tuple(section.cookies()),
        )

    def as_dict(self) -> dict:
        """The values that change results (recorded in a task's sidecar)."""
        return {
            "max_hops": self.max_hops,
            "max_redirects": self.max_redirects,
            "max_body_bytes": self.max_body_bytes,
            "cdx_limit": self.cdx_limit,
            "blocklist": list(self.blocklist),
            "cookie_patterns": list(self.cookie_patterns),
            "wanted_mimetype": self.wanted_mimetype,
        }
