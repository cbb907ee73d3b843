"""Write base/prometheusrule.yaml from deploy/prometheus/alerts.yml (the one source of the alert rules).

kustomize cannot embed another file's YAML as structured fields of a resource (and its load restrictor
keeps files outside the kustomization root out), so the PrometheusRule is a generated, committed file.
tests/deploy/test_kubernetes.py fails when the two differ; run this to bring them back together:

    .venv/bin/python deploy/kubernetes/sync_prometheusrule.py
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
RULE = DEPLOY / "kubernetes" / "base" / "prometheusrule.yaml"

HEADER = """\
---
# GENERATED from deploy/prometheus/alerts.yml by deploy/kubernetes/sync_prometheusrule.py: edit
# alerts.yml, then run `.venv/bin/python deploy/kubernetes/sync_prometheusrule.py`.
# tests/deploy/test_kubernetes.py checks that spec.groups equals the groups of alerts.yml.
"""


class _IndentedDumper(yaml.SafeDumper):
    """Indents sequences under their key, the style yamllint (deploy/.yamllint) and the other files use."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """Multi-line PromQL as a literal block (`|`), as alerts.yml writes it, not an escaped string."""
    if "\n" in value:
        text = "\n".join(line.rstrip() for line in value.splitlines()) + (
            "\n" if value.endswith("\n") else ""
        )
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    if len(value) > 72 and " " in value:
        # A long one-line expression folds (`>`): its line breaks read back as the spaces they replace.
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=">")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_IndentedDumper.add_representer(str, _string)


def prometheus_rule(groups: list[dict[str, Any]]) -> dict[str, Any]:
    """The PrometheusRule carrying `groups` unchanged: the operator's spec.groups is a rule file's groups."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "sigwatch-alerts"},
        "spec": {"groups": groups},
    }


def render(groups: list[dict[str, Any]]) -> str:
    body: str = yaml.dump(
        prometheus_rule(groups), Dumper=_IndentedDumper, sort_keys=False, width=80, allow_unicode=True
    )
    return HEADER + body


def main() -> int:
    if not ALERTS.is_file():
        print(f"{ALERTS} does not exist yet: nothing to generate from", file=sys.stderr)
        return 2
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list):
        print(f"{ALERTS}: expected a Prometheus rule file with a top-level 'groups' list", file=sys.stderr)
        return 2
    RULE.write_text(render(groups), encoding="utf-8")
    print(f"wrote {RULE.relative_to(DEPLOY.parent)} ({len(groups)} groups)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
