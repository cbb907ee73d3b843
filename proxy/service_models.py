"""Build the core's ServiceIndex from botocore's installed service models.

botocore ships one `service-2.json(.gz)` per service and API version; these are the models every AWS
SDK is generated from. Building the index reads only the `metadata` block of each model (it comes
first in the file, so a few KiB of each are decompressed: ~0.1 s for all ~450 services). A service's
operations are parsed on first use and cached.

Not part of the pure core: it reads files and imports botocore.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import botocore.loaders

from proxy.core.model import Protocol
from proxy.core.services import PROTOCOLS, OperationInfo, ServiceIndex, ServiceInfo

_MODEL = "service-2"
_HEAD_BYTES = 4096


def _model_file(loader: Any, service: str, version: str) -> Path | None:
    for root in loader.search_paths:
        for suffix in (".json", ".json.gz"):
            candidate = Path(root) / service / version / f"{_MODEL}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _read_metadata(path: Path) -> dict[str, Any]:
    """The `metadata` object of a model, decoding only as much of the file as it takes."""
    opener = gzip.open if path.suffix == ".gz" else open
    decoder = json.JSONDecoder()
    with opener(path, "rb") as stream:
        text = b""
        while True:
            block = stream.read(_HEAD_BYTES)
            text += block
            decoded = text.decode("utf-8", "ignore")
            start = decoded.find('"metadata"')
            if start >= 0:
                brace = decoded.find("{", start)
                if brace >= 0:
                    try:
                        metadata, _ = decoder.raw_decode(decoded, brace)
                    except json.JSONDecodeError:
                        metadata = None
                    if isinstance(metadata, dict):
                        return metadata
            if not block:
                raise ValueError(f"{path}: no metadata object")


def credential_scope_services(endpoints: Mapping[str, Any]) -> dict[str, str]:
    """Endpoint prefix -> the service name SDKs put in the credential scope, where botocore's endpoint
    data overrides it (`credentialScope.service`): e.g. Import/Export signs as `IngestionService`."""
    found: dict[str, set[str]] = {}
    for partition in endpoints.get("partitions", ()):
        for prefix, service in partition.get("services", {}).items():
            scopes = [service.get("defaults", {}), *service.get("endpoints", {}).values()]
            for scope in scopes:
                name = scope.get("credentialScope", {}).get("service")
                if name:
                    found.setdefault(prefix, set()).add(name)
    return {prefix: next(iter(names)) for prefix, names in found.items() if len(names) == 1}


def service_info(
    name: str, metadata: Mapping[str, Any], scope_services: Mapping[str, str] | None = None
) -> ServiceInfo:
    """A ServiceInfo from a model's metadata block (and the endpoint data's credential scopes)."""
    protocols = tuple(metadata.get("protocols") or (metadata.get("protocol", ""),))
    primary = next((PROTOCOLS[p] for p in protocols if p in PROTOCOLS), None)
    if primary is None:
        primary = PROTOCOLS.get(metadata.get("protocol", ""), Protocol.UNKNOWN)
    endpoint_prefix = metadata.get("endpointPrefix", name)
    # botocore's signer takes the model's signingName, else the endpoint's credentialScope service,
    # else the endpoint prefix.
    signing_name = metadata.get("signingName") or (scope_services or {}).get(endpoint_prefix, endpoint_prefix)
    return ServiceInfo(
        name=name,
        protocol=primary,
        api_version=metadata.get("apiVersion", ""),
        protocols=protocols,
        json_version=metadata.get("jsonVersion"),
        target_prefix=metadata.get("targetPrefix"),
        signing_name=signing_name,
        endpoint_prefix=endpoint_prefix,
        xml_namespace=metadata.get("xmlNamespace"),
        global_endpoint=metadata.get("globalEndpoint"),
    )


def operations_from_model(model: Mapping[str, Any]) -> Mapping[str, OperationInfo]:
    """Every operation of a full model with its HTTP binding and required query/header members."""
    shapes = model.get("shapes", {})
    operations: dict[str, OperationInfo] = {}
    for name, operation in model.get("operations", {}).items():
        http = operation.get("http", {})
        input_shape = shapes.get(operation.get("input", {}).get("shape", ""), {})
        required = set(input_shape.get("required", ()))
        query_members: list[str] = []
        header_members: list[str] = []
        for member_name, member in input_shape.get("members", {}).items():
            if member_name not in required:
                continue
            location = member.get("location")
            wire_name = member.get("locationName", member_name)
            if location == "querystring":
                query_members.append(wire_name)
            elif location == "header":
                header_members.append(wire_name)
        operations[name] = OperationInfo.from_http(
            name,
            http.get("method", "POST"),
            http.get("requestUri", "/"),
            required_query_members=query_members,
            required_header_members=header_members,
            deprecated=bool(operation.get("deprecated", False)),
        )
    return MappingProxyType(operations)


@functools.cache
def load_service_index() -> ServiceIndex:
    """The index of every service botocore knows (latest API version of each), operations lazily."""
    loader = botocore.loaders.create_loader()
    services: dict[str, ServiceInfo] = {}
    versions: dict[str, str] = {}
    scope_services = credential_scope_services(loader.load_data("endpoints"))
    for name in loader.list_available_services(_MODEL):
        try:
            version = loader.determine_latest_version(name, _MODEL)
            path = _model_file(loader, name, version)
            if path is None:
                continue
            services[name] = service_info(name, _read_metadata(path), scope_services)
            versions[name] = version
        except (OSError, ValueError, botocore.exceptions.DataNotFoundError):
            continue

    def load_operations(name: str) -> Mapping[str, OperationInfo]:
        return operations_from_model(loader.load_service_model(name, _MODEL, versions[name]))

    # The index memoises what the loader returns: each model is parsed at most once.
    return ServiceIndex(services=services, operations_loader=load_operations)
