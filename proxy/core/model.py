"""Frozen value types shared by the pure core.

Nothing here imports aiohttp, prometheus_client or structlog: the I/O layer converts its objects into
these, and every check, the verifier and the classifier work on them alone (like h11, the core is
sans-IO).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from proxy.core.frozen import remember, slot_constructor


class Protocol(StrEnum):
    """The AWS wire protocols, as botocore's service models name them."""

    JSON = "json"  # AWS JSON 1.0 / 1.1: POST /, x-amz-target, application/x-amz-json-1.x
    REST_JSON = "rest-json"
    REST_XML = "rest-xml"  # S3 and a few others
    QUERY = "query"  # Action + Version, answered in <ErrorResponse> XML
    EC2 = "ec2"  # Query requests, answered in <Response><Errors> XML
    UNKNOWN = "unknown"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request as the client sent it: raw path and query, header names and values in arrival order.

    `path` is the percent-encoded path exactly as it appeared on the request line (for an absolute-form
    proxy request, the path of the target URL); `query` is the raw query string without the `?`.
    SigV4 signs these bytes, so nothing here is decoded or normalised.
    """

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    scheme: str = "http"
    _index: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _index_of(self.headers))

    @classmethod
    def from_raw(
        cls,
        method: str,
        raw_target: str,
        raw_headers: Sequence[tuple[bytes, bytes]],
        scheme: str = "http",
    ) -> RequestHead:
        """Build from an origin-form target (`/path?query`) and the header bytes as received.

        The same head as `build()` given the headers decoded with UTF-8 `surrogateescape` (an undecodable
        byte travels as a lone surrogate, so it is kept and can be refused), at less cost: each name and
        value is decoded once, common names are decoded and lower-cased once per process, and the index
        is built in the same pass. An absolute-form target (`http://host/p?q`) must be cut to its origin
        form first, as the handler does.
        """
        headers: list[tuple[str, str]] = []
        append = headers.append
        index: dict[str, tuple[str, ...]] = {}
        names = _NAMES
        for raw_name, raw_value in raw_headers:
            name, key = names.get(raw_name) or _decode_name(raw_name)
            value = raw_value.decode("utf-8", "surrogateescape")
            append((name, value))
            index[key] = (value,)
        if len(index) != len(headers):  # a name sent twice (any case): index every value, in order
            index = _index_of(headers)
        path, _, query = raw_target.partition("?")
        if cls is RequestHead:  # the index is built: no __init__ / __post_init__ (slot_constructor)
            return _make_head(method, path or "/", query, tuple(headers), scheme, index)
        return cls(method, path or "/", query, tuple(headers), scheme)

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        scheme: str = "http",
    ) -> RequestHead:
        """Build from an origin-form target (`/path?query`)."""
        path, _, query = target.partition("?")
        return cls(method=method, path=path or "/", query=query, headers=tuple(headers), scheme=scheme)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of a header (case-insensitive name), in arrival order."""
        return self._index.get(name.lower(), ())

    def get(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self._index.get(name.lower())
        return values[0] if values else None

    def has(self, name: str) -> bool:
        return name.lower() in self._index

    @property
    def has_repeated_headers(self) -> bool:
        """Whether some header name (case-insensitive) occurs more than once."""
        return len(self._index) != len(self.headers)

    @property
    def header_names(self) -> frozenset[str]:
        """Lower-cased names of every header present."""
        return frozenset(self._index)

    @property
    def host(self) -> str | None:
        return self.get("host")


def _index_of(headers: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """Lower-cased name -> every value of that header, in arrival order."""
    index: dict[str, list[str]] = {}
    for name, value in headers:
        index.setdefault(name.lower(), []).append(value)
    return {key: tuple(values) for key, values in index.items()}


_make_head = slot_constructor(RequestHead)

# Header names as sent -> (decoded name, lower-cased name). A client sends the same dozen names on every
# request; the memo is bounded, so a client inventing names costs only the plain decode.
_NAMES: dict[bytes, tuple[str, str]] = {}
_NAMES_MAX = 512


def _decode_name(raw: bytes) -> tuple[str, str]:
    name = raw.decode("utf-8", "surrogateescape")
    return remember(_NAMES, raw, (name, name.lower()), _NAMES_MAX)


@dataclass(frozen=True, slots=True)
class RequestIdentity:
    """What a request is: protocol, service and operation (each may be unknown)."""

    protocol: Protocol = Protocol.UNKNOWN
    service: str | None = None  # botocore service name, e.g. "storagegateway", "s3"
    operation: str | None = None  # e.g. "ListGateways"
    signing_name: str | None = None  # the service part of the credential scope
    region: str | None = None
    api_version: str | None = None


@dataclass(frozen=True, slots=True)
class AwsError:
    """An error exactly as AWS would send it for a protocol: code, status, message and extra fields.

    `extra` holds the additional elements some services add (S3's StringToSign, RequestTime, ...),
    in the order they are rendered.
    """

    code: str
    status: int
    message: str
    extra: tuple[tuple[str, str], ...] = ()
    sender_fault: bool = True
    # Storage Gateway's second level: `{"__type": <code>, "error": {"errorCode": <operation_error>}}`
    operation_error: str | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of one failed (or warning) check.

    `error` is what AWS would answer for this request's protocol; `explanation` is for humans (log
    lines, annotation headers) and never contains a secret.
    """

    check: str
    severity: Severity
    error: AwsError
    explanation: str
    debug: tuple[tuple[str, str], ...] = ()  # e.g. canonical request / string to sign, never secrets

    @property
    def code(self) -> str:
        return self.error.code


@dataclass(frozen=True, slots=True)
class Credential:
    """A secret is held only here; `__repr__` never shows it."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
