"""classify: category, retryability, fault, contract findings, and the annotation / metric values."""

from __future__ import annotations

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import Catalogs, Category, Fault
from proxy.core.errors.classify import (
    OTHER,
    Classification,
    ContractCheck,
    annotation_error,
    annotation_error_class,
    classify,
    metric_code,
)
from proxy.core.errors.extract import BodyState, extract_error
from proxy.core.model import AwsError, Protocol, Severity
from proxy.core.render import render_error

CATALOGS = load_builtin_catalogs()


def storagegateway(
    exception: str, status: int, operation_error: str | None = None, operation: str | None = "ListVolumes"
) -> Classification:
    rendered = render_error(
        Protocol.JSON, AwsError(exception, status, "m", operation_error=operation_error), "r"
    )
    info = extract_error(Protocol.JSON, rendered.status, rendered.headers, rendered.body)
    return classify(info, "storagegateway", operation, CATALOGS)


def s3(code: str, status: int, body: bytes | None = None) -> Classification:
    if body is None:
        body = f"<Error><Code>{code}</Code><Message>m</Message></Error>".encode()
    info = extract_error(Protocol.REST_XML, status, [("x-amz-request-id", "r"), ("x-amz-id-2", "h")], body)
    return classify(info, "s3", "GetObject", CATALOGS)


def checks(result: Classification) -> list[ContractCheck]:
    return [finding.check for finding in result.findings]


def test_documented_error_without_findings() -> None:
    result = s3("NoSuchKey", 404)
    assert (result.exception, result.code, result.category) == ("NoSuchKey", "NoSuchKey", Category.NOT_FOUND)
    assert (result.status, result.documented_status, result.documented_statuses) == (404, 404, (404,))
    assert (result.request_id, result.host_id) == ("r", "h")
    assert result.fault is Fault.CLIENT
    assert not result.retryable
    assert result.documented
    assert result.findings == ()


def test_undocumented_code_is_a_finding_and_other_in_metrics() -> None:
    result = s3("TotallyNewError", 400)
    assert checks(result) == [ContractCheck.UNDOCUMENTED_CODE]
    assert result.findings[0].severity is Severity.WARNING
    assert "TotallyNewError is not a documented s3 error" in result.findings[0].explanation
    assert result.category is Category.VALIDATION  # from the status
    assert not result.documented
    assert metric_code(result, CATALOGS) == OTHER
    assert annotation_error(result) == "TotallyNewError/TotallyNewError"  # the real code stays visible


def test_status_differing_from_the_documented_one() -> None:
    result = s3("NoSuchKey", 400)
    assert checks(result) == [ContractCheck.STATUS_MISMATCH]
    assert "NoSuchKey arrived with HTTP 400, s3 documents 404" in result.findings[0].explanation
    assert result.category is Category.NOT_FOUND  # the documented meaning of the code


def test_operation_error_not_documented_for_the_operation() -> None:
    result = storagegateway("InvalidGatewayRequestException", 400, "ActivationKeyExpired", "ListVolumes")
    assert checks(result) == [ContractCheck.OPERATION_ERROR_NOT_FOR_OPERATION]
    assert "ListVolumes is not documented to return operation error code ActivationKeyExpired" in (
        result.findings[0].explanation
    )
    assert (
        storagegateway(
            "InvalidGatewayRequestException", 400, "ActivationKeyExpired", "ActivateGateway"
        ).findings
        == ()
    )
    # an unknown operation cannot be checked
    assert storagegateway("InvalidGatewayRequestException", 400, "ActivationKeyExpired", None).findings == ()


def test_operation_error_category_and_metric_label() -> None:
    result = storagegateway("InvalidGatewayRequestException", 400, "VolumeNotFound", "DeleteVolume")
    assert result.category is Category.NOT_FOUND
    assert result.documented_status == 400
    assert metric_code(result, CATALOGS) == "VolumeNotFound"
    assert annotation_error(result) == "InvalidGatewayRequestException/VolumeNotFound"
    assert annotation_error_class(result) == "not_found; retryable=false"


def test_operation_error_in_internal_server_error_is_retryable() -> None:
    result = storagegateway("InternalServerError", 500, "GatewayInternalError", "ListVolumes")
    assert result.retryable  # botocore retries any 500
    assert result.fault is Fault.SERVER
    assert result.category is Category.SERVER
    assert annotation_error_class(result) == "server; retryable=true"


def test_wrapper_without_operation_error() -> None:
    result = storagegateway("InternalServerError", 500)
    assert checks(result) == [ContractCheck.MISSING_OPERATION_ERROR]
    assert "InternalServerError should carry an operation error code" in result.findings[0].explanation


def test_undocumented_operation_error_and_wrong_wrapper() -> None:
    result = storagegateway("InvalidGatewayRequestException", 400, "SnapshotInProgress", "DeleteVolume")
    assert checks(result) == [ContractCheck.UNDOCUMENTED_OPERATION_ERROR]
    assert not result.documented
    assert metric_code(result, CATALOGS) == "InvalidGatewayRequestException"
    result = storagegateway("ValidationException", 400, "VolumeNotFound", "DeleteVolume")
    assert checks(result) == [ContractCheck.OPERATION_ERROR_WRONG_WRAPPER]


def test_throttling_and_clock_skew() -> None:
    slow = s3("SlowDown", 503)
    assert (slow.category, slow.retryable, slow.fault) == (Category.THROTTLING, True, Fault.SERVER)
    assert annotation_error_class(slow) == "throttling; retryable=true"
    skewed = s3("RequestTimeTooSkewed", 403)
    assert (skewed.category, skewed.clock_skew, skewed.retryable) == (Category.CLOCK_SKEW, True, False)
    signature = storagegateway("InvalidSignatureException", 400, None, None)
    assert (signature.category, signature.clock_skew) == (Category.AUTHENTICATION, True)


def test_empty_head_404_is_classified_from_the_status_without_contract_noise() -> None:
    result = s3("", 404, body=b"")
    assert (result.code, result.exception, result.category) == ("404", "404", Category.NOT_FOUND)
    assert result.body_state is BodyState.EMPTY
    assert result.findings == ()
    assert metric_code(result, CATALOGS) == OTHER


def test_unreadable_body_is_a_finding() -> None:
    info = extract_error(Protocol.JSON, 502, [], b"<html><body>Bad Gateway</body></html>")
    result = classify(info, "storagegateway", "ListGateways", CATALOGS)
    assert (result.code, result.category, result.retryable) == ("502", Category.UNAVAILABLE, True)
    assert checks(result) == [ContractCheck.UNREADABLE_BODY]
    assert "not a readable json error document (malformed)" in result.findings[0].explanation


def test_fault_follows_the_wire_type() -> None:
    body = (
        b"<ErrorResponse><Error><Type>Receiver</Type><Code>InvalidJobIdException</Code></Error>"
        b"</ErrorResponse>"
    )
    result = classify(extract_error(Protocol.QUERY, 400, [], body), "importexport", "GetStatus", CATALOGS)
    assert result.fault is Fault.SERVER  # the response says Receiver, whatever the catalog says


def test_unknown_service_has_no_catalog_but_still_a_category() -> None:
    info = extract_error(Protocol.JSON, 400, [], b'{"__type":"ThrottlingException"}')
    result = classify(info, "kinesis", "PutRecord", CATALOGS)
    assert (result.category, result.retryable, result.findings) == (Category.THROTTLING, True, ())
    assert metric_code(result, CATALOGS) == OTHER
    assert classify(info, None, None, Catalogs()).category is Category.THROTTLING


def test_retry_on_unknown_429_but_not_on_a_documented_code() -> None:
    unknown = classify(extract_error(Protocol.REST_XML, 429, [], b""), "s3", None, CATALOGS)
    assert unknown.retryable
    documented = s3("InvalidArgument", 429)
    assert not documented.retryable


def test_annotation_values_cannot_inject_headers() -> None:
    body = b'{"__type":"Evil\\r\\nSet-Cookie: a=b","error":{"errorCode":"X;Y/Z"}}'
    result = classify(extract_error(Protocol.JSON, 400, [], body), "storagegateway", None, CATALOGS)
    value = annotation_error(result)
    assert "\r" not in value and "\n" not in value and " " not in value
    assert value == "Evil__Set-Cookie/X_Y_Z"  # botocore drops what follows ":"


def test_metric_code_computed_with_the_verdict_follows_the_catalogs_given() -> None:
    """classify() computes the metric label once per verdict; metric_code() with other catalogs (or for a
    classification of another service) computes it afresh."""
    result = storagegateway("InvalidGatewayRequestException", 400, "VolumeNotFound")
    assert metric_code(result, CATALOGS) == "VolumeNotFound"
    without_s3 = Catalogs.of(catalog for catalog in CATALOGS.by_service.values() if catalog.service != "s3")
    assert metric_code(result, without_s3) == "VolumeNotFound"
    no_catalogs = Catalogs.of([])
    assert metric_code(result, no_catalogs) == OTHER
    moved = Classification("s3", result.operation, result.info, result.verdict)
    assert metric_code(moved, CATALOGS) == OTHER  # s3 documents neither code
