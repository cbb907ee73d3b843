"""The errors an emulated service answers with, taken from that service's catalog.

Every error the emulator sends, whether it arises from the state (NoSuchBucket, GatewayNotFound) or is
forced by a header or a fault scenario, carries the catalog's status and message, so that the emulator
and the classifier can never disagree about what an error looks like.
"""

from __future__ import annotations

from proxy.core.catalog import CatalogEntry, Category, EntryKind, Fault, ServiceCatalog
from proxy.core.model import AwsError

# Storage Gateway wraps every operation error code in one of two exceptions (seed 000, "Operation Error
# Codes"): client-side problems in InvalidGatewayRequestException (400), failures of the service or the
# gateway in InternalServerError (500).
INVALID_GATEWAY_REQUEST = "InvalidGatewayRequestException"
INTERNAL_SERVER_ERROR = "InternalServerError"
FORCE_ERROR_HEADER = "x-sigwatch-emulate-error"


class UnknownErrorCode(LookupError):
    """A code that the service's catalog does not list."""


class ErrorBook:
    """The catalog of one service, as the emulator uses it to build AwsErrors."""

    def __init__(self, catalog: ServiceCatalog) -> None:
        self.catalog = catalog
        self.service = catalog.service

    @property
    def exception_codes(self) -> tuple[str, ...]:
        return tuple(
            code for code, entry in self.catalog.entries.items() if entry.kind is EntryKind.EXCEPTION
        )

    @property
    def operation_error_codes(self) -> tuple[str, ...]:
        return tuple(
            code for code, entry in self.catalog.entries.items() if entry.kind is EntryKind.OPERATION_ERROR
        )

    def has(self, code: str) -> bool:
        return code in self.catalog.entries

    def _entry(self, code: str, kind: EntryKind) -> CatalogEntry:
        entry = self.catalog.entries.get(code)
        if entry is None or entry.kind is not kind:
            noun = "error code" if kind is EntryKind.EXCEPTION else "operation error code"
            raise UnknownErrorCode(f"{code!r} is not a {self.service} {noun} in its catalog")
        return entry

    def error(
        self, code: str, *, message: str | None = None, extra: tuple[tuple[str, str], ...] = ()
    ) -> AwsError:
        """The catalog's error `code`; `message` replaces the catalog text where AWS is more specific."""
        entry = self._entry(code, EntryKind.EXCEPTION)
        assert entry.http_status is not None, "an exception entry always has a status"
        return AwsError(
            code=entry.code,
            status=entry.http_status,
            message=entry.message if message is None else message,
            extra=extra,
            sender_fault=entry.fault is Fault.CLIENT,
        )

    def operation_error(self, code: str, *, exception: str | None = None) -> AwsError:
        """A Storage Gateway operation error code in its two-level shape: the wrapping exception's status,
        the operation error code's message (seed 000: "message: One of the operation error code
        messages")."""
        entry = self._entry(code, EntryKind.OPERATION_ERROR)
        wrapper = self.error(exception or self._default_wrapper(entry))
        return AwsError(
            code=wrapper.code,
            status=wrapper.status,
            message=entry.message,
            sender_fault=wrapper.sender_fault,
            operation_error=entry.code,
        )

    @staticmethod
    def _default_wrapper(entry: CatalogEntry) -> str:
        """Failures inside the service or the gateway (GatewayInternalError, InternalError) arrive in
        InternalServerError, every other operation error code in InvalidGatewayRequestException."""
        preferred = INTERNAL_SERVER_ERROR if entry.category is Category.SERVER else INVALID_GATEWAY_REQUEST
        if not entry.wrappers or preferred in entry.wrappers:
            return preferred
        return entry.wrappers[0]

    def forced(self, spec: str) -> AwsError:
        """The error an `x-sigwatch-emulate-error` header asks for.

        `<code>` is any catalog code; an operation error code alone arrives in its first documented
        exception; `<exception>/<operationErrorCode>` picks the wrapping exception.
        """
        spec = spec.strip()
        exception, slash, operation_code = spec.partition("/")
        if slash:
            self._entry(exception, EntryKind.EXCEPTION)
            return self.operation_error(operation_code, exception=exception)
        entry = self.catalog.entries.get(spec)
        if entry is None:
            raise UnknownErrorCode(f"{spec!r} is not in the {self.service} catalog")
        if entry.kind is EntryKind.OPERATION_ERROR:
            return self.operation_error(spec)
        return self.error(spec)
