"""Build the core's ServiceIndex from botocore's service models.

botocore ships one `service-2.json(.gz)` per service and API version; these are the models every AWS
SDK is generated from. The proxy needs only a little of each: the `metadata` block (protocol, target
prefix, signing name, ...) and, per operation, its HTTP binding and required query/header members.

Serving reads that little from a precomputed index, `proxy/service_index.txt`, generated from the
installed botocore's data by `python -m proxy.service_models` (a test checks that it matches). It
costs ~20 ms and under 1 MB at start-up, where building it from botocore's files at run time imports
botocore's loader (with urllib3 and dateutil: ~4 MB), keeps its endpoint data, and on a service's first
request parses and caches its whole model (S3: ~7 MB, paid inside that first request).

The index is built from botocore's files as before (metadata at start-up, a service's operations on
first use) when the file could disagree with what botocore would load: another botocore version is
installed, or `~/.aws/models` may add or override models (botocore's loader searches it first).

Not part of the pure core: it reads files (and, for building, imports botocore).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import json
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import botocore

from proxy.core.model import Protocol
from proxy.core.services import PROTOCOLS, OperationInfo, ServiceIndex, ServiceInfo

_MODEL = "service-2"
_HEAD_BYTES = 4096

INDEX_PATH = Path(__file__).with_name("service_index.txt")
INDEX_FORMAT = 1
# botocore.loaders.Loader.CUSTOMER_DATA_PATH: searched before botocore's own data.
CUSTOMER_DATA_PATH = Path(os.path.expanduser("~")) / ".aws" / "models"


class OperationRow(NamedTuple):
    """What the index keeps of one operation: the arguments of OperationInfo.from_http."""

    name: str
    http_method: str = "POST"
    request_uri: str = "/"
    required_query_members: tuple[str, ...] = ()
    required_header_members: tuple[str, ...] = ()
    deprecated: bool = False

    def operation(self) -> OperationInfo:
        return OperationInfo.from_http(
            self.name,
            self.http_method,
            self.request_uri,
            required_query_members=self.required_query_members,
            required_header_members=self.required_header_members,
            deprecated=self.deprecated,
        )


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


def operation_rows(model: Mapping[str, Any]) -> Iterator[OperationRow]:
    """Every operation of a full model: its HTTP binding and required query/header members."""
    shapes = model.get("shapes", {})
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
        yield OperationRow(
            name,
            http.get("method", "POST"),
            http.get("requestUri", "/"),
            tuple(query_members),
            tuple(header_members),
            bool(operation.get("deprecated", False)),
        )


def _operations(rows: Iterator[OperationRow]) -> Mapping[str, OperationInfo]:
    return MappingProxyType({row.name: row.operation() for row in rows})


def operations_from_model(model: Mapping[str, Any]) -> Mapping[str, OperationInfo]:
    """Every operation of a full model with its HTTP binding and required query/header members."""
    return _operations(operation_rows(model))


class BotocoreModels:
    """botocore's installed models, read as its loader reads them (latest API version of each)."""

    def __init__(self) -> None:
        import botocore.loaders

        self.loader = botocore.loaders.create_loader()
        self.versions: dict[str, str] = {}

    def services(self) -> Iterator[ServiceInfo]:
        import botocore.exceptions

        scope_services = credential_scope_services(self.loader.load_data("endpoints"))
        for name in self.loader.list_available_services(_MODEL):
            try:
                version = self.loader.determine_latest_version(name, _MODEL)
                path = _model_file(self.loader, name, version)
                if path is None:
                    continue
                info = service_info(name, _read_metadata(path), scope_services)
            except (OSError, ValueError, botocore.exceptions.DataNotFoundError):
                continue
            self.versions[name] = version
            yield info

    def operation_rows(self, name: str) -> Iterator[OperationRow]:
        return operation_rows(self.loader.load_service_model(name, _MODEL, self.versions[name]))


def index_from_botocore(models: BotocoreModels | None = None) -> ServiceIndex:
    """The index read from botocore's files: metadata now, a service's operations on first use."""
    models = models or BotocoreModels()
    services = {info.name: info for info in models.services()}
    # The index memoises what the loader returns: each model is parsed at most once.
    return ServiceIndex(
        services=services, operations_loader=lambda name: _operations(models.operation_rows(name))
    )


# -- the precomputed index file ---------------------------------------------------------------------
# Line 1: a header, {"format": 1, "botocore": "<version>", "services": <count>}. Then one line per
# service: `name TAB ServiceInfo JSON TAB operations JSON` (compact JSON never holds a raw tab). Fields
# equal to their default are left out; an operation is its name alone when it is `POST /` with nothing
# required, else the list of OperationRow's fields without its trailing defaults.

_SERVICE_DEFAULTS = ServiceInfo(name="", protocol=Protocol.UNKNOWN)


def _service_json(info: ServiceInfo) -> dict[str, Any]:
    fields = {}
    for field in dataclasses.fields(ServiceInfo):
        value = getattr(info, field.name)
        if field.name == "protocol" or value != getattr(_SERVICE_DEFAULTS, field.name):
            fields[field.name] = value
    del fields["name"]  # the line's first column
    return fields


def _row_json(row: OperationRow) -> str | list[Any]:
    values = list(row)
    defaults = list(OperationRow._field_defaults.values())  # every field's but the name's
    while len(values) > 1 and values[-1] == defaults[len(values) - 2]:
        values.pop()
    return row.name if len(values) == 1 else values


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def index_text(models: BotocoreModels | None = None) -> str:
    """The whole index file, from botocore's installed models (reads every model: a few seconds)."""
    models = models or BotocoreModels()
    services = sorted(models.services(), key=lambda info: info.name)
    header = {"format": INDEX_FORMAT, "botocore": botocore.__version__, "services": len(services)}
    lines = [_compact(header)]
    for info in services:
        rows = [_row_json(row) for row in models.operation_rows(info.name)]
        lines.append(f"{info.name}\t{_compact(_service_json(info))}\t{_compact(rows)}")
    return "\n".join(lines) + "\n"


def _service_from_json(name: str, fields: dict[str, Any]) -> ServiceInfo:
    fields["protocol"] = Protocol(fields["protocol"])
    fields["protocols"] = tuple(fields.get("protocols", ()))
    return ServiceInfo(name=name, **fields)


def _rows_from_json(text: bytes) -> Iterator[OperationRow]:
    for item in json.loads(text):
        if isinstance(item, str):
            yield OperationRow(item)
        else:
            name, *rest = item
            if len(rest) >= 3:
                rest[2] = tuple(rest[2])
            if len(rest) >= 4:
                rest[3] = tuple(rest[3])
            yield OperationRow(name, *rest)


def index_from_lines(lines: Iterable[bytes]) -> ServiceIndex:
    """A ServiceIndex from the index file's lines; operations decoded on a service's first use.

    Each service's operations stay zlib-compressed until then (~200 KB instead of ~1 MB of text).
    """
    iterator = iter(lines)
    header = json.loads(next(iterator))
    if header.get("format") != INDEX_FORMAT:
        raise ValueError(f"not a format-{INDEX_FORMAT} service index")
    services: dict[str, ServiceInfo] = {}
    packed: dict[str, bytes] = {}
    for line in iterator:
        name_bytes, info, operations = line.rstrip(b"\n").split(b"\t")
        name = name_bytes.decode()
        services[name] = _service_from_json(name, json.loads(info))
        packed[name] = zlib.compress(operations, 1)
    if len(services) != header.get("services"):
        raise ValueError(f"{len(services)} services where the header says {header.get('services')}")

    def load_operations(name: str) -> Mapping[str, OperationInfo]:
        return _operations(_rows_from_json(zlib.decompress(packed[name])))

    return ServiceIndex(services=services, operations_loader=load_operations)


def precomputed_index_usable(path: Path = INDEX_PATH, customer_data: Path = CUSTOMER_DATA_PATH) -> str | None:
    """Why the index file cannot stand in for botocore's models here, or None when it can."""
    if customer_data.is_dir():
        return f"{customer_data} may add or override service models"
    try:
        with path.open("rb") as stream:
            header = json.loads(stream.readline())
    except (OSError, ValueError) as exc:
        return f"{path}: {exc}"
    built_from, installed = header.get("botocore"), botocore.__version__
    if built_from != installed:
        return f"{path} was built from botocore {built_from}, botocore {installed} is installed"
    return None


@functools.cache
def load_service_index() -> ServiceIndex:
    """The index of every service botocore knows (latest API version of each), operations lazily."""
    if precomputed_index_usable() is None:
        try:
            with INDEX_PATH.open("rb") as lines:
                return index_from_lines(lines)
        except (OSError, ValueError):
            pass
    return index_from_botocore()


def main(argv: list[str] | None = None) -> int:
    """`python -m proxy.service_models [--check]`: write (or check) the index file from botocore."""
    args = sys.argv[1:] if argv is None else argv
    text = index_text()
    if args == ["--check"]:
        current = INDEX_PATH.read_text() if INDEX_PATH.is_file() else ""
        if current != text:
            print(f"{INDEX_PATH} is out of date: run `python -m proxy.service_models`", file=sys.stderr)
            return 1
        print(f"{INDEX_PATH}: up to date (botocore {botocore.__version__})")
        return 0
    INDEX_PATH.write_text(text)
    print(f"{INDEX_PATH}: {text.count(chr(10)) - 1} services from botocore {botocore.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
