"""Issues 4 and 5, end to end: every code of every catalog, forced on the emulator with
x-sigwatch-emulate-error and sent through sigwatch, reaches boto3 as that code and is classified back to
itself by sigwatch (x-sigwatch-error, x-sigwatch-error-class and the log line), with the catalog's
category and retryability.
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e_proxy_support import RunningSigwatch, boto, client_error, line_for

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import CatalogEntry, EntryKind
from proxy.emulator import FORCE_ERROR_HEADER

pytestmark = pytest.mark.e2e

CATALOGS = load_builtin_catalogs()
# (service, the operation the error is forced on, its boto3 call)
TARGETS: dict[str, tuple[str, Any]] = {
    "storagegateway": ("ListGateways", lambda c: c.list_gateways()),
    "s3": ("ListObjectsV2", lambda c: c.list_objects_v2(Bucket="e2e-forced")),
    "importexport": ("ListJobs", lambda c: c.list_jobs()),
}


class Forcing:
    """A boto3 client whose calls of one operation carry the forced-error header (others, e.g. an S3
    redirect's follow-up HeadBucket, go without it)."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client = client
        self.spec = ""
        prefix = client.meta.service_model.endpoint_prefix
        client.meta.events.register_first(f"before-sign.{prefix}.{operation}", self._inject)

    def _inject(self, request: Any, **_: Any) -> None:
        request.headers[FORCE_ERROR_HEADER] = self.spec


def expected(service: str, code: str, entry: CatalogEntry) -> tuple[str, str, int, bool]:
    """(exception botocore reports, sigwatch's x-sigwatch-error, status, retryable) for a forced `code`.

    A Storage Gateway operation error code arrives wrapped (InternalServerError for server-side codes,
    else InvalidGatewayRequestException): its status is the wrapper's, and so is botocore's retry
    decision (a 500 is retried whatever the code inside).
    """
    if entry.kind is EntryKind.OPERATION_ERROR:
        wrapper = (
            "InternalServerError" if entry.category.value == "server" else "InvalidGatewayRequestException"
        )
        catalog = CATALOGS.get(service)
        assert catalog is not None
        wrapping = catalog.entries[wrapper]
        assert wrapping.http_status is not None
        return wrapper, f"{wrapper}/{code}", wrapping.http_status, wrapping.retryable or entry.retryable
    assert entry.http_status is not None
    if entry.http_status == 304:
        # An S3 304 has no body: botocore (and sigwatch after it) can only name the status.
        return "304", "304/304", 304, entry.retryable
    return code, f"{code}/{code}", entry.http_status, entry.retryable


def codes(service: str, *, redirects: bool) -> list[str]:
    """The catalog's codes, those answered with a 3xx status apart (see the xfail test)."""
    catalog = CATALOGS.get(service)
    assert catalog is not None
    return [
        code for code, entry in catalog.entries.items() if ((entry.http_status or 400) < 400) == redirects
    ]


def force_all(proxy: RunningSigwatch, service: str, chosen: list[str], logs: Any) -> list[str]:
    operation, call = TARGETS[service]
    catalog = CATALOGS.get(service)
    assert catalog is not None
    forcing = Forcing(boto(service, proxy.url), operation)
    checked = []
    for code in chosen:
        entry = catalog.entries[code]
        exception, annotation, status, retryable = expected(service, code, entry)
        forcing.spec = code
        response = client_error(lambda: call(forcing.client))
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        assert response["ResponseMetadata"]["HTTPStatusCode"] == status, code
        botocore_code = response["Error"]["Code"]
        assert botocore_code == exception, code
        assert headers.get("x-sigwatch-error") == annotation, code
        retry_flag = "true" if retryable else "false"
        assert headers["x-sigwatch-error-class"] == f"{entry.category.value}; retryable={retry_flag}", code
        error = line_for(logs, headers["x-sigwatch-request-id"])["error"]
        assert (error["exception"], error["code"], error["operation_error"]) == (
            exception,
            botocore_code,
            code if entry.kind is EntryKind.OPERATION_ERROR else None,
        ), code
        assert (error["category"], error["retryable"]) == (entry.category.value, retryable), code
        assert error["documented"] is (status != 304), code
        checked.append(code)
    return checked


@pytest.fixture
def bucket(observe_proxy: RunningSigwatch) -> None:
    boto("s3", observe_proxy.url).create_bucket(Bucket="e2e-forced")


@pytest.mark.parametrize("service", ["storagegateway", "s3", "importexport"])
def test_every_catalog_code_is_classified_back_to_itself(
    observe_proxy: RunningSigwatch, bucket: None, service: str, logs: Any
) -> None:
    chosen = codes(service, redirects=False)
    assert force_all(observe_proxy, service, chosen, logs) == chosen


def test_redirect_and_not_modified_codes_are_classified(
    observe_proxy: RunningSigwatch, bucket: None, logs: Any
) -> None:
    chosen = codes("s3", redirects=True)
    assert chosen == ["NotModified", "PermanentRedirect", "Redirect", "TemporaryRedirect"]
    assert force_all(observe_proxy, "s3", chosen, logs) == chosen
