"""The Grafana dashboard and provisioning, and the Prometheus configuration, rules and rule tests."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from observability_support import populated_metrics, require_tool

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "grafana" / "dashboards" / "sigwatch.json"
PROVISIONING = REPO / "grafana" / "provisioning"
PROMETHEUS = REPO / "deploy" / "prometheus"
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
RANGE_SELECTOR = re.compile(r"\[([^\]]+)\]")
# A sigwatch series name (not a recording rule's `level:sigwatch_...:operation` name).
METRIC_NAME = re.compile(r"(?<![:\w])(sigwatch_[a-z0-9_]+)(?![:\w])")


def build_dashboard_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboard", REPO / "tools" / "build_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def exposed_names() -> set[str]:
    """Every series name sigwatch exposes, with every label set a demo could produce."""
    _, registry = populated_metrics()
    return {sample.name for family in registry.collect() for sample in family.samples}


def rule_documents() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return loaded


def alerts() -> list[dict[str, Any]]:
    return [rule for group in rule_documents()["groups"] for rule in group["rules"] if "alert" in rule]


# -- dashboard ---------------------------------------------------------------------------------------


def test_committed_dashboard_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text(encoding="utf-8") == build_dashboard_module().render(), (
        "grafana/dashboards/sigwatch.json is stale: run .venv/bin/python tools/build_dashboard.py"
    )


def test_dashboard_has_a_fixed_uid_and_datasource_service_operation_variables() -> None:
    board = dashboard()
    assert board["uid"] == "sigwatch-overview"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["service"]["query"]["query"] == "label_values(sigwatch_requests_total, service)"
    assert '{service=~"$service"}' in variables["operation"]["query"]["query"]
    for name in ("service", "operation"):
        assert (
            variables[name]["includeAll"] and variables[name]["multi"] and variables[name]["allValue"] == ".*"
        )


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


def test_every_range_selector_is_rate_interval() -> None:
    for expr in expressions():
        windows = RANGE_SELECTOR.findall(expr)
        assert windows, f"no range selector in {expr}"
        assert set(windows) == {"$__rate_interval"}, expr


def test_queries_follow_the_service_and_operation_variables() -> None:
    """Metrics with a service label are filtered by $service; those with an operation, by $operation."""
    labelled = {name: set(labels) for name, labels in _label_names().items()}
    for expr in expressions():
        for name, selector in re.findall(r"(sigwatch_[a-z0-9_]+)(\{[^}]*\})?", expr):
            labels = labelled[name]
            if "service" in labels:
                assert 'service=~"$service"' in selector, expr
            if "operation" in labels:
                assert 'operation=~"$operation"' in selector, expr


def _label_names() -> dict[str, tuple[str, ...]]:
    _, registry = populated_metrics()
    return {
        sample.name: tuple(sample.labels)
        for family in registry.collect()
        for sample in family.samples
        if sample.name.startswith("sigwatch_")
    }


def test_every_metric_the_dashboard_reads_is_exposed_by_sigwatch() -> None:
    exposed = exposed_names()
    for expr in expressions():
        for name in METRIC_NAME.findall(expr):
            assert name in exposed, f"{name} (in {expr}) is not a sigwatch series"


def test_dashboard_has_the_panels_issue_6_asks_for() -> None:
    titles = {panel["title"]: panel for panel in panels()}
    for title in (
        "Requests per second",
        "Errors by outcome",
        "Duration p50 / p90 / p99",
        "Error rate by exception",
        "Error rate by code",
        "Top error codes",
        "Error categories over time",
        "Retryable vs not",
        "Validation findings by check",
        "Rejections (enforce mode)",
        "Clock skew distribution",
        "Retry amplification (attempts per invocation)",
        "Upstream connection failures",
        "In-flight requests",
    ):
        assert title in titles, title
    durations = [target["expr"] for target in titles["Duration p50 / p90 / p99"]["targets"]]
    for quantile in ("0.5", "0.9", "0.99"):
        assert any(expr.startswith(f"histogram_quantile({quantile},") for expr in durations)
    assert titles["Top error codes"]["type"] == "table"
    assert titles["Clock skew distribution"]["type"] == "heatmap"
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids))


# -- Grafana provisioning ----------------------------------------------------------------------------


def _compose_mounts(service: str) -> dict[str, str]:
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    volumes = compose["services"][service]["volumes"]
    return {volume.split(":")[0]: volume.split(":")[1] for volume in volumes if volume.startswith((".", "/"))}


def test_provisioning_loads_the_dashboard_from_where_compose_mounts_it() -> None:
    mounts = _compose_mounts("grafana")
    assert mounts["../../grafana/provisioning"] == "/etc/grafana/provisioning"
    (provider_file,) = sorted((PROVISIONING / "dashboards").glob("*.yaml"))
    (provider,) = yaml.safe_load(provider_file.read_text(encoding="utf-8"))["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == mounts["../../grafana/dashboards"]


def test_provisioned_datasource_is_the_compose_prometheus_and_the_default() -> None:
    (datasource_file,) = sorted((PROVISIONING / "datasources").glob("*.yaml"))
    (source,) = yaml.safe_load(datasource_file.read_text(encoding="utf-8"))["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True


# -- Prometheus --------------------------------------------------------------------------------------


def _promtool(*args: str) -> str:
    promtool = require_tool("promtool")
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_promtool_check_config() -> None:
    """The compose stack mounts this very file (and alerts.yml beside it): one copy to check."""
    assert _compose_mounts("prometheus")["../prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert "SUCCESS" in _promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))


def test_promtool_check_rules() -> None:
    assert "SUCCESS" in _promtool("check", "rules", str(PROMETHEUS / "alerts.yml"))


def test_promtool_test_rules() -> None:
    assert "SUCCESS" in _promtool("test", "rules", *map(str, sorted((PROMETHEUS / "tests").glob("*.yml"))))


def test_every_alert_has_a_firing_and_a_quiet_promtool_test() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in sorted((PROMETHEUS / "tests").glob("*.yml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in document["tests"]:
            for case in group.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names == fired, f"alerts never seen firing in a test: {names - fired}"
    assert names == quiet, f"alerts never seen quiet in a test: {names - quiet}"


@pytest.mark.parametrize(
    "alert",
    [
        "SigwatchErrorBudgetBurnFast",
        "SigwatchErrorBudgetBurnSlow",
        "SigwatchSignatureFailureSpike",
        "SigwatchClientClockSkew",
        "SigwatchUpstreamUnavailable",
        "SigwatchTargetDown",
        "SigwatchRetryStorm",
    ],
)
def test_the_alerts_issue_6_asks_for_exist_with_severity_and_summary(alert: str) -> None:
    (rule,) = [rule for rule in alerts() if rule["alert"] == alert]
    assert rule["labels"]["severity"] in {"page", "ticket"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_metric_the_rules_read_is_exposed_by_sigwatch() -> None:
    exposed = exposed_names()
    for group in rule_documents()["groups"]:
        for rule in group["rules"]:
            for name in METRIC_NAME.findall(rule["expr"]):
                assert name in exposed, f"{name} in {rule.get('alert') or rule.get('record')} is not exposed"
