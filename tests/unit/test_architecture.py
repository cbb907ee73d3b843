"""The pure core never imports the I/O libraries (like h11: sans-IO, testable without a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "proxy" / "core"
FORBIDDEN = ("aiohttp", "prometheus_client", "structlog", "proxy.server", "proxy.observability")
FORBIDDEN_CALLS = ("datetime.now", "datetime.utcnow", "time.time")


def imported_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_exists() -> None:
    assert len(CORE_FILES) > 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_imports_no_io_library(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = {m for m in imported_modules(tree) if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path} imports {sorted(bad)}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_module_never_reads_the_clock(path: Path) -> None:
    source = path.read_text()
    assert not [call for call in FORBIDDEN_CALLS if call + "(" in source], f"{path} reads the clock itself"
