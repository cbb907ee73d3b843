"""The emulated Storage Gateway service, called directly: operation routing, shape validation, every
operation of the model answered, and the documented operation error codes where they arise."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from emulator_unit_support import NOW, CallFactory

from proxy.core.model import AwsError
from proxy.emulator.errors import ErrorBook
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.shapes import service_model
from proxy.emulator.storagegateway import StorageGatewayService
from proxy.emulator.wire import IdSource, ServiceError

KEY = "29AV1-3OFV9-VVIUB-NKT0I-LRO6V"
HOST = "storagegateway.us-east-1.amazonaws.com"
UNSUPPORTED = "UnsupportedOperationForGatewayType"


class Client:
    """Calls the service the way the dispatcher does and returns the JSON output or raises the error."""

    def __init__(self, service: StorageGatewayService, make_call: CallFactory) -> None:
        self.service = service
        self.make_call = make_call
        self.now = NOW

    def raw(self, target: str | None, body: bytes, account_id: str = "123456789012") -> dict[str, Any]:
        headers = [
            ("Host", "storagegateway.us-east-1.amazonaws.com"),
            ("Content-Type", "application/x-amz-json-1.1"),
        ]
        if target is not None:
            headers.append(("X-Amz-Target", target))
        call = self.make_call("POST", "/", headers, body, now=self.now, account_id=account_id)
        reply = self.service.handle(replace(call, operation=self.service.operation_of(call.head)))
        assert reply.status == 200
        assert ("Content-Type", "application/x-amz-json-1.1") in reply.headers
        return orjson.loads(reply.body)  # type: ignore[no-any-return]

    def __call__(self, operation: str, account_id: str = "123456789012", **request: Any) -> dict[str, Any]:
        return self.raw(f"StorageGateway_20130630.{operation}", orjson.dumps(request), account_id)

    def error(self, operation: str, **request: Any) -> AwsError:
        with pytest.raises(ServiceError) as raised:
            self(operation, **request)
        return raised.value.error

    def expect(self, code: str, operation: str, **request: Any) -> None:
        """`operation` fails with operation error code `code` in InvalidGatewayRequestException."""
        assert_operation_error(self.error(operation, **request), code)


@pytest.fixture
def sg(books: dict[str, ErrorBook], make_call: CallFactory) -> Client:
    settings = EmulatorSettings(snapshot_duration_seconds=60)
    return Client(StorageGatewayService(books["storagegateway"], settings, IdSource(1)), make_call)


def activate(sg: Client, gateway_type: str = "STORED", key: str = KEY) -> str:
    return sg(
        "ActivateGateway",
        ActivationKey=key,
        GatewayName="gateway-one",
        GatewayTimezone="GMT-5:00",
        GatewayRegion="us-east-1",
        GatewayType=gateway_type,
    )["GatewayARN"]


def disks(sg: Client, arn: str) -> list[dict[str, Any]]:
    return sg("ListLocalDisks", GatewayARN=arn)["Disks"]


def interface(sg: Client, arn: str) -> str:
    return sg("DescribeGatewayInformation", GatewayARN=arn)["GatewayNetworkInterfaces"][0]["Ipv4Address"]


def stored_volume(sg: Client, arn: str, disk_index: int = 1, target: str = "target-one") -> dict[str, Any]:
    return sg(
        "CreateStorediSCSIVolume",
        GatewayARN=arn,
        DiskId=disks(sg, arn)[disk_index]["DiskId"],
        PreserveExistingData=False,
        TargetName=target,
        NetworkInterfaceId=interface(sg, arn),
    )


def assert_operation_error(
    error: AwsError, code: str, exception: str = "InvalidGatewayRequestException"
) -> None:
    assert (error.code, error.operation_error) == (exception, code)


def test_target_errors_follow_the_exception_table(sg: Client) -> None:
    for target, code in (
        (None, "MissingAction"),
        ("ListGateways", "InvalidAction"),
        ("DynamoDB_20120810.ListTables", "InvalidAction"),
        ("StorageGateway_20130630.ListBuckets", "UnknownOperationException"),
    ):
        with pytest.raises(ServiceError) as raised:
            sg.raw(target, b"{}")
        assert raised.value.error.code == code
        assert raised.value.error.status == 400
    # Seed 000 documents the 2012-06-30 API version: its target prefix is accepted too.
    assert sg.raw("StorageGateway_20120630.ListGateways", b"{}") == {"Gateways": []}


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"text"', b'{"GatewayARN": 12}', b'{"DiskIds": "x"}'])
def test_malformed_json_and_wrong_types_are_serialization_errors(sg: Client, body: bytes) -> None:
    for operation in ("DescribeGatewayInformation", "AddCache"):
        with pytest.raises(ServiceError) as raised:
            sg.raw(f"StorageGateway_20130630.{operation}", body)
        if raised.value.error.code == "ValidationException":
            continue  # a body that deserializes but misses required members
        assert raised.value.error.code == "SerializationException"


def test_constraints_give_validation_exception_in_aws_wording(sg: Client) -> None:
    error = sg.error("ActivateGateway", ActivationKey="", GatewayName="x", GatewayTimezone="GMT")
    assert error.code == "ValidationException"
    problems = error.message.removeprefix("3 validation errors detected: ").split("; ")
    assert problems == [
        "Value null at 'gatewayRegion' failed to satisfy constraint: Member must not be null",
        "Value '' at 'activationKey' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        "Value 'x' at 'gatewayName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 2",
    ]
    error = sg.error("UpdateGatewayInformation", GatewayARN="a" * 60, GatewayCapacity="Huge")
    assert error.message.endswith("Member must satisfy enum value set: [Small, Medium, Large]")
    error = sg.error("DeleteVolume", VolumeARN="arn:aws:storagegateway:us-east-1:123456789012:no-gateway")
    assert (
        "at 'volumeARN' failed to satisfy constraint: Member must satisfy regular expression" in error.message
    )
    error = sg.error("ListGateways", Limit=0)
    assert error.message == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    error = sg.error("AddCache", GatewayARN="a" * 60, DiskIds=[""])
    assert "Value '' at 'diskIds.1.member'" in error.message


def test_every_operation_of_the_model_is_answered(sg: Client) -> None:
    """Each operation answers either its output or an AWS error; with a real gateway, the operations that
    take only a GatewayARN succeed."""
    arn = activate(sg, "CACHED")
    model = service_model("storagegateway")
    answered = 0
    for operation in model.operation_names:
        shape = model.operation_model(operation).input_shape
        required = set(shape.required_members) if shape is not None else set()
        try:
            output = sg(operation, **({"GatewayARN": arn} if "GatewayARN" in shape.members else {}))
        except ServiceError as failure:
            assert failure.error.code in ("ValidationException", "InvalidGatewayRequestException"), operation
            assert required - {"GatewayARN"} or failure.error.code == "InvalidGatewayRequestException", (
                operation
            )
        else:
            assert isinstance(output, dict)
            if (
                operation != "ActivateGateway"
                and "GatewayARN" in model.operation_model(operation).output_shape.members
            ):
                assert output.get("GatewayARN") == arn, operation
        answered += 1
    assert answered == len(model.operation_names) >= 90


def test_gateway_lifecycle_and_not_found(sg: Client) -> None:
    arn = activate(sg)
    listed = sg("ListGateways")["Gateways"]
    assert [gateway["GatewayARN"] for gateway in listed] == [arn]
    assert sg("DescribeGatewayInformation", GatewayARN=arn)["GatewayState"] == "RUNNING"
    sg("UpdateGatewayInformation", GatewayARN=arn, GatewayName="renamed", GatewayTimezone="GMT+1:00")
    info = sg("DescribeGatewayInformation", GatewayARN=arn)
    assert (info["GatewayName"], info["GatewayTimezone"]) == ("renamed", "GMT+1:00")
    sg("ShutdownGateway", GatewayARN=arn)
    assert sg("DescribeGatewayInformation", GatewayARN=arn)["GatewayState"] == "SHUTDOWN"
    sg.expect("GatewayNotConnected", "ListLocalDisks", GatewayARN=arn)
    sg.expect("GatewayNotConnected", "ShutdownGateway", GatewayARN=arn)
    sg("StartGateway", GatewayARN=arn)
    assert disks(sg, arn)
    # Another account does not see the gateway.
    assert sg("ListGateways", account_id="210987654321") == {"Gateways": []}
    sg("DeleteGateway", GatewayARN=arn)
    for operation in ("DescribeGatewayInformation", "DeleteGateway", "ListLocalDisks", "ListVolumes"):
        sg.expect("GatewayNotFound", operation, GatewayARN=arn)
    sg.expect("GatewayNotFound", "DescribeBandwidthRateLimit", GatewayARN=arn)


def test_activation_errors(sg: Client) -> None:
    def attempt(**changes: str) -> AwsError:
        request = {
            "ActivationKey": KEY,
            "GatewayName": "gw",
            "GatewayTimezone": "GMT",
            "GatewayRegion": "us-east-1",
        } | changes
        return sg.error("ActivateGateway", **request)

    assert_operation_error(attempt(ActivationKey="not-a-key"), "ActivationKeyInvalid")
    assert_operation_error(attempt(GatewayRegion="eu-west-1"), "InvalidParameters")
    assert_operation_error(attempt(GatewayType="TAPE"), "InvalidParameters")
    assert_operation_error(attempt(GatewayTimezone="CEST"), "InvalidParameters")
    activate(sg)
    assert_operation_error(attempt(), "ActivationKeyExpired")


def test_disk_allocation_errors(sg: Client) -> None:
    stored = activate(sg, "STORED")
    cached = activate(sg, "CACHED", key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    stored_disks = [disk["DiskId"] for disk in disks(sg, stored)]
    sg("AddUploadBuffer", GatewayARN=stored, DiskIds=[stored_disks[0]])
    sg("AddWorkingStorage", GatewayARN=stored, DiskIds=[stored_disks[2]])
    allocations = {disk["DiskId"]: disk["DiskAllocationType"] for disk in disks(sg, stored)}
    assert allocations[stored_disks[0]] == "UPLOAD BUFFER"
    assert allocations[stored_disks[2]] == "WORKING STORAGE"
    assert sg("DescribeUploadBuffer", GatewayARN=stored)["DiskIds"] == [stored_disks[0]]
    sg.expect("DiskAlreadyAllocated", "AddUploadBuffer", GatewayARN=stored, DiskIds=[stored_disks[0]])
    sg.expect("DiskDoesNotExist", "AddUploadBuffer", GatewayARN=stored, DiskIds=["pci-nope"])
    sg.expect(UNSUPPORTED, "AddCache", GatewayARN=stored, DiskIds=[stored_disks[1]])
    cached_disks = [disk["DiskId"] for disk in disks(sg, cached)]
    sg.expect(UNSUPPORTED, "AddWorkingStorage", GatewayARN=cached, DiskIds=[cached_disks[0]])
    sg("AddCache", GatewayARN=cached, DiskIds=[cached_disks[0]])
    cache = sg("DescribeCache", GatewayARN=cached)
    assert cache["DiskIds"] == [cached_disks[0]]
    assert cache["CacheAllocatedInBytes"] == disks(sg, cached)[0]["DiskSizeInBytes"]


def test_stored_volume_errors(sg: Client) -> None:
    arn = activate(sg)
    local = disks(sg, arn)
    ip = interface(sg, arn)

    def create(disk: int, target: str = "t", **changes: Any) -> dict[str, Any]:
        request = {
            "GatewayARN": arn,
            "DiskId": local[disk]["DiskId"],
            "PreserveExistingData": True,
            "TargetName": target,
            "NetworkInterfaceId": ip,
        } | changes
        return sg("CreateStorediSCSIVolume", **request)

    def failing(disk: int, target: str = "t", **changes: Any) -> AwsError:
        with pytest.raises(ServiceError) as raised:
            create(disk, target, **changes)
        return raised.value.error

    # The emulated VM has a disk that is not GiB-aligned and one larger than a stored volume (16 TiB).
    assert_operation_error(failing(4), "DiskSizeNotGigAligned")
    assert_operation_error(failing(5), "DiskSizeGreaterThanVolumeMaxSize")
    assert_operation_error(failing(0, DiskId="pci-absent"), "DiskDoesNotExist")
    assert_operation_error(failing(0, NetworkInterfaceId="192.0.2.1"), "InvalidParameters")
    assert_operation_error(failing(0, SnapshotId="snap-0123456789abcdef0"), "SnapshotIdInvalid")
    volume = create(2, target="vol-a")
    assert volume["VolumeSizeInBytes"] == local[2]["DiskSizeInBytes"]
    assert_operation_error(failing(2, target="vol-b"), "DiskAlreadyAllocated")
    assert_operation_error(failing(0, target="vol-a"), "TargetAlreadyExists")
    # A snapshot of the 200 GiB volume does not fit on the 100 GiB disk.
    snapshot = sg("CreateSnapshot", VolumeARN=volume["VolumeARN"], SnapshotDescription="s")["SnapshotId"]
    assert_operation_error(failing(0, target="vol-c", SnapshotId=snapshot), "DiskSizeLessThanVolumeSize")
    described = sg("DescribeStorediSCSIVolumes", VolumeARNs=[volume["VolumeARN"]])["StorediSCSIVolumes"][0]
    assert described["VolumeDiskId"] == local[2]["DiskId"]
    assert described["PreservedExistingData"] is True
    assert described["VolumeiSCSIAttributes"]["TargetARN"] == volume["TargetARN"]
    sg.expect(UNSUPPORTED, "DescribeCachediSCSIVolumes", VolumeARNs=[volume["VolumeARN"]])
    missing = volume["VolumeARN"].replace(volume["VolumeARN"].rsplit("-", 1)[1], "00000000")
    sg.expect("VolumeNotFound", "DescribeStorediSCSIVolumes", VolumeARNs=[missing])


def test_cached_volumes_idempotency_and_limits(sg: Client) -> None:
    arn = activate(sg, "CACHED")
    ip = interface(sg, arn)
    request = {
        "GatewayARN": arn,
        "VolumeSizeInBytes": 10 * 1024**3,
        "TargetName": "cached-1",
        "NetworkInterfaceId": ip,
        "ClientToken": "token-1",
    }
    first = sg("CreateCachediSCSIVolume", **request)
    assert sg("CreateCachediSCSIVolume", **request) == first  # same token, same parameters: same volume
    sg.expect(
        "VolumeAlreadyExists", "CreateCachediSCSIVolume", **(request | {"VolumeSizeInBytes": 2 * 1024**3})
    )
    sg.expect(
        "InvalidParameters",
        "CreateCachediSCSIVolume",
        **(request | {"ClientToken": "token-2", "VolumeSizeInBytes": 1}),
    )
    sg.expect("TargetAlreadyExists", "CreateCachediSCSIVolume", **(request | {"ClientToken": "token-2"}))
    for index in range(2, 33):
        sg(
            "CreateCachediSCSIVolume",
            **(request | {"ClientToken": f"token-{index}", "TargetName": f"cached-{index}"}),
        )
    sg.expect(
        "MaximumVolumeCountExceeded",
        "CreateCachediSCSIVolume",
        **(request | {"ClientToken": "token-33", "TargetName": "cached-33"}),
    )
    infos = sg("ListVolumes", GatewayARN=arn, Limit=20)
    assert len(infos["VolumeInfos"]) == 20
    rest = sg("ListVolumes", GatewayARN=arn, Marker=infos["Marker"])
    assert len(rest["VolumeInfos"]) == 12 and "Marker" not in rest
    stored_gateway = activate(sg, "STORED", key="AAAAA-BBBBB-CCCCC-DDDDD-EEEEE")
    sg.expect(UNSUPPORTED, "CreateCachediSCSIVolume", **(request | {"GatewayARN": stored_gateway}))


def test_snapshots_schedules_and_delete(sg: Client) -> None:
    arn = activate(sg)
    volume = stored_volume(sg, arn)["VolumeARN"]
    schedule = sg("DescribeSnapshotSchedule", VolumeARN=volume)
    assert schedule["RecurrenceInHours"] == 24 and 0 <= schedule["StartAt"] <= 23
    assert schedule["Timezone"] == "GMT-5:00"
    sg("UpdateSnapshotSchedule", VolumeARN=volume, StartAt=3, RecurrenceInHours=12, Description="twice a day")
    schedule = sg("DescribeSnapshotSchedule", VolumeARN=volume)
    assert (schedule["StartAt"], schedule["RecurrenceInHours"], schedule["Description"]) == (
        3,
        12,
        "twice a day",
    )
    sg.expect("InvalidParameters", "UpdateSnapshotSchedule", VolumeARN=volume, StartAt=3, RecurrenceInHours=5)
    snapshot = sg("CreateSnapshot", VolumeARN=volume, SnapshotDescription="before delete")
    assert snapshot["SnapshotId"].startswith("snap-") and len(snapshot["SnapshotId"]) == 22
    # The snapshot takes 60 s (settings): deleting the volume meanwhile is refused.
    sg.expect("SnapshotInProgressException", "DeleteVolume", VolumeARN=volume)
    sg.now = NOW + timedelta(seconds=61)
    assert sg("DeleteVolume", VolumeARN=volume) == {"VolumeARN": volume}
    sg.expect("VolumeNotFound", "DeleteVolume", VolumeARN=volume)
    sg.expect("VolumeNotFound", "CreateSnapshot", VolumeARN=volume, SnapshotDescription="x")
    sg.expect("VolumeNotFound", "DescribeSnapshotSchedule", VolumeARN=volume)
    # The disk is free again.
    assert disks(sg, arn)[1]["DiskAllocationType"] == "AVAILABLE"
