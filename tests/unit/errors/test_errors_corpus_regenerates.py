"""The committed corpus is what tools/build_error_corpus.py records today: boto3 against a real
moto_server on 127.0.0.1 (a free port, stopped at the end), plus the rendered and hand-made cases."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "fixtures" / "error_corpus"


def corpus_tool() -> ModuleType:
    name = "sigwatch_tools_build_error_corpus"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "tools" / "build_error_corpus.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_rendered_and_hand_made_cases_are_current() -> None:
    outputs: dict[str, bytes] = corpus_tool().build(with_moto=False)
    assert len(outputs) >= 30
    for name, data in outputs.items():
        assert (CORPUS / name).read_bytes() == data, f"{name} is stale: run tools/build_error_corpus.py"


@pytest.mark.slow
@pytest.mark.e2e
def test_recording_against_moto_server_reproduces_the_corpus() -> None:
    if shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("moto_server is not installed in this environment")
    outputs: dict[str, bytes] = corpus_tool().build(with_moto=True)
    committed = {path.name: path.read_bytes() for path in CORPUS.glob("*.json")}
    assert sorted(outputs) == sorted(committed)
    stale = [name for name, data in outputs.items() if committed[name] != data]
    assert not stale, f"stale fixtures (run tools/build_error_corpus.py): {stale}"
