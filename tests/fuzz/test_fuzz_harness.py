"""The atheris harness builds and runs here: every target, a couple of thousand inputs, in one process
(`make fuzz` is the real, time-bounded run). Skipped, with the reason, where atheris is not installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_atheris_harness_runs_every_target(tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris is installed by `make fuzz` (the `fuzz` extra)")
    result = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", "all", "-runs=3000", f"-artifact_prefix={tmp_path}/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done 3000 runs" in result.stderr
