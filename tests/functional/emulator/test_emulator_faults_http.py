"""Fault scenarios on the wire: forced errors at their rates, latency added (through the emulator's
sleep, recorded instead of waited for), connections dropped; and the headers AWS sends."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from emulator_functional_support import boto_client, client_error

from proxy.config import ConfigError
from proxy.emulator import EmulatorSettings, build_emulator_app
from proxy.emulator.faults import parse_scenario


async def test_error_rate_one_and_zero(start_emulator: Any) -> None:
    scenario = parse_scenario(
        {
            "error": [
                {
                    "service": "storagegateway",
                    "operations": ["ListGateways"],
                    "code": "ThrottlingException",
                    "rate": 1,
                },
                {
                    "service": "storagegateway",
                    "operations": ["ListVolumes"],
                    "code": "InternalServerError/GatewayInternalError",
                    "rate": 1,
                },
            ]
        },
        "test",
    )
    emulator = await start_emulator(scenario=scenario)

    def run() -> tuple[dict[str, Any], dict[str, Any], Any]:
        sg = boto_client("storagegateway", emulator.url)
        return client_error(sg.list_gateways), client_error(sg.list_volumes), sg.list_tapes()

    throttled, internal, untouched = await asyncio.to_thread(run)
    assert (throttled["Error"]["Code"], throttled["Error"]["Message"]) == (
        "ThrottlingException",
        "Rate exceeded.",
    )
    assert (internal["Error"]["Code"], internal["error"]["errorCode"]) == (
        "InternalServerError",
        "GatewayInternalError",
    )
    assert internal["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert untouched["ResponseMetadata"]["HTTPStatusCode"] == 200


async def test_error_rate_over_many_requests(start_emulator: Any) -> None:
    """A 20% SlowDown rate over 400 requests on the wire lands within binomial bounds (5 sigma)."""
    scenario = parse_scenario({"error": [{"service": "s3", "code": "SlowDown", "rate": 0.2}]}, "test")
    emulator = await start_emulator(scenario=scenario, authenticate=False)
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(400):
            async with session.get(f"{emulator.url}/") as response:
                statuses.append(response.status)
                if response.status == 503:
                    assert "<Code>SlowDown</Code>" in await response.text()
    slow = statuses.count(503)
    assert 80 - 5 * 8 <= slow <= 80 + 5 * 8
    assert set(statuses) == {200, 503}


async def test_latency_is_added(start_emulator: Any) -> None:
    scenario = parse_scenario(
        {
            "latency": [
                {
                    "service": "storagegateway",
                    "operations": ["ListGateways"],
                    "rate": 1,
                    "min_ms": 100,
                    "max_ms": 200,
                }
            ]
        },
        "test",
    )
    emulator = await start_emulator(scenario=scenario)

    def run() -> None:
        sg = boto_client("storagegateway", emulator.url)
        for _ in range(5):
            sg.list_gateways()
        sg.list_volumes()

    await asyncio.to_thread(run)
    assert len(emulator.sleeps.delays) == 5
    assert all(0.1 <= delay <= 0.2 for delay in emulator.sleeps.delays)


async def test_connections_are_dropped(start_emulator: Any) -> None:
    scenario = parse_scenario({"drop": [{"service": "s3", "operations": ["ListBuckets"], "rate": 1}]}, "test")
    emulator = await start_emulator(scenario=scenario)

    def run() -> Exception:
        s3 = boto_client("s3", emulator.url)
        s3.create_bucket(Bucket="still-works")
        try:
            s3.list_buckets()
        except (ConnectionClosedError, EndpointConnectionError) as dropped:
            return dropped
        raise AssertionError("the connection was not dropped")

    dropped = await asyncio.to_thread(run)
    assert "Connection was closed" in str(dropped) or "Could not connect" in str(dropped)
    assert "still-works" in emulator.state.s3.buckets


def test_bad_scenario_stops_start_up() -> None:
    scenario = parse_scenario(
        {"error": [{"service": "s3", "code": "GatewayNotFound", "rate": 0.1}]}, "bad.toml"
    )
    with pytest.raises(ConfigError) as raised:
        build_emulator_app(EmulatorSettings(scenario=scenario))
    assert (raised.value.source, raised.value.key) == ("bad.toml", "error[0].code")


async def test_aws_response_headers(emulator: Any) -> None:
    def run() -> list[dict[str, Any]]:
        sg = boto_client("storagegateway", emulator.url)
        s3 = boto_client("s3", emulator.url)
        s3.create_bucket(Bucket="headers-bucket")
        return [
            sg.list_gateways()["ResponseMetadata"],
            s3.list_objects_v2(Bucket="headers-bucket")["ResponseMetadata"],
            client_error(lambda: s3.get_object(Bucket="headers-bucket", Key="absent"))["ResponseMetadata"],
        ]

    sg_meta, s3_meta, s3_error = await asyncio.to_thread(run)
    assert sg_meta["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"
    assert sg_meta["RequestId"] == sg_meta["HTTPHeaders"]["x-amzn-requestid"]
    assert len(sg_meta["RequestId"]) == 36
    for meta in (s3_meta, s3_error):
        headers = meta["HTTPHeaders"]
        assert headers["content-type"] == "application/xml"
        assert headers["server"] == "AmazonS3"
        assert len(headers["x-amz-request-id"]) == 16 and headers["x-amz-id-2"]
        assert meta["HostId"] == headers["x-amz-id-2"]
    for meta in (sg_meta, s3_meta):
        assert meta["HTTPHeaders"]["date"].endswith(" GMT")
