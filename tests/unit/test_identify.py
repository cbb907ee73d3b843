"""Request identification against botocore's real service models."""

from __future__ import annotations

import pytest

from proxy.core.identify import host_region, identify
from proxy.core.model import Protocol, RequestHead, RequestIdentity
from proxy.core.services import ServiceIndex
from proxy.service_models import load_service_index


@pytest.fixture(scope="module")
def index() -> ServiceIndex:
    return load_service_index()


def _auth(service: str, region: str = "us-east-1") -> tuple[str, str]:
    return (
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential=AKID/20240101/{region}/{service}/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
    )


def _head(method: str, target: str, *headers: tuple[str, str]) -> RequestHead:
    return RequestHead.build(method, target, headers)


def test_storage_gateway_target_with_the_seed_api_version(index: ServiceIndex) -> None:
    head = _head(
        "POST",
        "/",
        ("Host", "storagegateway.us-east-2.amazonaws.com"),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "StorageGateway_20120630.ListGateways"),
    )
    assert identify(head, index) == RequestIdentity(
        protocol=Protocol.JSON,
        service="storagegateway",
        operation="ListGateways",
        signing_name="storagegateway",
        region="us-east-2",
        api_version="20120630",
    )


def test_dynamodb_on_a_custom_endpoint_uses_the_credential_scope(index: ServiceIndex) -> None:
    head = _head(
        "POST",
        "/",
        ("Host", "127.0.0.1:8000"),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
        _auth("dynamodb", "eu-west-1"),
    )
    identity = identify(head, index)
    assert (identity.protocol, identity.service, identity.operation, identity.region) == (
        Protocol.JSON,
        "dynamodb",
        "PutItem",
        "eu-west-1",
    )


def test_shared_target_prefix_resolved_by_operation(index: ServiceIndex) -> None:
    head = _head("POST", "/", ("X-Amz-Target", "Timestream_20181101.WriteRecords"), _auth("timestream"))
    assert identify(head, index).service == "timestream-write"
    head = _head("POST", "/", ("X-Amz-Target", "Timestream_20181101.Query"), _auth("timestream"))
    assert identify(head, index).service == "timestream-query"


def test_json_without_target_from_scope(index: ServiceIndex) -> None:
    head = _head("POST", "/", ("Content-Type", "application/x-amz-json-1.1"), _auth("storagegateway"))
    identity = identify(head, index)
    assert (identity.protocol, identity.service, identity.operation) == (
        Protocol.JSON,
        "storagegateway",
        None,
    )


def test_query_in_query_string_and_form_body(index: ServiceIndex) -> None:
    head = _head("GET", "/?Action=GetCallerIdentity&Version=2011-06-15", ("Host", "sts.amazonaws.com"))
    assert identify(head, index) == RequestIdentity(
        protocol=Protocol.QUERY,
        service="sts",
        operation="GetCallerIdentity",
        signing_name="sts",
        region=None,
        api_version="2011-06-15",
    )
    form = _head(
        "POST",
        "/",
        ("Host", "localhost:5000"),
        ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        _auth("sts"),
    )
    assert identify(form, index).operation is None
    identity = identify(form, index, form_body=b"Action=AssumeRole&Version=2011-06-15&RoleArn=x")
    assert (identity.protocol, identity.service, identity.operation, identity.api_version) == (
        Protocol.QUERY,
        "sts",
        "AssumeRole",
        "2011-06-15",
    )


def test_ec2_query(index: ServiceIndex) -> None:
    head = _head("POST", "/", ("Content-Type", "application/x-www-form-urlencoded"), _auth("ec2"))
    identity = identify(head, index, form_body=b"Action=DescribeInstances&Version=2016-11-15")
    assert (identity.protocol, identity.service, identity.operation) == (
        Protocol.EC2,
        "ec2",
        "DescribeInstances",
    )


@pytest.mark.parametrize(
    ("method", "target", "headers", "operation"),
    [
        ("GET", "/", (), "ListBuckets"),
        ("GET", "/bucket", (), "ListObjects"),
        ("GET", "/bucket?list-type=2&prefix=a", (), "ListObjectsV2"),
        ("PUT", "/bucket", (), "CreateBucket"),
        ("GET", "/bucket?acl", (), "GetBucketAcl"),
        ("GET", "/bucket/a/b/c.txt", (), "GetObject"),
        ("HEAD", "/bucket/key", (), "HeadObject"),
        ("PUT", "/bucket/key", (), "PutObject"),
        ("PUT", "/bucket/key", (("x-amz-copy-source", "/src/k"),), "CopyObject"),
        ("PUT", "/bucket/key?partNumber=1&uploadId=u", (), "UploadPart"),
        ("PUT", "/bucket/key?partNumber=1&uploadId=u", (("x-amz-copy-source", "/s/k"),), "UploadPartCopy"),
        ("POST", "/bucket/key?uploads", (), "CreateMultipartUpload"),
        ("POST", "/bucket/key?uploadId=u", (), "CompleteMultipartUpload"),
        ("GET", "/bucket/key?uploadId=u", (), "ListParts"),
        ("POST", "/bucket?delete", (), "DeleteObjects"),
        ("DELETE", "/bucket/key", (), "DeleteObject"),
    ],
)
def test_s3_path_style_operations(
    index: ServiceIndex, method: str, target: str, headers: tuple[tuple[str, str], ...], operation: str
) -> None:
    head = _head(method, target, ("Host", "127.0.0.1:9000"), _auth("s3"), *headers)
    identity = identify(head, index)
    assert (identity.protocol, identity.service, identity.operation) == (Protocol.REST_XML, "s3", operation)


def test_s3_virtual_hosted(index: ServiceIndex) -> None:
    head = _head("GET", "/photos/cat.jpg", ("Host", "my.bucket.s3.eu-west-1.amazonaws.com"))
    identity = identify(head, index)
    assert (identity.service, identity.operation, identity.region) == ("s3", "GetObject", "eu-west-1")
    head = _head("GET", "/?list-type=2", ("Host", "s3-logs.s3.amazonaws.com"))
    assert identify(head, index).operation == "ListObjectsV2"
    head = _head("GET", "/bucket/key", ("Host", "s3.amazonaws.com"))
    assert identify(head, index).operation == "GetObject"


def test_rest_json_by_scope(index: ServiceIndex) -> None:
    head = _head("GET", "/2015-03-31/functions/my-function", _auth("lambda"))
    identity = identify(head, index)
    assert (identity.protocol, identity.service, identity.operation) == (
        Protocol.REST_JSON,
        "lambda",
        "GetFunction",
    )


def test_host_only_and_unknown(index: ServiceIndex) -> None:
    head = _head("POST", "/", ("Host", "sqs.us-west-2.amazonaws.com"))
    identity = identify(head, index)
    assert (identity.service, identity.region) == ("sqs", "us-west-2")
    assert identify(_head("GET", "/", ("Host", "127.0.0.1:1")), index) == RequestIdentity()


def test_scope_evidence_from_other_schemes(index: ServiceIndex) -> None:
    sigv2 = _head("GET", "/bucket/key", ("Host", "127.0.0.1:9000"), ("Authorization", "AWS AKID:c2ln"))
    assert (identify(sigv2, index).service, identify(sigv2, index).operation) == ("s3", "GetObject")
    sigv4a = _head(
        "POST",
        "/",
        ("Host", "127.0.0.1:1"),
        (
            "Authorization",
            "AWS4-ECDSA-P256-SHA256 Credential=AKID/20240101/sts/aws4_request, SignedHeaders=host",
        ),
        ("Content-Type", "application/x-www-form-urlencoded"),
    )
    assert identify(sigv4a, index, form_body=b"Action=GetCallerIdentity&Version=2011-06-15").service == "sts"
    presigned = _head(
        "GET",
        "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20240101%2Feu-west-1%2Fs3%2Faws4_request",
    )
    assert (identify(presigned, index).service, identify(presigned, index).region) == ("s3", "eu-west-1")


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("sts.amazonaws.com", None),
        ("sts.eu-west-1.amazonaws.com", "eu-west-1"),
        ("bucket.s3.us-west-2.amazonaws.com", "us-west-2"),
        ("bucket.s3-us-west-2.amazonaws.com", "us-west-2"),
        ("s3.amazonaws.com", None),
        ("runtime.sagemaker.ap-southeast-2.amazonaws.com:443", "ap-southeast-2"),
        ("127.0.0.1:9000", None),
        ("localhost", None),
    ],
)
def test_host_region(host: str, region: str | None) -> None:
    assert host_region(_head("GET", "/", ("Host", host))) == region


def _json_head(host: str, target: str, *more: tuple[str, str]) -> RequestHead:
    return _head(
        "POST",
        "/",
        ("Host", host),
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target),
        *more,
    )


def test_memoised_json_identity_equals_a_fresh_index_answer(index: ServiceIndex) -> None:
    """identify() memoises AWS JSON identities per (Host, target, scope): a hit answers exactly what a
    fresh index (empty memos) answers, and each part of the key tells requests apart."""

    def fresh() -> ServiceIndex:
        return ServiceIndex(services=index.services, operations_loader=index.operations_loader)

    heads = [
        _json_head("storagegateway.us-east-2.amazonaws.com", "StorageGateway_20120630.ListGateways"),
        _json_head("storagegateway.eu-west-1.amazonaws.com", "StorageGateway_20120630.ListGateways"),
        _json_head("storagegateway.eu-west-1.amazonaws.com", "StorageGateway_20130630.ListVolumes"),
        _json_head(
            "127.0.0.1:8000", "StorageGateway_20130630.ListGateways", _auth("storagegateway", "ap-south-1")
        ),
        _json_head(
            "127.0.0.1:8000", "StorageGateway_20130630.ListGateways", _auth("storagegateway", "us-west-2")
        ),
        _json_head(
            "127.0.0.1:8000", "StorageGateway_20130630.ListGateways", ("Authorization", "AWS AKID:sig")
        ),
        _json_head("127.0.0.1:8000", "Timestream_20181101.Query", _auth("timestream")),
    ]
    first = [identify(head, index) for head in heads]
    second = [identify(head, index) for head in heads]
    assert second == first
    assert all(a is b for a, b in zip(first, second, strict=True))  # served from the memo
    assert [identify(head, fresh()) for head in heads] == first
    assert len({(i.region, i.operation, i.api_version, i.signing_name) for i in first}) == len(heads)


def test_identify_memos_are_bounded(index: ServiceIndex) -> None:
    """A client inventing hosts and targets cannot grow the memos past their bound."""
    for number in range(3000):
        identify(_json_head(f"h{number}.example", f"StorageGateway_20130630.Op{number}"), index)
        host_region(_head("GET", "/", ("Host", f"b{number}.s3.us-west-2.amazonaws.com")))
    assert len(index.memo("identify.json")) <= 1024
    assert len(index.memo("identify.host")) <= 1024
    assert identify(_json_head("h7.example", "StorageGateway_20130630.Op7"), index).operation == "Op7"
