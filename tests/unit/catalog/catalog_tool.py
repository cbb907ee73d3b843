"""Shared by the catalog tests: the build script as a module, and where the seeds are."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
SEEDS = Path(os.environ.get("SIGWATCH_SHARED", REPO.parent / "shared")) / "seeds"
DATA = REPO / "proxy" / "catalogs" / "data"


def load_build_catalogs() -> ModuleType:
    """tools/build_catalogs.py, imported from its path (tools/ is not a package)."""
    name = "sigwatch_tools_build_catalogs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "build_catalogs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def seeds_missing_reason() -> str | None:
    if not SEEDS.is_dir():
        return f"seed documents not found at {SEEDS} (set SIGWATCH_SHARED to the shared folder)"
    return None
