"""Every entry of every catalog can be forced with x-sigwatch-emulate-error and comes back, through
botocore's parser, as that code with the catalog's status."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from emulator_functional_support import boto_client, client_error, sign_importexport_as

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import EntryKind, ServiceCatalog
from proxy.emulator import FORCE_ERROR_HEADER
from proxy.service_models import load_service_index

CATALOGS = load_builtin_catalogs()


class Forcing:
    """A client whose requests for `operation` carry the forced-error header with `spec` (other
    requests, e.g. the HeadBucket botocore sends to follow an S3 redirect, go without it)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client = client
        self.spec = ""
        service = client.meta.service_model.endpoint_prefix
        client.meta.events.register_first(f"before-sign.{service}.{operation}", self._inject)

    def _inject(self, request: Any, **_: Any) -> None:
        request.headers[FORCE_ERROR_HEADER] = self.spec

    def error(self, spec: str, call: Any) -> dict[str, Any]:
        self.spec = spec
        return client_error(call)


def expected(catalog: ServiceCatalog, code: str) -> tuple[str, str | None, int]:
    """(exception botocore reports, operation error code, status) the catalog documents for `code`."""
    entry = catalog.entries[code]
    if entry.kind is EntryKind.OPERATION_ERROR:
        wrapper = (
            "InternalServerError" if entry.category.value == "server" else "InvalidGatewayRequestException"
        )
        status = catalog.entries[wrapper].http_status
        assert status is not None
        return wrapper, code, status
    assert entry.http_status is not None
    return code, None, entry.http_status


def force_storagegateway(url: str) -> list[str]:
    catalog = CATALOGS.get("storagegateway")
    assert catalog is not None
    forcing = Forcing(boto_client("storagegateway", url), "ListGateways")
    checked = []
    for code in catalog.entries:
        exception, operation_error, status = expected(catalog, code)
        response = forcing.error(code, forcing.client.list_gateways)
        assert response["Error"]["Code"] == exception, code
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status, code
        assert response["Error"]["Message"] == catalog.entries[code].message, code
        if operation_error is not None:
            assert response["error"]["errorCode"] == operation_error, code
            # The wrapping exception can be chosen: <exception>/<operationErrorCode>.
            explicit = forcing.error(f"InternalServerError/{code}", forcing.client.list_gateways)
            assert (explicit["Error"]["Code"], explicit["error"]["errorCode"]) == (
                "InternalServerError",
                code,
            )
            assert explicit["ResponseMetadata"]["HTTPStatusCode"] == 500
        checked.append(code)
    return checked


def force_s3(url: str) -> list[str]:
    catalog = CATALOGS.get("s3")
    assert catalog is not None
    client = boto_client("s3", url)
    client.create_bucket(Bucket="forced-errors")
    forcing = Forcing(client, "ListObjectsV2")
    checked = []
    for code, entry in catalog.entries.items():
        response = forcing.error(code, lambda: forcing.client.list_objects_v2(Bucket="forced-errors"))
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == entry.http_status, code
        if status == 304:
            # botocore reads a 304 by its status alone (an S3 304 carries no body).
            assert response["Error"]["Code"] == "304", code
        else:
            assert response["Error"]["Code"] == code, code
            assert response["Error"]["Message"] == entry.message, code
        checked.append(code)
    return checked


def force_importexport(url: str) -> list[str]:
    catalog = CATALOGS.get("importexport")
    assert catalog is not None
    client = boto_client("importexport", url)
    service = load_service_index().service("importexport")
    assert service is not None
    sign_importexport_as(client, service.signing_name or "importexport")
    forcing = Forcing(client, "ListJobs")
    checked = []
    for code, entry in catalog.entries.items():
        response = forcing.error(code, forcing.client.list_jobs)
        assert response["Error"]["Code"] == code
        assert response["ResponseMetadata"]["HTTPStatusCode"] == entry.http_status, code
        assert response["Error"]["Type"] == ("Sender" if entry.http_status < 500 else "Receiver")
        checked.append(code)
    return checked


@pytest.mark.parametrize(
    ("service", "force"),
    [("storagegateway", force_storagegateway), ("s3", force_s3), ("importexport", force_importexport)],
)
async def test_every_catalog_code_can_be_forced(emulator: Any, service: str, force: Any) -> None:
    checked = await asyncio.to_thread(force, emulator.url)
    catalog = CATALOGS.get(service)
    assert catalog is not None
    assert checked == list(catalog.entries)


async def test_unknown_forced_code_is_refused_in_the_protocols_shape(emulator: Any) -> None:
    def run() -> list[dict[str, Any]]:
        sg = Forcing(boto_client("storagegateway", emulator.url), "ListGateways")
        s3 = Forcing(boto_client("s3", emulator.url), "ListBuckets")
        return [
            sg.error("NoSuchCode", sg.client.list_gateways),
            s3.error("ThrottlingException", s3.client.list_buckets),
        ]

    sg_error, s3_error = await asyncio.to_thread(run)
    assert sg_error["Error"]["Code"] == "ValidationException"
    assert "'NoSuchCode' is not in the storagegateway catalog" in sg_error["Error"]["Message"]
    assert s3_error["Error"]["Code"] == "InvalidArgument"
