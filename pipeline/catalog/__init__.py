"""Catalog backends: the embedded SQLite catalog and the fatcat REST API.

`open_catalog(spec)` (in `pipeline.catalog.factory`) turns the `[backfill]
catalog` setting into a backend; the interface every backend implements is
`pipeline.catalog.base.Catalog`. What the import does with a catalog is
`pipeline.importer`.
"""

from pipeline.catalog.base import Catalog, CatalogError
from pipeline.catalog.factory import is_api_url, open_catalog, rejects_path_for

__all__ = ["Catalog", "CatalogError", "open_catalog", "is_api_url", "rejects_path_for"]
