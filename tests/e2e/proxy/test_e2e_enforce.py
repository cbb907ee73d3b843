"""Issue 3, end to end: boto3 and the AWS CLI through sigwatch in ENFORCE mode, against the emulator and
against moto_server.

- A scripted session over several services completes with zero findings, every request's signature
  verified (`sigv4` = valid on its log line).
- The same calls with a wrong secret, an unknown access key, a skewed clock and a body changed after
  signing are answered by sigwatch itself (x-sigwatch-origin: proxy) with the code AWS sends for the
  protocol, as botocore reports it, and the request never reaches the upstream.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from e2e_proxy_support import (
    CASE_IDS,
    CASES,
    FAULTS,
    WRONG_SECRET,
    Case,
    Counted,
    MotoServer,
    RunningEmulator,
    RunningSigwatch,
    aws,
    boto,
    cli_environment,
    client_error,
    faulty_client,
    line_for,
    request_lines,
)

pytestmark = pytest.mark.e2e


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_clean(lines: list[dict[str, Any]]) -> None:
    """Every request valid, no finding at all (not even a warning)."""
    problems = [
        (line["service"], line["operation"], line["sigv4"], line["findings"])
        for line in lines
        if line["findings"] or line["sigv4"] != "valid"
    ]
    assert problems == []


# -- scripted sessions --------------------------------------------------------------------------------


def emulator_session(clients: Counted, endpoint: str) -> None:
    sgw = clients.client("storagegateway", endpoint)
    arn = sgw.activate_gateway(
        ActivationKey="-".join(uuid.uuid4().hex[i : i + 5].upper() for i in range(0, 25, 5)),
        GatewayName=unique("session"),
        GatewayTimezone="GMT",
        GatewayRegion="us-east-1",
        GatewayType="STORED",
    )["GatewayARN"]
    assert arn in [g["GatewayARN"] for g in sgw.list_gateways()["Gateways"]]
    assert sgw.describe_gateway_information(GatewayARN=arn)["GatewayState"] == "RUNNING"
    sgw.update_gateway_information(GatewayARN=arn, GatewayName=unique("renamed"))
    disks = sgw.list_local_disks(GatewayARN=arn)["Disks"]
    assert disks
    assert sgw.list_volumes(GatewayARN=arn)["VolumeInfos"] == []

    s3 = clients.client("s3", endpoint)
    bucket = unique("session")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/a file+name.txt", Body=b"session data", ContentType="text/plain")
    assert s3.get_object(Bucket=bucket, Key="dir/a file+name.txt")["Body"].read() == b"session data"
    assert s3.head_object(Bucket=bucket, Key="dir/a file+name.txt")["ContentLength"] == 12
    s3.copy_object(Bucket=bucket, Key="copy.txt", CopySource=f"{bucket}/dir/a file+name.txt")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
    assert [o["Key"] for o in listed["Contents"]] == ["dir/a file+name.txt"]
    presigned = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "copy.txt"})
    assert presigned.startswith(endpoint)
    s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "copy.txt"}, {"Key": "dir/a file+name.txt"}]}
    )

    # Import/Export (Query protocol; botocore signs it for the IngestionService credential scope).
    importexport = clients.client("importexport", endpoint)
    manifest = (
        f"manifestVersion: 2.0\nbucket: {bucket}\ndeviceId: 49382\neraseDevice: yes\nreturnAddress:\n"
        "    name: Jane Roe\n    street1: 1200 12th Ave S.\n    city: Seattle\n    stateOrProvince: WA\n"
        "    postalCode: 98114\n    country: USA\n"
    )
    job = importexport.create_job(JobType="Import", Manifest=manifest, ValidateOnly=False)["JobId"]
    assert job in [j["JobId"] for j in importexport.list_jobs()["Jobs"]]
    assert importexport.get_status(JobId=job)["ProgressCode"] == "Pending"
    assert importexport.cancel_job(JobId=job)["Success"] is True
    s3.delete_bucket(Bucket=bucket)


def moto_session(clients: Counted, endpoint: str) -> None:
    s3 = clients.client("s3", endpoint)
    bucket = unique("moto-session")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k.txt", Body=b"moto data")
    assert s3.get_object(Bucket=bucket, Key="k.txt")["Body"].read() == b"moto data"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k.txt"]
    s3.delete_object(Bucket=bucket, Key="k.txt")
    s3.delete_bucket(Bucket=bucket)

    sts = clients.client("sts", endpoint)
    assert sts.get_caller_identity()["Account"]
    assert sts.get_session_token(DurationSeconds=900)["Credentials"]["AccessKeyId"]

    iam = clients.client("iam", endpoint)
    user = unique("user")
    iam.create_user(UserName=user, Tags=[{"Key": "team", "Value": "a b&c"}])
    assert user in [u["UserName"] for u in iam.list_users()["Users"]]
    iam.delete_user(UserName=user)

    dynamodb = clients.client("dynamodb", endpoint)
    table = unique("table")
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName=table, Item={"id": {"S": "1"}, "text": {"S": "ünïcode ✓"}})
    assert dynamodb.get_item(TableName=table, Key={"id": {"S": "1"}})["Item"]["text"]["S"] == "ünïcode ✓"
    assert dynamodb.scan(TableName=table)["Count"] == 1
    dynamodb.delete_table(TableName=table)

    sqs = clients.client("sqs", endpoint)
    queue = sqs.create_queue(QueueName=unique("queue"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="hello through sigwatch")
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"]
    assert received[0]["Body"] == "hello through sigwatch"
    sqs.delete_queue(QueueUrl=queue)


def test_emulator_session_with_boto3_has_no_findings(enforce_proxy: RunningSigwatch, logs: Any) -> None:
    clients = Counted()
    emulator_session(clients, enforce_proxy.url)
    lines = clients.lines(logs)
    assert {line["service"] for line in lines} == {"storagegateway", "s3", "importexport"}
    assert_clean(lines)


def test_moto_session_with_boto3_has_no_findings(moto_proxy: RunningSigwatch, logs: Any) -> None:
    clients = Counted()
    moto_session(clients, moto_proxy.url)
    lines = clients.lines(logs)
    assert {line["service"] for line in lines} == {"s3", "sts", "iam", "dynamodb", "sqs"}
    assert all(line["answered_by"] == "upstream" and line["status"] in (200, 204) for line in lines)
    assert_clean(lines)


@pytest.mark.slow
def test_aws_cli_sessions_have_no_findings(
    enforce_proxy: RunningSigwatch,
    moto_proxy: RunningSigwatch,
    cli_env: dict[str, str],
    tmp_path: Path,
    logs: Any,
) -> None:
    upload = tmp_path / "upload.txt"
    upload.write_text("uploaded through sigwatch by the AWS CLI\n")
    bucket = unique("cli-session")
    commands = [
        (enforce_proxy, ("storagegateway", "list-gateways")),
        (enforce_proxy, ("s3", "mb", f"s3://{bucket}")),
        (enforce_proxy, ("s3", "cp", str(upload), f"s3://{bucket}/upload.txt")),
        (enforce_proxy, ("s3", "rb", "--force", f"s3://{bucket}")),  # lists, deletes, then removes
        (moto_proxy, ("iam", "list-users")),
        (moto_proxy, ("dynamodb", "list-tables")),
        (moto_proxy, ("sqs", "list-queues")),
        (moto_proxy, ("s3api", "list-buckets")),
    ]
    for proxy, command in commands:
        done = aws(cli_env, proxy.url, *command)
        assert done.returncode == 0, (command, done.stderr)
    identity = json.loads(aws(cli_env, moto_proxy.url, "sts", "get-caller-identity").stdout)
    assert identity["Arn"]
    lines = [line for line in request_lines(logs, len(commands) + 1) if "aws-cli/" in line["user_agent"]]
    assert len(lines) >= len(commands) + 1
    assert {line["service"] for line in lines} == {"storagegateway", "s3", "sts", "iam", "dynamodb", "sqs"}
    assert_clean(lines)


# -- the same calls, done wrong -----------------------------------------------------------------------


@dataclass
class Upstreams:
    emulator: RunningEmulator
    moto: MotoServer
    proxies: dict[str, RunningSigwatch]

    def requests_received(self) -> tuple[int, int]:
        return len(self.emulator.received), self.moto.requests_received()


@pytest.fixture
def upstreams(
    emulator: RunningEmulator, moto: MotoServer, enforce_proxy: RunningSigwatch, moto_proxy: RunningSigwatch
) -> Iterator[Upstreams]:
    yield Upstreams(emulator, moto, {"emulator": enforce_proxy, "moto": moto_proxy})


FAULT_CASES = [
    pytest.param(
        case,
        fault,
        id=f"{case_id}-{fault}",
    )
    for fault in FAULTS
    for case, case_id in zip(CASES, CASE_IDS, strict=True)
]


@pytest.mark.parametrize(("case", "fault"), FAULT_CASES)
def test_faults_are_answered_by_sigwatch_with_aws_codes(
    upstreams: Upstreams, case: Case, fault: str, skewable: Callable[[timedelta], None], logs: Any
) -> None:
    proxy = upstreams.proxies[case.upstream]
    if case.service == "s3":
        boto("s3", proxy.url).create_bucket(Bucket=f"faults-{case.upstream}")
    before = upstreams.requests_received()
    client = faulty_client(fault, case.service, proxy.url, skewable)
    response = client_error(lambda: case.call(client))
    expected = case.codes[fault]
    assert response["Error"]["Code"] == expected
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-sigwatch-origin"] == "proxy"
    message = response["Error"]["Message"]
    if fault == "clock_behind" and expected != "RequestTimeTooSkewed":
        assert message.startswith("Signature expired: ")
    elif fault == "clock_ahead" and expected != "RequestTimeTooSkewed":
        assert message.startswith("Signature not yet current: ")
    elif expected == "RequestTimeTooSkewed":
        assert message == "The difference between the request time and the current time is too large."
        assert response["Error"]["MaxAllowedSkewMilliseconds"] == "900000"
    line = line_for(logs, headers["x-sigwatch-request-id"])
    assert (line["answered_by"], line["outcome"], line["upstream_status"]) == ("proxy", "rejected", None)
    assert expected in [finding["code"] for finding in line["findings"] if finding["severity"] == "error"]
    if fault == "tampered" and case.service == "s3":
        # The body is checked while it streams: the upstream may see the head, never the whole body.
        good = boto("s3", proxy.url)
        assert (
            client_error(lambda: good.head_object(Bucket=f"faults-{case.upstream}", Key="tampered.txt"))[
                "Error"
            ]["Code"]
            == "404"
        )
    else:
        assert upstreams.requests_received() == before


def test_aws_cli_with_a_wrong_secret_gets_the_aws_codes(
    upstreams: Upstreams, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    environment = cli_environment(tmp_path, secret=WRONG_SECRET)
    before = upstreams.requests_received()
    expectations = [
        ("emulator", ("storagegateway", "list-gateways"), "InvalidSignatureException"),
        ("emulator", ("s3api", "list-buckets"), "SignatureDoesNotMatch"),
        ("moto", ("sts", "get-caller-identity"), "SignatureDoesNotMatch"),
        ("moto", ("dynamodb", "list-tables"), "InvalidSignatureException"),
    ]
    for upstream, command, code in expectations:
        done = aws(environment, upstreams.proxies[upstream].url, *command)
        assert done.returncode == 255, done.stdout
        assert f"({code})" in done.stderr, (command, done.stderr)
    assert upstreams.requests_received() == before


def test_aws_cli_with_a_skewed_clock_gets_the_aws_codes(
    upstreams: Upstreams, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """The CLI on a host whose clock is 20 minutes behind (its signer's clock, shifted at start-up)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import datetime\n"
        "import awscli  # noqa: F401  (from now on `botocore` is the CLI's own copy)\n"
        "import botocore.auth as auth\n"
        "_real = auth.get_current_datetime\n"
        "auth.get_current_datetime = lambda *a, **k: _real(*a, **k) - datetime.timedelta(minutes=20)\n"
    )
    environment = dict(cli_env, PYTHONPATH=str(site))
    before = upstreams.requests_received()
    for upstream, command, code in [
        ("emulator", ("storagegateway", "list-gateways"), "InvalidSignatureException"),
        ("emulator", ("s3api", "list-buckets"), "RequestTimeTooSkewed"),
        ("moto", ("sts", "get-caller-identity"), "SignatureDoesNotMatch"),
    ]:
        done = aws(environment, upstreams.proxies[upstream].url, *command)
        assert done.returncode == 255, done.stdout
        assert f"({code})" in done.stderr, (command, done.stderr)
    assert upstreams.requests_received() == before


class SignerLog(logging.Handler):
    """botocore's own canonical request and string to sign, as its signer logs them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.canonical: list[str] = []
        self.string_to_sign: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("CanonicalRequest:"):
            self.canonical.append(str(record.args[0]) if record.args else "")
        elif record.msg.startswith("StringToSign:"):
            self.string_to_sign.append(str(record.args[0]) if record.args else "")


@pytest.fixture
def signer_log() -> Iterator[SignerLog]:
    logger = logging.getLogger("botocore.auth")
    handler, level = SignerLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_a_mismatch_logs_the_canonical_request_the_client_signed(
    upstreams: Upstreams, case: Case, signer_log: SignerLog, logs: Any
) -> None:
    """issue 3: with the secret known, a signature mismatch's log line carries the canonical request and
    string to sign sigwatch computed, so a developer can diff them with the client's: for a request
    that only used a wrong secret, they are exactly botocore's."""
    proxy = upstreams.proxies[case.upstream]
    if case.service == "s3":
        boto("s3", proxy.url).create_bucket(Bucket=f"faults-{case.upstream}")
    signer_log.canonical.clear()
    signer_log.string_to_sign.clear()
    response = client_error(lambda: case.call(boto(case.service, proxy.url, secret=WRONG_SECRET)))
    line = line_for(logs, response["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-request-id"])
    (mismatch,) = [f for f in line["findings"] if f["check"] == "signature.verify"]
    assert mismatch["debug"]["canonical_request"] == signer_log.canonical[-1]
    assert mismatch["debug"]["string_to_sign"] == signer_log.string_to_sign[-1]
    assert WRONG_SECRET not in json.dumps(line)
