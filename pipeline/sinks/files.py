"""The file sink: each topic of one shard as files in the work directory (no Kafka configured).

Why: a run without a broker (the demo, a laptop, an air-gapped rerun) must
still keep GROBID's TEI, the text and the thumbnails, in a form that can be
replayed into Kafka later. Layout (docs/sinks.md and docs/targets.md), `<topic>` the full Kafka name:
`sinks/<topic>/<stem>.json.gz` (one message value per line, its `key` inside)
for the JSON topics, and `sinks/<topic>/<stem>.thumbnails.zip` of
`<sha1hex>.jpg` for thumbnails, `<stem>` being the shard's name
(`shard-NNN-of-MMM`). Files are written under temporary names and renamed on
`close()`, just before the shard's own target: a killed shard leaves none.
Every topic gets its file, even with no message (the shard ran, it had none).
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path

from pipeline.jsonio import AtomicWriter
from pipeline.sinks.base import Sink
from pipeline.sinks.message import GROBID, PDF_TEXT, THUMBNAIL, Message, topic_name
from pipeline.tempnames import temp_name

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed: the same thumbnails give the same zip bytes


def sink_paths(workdir: str | os.PathLike, env: str, stem: str) -> dict[str, Path]:
    """The file each logical topic of `stem` is written to."""
    base = Path(workdir) / "sinks"
    return {
        GROBID: base / topic_name(GROBID, env) / f"{stem}.json.gz",
        PDF_TEXT: base / topic_name(PDF_TEXT, env) / f"{stem}.json.gz",
        THUMBNAIL: base / topic_name(THUMBNAIL, env) / f"{stem}.thumbnails.zip",
    }


class FileSink(Sink):
    """Write one shard's messages to `sinks/<topic>/<stem>.*` under `workdir`, atomically."""

    def __init__(self, workdir: str | os.PathLike, env: str, stem: str):
        super().__init__()
        self.env = env
        self.paths = sink_paths(workdir, env, stem)
        self._json = {kind: AtomicWriter(self.paths[kind]).__enter__() for kind in (GROBID, PDF_TEXT)}
        zpath = self.paths[THUMBNAIL]
        zpath.parent.mkdir(parents=True, exist_ok=True)
        self._zip_tmp = Path(temp_name(zpath))
        self._zip: zipfile.ZipFile | None = zipfile.ZipFile(self._zip_tmp, "w", zipfile.ZIP_STORED)

    def _send(self, message: Message) -> None:
        if message.kind == THUMBNAIL:
            info = zipfile.ZipInfo(f"{message.key}.jpg", date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            self._zip.writestr(info, message.value)
        else:
            self._json[message.kind].write_obj(message.value)

    def _close(self) -> dict:
        self._zip.close()
        self._zip = None
        with open(self._zip_tmp, "rb+") as f:
            os.fsync(f.fileno())
        for writer in self._json.values():
            writer.commit()
        os.replace(self._zip_tmp, self.paths[THUMBNAIL])
        return {topic_name(kind, self.env): self.counts[kind] for kind in self.paths}

    def abort(self) -> None:
        """Drop the temporary files; never raises (a full disk refuses the zip's last bytes
        too, and that must not hide why the shard is aborting)."""
        for writer in self._json.values():
            writer.__exit__(None, None, None)
        zf, self._zip = self._zip, None
        if zf is not None:
            try:
                zf.close()
            except OSError:
                if zf.fp is not None:
                    with contextlib.suppress(OSError):
                        zf.fp.close()
        with contextlib.suppress(OSError):
            self._zip_tmp.unlink(missing_ok=True)
