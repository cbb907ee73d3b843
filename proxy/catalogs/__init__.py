"""The built-in error catalogs (data/*.json, generated from the seed documents by tools/build_catalogs.py)
and the loader for catalog files users add from config (one file per service).

Files are read and validated once, at start-up: a bad file raises CatalogError naming the file, the key,
what is wrong and how to fix it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import orjson

from proxy.core.catalog import CatalogError, Catalogs, ServiceCatalog, parse_catalog

__all__ = ["CatalogError", "builtin_catalog_names", "load_builtin_catalogs", "load_catalog_file"]


def _parse_bytes(data: bytes, name: str) -> ServiceCatalog:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CatalogError(name, "(document)", f"not valid JSON ({exc})", "fix the JSON syntax") from None
    if not isinstance(doc, dict):
        raise CatalogError(name, "(document)", "the document is not a JSON object", "write a {...} object")
    return parse_catalog(doc, name)


def load_catalog_file(path: Path) -> ServiceCatalog:
    """Read and validate one catalog file (JSON, the format of proxy/catalogs/data)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(
            str(path), "(file)", f"cannot be read ({exc.strerror or exc})", "check the path in the config"
        ) from None
    return _parse_bytes(data, str(path))


def builtin_catalog_names() -> tuple[str, ...]:
    """Names of the packaged catalog files (e.g. "s3.json"), sorted."""
    folder = resources.files(__package__).joinpath("data")
    return tuple(sorted(item.name for item in folder.iterdir() if item.name.endswith(".json")))


@cache
def load_builtin_catalogs() -> Catalogs:
    """Every packaged catalog, validated (cached: the catalogs are immutable)."""
    folder = resources.files(__package__).joinpath("data")
    catalogs = [
        _parse_bytes(folder.joinpath(name).read_bytes(), f"proxy/catalogs/data/{name}")
        for name in builtin_catalog_names()
    ]
    return Catalogs.of(catalogs)
