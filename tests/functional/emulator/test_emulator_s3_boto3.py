"""boto3's s3 client against the emulator: bucket and object lifecycle, a multipart upload, aws-chunked
uploads (botocore's STREAMING-UNSIGNED-PAYLOAD-TRAILER over TLS, and a signed
STREAMING-AWS4-HMAC-SHA256-PAYLOAD body), and the S3 errors where they arise."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from emulator_functional_support import (
    EXAMPLE_KEY_ID,
    EXAMPLE_SECRET,
    OTHER_KEY_ID,
    OTHER_SECRET,
    REGION,
    boto_client,
    client_error,
)

from proxy.core.sigv4.chunked import chunk_string_to_sign
from proxy.core.sigv4.signing import derive_signing_key, sign

MIB = 1024 * 1024


def error_of(call: Any) -> tuple[str, int]:
    response = client_error(call)
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def bucket_and_objects(url: str) -> None:
    s3 = boto_client("s3", url)
    s3.create_bucket(Bucket="lifecycle-bucket")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["lifecycle-bucket"]
    s3.head_bucket(Bucket="lifecycle-bucket")
    put = s3.put_object(
        Bucket="lifecycle-bucket",
        Key="docs/readme.txt",
        Body=b"hello emulator",
        ContentType="text/plain",
        Metadata={"owner": "tests"},
    )
    assert put["ETag"] == '"' + hashlib.md5(b"hello emulator").hexdigest() + '"'
    got = s3.get_object(Bucket="lifecycle-bucket", Key="docs/readme.txt")
    assert got["Body"].read() == b"hello emulator"
    assert (got["ContentType"], got["Metadata"]) == ("text/plain", {"owner": "tests"})
    head = s3.head_object(Bucket="lifecycle-bucket", Key="docs/readme.txt")
    assert head["ContentLength"] == len(b"hello emulator")
    ranged = s3.get_object(Bucket="lifecycle-bucket", Key="docs/readme.txt", Range="bytes=6-13")
    assert ranged["Body"].read() == b"emulator"
    s3.put_object(Bucket="lifecycle-bucket", Key="docs/a b+c.txt", Body=b"x")
    s3.copy_object(Bucket="lifecycle-bucket", Key="copy.txt", CopySource="lifecycle-bucket/docs/readme.txt")
    listed = s3.list_objects_v2(Bucket="lifecycle-bucket", Prefix="docs/")
    assert [o["Key"] for o in listed["Contents"]] == ["docs/a b+c.txt", "docs/readme.txt"]
    grouped = s3.list_objects(Bucket="lifecycle-bucket", Delimiter="/")
    assert [p["Prefix"] for p in grouped["CommonPrefixes"]] == ["docs/"]
    assert [o["Key"] for o in grouped["Contents"]] == ["copy.txt"]
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket="lifecycle-bucket", PaginationConfig={"PageSize": 1}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == [
        "copy.txt",
        "docs/a b+c.txt",
        "docs/readme.txt",
    ]
    assert error_of(lambda: s3.delete_bucket(Bucket="lifecycle-bucket")) == ("BucketNotEmpty", 409)
    deleted = s3.delete_objects(
        Bucket="lifecycle-bucket",
        Delete={"Objects": [{"Key": "copy.txt"}, {"Key": "docs/a b+c.txt"}]},
    )
    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["copy.txt", "docs/a b+c.txt"]
    s3.delete_object(Bucket="lifecycle-bucket", Key="docs/readme.txt")
    assert error_of(lambda: s3.get_object(Bucket="lifecycle-bucket", Key="docs/readme.txt")) == (
        "NoSuchKey",
        404,
    )
    assert error_of(lambda: s3.head_object(Bucket="lifecycle-bucket", Key="docs/readme.txt")) == ("404", 404)
    s3.delete_bucket(Bucket="lifecycle-bucket")
    assert error_of(lambda: s3.list_objects_v2(Bucket="lifecycle-bucket")) == ("NoSuchBucket", 404)
    assert error_of(lambda: s3.head_bucket(Bucket="lifecycle-bucket")) == ("404", 404)


async def test_bucket_and_object_lifecycle(emulator: Any) -> None:
    await asyncio.to_thread(bucket_and_objects, emulator.url)


def bucket_errors(url: str) -> None:
    s3 = boto_client("s3", url)
    other = boto_client("s3", url, key_id=OTHER_KEY_ID, secret=OTHER_SECRET)
    s3.create_bucket(Bucket="taken-bucket")
    s3.create_bucket(Bucket="taken-bucket")  # us-east-1: the owner re-creating it is a no-op
    assert error_of(lambda: other.create_bucket(Bucket="taken-bucket")) == ("BucketAlreadyExists", 409)
    assert error_of(lambda: other.put_object(Bucket="taken-bucket", Key="k", Body=b"x")) == (
        "AccessDenied",
        403,
    )
    assert error_of(lambda: s3.create_bucket(Bucket="Bad_Bucket")) == ("InvalidBucketName", 400)
    response = client_error(lambda: s3.get_object(Bucket="absent-bucket", Key="k"))
    assert response["Error"]["BucketName"] == "absent-bucket"
    assert (
        response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
        == response["ResponseMetadata"]["RequestId"]
    )
    assert response["ResponseMetadata"]["HostId"]


async def test_bucket_errors(emulator: Any) -> None:
    await asyncio.to_thread(bucket_errors, emulator.url)


def multipart(url: str) -> None:
    s3 = boto_client("s3", url)
    s3.create_bucket(Bucket="multipart-bucket")
    parts_data = [b"a" * (5 * MIB), b"b" * (5 * MIB), b"tail"]
    upload = s3.create_multipart_upload(
        Bucket="multipart-bucket", Key="big.bin", ContentType="application/zip"
    )
    upload_id = upload["UploadId"]
    parts = []
    for number, data in enumerate(parts_data, start=1):
        etag = s3.upload_part(
            Bucket="multipart-bucket", Key="big.bin", UploadId=upload_id, PartNumber=number, Body=data
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = s3.list_parts(Bucket="multipart-bucket", Key="big.bin", UploadId=upload_id)
    assert [p["Size"] for p in listed["Parts"]] == [len(d) for d in parts_data]
    assert s3.list_multipart_uploads(Bucket="multipart-bucket")["Uploads"][0]["UploadId"] == upload_id

    def complete(chosen: list[dict[str, Any]]) -> Any:
        return s3.complete_multipart_upload(
            Bucket="multipart-bucket", Key="big.bin", UploadId=upload_id, MultipartUpload={"Parts": chosen}
        )

    assert error_of(lambda: complete([parts[1], parts[0]])) == ("InvalidPartOrder", 400)
    assert error_of(lambda: complete([parts[0], {"PartNumber": 2, "ETag": '"0123"'}])) == ("InvalidPart", 400)
    assert error_of(lambda: complete([parts[2], {"PartNumber": 4, "ETag": parts[2]["ETag"]}])) == (
        "InvalidPart",
        400,
    )
    # A part uploaded but not listed in the completion is discarded.
    s3.upload_part(Bucket="multipart-bucket", Key="big.bin", UploadId=upload_id, PartNumber=5, Body=b"unused")
    done = complete(parts)
    digests = b"".join(hashlib.md5(data).digest() for data in parts_data)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    body = s3.get_object(Bucket="multipart-bucket", Key="big.bin")
    assert body["ContentType"] == "application/zip"
    assert hashlib.sha256(body["Body"].read()).digest() == hashlib.sha256(b"".join(parts_data)).digest()
    assert error_of(lambda: complete(parts)) == ("NoSuchUpload", 404)
    aborted = s3.create_multipart_upload(Bucket="multipart-bucket", Key="aborted.bin")["UploadId"]
    s3.abort_multipart_upload(Bucket="multipart-bucket", Key="aborted.bin", UploadId=aborted)
    assert error_of(
        lambda: s3.list_parts(Bucket="multipart-bucket", Key="aborted.bin", UploadId=aborted)
    ) == ("NoSuchUpload", 404)


def entity_too_small(url: str) -> None:
    s3 = boto_client("s3", url)
    s3.create_bucket(Bucket="small-parts")
    upload_id = s3.create_multipart_upload(Bucket="small-parts", Key="k")["UploadId"]
    parts = [
        {
            "PartNumber": n,
            "ETag": s3.upload_part(
                Bucket="small-parts", Key="k", UploadId=upload_id, PartNumber=n, Body=b"tiny"
            )["ETag"],
        }
        for n in (1, 2)
    ]
    response = client_error(
        lambda: s3.complete_multipart_upload(
            Bucket="small-parts", Key="k", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    )
    assert response["Error"]["Code"] == "EntityTooSmall"
    assert (response["Error"]["ProposedSize"], response["Error"]["MinSizeAllowed"]) == ("4", str(5 * MIB))


async def test_multipart_upload(emulator: Any) -> None:
    await asyncio.to_thread(multipart, emulator.url)
    await asyncio.to_thread(entity_too_small, emulator.url)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A throwaway CA and a certificate for 127.0.0.1: the server context and the CA file for boto3."""
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return server_context, ca_file


def trailer_upload(url: str, ca_file: Path) -> dict[str, Any]:
    s3 = boto_client("s3", url, verify=str(ca_file))
    sent: dict[str, Any] = {}

    def capture(request: Any, **_: Any) -> None:
        sent.update({name.lower(): value for name, value in request.headers.items()})

    s3.meta.events.register("before-send.s3.PutObject", capture)
    s3.create_bucket(Bucket="chunked-bucket")
    data = bytes(range(256)) * 600
    put = s3.put_object(Bucket="chunked-bucket", Key="trailer.bin", Body=data)
    got = s3.get_object(Bucket="chunked-bucket", Key="trailer.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"]
    return sent


async def test_boto3_aws_chunked_upload_with_trailing_checksum(
    start_emulator: Any, tls: tuple[ssl.SSLContext, Path]
) -> None:
    """Over TLS, this botocore sends PutObject as aws-chunked with a CRC32 trailer (unsigned payload)."""
    server_context, ca_file = tls
    emulator = await start_emulator(ssl=server_context)
    assert emulator.url.startswith("https://")
    sent = await asyncio.to_thread(trailer_upload, emulator.url, ca_file)
    assert sent["x-amz-content-sha256"] == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert b"aws-chunked" in sent["content-encoding"]
    assert sent["x-amz-trailer"] == b"x-amz-checksum-crc32"
    stored = emulator.state.s3.buckets["chunked-bucket"].objects["trailer.bin"]
    assert stored.checksum is not None and stored.checksum[0] == "crc32"
    assert stored.headers == ()  # aws-chunked is not kept as the object's Content-Encoding


class _StreamingSigV4(S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 signer, declaring the signed-chunks payload instead of hashing the body."""

    def payload(self, request: Any) -> str:
        return "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


def signed_chunked_request(url: str, data: bytes, chunk_size: int) -> tuple[dict[str, str], bytes]:
    """A PUT signed by botocore with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, its body framed and each chunk
    signed (chained from the request signature) with sigwatch's chunk helpers."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    encoded_length = sum(len(f"{len(c):x};chunk-signature=".encode()) + 64 + 2 + len(c) + 2 for c in chunks)
    request = AWSRequest(
        method="PUT",
        url=f"{url}/chunked-bucket/signed.bin",
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": str(len(data)),
            "Content-Length": str(encoded_length),
        },
    )
    _StreamingSigV4(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), "s3", REGION).add_auth(request)
    headers = dict(request.headers.items())
    amz_date = headers["X-Amz-Date"]
    day = amz_date[:8]
    scope = f"{day}/{REGION}/s3/aws4_request"
    previous = headers["Authorization"].rsplit("Signature=", 1)[1]
    key = derive_signing_key(EXAMPLE_SECRET, day, REGION, "s3")
    body = b""
    for chunk in chunks:
        signature = sign(
            key, chunk_string_to_sign(amz_date, scope, previous, hashlib.sha256(chunk).hexdigest())
        )
        body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        previous = signature
    assert len(body) == encoded_length
    return headers, body


async def test_signed_aws_chunked_upload(emulator: Any) -> None:
    await asyncio.to_thread(lambda: boto_client("s3", emulator.url).create_bucket(Bucket="chunked-bucket"))
    data = hashlib.sha256(b"seed").digest() * 5000  # 160000 bytes: chunks of 64 KiB, 64 KiB, 28928 B
    headers, body = signed_chunked_request(emulator.url, data, 64 * 1024)
    async with aiohttp.ClientSession() as session:
        async with session.put(
            f"{emulator.url}/chunked-bucket/signed.bin", headers=headers, data=body
        ) as response:
            assert response.status == 200, await response.text()
            assert response.headers["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        assert emulator.state.s3.buckets["chunked-bucket"].objects["signed.bin"].data == data
        tampered = body.replace(data[70000:70010], b"0123456789", 1)
        async with session.put(
            f"{emulator.url}/chunked-bucket/signed.bin", headers=headers, data=tampered
        ) as response:
            assert response.status == 403
            assert "<Code>SignatureDoesNotMatch</Code>" in await response.text()
        assert emulator.state.s3.buckets["chunked-bucket"].objects["signed.bin"].data == data


async def test_virtual_hosted_style(emulator: Any) -> None:
    """`<bucket>.s3.localhost` names the bucket in the Host header (signed by botocore, sent to 127.0.0.1)."""
    port = emulator.url.rsplit(":", 1)[1]
    host = f"vhost-bucket.s3.localhost:{port}"
    credentials = Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET)

    def signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
        request = AWSRequest(method=method, url=f"http://{host}{path}", data=body)
        S3SigV4Auth(credentials, "s3", REGION).add_auth(request)
        return {**dict(request.headers.items()), "Host": host}

    async with aiohttp.ClientSession() as session:
        async with session.put(f"{emulator.url}/", headers=signed("PUT", "/")) as response:
            assert response.status == 200, await response.text()
        headers = signed("PUT", "/notes/today.txt", b"virtual")
        async with session.put(
            f"{emulator.url}/notes/today.txt", headers=headers, data=b"virtual"
        ) as response:
            assert response.status == 200, await response.text()
        async with session.get(
            f"{emulator.url}/notes/today.txt", headers=signed("GET", "/notes/today.txt")
        ) as response:
            assert (response.status, await response.read()) == (200, b"virtual")
    # The same object, path-style, through boto3.
    got = await asyncio.to_thread(
        lambda: boto_client("s3", emulator.url).get_object(Bucket="vhost-bucket", Key="notes/today.txt")
    )
    assert got["Body"].read() == b"virtual"
    assert got["ETag"] == '"' + hashlib.md5(b"virtual").hexdigest() + '"'
