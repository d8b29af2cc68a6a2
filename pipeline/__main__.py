"""`python -m pipeline` is the operator CLI (same as the `backfill` console script)."""

from pipeline.cli import main

raise SystemExit(main())
