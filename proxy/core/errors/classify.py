"""What an extracted error means: category, retryability, fault, and whether the endpoint kept the
contract its catalog documents.

`classify` is cheap (dictionary look-ups on precomputed catalogs) and pure. The handler uses its result
for the response annotation (`annotation_error`, `annotation_error_class`), the log line (the real code)
and the metric labels (`metric_code`: codes outside the catalog become "other").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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
from proxy.core.frozen import remember, slot_constructor
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
class Verdict:
    """What a kind of error response means: everything of a classification that does not depend on the
    one response (its request id, message). Computed once per kind and memoised with the catalogs."""

    exception: str
    code: str
    operation_error: str | None
    documented_status: int | None
    documented_statuses: tuple[int, ...]
    category: Category
    retryable: bool
    fault: Fault
    clock_skew: bool
    documented: bool
    findings: tuple[ContractFinding, ...]
    error_annotation: str  # x-sigwatch-error
    class_annotation: str  # x-sigwatch-error-class
    # metric_code() of this verdict's classifications, with the Catalogs and service it was computed for.
    metric_label: tuple[Catalogs, str | None, str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Classification:
    """An error response, understood: the response's own facts (`info`) and what they mean (`verdict`).

    `exception` is the error type (`__type`, `<Code>`; for a query-compatible JSON service the modeled
    exception name); `code` is what botocore reports as `Error.Code` (the status as text when the body
    gives none, as botocore does); `operation_error` is Storage Gateway's second level.
    `documented_status` is the catalog's status for the exception (for an operation error code, its
    wrapper's); `documented_statuses` adds the statuses other sources document.
    """

    service: str | None
    operation: str | None
    info: ErrorInfo
    verdict: Verdict

    @property
    def exception(self) -> str:
        return self.verdict.exception

    @property
    def code(self) -> str:
        return self.verdict.code

    @property
    def operation_error(self) -> str | None:
        return self.verdict.operation_error

    @property
    def status(self) -> int:
        return self.info.status

    @property
    def documented_status(self) -> int | None:
        return self.verdict.documented_status

    @property
    def documented_statuses(self) -> tuple[int, ...]:
        return self.verdict.documented_statuses

    @property
    def category(self) -> Category:
        return self.verdict.category

    @property
    def retryable(self) -> bool:
        return self.verdict.retryable

    @property
    def fault(self) -> Fault:
        return self.verdict.fault

    @property
    def clock_skew(self) -> bool:
        return self.verdict.clock_skew

    @property
    def documented(self) -> bool:
        return self.verdict.documented

    @property
    def findings(self) -> tuple[ContractFinding, ...]:
        return self.verdict.findings

    @property
    def request_id(self) -> str | None:
        return self.info.request_id

    @property
    def host_id(self) -> str | None:
        return self.info.host_id

    @property
    def message(self) -> str:
        return self.info.message

    @property
    def body_state(self) -> BodyState:
        return self.info.body_state


_FAULT_OF_TYPE = {
    "sender": Fault.CLIENT,
    "client": Fault.CLIENT,
    "receiver": Fault.SERVER,
    "server": Fault.SERVER,
}
# Verdicts memoised per Catalogs; codes come from the upstream, so the memo is bounded (then restarted).
_MEMO_LIMIT = 4096


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
    key = (
        service,
        operation,
        info.status,
        info.code,
        info.exception,
        info.operation_error,
        info.error_type,
        info.body_state,
        info.code_source,
        info.protocol,
    )
    memo = catalogs.memo
    verdict = memo.get(key)
    if not isinstance(verdict, Verdict):
        verdict = remember(memo, key, _verdict(info, service, operation, catalogs), _MEMO_LIMIT)
    return _make_classification(service, operation, info, verdict)


_make_classification = slot_constructor(Classification)


def _verdict(info: ErrorInfo, service: str | None, operation: str | None, catalogs: Catalogs) -> Verdict:
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
    detail = info.operation_error or code
    return Verdict(
        exception=exception,
        code=code,
        operation_error=info.operation_error,
        documented_status=entry.http_status if entry is not None else None,
        documented_statuses=documented_statuses,
        category=category,
        retryable=retryable,
        fault=fault,
        clock_skew=is_clock_skew(code)
        or is_clock_skew(exception)
        or (entry is not None and entry.clock_skew),
        documented=entry is not None and (info.operation_error is None or operation_entry is not None),
        findings=findings,
        error_annotation=f"{_header_token(exception)}/{_header_token(detail)}",
        class_annotation=f"{category.value}; retryable={'true' if retryable else 'false'}",
        metric_label=(
            catalogs,
            service,
            _metric_code(service, info.operation_error, code, exception, catalogs),
        ),
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
    when there is one (`InvalidGatewayRequestException/VolumeNotFound`, `NoSuchKey/NoSuchKey`); both
    reduced to a safe token (letters, digits, `._:#-`; at most 128 characters each)."""
    return classification.verdict.error_annotation


def annotation_error_class(classification: Classification) -> str:
    """The value of `x-sigwatch-error-class`: `<category>; retryable=<true|false>`."""
    return classification.verdict.class_annotation


def metric_code(classification: Classification, catalogs: Catalogs) -> str:
    """The code for metric labels: the most specific documented code (operation error code, else the
    code, else the exception), or "other" when the service's catalog does not know it, so a misbehaving
    endpoint cannot blow up label cardinality. Logs keep the real code."""
    verdict = classification.verdict
    known = verdict.metric_label
    if known is not None and known[0] is catalogs and known[1] == classification.service:
        return known[2]  # computed by classify() for this service with these catalogs
    return _metric_code(
        classification.service, verdict.operation_error, verdict.code, verdict.exception, catalogs
    )


def _metric_code(
    service: str | None, operation_error: str | None, code: str, exception: str, catalogs: Catalogs
) -> str:
    catalog = catalogs.get(service)
    if catalog is None:
        return OTHER
    operation_entry = catalog.get(operation_error)
    if operation_entry is not None and operation_entry.kind is EntryKind.OPERATION_ERROR:
        return operation_entry.code
    entry = _entry(catalog, code, exception)
    return entry.code if entry is not None else OTHER
