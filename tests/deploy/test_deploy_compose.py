"""The compose demo stack: a spec-valid file, hardened services, and references to files that exist."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_support import DEPLOY, REPO

COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
# Files other work produces (observability): their mounts are checked once they exist.
NOT_YET_OURS = {
    DEPLOY / "prometheus" / "prometheus.yml",
    DEPLOY / "prometheus" / "alerts.yml",
    REPO / "grafana" / "provisioning",
    REPO / "grafana" / "dashboards",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as docker compose sees it: YAML merge keys (<<) resolved."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def host_path(relative: str) -> Path:
    return (COMPOSE.parent / relative).resolve()


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path as written, container path) of the bind mounts in short syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def test_compose_file_is_valid_for_the_compose_specification(compose: dict[str, Any]) -> None:
    """compose-spec's strict parser rejects unknown keys and ill-typed values, as docker compose does."""
    from compose_spec import PyCompose

    parsed = PyCompose.from_json(json.dumps(compose))
    assert parsed.service_names() == ["emulator", "sigwatch", "traffic", "prometheus", "grafana"]


def test_compose_validator_is_really_strict(compose: dict[str, Any]) -> None:
    from compose_spec import PyCompose

    broken = json.loads(json.dumps(compose))
    broken["services"]["sigwatch"]["readonly"] = True  # the key is read_only
    with pytest.raises(ValueError, match="readonly"):
        PyCompose.from_json(json.dumps(broken))


def test_every_service_is_hardened(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        assert service.get("read_only") is True, name
        assert service.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged", False), name
        assert "cap_add" not in service, name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_sigwatch_image_services_run_as_the_image_user(compose: dict[str, Any]) -> None:
    for name in ("emulator", "sigwatch", "traffic"):
        service = services(compose)[name]
        assert service["build"] == {"context": "../..", "dockerfile": "deploy/docker/Dockerfile"}
        assert service["user"] == "10001:10001"
        assert any(entry.startswith("/tmp:") for entry in service["tmpfs"]), "read-only root needs a /tmp"


def test_build_context_and_dockerfile_exist(compose: dict[str, Any]) -> None:
    build = services(compose)["sigwatch"]["build"]
    context = host_path(build["context"])
    assert context == REPO
    assert (context / build["dockerfile"]).is_file()


def test_dependencies_wait_for_health(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    for name, service in all_services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            check = all_services[dependency].get("healthcheck", {})
            assert check.get("test") and not check.get("disable"), (
                f"{dependency} has no healthcheck to wait on"
            )
    order = ["emulator", "sigwatch", "traffic"]
    assert "emulator" in all_services["sigwatch"]["depends_on"]
    assert "sigwatch" in all_services["traffic"]["depends_on"]
    assert order == [n for n in all_services if n in order]


def test_sigwatch_runs_in_reverse_mode_in_front_of_the_emulator(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    command = all_services["sigwatch"]["command"]

    def flag(name: str) -> str:
        return str(command[command.index(name) + 1])

    assert command[0] == "run"
    upstream = urlsplit(flag("--upstream"))
    emulator_listen = all_services["emulator"]["command"]
    emulator_port = int(emulator_listen[emulator_listen.index("--listen") + 1].rsplit(":", 1)[1])
    assert (upstream.hostname, upstream.port) == ("emulator", emulator_port)
    assert flag("--listen") == "0.0.0.0:8080" and flag("--admin") == "0.0.0.0:9090"
    traffic = all_services["traffic"]["command"]
    assert traffic[:2] == ["demo", "--traffic"]
    assert urlsplit(traffic[traffic.index("--endpoint-url") + 1]).netloc == "sigwatch:8080"


def test_credentials_secret_is_the_example_file_and_matches_the_traffic_keys(compose: dict[str, Any]) -> None:
    secret_file = host_path(compose["secrets"]["aws_credentials"]["file"])
    assert secret_file.is_file()
    text = secret_file.read_text(encoding="utf-8")
    traffic_env = services(compose)["traffic"]["environment"]
    assert traffic_env["AWS_ACCESS_KEY_ID"] == "AKIAIOSFODNN7EXAMPLE"  # the AWS documentation example key
    assert f"aws_access_key_id = {traffic_env['AWS_ACCESS_KEY_ID']}" in text
    assert f"aws_secret_access_key = {traffic_env['AWS_SECRET_ACCESS_KEY']}" in text
    sigwatch = services(compose)["sigwatch"]
    assert "/run/secrets/aws_credentials" in sigwatch["command"]


@pytest.mark.parametrize(
    ("service", "source"),
    [
        ("prometheus", "../prometheus/prometheus.yml"),
        ("prometheus", "../prometheus/alerts.yml"),
        ("grafana", "../../grafana/provisioning"),
        ("grafana", "../../grafana/dashboards"),
    ],
)
def test_observability_mounts_point_at_existing_files(
    compose: dict[str, Any], service: str, source: str
) -> None:
    mounts = dict(bind_mounts(services(compose)[service]))
    assert source in mounts, f"{service} does not mount {source}"
    path = host_path(source)
    assert path in NOT_YET_OURS
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} (observability work) does not exist yet")
    assert path.is_dir() == ("." not in PurePosixPath(source).name)


def test_every_other_bind_mount_exists(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for source, _ in bind_mounts(service):
            path = host_path(source)
            if path not in NOT_YET_OURS:
                assert path.exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_config_scrapes_sigwatch_and_loads_the_mounted_rules(compose: dict[str, Any]) -> None:
    """The stack only shows data if prometheus.yml (observability work) targets the compose names."""
    config_path = DEPLOY / "prometheus" / "prometheus.yml"
    if not config_path.is_file():
        pytest.skip("deploy/prometheus/prometheus.yml (observability work) does not exist yet")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    targets = {
        target
        for job in config.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }
    assert "sigwatch:9090" in targets, f"no scrape job targets the compose service sigwatch:9090: {targets}"
    mounted = dict(bind_mounts(services(compose)["prometheus"]))
    rules_in_container = PurePosixPath(mounted["../prometheus/alerts.yml"])
    rule_files = {
        PurePosixPath(rule) if rule.startswith("/") else PurePosixPath("/etc/prometheus") / rule
        for rule in config.get("rule_files", [])
    }
    assert rules_in_container in rule_files, (
        f"prometheus.yml rule_files {rule_files} miss {rules_in_container}"
    )


def test_grafana_provisioning_uses_the_compose_prometheus_and_dashboard_folder(
    compose: dict[str, Any],
) -> None:
    provisioning = REPO / "grafana" / "provisioning"
    if not provisioning.is_dir():
        pytest.skip("grafana/provisioning (observability work) does not exist yet")
    documents = [
        yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for path in sorted(provisioning.rglob("*.y*ml"))
    ]
    urls = [
        source.get("url")
        for doc in documents
        for source in doc.get("datasources", [])
        if source.get("type") == "prometheus"
    ]
    assert urls and all(urlsplit(url).netloc == "prometheus:9090" for url in urls), urls
    dashboards_in_container = dict(bind_mounts(services(compose)["grafana"]))["../../grafana/dashboards"]
    paths = [
        provider.get("options", {}).get("path") for doc in documents for provider in doc.get("providers", [])
    ]
    assert dashboards_in_container in paths, f"no dashboard provider reads {dashboards_in_container}: {paths}"
