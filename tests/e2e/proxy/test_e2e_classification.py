"""Issue 4, end to end: every error that passes through sigwatch is classified, and the classification
names the code botocore reports.

A sample of real errors, produced where they arise (missing resources, conflicts, bad input) by
moto_server and by the emulator, goes through sigwatch to boto3: for each one, the x-sigwatch-error /
x-sigwatch-error-class headers and the `error` object of the log line agree with botocore's
ClientError (Error.Code, and Storage Gateway's error.errorCode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.retries.standard
import pytest
from e2e_proxy_support import RunningSigwatch, assert_classified, boto, client_error, request_lines
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from proxy.emulator import FORCE_ERROR_HEADER

pytestmark = pytest.mark.e2e

Sample = tuple[str, Callable[[], Any], str, str]  # (name, call, botocore code, category)


def moto_samples(endpoint: str) -> list[Sample]:
    s3, iam, dynamodb, sqs = (boto(name, endpoint) for name in ("s3", "iam", "dynamodb", "sqs"))
    s3.create_bucket(Bucket="classify-full")
    s3.put_object(Bucket="classify-full", Key="k", Body=b"x")
    iam.create_user(UserName="classify-taken")
    key_schema = {
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    dynamodb.create_table(TableName="classify-taken", **key_schema)
    queue = sqs.create_queue(QueueName="classify-gone")["QueueUrl"]
    sqs.delete_queue(QueueUrl=queue)
    return [
        (
            "s3 missing bucket",
            lambda: s3.get_object(Bucket="classify-none", Key="k"),
            "NoSuchBucket",
            "not_found",
        ),
        (
            "s3 missing key",
            lambda: s3.get_object(Bucket="classify-full", Key="none"),
            "NoSuchKey",
            "not_found",
        ),
        # HEAD: no body, botocore reports the status as the code.
        ("s3 HEAD 404", lambda: s3.head_object(Bucket="classify-full", Key="none"), "404", "not_found"),
        ("s3 not empty", lambda: s3.delete_bucket(Bucket="classify-full"), "BucketNotEmpty", "conflict"),
        ("iam missing user", lambda: iam.get_user(UserName="classify-none"), "NoSuchEntity", "not_found"),
        (
            "iam user exists",
            lambda: iam.create_user(UserName="classify-taken"),
            "EntityAlreadyExists",
            "conflict",
        ),
        (
            "dynamodb missing table",
            lambda: dynamodb.describe_table(TableName="classify-none"),
            "ResourceNotFoundException",
            "not_found",
        ),
        (
            "dynamodb table exists",
            lambda: dynamodb.create_table(TableName="classify-taken", **key_schema),
            "ResourceInUseException",
            "conflict",
        ),
        (
            "dynamodb wrong key",
            lambda: dynamodb.get_item(TableName="classify-taken", Key={"other": {"S": "1"}}),
            "ValidationException",
            "validation",
        ),
        # SQS speaks JSON but keeps its Query codes: x-amzn-query-error names the code botocore reports.
        (
            "sqs missing queue",
            lambda: sqs.get_queue_url(QueueName="classify-none"),
            "AWS.SimpleQueueService.NonExistentQueue",
            "not_found",
        ),
        (
            "sqs deleted queue",
            lambda: sqs.send_message(QueueUrl=queue, MessageBody="x"),
            "AWS.SimpleQueueService.NonExistentQueue",
            "not_found",
        ),
    ]


MISSING_GATEWAY = "arn:aws:storagegateway:us-east-1:123456789012:gateway/sgw-00000000"


def emulator_samples(endpoint: str) -> list[Sample]:
    sgw, s3, importexport = (boto(name, endpoint) for name in ("storagegateway", "s3", "importexport"))
    s3.create_bucket(Bucket="classify-emulator")
    s3.put_object(Bucket="classify-emulator", Key="k", Body=b"x")
    activation = {"GatewayName": "gw", "GatewayTimezone": "GMT", "GatewayRegion": "us-east-1"}
    return [
        (
            "storagegateway missing gateway",
            lambda: sgw.describe_gateway_information(GatewayARN=MISSING_GATEWAY),
            "InvalidGatewayRequestException",
            "not_found",
        ),
        (
            "storagegateway bad activation key",
            lambda: sgw.activate_gateway(ActivationKey="not-a-key", **activation),
            "InvalidGatewayRequestException",
            "validation",
        ),
        (
            "storagegateway bad input",
            lambda: sgw.update_gateway_information(GatewayARN=MISSING_GATEWAY, GatewayCapacity="Huge"),
            "ValidationException",
            "validation",
        ),
        (
            "s3 missing key",
            lambda: s3.get_object(Bucket="classify-emulator", Key="none"),
            "NoSuchKey",
            "not_found",
        ),
        (
            "s3 bad bucket name",
            lambda: s3.create_bucket(Bucket="Bad_Name"),
            "InvalidBucketName",
            "validation",
        ),
        ("s3 not empty", lambda: s3.delete_bucket(Bucket="classify-emulator"), "BucketNotEmpty", "conflict"),
        ("s3 HEAD 404", lambda: s3.head_bucket(Bucket="classify-none"), "404", "not_found"),
        (
            "importexport missing job",
            lambda: importexport.get_status(JobId="NOJOB"),
            "InvalidJobIdException",
            "validation",
        ),
    ]


@pytest.mark.parametrize("upstream", ["moto", "emulator"])
def test_real_errors_are_classified_as_botocore_reports_them(
    upstream: str, request: pytest.FixtureRequest, logs: Any
) -> None:
    proxy: RunningSigwatch = request.getfixturevalue("moto_proxy" if upstream == "moto" else "enforce_proxy")
    samples = moto_samples(proxy.url) if upstream == "moto" else emulator_samples(proxy.url)
    for name, call, code, category in samples:
        response = client_error(call)
        assert response["Error"]["Code"] == code, name
        line = assert_classified(logs, response)
        assert line["error"]["category"] == category, name
        # A valid request that failed upstream: validation had nothing to say.
        assert (line["sigv4"], line["findings"]) == ("valid", []), name


def test_sdk_retries_of_a_throttled_call(
    observe_proxy: RunningSigwatch, monkeypatch: pytest.MonkeyPatch, logs: Any
) -> None:
    """boto3 in standard retry mode retries a throttled call: sigwatch sees three attempts of one
    invocation (amz-sdk-request attempt=1..3), each classified as retryable throttling, and counts
    them by attempt. (The SDK's backoff between attempts is skipped: only its waiting changes.)"""
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount", lambda *_: 0)
    sgw = boto("storagegateway", observe_proxy.url, retries={"mode": "standard", "total_max_attempts": 3})

    def throttle(request: Any, **_: Any) -> None:
        request.headers[FORCE_ERROR_HEADER] = "ThrottlingException"

    sgw.meta.events.register_first("before-sign.storagegateway.ListGateways", throttle)
    before = attempts_counted(observe_proxy)
    response = client_error(sgw.list_gateways)
    assert response["Error"]["Code"] == "ThrottlingException"
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    lines = [line for line in request_lines(logs, 3) if line["operation"] == "ListGateways"]
    assert [(line["retry_attempt"], line["retry_max"]) for line in lines] == [(1, 3), (2, 3), (3, 3)]
    assert len({line["invocation_id"] for line in lines}) == 1
    assert all(
        (line["error"]["code"], line["error"]["category"], line["error"]["retryable"])
        == ("ThrottlingException", "throttling", True)
        for line in lines
    )
    after = attempts_counted(observe_proxy)
    assert {attempt: after.get(attempt, 0) - before.get(attempt, 0) for attempt in ("1", "2", "3")} == {
        "1": 1,
        "2": 1,
        "3": 1,
    }


def attempts_counted(proxy: RunningSigwatch) -> dict[str, float]:
    """sigwatch_sdk_attempts_total for storagegateway ListGateways, by attempt."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(proxy.registry).decode()):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "sigwatch_sdk_attempts_total" and labels["operation"] == "ListGateways":
                found[labels["attempt"]] = found.get(labels["attempt"], 0) + sample.value
    return found
