"""aiohttp's C parser is the one the smuggling tests pin down: sigwatch says at start-up which parser it
runs, and says it loudly (an error line) when it is the laxer pure-Python one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from proxy.server.listener import http_parser_kind
from tests.conftest import LogSink
from tests.functional.proxy.conftest import StartProxy
from tests.observability.leak_scan import scan_output
from tests.reliability.support import free_port

REPO = Path(__file__).resolve().parents[2]
SIGWATCH = [sys.executable, "-m", "proxy"]


def test_this_environment_runs_the_c_parser() -> None:
    import aiohttp.http_parser

    assert aiohttp.http_parser.HttpRequestParser is aiohttp.http_parser.HttpRequestParserC
    assert http_parser_kind() == "c"


async def test_the_started_line_names_the_parser(start_proxy: StartProxy, logs: LogSink) -> None:
    await start_proxy(f"http://127.0.0.1:{free_port()}")
    (started,) = logs.events("started")
    assert started["http_parser"] == "c"
    assert logs.events("http_parser_not_c") == []


def start_lines(extra_env: dict[str, str]) -> list[dict[str, object]]:
    """`sigwatch run` in a subprocess: its JSON lines up to `upstream_down` (logged by the readiness probe,
    which first runs once the signal handlers are installed: SIGTERM then means a graceful stop)."""
    env = {k: v for k, v in os.environ.items() if k != "AIOHTTP_NO_EXTENSIONS"} | extra_env
    process = subprocess.Popen(
        [
            *SIGWATCH,
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--upstream",
            f"http://127.0.0.1:{free_port()}",
            "--log-format",
            "json",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    lines: list[dict[str, object]] = []
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            lines.append(orjson.loads(raw))
            if lines[-1]["event"] == "upstream_down":
                break
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    scan_output("sigwatch run", stdout, stderr)
    assert process.returncode == 0, stderr
    return lines


@pytest.mark.parametrize(("no_extensions", "parser"), [(False, "c"), (True, "python")])
def test_start_up_says_which_parser_runs(no_extensions: bool, parser: str) -> None:
    lines = start_lines({"AIOHTTP_NO_EXTENSIONS": "1"} if no_extensions else {})
    (started,) = [line for line in lines if line["event"] == "started"]
    assert started["http_parser"] == parser
    warnings = [line for line in lines if line["event"] == "http_parser_not_c"]
    if no_extensions:
        (warning,) = warnings
        assert warning["level"] == "error"
        assert "AIOHTTP_NO_EXTENSIONS" in str(warning["fix"])
    else:
        assert warnings == []


@pytest.mark.slow
def test_smuggling_properties_hold_with_the_pure_python_parser() -> None:
    """The whole smuggling module again, in a process where aiohttp runs its pure-Python parser."""
    env = os.environ | {"AIOHTTP_NO_EXTENSIONS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/reliability/test_reliability_smuggling.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
