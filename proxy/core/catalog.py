"""Error catalogs: what each service documents about its errors, validated before the proxy starts.

A catalog is data (proxy/catalogs/data/*.json, regenerated from the seed documents by
tools/build_catalogs.py, plus files users add from config). This module turns a parsed JSON document into
frozen values and refuses a bad one with a `CatalogError` that names the file, the key, what is wrong and
how to fix it. It also holds the rules every entry's derived fields follow (category, retryable, clock
skew, fault), so the build script, user files and the classifier of unknown codes share one definition.

Pure: no file access here (proxy.catalogs reads the files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from proxy.core.model import Protocol

FORMAT_VERSION = 1


class Category(StrEnum):
    """What kind of failure an error is (one label per error, for logs, headers and metrics)."""

    AUTHENTICATION = "authentication"
    AUTHORIZATION = "authorization"
    CLOCK_SKEW = "clock_skew"
    THROTTLING = "throttling"
    VALIDATION = "validation"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PRECONDITION = "precondition"
    QUOTA = "quota"
    SERVER = "server"
    UNAVAILABLE = "unavailable"
    REDIRECT = "redirect"
    UNKNOWN = "unknown"


class Fault(StrEnum):
    """Whose fault: AWS Query's <Type>Sender</Type> / <Type>Receiver</Type>, botocore's senderFault."""

    CLIENT = "client"
    SERVER = "server"


class EntryKind(StrEnum):
    """An exception (`__type`, `<Code>`) or a Storage Gateway operation error code (`error.errorCode`)."""

    EXCEPTION = "exception"
    OPERATION_ERROR = "operation_error"


# botocore/retries/standard.py, ThrottledRetryableChecker._THROTTLED_ERROR_CODES (standard retry mode).
THROTTLING_CODES: frozenset[str] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# botocore/retries/standard.py, TransientRetryableChecker._TRANSIENT_ERROR_CODES / _TRANSIENT_STATUS_CODES.
TRANSIENT_CODES: frozenset[str] = frozenset(
    {"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"}
)
TRANSIENT_STATUSES: frozenset[int] = frozenset({500, 502, 503, 504})
# botocore/retries/standard.py, ThrottlingStatusCodeChecker: "a 429 with an empty body or an unknown error
# code" is retried; when the code matches a modeled error, the model decides.
THROTTLING_STATUSES: frozenset[int] = frozenset({429})
# The codes the AWS SDKs treat as a skewed client clock (they re-sign with the server's Date and retry):
# RequestTimeTooSkewed, RequestExpired, RequestInTheFuture, InvalidSignatureException,
# SignatureDoesNotMatch, AuthFailure.
CLOCK_SKEW_CODES: frozenset[str] = frozenset(
    {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    }
)
# Of those, the ones that say only "your clock is off" (the others may also be a wrong key or signature).
_PURE_CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"})


def is_retryable(
    code: str | None, status: int, *, modeled: bool = False, retryable_trait: bool = False
) -> bool:
    """Would botocore's standard retry mode retry this error?

    transient (code or 500/502/503/504) or throttled (code) or 429 for an error the model does not know,
    or a model that marks the error retryable (`retryable_trait`).
    """
    if code is not None and (code in THROTTLING_CODES or code in TRANSIENT_CODES):
        return True
    if status in TRANSIENT_STATUSES:
        return True
    if status in THROTTLING_STATUSES and not modeled:
        return True
    return retryable_trait


def is_clock_skew(code: str | None) -> bool:
    return code in CLOCK_SKEW_CODES


# Category rules: explicit code sets first, then the words of the CamelCase code, then the status.
_AUTHENTICATION_CODES = frozenset(
    {
        "AuthFailure",
        "AuthenticationFailure",
        "ExpiredToken",
        "ExpiredTokenException",
        "Forbidden",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "InvalidAccessKeyId",
        "InvalidClientTokenId",
        "InvalidClientTokenIdException",
        "InvalidSecurity",
        "InvalidSignatureException",
        "InvalidToken",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "MissingSecurityElement",
        "MissingSecurityHeader",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
        "UnrecognizedClientException",
    }
)
_AUTHORIZATION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AccessForbidden",
        "AccountProblem",
        "AllAccessDisabled",
        "BucketPermissionException",
        "InvalidPayer",
        "NotAuthorized",
        "NotSignedUp",
        "OptInRequired",
        "SubscriptionRequiredException",
        "UnauthorizedOperation",
    }
)
_CONFLICT_CODES = frozenset(
    {"InvalidBucketState", "InvalidObjectState", "OperationAborted", "OutdatedGateway"}
)
_QUOTA_CODES = frozenset(
    {
        "LocalStorageLimitExceeded",
        "MaximumVolumeCountExceeded",
        "StagingAreaFull",
        "TooManyBuckets",
        "TooManyParts",
    }
)
_UNAVAILABLE_CODES = frozenset(
    {"GatewayNotConnected", "GatewayProxyNetworkConnectionBusy", "NetworkConfigurationChanged"}
)
_EXPLICIT: tuple[tuple[frozenset[str], Category], ...] = (
    (_AUTHENTICATION_CODES, Category.AUTHENTICATION),
    (_AUTHORIZATION_CODES, Category.AUTHORIZATION),
    (_CONFLICT_CODES, Category.CONFLICT),
    (_QUOTA_CODES, Category.QUOTA),
    (_UNAVAILABLE_CODES, Category.UNAVAILABLE),
)
_VALIDATION_FIRST_WORDS = frozenset(
    {"invalid", "malformed", "missing", "illegal", "unsupported", "incorrect", "unknown"}
)
_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _words(code: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD_RE.findall(code))


def _has_run(words: tuple[str, ...], run: tuple[str, ...]) -> bool:
    size = len(run)
    return any(words[i : i + size] == run for i in range(len(words) - size + 1))


def infer_category(code: str | None, status: int | None) -> Category:
    """The category of an error from its code and HTTP status (used for every catalog entry and for
    codes no catalog knows).

    The code speaks first, the status only when the code says nothing: explicit code sets, then the
    words of the CamelCase code in a fixed order (`...NotFound` before `Invalid...`, so EC2's
    `InvalidInstanceID.NotFound` is not_found; `Invalid...` before `...Redirect...`, so
    `InvalidRedirectLocation` is validation; a 404 `MalformedQueryString` is still validation).
    """
    name = code or ""
    words = _words(name)
    if name in _PURE_CLOCK_SKEW_CODES:
        return Category.CLOCK_SKEW
    if name in THROTTLING_CODES:
        return Category.THROTTLING
    for codes, category in _EXPLICIT:
        if name in codes:
            return category
    if (
        _has_run(words, ("not", "found"))
        or _has_run(words, ("no", "such"))
        or _has_run(words, ("does", "not", "exist"))
        or "nonexistent" in name.lower()
    ):
        return Category.NOT_FOUND
    if {"throttling", "throttled"} & set(words) or _has_run(words, ("too", "many", "requests")):
        return Category.THROTTLING
    if words and words[0] in _VALIDATION_FIRST_WORDS:
        return Category.VALIDATION
    if "redirect" in words:
        return Category.REDIRECT
    if (
        "precondition" in words
        or _has_run(words, ("not", "modified"))
        or _has_run(words, ("conditional", "check"))
    ):
        return Category.PRECONDITION
    if (
        {"already", "conflict", "duplicate", "cannot"} & set(words)
        or "inprogress" in name.lower()
        or _has_run(words, ("in", "use"))
        or _has_run(words, ("not", "empty"))
        or _has_run(words, ("not", "ready"))
    ):
        return Category.CONFLICT
    if _has_run(words, ("limit", "exceeded")) or "quota" in words:
        return Category.QUOTA
    if name in TRANSIENT_CODES or "unavailable" in words:
        return Category.UNAVAILABLE
    if "internal" in words or "failure" in words or _has_run(words, ("not", "implemented")):
        return Category.SERVER
    if status is not None:
        return _category_of_status(status)
    if {"invalid", "expired", "supported", "validation", "parameters"} & set(words):
        return Category.VALIDATION
    return Category.UNKNOWN


def _category_of_status(status: int) -> Category:
    by_status = {
        304: Category.PRECONDITION,
        401: Category.AUTHENTICATION,
        403: Category.AUTHORIZATION,
        404: Category.NOT_FOUND,
        409: Category.CONFLICT,
        412: Category.PRECONDITION,
        429: Category.THROTTLING,
        502: Category.UNAVAILABLE,
        503: Category.UNAVAILABLE,
        504: Category.UNAVAILABLE,
    }
    if status in by_status:
        return by_status[status]
    if 300 <= status < 400:
        return Category.REDIRECT
    if 400 <= status < 500:
        return Category.VALIDATION
    if 500 <= status < 600:
        return Category.SERVER
    return Category.UNKNOWN


def default_fault(category: Category, status: int | None) -> Fault:
    """Server fault for 5xx (and server-side categories when no status is documented), else client."""
    if status is not None:
        return Fault.SERVER if status >= 500 else Fault.CLIENT
    return Fault.SERVER if category in (Category.SERVER, Category.UNAVAILABLE) else Fault.CLIENT


@dataclass(frozen=True, slots=True)
class SourceFact:
    """What one source document says about a code: its status, message and (Storage Gateway) operations."""

    source: str
    http_status: int | None
    message: str
    operations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One documented error code of a service.

    `sources` are the facts that agree with this entry's status, the first one being the entry's own;
    facts that disagree live in `ServiceCatalog.alternates`. For a Storage Gateway operation error code
    (`kind` OPERATION_ERROR), `operations` are the operations allowed to return it and `wrappers` the
    exceptions it arrives in; its HTTP status is the wrapper's, so `http_status` is None.
    """

    code: str
    kind: EntryKind
    http_status: int | None
    message: str
    fault: Fault
    category: Category
    retryable: bool
    clock_skew: bool
    sources: tuple[SourceFact, ...]
    operations: frozenset[str] = frozenset()
    wrappers: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # A service model that marks the error retryable (botocore's `retryable` error trait).
    retryable_trait: bool = False


@dataclass(frozen=True, slots=True)
class ServiceCatalog:
    service: str
    protocol: Protocol
    entries: Mapping[str, CatalogEntry]
    alternates: Mapping[str, tuple[SourceFact, ...]] = field(default_factory=lambda: MappingProxyType({}))
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    json_version: str | None = None
    xml_namespace: str | None = None
    notes: tuple[str, ...] = ()
    origin: str = ""
    # Exceptions that carry an operation error code (computed): Storage Gateway's InternalServerError
    # and InvalidGatewayRequestException.
    wrapper_exceptions: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        wrappers = frozenset(w for entry in self.entries.values() for w in entry.wrappers)
        object.__setattr__(self, "wrapper_exceptions", wrappers)

    def get(self, code: str | None) -> CatalogEntry | None:
        return self.entries.get(code) if code is not None else None

    def documented_statuses(self, code: str) -> tuple[int, ...]:
        """Every status a source documents for `code` (the entry's and its alternates'), sorted."""
        statuses: set[int] = set()
        entry = self.entries.get(code)
        if entry is not None and entry.http_status is not None:
            statuses.add(entry.http_status)
        statuses.update(f.http_status for f in self.alternates.get(code, ()) if f.http_status is not None)
        return tuple(sorted(statuses))


@dataclass(frozen=True, slots=True)
class Catalogs:
    by_service: Mapping[str, ServiceCatalog] = field(default_factory=lambda: MappingProxyType({}))
    # Memo of derived, immutable results (the classifier's verdicts), keyed by their inputs. It lives
    # with the catalogs it was computed from and is bounded by its user; it never changes a result.
    memo: dict[tuple[object, ...], object] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def of(cls, catalogs: Iterable[ServiceCatalog]) -> Catalogs:
        return cls(MappingProxyType({c.service: c for c in catalogs}))

    def get(self, service: str | None) -> ServiceCatalog | None:
        return self.by_service.get(service) if service is not None else None

    def lookup(self, service: str | None, code: str | None) -> CatalogEntry | None:
        catalog = self.get(service)
        return catalog.get(code) if catalog is not None else None

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(sorted(self.by_service))


class CatalogError(ValueError):
    """A catalog file that cannot be used; the message says where, what and how to fix it."""

    def __init__(self, file: str, key: str, problem: str, fix: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        self.fix = fix
        super().__init__(f"{file}: {key}: {problem}. Fix: {fix}")


# --- parsing and validation -------------------------------------------------------------------------

_TOP_KEYS = frozenset(
    {
        "format_version",
        "service",
        "protocol",
        "json_version",
        "xml_namespace",
        "sources",
        "notes",
        "entries",
        "alternates",
        "generated_by",
    }
)
_ENTRY_KEYS = frozenset(
    {
        "code",
        "kind",
        "http_status",
        "message",
        "fault",
        "category",
        "retryable",
        "clock_skew",
        "sources",
        "operations",
        "wrappers",
        "notes",
        "retryable_trait",
    }
)
_FACT_KEYS = frozenset({"source", "http_status", "message", "operations"})
_ALTERNATE_KEYS = _FACT_KEYS | {"code"}
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
_OPERATION_RE = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_JSON_VERSIONS = ("1.0", "1.1")
_E = TypeVar("_E", bound=StrEnum)


class _Reader:
    """Typed access to an untrusted JSON document; every failure names the file and the key path."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, problem: str, fix: str) -> CatalogError:
        return CatalogError(self.file, key, problem, fix)

    def mapping(self, value: object, key: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.fail(
                key, f"expected an object, found {_kind(value)}", "write a JSON object {...} here"
            )
        return value

    def known_keys(self, doc: Mapping[str, object], key: str, allowed: frozenset[str]) -> None:
        unknown = sorted(set(doc) - allowed)
        if unknown:
            raise self.fail(
                f"{key}.{unknown[0]}" if key else unknown[0],
                f"unknown key {unknown[0]!r}",
                f"remove it or use one of: {', '.join(sorted(allowed))}",
            )

    def required(self, doc: Mapping[str, object], name: str, key: str) -> object:
        if name not in doc:
            raise self.fail(f"{key}.{name}" if key else name, "missing", f"add {name!r}")
        return doc[name]

    def string(
        self, value: object, key: str, *, pattern: re.Pattern[str] | None = None, hint: str = ""
    ) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                key, f"expected a non-empty string, found {_kind(value)}", "write a non-empty string"
            )
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not valid", hint or f"match {pattern.pattern}")
        return value

    def optional_string(self, doc: Mapping[str, object], name: str, key: str) -> str | None:
        value = doc.get(name)
        return None if value is None else self.string(value, f"{key}.{name}" if key else name)

    def boolean(self, value: object, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, found {_kind(value)}", "write true or false")
        return value

    def status(self, value: object, key: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            raise self.fail(
                key,
                f"HTTP status must be an integer from 100 to 599, found {value!r}",
                "write the documented status as a number (e.g. 400), or null when no source documents one",
            )
        return value

    def array(self, value: object, key: str) -> list[object]:
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, found {_kind(value)}", "write a JSON list [...]")
        return value

    def strings(self, value: object, key: str, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        return tuple(
            self.string(item, f"{key}[{i}]", pattern=pattern) for i, item in enumerate(self.array(value, key))
        )

    def enum(self, value: object, key: str, enum: type[_E]) -> _E:
        allowed = [member.value for member in enum]
        if not isinstance(value, str) or value not in allowed:
            raise self.fail(key, f"unknown value {value!r}", f"use one of: {', '.join(allowed)}")
        return enum(value)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _parse_fact(reader: _Reader, raw: object, key: str, source_ids: Mapping[str, str] | None) -> SourceFact:
    doc = reader.mapping(raw, key)
    reader.known_keys(doc, key, _FACT_KEYS)
    source = reader.string(reader.required(doc, "source", key), f"{key}.source")
    if source_ids is not None and source not in source_ids:
        raise reader.fail(
            f"{key}.source",
            f"source {source!r} is not declared in the top-level 'sources'",
            f"declare it there or use one of: {', '.join(sorted(source_ids))}",
        )
    status = reader.status(reader.required(doc, "http_status", key), f"{key}.http_status")
    message = reader.string(reader.required(doc, "message", key), f"{key}.message")
    operations = reader.strings(doc.get("operations", []), f"{key}.operations", _OPERATION_RE)
    return SourceFact(source=source, http_status=status, message=message, operations=operations)


def _parse_entry(
    reader: _Reader, raw: object, key: str, source_ids: Mapping[str, str] | None, default_source: str
) -> CatalogEntry:
    doc = reader.mapping(raw, key)
    reader.known_keys(doc, key, _ENTRY_KEYS)
    code = reader.string(
        reader.required(doc, "code", key),
        f"{key}.code",
        pattern=_CODE_RE,
        hint="an error code is letters, digits and . _ : - (e.g. NoSuchKey)",
    )
    kind = reader.enum(doc.get("kind", EntryKind.EXCEPTION.value), f"{key}.kind", EntryKind)
    status = reader.status(reader.required(doc, "http_status", key), f"{key}.http_status")
    message = reader.string(reader.required(doc, "message", key), f"{key}.message")
    category = reader.enum(reader.required(doc, "category", key), f"{key}.category", Category)
    fault = (
        reader.enum(doc["fault"], f"{key}.fault", Fault)
        if "fault" in doc
        else default_fault(category, status)
    )
    trait = reader.boolean(doc.get("retryable_trait", False), f"{key}.retryable_trait")
    expected_retry = is_retryable(code, status or 0, modeled=True, retryable_trait=trait)
    retryable = reader.boolean(doc.get("retryable", expected_retry), f"{key}.retryable")
    if retryable != expected_retry:
        raise reader.fail(
            f"{key}.retryable",
            f"{code} with status {status} is {'' if expected_retry else 'not '}retried by botocore's "
            f"standard retry mode, but the file says retryable={str(retryable).lower()}",
            "remove 'retryable' (it is derived), or set 'retryable_trait': true for a code your service "
            "models as retryable",
        )
    clock_skew = reader.boolean(doc.get("clock_skew", is_clock_skew(code)), f"{key}.clock_skew")
    if is_clock_skew(code) and not clock_skew:
        raise reader.fail(
            f"{key}.clock_skew",
            f"the AWS SDKs treat {code} as a clock-skew error, the file says false",
            "set clock_skew to true or remove it",
        )
    if "sources" in doc:
        facts = tuple(
            _parse_fact(reader, item, f"{key}.sources[{i}]", source_ids)
            for i, item in enumerate(reader.array(doc["sources"], f"{key}.sources"))
        )
        if not facts:
            raise reader.fail(f"{key}.sources", "empty list", "list at least one source, or remove the key")
    else:
        facts = (SourceFact(source=default_source, http_status=status, message=message),)
    operations = reader.strings(doc.get("operations", []), f"{key}.operations", _OPERATION_RE)
    wrappers = reader.strings(doc.get("wrappers", []), f"{key}.wrappers", _CODE_RE)
    notes = reader.strings(doc.get("notes", []), f"{key}.notes")
    if kind is EntryKind.OPERATION_ERROR:
        if not wrappers:
            raise reader.fail(
                f"{key}.wrappers",
                f"operation error code {code} names no wrapping exception",
                "list the exceptions it arrives in, e.g. "
                '["InternalServerError", "InvalidGatewayRequestException"]',
            )
        if not operations:
            raise reader.fail(
                f"{key}.operations",
                f"operation error code {code} lists no operation",
                "list the operations documented to return it",
            )
    elif operations or wrappers:
        bad = "operations" if operations else "wrappers"
        raise reader.fail(
            f"{key}.{bad}",
            f"only operation error codes have {bad}; {code} is an exception",
            f'set "kind": "operation_error" or remove {bad!r}',
        )
    primary = facts[0]
    if primary.http_status != status or primary.message != message:
        raise reader.fail(
            f"{key}.sources[0]",
            "the first source fact must be the entry's own status and message",
            f"make sources[0] say http_status={status} and the entry's message",
        )
    seen: set[str] = set()
    for i, fact in enumerate(facts):
        if fact.http_status != status:
            raise reader.fail(
                f"{key}.sources[{i}].http_status",
                f"{fact.source} documents {fact.http_status} for {code}, the entry says {status}",
                "move this fact to the top-level 'alternates' (sources that disagree are kept there)",
            )
        if fact.source in seen:
            raise reader.fail(
                f"{key}.sources[{i}]",
                f"{fact.source} lists {code} twice",
                "keep the first row here and move the repeated row to the top-level 'alternates'",
            )
        seen.add(fact.source)
    all_operations = frozenset(operations)
    for fact in facts:
        if not set(fact.operations) <= all_operations:
            extra = sorted(set(fact.operations) - all_operations)[0]
            raise reader.fail(
                f"{key}.operations",
                f"{fact.source} allows {extra} to return {code}, the entry's operations do not",
                "the entry's operations must be the union of every source's operations",
            )
    return CatalogEntry(
        code=code,
        kind=kind,
        http_status=status,
        message=message,
        fault=fault,
        category=category,
        retryable=retryable,
        clock_skew=clock_skew,
        sources=facts,
        operations=all_operations,
        wrappers=wrappers,
        notes=notes,
        retryable_trait=trait,
    )


def parse_catalog(doc: Mapping[str, object], source: str) -> ServiceCatalog:
    """Validate a catalog document (the parsed JSON of one file) and build its ServiceCatalog.

    `source` names the file in error messages. Raises CatalogError on the first problem.
    """
    reader = _Reader(source)
    top = reader.mapping(doc, "(document)")
    reader.known_keys(top, "", _TOP_KEYS)
    version = top.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise reader.fail(
            "format_version",
            f"unsupported format version {version!r}",
            f"write {FORMAT_VERSION} (the only format this sigwatch reads)",
        )
    service = reader.string(
        reader.required(top, "service", ""),
        "service",
        pattern=_SERVICE_RE,
        hint="use the botocore service name, lower case (e.g. s3, storagegateway)",
    )
    protocol_name = reader.required(top, "protocol", "")
    protocol = reader.enum(protocol_name, "protocol", Protocol)
    if protocol is Protocol.UNKNOWN:
        raise reader.fail(
            "protocol", "'unknown' is not a wire protocol", "use json, rest-json, rest-xml, query or ec2"
        )
    json_version = reader.optional_string(top, "json_version", "")
    if json_version is not None and json_version not in _JSON_VERSIONS:
        raise reader.fail("json_version", f"unknown JSON version {json_version!r}", "write 1.0 or 1.1")
    xml_namespace = reader.optional_string(top, "xml_namespace", "")
    source_ids: Mapping[str, str] | None = None
    if "sources" in top:
        raw_sources = reader.mapping(top["sources"], "sources")
        source_ids = {k: reader.string(v, f"sources.{k}") for k, v in raw_sources.items()}
    notes = reader.strings(top.get("notes", []), "notes")
    raw_entries = reader.array(reader.required(top, "entries", ""), "entries")
    if not raw_entries:
        raise reader.fail("entries", "no entries", "list at least one documented error code")
    entries: dict[str, CatalogEntry] = {}
    positions: dict[str, int] = {}
    for i, raw in enumerate(raw_entries):
        entry = _parse_entry(reader, raw, f"entries[{i}]", source_ids, source)
        if entry.code in entries:
            raise reader.fail(
                f"entries[{i}].code",
                f"duplicate code {entry.code} (also entries[{positions[entry.code]}])",
                "keep one entry per code; record the other source's fact under 'alternates'",
            )
        entries[entry.code] = entry
        positions[entry.code] = i
    alternates: dict[str, list[SourceFact]] = {}
    for i, raw in enumerate(reader.array(top.get("alternates", []), "alternates")):
        key = f"alternates[{i}]"
        alt_doc = reader.mapping(raw, key)
        reader.known_keys(alt_doc, key, _ALTERNATE_KEYS)
        code = reader.string(reader.required(alt_doc, "code", key), f"{key}.code")
        if code not in entries:
            raise reader.fail(
                f"{key}.code", f"no entry for {code}", "add an entry for the code, or remove this alternate"
            )
        fact = _parse_fact(reader, {k: v for k, v in alt_doc.items() if k != "code"}, key, source_ids)
        alternates.setdefault(code, []).append(fact)
    for code, entry in entries.items():
        for i, wrapper in enumerate(entry.wrappers):
            wrapped = entries.get(wrapper)
            if wrapped is None or wrapped.kind is not EntryKind.EXCEPTION:
                raise reader.fail(
                    f"entries[{positions[code]}].wrappers[{i}]",
                    f"{wrapper} is not an exception of this catalog",
                    f"add an exception entry for {wrapper} or correct the name",
                )
    return ServiceCatalog(
        service=service,
        protocol=protocol,
        entries=MappingProxyType(entries),
        alternates=MappingProxyType({k: tuple(v) for k, v in alternates.items()}),
        sources=MappingProxyType(dict(source_ids or {})),
        json_version=json_version,
        xml_namespace=xml_namespace,
        notes=notes,
        origin=source,
    )


def merge_catalogs(base: Catalogs, overrides: Iterable[ServiceCatalog]) -> Catalogs:
    """Overlay user catalogs (one per service, from config) on the built-in ones, in order.

    A catalog for a new service is added. For a service already known, the override's protocol and wire
    details win, its entries replace the base entries with the same code (their alternates too) and the
    base's other entries stay.
    """
    merged: dict[str, ServiceCatalog] = dict(base.by_service)
    for override in overrides:
        current = merged.get(override.service)
        if current is None:
            merged[override.service] = override
            continue
        entries = {**current.entries, **override.entries}
        alternates = {
            code: facts for code, facts in current.alternates.items() if code not in override.entries
        }
        alternates.update(override.alternates)
        merged[override.service] = ServiceCatalog(
            service=override.service,
            protocol=override.protocol,
            entries=MappingProxyType(entries),
            alternates=MappingProxyType(alternates),
            sources=MappingProxyType({**current.sources, **override.sources}),
            json_version=override.json_version or current.json_version,
            xml_namespace=override.xml_namespace or current.xml_namespace,
            notes=current.notes + override.notes,
            origin=f"{current.origin} + {override.origin}",
        )
    return Catalogs(MappingProxyType(merged))


def fact_document(fact: SourceFact) -> dict[str, object]:
    doc: dict[str, object] = {"source": fact.source, "http_status": fact.http_status, "message": fact.message}
    if fact.operations:
        doc["operations"] = list(fact.operations)
    return doc


def entry_document(entry: CatalogEntry) -> dict[str, object]:
    """The JSON form of an entry, with every derived field written out (what the build script commits)."""
    doc: dict[str, object] = {
        "code": entry.code,
        "kind": entry.kind.value,
        "http_status": entry.http_status,
        "message": entry.message,
        "fault": entry.fault.value,
        "category": entry.category.value,
        "retryable": entry.retryable,
        "clock_skew": entry.clock_skew,
        "sources": [fact_document(f) for f in entry.sources],
    }
    if entry.operations:
        doc["operations"] = sorted(entry.operations)
    if entry.wrappers:
        doc["wrappers"] = list(entry.wrappers)
    if entry.notes:
        doc["notes"] = list(entry.notes)
    if entry.retryable_trait:
        doc["retryable_trait"] = True
    return doc
