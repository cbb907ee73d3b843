"""AWS Import/Export, Query protocol (seed 004), in memory: CreateJob, ListJobs, GetStatus, CancelJob,
UpdateJob and GetShippingLabel.

Requests carry `Action` and `Version` (query string or form body); answers are
`<{Action}Response><{Action}Result>...</{Action}Result><ResponseMetadata>` documents in botocore's
importexport shapes, errors the seed's `<ErrorResponse xmlns="http://importexport.amazonaws.com/">`.
Manifests are checked the way the service documents its errors: MalformedManifestException,
MissingManifestFieldException, InvalidManifestFieldException, InvalidAccessIdException,
InvalidAddressException, MissingCustomsException, InvalidCustomsException, InvalidFileSystemException,
NoSuchBucketException and BucketPermissionException (the buckets are the emulator's S3 buckets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from proxy.core.model import Protocol, RequestHead
from proxy.emulator.errors import ErrorBook
from proxy.emulator.s3 import S3Service
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.wire import Call, IdSource, Reply, ServiceError

SERVICE = "importexport"
API_VERSION = "2010-06-01"
RESPONSE_NAMESPACE = "http://importexport.amazonaws.com/doc/2010-06-01/"
# Seed 004: errors come in <ErrorResponse xmlns="http://importexport.amazonaws.com/">.
ERROR_NAMESPACE = "http://importexport.amazonaws.com/"
OPERATIONS = ("CancelJob", "CreateJob", "GetShippingLabel", "GetStatus", "ListJobs", "UpdateJob")
JOB_TYPES = ("Import", "Export")
EXPORT_FILE_SYSTEMS = frozenset({"NTFS", "EXT2", "EXT3", "EXT4", "FAT32"})
RETURN_ADDRESS_FIELDS = ("name", "street1", "city", "postalCode", "country")
US_COUNTRIES = frozenset({"US", "USA", "United States"})
# A device reaches AWS and processing starts one day after the job is created; from then on the job can
# no longer be canceled (UnableToCancelJobIdException).
PROCESSING_AFTER = timedelta(days=1)
MAX_JOBS = 1000
_INDENT = re.compile(r"^( *)")

ManifestValue = str | dict[str, "ManifestValue"] | list["ManifestValue"]


class ManifestSyntaxError(ValueError):
    pass


def parse_manifest(text: str) -> dict[str, ManifestValue]:
    """The YAML subset Import/Export manifests are written in: `key: value` lines, nested mappings by
    indentation, `- ` list items; `#` comments."""
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        content = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not content.strip():
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ManifestSyntaxError(f"line {number}: tabs are not allowed for indentation")
        indent = len(_INDENT.match(content).group(1))  # type: ignore[union-attr]
        lines.append((number, indent, content.strip()))
    if not lines:
        raise ManifestSyntaxError("the manifest is empty")
    parsed, position = _parse_block(lines, 0, lines[0][1])
    if position != len(lines) or not isinstance(parsed, dict):
        raise ManifestSyntaxError(f"line {lines[min(position, len(lines) - 1)][0]}: unexpected indentation")
    return parsed


def _parse_block(lines: list[tuple[int, int, str]], position: int, indent: int) -> tuple[ManifestValue, int]:
    if lines[position][2].startswith("- "):
        items: list[ManifestValue] = []
        while position < len(lines) and lines[position][1] == indent and lines[position][2].startswith("- "):
            number, _, content = lines[position]
            item_text = content[2:].strip()
            item_indent = indent + 2
            rewritten = [(number, item_indent, item_text), *lines[position + 1 :]]
            if ":" in item_text:
                value, consumed = _parse_block(rewritten, 0, item_indent)
            else:
                value, consumed = item_text, 1
            items.append(value)
            position += consumed
        return items, position
    mapping: dict[str, ManifestValue] = {}
    while position < len(lines) and lines[position][1] == indent:
        number, _, content = lines[position]
        key, colon, value = content.partition(":")
        if not colon or not key.strip() or content.startswith("- "):
            raise ManifestSyntaxError(f"line {number}: expected 'key: value'")
        position += 1
        if value.strip():
            mapping[key.strip()] = value.strip().strip("'\"")
        elif position < len(lines) and lines[position][1] > indent:
            mapping[key.strip()], position = _parse_block(lines, position, lines[position][1])
        else:
            mapping[key.strip()] = ""
    if position < len(lines) and lines[position][1] > indent:
        raise ManifestSyntaxError(f"line {lines[position][0]}: unexpected indentation")
    return mapping, position


def _find(tree: ManifestValue, name: str) -> list[str]:
    """Every string value of a key `name` anywhere in the manifest."""
    found: list[str] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == name and isinstance(value, str):
                found.append(value)
            found.extend(_find(value, name))
    elif isinstance(tree, list):
        for item in tree:
            found.extend(_find(item, name))
    return found


@dataclass
class Job:
    job_id: str
    job_type: str
    account_id: str
    manifest: str
    created: datetime
    signature: str
    log_bucket: str | None
    canceled: bool = False


def _el(name: str, value: object) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else escape(str(value))
    return f"<{name}>{text}</{name}>"


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class ImportExportService:
    """The emulated Import/Export endpoint of one emulator application."""

    service = SERVICE
    protocol = Protocol.QUERY

    def __init__(self, errors: ErrorBook, settings: EmulatorSettings, ids: IdSource, s3: S3Service) -> None:
        self.errors = errors
        self.settings = settings
        self.ids = ids
        self.s3 = s3
        self.jobs: dict[str, Job] = {}
        self._handlers: Mapping[str, Callable[[Call, Mapping[str, str]], str]] = {
            "CreateJob": self._create_job,
            "UpdateJob": self._update_job,
            "ListJobs": self._list_jobs,
            "GetStatus": self._get_status,
            "CancelJob": self._cancel_job,
            "GetShippingLabel": self._get_shipping_label,
        }

    @property
    def xml_namespace(self) -> str:
        return self.errors.catalog.xml_namespace or ERROR_NAMESPACE

    @staticmethod
    def parameters(head: RequestHead, body: bytes) -> dict[str, str]:
        """Query parameters: the query string, then a form-encoded body (the body wins)."""
        params = dict(parse_qsl(head.query, keep_blank_values=True))
        content_type = (head.get("content-type") or "").lower()
        if body and (not content_type or content_type.startswith("application/x-www-form-urlencoded")):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def operation_of(self, head: RequestHead, body: bytes = b"") -> str | None:
        action = self.parameters(head, body).get("Action")
        return action if action in OPERATIONS else None

    def handle(self, call: Call) -> Reply:
        params = self.parameters(call.head, call.body)
        action = params.get("Action")
        if not action or action not in OPERATIONS:
            raise ServiceError(self.errors.error("UnknownOperationException"))
        version = params.get("Version")
        if version is None:
            raise self._missing("Version")
        if version != API_VERSION:
            raise self._invalid("Version", version)
        result = self._handlers[action](call, params)
        body = (
            f'<{action}Response xmlns="{RESPONSE_NAMESPACE}">'
            f"<{action}Result>{result}</{action}Result>"
            f"<ResponseMetadata>{_el('RequestId', call.request_id)}</ResponseMetadata>"
            f"</{action}Response>"
        ).encode()
        return Reply(
            status=200,
            headers=(("Content-Type", "text/xml"), ("x-amzn-RequestId", call.request_id)),
            body=body,
        )

    # -- errors --------------------------------------------------------------------------------------

    def _missing(self, name: str) -> ServiceError:
        return ServiceError(
            self.errors.error(
                "MissingParameterException", message=f"The request must contain the parameter {name}"
            )
        )

    def _invalid(self, name: str, value: str) -> ServiceError:
        return ServiceError(
            self.errors.error(
                "InvalidParameterException", message=f"Invalid value {value!r} for parameter {name}"
            )
        )

    def _fail(self, code: str, detail: str | None = None) -> ServiceError:
        error = self.errors.error(code)
        if detail:
            error = self.errors.error(code, message=f"{error.message} {detail}".strip())
        return ServiceError(error)

    # -- parameter helpers ---------------------------------------------------------------------------

    def _required(self, params: Mapping[str, str], name: str) -> str:
        value = params.get(name)
        if value is None or value == "":
            raise self._missing(name)
        return value

    def _job_type(self, params: Mapping[str, str]) -> str:
        job_type = self._required(params, "JobType")
        if job_type not in JOB_TYPES:
            raise self._invalid("JobType", job_type)
        return job_type

    def _validate_only(self, params: Mapping[str, str]) -> bool:
        value = self._required(params, "ValidateOnly").lower()
        if value not in ("true", "false"):
            raise self._invalid("ValidateOnly", value)
        return value == "true"

    def _job(self, call: Call, job_id: str, *, allow_canceled: bool = False) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.account_id != call.account_id:
            raise self._fail("InvalidJobIdException")
        if job.canceled and not allow_canceled:
            raise self._fail("CanceledJobIdException")
        if call.now > job.created + timedelta(days=self.settings.importexport_job_lifetime_days):
            raise self._fail("ExpiredJobIdException")
        return job

    # -- manifests -----------------------------------------------------------------------------------

    def _check_manifest(self, call: Call, job_type: str, text: str) -> dict[str, ManifestValue]:
        try:
            manifest = parse_manifest(text)
        except ManifestSyntaxError as problem:
            raise self._fail("MalformedManifestException", str(problem)) from None
        required = ["manifestVersion", "deviceId", "returnAddress"]
        required += ["bucket"] if job_type == "Import" else ["fileSystem", "exportBucket"]
        for name in required:
            if not _find(manifest, name) and name not in manifest:
                raise self._fail("MissingManifestFieldException", f"Missing field: {name}.")
        if manifest.get("manifestVersion") != "2.0":
            raise self._fail("InvalidManifestFieldException", "manifestVersion must be 2.0.")
        access_key = manifest.get("accessKeyId")
        if access_key is not None and access_key != call.access_key_id:
            raise self._fail("InvalidAccessIdException")
        self._check_address(manifest.get("returnAddress"))
        self._check_customs(manifest)
        if job_type == "Export":
            for file_system in _find(manifest, "fileSystem"):
                if file_system not in EXPORT_FILE_SYSTEMS:
                    raise self._fail("InvalidFileSystemException")
        for name in ("bucket", "exportBucket", "logBucket"):
            for bucket_name in _find(manifest, name):
                bucket = self.s3.buckets.get(bucket_name)
                if bucket is None:
                    raise self._fail("NoSuchBucketException")
                if bucket.account_id != call.account_id:
                    raise self._fail("BucketPermissionException")
        return manifest

    def _check_address(self, address: ManifestValue | None) -> None:
        if not isinstance(address, dict):
            raise self._fail("InvalidAddressException")
        for name in RETURN_ADDRESS_FIELDS:
            value = address.get(name)
            if not isinstance(value, str) or not value.strip():
                raise self._fail("InvalidAddressException")

    def _check_customs(self, manifest: Mapping[str, ManifestValue]) -> None:
        """Devices shipped from outside the United States need a customs block."""
        address = manifest.get("returnAddress")
        country = address.get("country") if isinstance(address, dict) else None
        if country in US_COUNTRIES:
            return
        customs = manifest.get("customs")
        if customs is None:
            raise self._fail("MissingCustomsException")
        if not isinstance(customs, dict) or not isinstance(customs.get("dataDescription"), str):
            raise self._fail("InvalidCustomsException")
        if customs.get("encryptedData") not in ("yes", "no"):
            raise self._fail("InvalidCustomsException")

    # -- operations ----------------------------------------------------------------------------------

    def _artifacts(self, job_id: str) -> str:
        url = f"https://importexport.s3.amazonaws.com/{job_id}/signature.pdf"
        return (
            "<ArtifactList><member>"
            + _el("Description", "Signature")
            + _el("URL", url)
            + "</member></ArtifactList>"
        )

    def _create_job(self, call: Call, params: Mapping[str, str]) -> str:
        job_type = self._job_type(params)
        manifest_text = self._required(params, "Manifest")
        validate_only = self._validate_only(params)
        manifest = self._check_manifest(call, job_type, manifest_text)
        signature = self.ids.alnum(28)
        result = _el("JobType", job_type) + _el("Signature", signature)
        if validate_only:
            return result + _el("WarningMessage", "ValidateOnly: the manifest is valid; no job was created.")
        job_id = self.ids.alnum(5)
        log_bucket = manifest.get("logBucket")
        self.jobs[job_id] = Job(
            job_id=job_id,
            job_type=job_type,
            account_id=call.account_id,
            manifest=manifest_text,
            created=call.now,
            signature=signature,
            log_bucket=log_bucket if isinstance(log_bucket, str) else None,
        )
        contents = f"version:2.0\nsignature:{signature}\nsignatureFileContents:{job_id}\n"
        return (
            _el("JobId", job_id) + result + _el("SignatureFileContents", contents) + self._artifacts(job_id)
        )

    def _update_job(self, call: Call, params: Mapping[str, str]) -> str:
        job = self._job(call, self._required(params, "JobId"))
        job_type = self._job_type(params)
        if job_type != job.job_type:
            raise self._invalid("JobType", job_type)
        manifest_text = self._required(params, "Manifest")
        validate_only = self._validate_only(params)
        self._check_manifest(call, job_type, manifest_text)
        if not validate_only:
            job.manifest = manifest_text
        return _el("Success", True) + self._artifacts(job.job_id)

    def _list_jobs(self, call: Call, params: Mapping[str, str]) -> str:
        raw_max = params.get("MaxJobs", str(MAX_JOBS))
        if not raw_max.isdigit() or not 1 <= int(raw_max) <= MAX_JOBS:
            raise self._invalid("MaxJobs", raw_max)
        marker = params.get("Marker")
        owned = sorted(
            (job for job in self.jobs.values() if job.account_id == call.account_id),
            key=lambda job: (job.created, job.job_id),
        )
        if marker:
            ids = [job.job_id for job in owned]
            if marker not in ids:
                raise self._invalid("Marker", marker)
            owned = owned[ids.index(marker) + 1 :]
        page = owned[: int(raw_max)]
        members = "".join(
            "<member>"
            + _el("JobId", job.job_id)
            + _el("CreationDate", _timestamp(job.created))
            + _el("IsCanceled", job.canceled)
            + _el("JobType", job.job_type)
            + "</member>"
            for job in page
        )
        return f"<Jobs>{members}</Jobs>" + _el("IsTruncated", len(owned) > len(page))

    def _get_status(self, call: Call, params: Mapping[str, str]) -> str:
        job = self._job(call, self._required(params, "JobId"), allow_canceled=True)
        if job.canceled:
            location, location_message = "Canceled", "The job has been canceled."
            progress, progress_message = "Canceled", "The job has been canceled."
        elif call.now >= job.created + PROCESSING_AFTER:
            location, location_message = "SEA", "The device has been received by AWS."
            progress, progress_message = "Processing", "The device is being processed."
        else:
            location, location_message = "Pending", "AWS has not received any devices for this job."
            progress, progress_message = "Pending", "The specified job has not started."
        result = (
            _el("JobId", job.job_id)
            + _el("JobType", job.job_type)
            + _el("LocationCode", location)
            + _el("LocationMessage", location_message)
            + _el("ProgressCode", progress)
            + _el("ProgressMessage", progress_message)
            + _el("ErrorCount", 0)
            + _el("Signature", job.signature)
            + _el("CurrentManifest", job.manifest)
            + _el("CreationDate", _timestamp(job.created))
            + self._artifacts(job.job_id)
        )
        if job.log_bucket is not None:
            result += _el("LogBucket", job.log_bucket) + _el("LogKey", f"{job.job_id}/log.txt")
        return result

    def _cancel_job(self, call: Call, params: Mapping[str, str]) -> str:
        job = self._job(call, self._required(params, "JobId"))
        if call.now >= job.created + PROCESSING_AFTER:
            raise self._fail("UnableToCancelJobIdException")
        job.canceled = True
        return _el("Success", True)

    def _get_shipping_label(self, call: Call, params: Mapping[str, str]) -> str:
        # Query lists arrive as jobIds.member.1, jobIds.member.2, ... (numbered from 1).
        members = {
            int(name.rpartition(".")[2]): value
            for name, value in params.items()
            if name.startswith("jobIds.member.") and name.rpartition(".")[2].isdigit()
        }
        job_ids = [members[index] for index in sorted(members)]
        if not job_ids:
            raise self._missing("jobIds")
        for job_id in job_ids:
            self._job(call, job_id)
        url = f"https://importexport.s3.amazonaws.com/{job_ids[0]}/shipping-label.pdf"
        return _el("ShippingLabelURL", url)
