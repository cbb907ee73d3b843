"""The container image definition: hadolint, and the properties the deploy issue asks of it."""

from __future__ import annotations

import fnmatch
import json
import re

from deploy_support import DOCKERFILE, REPO, Instruction, parse_dockerfile, run, stages, tool

DOCKERIGNORE = REPO / ".dockerignore"  # the build context is the repository root


def build_args(instructions: list[Instruction]) -> dict[str, str]:
    """Global ARG defaults (those before the first FROM), which FROM lines may use."""
    values: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG" and "=" in instruction.argument:
            name, _, value = instruction.argument.partition("=")
            values[name] = value
    return values


def test_hadolint_reports_nothing() -> None:
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_hadolint_is_really_checking() -> None:
    """Control: the same hadolint flags an unpinned base, unpinned cached pip and a shell-form entrypoint."""
    result = run(
        [tool("hadolint"), "--no-color", "--format", "json", "-"],
        stdin="FROM python:latest\nRUN pip install aiohttp\nENTRYPOINT sigwatch run\n",
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3013", "DL3042", "DL3025"} <= codes


def test_base_image_is_pinned_by_version_tag_and_digest() -> None:
    instructions = parse_dockerfile(DOCKERFILE)
    args = build_args(instructions)
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        image = instruction.argument.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", image), (
            f"line {instruction.line}: {image} is not a slim base pinned by exact version and digest"
        )


def test_build_is_multi_stage_and_runtime_copies_only_the_virtualenv() -> None:
    build, runtime = stages(parse_dockerfile(DOCKERFILE))
    assert build[0].argument.endswith(" AS build")
    copies = [i.argument for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/sigwatch /opt/sigwatch"]


def test_runtime_runs_as_numeric_non_root_user() -> None:
    runtime = stages(parse_dockerfile(DOCKERFILE))[-1]
    users = [i.argument for i in runtime if i.keyword == "USER"]
    assert users, "the final stage has no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0, "USER must be numeric (runAsNonRoot verifies it) and not 0"
    assert not gid or (gid.isdigit() and int(gid) > 0)


def test_entrypoint_is_exec_form_so_sigterm_reaches_sigwatch() -> None:
    runtime = stages(parse_dockerfile(DOCKERFILE))[-1]
    entrypoints = [i.argument for i in runtime if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["sigwatch"]
    commands = [json.loads(i.argument) for i in runtime if i.keyword == "CMD"]
    assert commands and commands[-1][0] == "run"
    # Inside a container both listeners must be reachable from outside it.
    default_command = commands[-1]
    assert default_command[default_command.index("--listen") + 1].startswith("0.0.0.0:")
    assert default_command[default_command.index("--admin") + 1] == "0.0.0.0:9090"


def test_healthcheck_probes_the_admin_port_without_curl() -> None:
    runtime = stages(parse_dockerfile(DOCKERFILE))[-1]
    checks = [i.argument for i in runtime if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    _, _, command = checks[0].partition(" CMD ")
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    env = " ".join(i.argument for i in runtime if i.keyword == "ENV")
    assert 'SIGWATCH_HEALTHCHECK_URL="http://127.0.0.1:9090/healthz"' in env
    exposed = {port for i in runtime if i.keyword == "EXPOSE" for port in i.argument.split()}
    assert exposed == {"8080", "9090"}


def test_no_pip_cache_in_any_layer() -> None:
    for instruction in parse_dockerfile(DOCKERFILE):
        if instruction.keyword == "RUN" and "pip install" in instruction.argument:
            assert "--no-cache-dir" in instruction.argument, f"line {instruction.line}"


def test_labels_name_the_image() -> None:
    runtime = stages(parse_dockerfile(DOCKERFILE))[-1]
    labels = " ".join(i.argument for i in runtime if i.keyword == "LABEL")
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore semantics for the patterns used here: last match wins, ! re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if body.startswith("**/"):
            matched = any(fnmatch.fnmatchcase(part, body[3:]) for part in parts)
        else:
            matched = any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes)
        if matched:
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    build = stages(parse_dockerfile(DOCKERFILE))[0]
    sources = [
        source
        for i in build
        if i.keyword == "COPY" and not i.argument.startswith("--from")
        for source in i.argument.split()[:-1]
    ]
    assert sources == ["pyproject.toml", "README.md", "proxy"]
    for source in sources:
        assert (REPO / source).exists(), f"the build copies {source}, which does not exist"
        assert not _ignored(source, patterns), f".dockerignore drops {source}, which the build copies"
    assert not _ignored("proxy/core/model.py", patterns)
    for private in (
        ".git/config",
        ".venv/bin/python",
        "tests/unit/x.py",
        "deploy/kubernetes/examples/credentials",
    ):
        assert _ignored(private, patterns), f"{private} would be sent to the Docker daemon"
    assert _ignored("proxy/__pycache__/cli.cpython-311.pyc", patterns)
