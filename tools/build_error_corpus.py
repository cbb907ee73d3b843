#!/usr/bin/env python3
"""Regenerate tests/fixtures/error_corpus/: real error responses and hand-made edge cases, each with what
botocore (the reference parser) makes of it.

    .venv/bin/python tools/build_error_corpus.py            # start moto_server, call, record, write
    .venv/bin/python tools/build_error_corpus.py --no-moto  # only the rendered and hand-made cases

Three origins:
  moto      boto3 calls that fail against a real `moto_server` on 127.0.0.1 (S3, STS, IAM, DynamoDB, SQS,
            Lambda, EC2). A 'before-parse' event hook records the raw status, headers and body botocore
            received; the ClientError the call raised gives the code a boto3 user sees.
  rendered  Storage Gateway (JSON 1.1, two-level) and Import/Export (Query XML) errors from the catalogs,
            rendered by proxy.core.render.render_error (the renderer the emulator answers with).
  edge      hand-made: empty HEAD 404, HTML 502/503 from a load balancer, gzip bodies, truncated and
            malformed bodies, x-amzn-query-error, `__type` with a namespace prefix and a `:http...` suffix,
            a huge body read through a limit, EC2 with two errors.

Each fixture is one JSON file: name, origin, service, operation, protocol, status, headers (pairs, in
order), body_base64, optional `limit` (the read limit the extractor is given), optional
`transport_decodes` (the client's HTTP layer removes Content-Encoding before botocore parses), and
`botocore`: {"code": ...} or {"raises": "<exception>"} plus, for moto, the ClientError code.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.catalogs import load_builtin_catalogs  # noqa: E402
from proxy.core.catalog import EntryKind  # noqa: E402
from proxy.core.model import AwsError, Protocol  # noqa: E402
from proxy.core.render import render_error  # noqa: E402

CORPUS_DIR = REPO / "tests" / "fixtures" / "error_corpus"
REGION = "us-east-1"


@dataclass
class Fixture:
    name: str
    origin: str
    service: str
    operation: str
    protocol: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    notes: str = ""
    limit: int | None = None
    transport_decodes: bool = False
    client_error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self, botocore_says: Mapping[str, object]) -> dict[str, object]:
        doc: dict[str, object] = {
            "name": self.name,
            "origin": self.origin,
            "service": self.service,
            "operation": self.operation,
            "protocol": self.protocol,
            "status": self.status,
            "headers": [list(pair) for pair in self.headers],
            "body_base64": base64.b64encode(self.body).decode(),
            "botocore": dict(botocore_says),
        }
        if self.notes:
            doc["notes"] = self.notes
        if self.limit is not None:
            doc["limit"] = self.limit
        if self.transport_decodes:
            doc["transport_decodes"] = True
        return doc


# --- what botocore says (the same function the parity test uses) ----------------------------------------


def botocore_parse(fixture: Mapping[str, Any]) -> dict[str, object]:
    """Run a fixture through botocore.parsers.create_parser(protocol).parse() with the operation's output
    shape, as botocore's endpoint does; {"code": Error.Code} or {"raises": exception name}."""
    import botocore.parsers
    import botocore.session
    from urllib3 import HTTPHeaderDict

    model = botocore.session.get_session().get_service_model(fixture["service"])
    operation = model.operation_model(fixture["operation"])
    headers = HTTPHeaderDict()
    for name, value in fixture["headers"]:
        headers.add(name, value)
    body = base64.b64decode(fixture["body_base64"])
    if fixture.get("transport_decodes"):
        body = _transport_decode(body, headers.get("content-encoding", ""))
    response = {
        "status_code": fixture["status"],
        "headers": headers,
        "body": body,
        "context": {"operation_name": fixture["operation"]},
    }
    try:
        parsed = botocore.parsers.create_parser(model.protocol).parse(response, operation.output_shape)
    except Exception as exc:  # what a botocore client would raise instead of a ClientError
        return {"raises": type(exc).__name__}
    error = parsed.get("Error", {})
    return {"code": error.get("Code") if isinstance(error, dict) else None}


def _transport_decode(body: bytes, encoding: str) -> bytes:
    """What an HTTP client that asked for gzip (urllib3 with decode_content=True) hands its caller."""
    if encoding.strip().lower() in ("gzip", "x-gzip", "deflate"):
        return zlib.decompress(body, 32 + zlib.MAX_WBITS)
    return body


# --- moto ---------------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
    port = _free_port()
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/moto-api/")
                connection.getresponse().read()
                connection.close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


class Recorder:
    """A botocore 'before-parse' hook: keeps the last raw response botocore is about to parse."""

    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None

    def take(self) -> dict[str, Any] | None:
        """The response recorded since the last take (None when botocore parsed nothing)."""
        last, self.last = self.last, None
        return last

    def __call__(self, operation_model: Any, response_dict: Mapping[str, Any], **_: Any) -> None:
        self.last = {
            "service": operation_model.service_model.service_name,
            "operation": operation_model.name,
            "protocol": operation_model.service_model.protocol,
            "status": response_dict["status_code"],
            "headers": [(str(k), str(v)) for k, v in response_dict["headers"].items()],
            "body": response_dict["body"] if isinstance(response_dict["body"], bytes) else b"",
        }


def moto_fixtures(endpoint: str) -> list[Fixture]:
    import boto3  # type: ignore[import-untyped]
    import botocore.exceptions
    import botocore.parsers
    from botocore.config import Config

    recorder = Recorder()
    config = Config(retries={"max_attempts": 1, "mode": "standard"})

    def clients(key: str, secret: str) -> Callable[[str], Any]:
        session = boto3.session.Session(
            aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION
        )
        session.events.register("before-parse", recorder)
        return lambda service: session.client(service, endpoint_url=endpoint, config=config)

    client = clients("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    fixtures: list[Fixture] = []

    def expect_error(name: str, call: Callable[[], object], notes: str = "") -> None:
        recorder.take()
        try:
            call()
        except botocore.exceptions.ParamValidationError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
            return
        except (botocore.exceptions.ClientError, botocore.parsers.ResponseParserError) as exc:
            raw = recorder.take()
            if raw is None:
                raise RuntimeError(f"{name}: nothing recorded") from exc
            response = getattr(exc, "response", {})
            fixture = Fixture(
                name=name,
                origin=f"moto_server {_version('moto')} via boto3 {_version('boto3')}",
                service=raw["service"],
                operation=raw["operation"],
                protocol=raw["protocol"],
                status=raw["status"],
                headers=_stable_headers(raw["headers"]),
                body=raw["body"],
                notes=notes,
                client_error_code=response.get("Error", {}).get("Code"),
            )
            fixtures.append(fixture)
            return
        print(f"skipped {name}: the call did not fail", file=sys.stderr)

    s3, sts, iam = client("s3"), client("sts"), client("iam")
    dynamodb, sqs, lam, ec2 = client("dynamodb"), client("sqs"), client("lambda"), client("ec2")

    # S3 (rest-xml)
    s3.create_bucket(Bucket="corpus-bucket")
    s3.put_object(Bucket="corpus-bucket", Key="present", Body=b"data")
    expect_error("s3-getobject-nosuchkey", lambda: s3.get_object(Bucket="corpus-bucket", Key="absent"))
    expect_error("s3-getobject-nosuchbucket", lambda: s3.get_object(Bucket="corpus-absent", Key="k"))
    expect_error(
        "s3-headobject-404-empty",
        lambda: s3.head_object(Bucket="corpus-bucket", Key="absent"),
        "HEAD: no body",
    )
    expect_error("s3-headbucket-404-empty", lambda: s3.head_bucket(Bucket="corpus-absent"), "HEAD: no body")
    expect_error("s3-deletebucket-notempty", lambda: s3.delete_bucket(Bucket="corpus-bucket"))
    expect_error(
        "s3-getbucketpolicy-nosuchbucketpolicy", lambda: s3.get_bucket_policy(Bucket="corpus-bucket")
    )
    expect_error(
        "s3-uploadpart-moto-internal-error-500",
        lambda: s3.upload_part(Bucket="corpus-bucket", Key="k", PartNumber=1, UploadId="nope", Body=b"x"),
        "moto fails with its framework's `<!doctype html>` 500 page: not botocore's `<html>` generic case, "
        "invalid XML, so the code is the status",
    )
    expect_error(
        "s3-getobject-invalidrange",
        lambda: s3.get_object(Bucket="corpus-bucket", Key="present", Range="bytes=100-200"),
    )
    expect_error("s3-gettagging-nosuchbucket", lambda: s3.get_bucket_tagging(Bucket="corpus-absent"))

    # STS (query)
    expect_error(
        "sts-getfederationtoken-bad-policy",
        lambda: sts.get_federation_token(Name="corpus", Policy="{" + "x" * 3000),
    )
    expect_error(
        "sts-assumerolewithsaml-bad-assertion",
        lambda: sts.assume_role_with_saml(
            RoleArn="arn:aws:iam::123456789012:role/corpus",
            PrincipalArn="arn:aws:iam::123456789012:saml-provider/corpus",
            SAMLAssertion="bm90IHhtbA==",
        ),
        "moto fails with a `<!doctype html>` 500 page: botocore's Query parser raises ResponseParserError",
    )

    # IAM (query)
    expect_error("iam-getuser-nosuchentity", lambda: iam.get_user(UserName="corpus-absent"))
    iam.create_user(UserName="corpus-user")
    expect_error("iam-createuser-entityalreadyexists", lambda: iam.create_user(UserName="corpus-user"))
    expect_error("iam-getrole-nosuchentity", lambda: iam.get_role(RoleName="corpus-absent"))
    expect_error(
        "iam-createpolicy-malformed",
        lambda: iam.create_policy(PolicyName="corpus", PolicyDocument='{"Version": "2012-10-17"}'),
    )
    expect_error("iam-deleterole-nosuchentity", lambda: iam.delete_role(RoleName="corpus-absent"))

    # DynamoDB (json 1.0)
    expect_error(
        "dynamodb-describetable-resourcenotfound", lambda: dynamodb.describe_table(TableName="absent")
    )
    table = {
        "TableName": "corpus",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    dynamodb.create_table(**table)
    expect_error("dynamodb-createtable-resourceinuse", lambda: dynamodb.create_table(**table))
    dynamodb.put_item(TableName="corpus", Item={"pk": {"S": "a"}})
    expect_error(
        "dynamodb-putitem-conditionalcheckfailed",
        lambda: dynamodb.put_item(
            TableName="corpus", Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"
        ),
    )
    expect_error(
        "dynamodb-getitem-validation", lambda: dynamodb.get_item(TableName="corpus", Key={"nope": {"S": "a"}})
    )

    # SQS (json, query-compatible: x-amzn-query-error)
    expect_error("sqs-getqueueurl-nonexistent", lambda: sqs.get_queue_url(QueueName="corpus-absent"))
    expect_error(
        "sqs-sendmessage-nonexistent",
        lambda: sqs.send_message(QueueUrl=f"{endpoint}/123456789012/corpus-absent", MessageBody="x"),
    )
    queue = sqs.create_queue(QueueName="corpus")["QueueUrl"]
    expect_error(
        "sqs-getqueueattributes-invalidattribute",
        lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["Nope"]),
    )
    expect_error(
        "sqs-changevisibility-receipthandle",
        lambda: sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="nope", VisibilityTimeout=1),
    )

    # Lambda (rest-json) and EC2 (ec2)
    expect_error(
        "lambda-getfunction-resourcenotfound", lambda: lam.get_function(FunctionName="corpus-absent")
    )
    expect_error("ec2-describeinstances-malformed", lambda: ec2.describe_instances(InstanceIds=["i-nope"]))
    expect_error(
        "ec2-describeinstances-notfound", lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    )

    # Authentication and authorization: moto checks credentials once its IAM auth is switched on.
    iam.create_user(UserName="corpus-noperm")
    key = iam.create_access_key(UserName="corpus-noperm")["AccessKey"]
    _enable_moto_auth(endpoint)
    unknown = clients("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    wrong_secret = clients(key["AccessKeyId"], "not-the-secret-access-key-of-this-user")
    no_permission = clients(key["AccessKeyId"], key["SecretAccessKey"])
    moto_xml_for_json = (
        "moto answers this JSON-protocol request with Query XML (<ErrorResponse>): botocore's JSON parser "
        "cannot read it and takes the status as the code"
    )
    expect_error("sts-getcalleridentity-invalidclienttokenid", lambda: unknown("sts").get_caller_identity())
    expect_error("iam-listusers-invalidclienttokenid", lambda: unknown("iam").list_users())
    expect_error("s3-listbuckets-invalidaccesskeyid", lambda: unknown("s3").list_buckets())
    expect_error(
        "dynamodb-listtables-unknown-key", lambda: unknown("dynamodb").list_tables(), moto_xml_for_json
    )
    expect_error("sqs-listqueues-unknown-key", lambda: unknown("sqs").list_queues(), moto_xml_for_json)
    expect_error(
        "sts-getcalleridentity-signaturedoesnotmatch", lambda: wrong_secret("sts").get_caller_identity()
    )
    expect_error("s3-listbuckets-signaturedoesnotmatch", lambda: wrong_secret("s3").list_buckets())
    expect_error("iam-listusers-accessdenied", lambda: no_permission("iam").list_users())
    expect_error("s3-listbuckets-accessdenied", lambda: no_permission("s3").list_buckets())
    expect_error(
        "sts-assumerole-accessdenied",
        lambda: no_permission("sts").assume_role(
            RoleArn="arn:aws:iam::123456789012:role/corpus", RoleSessionName="corpus"
        ),
    )
    expect_error(
        "dynamodb-listtables-accessdenied", lambda: no_permission("dynamodb").list_tables(), moto_xml_for_json
    )
    return fixtures


def _enable_moto_auth(endpoint: str) -> None:
    """moto_server's /moto-api/reset-auth: check credentials from the next request on."""
    host, port = endpoint.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("POST", "/moto-api/reset-auth", body=b"0")
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"moto reset-auth answered {response.status}")


_VOLATILE = {"date", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "server", "x-amz-crc32"}


def _stable_headers(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Request ids and dates change on every run; fix them so regenerating does not rewrite every file."""
    fixed = {
        "date": "Mon, 01 Jan 2024 00:00:00 GMT",
        "x-amzn-requestid": "corpus-request-id",
        "x-amz-request-id": "corpus-request-id",
        "x-amz-id-2": "corpus-host-id",
        "server": "moto",
    }
    return [(name, fixed.get(name.lower(), value)) for name, value in headers]


def _stable_body(body: bytes) -> bytes:
    """moto puts random request ids in bodies too: replace them with the same fixed id."""
    import re

    body = re.sub(rb"<RequestId>[^<]*</RequestId>", b"<RequestId>corpus-request-id</RequestId>", body)
    body = re.sub(rb"<RequestID>[^<]*</RequestID>", b"<RequestID>corpus-request-id</RequestID>", body)
    return re.sub(rb"<HostId>[^<]*</HostId>", b"<HostId>corpus-host-id</HostId>", body)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


# --- rendered (the emulator's renderer) ---------------------------------------------------------------


def rendered_fixtures() -> list[Fixture]:
    catalogs = load_builtin_catalogs()
    fixtures: list[Fixture] = []
    storagegateway = catalogs.by_service["storagegateway"]
    samples = [
        ("InvalidGatewayRequestException", "VolumeNotFound", "DescribeStorediSCSIVolumes"),
        ("InternalServerError", "GatewayInternalError", "ListVolumes"),
        ("InvalidSignatureException", None, "ListGateways"),
        ("ThrottlingException", None, "ListGateways"),
        ("ServiceUnavailable", None, "ListGateways"),
    ]
    for exception, operation_error, operation in samples:
        entry = storagegateway.entries[exception]
        message = entry.message
        if operation_error is not None:
            message = storagegateway.entries[operation_error].message
            assert storagegateway.entries[operation_error].kind is EntryKind.OPERATION_ERROR
        assert entry.http_status is not None
        error = AwsError(exception, entry.http_status, message, operation_error=operation_error)
        rendered = render_error(Protocol.JSON, error, "corpus-request-id", json_version="1.1")
        name = f"storagegateway-{operation.lower()}-{(operation_error or exception).lower()}"
        fixtures.append(
            Fixture(
                name,
                "rendered",
                "storagegateway",
                operation,
                "json",
                rendered.status,
                list(rendered.headers),
                rendered.body,
            )
        )
    importexport = catalogs.by_service["importexport"]
    for code, operation in (
        ("InvalidJobIdException", "GetStatus"),
        ("UnableToCancelJobIdException", "CancelJob"),
    ):
        entry = importexport.entries[code]
        assert entry.http_status is not None
        rendered = render_error(
            Protocol.QUERY,
            AwsError(code, entry.http_status, entry.message),
            "corpus-request-id",
            xml_namespace=importexport.xml_namespace,
        )
        fixtures.append(
            Fixture(
                f"importexport-{operation.lower()}-{code.lower()}",
                "rendered",
                "importexport",
                operation,
                "query",
                rendered.status,
                list(rendered.headers),
                rendered.body,
            )
        )
    return fixtures


# --- hand-made edge cases --------------------------------------------------------------------------------


def edge_fixtures() -> list[Fixture]:
    xml = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    s3_error = (
        xml
        + b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not "
        b"match the signature you provided.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId>"
        b"<StringToSign>AWS4-HMAC-SHA256\n20240101T000000Z</StringToSign><CanonicalRequest>GET\n/</CanonicalRequest>"
        b"<RequestId>corpus-request-id</RequestId><HostId>corpus-host-id</HostId></Error>"
    )
    html_502 = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
    )
    doctype_503 = (
        b"<!DOCTYPE html>\n<html><head><meta charset=utf-8><title>Service Unavailable</title></head>"
        b"<body>busy</body></html>"
    )
    ddb_json = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", "corpus-request-id")]
    huge_padding = b"<!--" + b"x" * 200_000 + b"-->"
    e = "edge"
    return [
        Fixture(
            "edge-s3-head-404-empty",
            e,
            "s3",
            "HeadObject",
            "rest-xml",
            404,
            [
                ("x-amz-request-id", "corpus-request-id"),
                ("x-amz-id-2", "corpus-host-id"),
                ("Content-Length", "0"),
            ],
            b"",
            "HEAD responses carry no body: botocore takes the status as the code",
        ),
        Fixture(
            "edge-s3-signature-extra-elements",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            403,
            [("Content-Type", "application/xml"), ("x-amz-request-id", "corpus-request-id")],
            s3_error,
        ),
        Fixture(
            "edge-s3-html-502",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            502,
            [("Content-Type", "text/html")],
            html_502,
            "a load balancer's page: generic error, code from the status",
        ),
        Fixture(
            "edge-dynamodb-html-502",
            e,
            "dynamodb",
            "GetItem",
            "json",
            502,
            [("Content-Type", "text/html")],
            html_502,
        ),
        Fixture(
            "edge-dynamodb-doctype-503",
            e,
            "dynamodb",
            "GetItem",
            "json",
            503,
            [("Content-Type", "text/html")],
            doctype_503,
            "not `<html>`-first, so not botocore's generic case: invalid JSON, code from the status",
        ),
        Fixture(
            "edge-sts-html-503",
            e,
            "sts",
            "GetCallerIdentity",
            "query",
            503,
            [("Content-Type", "text/html")],
            b"<html><body><b>Http/1.1 Service Unavailable</b></body></html>",
        ),
        Fixture(
            "edge-dynamodb-gzip",
            e,
            "dynamodb",
            "GetItem",
            "json",
            400,
            [*ddb_json, ("Content-Encoding", "gzip")],
            gzip.compress(
                b'{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",'
                b'"message":"Requested resource not found"}',
                mtime=0,
            ),
            "gzip body: the client's HTTP layer decodes it before botocore parses",
            transport_decodes=True,
        ),
        Fixture(
            "edge-s3-gzip",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            404,
            [("Content-Type", "application/xml"), ("Content-Encoding", "gzip")],
            gzip.compress(xml + b"<Error><Code>NoSuchKey</Code><Message>m</Message></Error>", mtime=0),
            transport_decodes=True,
        ),
        Fixture(
            "edge-dynamodb-truncated",
            e,
            "dynamodb",
            "GetItem",
            "json",
            400,
            ddb_json,
            b'{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExc',
            "the upstream cut the body: invalid JSON, botocore takes the status as the code",
        ),
        Fixture(
            "edge-s3-truncated",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            403,
            [("Content-Type", "application/xml")],
            xml + b"<Error><Code>AccessDenied</Code><Message>Access Den",
        ),
        Fixture(
            "edge-s3-malformed",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            400,
            [("Content-Type", "application/xml")],
            b"<Error><Code>BadDigest</Code></Errr>",
        ),
        Fixture("edge-dynamodb-not-json", e, "dynamodb", "GetItem", "json", 400, ddb_json, b"Bad Request"),
        Fixture("edge-dynamodb-empty-400", e, "dynamodb", "GetItem", "json", 400, ddb_json, b""),
        Fixture(
            "edge-dynamodb-nan",
            e,
            "dynamodb",
            "GetItem",
            "json",
            400,
            ddb_json,
            b'{"__type":"ValidationException","message":"x","limit":NaN}',
            "orjson refuses NaN, Python's json (botocore's) accepts it",
        ),
        Fixture(
            "edge-dynamodb-namespace-suffix",
            e,
            "dynamodb",
            "GetItem",
            "json",
            400,
            ddb_json,
            b'{"__type":"com.amazon.coral.validate#ValidationException:http://internal.amazon.com/coral/'
            b'com.amazon.coral.validate/","message":"1 validation error detected"}',
        ),
        Fixture(
            "edge-sqs-query-error",
            e,
            "sqs",
            "GetQueueUrl",
            "json",
            400,
            [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-RequestId", "corpus-request-id"),
                ("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender"),
            ],
            b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist",'
            b'"message":"The specified queue does not exist."}',
        ),
        Fixture(
            "edge-sqs-query-error-malformed-header",
            e,
            "sqs",
            "GetQueueUrl",
            "json",
            400,
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", "NoSemicolon")],
            b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"x"}',
            "x-amzn-query-error without `;Sender` is ignored",
        ),
        Fixture(
            "edge-lambda-errortype-header",
            e,
            "lambda",
            "GetFunction",
            "rest-json",
            404,
            [
                ("Content-Type", "application/json"),
                (
                    "x-amzn-ErrorType",
                    "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.lambda/",
                ),
            ],
            b'{"Type":"User","Message":"Function not found"}',
        ),
        Fixture(
            "edge-lambda-body-code",
            e,
            "lambda",
            "GetFunction",
            "rest-json",
            400,
            [("Content-Type", "application/json")],
            b'{"code":"InvalidParameterValueException","message":"x"}',
        ),
        Fixture(
            "edge-ec2-two-errors",
            e,
            "ec2",
            "DescribeInstances",
            "ec2",
            400,
            [("Content-Type", "text/xml")],
            xml
            + b"<Response><Errors><Error><Code>InvalidInstanceID.Malformed</Code><Message>a</Message></Error>"
            b"<Error><Code>InvalidParameterValue</Code><Message>b</Message></Error></Errors>"
            b"<RequestID>corpus-request-id</RequestID></Response>",
            "botocore keeps the first error",
        ),
        Fixture(
            "edge-s3-huge-body-read-through-limit",
            e,
            "s3",
            "GetObject",
            "rest-xml",
            403,
            [("Content-Type", "application/xml")],
            xml
            + b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
            + huge_padding
            + b"</Error>",
            "200 KB body, the extractor reads 64 KiB of it and finds the code in the prefix",
            limit=65536,
        ),
        Fixture(
            "edge-dynamodb-huge-body-read-through-limit",
            e,
            "dynamodb",
            "GetItem",
            "json",
            400,
            ddb_json,
            b'{"__type":"ThrottlingException","message":"' + b"x" * 200_000 + b'"}',
            limit=65536,
        ),
        Fixture(
            "edge-sts-empty-403",
            e,
            "sts",
            "GetCallerIdentity",
            "query",
            403,
            [("Content-Length", "0")],
            b"",
            "an empty Query 4xx: botocore raises ResponseParserError; sigwatch reports the status",
        ),
        Fixture(
            "edge-iam-not-xml",
            e,
            "iam",
            "GetUser",
            "query",
            400,
            [("Content-Type", "text/plain")],
            b"Bad Request",
            "botocore raises ResponseParserError; sigwatch reports the status",
        ),
    ]


# --- main ---------------------------------------------------------------------------------------------------


def build(with_moto: bool) -> dict[str, bytes]:
    fixtures = rendered_fixtures() + edge_fixtures()
    if with_moto:
        with moto_server() as endpoint:
            fixtures = moto_fixtures(endpoint) + fixtures
    outputs: dict[str, bytes] = {}
    for fixture in fixtures:
        if fixture.origin.startswith("moto"):
            fixture.body = _stable_body(fixture.body)
        draft = fixture.document({})
        says = botocore_parse(draft)
        if fixture.client_error_code is not None:
            says["client_error_code"] = fixture.client_error_code
        doc = fixture.document(says)
        outputs[f"{fixture.name}.json"] = (
            orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    return outputs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=CORPUS_DIR)
    parser.add_argument("--no-moto", action="store_true", help="skip the moto_server part (keep its files)")
    args = parser.parse_args(argv)
    outputs = build(with_moto=not args.no_moto)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.no_moto:
        for old in args.out.glob("*.json"):
            if old.name not in outputs:
                old.unlink()
    for name, data in sorted(outputs.items()):
        (args.out / name).write_bytes(data)
    print(f"{len(outputs)} fixtures in {args.out}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    sys.exit(main())
