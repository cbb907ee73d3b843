"""The emulated Import/Export service, called directly: manifests, the job lifecycle and seed 004's
errors where they arise."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from defusedxml import ElementTree
from emulator_unit_support import NOW, CallFactory

from proxy.core.model import AwsError
from proxy.emulator.errors import ErrorBook
from proxy.emulator.importexport import ImportExportService, ManifestSyntaxError, parse_manifest
from proxy.emulator.s3 import Bucket, S3Service
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.wire import IdSource, ServiceError

NS = "{http://importexport.amazonaws.com/doc/2010-06-01/}"
MANIFEST = """\
manifestVersion: 2.0
generator: text editor
bucket: import-bucket
deviceId: ABCDE
eraseDevice: yes
accessKeyId: AKIAIOSFODNN7EXAMPLE
returnAddress:
    name: Amazon.com ATTN Joe Random
    street1: 1200 12th Ave S.
    city: Seattle
    stateOrProvince: WA
    postalCode: 98114
    phoneNumber: 206-266-0000
    country: USA
"""


class Client:
    def __init__(self, service: ImportExportService, make_call: CallFactory) -> None:
        self.service = service
        self.make_call = make_call
        self.now: datetime = NOW

    def __call__(self, action: str, account_id: str = "123456789012", **params: str) -> ElementTree.Element:
        body = urlencode({"Action": action, "Version": "2010-06-01", **params}).encode()
        return self.raw(body, account_id)

    def raw(self, body: bytes, account_id: str = "123456789012") -> ElementTree.Element:
        headers = [
            ("Host", "importexport.amazonaws.com"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]
        call = self.make_call("POST", "/", headers, body, now=self.now, account_id=account_id)
        reply = self.service.handle(replace(call, operation=self.service.operation_of(call.head, body)))
        assert reply.status == 200
        return ElementTree.fromstring(reply.body)

    def error(self, action: str, **params: str) -> AwsError:
        with pytest.raises(ServiceError) as raised:
            self(action, **params)
        return raised.value.error


@pytest.fixture
def ie(books: dict[str, ErrorBook], make_call: CallFactory) -> Client:
    settings = EmulatorSettings()
    s3 = S3Service(books["s3"], settings, IdSource(3))
    s3.buckets["import-bucket"] = Bucket("import-bucket", "123456789012", "us-east-1", NOW)
    s3.buckets["someone-elses"] = Bucket("someone-elses", "999999999999", "us-east-1", NOW)
    return Client(ImportExportService(books["importexport"], settings, IdSource(3), s3), make_call)


def text(element: ElementTree.Element, name: str) -> str | None:
    found = element.find(f".//{NS}{name}")
    return None if found is None else found.text


def test_manifest_parser() -> None:
    parsed = parse_manifest(
        MANIFEST + "operations:\n  - exportBucket: b\n    prefix: x\n  - exportBucket: c\n"
    )
    assert parsed["bucket"] == "import-bucket"
    assert parsed["returnAddress"]["city"] == "Seattle"  # type: ignore[index]
    assert parsed["operations"] == [{"exportBucket": "b", "prefix": "x"}, {"exportBucket": "c"}]
    for broken in ("", "just words", "a: 1\n   b: 2\n c: 3", "a: 1\n\tb: 2"):
        with pytest.raises(ManifestSyntaxError):
            parse_manifest(broken)


def test_job_lifecycle(ie: Client) -> None:
    created = ie("CreateJob", JobType="Import", Manifest=MANIFEST, ValidateOnly="false")
    assert created.tag == f"{NS}CreateJobResponse"
    job_id = text(created, "JobId")
    assert job_id and text(created, "JobType") == "Import" and text(created, "Signature")
    assert text(created, "RequestId") == "REQUEST-ID"
    validated = ie("CreateJob", JobType="Import", Manifest=MANIFEST, ValidateOnly="true")
    assert text(validated, "JobId") is None
    jobs = ie("ListJobs")
    assert [e.text for e in jobs.iter(f"{NS}JobId")] == [job_id]
    assert text(jobs, "IsTruncated") == "false"
    status = ie("GetStatus", JobId=job_id)
    assert (text(status, "ProgressCode"), text(status, "CurrentManifest")) == ("Pending", MANIFEST)
    assert (
        text(
            ie("UpdateJob", JobId=job_id, JobType="Import", Manifest=MANIFEST, ValidateOnly="false"),
            "Success",
        )
        == "true"
    )
    assert text(ie("GetShippingLabel", **{"jobIds.member.1": job_id}), "ShippingLabelURL")
    assert text(ie("CancelJob", JobId=job_id), "Success") == "true"
    assert ie.error("CancelJob", JobId=job_id).code == "CanceledJobIdException"
    assert text(ie("GetStatus", JobId=job_id), "ProgressCode") == "Canceled"
    assert (
        ie.error("UpdateJob", JobId=job_id, JobType="Import", Manifest=MANIFEST, ValidateOnly="false").code
        == "CanceledJobIdException"
    )
    assert ie("ListJobs", account_id="210987654321").find(f".//{NS}member") is None


def test_time_makes_jobs_uncancelable_then_expired(ie: Client) -> None:
    job_id = text(ie("CreateJob", JobType="Import", Manifest=MANIFEST, ValidateOnly="false"), "JobId") or ""
    ie.now = NOW + timedelta(days=2)
    assert text(ie("GetStatus", JobId=job_id), "ProgressCode") == "Processing"
    cancel = ie.error("CancelJob", JobId=job_id)
    assert (cancel.code, cancel.status) == ("UnableToCancelJobIdException", 409)
    ie.now = NOW + timedelta(days=31)
    assert ie.error("GetStatus", JobId=job_id).code == "ExpiredJobIdException"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda m: m.replace("bucket: import-bucket", "bucket: absent-bucket"), "NoSuchBucketException"),
        (lambda m: m.replace("bucket: import-bucket", "bucket: someone-elses"), "BucketPermissionException"),
        (lambda m: m.replace("deviceId: ABCDE\n", ""), "MissingManifestFieldException"),
        (
            lambda m: m.replace("manifestVersion: 2.0", "manifestVersion: 1.0"),
            "InvalidManifestFieldException",
        ),
        (lambda m: m.replace("AKIAIOSFODNN7EXAMPLE", "AKIAOTHERKEY0000000"), "InvalidAccessIdException"),
        (lambda m: m.replace("    city: Seattle\n", ""), "InvalidAddressException"),
        (lambda m: m.replace("country: USA", "country: France"), "MissingCustomsException"),
        (
            lambda m: (
                m.replace("country: USA", "country: France") + "customs:\n    dataDescription: photos\n"
            ),
            "InvalidCustomsException",
        ),
        (lambda m: m.replace("returnAddress:", "returnAddress"), "MalformedManifestException"),
    ],
)
def test_manifest_errors(ie: Client, change: object, code: str) -> None:
    manifest = change(MANIFEST)  # type: ignore[operator]
    error = ie.error("CreateJob", JobType="Import", Manifest=manifest, ValidateOnly="false")
    assert error.code == code
    assert error.status == 400


def test_export_file_system_and_parameters(ie: Client) -> None:
    export = MANIFEST.replace("bucket: import-bucket", "fileSystem: ZFS\nexportBucket: import-bucket")
    assert (
        ie.error("CreateJob", JobType="Export", Manifest=export, ValidateOnly="false").code
        == "InvalidFileSystemException"
    )
    fixed = export.replace("ZFS", "NTFS")
    assert (
        text(ie("CreateJob", JobType="Export", Manifest=fixed, ValidateOnly="false"), "JobType") == "Export"
    )
    assert ie.error("CreateJob", JobType="Import", ValidateOnly="false").code == "MissingParameterException"
    assert (
        ie.error("CreateJob", JobType="Boat", Manifest=MANIFEST, ValidateOnly="false").code
        == "InvalidParameterException"
    )
    assert ie.error("GetStatus", JobId="NOPE1").code == "InvalidJobIdException"
    assert ie.error("ListJobs", MaxJobs="0").code == "InvalidParameterException"
    unknown = ie.error("DescribeJob")
    assert (unknown.code, unknown.status) == ("UnknownOperationException", 403)
    with pytest.raises(ServiceError) as raised:
        ie.raw(b"Action=ListJobs&Version=2009-01-01")
    assert raised.value.error.code == "InvalidParameterException"
    with pytest.raises(ServiceError) as raised:
        ie.raw(b"Action=ListJobs")
    assert raised.value.error.code == "MissingParameterException"
