"""`sigwatch run` as users start it: a real process with a credentials file, in front of moto_server.

boto3 calls through it: valid ones pass with every signature verified; a wrong secret is answered by
sigwatch itself (enforce) and counted as a rejection. The JSON log lines on its stdout carry no secret;
SIGTERM stops it with exit status 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_proxy_support import (
    EXAMPLE_KEY_ID,
    EXAMPLE_SECRET,
    WRONG_SECRET,
    MotoServer,
    boto,
    client_error,
)
from observability.leak_scan import scan_output

from tests.support.net import free_port

pytestmark = pytest.mark.e2e

SIGWATCH = Path(sys.executable).with_name("sigwatch")


class RunProcess:
    def __init__(self, process: subprocess.Popen[bytes], url: str, admin: str, output: Path) -> None:
        self.process, self.url, self.admin, self.output = process, url, admin, output

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output.read_text().splitlines() if line.startswith("{")]

    def request_lines(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines() if line["event"] == "request"]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture
def sigwatch_run(moto: MotoServer, tmp_path: Path) -> Iterator[RunProcess]:
    if not SIGWATCH.exists():
        pytest.skip(f"the sigwatch command is not installed next to {sys.executable}")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {EXAMPLE_KEY_ID}\naws_secret_access_key = {EXAMPLE_SECRET}\n"
    )
    credentials.chmod(0o600)
    listen, admin = free_port(), free_port()
    output = tmp_path / "sigwatch.out"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGWATCH_"))}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(SIGWATCH),
                "run",
                "--upstream",
                moto.url,
                "--listen",
                f"127.0.0.1:{listen}",
                "--admin",
                f"127.0.0.1:{admin}",
                "--credentials",
                str(credentials),
                "--mode",
                "enforce",
                "--log-format",
                "json",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    running = RunProcess(process, f"http://127.0.0.1:{listen}", f"http://127.0.0.1:{admin}", output)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{running.admin}/readyz", timeout=2) as ready:
                if ready.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    assert process.poll() is None, output.read_text()
    try:
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
        text = output.read_text()
        scan_output("sigwatch run", stdout=text)
        assert returncode == 0, text[-2000:]
        assert any(line["event"] == "stopped" for line in running.lines())


def test_sigwatch_run_in_front_of_moto(sigwatch_run: RunProcess) -> None:
    sts = boto("sts", sigwatch_run.url)
    assert sts.get_caller_identity()["Account"]
    dynamodb = boto("dynamodb", sigwatch_run.url)
    assert "TableNames" in dynamodb.list_tables()
    s3 = boto("s3", sigwatch_run.url)
    s3.create_bucket(Bucket="e2e-run-command")
    s3.put_object(Bucket="e2e-run-command", Key="k", Body=b"through sigwatch run")
    wrong = client_error(lambda: boto("sts", sigwatch_run.url, secret=WRONG_SECRET).get_caller_identity())
    assert wrong["Error"]["Code"] == "SignatureDoesNotMatch"
    assert wrong["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-origin"] == "proxy"
    lines = sigwatch_run.request_lines(5)
    assert [(line["service"], line["sigv4"], line["findings"] == []) for line in lines] == [
        ("sts", "valid", True),
        ("dynamodb", "valid", True),
        ("s3", "valid", True),
        ("s3", "valid", True),
        ("sts", "invalid", False),
    ]
    assert lines[-1]["answered_by"] == "proxy" and lines[-1]["outcome"] == "rejected"
    with urllib.request.urlopen(f"{sigwatch_run.admin}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert (
        'sigwatch_rejections_total{check="signature.verify",code="SignatureDoesNotMatch",service="sts"} 1.0'
        in metrics
    )
