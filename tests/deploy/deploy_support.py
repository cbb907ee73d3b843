"""Shared helpers of the offline deploy checks: where the files are, the tools, the rendered overlays.

The tools come from the `test` extra of pyproject.toml (installed by `make`, completed by
.ci/install-deploy-tools.sh) and live beside the interpreter running the tests. A missing tool skips its
tests with the reason, except under CI (CI=true), where a missing tool is a broken install and fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
SIDECAR_OVERLAYS = [name for name in OVERLAYS if name.startswith("sidecar-")]
INSTALL_HINT = "install it with: bash .ci/install-deploy-tools.sh"


def unavailable(reason: str) -> None:
    """Skip with `reason` on a developer machine; fail under CI, where every deploy check must run."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run every deploy check)")
    pytest.skip(reason)


def tool(name: str) -> str:
    """Path of an external tool: the virtualenv's own first (the test extra), then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed; {INSTALL_HINT}")
    assert found is not None
    return found


def run(args: list[str], cwd: Path = REPO, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


_rendered: dict[str, list[dict[str, Any]]] = {}


def render_overlay(name: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of one overlay, parsed; rendered once per test session."""
    if name not in _rendered:
        result = run([tool("kubectl"), "kustomize", str(KUBERNETES / "overlays" / name)])
        assert result.returncode == 0, f"kubectl kustomize overlays/{name} failed:\n{result.stderr}"
        _rendered[name] = load_yaml_documents(result.stdout)
    return _rendered[name]


def pod_templates(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod template) for every object that carries a pod template."""
    return [
        (obj, obj["spec"]["template"])
        for obj in objects
        if obj["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
    ]


def all_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


def sigwatch_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers that run the sigwatch proxy (`sigwatch run`), wherever they sit in the pod."""
    return [
        c for c in all_containers(pod_spec) if c.get("args", [])[:1] == ["run"] and c["name"] == "sigwatch"
    ]


CRD_MODELS = Path(sys.prefix) / "deploy-tools" / "crd-models"


def prometheus_operator_models() -> Any:
    """The pydantic models of monitoring.coreos.com/v1, generated from the Prometheus Operator CRDs.

    They live off sys.path (.ci/install-deploy-tools.sh explains why); append, so that the
    virtualenv's own packages keep precedence over the copies installed beside the models.
    """
    if not (CRD_MODELS / "cloudcoil").is_dir():
        unavailable(f"Prometheus Operator CRD models are not installed in {CRD_MODELS}; {INSTALL_HINT}")
    if str(CRD_MODELS) not in sys.path:
        sys.path.append(str(CRD_MODELS))
    from cloudcoil.models.prometheus_operator import v1  # type: ignore[import-not-found]

    return v1


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    argument: str
    line: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (enough for these checks)."""
    instructions: list[Instruction] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, argument = text.partition(" ")
        instructions.append(Instruction(keyword.upper(), argument.strip(), start))
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result
