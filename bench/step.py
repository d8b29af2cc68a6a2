"""One pipeline step as a process of its own, so the bench can time it and read its peak RSS.

    python bench/step.py export-filter EXPORT OUT REJECTS
    python bench/step.py requests ENTITIES OUT REJECTS
    python bench/step.py merge OUT REJECTS RESULTS...
    python bench/step.py uniq MERGED OUT DUPES
    python bench/step.py ingest REQUESTS OUT ARCHIVE [CONCURRENCY]
    python bench/step.py import FILE_META CATALOG_SQLITE JOURNAL
    python bench/step.py import-http FILE_META SEED_EXPORT JOURNAL

Each calls the same plain function the Luigi task calls and prints its
counts as one JSON line, which the bench checks against the other runs.
`import-http` serves the entities of SEED_EXPORT with the fatcat stand-in
(tests/fatcat_standin.py) in this process and imports through the HTTP client.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _jsonable(counts) -> dict:
    return json.loads(json.dumps(counts, default=lambda o: getattr(o, "__dict__", str(o))))


def main(argv: list[str]) -> dict:
    step, args = argv[0], argv[1:]
    if step == "export-filter":
        from pipeline.steps.export_filter import filter_missing_sha256
        return filter_missing_sha256(*args)
    if step == "requests":
        from pipeline.steps.ingest_request import build_requests
        return build_requests(*args)
    if step == "merge":
        from pipeline.steps.merge import merge_results
        return merge_results(args[2:], args[0], args[1])
    if step == "uniq":
        from pipeline.steps.uniq import uniq_file_meta
        return uniq_file_meta(args[0], args[1], args[2], None)
    if step == "ingest":
        from pipeline.archive.factory import open_archive
        from pipeline.ingest.run import ingest_file
        from pipeline.ingest.settings import IngestSettings
        from pipeline.ingest.worker import IngestWorker
        cdx, content = open_archive(args[2])
        worker = IngestWorker(cdx, content, IngestSettings())
        counts = ingest_file(args[0], args[1], worker, int(args[3]) if len(args) > 3 else 4)
        return dict(counts)
    if step in ("import", "import-http"):
        from pipeline.catalog.sqlite import SqliteCatalog
        from pipeline.importer import import_file_meta
        if step == "import":
            result = import_file_meta(args[0], SqliteCatalog(args[1]), journal_path=args[2])
            return dict(result.counts)
        sys.path.insert(0, str(ROOT / "tests"))
        from fatcat_standin import FatcatStandin

        from pipeline.catalog.fatcat import FatcatCatalog
        os.environ["FATCAT_API_AUTH_TOKEN"] = "bench-token"
        with FatcatStandin.from_export("bench-token", args[1]) as standin:
            result = import_file_meta(args[0], FatcatCatalog(standin.url), journal_path=args[2])
        return dict(result.counts)
    raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    print(json.dumps(_jsonable(main(sys.argv[1:])), sort_keys=True))
