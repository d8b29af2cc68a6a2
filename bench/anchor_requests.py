"""The runbook's request transform, as its helper script did it: one json.loads and one
json.dumps per line, stdin to stdout (run as `zcat | python anchor_requests.py | pigz`).

Kept only as the bench's anchor for the requests step; it checks nothing and keeps no rejects.
"""

import json
import sys


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        e = json.loads(line)
        url = next((u["url"] for u in e.get("urls", []) if "archive.org/" not in u["url"]), None)
        if not url or not e.get("sha1"):
            continue
        out.write(json.dumps({
            "base_url": url, "ext_ids": {"sha1": e["sha1"]},
            "ingest_request_source": "file-backfill", "ingest_type": "pdf",
            "link_source": "fatcat", "link_source_id": "file_" + e["ident"],
        }, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
