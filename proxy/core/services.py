"""What the proxy knows about AWS services: protocol, JSON version, target prefix, signing name, endpoint
prefix and operations (HTTP method + request URI), as a frozen, queryable index.

The data comes from botocore's service models (proxy/service_models.py builds the index); this module
is the pure data type and its lookups, so identification and the checks can be tested with a small
hand-made index. Operations are loaded lazily, one service at a time, through `operations_loader`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from proxy.core.model import Protocol

# botocore's protocol names -> ours. Preference when a model lists several (`protocols`): the first
# one of the model's own list that the proxy understands.
PROTOCOLS = {
    "json": Protocol.JSON,
    "rest-json": Protocol.REST_JSON,
    "rest-xml": Protocol.REST_XML,
    "query": Protocol.QUERY,
    "ec2": Protocol.EC2,
}

_EMPTY_OPERATIONS: Mapping[str, OperationInfo] = MappingProxyType({})


def target_family(prefix: str) -> str:
    """`StorageGateway_20130630` -> `StorageGateway`: the prefix without its `_YYYYMMDD` API version.

    Storage Gateway answers `StorageGateway_20120630.ListGateways` (seed 000) although its current model
    says `StorageGateway_20130630`: the family is what names the service.
    """
    base, separator, version = prefix.rpartition("_")
    if separator and len(version) == 8 and version.isdigit():
        return base
    return prefix


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """One operation: its HTTP binding and what a request must carry to be routed to it.

    `path_template`: the request URI's path split on `/` (`("{Bucket}", "{Key+}")`); `required_query`:
    literal query keys of the URI (`?uploads`, `?list-type=2`, value None when any value matches) plus
    the required `querystring` members of the input; `required_headers`: required `header` members.
    """

    name: str
    http_method: str = "POST"
    request_uri: str = "/"
    path_template: tuple[str, ...] = ()
    required_query: tuple[tuple[str, str | None], ...] = ()
    required_headers: tuple[str, ...] = ()
    deprecated: bool = False

    @classmethod
    def from_http(
        cls,
        name: str,
        http_method: str,
        request_uri: str,
        *,
        required_query_members: Iterable[str] = (),
        required_header_members: Iterable[str] = (),
        deprecated: bool = False,
    ) -> OperationInfo:
        path, _, literal_query = request_uri.partition("?")
        required: list[tuple[str, str | None]] = []
        for pair in literal_query.split("&"):
            if not pair:
                continue
            key, separator, value = pair.partition("=")
            if key == "x-id":  # botocore's routing hint, not sent by every SDK
                continue
            required.append((key, value if separator else None))
        known = {key for key, _ in required}
        required.extend((member, None) for member in required_query_members if member not in known)
        return cls(
            name=name,
            http_method=http_method.upper(),
            request_uri=request_uri,
            path_template=tuple(segment for segment in path.split("/") if segment),
            required_query=tuple(required),
            required_headers=tuple(sorted({header.lower() for header in required_header_members})),
            deprecated=deprecated,
        )

    def match(
        self, method: str, segments: list[str], query: Mapping[str, str], headers: frozenset[str]
    ) -> int:
        """-1 when this operation cannot serve the request; else a specificity score (higher wins)."""
        if method != self.http_method:
            return -1
        template = self.path_template
        greedy = bool(template) and template[-1].endswith("+}")
        if greedy:
            if len(segments) < len(template):
                return -1
        elif len(segments) != len(template):
            return -1
        literal = 0
        for index, part in enumerate(template):
            if part.startswith("{"):
                continue
            if index >= len(segments) or segments[index] != part:
                return -1
            literal += 1
        for key, value in self.required_query:
            if key not in query or (value is not None and query[key] != value):
                return -1
        if any(header not in headers for header in self.required_headers):
            return -1
        # More required query keys / headers, then more literal path segments, then a non-greedy
        # template, then a non-deprecated operation (GetBucketLifecycleConfiguration over GetBucketLifecycle).
        specificity = (
            100 * (len(self.required_query) + len(self.required_headers)) + 10 * literal + (not greedy)
        )
        return 2 * specificity + (not self.deprecated)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """A service's metadata (botocore `metadata` block), keyed by botocore's service name."""

    name: str
    protocol: Protocol
    api_version: str = ""
    protocols: tuple[str, ...] = ()
    json_version: str | None = None
    target_prefix: str | None = None
    signing_name: str = ""
    endpoint_prefix: str = ""
    xml_namespace: str | None = None
    global_endpoint: str | None = None

    def speaks(self, protocol: Protocol) -> bool:
        """Whether the service accepts `protocol` (its primary one or any listed in `protocols`)."""
        return protocol is self.protocol or any(PROTOCOLS.get(name) is protocol for name in self.protocols)

    @property
    def is_s3(self) -> bool:
        """S3's signing rules apply (no path normalization, x-amz-content-sha256 required): botocore signs
        every service whose signing name is `s3` (S3, S3 Control) with S3SigV4Auth."""
        return self.signing_name == "s3"


@dataclass(frozen=True, slots=True)
class _Routes:
    """One service's operations for one HTTP method: those requiring no query key, by the literal first
    segment of their path ("" when it is a label such as {Bucket}), and those requiring query keys, by
    the first key they require."""

    always: Mapping[str, tuple[OperationInfo, ...]]
    by_key: Mapping[str, tuple[OperationInfo, ...]]


def _group(
    services: Iterable[ServiceInfo], key: Callable[[ServiceInfo], str | None]
) -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {}
    for service in services:
        value = key(service)
        if value:
            grouped.setdefault(value, []).append(service.name)
    return {value: tuple(names) for value, names in grouped.items()}


@dataclass(frozen=True, slots=True)
class ServiceIndex:
    """Services by name, target prefix (and its family), signing name and endpoint prefix.

    `operations_loader(service)` returns a service's operations; results are memoised here. A loader
    that raises or returns nothing leaves the service with no known operations.
    """

    services: Mapping[str, ServiceInfo]
    operations_loader: Callable[[str], Mapping[str, OperationInfo]] | None = field(
        default=None, compare=False
    )
    _by_target: Mapping[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False)
    _by_family: Mapping[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False)
    _by_signing: Mapping[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False)
    _by_endpoint: Mapping[str, tuple[str, ...]] = field(default_factory=dict, init=False, compare=False)
    _operations: dict[str, Mapping[str, OperationInfo]] = field(
        default_factory=dict, init=False, compare=False
    )
    _route_tables: dict[str, _Routes] = field(default_factory=dict, init=False, compare=False)
    _memos: dict[str, dict[Any, Any]] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        values = list(self.services.values())
        object.__setattr__(self, "_by_target", _group(values, lambda s: s.target_prefix))
        object.__setattr__(
            self,
            "_by_family",
            _group(values, lambda s: target_family(s.target_prefix) if s.target_prefix else None),
        )
        object.__setattr__(self, "_by_signing", _group(values, lambda s: s.signing_name))
        object.__setattr__(self, "_by_endpoint", _group(values, lambda s: s.endpoint_prefix))

    @classmethod
    def build(
        cls,
        services: Iterable[ServiceInfo],
        operations: Mapping[str, Iterable[OperationInfo]] | None = None,
    ) -> ServiceIndex:
        """An index from explicit data (tests, or a precomputed set)."""
        table = {
            name: MappingProxyType({op.name: op for op in ops}) for name, ops in (operations or {}).items()
        }
        return cls(
            services={service.name: service for service in services},
            operations_loader=lambda name: table.get(name, _EMPTY_OPERATIONS),
        )

    def memo(self, name: str) -> dict[Any, Any]:
        """A memo for a pure function of this index and request values (identify's, the target check's),
        living as long as the index. Its users bound it (`proxy.core.frozen.remember`)."""
        found = self._memos.get(name)
        if found is None:
            found = self._memos[name] = {}
        return found

    def service(self, name: str | None) -> ServiceInfo | None:
        return self.services.get(name) if name else None

    def operations(self, name: str) -> Mapping[str, OperationInfo]:
        cached = self._operations.get(name)
        if cached is not None:
            return cached
        loaded: Mapping[str, OperationInfo] = _EMPTY_OPERATIONS
        if self.operations_loader is not None and name in self.services:
            try:
                loaded = self.operations_loader(name) or _EMPTY_OPERATIONS
            except (OSError, ValueError, KeyError):
                loaded = _EMPTY_OPERATIONS
        self._operations[name] = loaded
        return loaded

    def _resolve(self, names: Iterable[str]) -> tuple[ServiceInfo, ...]:
        return tuple(self.services[name] for name in names if name in self.services)

    def by_target_prefix(self, prefix: str) -> tuple[ServiceInfo, ...]:
        """Services whose x-amz-target prefix is `prefix`, else whose prefix family is the same."""
        exact = self._by_target.get(prefix)
        if exact:
            return self._resolve(exact)
        return self._resolve(self._by_family.get(target_family(prefix), ()))

    def knows_target_family(self, prefix: str) -> bool:
        return target_family(prefix) in self._by_family

    def by_signing_name(self, name: str) -> tuple[ServiceInfo, ...]:
        return self._resolve(self._by_signing.get(name, ()))

    def by_endpoint_prefix(self, prefix: str) -> tuple[ServiceInfo, ...]:
        return self._resolve(self._by_endpoint.get(prefix, ()))

    def _routes(self, service: str, method: str) -> _Routes:
        key = f"{service} {method}"
        routes = self._route_tables.get(key)
        if routes is None:
            always: dict[str, list[OperationInfo]] = {}
            by_key: dict[str, list[OperationInfo]] = {}
            for operation in self.operations(service).values():
                if operation.http_method != method:
                    continue
                if operation.required_query:
                    by_key.setdefault(operation.required_query[0][0], []).append(operation)
                else:
                    template = operation.path_template
                    first = template[0] if template and not template[0].startswith("{") else ""
                    always.setdefault(first, []).append(operation)
            routes = _Routes(
                {k: tuple(v) for k, v in always.items()}, {k: tuple(v) for k, v in by_key.items()}
            )
            self._route_tables[key] = routes
        return routes

    def match_rest_operation(
        self,
        service: str,
        method: str,
        segments: list[str],
        query: Mapping[str, str],
        headers: frozenset[str],
    ) -> tuple[str | None, int]:
        """The operation of a REST request (most specific match) and its score (-1 when none).

        Only this method's operations are tried, and of those requiring query keys only the ones whose
        first key the request carries: S3 has ~50 GET operations, a request tries a handful.
        """
        routes = self._routes(service, method)
        candidates: list[OperationInfo] = list(routes.always.get("", ()))
        if segments:
            candidates.extend(routes.always.get(segments[0], ()))
        for key in query:
            found = routes.by_key.get(key)
            if found:
                candidates.extend(found)
        best: str | None = None
        best_score = -1
        for operation in candidates:
            score = operation.match(method, segments, query, headers)
            if score > best_score:
                best, best_score = operation.name, score
        return best, best_score
