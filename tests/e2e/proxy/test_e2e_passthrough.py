"""Issue 2, end to end: boto3 and the AWS CLI, with endpoint_url pointing at sigwatch in front of the
emulator, get the emulator's answer unchanged.

Two emulators with the same seed and a frozen clock answer the same call sequence with the same bytes
(request ids, generated ARNs and Date included). One is called directly, the other through sigwatch:
status, body bytes and headers must be identical, apart from hop-by-hop headers and sigwatch's own
x-sigwatch-* annotations.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from e2e_proxy_support import (
    EXAMPLE_CREDENTIALS,
    HOP_BY_HOP,
    LoopThread,
    RunningEmulator,
    RunningSigwatch,
    aws,
    boto,
    cli_environment,
    line_for,
    request_lines,
    start_emulator,
    start_sigwatch,
)

from proxy.emulator import EmulatorSettings

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def without_annotations(self) -> Answer:
        kept = [
            (name, value)
            for name, value in self.headers
            if name.lower() not in HOP_BY_HOP and not name.lower().startswith("x-sigwatch-")
        ]
        return Answer(self.status, kept, self.body)

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


@dataclass
class Twins:
    """Emulator `direct` (called as is) and emulator `proxied` (behind `sigwatch`): same seed, same
    frozen clock, so the same calls get byte-identical answers."""

    direct: RunningEmulator
    proxied: RunningEmulator
    sigwatch: RunningSigwatch


@pytest.fixture
def twins(servers: LoopThread) -> Iterator[Twins]:
    frozen = datetime.now(UTC).replace(microsecond=0)
    settings = EmulatorSettings(credentials=EXAMPLE_CREDENTIALS, seed=7, clock=lambda: frozen)
    direct = servers.run(start_emulator(settings))
    proxied = servers.run(start_emulator(settings))
    sigwatch = servers.run(start_sigwatch(proxied.url, "observe"))
    yield Twins(direct, proxied, sigwatch)
    servers.run(sigwatch.server.stop(grace=1.0))
    servers.run(direct.runner.cleanup())
    servers.run(proxied.runner.cleanup())


class Recorded:
    """A boto3 client that keeps the raw HTTP answer of every call (status, headers in order, body)."""

    def __init__(self, service: str, endpoint_url: str) -> None:
        self.client = boto(service, endpoint_url)
        self.answers: list[Answer] = []
        self.client.meta.events.register("after-call.*.*", self._keep)

    def _keep(self, http_response: Any, **_: Any) -> None:
        raw = http_response.raw
        self.answers.append(
            Answer(http_response.status_code, list(raw.headers.items()), http_response.content)
        )


def call_both(direct: Recorded, proxied: Recorded, call: Callable[[Any], Any]) -> tuple[Answer, Answer]:
    """Make `call` with both clients; both must succeed or both fail with the same botocore error."""
    outcomes = []
    for recorded in (direct, proxied):
        try:
            outcomes.append(("ok", call(recorded.client)))
        except Exception as error:  # botocore's ClientError: compared below
            outcomes.append(("error", str(error)))
    assert outcomes[0][0] == outcomes[1][0], outcomes
    if outcomes[0][0] == "error":
        assert outcomes[0][1] == outcomes[1][1]
    return direct.answers[-1], proxied.answers[-1]


MISSING_GATEWAY = "arn:aws:storagegateway:us-east-1:123456789012:gateway/sgw-00000000"
STORAGEGATEWAY_CALLS: list[Callable[[Any], Any]] = [
    lambda c: c.activate_gateway(
        ActivationKey="PASS1-PASS2-PASS3-PASS4-PASS5",
        GatewayName="passthrough",
        GatewayTimezone="GMT",
        GatewayRegion="us-east-1",
        GatewayType="STORED",
    ),
    lambda c: c.list_gateways(),
    lambda c: c.describe_gateway_information(GatewayARN=MISSING_GATEWAY),
]
S3_CALLS: list[Callable[[Any], Any]] = [
    lambda c: c.create_bucket(Bucket="passthrough-bucket"),
    lambda c: c.put_object(Bucket="passthrough-bucket", Key="a/b c.txt", Body=b"unchanged " * 1000),
    lambda c: c.get_object(Bucket="passthrough-bucket", Key="a/b c.txt")["Body"].read(),
    lambda c: c.list_objects_v2(Bucket="passthrough-bucket"),
    lambda c: c.get_object(Bucket="passthrough-bucket", Key="missing"),
    lambda c: c.head_object(Bucket="passthrough-bucket", Key="missing"),
]


@pytest.mark.parametrize(("service", "calls"), [("storagegateway", STORAGEGATEWAY_CALLS), ("s3", S3_CALLS)])
def test_boto3_gets_the_emulators_answer_unchanged(
    twins: Twins, logs: Any, service: str, calls: list[Callable[[Any], Any]]
) -> None:
    direct = Recorded(service, twins.direct.url)
    proxied = Recorded(service, twins.sigwatch.url)
    pairs = [call_both(direct, proxied, call) for call in calls]
    for expected, through in pairs:
        assert through.without_annotations() == expected
        # sigwatch did see (and annotate) each call, and logged it once.
        request_id = through.header("x-sigwatch-request-id")
        assert request_id is not None
        line = line_for(logs, request_id)
        assert (line["status"], line["sigv4"], line["findings"]) == (expected.status, "valid", [])
    assert [a.status for a in proxied.answers] == [a.status for a in direct.answers]
    assert any(a.status >= 400 for a in direct.answers)  # errors pass unchanged too


def debug_responses(stderr: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body) of each response, from `aws --debug` (botocore logs both, in order)."""
    headers = [ast.literal_eval(m) for m in re.findall(r"Response headers: (\{.*\})", stderr)]
    bodies = [ast.literal_eval(m) for m in re.findall(r"Response body:\n(b'.*'|b\".*\")", stderr)]
    assert len(headers) == len(bodies)
    return list(zip(headers, bodies, strict=True))


@pytest.mark.slow
def test_aws_cli_gets_the_emulators_answer_unchanged(twins: Twins, tmp_path: Path, logs: Any) -> None:
    environment = cli_environment(tmp_path)
    arguments = [
        (
            "storagegateway",
            "activate-gateway",
            "--activation-key",
            "CLIP1-CLIP2-CLIP3-CLIP4-CLIP5",
            "--gateway-name",
            "cli",
            "--gateway-timezone",
            "GMT",
            "--gateway-region",
            "us-east-1",
            "--gateway-type",
            "CACHED",
        ),
        ("storagegateway", "list-gateways"),
        # A documented error (GatewayNotFound): the CLI exits 255 with the same message both ways.
        ("storagegateway", "list-volumes", "--gateway-arn", MISSING_GATEWAY),
    ]
    return_codes = []
    for command in arguments:
        direct = aws(environment, twins.direct.url, "--debug", *command)
        through = aws(environment, twins.sigwatch.url, "--debug", *command)
        assert (through.returncode, through.stdout) == (direct.returncode, direct.stdout)
        return_codes.append(through.returncode)
        assert (
            direct.stderr.count("Sending http request") == through.stderr.count("Sending http request") == 1
        )
        # botocore logs the response once per parse (twice for an error): the same answer each time.
        direct_responses = debug_responses(direct.stderr)
        through_responses = debug_responses(through.stderr)
        assert len(direct_responses) == len(through_responses) >= 1
        for (direct_headers, direct_body), (through_headers, through_body) in zip(
            direct_responses, through_responses, strict=True
        ):
            assert through_body == direct_body
            assert {
                name: value
                for name, value in through_headers.items()
                if not name.lower().startswith("x-sigwatch-") and name.lower() not in HOP_BY_HOP
            } == direct_headers
            assert through_headers["x-sigwatch-signature"] == "valid"
    assert return_codes == [0, 0, 255]  # AWS CLI v1: a service error exits with 255
    assert json.loads(aws(environment, twins.sigwatch.url, *arguments[1]).stdout)["Gateways"]
    lines = request_lines(logs, len(arguments) + 1)
    assert [line["operation"] for line in lines] == [
        "ActivateGateway",
        "ListGateways",
        "ListVolumes",
        "ListGateways",
    ]
    assert all(line["findings"] == [] and line["sigv4"] == "valid" for line in lines)
