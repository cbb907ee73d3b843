"""Issue 5, end to end: boto3's storagegateway client (and the AWS CLI) drive a full lifecycle THROUGH
sigwatch (enforce mode) against the emulator; each documented error case raises ClientError with its
exception and operation error code, and sigwatch classifies it the same way.

The emulator here is this module's own (snapshots stay in progress for an hour, so that DeleteVolume
meets SnapshotInProgressException), so the lifecycle can assert on the whole state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from e2e_proxy_support import (
    EXAMPLE_CREDENTIALS,
    Counted,
    LoopThread,
    RunningEmulator,
    RunningSigwatch,
    assert_classified,
    aws,
    boto,
    client_error,
    request_lines,
    start_emulator,
    start_sigwatch,
)

from proxy.emulator import SERVICES_KEY, EmulatorSettings
from tests.support.clients import list_gateways_sent_as

pytestmark = pytest.mark.e2e

GIB = 1024**3
MISSING_GATEWAY = "arn:aws:storagegateway:us-east-1:123456789012:gateway/sgw-00000000"


@pytest.fixture(scope="module")
def gateway_endpoint(servers: LoopThread) -> Iterator[tuple[RunningEmulator, RunningSigwatch]]:
    settings = EmulatorSettings(credentials=EXAMPLE_CREDENTIALS, seed=3, snapshot_duration_seconds=3600)
    emulator = servers.run(start_emulator(settings))
    proxy = servers.run(start_sigwatch(emulator.url, "enforce"))
    yield emulator, proxy
    servers.run(proxy.server.stop(grace=1.0))
    servers.run(emulator.runner.cleanup())


class Expect:
    """Error expectations checked on both sides: botocore's ClientError and sigwatch's classification."""

    def __init__(self, logs: Any) -> None:
        self.logs = logs

    def __call__(
        self, call: Callable[[], Any], code: str, exception: str = "InvalidGatewayRequestException"
    ) -> dict[str, Any]:
        response = client_error(call)
        assert response["Error"]["Code"] == exception
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
        if code:
            assert response["error"]["errorCode"] == code
        else:
            assert "error" not in response
        line = assert_classified(self.logs, response)
        assert line["error"]["documented"] is True
        return response


def test_lifecycle_through_sigwatch(
    gateway_endpoint: tuple[RunningEmulator, RunningSigwatch], logs: Any
) -> None:
    emulator, proxy = gateway_endpoint
    clients = Counted()
    sg = clients.client("storagegateway", proxy.url)
    stored = sg.activate_gateway(
        ActivationKey="AB1CD-EF2GH-IJ3KL-MN4OP-QR5ST",
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
    assert {g["GatewayARN"]: g["GatewayType"] for g in sg.list_gateways()["Gateways"]} == {
        stored: "STORED",
        cached: "CACHED",
    }
    info = sg.describe_gateway_information(GatewayARN=stored)
    assert (info["GatewayState"], info["GatewayTimezone"]) == ("RUNNING", "GMT-8:00")
    interface = info["GatewayNetworkInterfaces"][0]["Ipv4Address"]

    # Disks.
    stored_disks = [d["DiskId"] for d in sg.list_local_disks(GatewayARN=stored)["Disks"]]
    sg.add_upload_buffer(GatewayARN=stored, DiskIds=[stored_disks[0]])
    sg.add_working_storage(GatewayARN=stored, DiskIds=[stored_disks[3]])
    cached_disks = [d["DiskId"] for d in sg.list_local_disks(GatewayARN=cached)["Disks"]]
    sg.add_cache(GatewayARN=cached, DiskIds=[cached_disks[0]])
    sg.add_upload_buffer(GatewayARN=cached, DiskIds=[cached_disks[1]])
    allocation = {
        d["DiskId"]: d["DiskAllocationType"] for d in sg.list_local_disks(GatewayARN=cached)["Disks"]
    }
    assert (allocation[cached_disks[0]], allocation[cached_disks[1]]) == ("CACHE STORAGE", "UPLOAD BUFFER")

    # Volumes.
    stored_volume = sg.create_stored_iscsi_volume(
        GatewayARN=stored,
        DiskId=stored_disks[1],
        PreserveExistingData=False,
        TargetName="stored-target",
        NetworkInterfaceId=interface,
    )["VolumeARN"]
    cached_interface = sg.describe_gateway_information(GatewayARN=cached)["GatewayNetworkInterfaces"][0]
    cached_volume = sg.create_cached_iscsi_volume(
        GatewayARN=cached,
        VolumeSizeInBytes=10 * GIB,
        TargetName="cached-target",
        NetworkInterfaceId=cached_interface["Ipv4Address"],
        ClientToken="lifecycle-token",
    )["VolumeARN"]
    described = sg.describe_stored_iscsi_volumes(VolumeARNs=[stored_volume])["StorediSCSIVolumes"]
    assert described[0]["VolumeDiskId"] == stored_disks[1]
    described = sg.describe_cached_iscsi_volumes(VolumeARNs=[cached_volume])["CachediSCSIVolumes"]
    assert described[0]["VolumeSizeInBytes"] == 10 * GIB
    assert {v["VolumeARN"] for v in sg.list_volumes()["VolumeInfos"]} == {stored_volume, cached_volume}

    # Snapshot schedule (no snapshot yet: those stay in progress for an hour here).
    sg.update_snapshot_schedule(VolumeARN=stored_volume, StartAt=2, RecurrenceInHours=8)
    schedule = sg.describe_snapshot_schedule(VolumeARN=stored_volume)
    assert (schedule["StartAt"], schedule["RecurrenceInHours"]) == (2, 8)

    # Update, shut down, start.
    sg.update_gateway_information(GatewayARN=stored, GatewayName="renamed")
    assert sg.describe_gateway_information(GatewayARN=stored)["GatewayName"] == "renamed"
    sg.shutdown_gateway(GatewayARN=stored)
    assert sg.describe_gateway_information(GatewayARN=stored)["GatewayState"] == "SHUTDOWN"
    sg.start_gateway(GatewayARN=stored)

    # Delete everything; a snapshot of a volume about to go.
    assert sg.create_snapshot(VolumeARN=cached_volume, SnapshotDescription="last")["SnapshotId"].startswith(
        "snap-"
    )
    expect = Expect(logs)
    expect(lambda: sg.delete_volume(VolumeARN=cached_volume), "SnapshotInProgressException")
    assert sg.delete_volume(VolumeARN=stored_volume)["VolumeARN"] == stored_volume
    sg.delete_gateway(GatewayARN=stored)
    assert [g["GatewayARN"] for g in sg.list_gateways()["Gateways"]] == [cached]
    assert list(emulator.app[SERVICES_KEY].storagegateway.gateways) == [cached]

    lines = clients.lines(logs)
    assert all(line["service"] == "storagegateway" and line["sigv4"] == "valid" for line in lines)
    assert [line["findings"] for line in lines if line["findings"]] == []


def test_documented_errors_through_sigwatch(
    gateway_endpoint: tuple[RunningEmulator, RunningSigwatch], logs: Any
) -> None:
    _, proxy = gateway_endpoint
    sg = boto("storagegateway", proxy.url)
    expect = Expect(logs)
    expect(lambda: sg.describe_gateway_information(GatewayARN=MISSING_GATEWAY), "GatewayNotFound")
    expect(lambda: sg.delete_gateway(GatewayARN=MISSING_GATEWAY), "GatewayNotFound")
    activation = {"GatewayName": "gw", "GatewayTimezone": "GMT", "GatewayRegion": "us-east-1"}
    expect(lambda: sg.activate_gateway(ActivationKey="not-a-key", **activation), "ActivationKeyInvalid")
    key = "ER1ER-ER2ER-ER3ER-ER4ER-ER5ER"
    gateway = sg.activate_gateway(ActivationKey=key, GatewayType="STORED", **activation)["GatewayARN"]
    expect(lambda: sg.activate_gateway(ActivationKey=key, **activation), "ActivationKeyExpired")
    disks = [d["DiskId"] for d in sg.list_local_disks(GatewayARN=gateway)["Disks"]]
    interface = sg.describe_gateway_information(GatewayARN=gateway)["GatewayNetworkInterfaces"][0][
        "Ipv4Address"
    ]
    sg.add_upload_buffer(GatewayARN=gateway, DiskIds=[disks[0]])
    expect(lambda: sg.add_working_storage(GatewayARN=gateway, DiskIds=[disks[0]]), "DiskAlreadyAllocated")
    expect(
        lambda: sg.add_upload_buffer(GatewayARN=gateway, DiskIds=["pci-0000:99:00.0-scsi-0:0:9:0"]),
        "DiskDoesNotExist",
    )
    expect(lambda: sg.add_cache(GatewayARN=gateway, DiskIds=[disks[1]]), "UnsupportedOperationForGatewayType")

    def stored(disk: int, target: str) -> Any:
        return sg.create_stored_iscsi_volume(
            GatewayARN=gateway,
            DiskId=disks[disk],
            PreserveExistingData=False,
            TargetName=target,
            NetworkInterfaceId=interface,
        )

    expect(lambda: stored(4, "odd"), "DiskSizeNotGigAligned")
    expect(lambda: stored(5, "huge"), "DiskSizeGreaterThanVolumeMaxSize")
    stored(1, "first")
    expect(lambda: stored(2, "first"), "TargetAlreadyExists")
    missing_volume = f"{gateway}/volume/vol-00000000"
    expect(lambda: sg.delete_volume(VolumeARN=missing_volume), "VolumeNotFound")
    expect(lambda: sg.create_snapshot(VolumeARN=missing_volume, SnapshotDescription="x"), "VolumeNotFound")
    sg.shutdown_gateway(GatewayARN=gateway)
    expect(lambda: sg.list_local_disks(GatewayARN=gateway), "GatewayNotConnected")
    invalid = expect(
        lambda: sg.update_gateway_information(GatewayARN=gateway, GatewayCapacity="Huge"),
        "",
        "ValidationException",
    )
    assert invalid["Error"]["Message"].startswith("1 validation error detected: Value ")


def test_protocol_errors_through_sigwatch(
    gateway_endpoint: tuple[RunningEmulator, RunningSigwatch], logs: Any
) -> None:
    """Malformed JSON reaches the emulator (SerializationException); a missing or unknown x-amz-target
    is answered by sigwatch itself in enforce mode, with the seed's codes."""
    emulator, proxy = gateway_endpoint
    sg = boto("storagegateway", proxy.url)

    def sent_as(target: str | None, body: bytes) -> dict[str, Any]:
        return list_gateways_sent_as(sg, target, body)

    malformed = sent_as("StorageGateway_20130630.ListGateways", b"{not json")
    assert malformed["Error"]["Code"] == "SerializationException"
    assert_classified(logs, malformed)
    received = len(emulator.received)
    for target, code in [
        (None, "MissingAction"),
        ("StorageGateway_20130630.NoSuchOperation", "UnknownOperationException"),
    ]:
        response = sent_as(target, b"{}")
        assert response["Error"]["Code"] == code
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-sigwatch-origin"] == "proxy"
    assert len(emulator.received) == received


@pytest.mark.slow
def test_lifecycle_with_the_aws_cli(
    gateway_endpoint: tuple[RunningEmulator, RunningSigwatch], cli_env: dict[str, str], logs: Any
) -> None:
    _, proxy = gateway_endpoint

    def cli(*arguments: str) -> Any:
        done = aws(cli_env, proxy.url, "storagegateway", *arguments)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    arn = cli(
        "activate-gateway",
        "--activation-key",
        "CLI01-CLI02-CLI03-CLI04-CLI05",
        "--gateway-name",
        "cli-gateway",
        "--gateway-timezone",
        "GMT",
        "--gateway-region",
        "us-east-1",
        "--gateway-type",
        "CACHED",
    )["GatewayARN"]
    assert arn in [g["GatewayARN"] for g in cli("list-gateways")["Gateways"]]
    disk = cli("list-local-disks", "--gateway-arn", arn)["Disks"][0]["DiskId"]
    cli("add-cache", "--gateway-arn", arn, "--disk-ids", disk)
    interface = cli("describe-gateway-information", "--gateway-arn", arn)["GatewayNetworkInterfaces"][0]
    volume = cli(
        "create-cached-iscsi-volume",
        "--gateway-arn",
        arn,
        "--volume-size-in-bytes",
        str(GIB),
        "--target-name",
        "cli-target",
        "--network-interface-id",
        interface["Ipv4Address"],
        "--client-token",
        "cli-token",
    )["VolumeARN"]
    cli("delete-volume", "--volume-arn", volume)
    cli("delete-gateway", "--gateway-arn", arn)
    missing = aws(cli_env, proxy.url, "storagegateway", "describe-gateway-information", "--gateway-arn", arn)
    assert missing.returncode == 255
    assert "(InvalidGatewayRequestException)" in missing.stderr
    assert "The specified gateway was not found." in missing.stderr
    lines = request_lines(logs, 9)
    cli_lines = [line for line in lines if "aws-cli/" in line["user_agent"]]
    assert len(cli_lines) == 9
    assert all(line["sigv4"] == "valid" and line["findings"] == [] for line in cli_lines)
    assert cli_lines[-1]["error"]["operation_error"] == "GatewayNotFound"
