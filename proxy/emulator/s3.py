"""Amazon S3, REST-XML (seeds 002/003), in memory: buckets, objects and multipart uploads.

Path-style (`/bucket/key`) and virtual-hosted (`bucket.s3.amazonaws.com/key`) addressing; the errors
arise where S3 raises them (NoSuchBucket, NoSuchKey, BucketAlreadyExists, BucketAlreadyOwnedByYou,
BucketNotEmpty, InvalidBucketName, EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload,
BadDigest, InvalidDigest, InvalidRange, IncompleteBody, ...) with the extra elements S3 adds to them.
ETags are what S3 computes: the MD5 of the object, or for a multipart object the MD5 of the
concatenated part MD5s followed by `-<part count>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, quote, unquote
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import ElementTree as SafeElementTree

from proxy.core.model import Protocol, RequestHead
from proxy.core.sigv4.chunked import (
    AwsChunkedDecoder,
    ChunkData,
    ChunkedError,
    TrailerField,
    checksum_for,
)
from proxy.emulator.errors import ErrorBook
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.wire import Call, IdSource, Reply, ServiceError, http_date, iso8601

SERVICE = "s3"
NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_KEYS = 1000
MAX_PART_NUMBER = 10_000
MAX_KEY_BYTES = 1024
DEFAULT_CONTENT_TYPE = "binary/octet-stream"
# Checksums S3 accepts in x-amz-checksum-<algorithm> (header or trailer); those the core can compute
# (crc32, sha1, sha256) are verified, the others are stored and echoed as given.
CHECKSUM_ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
# Object headers S3 stores with an object and returns on GET and HEAD.
STORED_HEADERS = ("cache-control", "content-disposition", "content-encoding", "content-language", "expires")
# A virtual-hosted host on AWS: <bucket>.s3.amazonaws.com, <bucket>.s3.<region>.amazonaws.com,
# <bucket>.s3-<region>.amazonaws.com, <bucket>.s3.dualstack.<region>.amazonaws.com.
AWS_VIRTUAL_HOST = re.compile(
    r"^(?P<bucket>[a-z0-9.\-]+)\.s3(?:[.-](?:dualstack\.)?[a-z0-9-]+)?\.amazonaws\.com$"
)
# Bucket naming rules (S3 User Guide, "Bucket naming rules"): 3-63 characters of lower-case letters,
# digits, dots and hyphens, beginning and ending with a letter or digit, no two adjacent dots, not an IP
# address, none of the reserved prefixes and suffixes.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def valid_bucket_name(name: str) -> bool:
    if not BUCKET_NAME.match(name) or ".." in name:
        return False
    if name.startswith(RESERVED_BUCKET_PREFIXES) or name.endswith(RESERVED_BUCKET_SUFFIXES):
        return False
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return True
    return False


def is_aws_chunked(head: RequestHead) -> bool:
    """aws-chunked: `Content-Encoding: aws-chunked` or a STREAMING-* x-amz-content-sha256."""
    encodings = ",".join(head.get_all("content-encoding")).lower()
    declared = head.get("x-amz-content-sha256") or ""
    return "aws-chunked" in encodings or declared.startswith("STREAMING-")


def compute_checksum(algorithm: str, data: bytes) -> str | None:
    """The base64 value S3 computes for x-amz-checksum-<algorithm>; None when not computable here."""
    checksum = checksum_for(f"x-amz-checksum-{algorithm}")
    if checksum is None:
        return None
    checksum.update(memoryview(data))
    return checksum.digest_b64()


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def multipart_etag(part_etags: list[str]) -> str:
    """S3's multipart ETag: md5 of the concatenated binary part MD5s, then `-<count>`."""
    digests = b"".join(binascii.unhexlify(etag.strip('"')) for etag in part_etags)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"'


def canonical_user_id(account_id: str) -> str:
    """S3's canonical user id of an account (64 hex digits)."""
    return hashlib.sha256(f"sigwatch-emulator:{account_id}".encode()).hexdigest()


def _el(name: str, value: object) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
    return f"<{name}>{text}</{name}>"


def _document(root: str, inner: str) -> bytes:
    return f'{XML_DECLARATION}<{root} xmlns="{NAMESPACE}">{inner}</{root}>'.encode()


def _owner(account_id: str) -> str:
    return "<Owner>" + _el("ID", canonical_user_id(account_id)) + _el("DisplayName", account_id) + "</Owner>"


@dataclass
class StoredObject:
    key: str
    data: bytes
    etag: str
    last_modified: datetime
    content_type: str
    metadata: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    checksum: tuple[str, str] | None = None  # (algorithm, base64 value)

    def response_headers(self, *, checksum_mode: bool) -> list[tuple[str, str]]:
        headers = [
            ("Last-Modified", http_date(self.last_modified)),
            ("ETag", self.etag),
            ("Content-Type", self.content_type),
            ("Accept-Ranges", "bytes"),
            ("x-amz-server-side-encryption", "AES256"),
        ]
        headers.extend(self.headers)
        headers.extend((f"x-amz-meta-{name}", value) for name, value in self.metadata)
        if checksum_mode and self.checksum is not None:
            headers.append((f"x-amz-checksum-{self.checksum[0]}", self.checksum[1]))
        return headers


@dataclass
class Part:
    number: int
    data: bytes
    etag: str
    last_modified: datetime


@dataclass
class Upload:
    upload_id: str
    key: str
    initiated: datetime
    account_id: str
    content_type: str
    metadata: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    parts: dict[int, Part] = field(default_factory=dict)


@dataclass
class Bucket:
    name: str
    account_id: str
    region: str
    created: datetime
    objects: dict[str, StoredObject] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class S3Target:
    """Which bucket and key a request addresses, and its decoded query parameters."""

    bucket: str | None
    key: str | None
    params: Mapping[str, str]


def _host_name(head: RequestHead) -> str:
    host = (head.host or "").strip().lower()
    if host.startswith("["):  # an IPv6 literal
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class S3Service:
    """The emulated S3 endpoint of one emulator application."""

    service = SERVICE
    protocol = Protocol.REST_XML

    def __init__(self, errors: ErrorBook, settings: EmulatorSettings, ids: IdSource) -> None:
        self.errors = errors
        self.settings = settings
        self.ids = ids
        self.buckets: dict[str, Bucket] = {}
        self._handlers: Mapping[str, Callable[[Call, S3Target], Reply]] = {
            "ListBuckets": self._list_buckets,
            "CreateBucket": self._create_bucket,
            "DeleteBucket": self._delete_bucket,
            "HeadBucket": self._head_bucket,
            "GetBucketLocation": self._get_bucket_location,
            "GetBucketVersioning": self._get_bucket_versioning,
            "ListObjects": self._list_objects,
            "ListObjectsV2": self._list_objects,
            "ListMultipartUploads": self._list_multipart_uploads,
            "DeleteObjects": self._delete_objects,
            "PutObject": self._put_object,
            "CopyObject": self._copy_object,
            "GetObject": self._get_object,
            "HeadObject": self._get_object,
            "DeleteObject": self._delete_object,
            "CreateMultipartUpload": self._create_multipart_upload,
            "UploadPart": self._upload_part,
            "CompleteMultipartUpload": self._complete_multipart_upload,
            "AbortMultipartUpload": self._abort_multipart_upload,
            "ListParts": self._list_parts,
        }

    # -- routing -------------------------------------------------------------------------------------

    def target(self, head: RequestHead) -> S3Target:
        """Bucket and key from a virtual-hosted Host or from the path (path-style)."""
        params = dict(parse_qsl(head.query, keep_blank_values=True))
        host = _host_name(head)
        bucket: str | None = None
        suffixes = sorted(self.settings.s3_virtual_host_suffixes, key=len, reverse=True)
        if host not in suffixes:
            for suffix in suffixes:
                if host.endswith("." + suffix):
                    bucket = host[: -len(suffix) - 1]
                    break
            else:
                match = AWS_VIRTUAL_HOST.match(host)
                if match:
                    bucket = match.group("bucket")
        path = head.path
        if bucket is not None:
            key = unquote(path[1:]) if len(path) > 1 else None
            return S3Target(bucket, key or None, params)
        first, _, rest = path.lstrip("/").partition("/")
        return S3Target(unquote(first) or None, unquote(rest) or None, params)

    def operation_of(self, head: RequestHead) -> str | None:
        """The S3 operation (botocore's name) a request is, from its method, bucket, key and query."""
        target = self.target(head)
        method = head.method.upper()
        params = target.params
        if target.bucket is None:
            return "ListBuckets" if method == "GET" else None
        if target.key is None:
            return _bucket_operation(method, params)
        return _object_operation(method, params, head)

    def handle(self, call: Call) -> Reply:
        target = self.target(call.head)
        operation = call.operation or self.operation_of(call.head)
        handler = self._handlers.get(operation or "")
        if handler is None:
            if operation is None:
                raise ServiceError(
                    self.errors.error(
                        "MethodNotAllowed",
                        extra=(("Method", call.head.method), ("ResourceType", _resource_type(target))),
                    )
                )
            raise ServiceError(self.errors.error("NotImplemented"))
        if target.key is not None and len(target.key.encode()) > MAX_KEY_BYTES:
            raise ServiceError(self.errors.error("KeyTooLong"))
        return handler(call, target)

    # -- payload -------------------------------------------------------------------------------------

    def decode_payload(self, head: RequestHead, raw: bytes) -> tuple[bytes, tuple[tuple[str, str], ...]]:
        """The object bytes of a request body: aws-chunked framing removed, trailers returned.

        `x-amz-decoded-content-length` must equal the decoded length (S3 answers IncompleteBody when the
        client sent fewer bytes than it declared).
        """
        if not is_aws_chunked(head):
            return raw, ()
        decoder = AwsChunkedDecoder(max_chunk_bytes=max(self.settings.max_body_bytes, 1))
        pieces: list[bytes] = []
        trailers: list[tuple[str, str]] = []
        try:
            for event in [*decoder.feed(raw), *decoder.finish()]:
                if isinstance(event, ChunkData):
                    pieces.append(bytes(event.data))
                elif isinstance(event, TrailerField) and event.name != "x-amz-trailer-signature":
                    trailers.append((event.name, event.value))
        except ChunkedError as problem:
            raise ServiceError(self.errors.error("IncompleteBody", message=problem.detail)) from None
        data = b"".join(pieces)
        declared = head.get("x-amz-decoded-content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) != len(data):
            raise ServiceError(self.errors.error("IncompleteBody"))
        return data, tuple(trailers)

    # -- helpers -------------------------------------------------------------------------------------

    def _bucket(self, call: Call, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None:
            raise ServiceError(self.errors.error("NoSuchBucket", extra=(("BucketName", name),)))
        if bucket.account_id != call.account_id:
            raise ServiceError(self.errors.error("AccessDenied"))
        return bucket

    def _object(self, call: Call, target: S3Target) -> tuple[Bucket, StoredObject]:
        bucket = self._bucket(call, str(target.bucket))
        stored = bucket.objects.get(str(target.key))
        if stored is None:
            raise ServiceError(self.errors.error("NoSuchKey", extra=(("Key", str(target.key)),)))
        return bucket, stored

    def _upload(self, bucket: Bucket, target: S3Target) -> Upload:
        upload_id = target.params.get("uploadId", "")
        upload = bucket.uploads.get(upload_id)
        if upload is None or upload.key != target.key:
            raise ServiceError(self.errors.error("NoSuchUpload", extra=(("UploadId", upload_id),)))
        return upload

    def _reply(
        self, call: Call, status: int = 200, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> Reply:
        all_headers = [("x-amz-request-id", call.request_id), ("x-amz-id-2", call.host_id)]
        if body:
            all_headers.append(("Content-Type", "application/xml"))
        all_headers.extend(headers or [])
        return Reply(status=status, headers=tuple(all_headers), body=body)

    def _xml_body(self, call: Call) -> Element | None:
        if not call.body.strip():
            return None
        try:
            root: Element = SafeElementTree.fromstring(call.body)
        except (ParseError, ValueError):
            raise ServiceError(self.errors.error("MalformedXML")) from None
        return root

    def _int_param(self, params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
        raw = params.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise ServiceError(
                self.errors.error(
                    "InvalidArgument",
                    message=f"Provided {name} not an integer or within integer range",
                    extra=(("ArgumentName", name), ("ArgumentValue", raw)),
                )
            )
        return value

    def _object_attributes(
        self, call: Call
    ) -> tuple[str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
        """Content-Type, user metadata and the stored content headers a PUT/initiate carries."""
        head = call.head
        content_type = head.get("content-type") or DEFAULT_CONTENT_TYPE
        metadata = tuple(
            (name[len("x-amz-meta-") :], head.get(name) or "")
            for name in sorted(head.header_names)
            if name.startswith("x-amz-meta-")
        )
        stored: list[tuple[str, str]] = []
        for name in STORED_HEADERS:
            value = head.get(name)
            if value is None:
                continue
            if name == "content-encoding":
                # aws-chunked is a transfer detail: S3 drops it from the stored Content-Encoding.
                kept = [part.strip() for part in value.split(",") if part.strip().lower() != "aws-chunked"]
                if not kept:
                    continue
                value = ",".join(kept)
            stored.append((name.title(), value))
        return content_type, metadata, tuple(stored)

    def _verify_digests(self, call: Call, data: bytes) -> tuple[str, str] | None:
        """Content-MD5 and x-amz-checksum-* (header or trailer) checked against the payload.

        S3: "BadDigest: The Content-MD5 you specified did not match what we received." and, for the
        flexible checksums, "The CRC32 you specified did not match the calculated checksum."
        """
        head = call.head
        content_md5 = head.get("content-md5")
        if content_md5 is not None:
            try:
                expected = base64.b64decode(content_md5.strip(), validate=True)
            except (binascii.Error, ValueError):
                expected = b""
            if len(expected) != 16:
                raise ServiceError(self.errors.error("InvalidDigest"))
            calculated = hashlib.md5(data).digest()
            if calculated != expected:
                raise ServiceError(
                    self.errors.error(
                        "BadDigest",
                        extra=(
                            ("ExpectedDigest", content_md5.strip()),
                            ("CalculatedDigest", base64.b64encode(calculated).decode()),
                        ),
                    )
                )
        declared = dict(call.trailers)
        for algorithm in CHECKSUM_ALGORITHMS:
            header = f"x-amz-checksum-{algorithm}"
            value = declared.get(header) or head.get(header)
            if value is None:
                continue
            computed = compute_checksum(algorithm, data)
            if computed is not None and computed != value.strip():
                raise ServiceError(
                    self.errors.error(
                        "BadDigest",
                        message=f"The {algorithm.upper()} you specified did not match the calculated "
                        "checksum.",
                    )
                )
            return algorithm, value.strip()
        return None

    # -- buckets -------------------------------------------------------------------------------------

    def _list_buckets(self, call: Call, target: S3Target) -> Reply:
        owned = sorted(
            (bucket for bucket in self.buckets.values() if bucket.account_id == call.account_id),
            key=lambda bucket: bucket.name,
        )
        buckets = "".join(
            "<Bucket>"
            + _el("Name", bucket.name)
            + _el("CreationDate", iso8601(bucket.created))
            + _el("BucketRegion", bucket.region)
            + "</Bucket>"
            for bucket in owned
        )
        inner = _owner(call.account_id) + f"<Buckets>{buckets}</Buckets>"
        return self._reply(call, body=_document("ListAllMyBucketsResult", inner))

    def _create_bucket(self, call: Call, target: S3Target) -> Reply:
        name = str(target.bucket)
        if not valid_bucket_name(name):
            raise ServiceError(self.errors.error("InvalidBucketName", extra=(("BucketName", name),)))
        root = self._xml_body(call)
        constraint = None
        if root is not None:
            for element in root.iter():
                if element.tag.rpartition("}")[2] == "LocationConstraint":
                    constraint = (element.text or "").strip() or None
        region = self.settings.region
        # us-east-1 takes no LocationConstraint ("us-east-1" itself is refused); every other region
        # requires its own name.
        expected_constraint = None if region == "us-east-1" else region
        if constraint != expected_constraint:
            raise ServiceError(
                self.errors.error(
                    "InvalidLocationConstraint", extra=(("LocationConstraint", constraint or ""),)
                )
            )
        existing = self.buckets.get(name)
        if existing is not None:
            if existing.account_id != call.account_id:
                raise ServiceError(self.errors.error("BucketAlreadyExists", extra=(("BucketName", name),)))
            # Seeds 002/003: "BucketAlreadyOwnedByYou ... in all AWS regions except US Standard,
            # us-east-1. In us-east-1 region, you will get 200 OK, but it is no-op".
            if region != "us-east-1":
                raise ServiceError(
                    self.errors.error("BucketAlreadyOwnedByYou", extra=(("BucketName", name),))
                )
        else:
            self.buckets[name] = Bucket(
                name=name, account_id=call.account_id, region=region, created=call.now
            )
        return self._reply(call, headers=[("Location", f"/{name}")])

    def _delete_bucket(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        if bucket.objects or bucket.uploads:
            raise ServiceError(self.errors.error("BucketNotEmpty", extra=(("BucketName", bucket.name),)))
        del self.buckets[bucket.name]
        return self._reply(call, status=204)

    def _head_bucket(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        return self._reply(call, headers=[("x-amz-bucket-region", bucket.region)])

    def _get_bucket_location(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        # us-east-1 buckets answer an empty LocationConstraint.
        location = "" if bucket.region == "us-east-1" else escape(bucket.region)
        return self._reply(call, body=_document("LocationConstraint", location))

    def _get_bucket_versioning(self, call: Call, target: S3Target) -> Reply:
        self._bucket(call, str(target.bucket))
        return self._reply(call, body=_document("VersioningConfiguration", ""))

    def _list_objects(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        params = target.params
        version_2 = params.get("list-type") == "2"
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        max_keys = self._int_param(params, "max-keys", MAX_KEYS, low=0, high=2**31 - 1)
        url_encoded = params.get("encoding-type") == "url"
        if params.get("encoding-type") not in (None, "url"):
            raise ServiceError(
                self.errors.error(
                    "InvalidArgument",
                    message="Invalid Encoding Method specified in Request",
                    extra=(("ArgumentName", "encoding-type"), ("ArgumentValue", params["encoding-type"])),
                )
            )
        token = params.get("continuation-token")
        if version_2:
            after = params.get("start-after", "")
            if token is not None:
                after = self._decode_token(token)
        else:
            after = params.get("marker", "")

        def encode(text: str) -> str:
            return quote(text, safe="/") if url_encoded else text

        contents, prefixes, truncated, last = _list_keys(bucket.objects, prefix, delimiter, after, max_keys)
        entries = "".join(
            "<Contents>"
            + _el("Key", encode(item.key))
            + _el("LastModified", iso8601(item.last_modified))
            + _el("ETag", item.etag)
            + (_el("ChecksumAlgorithm", item.checksum[0].upper()) if item.checksum else "")
            + _el("Size", len(item.data))
            + (_owner(bucket.account_id) if not version_2 or params.get("fetch-owner") == "true" else "")
            + _el("StorageClass", "STANDARD")
            + "</Contents>"
            for item in contents
        )
        common = "".join(f"<CommonPrefixes>{_el('Prefix', encode(p))}</CommonPrefixes>" for p in prefixes)
        inner = _el("Name", bucket.name) + _el("Prefix", encode(prefix))
        if version_2:
            if token is not None:
                inner += _el("ContinuationToken", token)
            if "start-after" in params:
                inner += _el("StartAfter", encode(params["start-after"]))
            inner += _el("KeyCount", len(contents) + len(prefixes))
        else:
            inner += _el("Marker", encode(params.get("marker", "")))
        inner += _el("MaxKeys", max_keys)
        if delimiter:
            inner += _el("Delimiter", encode(delimiter))
        if url_encoded:
            inner += _el("EncodingType", "url")
        inner += _el("IsTruncated", truncated)
        if truncated and last is not None:
            if version_2:
                inner += _el("NextContinuationToken", base64.urlsafe_b64encode(last.encode()).decode())
            elif delimiter:
                # ListObjects (v1) sends NextMarker only with a delimiter; clients use the last key
                # otherwise.
                inner += _el("NextMarker", encode(last))
        return self._reply(call, body=_document("ListBucketResult", inner + entries + common))

    def _decode_token(self, token: str) -> str:
        try:
            return base64.urlsafe_b64decode(token.encode()).decode()
        except (binascii.Error, ValueError):
            raise ServiceError(
                self.errors.error(
                    "InvalidArgument",
                    message="The continuation token provided is incorrect",
                    extra=(("ArgumentName", "continuation-token"), ("ArgumentValue", token)),
                )
            ) from None

    def _list_multipart_uploads(self, call: Call, target: S3Target) -> Reply:
        """In-progress uploads in key order (a key's uploads in the order they began), one page of at
        most max-uploads after the markers. S3: "key-marker: ... only the keys lexicographically greater
        than the specified key-marker will be included"; with upload-id-marker, the marker key's uploads
        after that upload too. A truncated page names where the next one starts (NextKeyMarker,
        NextUploadIdMarker)."""
        bucket = self._bucket(call, str(target.bucket))
        params = target.params
        prefix = params.get("prefix", "")
        key_marker = params.get("key-marker", "")
        upload_id_marker = params.get("upload-id-marker", "") if key_marker else ""
        max_uploads = self._int_param(params, "max-uploads", MAX_KEYS, low=0, high=MAX_KEYS)
        uploads = sorted(
            (upload for upload in bucket.uploads.values() if upload.key.startswith(prefix)),
            key=lambda upload: (upload.key, upload.initiated),
        )
        ids_of_marker_key = [u.upload_id for u in uploads if u.key == key_marker]
        after_marker_upload = (
            ids_of_marker_key[ids_of_marker_key.index(upload_id_marker) + 1 :]
            if upload_id_marker in ids_of_marker_key
            else []
        )
        remaining = [
            upload
            for upload in uploads
            if upload.key > key_marker
            or (upload.key == key_marker and upload.upload_id in after_marker_upload)
        ]
        page, truncated = remaining[:max_uploads], len(remaining) > max_uploads
        entries = "".join(
            "<Upload>"
            + _el("Key", upload.key)
            + _el("UploadId", upload.upload_id)
            + "<Initiator>"
            + _el("ID", canonical_user_id(upload.account_id))
            + _el("DisplayName", upload.account_id)
            + "</Initiator>"
            + _owner(upload.account_id)
            + _el("StorageClass", "STANDARD")
            + _el("Initiated", iso8601(upload.initiated))
            + "</Upload>"
            for upload in page
        )
        inner = (
            _el("Bucket", bucket.name)
            + _el("KeyMarker", key_marker)
            + _el("UploadIdMarker", upload_id_marker)
        )
        if truncated and page:
            inner += _el("NextKeyMarker", page[-1].key) + _el("NextUploadIdMarker", page[-1].upload_id)
        inner += (
            _el("Prefix", prefix) + _el("MaxUploads", max_uploads) + _el("IsTruncated", truncated) + entries
        )
        return self._reply(call, body=_document("ListMultipartUploadsResult", inner))

    def _delete_objects(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        root = self._xml_body(call)
        if root is None:
            raise ServiceError(self.errors.error("MalformedXML"))
        quiet = False
        keys: list[str] = []
        for element in root:
            tag = element.tag.rpartition("}")[2]
            if tag == "Quiet":
                quiet = (element.text or "").strip().lower() == "true"
            elif tag == "Object":
                for child in element:
                    if child.tag.rpartition("}")[2] == "Key":
                        keys.append(child.text or "")
        if not keys or len(keys) > MAX_KEYS:
            raise ServiceError(self.errors.error("MalformedXML"))
        for key in keys:
            bucket.objects.pop(key, None)
        deleted = "" if quiet else "".join(f"<Deleted>{_el('Key', key)}</Deleted>" for key in keys)
        return self._reply(call, body=_document("DeleteResult", deleted))

    # -- objects -------------------------------------------------------------------------------------

    def _put_object(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        data = call.body
        checksum = self._verify_digests(call, data)
        content_type, metadata, stored_headers = self._object_attributes(call)
        stored = StoredObject(
            key=str(target.key),
            data=data,
            etag=md5_etag(data),
            last_modified=call.now,
            content_type=content_type,
            metadata=metadata,
            headers=stored_headers,
            checksum=checksum,
        )
        bucket.objects[stored.key] = stored
        headers = [("ETag", stored.etag), ("x-amz-server-side-encryption", "AES256")]
        if checksum is not None:
            headers.append((f"x-amz-checksum-{checksum[0]}", checksum[1]))
        return self._reply(call, headers=headers)

    def _copy_object(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        source = unquote((call.head.get("x-amz-copy-source") or "").partition("?")[0]).lstrip("/")
        source_bucket_name, _, source_key = source.partition("/")
        if not source_bucket_name or not source_key:
            raise ServiceError(
                self.errors.error(
                    "InvalidArgument",
                    message="Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                    extra=(("ArgumentName", "x-amz-copy-source"), ("ArgumentValue", source)),
                )
            )
        _, original = self._object(call, S3Target(source_bucket_name, source_key, {}))
        replace = (call.head.get("x-amz-metadata-directive") or "COPY").upper() == "REPLACE"
        if source_bucket_name == bucket.name and source_key == target.key and not replace:
            raise ServiceError(
                self.errors.error(
                    "InvalidRequest",
                    message="This copy request is illegal because it is trying to copy an object to itself "
                    "without changing the object's metadata, storage class, website redirect location or "
                    "encryption attributes.",
                )
            )
        if replace:
            content_type, metadata, stored_headers = self._object_attributes(call)
        else:
            content_type, metadata, stored_headers = (
                original.content_type,
                original.metadata,
                original.headers,
            )
        copy = StoredObject(
            key=str(target.key),
            data=original.data,
            etag=md5_etag(original.data),
            last_modified=call.now,
            content_type=content_type,
            metadata=metadata,
            headers=stored_headers,
            checksum=original.checksum,
        )
        bucket.objects[copy.key] = copy
        inner = _el("LastModified", iso8601(copy.last_modified)) + _el("ETag", copy.etag)
        return self._reply(call, body=_document("CopyObjectResult", inner))

    def _get_object(self, call: Call, target: S3Target) -> Reply:
        _, stored = self._object(call, target)
        head = call.head
        # A ranged GET carries no full-object checksum (the client would check it against the range).
        checksum_mode = (head.get("x-amz-checksum-mode") or "").upper() == "ENABLED" and not head.has("range")
        headers = stored.response_headers(checksum_mode=checksum_mode)
        if_match = head.get("if-match")
        if if_match is not None and if_match.strip() not in (stored.etag, stored.etag.strip('"'), "*"):
            raise ServiceError(self.errors.error("PreconditionFailed", extra=(("Condition", "If-Match"),)))
        if_none_match = head.get("if-none-match")
        if if_none_match is not None and if_none_match.strip() in (stored.etag, stored.etag.strip('"'), "*"):
            # 304 Not Modified has no body, whatever the method.
            return self._reply(call, status=304, headers=[("ETag", stored.etag)])
        data = stored.data
        status = 200
        range_header = head.get("range")
        if range_header is not None:
            selected = _byte_range(range_header, len(data))
            if selected is None:
                raise ServiceError(
                    self.errors.error(
                        "InvalidRange",
                        extra=(("RangeRequested", range_header), ("ActualObjectSize", str(len(data)))),
                    )
                )
            start, end = selected
            data = data[start : end + 1]
            status = 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{len(stored.data)}"))
        headers.append(("Content-Length", str(len(data))))
        reply = self._reply(call, status=status, headers=headers)
        body = b"" if head.method.upper() == "HEAD" else data
        return Reply(status=reply.status, headers=reply.headers, body=body)

    def _delete_object(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        bucket.objects.pop(str(target.key), None)
        return self._reply(call, status=204)

    # -- multipart uploads ---------------------------------------------------------------------------

    def _create_multipart_upload(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        content_type, metadata, stored_headers = self._object_attributes(call)
        upload = Upload(
            upload_id=self.ids.alnum(64),
            key=str(target.key),
            initiated=call.now,
            account_id=call.account_id,
            content_type=content_type,
            metadata=metadata,
            headers=stored_headers,
        )
        bucket.uploads[upload.upload_id] = upload
        inner = _el("Bucket", bucket.name) + _el("Key", upload.key) + _el("UploadId", upload.upload_id)
        return self._reply(call, body=_document("InitiateMultipartUploadResult", inner))

    def _upload_part(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        number = self._int_param(target.params, "partNumber", 0, low=1, high=MAX_PART_NUMBER)
        upload = self._upload(bucket, target)
        checksum = self._verify_digests(call, call.body)
        part = Part(number=number, data=call.body, etag=md5_etag(call.body), last_modified=call.now)
        upload.parts[number] = part
        headers = [("ETag", part.etag), ("x-amz-server-side-encryption", "AES256")]
        if checksum is not None:
            headers.append((f"x-amz-checksum-{checksum[0]}", checksum[1]))
        return self._reply(call, headers=headers)

    def _complete_multipart_upload(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        upload = self._upload(bucket, target)
        root = self._xml_body(call)
        requested: list[tuple[int, str]] = []
        for element in [] if root is None else list(root):
            if element.tag.rpartition("}")[2] != "Part":
                continue
            fields = {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in element}
            if not fields.get("PartNumber", "").isdigit():
                raise ServiceError(self.errors.error("MalformedXML"))
            requested.append((int(fields["PartNumber"]), fields.get("ETag", "")))
        if not requested:
            raise ServiceError(self.errors.error("MalformedXML"))
        numbers = [number for number, _ in requested]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise ServiceError(self.errors.error("InvalidPartOrder", extra=(("UploadId", upload.upload_id),)))
        parts: list[Part] = []
        for number, etag in requested:
            part = upload.parts.get(number)
            if part is None or etag.strip('"') != part.etag.strip('"'):
                raise ServiceError(
                    self.errors.error(
                        "InvalidPart",
                        extra=(("UploadId", upload.upload_id), ("PartNumber", str(number)), ("ETag", etag)),
                    )
                )
            parts.append(part)
        for part in parts[:-1]:
            if len(part.data) < self.settings.s3_min_part_size:
                raise ServiceError(
                    self.errors.error(
                        "EntityTooSmall",
                        extra=(
                            ("ProposedSize", str(len(part.data))),
                            ("MinSizeAllowed", str(self.settings.s3_min_part_size)),
                            ("PartNumber", str(part.number)),
                            ("ETag", part.etag.strip('"')),
                        ),
                    )
                )
        stored = StoredObject(
            key=upload.key,
            data=b"".join(part.data for part in parts),
            etag=multipart_etag([part.etag for part in parts]),
            last_modified=call.now,
            content_type=upload.content_type,
            metadata=upload.metadata,
            headers=upload.headers,
        )
        bucket.objects[stored.key] = stored
        del bucket.uploads[upload.upload_id]
        host = call.head.host or "s3.amazonaws.com"
        inner = (
            _el("Location", f"http://{host}/{bucket.name}/{quote(stored.key)}")
            + _el("Bucket", bucket.name)
            + _el("Key", stored.key)
            + _el("ETag", stored.etag)
        )
        return self._reply(call, body=_document("CompleteMultipartUploadResult", inner))

    def _abort_multipart_upload(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        upload = self._upload(bucket, target)
        del bucket.uploads[upload.upload_id]
        return self._reply(call, status=204)

    def _list_parts(self, call: Call, target: S3Target) -> Reply:
        bucket = self._bucket(call, str(target.bucket))
        upload = self._upload(bucket, target)
        marker = self._int_param(target.params, "part-number-marker", 0, low=0, high=MAX_PART_NUMBER)
        max_parts = self._int_param(target.params, "max-parts", MAX_KEYS, low=0, high=MAX_KEYS)
        numbers = sorted(number for number in upload.parts if number > marker)
        page, truncated = numbers[:max_parts], len(numbers) > max_parts
        entries = "".join(
            "<Part>"
            + _el("PartNumber", number)
            + _el("LastModified", iso8601(upload.parts[number].last_modified))
            + _el("ETag", upload.parts[number].etag)
            + _el("Size", len(upload.parts[number].data))
            + "</Part>"
            for number in page
        )
        inner = (
            _el("Bucket", bucket.name)
            + _el("Key", upload.key)
            + _el("UploadId", upload.upload_id)
            + "<Initiator>"
            + _el("ID", canonical_user_id(upload.account_id))
            + _el("DisplayName", upload.account_id)
            + "</Initiator>"
            + _owner(upload.account_id)
            + _el("StorageClass", "STANDARD")
            + _el("PartNumberMarker", marker)
            + _el("NextPartNumberMarker", page[-1] if page else 0)
            + _el("MaxParts", max_parts)
            + _el("IsTruncated", truncated)
            + entries
        )
        return self._reply(call, body=_document("ListPartsResult", inner))


def _bucket_operation(method: str, params: Mapping[str, str]) -> str | None:
    if method == "PUT":
        return "CreateBucket" if not params else _subresource_operation("PutBucket", params)
    if method == "GET":
        if "location" in params:
            return "GetBucketLocation"
        if "uploads" in params:
            return "ListMultipartUploads"
        if "versioning" in params:
            return "GetBucketVersioning"
        subresource = _subresource_operation("GetBucket", params)
        if subresource is not None:
            return subresource
        return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
    if method == "HEAD":
        return "HeadBucket"
    if method == "DELETE":
        return "DeleteBucket" if not params else _subresource_operation("DeleteBucket", params)
    if method == "POST" and "delete" in params:
        return "DeleteObjects"
    return None


# Bucket sub-resources the emulator does not implement: named so that the operation (for logs, metrics
# and fault rules) is still right, answered NotImplemented.
_SUBRESOURCES = {
    "acl": "Acl",
    "policy": "Policy",
    "tagging": "Tagging",
    "cors": "Cors",
    "lifecycle": "LifecycleConfiguration",
    "website": "Website",
    "encryption": "Encryption",
    "logging": "Logging",
    "notification": "NotificationConfiguration",
    "replication": "Replication",
    "versions": "Versions",
    "versioning": "Versioning",
}


def _subresource_operation(prefix: str, params: Mapping[str, str]) -> str | None:
    for name, suffix in _SUBRESOURCES.items():
        if name in params:
            if name == "versions":
                return "ListObjectVersions"
            return prefix + suffix
    return None


def _object_operation(method: str, params: Mapping[str, str], head: RequestHead) -> str | None:
    if method == "PUT":
        if "partNumber" in params and "uploadId" in params:
            return "UploadPartCopy" if head.has("x-amz-copy-source") else "UploadPart"
        if "tagging" in params:
            return "PutObjectTagging"
        if "acl" in params:
            return "PutObjectAcl"
        return "CopyObject" if head.has("x-amz-copy-source") else "PutObject"
    if method == "GET":
        if "uploadId" in params:
            return "ListParts"
        if "tagging" in params:
            return "GetObjectTagging"
        if "acl" in params:
            return "GetObjectAcl"
        return "GetObject"
    if method == "HEAD":
        return "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
    return None


def _resource_type(target: S3Target) -> str:
    if target.bucket is None:
        return "SERVICE"
    return "BUCKET" if target.key is None else "OBJECT"


def _list_keys(
    objects: Mapping[str, StoredObject], prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[StoredObject], list[str], bool, str | None]:
    """One page of a listing: objects and common prefixes in key order, both counting against max-keys.

    Returns (contents, common prefixes, truncated, the last key or prefix of the page).
    """
    contents: list[StoredObject] = []
    prefixes: list[str] = []
    last: str | None = None
    truncated = False
    for key in sorted(objects):
        if not key.startswith(prefix) or key <= after:
            continue
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common in prefixes or common <= after:
                    continue
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                prefixes.append(common)
                last = common
                continue
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        contents.append(objects[key])
        last = key
    return contents, prefixes, truncated, last


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """A single `bytes=` range as (first, last) within the object, None when not satisfiable."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first_text:
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                return None
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first >= size or last < first:
        return None
    return first, min(last, size - 1)
