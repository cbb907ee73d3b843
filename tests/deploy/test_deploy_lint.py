"""YAML lint of every deploy file (deploy/.yamllint) and the PrometheusRule generator's output style."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from deploy_support import DEPLOY, KUBERNETES, run, tool

YAMLLINT_CONFIG = DEPLOY / ".yamllint"


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml"} and p.is_file())


def test_yamllint_reports_nothing_on_deploy() -> None:
    files = yaml_files()
    assert len(files) >= 20, "the deploy tree lost its YAML files"
    result = run(
        [tool("yamllint"), "--strict", "--format", "parsable", "-c", str(YAMLLINT_CONFIG), str(DEPLOY)]
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_yamllint_is_really_checking(tmp_path: Path) -> None:
    """Control: the same configuration flags a missing document start, bad indentation and 'yes'."""
    sample = tmp_path / "bad.yaml"
    sample.write_text("spec:\n   replicas: 1\n   enabled: yes\n", encoding="utf-8")
    result = run(
        [tool("yamllint"), "--strict", "--format", "parsable", "-c", str(YAMLLINT_CONFIG), str(sample)]
    )
    assert result.returncode != 0
    for rule in ("document-start", "indentation", "truthy"):
        assert f"({rule})" in result.stdout, result.stdout


def test_generated_prometheusrule_passes_yamllint_and_round_trips(tmp_path: Path) -> None:
    """sync_prometheusrule.py writes a file yamllint accepts and that carries the groups unchanged."""
    spec = importlib.util.spec_from_file_location(
        "sync_prometheusrule", KUBERNETES / "sync_prometheusrule.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    groups = yaml.safe_load((KUBERNETES / "base" / "prometheusrule.yaml").read_text(encoding="utf-8"))[
        "spec"
    ]["groups"]
    output = tmp_path / "prometheusrule.yaml"
    output.write_text(module.render(groups), encoding="utf-8")
    result = run(
        [tool("yamllint"), "--strict", "--format", "parsable", "-c", str(YAMLLINT_CONFIG), str(output)]
    )
    assert (result.returncode, result.stdout) == (0, "")
    assert yaml.safe_load(output.read_text(encoding="utf-8"))["spec"]["groups"] == groups
