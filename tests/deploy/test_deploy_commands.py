"""Every sigwatch command line the deploy files run must parse with the product's own argument parser."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
import yaml
from deploy_support import (
    DEPLOY,
    DOCKERFILE,
    OVERLAYS,
    all_containers,
    parse_dockerfile,
    pod_templates,
    render_overlay,
    stages,
)

COMPOSE = DEPLOY / "compose" / "docker-compose.yml"


def deployed_command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `sigwatch`) for the image default, the compose services and every overlay."""
    lines: list[tuple[str, list[str]]] = []
    runtime = stages(parse_dockerfile(DOCKERFILE))[-1]
    (default,) = [json.loads(i.argument) for i in runtime if i.keyword == "CMD"]
    lines.append(("Dockerfile CMD", default))
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    for name, service in compose["services"].items():
        if service.get("image") == "sigwatch:local":
            lines.append((f"compose {name}", [str(arg) for arg in service["command"]]))
    for overlay in OVERLAYS:
        for workload, template in pod_templates(render_overlay(overlay)):
            for container in all_containers(template["spec"]):
                if container["image"].split(":")[0].rsplit("/", 1)[-1] == "sigwatch":
                    where = f"{overlay} {workload['metadata']['name']}/{container['name']}"
                    lines.append((where, [str(arg) for arg in container["args"]]))
    return lines


COMMAND_LINES = deployed_command_lines()


def test_every_shape_runs_sigwatch_commands() -> None:
    commands = {argv[0] for _, argv in COMMAND_LINES}
    assert commands == {"run", "emulate", "demo"}
    assert len(COMMAND_LINES) >= 9


@pytest.mark.parametrize(("where", "argv"), COMMAND_LINES, ids=[where for where, _ in COMMAND_LINES])
def test_command_line_parses(where: str, argv: list[str]) -> None:
    cli = pytest.importorskip("proxy.cli", reason="the sigwatch CLI (issue 2) is not there yet")
    parser: Any = cli.build_parser()
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            parser.parse_args(argv)
        except SystemExit as exit_:
            pytest.fail(
                f"{where}: `sigwatch {' '.join(argv)}` does not parse ({exit_.code}): {errors.getvalue()}"
            )
