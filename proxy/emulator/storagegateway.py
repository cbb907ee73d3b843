"""AWS Storage Gateway, AWS JSON 1.1 (seed 000), in memory.

Every operation of botocore's storagegateway model is answered: a useful core keeps state (gateways,
local disks, volumes, snapshots, snapshot schedules) and returns the documented operation error codes
where they really arise; the other operations check the gateway or volume they name and answer a
plausible default built from their output shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from proxy.core.model import Protocol, RequestHead
from proxy.emulator.errors import ErrorBook
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.shapes import (
    JsonValue,
    SerializationProblem,
    default_output,
    service_model,
    validate_input,
    validation_message,
)
from proxy.emulator.wire import Call, IdSource, Reply, ServiceError

SERVICE = "storagegateway"
JSON_VERSION = "1.1"
CONTENT_TYPE = "application/x-amz-json-1.1"
# botocore's model (API version 2013-06-30) sends StorageGateway_20130630.<Operation>; seed 000 documents
# the 2012-06-30 version of the API and its examples use StorageGateway_20120630. AWS accepts both.
TARGET_PREFIXES = ("StorageGateway_20130630", "StorageGateway_20120630")

GIB = 1024**3
TIB = 1024 * GIB
# AWS Storage Gateway quotas: 32 volumes per gateway, stored volumes up to 16 TiB, cached up to 32 TiB.
MAX_VOLUMES_PER_GATEWAY = 32
MAX_STORED_VOLUME_BYTES = 16 * TIB
MAX_CACHED_VOLUME_BYTES = 32 * TIB
# UpdateSnapshotSchedule: "RecurrenceInHours: Frequency of snapshots. Valid values: 1, 2, 4, 8, 12, 24".
VALID_RECURRENCES = frozenset({1, 2, 4, 8, 12, 24})
GATEWAY_TYPES = ("STORED", "CACHED", "VTL", "VTL_SNOW", "FILE_S3", "FILE_FSX_SMB")
# Activation keys are five groups of five characters read from the gateway VM, e.g.
# 29AV1-3OFV9-VVIUB-NKT0I-LRO6V.
ACTIVATION_KEY = re.compile(r"^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$")
TIMEZONE = re.compile(r"^GMT([+-](1[0-4]|[0-9]):[0-5][0-9])?$")
DISK_AVAILABLE = "AVAILABLE"

# Which gateway types support which disk roles (AWS Storage Gateway API reference: AddCache is for
# cached volume, tape and file gateways; AddUploadBuffer for volume and tape gateways; AddWorkingStorage
# "is only supported in the stored volume gateway type").
DISK_ROLES: Mapping[str, tuple[str, frozenset[str]]] = {
    "AddCache": ("CACHE STORAGE", frozenset({"CACHED", "VTL", "VTL_SNOW", "FILE_S3", "FILE_FSX_SMB"})),
    "AddUploadBuffer": ("UPLOAD BUFFER", frozenset({"STORED", "CACHED", "VTL", "VTL_SNOW"})),
    "AddWorkingStorage": ("WORKING STORAGE", frozenset({"STORED"})),
}
# The local disks an emulated gateway VM presents: sizes in GiB; one is not gigabyte-aligned and one is
# larger than a stored volume can be, so that DiskSizeNotGigAligned and DiskSizeGreaterThanVolumeMaxSize
# arise from real choices.
LOCAL_DISK_SIZES = (100 * GIB, 150 * GIB, 200 * GIB, 500 * GIB, 10 * GIB + 512 * 1024 * 1024, 20 * TIB)


@dataclass
class LocalDisk:
    disk_id: str
    path: str
    node: str
    size: int
    allocation: str = DISK_AVAILABLE
    resource: str | None = None

    def describe(self) -> dict[str, JsonValue]:
        described: dict[str, JsonValue] = {
            "DiskId": self.disk_id,
            "DiskPath": self.path,
            "DiskNode": self.node,
            "DiskStatus": "present",
            "DiskSizeInBytes": self.size,
            "DiskAllocationType": self.allocation,
            "DiskAttributeList": [],
        }
        if self.resource is not None:
            described["DiskAllocationResource"] = self.resource
        return described


@dataclass
class SnapshotSchedule:
    start_at: int
    recurrence_hours: int = 24
    description: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Snapshot:
    snapshot_id: str
    volume_arn: str
    volume_size: int
    description: str
    started: datetime
    account_id: str


@dataclass
class Volume:
    arn: str
    volume_id: str
    gateway_arn: str
    kind: str  # STORED or CACHED
    size: int
    target_name: str
    target_arn: str
    interface: str
    created: datetime
    schedule: SnapshotSchedule
    disk_id: str | None = None
    source_snapshot: str | None = None
    preserved_existing_data: bool = False
    kms_key: str | None = None
    client_token: str | None = None
    request_fingerprint: tuple[object, ...] = ()

    def info(self, gateway: Gateway) -> dict[str, JsonValue]:
        return {
            "VolumeARN": self.arn,
            "VolumeId": self.volume_id,
            "GatewayARN": gateway.arn,
            "GatewayId": gateway.gateway_id,
            "VolumeType": self.kind,
            "VolumeSizeInBytes": self.size,
            "VolumeAttachmentStatus": "ATTACHED",
        }

    def describe(self) -> dict[str, JsonValue]:
        described: dict[str, JsonValue] = {
            "VolumeARN": self.arn,
            "VolumeId": self.volume_id,
            "VolumeType": self.kind,
            "VolumeStatus": "AVAILABLE",
            "VolumeAttachmentStatus": "ATTACHED",
            "VolumeSizeInBytes": self.size,
            "VolumeiSCSIAttributes": {
                "TargetARN": self.target_arn,
                "NetworkInterfaceId": self.interface,
                "NetworkInterfacePort": 3260,
                "LunNumber": 0,
                "ChapEnabled": False,
            },
            "CreatedDate": self.created.timestamp(),
            "VolumeUsedInBytes": 0,
            "TargetName": self.target_name,
        }
        if self.source_snapshot is not None:
            described["SourceSnapshotId"] = self.source_snapshot
        if self.kms_key is not None:
            described["KMSKey"] = self.kms_key
        if self.kind == "STORED":
            described["VolumeDiskId"] = self.disk_id
            described["PreservedExistingData"] = self.preserved_existing_data
        return described


@dataclass
class Gateway:
    arn: str
    gateway_id: str
    account_id: str
    name: str
    timezone: str
    region: str
    gateway_type: str
    interface: str
    mac_address: str
    activated: datetime
    disks: dict[str, LocalDisk]
    running: bool = True
    capacity: str | None = None
    cloudwatch_log_group: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    volumes: dict[str, Volume] = field(default_factory=dict)

    def disks_allocated_to(self, allocation: str) -> list[LocalDisk]:
        return [disk for disk in self.disks.values() if disk.allocation == allocation]


class StorageGatewayService:
    """The emulated Storage Gateway endpoint of one emulator application."""

    service = SERVICE
    protocol = Protocol.JSON

    def __init__(self, errors: ErrorBook, settings: EmulatorSettings, ids: IdSource) -> None:
        self.errors = errors
        self.settings = settings
        self.ids = ids
        self.model = service_model(SERVICE)
        self.operations: frozenset[str] = frozenset(self.model.operation_names)
        self.gateways: dict[str, Gateway] = {}
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.used_activation_keys: set[str] = set()
        self._handlers: Mapping[str, Callable[[Call, dict[str, JsonValue]], dict[str, JsonValue]]] = {
            "ActivateGateway": self._activate_gateway,
            "ListGateways": self._list_gateways,
            "DescribeGatewayInformation": self._describe_gateway_information,
            "UpdateGatewayInformation": self._update_gateway_information,
            "ShutdownGateway": self._shutdown_gateway,
            "StartGateway": self._start_gateway,
            "DeleteGateway": self._delete_gateway,
            "ListLocalDisks": self._list_local_disks,
            "AddCache": self._add_disks,
            "AddUploadBuffer": self._add_disks,
            "AddWorkingStorage": self._add_disks,
            "DescribeCache": self._describe_disk_role,
            "DescribeUploadBuffer": self._describe_disk_role,
            "DescribeWorkingStorage": self._describe_disk_role,
            "CreateStorediSCSIVolume": self._create_stored_volume,
            "CreateCachediSCSIVolume": self._create_cached_volume,
            "DescribeStorediSCSIVolumes": self._describe_volumes,
            "DescribeCachediSCSIVolumes": self._describe_volumes,
            "ListVolumes": self._list_volumes,
            "DeleteVolume": self._delete_volume,
            "CreateSnapshot": self._create_snapshot,
            "DescribeSnapshotSchedule": self._describe_snapshot_schedule,
            "UpdateSnapshotSchedule": self._update_snapshot_schedule,
        }

    # -- routing -------------------------------------------------------------------------------------

    def operation_of(self, head: RequestHead) -> str | None:
        """The operation named by x-amz-target, when it is a real one."""
        target = head.get("x-amz-target")
        if target is None:
            return None
        prefix, dot, operation = target.strip().partition(".")
        if dot and prefix in TARGET_PREFIXES and operation in self.operations:
            return operation
        return None

    def _resolve_operation(self, head: RequestHead) -> str:
        """The operation, or the error AWS answers for a missing or wrong x-amz-target (seed 000's
        exception table: MissingAction, InvalidAction, UnknownOperationException)."""
        target = head.get("x-amz-target")
        if target is None or not target.strip():
            raise ServiceError(self.errors.error("MissingAction"))
        prefix, dot, operation = target.strip().partition(".")
        if not dot or prefix not in TARGET_PREFIXES:
            raise ServiceError(self.errors.error("InvalidAction"))
        if operation not in self.operations:
            raise ServiceError(self.errors.error("UnknownOperationException"))
        return operation

    # -- request handling ----------------------------------------------------------------------------

    def handle(self, call: Call) -> Reply:
        operation = self._resolve_operation(call.head)
        request = self._parse_body(call.body)
        operation_model = self.model.operation_model(operation)
        try:
            problems = validate_input(operation_model.input_shape, request)
        except SerializationProblem:
            raise ServiceError(self.errors.error("SerializationException")) from None
        if problems:
            raise ServiceError(self.errors.error("ValidationException", message=validation_message(problems)))
        handler = self._handlers.get(operation)
        if handler is not None:
            output = handler(replace(call, operation=operation), request)
        else:
            output = self._stateless(call, operation, request)
        return Reply(
            status=200,
            headers=(("Content-Type", CONTENT_TYPE), ("x-amzn-RequestId", call.request_id)),
            body=orjson.dumps(output),
        )

    def _parse_body(self, body: bytes) -> dict[str, JsonValue]:
        if not body.strip():
            return {}
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ServiceError(self.errors.error("SerializationException")) from None
        if not isinstance(parsed, dict):
            raise ServiceError(self.errors.error("SerializationException"))
        return parsed

    def _fail(self, code: str) -> ServiceError:
        """An operation error code wrapped as seed 000 documents: failures of the service or gateway in
        InternalServerError, everything else in InvalidGatewayRequestException."""
        return ServiceError(self.errors.operation_error(code))

    # -- lookups -------------------------------------------------------------------------------------

    def _gateway(self, call: Call, arn: str, *, running: bool = False) -> Gateway:
        gateway = self.gateways.get(arn)
        if gateway is None or gateway.account_id != call.account_id:
            raise self._fail("GatewayNotFound")
        if running and not gateway.running:
            raise self._fail("GatewayNotConnected")
        return gateway

    def _volume(self, call: Call, arn: str) -> tuple[Gateway, Volume]:
        volume = self.volumes.get(arn)
        if volume is None:
            raise self._fail("VolumeNotFound")
        gateway = self.gateways.get(volume.gateway_arn)
        if gateway is None or gateway.account_id != call.account_id:
            raise self._fail("VolumeNotFound")
        return gateway, volume

    # -- gateways ------------------------------------------------------------------------------------

    def _activate_gateway(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        key = str(request["ActivationKey"])
        if not ACTIVATION_KEY.match(key):
            raise self._fail("ActivationKeyInvalid")
        if key in self.used_activation_keys:
            # An activation key is good for one activation; afterwards the gateway no longer offers it.
            raise self._fail("ActivationKeyExpired")
        gateway_type = str(request.get("GatewayType") or "STORED")
        timezone = str(request["GatewayTimezone"])
        if (
            request["GatewayRegion"] != self.settings.region
            or gateway_type not in GATEWAY_TYPES
            or not TIMEZONE.match(timezone)
        ):
            raise self._fail("InvalidParameters")
        self.used_activation_keys.add(key)
        gateway_id = "sgw-" + self.ids.alnum(8)
        arn = f"arn:aws:storagegateway:{self.settings.region}:{call.account_id}:gateway/{gateway_id}"
        disks = {}
        for index, size in enumerate(LOCAL_DISK_SIZES):
            disk_id = f"pci-0000:03:00.0-scsi-0:0:{index}:0"
            disks[disk_id] = LocalDisk(
                disk_id=disk_id, path=f"/dev/sd{chr(ord('b') + index)}", node=f"SCSI ({index}:0)", size=size
            )
        self.gateways[arn] = Gateway(
            arn=arn,
            gateway_id=gateway_id,
            account_id=call.account_id,
            name=str(request["GatewayName"]),
            timezone=timezone,
            region=self.settings.region,
            gateway_type=gateway_type,
            interface=f"10.0.{self.ids.choice_int(0, 254)}.{self.ids.choice_int(1, 254)}",
            mac_address=":".join(self.ids.hex(2, upper=False) for _ in range(6)),
            activated=call.now,
            disks=disks,
            tags=list(request.get("Tags") or []),
        )
        return {"GatewayARN": arn}

    def _list_gateways(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        owned = [gateway for gateway in self.gateways.values() if gateway.account_id == call.account_id]
        page, marker = self._page(owned, request)
        output: dict[str, JsonValue] = {
            "Gateways": [
                {
                    "GatewayId": gateway.gateway_id,
                    "GatewayARN": gateway.arn,
                    "GatewayType": gateway.gateway_type,
                    "GatewayOperationalState": "ACTIVE" if gateway.running else "SHUTDOWN",
                    "GatewayName": gateway.name,
                    "HostEnvironment": "VMWARE",
                }
                for gateway in page
            ]
        }
        if marker is not None:
            output["Marker"] = marker
        return output

    def _page(self, items: list[Any], request: Mapping[str, JsonValue]) -> tuple[list[Any], str | None]:
        """Marker/Limit pagination: the marker is the position of the next item, as an opaque string."""
        marker = request.get("Marker")
        start = 0
        if marker is not None:
            if not (isinstance(marker, str) and marker.isdigit()):
                raise self._fail("InvalidParameters")
            start = int(marker)
        limit = request.get("Limit")
        end = len(items) if limit is None else start + int(limit)
        next_marker = str(end) if end < len(items) else None
        return items[start:end], next_marker

    def _describe_gateway_information(
        self, call: Call, request: dict[str, JsonValue]
    ) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        output: dict[str, JsonValue] = {
            "GatewayARN": gateway.arn,
            "GatewayId": gateway.gateway_id,
            "GatewayName": gateway.name,
            "GatewayTimezone": gateway.timezone,
            "GatewayState": "RUNNING" if gateway.running else "SHUTDOWN",
            "GatewayNetworkInterfaces": [
                {"Ipv4Address": gateway.interface, "MacAddress": gateway.mac_address}
            ],
            "GatewayType": gateway.gateway_type,
            "LastSoftwareUpdate": gateway.activated.strftime("%Y-%m-%dT%H:%M:%S"),
            "HostEnvironment": "VMWARE",
            "EndpointType": "STANDARD",
            "Tags": gateway.tags,
            "SoftwareVersion": "2.0",
        }
        if gateway.capacity is not None:
            output["GatewayCapacity"] = gateway.capacity
        if gateway.cloudwatch_log_group is not None:
            output["CloudWatchLogGroupARN"] = gateway.cloudwatch_log_group
        return output

    def _update_gateway_information(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        timezone = request.get("GatewayTimezone")
        if timezone is not None and not TIMEZONE.match(str(timezone)):
            raise self._fail("InvalidParameters")
        if request.get("GatewayName") is not None:
            gateway.name = str(request["GatewayName"])
        if timezone is not None:
            gateway.timezone = str(timezone)
        if request.get("GatewayCapacity") is not None:
            gateway.capacity = str(request["GatewayCapacity"])
        if request.get("CloudWatchLogGroupARN") is not None:
            gateway.cloudwatch_log_group = str(request["CloudWatchLogGroupARN"])
        return {"GatewayARN": gateway.arn, "GatewayName": gateway.name}

    def _shutdown_gateway(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]), running=True)
        gateway.running = False
        return {"GatewayARN": gateway.arn}

    def _start_gateway(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        gateway.running = True
        return {"GatewayARN": gateway.arn}

    def _delete_gateway(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        for volume_arn in gateway.volumes:
            self.volumes.pop(volume_arn, None)
        del self.gateways[gateway.arn]
        return {"GatewayARN": gateway.arn}

    # -- local disks ---------------------------------------------------------------------------------

    def _list_local_disks(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]), running=True)
        return {"GatewayARN": gateway.arn, "Disks": [disk.describe() for disk in gateway.disks.values()]}

    def _add_disks(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        operation = str(call.operation)
        allocation, supported_types = DISK_ROLES[operation]
        gateway = self._gateway(call, str(request["GatewayARN"]))
        if gateway.gateway_type not in supported_types:
            raise self._fail("UnsupportedOperationForGatewayType")
        if not gateway.running:
            raise self._fail("GatewayNotConnected")
        disk_ids = [str(disk_id) for disk_id in request["DiskIds"]]
        disks = []
        for disk_id in disk_ids:
            disk = gateway.disks.get(disk_id)
            if disk is None:
                raise self._fail("DiskDoesNotExist")
            if disk.allocation != DISK_AVAILABLE:
                raise self._fail("DiskAlreadyAllocated")
            disks.append(disk)
        if len(set(disk_ids)) != len(disk_ids):
            raise self._fail("DiskAlreadyAllocated")
        for disk in disks:
            disk.allocation = allocation
        return {"GatewayARN": gateway.arn}

    def _describe_disk_role(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        operation = str(call.operation)
        role_operation = {
            "DescribeCache": "AddCache",
            "DescribeUploadBuffer": "AddUploadBuffer",
            "DescribeWorkingStorage": "AddWorkingStorage",
        }[operation]
        allocation, supported_types = DISK_ROLES[role_operation]
        gateway = self._gateway(call, str(request["GatewayARN"]))
        if gateway.gateway_type not in supported_types:
            raise self._fail("UnsupportedOperationForGatewayType")
        if not gateway.running:
            raise self._fail("GatewayNotConnected")
        disks = gateway.disks_allocated_to(allocation)
        allocated = sum(disk.size for disk in disks)
        output: dict[str, JsonValue] = {
            "GatewayARN": gateway.arn,
            "DiskIds": [disk.disk_id for disk in disks],
        }
        if operation == "DescribeCache":
            output.update(
                CacheAllocatedInBytes=allocated,
                CacheUsedPercentage=0.0,
                CacheDirtyPercentage=0.0,
                CacheHitPercentage=0.0,
                CacheMissPercentage=0.0,
            )
        elif operation == "DescribeUploadBuffer":
            output.update(UploadBufferUsedInBytes=0, UploadBufferAllocatedInBytes=allocated)
        else:
            output.update(WorkingStorageUsedInBytes=0, WorkingStorageAllocatedInBytes=allocated)
        return output

    # -- volumes -------------------------------------------------------------------------------------

    def _check_new_target(self, gateway: Gateway, request: Mapping[str, JsonValue]) -> None:
        if request["NetworkInterfaceId"] != gateway.interface:
            raise self._fail("InvalidParameters")
        target_name = str(request["TargetName"])
        if any(volume.target_name == target_name for volume in gateway.volumes.values()):
            raise self._fail("TargetAlreadyExists")
        if len(gateway.volumes) >= MAX_VOLUMES_PER_GATEWAY:
            raise self._fail("MaximumVolumeCountExceeded")

    def _source_snapshot(self, call: Call, request: Mapping[str, JsonValue]) -> Snapshot | None:
        snapshot_id = request.get("SnapshotId")
        if snapshot_id is None:
            return None
        snapshot = self.snapshots.get(str(snapshot_id))
        if snapshot is None or snapshot.account_id != call.account_id:
            raise self._fail("SnapshotIdInvalid")
        return snapshot

    def _new_volume(
        self, call: Call, gateway: Gateway, kind: str, size: int, request: Mapping[str, JsonValue]
    ) -> Volume:
        volume_id = "vol-" + self.ids.hex(8)
        target_name = str(request["TargetName"])
        volume = Volume(
            arn=f"{gateway.arn}/volume/{volume_id}",
            volume_id=volume_id,
            gateway_arn=gateway.arn,
            kind=kind,
            size=size,
            target_name=target_name,
            target_arn=f"{gateway.arn}/target/iqn.1997-05.com.amazon:{target_name}",
            interface=gateway.interface,
            created=call.now,
            # AWS gives a new volume a daily snapshot schedule starting at a random hour.
            schedule=SnapshotSchedule(start_at=self.ids.choice_int(0, 23)),
            source_snapshot=_optional_str(request.get("SnapshotId")),
            kms_key=_optional_str(request.get("KMSKey")),
        )
        gateway.volumes[volume.arn] = volume
        self.volumes[volume.arn] = volume
        return volume

    def _create_stored_volume(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        if gateway.gateway_type != "STORED":
            raise self._fail("UnsupportedOperationForGatewayType")
        if not gateway.running:
            raise self._fail("GatewayNotConnected")
        disk = gateway.disks.get(str(request["DiskId"]))
        if disk is None:
            raise self._fail("DiskDoesNotExist")
        if disk.allocation != DISK_AVAILABLE:
            raise self._fail("DiskAlreadyAllocated")
        # A stored volume takes the whole disk: its size must be a whole number of GiB and at most 16 TiB.
        if disk.size % GIB:
            raise self._fail("DiskSizeNotGigAligned")
        if disk.size > MAX_STORED_VOLUME_BYTES:
            raise self._fail("DiskSizeGreaterThanVolumeMaxSize")
        snapshot = self._source_snapshot(call, request)
        if snapshot is not None and snapshot.volume_size > disk.size:
            raise self._fail("DiskSizeLessThanVolumeSize")
        self._check_new_target(gateway, request)
        volume = self._new_volume(call, gateway, "STORED", disk.size, request)
        volume.disk_id = disk.disk_id
        volume.preserved_existing_data = bool(request["PreserveExistingData"])
        disk.allocation = "STORED iSCSI VOLUME"
        disk.resource = volume.volume_id
        return {"VolumeARN": volume.arn, "VolumeSizeInBytes": volume.size, "TargetARN": volume.target_arn}

    def _create_cached_volume(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway = self._gateway(call, str(request["GatewayARN"]))
        if gateway.gateway_type != "CACHED":
            raise self._fail("UnsupportedOperationForGatewayType")
        if not gateway.running:
            raise self._fail("GatewayNotConnected")
        # ClientToken makes the call idempotent: the same token with the same parameters returns the
        # volume created the first time; the same token with other parameters names a volume that
        # already exists.
        token = str(request["ClientToken"])
        fingerprint = tuple(sorted((key, repr(value)) for key, value in request.items()))
        for volume in gateway.volumes.values():
            if volume.client_token == token:
                if volume.request_fingerprint != fingerprint:
                    raise self._fail("VolumeAlreadyExists")
                return {"VolumeARN": volume.arn, "TargetARN": volume.target_arn}
        size = int(request["VolumeSizeInBytes"])
        if not GIB <= size <= MAX_CACHED_VOLUME_BYTES:
            raise self._fail("InvalidParameters")
        self._source_snapshot(call, request)
        source_arn = request.get("SourceVolumeARN")
        if source_arn is not None:
            self._volume(call, str(source_arn))
        self._check_new_target(gateway, request)
        volume = self._new_volume(call, gateway, "CACHED", size, request)
        volume.client_token = token
        volume.request_fingerprint = fingerprint
        return {"VolumeARN": volume.arn, "TargetARN": volume.target_arn}

    def _describe_volumes(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        kind, member = (
            ("STORED", "StorediSCSIVolumes")
            if call.operation == "DescribeStorediSCSIVolumes"
            else ("CACHED", "CachediSCSIVolumes")
        )
        described = []
        for arn in request["VolumeARNs"]:
            _, volume = self._volume(call, str(arn))
            if volume.kind != kind:
                raise self._fail("UnsupportedOperationForGatewayType")
            described.append(volume.describe())
        return {member: described}

    def _list_volumes(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway_arn = request.get("GatewayARN")
        gateways = (
            [self._gateway(call, str(gateway_arn))]
            if gateway_arn is not None
            else [gateway for gateway in self.gateways.values() if gateway.account_id == call.account_id]
        )
        infos = [volume.info(gateway) for gateway in gateways for volume in gateway.volumes.values()]
        page, marker = self._page(infos, request)
        output: dict[str, JsonValue] = {"VolumeInfos": page}
        if gateway_arn is not None:
            output["GatewayARN"] = gateway_arn
        if marker is not None:
            output["Marker"] = marker
        return output

    def _snapshot_in_progress(self, volume: Volume, now: datetime) -> bool:
        duration = timedelta(seconds=self.settings.snapshot_duration_seconds)
        return any(
            snapshot.volume_arn == volume.arn and now < snapshot.started + duration
            for snapshot in self.snapshots.values()
        )

    def _delete_volume(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway, volume = self._volume(call, str(request["VolumeARN"]))
        if self._snapshot_in_progress(volume, call.now):
            raise self._fail("SnapshotInProgressException")
        del gateway.volumes[volume.arn]
        del self.volumes[volume.arn]
        if volume.disk_id is not None:
            disk = gateway.disks[volume.disk_id]
            disk.allocation, disk.resource = DISK_AVAILABLE, None
        return {"VolumeARN": volume.arn}

    def _create_snapshot(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway, volume = self._volume(call, str(request["VolumeARN"]))
        if not gateway.running:
            raise self._fail("GatewayNotConnected")
        snapshot_id = "snap-" + self.ids.hex(17, upper=False)
        self.snapshots[snapshot_id] = Snapshot(
            snapshot_id=snapshot_id,
            volume_arn=volume.arn,
            volume_size=volume.size,
            description=str(request["SnapshotDescription"]),
            started=call.now,
            account_id=call.account_id,
        )
        return {"VolumeARN": volume.arn, "SnapshotId": snapshot_id}

    def _describe_snapshot_schedule(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        gateway, volume = self._volume(call, str(request["VolumeARN"]))
        schedule = volume.schedule
        output: dict[str, JsonValue] = {
            "VolumeARN": volume.arn,
            "StartAt": schedule.start_at,
            "RecurrenceInHours": schedule.recurrence_hours,
            "Timezone": gateway.timezone,
            "Tags": schedule.tags,
        }
        if schedule.description is not None:
            output["Description"] = schedule.description
        return output

    def _update_snapshot_schedule(self, call: Call, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        _, volume = self._volume(call, str(request["VolumeARN"]))
        recurrence = int(request["RecurrenceInHours"])
        if recurrence not in VALID_RECURRENCES:
            raise self._fail("InvalidParameters")
        volume.schedule = SnapshotSchedule(
            start_at=int(request["StartAt"]),
            recurrence_hours=recurrence,
            description=_optional_str(request.get("Description")),
            tags=list(request.get("Tags") or []),
        )
        return {"VolumeARN": volume.arn}

    # -- everything else -----------------------------------------------------------------------------

    def _stateless(self, call: Call, operation: str, request: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """Operations without emulated state: the gateway or volume they name must exist; the answer is
        the output shape's plausible default."""
        if request.get("GatewayARN") is not None:
            self._gateway(call, str(request["GatewayARN"]))
        if request.get("VolumeARN") is not None:
            self._volume(call, str(request["VolumeARN"]))
        return default_output(self.model.operation_model(operation).output_shape, request)


def _optional_str(value: JsonValue) -> str | None:
    return None if value is None else str(value)
