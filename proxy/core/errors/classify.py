"""What an extracted error means: category, retryability, fault, and whether the endpoint kept the
contract its catalog documents.

`classify` is cheap (dictionary look-ups on precomputed catalogs) and pure. The handler uses its result
for the response annotation (`annotation_error`, `annotation_error_class`), the log line (the real code)
and the metric labels (`metric_code`: codes outside the catalog become "other").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from proxy.core.catalog import (
    CatalogEntry,
    Catalogs,
    Category,
    EntryKind,
    Fault,
    ServiceCatalog,
    default_fault,
    infer_category,
    is_clock_skew,
    is_retryable,
)
from proxy.core.errors.extract import BodyState, CodeSource, ErrorInfo
from proxy.core.model import Severity

OTHER = "other"


class ContractCheck(StrEnum):
    UNDOCUMENTED_CODE = "undocumented_code"
    STATUS_MISMATCH = "status_mismatch"
    UNDOCUMENTED_OPERATION_ERROR = "undocumented_operation_error"
    OPERATION_ERROR_NOT_FOR_OPERATION = "operation_error_not_for_operation"
    OPERATION_ERROR_WRONG_WRAPPER = "operation_error_wrong_wrapper"
    MISSING_OPERATION_ERROR = "missing_operation_error"
    UNREADABLE_BODY = "unreadable_body"


@dataclass(frozen=True, slots=True)
class ContractFinding:
    """One way the response departs from what the service's catalog documents."""

    check: ContractCheck
    severity: Severity
    explanation: str


@dataclass(frozen=True, slots=True)
class Classification:
    """An error response, understood.

    `exception` is the error type (`__type`, `<Code>`; for a query-compatible JSON service the modeled
    exception name); `code` is what botocore reports as `Error.Code` (the status as text when the body
    gives none, as botocore does); `operation_error` is Storage Gateway's second level.
    `documented_status` is the catalog's status for the exception (for an operation error code, its
    wrapper's); `documented_statuses` adds the statuses other sources document.
    """

    service: str | None
    operation: str | None
    exception: str
    code: str
    operation_error: str | None
    status: int
    documented_status: int | None
    documented_statuses: tuple[int, ...]
    category: Category
    retryable: bool
    fault: Fault
    clock_skew: bool
    request_id: str | None
    host_id: str | None
    message: str
    body_state: BodyState
    documented: bool
    findings: tuple[ContractFinding, ...] = ()


_FAULT_OF_TYPE = {
    "sender": Fault.CLIENT,
    "client": Fault.CLIENT,
    "receiver": Fault.SERVER,
    "server": Fault.SERVER,
}


def _entry(catalog: ServiceCatalog | None, *codes: str | None) -> CatalogEntry | None:
    if catalog is None:
        return None
    for code in codes:
        entry = catalog.get(code)
        if entry is not None and entry.kind is EntryKind.EXCEPTION:
            return entry
    return None


def classify(
    info: ErrorInfo, service: str | None, operation: str | None, catalogs: Catalogs
) -> Classification:
    """Classify an extracted error for `service` / `operation` (either may be unknown) against `catalogs`."""
    catalog = catalogs.get(service)
    status = info.status
    code = info.code or str(status)
    exception = info.exception or code
    entry = _entry(catalog, code, exception)
    operation_entry = catalog.get(info.operation_error) if catalog is not None else None
    if operation_entry is not None and operation_entry.kind is not EntryKind.OPERATION_ERROR:
        operation_entry = None

    if operation_entry is not None:
        category = operation_entry.category
    elif entry is not None:
        category = entry.category
    else:
        category = infer_category(code, status)
    # botocore's standard retry mode decides on Error.Code and the status (see proxy.core.catalog).
    retryable = is_retryable(
        info.code,
        status,
        modeled=entry is not None,
        retryable_trait=entry.retryable_trait if entry is not None else False,
    )
    wire_fault = _FAULT_OF_TYPE.get((info.error_type or "").lower())
    if wire_fault is not None:
        fault = wire_fault
    elif entry is not None:
        fault = entry.fault
    else:
        fault = default_fault(category, status)
    documented_status = entry.http_status if entry is not None else None
    documented_statuses = catalog.documented_statuses(entry.code) if catalog is not None and entry else ()
    findings = (
        _findings(
            info,
            catalog,
            entry=entry,
            operation_entry=operation_entry,
            operation=operation,
            code=code,
            exception=exception,
            documented_statuses=documented_statuses,
        )
        if catalog is not None
        else _body_findings(info)
    )
    return Classification(
        service=service,
        operation=operation,
        exception=exception,
        code=code,
        operation_error=info.operation_error,
        status=status,
        documented_status=documented_status,
        documented_statuses=documented_statuses,
        category=category,
        retryable=retryable,
        fault=fault,
        clock_skew=is_clock_skew(code)
        or is_clock_skew(exception)
        or (entry is not None and entry.clock_skew),
        request_id=info.request_id,
        host_id=info.host_id,
        message=info.message,
        body_state=info.body_state,
        documented=entry is not None and (info.operation_error is None or operation_entry is not None),
        findings=findings,
    )


def _body_findings(info: ErrorInfo) -> tuple[ContractFinding, ...]:
    if info.body_state is BodyState.MALFORMED or (
        info.body_state is BodyState.TRUNCATED and info.code_source is CodeSource.STATUS
    ):
        return (
            ContractFinding(
                ContractCheck.UNREADABLE_BODY,
                Severity.WARNING,
                f"the {info.status} error body is not a readable {info.protocol.value} error document "
                f"({info.body_state.value}); classified from the status",
            ),
        )
    return ()


def _findings(
    info: ErrorInfo,
    catalog: ServiceCatalog,
    *,
    entry: CatalogEntry | None,
    operation_entry: CatalogEntry | None,
    operation: str | None,
    code: str,
    exception: str,
    documented_statuses: tuple[int, ...],
) -> tuple[ContractFinding, ...]:
    found = list(_body_findings(info))
    service = catalog.service
    code_from_body = info.code_source not in (CodeSource.STATUS, CodeSource.NONE)
    if entry is None and code_from_body:
        found.append(
            ContractFinding(
                ContractCheck.UNDOCUMENTED_CODE,
                Severity.WARNING,
                f"{code} is not a documented {service} error",
            )
        )
    if entry is not None and documented_statuses and info.status not in documented_statuses:
        documented = " or ".join(str(s) for s in documented_statuses)
        found.append(
            ContractFinding(
                ContractCheck.STATUS_MISMATCH,
                Severity.WARNING,
                f"{entry.code} arrived with HTTP {info.status}, {service} documents {documented}",
            )
        )
    if info.operation_error is not None:
        if operation_entry is None:
            found.append(
                ContractFinding(
                    ContractCheck.UNDOCUMENTED_OPERATION_ERROR,
                    Severity.WARNING,
                    f"operation error code {info.operation_error} is not documented for {service}",
                )
            )
        else:
            if operation is not None and operation not in operation_entry.operations:
                found.append(
                    ContractFinding(
                        ContractCheck.OPERATION_ERROR_NOT_FOR_OPERATION,
                        Severity.WARNING,
                        f"{operation} is not documented to return operation error code "
                        f"{info.operation_error}",
                    )
                )
            if exception not in operation_entry.wrappers:
                found.append(
                    ContractFinding(
                        ContractCheck.OPERATION_ERROR_WRONG_WRAPPER,
                        Severity.WARNING,
                        f"operation error code {info.operation_error} arrived in {exception}, documented in "
                        f"{' or '.join(operation_entry.wrappers)}",
                    )
                )
    elif exception in catalog.wrapper_exceptions:
        found.append(
            ContractFinding(
                ContractCheck.MISSING_OPERATION_ERROR,
                Severity.WARNING,
                f"{exception} should carry an operation error code (error.errorCode) and has none",
            )
        )
    return tuple(found)


# --- annotation and metric label values ---------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._:#-]")
_MAX_LABEL = 128


def _header_token(value: str) -> str:
    """Codes come from the upstream: keep them to a safe token (no CR/LF, no separators), bounded."""
    token = _UNSAFE.sub("_", value[:_MAX_LABEL])
    return token or "-"


def annotation_error(classification: Classification) -> str:
    """The value of `x-sigwatch-error`: `<exception>/<code>`, the code being the operation error code
    when there is one (`InvalidGatewayRequestException/VolumeNotFound`, `NoSuchKey/NoSuchKey`)."""
    detail = classification.operation_error or classification.code
    return f"{_header_token(classification.exception)}/{_header_token(detail)}"


def annotation_error_class(classification: Classification) -> str:
    """The value of `x-sigwatch-error-class`: `<category>; retryable=<true|false>`."""
    return f"{classification.category.value}; retryable={'true' if classification.retryable else 'false'}"


def metric_code(classification: Classification, catalogs: Catalogs) -> str:
    """The code for metric labels: the most specific documented code (operation error code, else the
    code, else the exception), or "other" when the service's catalog does not know it, so a misbehaving
    endpoint cannot blow up label cardinality. Logs keep the real code."""
    catalog = catalogs.get(classification.service)
    if catalog is None:
        return OTHER
    operation_entry = catalog.get(classification.operation_error)
    if operation_entry is not None and operation_entry.kind is EntryKind.OPERATION_ERROR:
        return operation_entry.code
    entry = _entry(catalog, classification.code, classification.exception)
    return entry.code if entry is not None else OTHER
