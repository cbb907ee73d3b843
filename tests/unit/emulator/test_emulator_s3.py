"""The emulated S3 service, called directly: addressing, listings, ranges, ETags, aws-chunked payloads,
digests and the errors that arise from the state."""

from __future__ import annotations

import base64
import hashlib
import zlib
from dataclasses import replace

import pytest
from defusedxml import ElementTree
from emulator_unit_support import CallFactory

from proxy.core.model import AwsError, RequestHead
from proxy.emulator.errors import ErrorBook
from proxy.emulator.s3 import S3Service, multipart_etag, valid_bucket_name
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.wire import IdSource, Reply, ServiceError

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
CONSTRAINT = (
    "<CreateBucketConfiguration><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>"
)


class Client:
    def __init__(self, service: S3Service, make_call: CallFactory) -> None:
        self.service = service
        self.make_call = make_call

    def __call__(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        *,
        account_id: str = "123456789012",
        host: str = "127.0.0.1:8081",
    ) -> Reply:
        call = self.make_call(method, target, [("Host", host), *(headers or [])], body, account_id=account_id)
        data, trailers = self.service.decode_payload(call.head, body)
        call = replace(call, body=data, trailers=trailers, operation=self.service.operation_of(call.head))
        return self.service.handle(call)

    def error(
        self,
        method: str,
        target: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
        **options: str,
    ) -> AwsError:
        with pytest.raises(ServiceError) as raised:
            self(method, target, body, headers, **options)
        return raised.value.error


@pytest.fixture
def s3(books: dict[str, ErrorBook], make_call: CallFactory) -> Client:
    settings = EmulatorSettings(s3_min_part_size=10)
    return Client(S3Service(books["s3"], settings, IdSource(2)), make_call)


def xml(reply: Reply) -> ElementTree.Element:
    return ElementTree.fromstring(reply.body)


def header(reply: Reply, name: str) -> str | None:
    return next((value for key, value in reply.headers if key.lower() == name.lower()), None)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("my-bucket", True),
        ("a.b.c", True),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("-start", False),
        ("end-", False),
        ("two..dots", False),
        ("192.168.1.1", False),
        ("xn--bucket", False),
        ("bucket-s3alias", False),
        ("under_score", False),
    ],
)
def test_bucket_naming_rules(name: str, valid: bool) -> None:
    assert valid_bucket_name(name) is valid


def test_multipart_etag_is_md5_of_part_md5s() -> None:
    parts = [b"a" * 10, b"b" * 3]
    etags = ['"' + hashlib.md5(part).hexdigest() + '"' for part in parts]
    expected = hashlib.md5(hashlib.md5(parts[0]).digest() + hashlib.md5(parts[1]).digest()).hexdigest()
    assert multipart_etag(etags) == f'"{expected}-2"'


@pytest.mark.parametrize(
    "case",
    [
        ("GET", "/", "127.0.0.1", "ListBuckets", None, None),
        ("PUT", "/bkt", "127.0.0.1", "CreateBucket", "bkt", None),
        ("GET", "/bkt?list-type=2&prefix=a", "127.0.0.1", "ListObjectsV2", "bkt", None),
        ("GET", "/bkt", "127.0.0.1", "ListObjects", "bkt", None),
        ("GET", "/bkt?location", "127.0.0.1", "GetBucketLocation", "bkt", None),
        ("GET", "/bkt?tagging", "127.0.0.1", "GetBucketTagging", "bkt", None),
        ("POST", "/bkt?delete", "127.0.0.1", "DeleteObjects", "bkt", None),
        ("PUT", "/bkt/dir/a%20b.txt", "127.0.0.1", "PutObject", "bkt", "dir/a b.txt"),
        ("POST", "/bkt/k?uploads", "127.0.0.1", "CreateMultipartUpload", "bkt", "k"),
        ("PUT", "/bkt/k?partNumber=1&uploadId=u", "127.0.0.1", "UploadPart", "bkt", "k"),
        ("POST", "/bkt/k?uploadId=u", "127.0.0.1", "CompleteMultipartUpload", "bkt", "k"),
        ("DELETE", "/bkt/k?uploadId=u", "127.0.0.1", "AbortMultipartUpload", "bkt", "k"),
        ("GET", "/bkt/k?uploadId=u", "127.0.0.1", "ListParts", "bkt", "k"),
        ("HEAD", "/k", "bkt.s3.amazonaws.com", "HeadObject", "bkt", "k"),
        ("GET", "/", "my.bucket.s3.eu-west-1.amazonaws.com", "ListObjects", "my.bucket", None),
        ("GET", "/x/y", "b2.s3.localhost:8081", "GetObject", "b2", "x/y"),
        ("GET", "/", "s3.localhost:8081", "ListBuckets", None, None),
        ("GET", "/", "s3.amazonaws.com", "ListBuckets", None, None),
    ],
)
def test_addressing_and_operations(
    s3: Client, case: tuple[str, str, str, str, str | None, str | None]
) -> None:
    method, target, host, operation, bucket, key = case
    head = RequestHead.build(method, target, [("Host", host)])
    assert s3.service.operation_of(head) == operation
    addressed = s3.service.target(head)
    assert (addressed.bucket, addressed.key) == (bucket, key)


def test_bucket_lifecycle_and_errors(s3: Client) -> None:
    assert s3.error("PUT", "/Bad_Name").code == "InvalidBucketName"
    assert s3("PUT", "/bucket-one").status == 200
    assert s3("PUT", "/bucket-one").status == 200  # us-east-1: the owner re-creating it is a no-op
    taken = s3.error("PUT", "/bucket-one", account_id="210987654321")
    assert (taken.code, taken.status, taken.extra) == (
        "BucketAlreadyExists",
        409,
        (("BucketName", "bucket-one"),),
    )
    assert s3.error("GET", "/bucket-one/k", account_id="210987654321").code == "AccessDenied"
    constraint = CONSTRAINT.format(region="us-east-1").encode()
    assert s3.error("PUT", "/bucket-two", constraint).code == "InvalidLocationConstraint"
    names = [e.text for e in xml(s3("GET", "/")).iter(f"{NS}Name")]
    assert names == ["bucket-one"]
    assert header(s3("HEAD", "/bucket-one"), "x-amz-bucket-region") == "us-east-1"
    s3("PUT", "/bucket-one/key", b"data")
    not_empty = s3.error("DELETE", "/bucket-one")
    assert (not_empty.code, not_empty.status) == ("BucketNotEmpty", 409)
    s3("DELETE", "/bucket-one/key")
    assert s3("DELETE", "/bucket-one").status == 204
    missing = s3.error("GET", "/bucket-one")
    assert (missing.code, missing.status, missing.extra) == (
        "NoSuchBucket",
        404,
        (("BucketName", "bucket-one"),),
    )


def test_bucket_already_owned_outside_us_east_1(books: dict[str, ErrorBook], make_call: CallFactory) -> None:
    s3 = Client(S3Service(books["s3"], EmulatorSettings(region="eu-west-1"), IdSource(0)), make_call)
    constraint = CONSTRAINT.format(region="eu-west-1").encode()
    assert s3("PUT", "/bucket-eu", constraint).status == 200
    assert s3.error("PUT", "/bucket-eu", constraint).code == "BucketAlreadyOwnedByYou"
    assert s3.error("PUT", "/bucket-eu-2").code == "InvalidLocationConstraint"
    assert xml(s3("GET", "/bucket-eu?location")).text == "eu-west-1"


def test_objects_metadata_ranges_and_conditions(s3: Client) -> None:
    s3("PUT", "/bkt")
    headers = [("Content-Type", "text/plain"), ("x-amz-meta-colour", "blue"), ("Cache-Control", "no-cache")]
    put = s3("PUT", "/bkt/dir/file.txt", b"0123456789", headers)
    assert header(put, "ETag") == '"' + hashlib.md5(b"0123456789").hexdigest() + '"'
    got = s3("GET", "/bkt/dir/file.txt")
    assert got.body == b"0123456789"
    assert header(got, "Content-Type") == "text/plain"
    assert header(got, "x-amz-meta-colour") == "blue"
    assert header(got, "Cache-Control") == "no-cache"
    head = s3("HEAD", "/bkt/dir/file.txt")
    assert head.body == b"" and header(head, "Content-Length") == "10"
    partial = s3("GET", "/bkt/dir/file.txt", headers=[("Range", "bytes=2-4")])
    assert (partial.status, partial.body, header(partial, "Content-Range")) == (206, b"234", "bytes 2-4/10")
    assert s3("GET", "/bkt/dir/file.txt", headers=[("Range", "bytes=-3")]).body == b"789"
    bad_range = s3.error("GET", "/bkt/dir/file.txt", headers=[("Range", "bytes=20-30")])
    assert (bad_range.code, bad_range.status) == ("InvalidRange", 416)
    etag = header(put, "ETag") or ""
    assert s3("GET", "/bkt/dir/file.txt", headers=[("If-None-Match", etag)]).status == 304
    failed = s3.error("GET", "/bkt/dir/file.txt", headers=[("If-Match", '"other"')])
    assert (failed.code, failed.status) == ("PreconditionFailed", 412)
    missing = s3.error("GET", "/bkt/absent")
    assert (missing.code, missing.status, missing.extra) == ("NoSuchKey", 404, (("Key", "absent"),))
    copied = s3("PUT", "/bkt/copy.txt", headers=[("x-amz-copy-source", "/bkt/dir/file.txt")])
    assert xml(copied).find(f"{NS}ETag").text == etag  # type: ignore[union-attr]
    assert (
        s3.error("PUT", "/bkt/copy.txt", headers=[("x-amz-copy-source", "bkt/copy.txt")]).code
        == "InvalidRequest"
    )
    assert s3.error("PUT", "/bkt/" + "k" * 1025, b"x").code == "KeyTooLong"


def test_digests_are_checked(s3: Client) -> None:
    s3("PUT", "/bkt")
    good_md5 = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    assert s3("PUT", "/bkt/k", b"payload", [("Content-MD5", good_md5)]).status == 200
    bad = s3.error("PUT", "/bkt/k", b"payload!", [("Content-MD5", good_md5)])
    assert bad.code == "BadDigest" and ("ExpectedDigest", good_md5) in bad.extra
    assert s3.error("PUT", "/bkt/k", b"payload", [("Content-MD5", "not-base64")]).code == "InvalidDigest"
    crc = base64.b64encode(zlib.crc32(b"payload").to_bytes(4, "big")).decode()
    stored = s3("PUT", "/bkt/k", b"payload", [("x-amz-checksum-crc32", crc)])
    assert header(stored, "x-amz-checksum-crc32") == crc
    got = s3("GET", "/bkt/k", headers=[("x-amz-checksum-mode", "ENABLED")])
    assert header(got, "x-amz-checksum-crc32") == crc
    mismatch = s3.error("PUT", "/bkt/k", b"other", [("x-amz-checksum-crc32", crc)])
    assert mismatch.message == "The CRC32 you specified did not match the calculated checksum."


def test_aws_chunked_payload_with_trailer(s3: Client) -> None:
    s3("PUT", "/bkt")
    data = b"hello aws-chunked world" * 100
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    body = (
        f"{1000:x}\r\n".encode() + data[:1000] + b"\r\n"
        + f"{len(data) - 1000:x}\r\n".encode() + data[1000:] + b"\r\n"
        + b"0\r\n" + f"x-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    )  # fmt: skip
    headers = [
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-decoded-content-length", str(len(data))),
        ("x-amz-trailer", "x-amz-checksum-crc32"),
    ]
    put = s3("PUT", "/bkt/chunked", body, headers)
    assert header(put, "ETag") == '"' + hashlib.md5(data).hexdigest() + '"'
    got = s3("GET", "/bkt/chunked")
    assert got.body == data
    assert header(got, "Content-Encoding") is None  # aws-chunked is not stored
    wrong_length = [*headers[:2], ("x-amz-decoded-content-length", str(len(data) + 1))]
    assert s3.error("PUT", "/bkt/chunked", body, headers=wrong_length).code == "IncompleteBody"
    assert s3.error("PUT", "/bkt/chunked", b"zz\r\nnot chunked", headers=headers[:2]).code == "IncompleteBody"


def test_listings_with_prefix_delimiter_and_pages(s3: Client) -> None:
    s3("PUT", "/bkt")
    keys = ["a/1", "a/2", "b/1", "c", "d e+f"]
    for key in keys:
        s3("PUT", "/bkt/" + key.replace(" ", "%20").replace("+", "%2B"), b"x")
    listing = xml(s3("GET", "/bkt?list-type=2&delimiter=/"))
    assert [e.text for e in listing.iter(f"{NS}Key")] == ["c", "d e+f"]
    assert [e.text for e in listing.iter(f"{NS}Prefix")][1:] == ["a/", "b/"]
    assert listing.find(f"{NS}KeyCount").text == "4"  # type: ignore[union-attr]
    seen: list[str] = []
    token = None
    while True:
        query = "/bkt?list-type=2&max-keys=2" + (f"&continuation-token={token}" if token else "")
        page = xml(s3("GET", query))
        seen += [e.text or "" for e in page.iter(f"{NS}Key")]
        token_element = page.find(f"{NS}NextContinuationToken")
        if token_element is None:
            assert page.find(f"{NS}IsTruncated").text == "false"  # type: ignore[union-attr]
            break
        token = token_element.text
    assert seen == keys
    encoded = xml(s3("GET", "/bkt?encoding-type=url&prefix=d"))
    assert [e.text for e in encoded.iter(f"{NS}Key")] == ["d%20e%2Bf"]
    v1 = xml(s3("GET", "/bkt?marker=a/2&max-keys=1&delimiter=/"))
    assert [e.text for e in v1.iter(f"{NS}Prefix")][1:] == ["b/"]
    assert v1.find(f"{NS}NextMarker").text == "b/"  # type: ignore[union-attr]
    assert s3.error("GET", "/bkt?max-keys=-1").code == "InvalidArgument"


def test_multipart_upload(s3: Client) -> None:
    s3("PUT", "/bkt")
    upload_id = xml(s3("POST", "/bkt/big?uploads")).find(f"{NS}UploadId").text  # type: ignore[union-attr]
    parts = [b"A" * 12, b"B" * 12, b"C" * 3]
    etags = []
    for number, part in enumerate(parts, start=1):
        etags.append(header(s3("PUT", f"/bkt/big?partNumber={number}&uploadId={upload_id}", part), "ETag"))
    listed = xml(s3("GET", f"/bkt/big?uploadId={upload_id}"))
    assert [e.text for e in listed.iter(f"{NS}PartNumber")] == ["1", "2", "3"]

    def complete(numbers: list[int], tags: list[str | None]) -> bytes:
        items = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{t}</ETag></Part>"
            for n, t in zip(numbers, tags, strict=True)
        )
        return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()

    target = f"/bkt/big?uploadId={upload_id}"
    assert s3.error("POST", target, complete([2, 1], etags[:2])).code == "InvalidPartOrder"
    invalid = s3.error("POST", target, complete([1, 4], [etags[0], etags[1]]))
    assert invalid.code == "InvalidPart" and ("PartNumber", "4") in invalid.extra
    assert s3.error("POST", target, complete([1, 2], [etags[0], '"0000"'])).code == "InvalidPart"
    too_small = s3.error("POST", target, complete([1, 3, 2], [etags[0], etags[2], etags[1]]))
    assert too_small.code == "InvalidPartOrder"
    s3("PUT", f"/bkt/big?partNumber=4&uploadId={upload_id}", b"D" * 3)
    entity = s3.error(
        "POST", target, complete([3, 4], [etags[2], '"' + hashlib.md5(b"DDD").hexdigest() + '"'])
    )
    assert (entity.code, ("PartNumber", "3")) == ("EntityTooSmall", entity.extra[2])
    assert s3.error("POST", target, b"<CompleteMultipartUpload/>").code == "MalformedXML"
    done = xml(s3("POST", target, complete([1, 2, 3], etags)))
    assert done.find(f"{NS}ETag").text == multipart_etag([e or "" for e in etags])  # type: ignore[union-attr]
    assert s3("GET", "/bkt/big").body == b"".join(parts)
    assert s3.error("POST", target, complete([1], etags[:1])).code == "NoSuchUpload"
    other = xml(s3("POST", "/bkt/other?uploads")).find(f"{NS}UploadId").text  # type: ignore[union-attr]
    assert s3("DELETE", f"/bkt/other?uploadId={other}").status == 204
    assert s3.error("DELETE", f"/bkt/other?uploadId={other}").code == "NoSuchUpload"
    assert s3.error("PUT", f"/bkt/big?partNumber=10001&uploadId={other}", b"x").code == "InvalidArgument"


def test_delete_objects_and_unimplemented(s3: Client) -> None:
    s3("PUT", "/bkt")
    s3("PUT", "/bkt/x", b"1")
    s3("PUT", "/bkt/y", b"2")
    body = b"<Delete><Object><Key>x</Key></Object><Object><Key>y</Key></Object></Delete>"
    deleted = xml(s3("POST", "/bkt?delete", body))
    assert [e.text for e in deleted.iter(f"{NS}Key")] == ["x", "y"]
    assert xml(s3("GET", "/bkt")).find(f"{NS}Contents") is None
    assert s3.error("GET", "/bkt?tagging").code == "NotImplemented"
    assert s3.error("POST", "/bkt").code == "MethodNotAllowed"
