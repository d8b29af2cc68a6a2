"""What a post-processor hands to the sinks, and how it travels with its ingest result.

Why: GROBID and text extraction run on the ingest worker's threads, but a
shard's messages must reach the sinks in request order (the file sinks then
hold the same bytes on every run) and from one thread (a failed delivery must
stop the shard, and only the shard's writer can stop it). So post-processors
do not publish: they attach their messages to the result, and the shard's
writer takes them off (`take`) just before it writes the result line. The
outbox key never reaches a results file.
"""

from __future__ import annotations

from dataclasses import dataclass

OUTBOX_KEY = "_outbox"

# Logical topics; the sinks turn them into sandcrawler's topic names (`topic_name`).
GROBID = "grobid"
PDF_TEXT = "pdf_text"
THUMBNAIL = "thumbnail"
TOPICS = (GROBID, PDF_TEXT, THUMBNAIL)

_SUFFIXES = {
    GROBID: "grobid-output-pg",
    PDF_TEXT: "pdf-text",
    THUMBNAIL: "pdf-thumbnail-180px-jpg",
}


def topic_name(kind: str, env: str) -> str:
    """The Kafka topic of a logical topic: `sandcrawler-{env}.<suffix>` (docs/sinks.md)."""
    return f"sandcrawler-{env}.{_SUFFIXES[kind]}"


@dataclass(frozen=True)
class Message:
    """One message for a topic: key is the PDF's sha1hex; value a JSON object or raw bytes."""

    kind: str
    key: str
    value: dict | bytes

    def __post_init__(self) -> None:
        if self.kind not in _SUFFIXES:
            raise ValueError(f"unknown topic kind {self.kind!r}")
        if isinstance(self.value, bytes) != (self.kind == THUMBNAIL):
            raise ValueError(f"{self.kind} messages carry {'bytes' if self.kind == THUMBNAIL else 'JSON'}")


def attach(result: dict, message: Message) -> None:
    """Queue `message` on `result` for the shard's writer (thread-safe per result)."""
    result.setdefault(OUTBOX_KEY, []).append(message)


def take(result: dict) -> list[Message]:
    """Remove and return the messages queued on `result` (none: an empty list)."""
    return result.pop(OUTBOX_KEY, None) or []
