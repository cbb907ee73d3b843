"""boto3's storagegateway client drives a full lifecycle against the emulator, and every documented
error case the emulator produces reaches the client as ClientError with its exception and its
operation error code (botocore parses Storage Gateway's two-level error into response['error'])."""

from __future__ import annotations

import asyncio
from typing import Any

from emulator_functional_support import boto_client, client_error

from tests.support.clients import list_gateways_sent_as

GIB = 1024**3
ACTIVATION_KEY = "AB1CD-EF2GH-IJ3KL-MN4OP-QR5ST"


def expect(call: Any, code: str, exception: str = "InvalidGatewayRequestException") -> dict[str, Any]:
    """`call` raises ClientError: `exception` (400) carrying operation error code `code` (None: none)."""
    response = client_error(call)
    assert response["Error"]["Code"] == exception
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if exception == "InvalidGatewayRequestException":
        assert response["error"]["errorCode"] == code
        assert response["Error"]["Message"] == response["message"]
    else:
        assert "error" not in response
    return response


def lifecycle(url: str) -> None:
    sg = boto_client("storagegateway", url)
    stored = sg.activate_gateway(
        ActivationKey=ACTIVATION_KEY,
        GatewayName="stored-gateway",
        GatewayTimezone="GMT-8:00",
        GatewayRegion="us-east-1",
        GatewayType="STORED",
    )["GatewayARN"]
    cached = sg.activate_gateway(
        ActivationKey="ZZ1ZZ-ZZ2ZZ-ZZ3ZZ-ZZ4ZZ-ZZ5ZZ",
        GatewayName="cached-gateway",
        GatewayTimezone="GMT",
        GatewayRegion="us-east-1",
        GatewayType="CACHED",
    )["GatewayARN"]
    gateways = sg.list_gateways()["Gateways"]
    assert {g["GatewayARN"]: g["GatewayType"] for g in gateways} == {stored: "STORED", cached: "CACHED"}
    info = sg.describe_gateway_information(GatewayARN=stored)
    assert info["GatewayState"] == "RUNNING" and info["GatewayTimezone"] == "GMT-8:00"
    interface = info["GatewayNetworkInterfaces"][0]["Ipv4Address"]

    # Disks: upload buffer and working storage on the stored gateway, cache on the cached one.
    stored_disks = [d["DiskId"] for d in sg.list_local_disks(GatewayARN=stored)["Disks"]]
    sg.add_upload_buffer(GatewayARN=stored, DiskIds=[stored_disks[0]])
    sg.add_working_storage(GatewayARN=stored, DiskIds=[stored_disks[3]])
    cached_disks = [d["DiskId"] for d in sg.list_local_disks(GatewayARN=cached)["Disks"]]
    sg.add_cache(GatewayARN=cached, DiskIds=[cached_disks[0]])
    sg.add_upload_buffer(GatewayARN=cached, DiskIds=[cached_disks[1]])
    allocation = {
        d["DiskId"]: d["DiskAllocationType"] for d in sg.list_local_disks(GatewayARN=cached)["Disks"]
    }
    assert allocation[cached_disks[0]] == "CACHE STORAGE" and allocation[cached_disks[1]] == "UPLOAD BUFFER"

    # Volumes: a stored one on a free disk, a cached one of 10 GiB.
    stored_volume = sg.create_stored_iscsi_volume(
        GatewayARN=stored,
        DiskId=stored_disks[1],
        PreserveExistingData=False,
        TargetName="stored-target",
        NetworkInterfaceId=interface,
    )
    cached_interface = sg.describe_gateway_information(GatewayARN=cached)["GatewayNetworkInterfaces"][0]
    cached_volume = sg.create_cached_iscsi_volume(
        GatewayARN=cached,
        VolumeSizeInBytes=10 * GIB,
        TargetName="cached-target",
        NetworkInterfaceId=cached_interface["Ipv4Address"],
        ClientToken="lifecycle-token",
    )
    described = sg.describe_stored_iscsi_volumes(VolumeARNs=[stored_volume["VolumeARN"]])[
        "StorediSCSIVolumes"
    ]
    assert described[0]["VolumeDiskId"] == stored_disks[1]
    assert described[0]["VolumeSizeInBytes"] == stored_volume["VolumeSizeInBytes"]
    described = sg.describe_cached_iscsi_volumes(VolumeARNs=[cached_volume["VolumeARN"]])[
        "CachediSCSIVolumes"
    ]
    assert described[0]["VolumeSizeInBytes"] == 10 * GIB
    assert described[0]["CreatedDate"].year >= 2024
    volumes = sg.list_volumes()["VolumeInfos"]
    assert {v["VolumeARN"] for v in volumes} == {stored_volume["VolumeARN"], cached_volume["VolumeARN"]}

    # Snapshot and schedule.
    snapshot = sg.create_snapshot(VolumeARN=stored_volume["VolumeARN"], SnapshotDescription="nightly")
    assert snapshot["SnapshotId"].startswith("snap-")
    sg.update_snapshot_schedule(VolumeARN=stored_volume["VolumeARN"], StartAt=2, RecurrenceInHours=8)
    schedule = sg.describe_snapshot_schedule(VolumeARN=stored_volume["VolumeARN"])
    assert (schedule["StartAt"], schedule["RecurrenceInHours"], schedule["Timezone"]) == (2, 8, "GMT-8:00")

    # Update, shut down, start.
    sg.update_gateway_information(GatewayARN=stored, GatewayName="renamed")
    assert sg.describe_gateway_information(GatewayARN=stored)["GatewayName"] == "renamed"
    sg.shutdown_gateway(GatewayARN=stored)
    assert sg.describe_gateway_information(GatewayARN=stored)["GatewayState"] == "SHUTDOWN"
    sg.start_gateway(GatewayARN=stored)

    # A non-core operation answers a plausible default.
    assert sg.describe_bandwidth_rate_limit(GatewayARN=stored)["GatewayARN"] == stored
    assert sg.list_file_shares(GatewayARN=cached)["FileShareInfoList"] == []

    # Delete everything.
    for volume in (stored_volume, cached_volume):
        assert sg.delete_volume(VolumeARN=volume["VolumeARN"])["VolumeARN"] == volume["VolumeARN"]
    assert sg.list_volumes()["VolumeInfos"] == []
    for gateway in (stored, cached):
        sg.delete_gateway(GatewayARN=gateway)
    assert sg.list_gateways()["Gateways"] == []


async def test_full_lifecycle(emulator: Any) -> None:
    await asyncio.to_thread(lifecycle, emulator.url)
    assert emulator.state.storagegateway.gateways == {}


def error_cases(url: str) -> None:
    sg = boto_client("storagegateway", url)
    missing_gateway = "arn:aws:storagegateway:us-east-1:123456789012:gateway/sgw-00000000"
    expect(
        lambda: sg.describe_gateway_information(GatewayARN=missing_gateway),
        "GatewayNotFound",
    )
    expect(
        lambda: sg.delete_gateway(GatewayARN=missing_gateway),
        "GatewayNotFound",
    )
    activation = {"GatewayName": "gw", "GatewayTimezone": "GMT", "GatewayRegion": "us-east-1"}
    expect(
        lambda: sg.activate_gateway(ActivationKey="not-a-key", **activation),
        "ActivationKeyInvalid",
    )
    gateway = sg.activate_gateway(ActivationKey=ACTIVATION_KEY, GatewayType="STORED", **activation)[
        "GatewayARN"
    ]
    expect(
        lambda: sg.activate_gateway(ActivationKey=ACTIVATION_KEY, **activation),
        "ActivationKeyExpired",
    )
    disks = sg.list_local_disks(GatewayARN=gateway)["Disks"]
    interface = sg.describe_gateway_information(GatewayARN=gateway)["GatewayNetworkInterfaces"][0][
        "Ipv4Address"
    ]
    sg.add_upload_buffer(GatewayARN=gateway, DiskIds=[disks[0]["DiskId"]])
    expect(
        lambda: sg.add_working_storage(GatewayARN=gateway, DiskIds=[disks[0]["DiskId"]]),
        "DiskAlreadyAllocated",
    )
    expect(
        lambda: sg.add_upload_buffer(GatewayARN=gateway, DiskIds=["pci-0000:99:00.0-scsi-0:0:9:0"]),
        "DiskDoesNotExist",
    )
    expect(
        lambda: sg.add_cache(GatewayARN=gateway, DiskIds=[disks[1]["DiskId"]]),
        "UnsupportedOperationForGatewayType",
    )

    def stored(disk: int, target: str) -> Any:
        return sg.create_stored_iscsi_volume(
            GatewayARN=gateway,
            DiskId=disks[disk]["DiskId"],
            PreserveExistingData=False,
            TargetName=target,
            NetworkInterfaceId=interface,
        )

    expect(lambda: stored(4, "odd"), "DiskSizeNotGigAligned")
    expect(lambda: stored(5, "huge"), "DiskSizeGreaterThanVolumeMaxSize")
    volume = stored(1, "first")["VolumeARN"]
    expect(lambda: stored(2, "first"), "TargetAlreadyExists")
    expect(
        lambda: sg.create_cached_iscsi_volume(
            GatewayARN=gateway,
            VolumeSizeInBytes=GIB,
            TargetName="cached",
            NetworkInterfaceId=interface,
            ClientToken="token-x",
        ),
        "UnsupportedOperationForGatewayType",
    )
    missing_volume = f"{gateway}/volume/vol-00000000"
    expect(lambda: sg.delete_volume(VolumeARN=missing_volume), "VolumeNotFound")
    expect(
        lambda: sg.describe_stored_iscsi_volumes(VolumeARNs=[missing_volume]),
        "VolumeNotFound",
    )
    expect(
        lambda: sg.create_snapshot(VolumeARN=missing_volume, SnapshotDescription="x"),
        "VolumeNotFound",
    )
    sg.create_snapshot(VolumeARN=volume, SnapshotDescription="in progress")
    expect(
        lambda: sg.delete_volume(VolumeARN=volume),
        "SnapshotInProgressException",
    )
    sg.shutdown_gateway(GatewayARN=gateway)
    expect(
        lambda: sg.list_local_disks(GatewayARN=gateway),
        "GatewayNotConnected",
    )
    # Shapes and protocol: botocore validates types client-side, so constraints it does not check
    # (pattern, enum) reach the emulator.
    validation = expect(
        lambda: sg.delete_volume(
            VolumeARN="arn:aws:storagegateway:us-east-1:123456789012:gateway/no-volume-here"
        ),
        "",
        "ValidationException",
    )
    assert validation["Error"]["Message"].startswith("1 validation error detected: Value ")
    expect(
        lambda: sg.update_gateway_information(GatewayARN=gateway, GatewayCapacity="Huge"),
        "",
        "ValidationException",
    )


async def test_documented_errors_reach_boto3(start_emulator: Any) -> None:
    emulator = await start_emulator(snapshot_duration_seconds=3600)
    await asyncio.to_thread(error_cases, emulator.url)


async def test_protocol_errors_and_headers(emulator: Any) -> None:
    """Malformed JSON, a missing or unknown target: the seed's exceptions; AWS's response headers."""
    sg = boto_client("storagegateway", emulator.url)

    def raw(target: str | None, body: bytes) -> dict[str, Any]:
        return list_gateways_sent_as(sg, target, body)

    def run() -> list[dict[str, Any]]:
        return [
            raw("StorageGateway_20130630.ListGateways", b"{not json"),
            raw(None, b"{}"),
            raw("StorageGateway_20130630.NoSuchOperation", b"{}"),
        ]

    malformed, missing, unknown = await asyncio.to_thread(run)
    assert malformed["Error"]["Code"] == "SerializationException"
    assert missing["Error"]["Code"] == "MissingAction"
    assert unknown["Error"]["Code"] == "UnknownOperationException"
    for response in (malformed, missing, unknown):
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert headers["content-type"] == "application/x-amz-json-1.1"
        assert response["ResponseMetadata"]["RequestId"] == headers["x-amzn-requestid"]
        assert headers["date"].endswith(" GMT")
