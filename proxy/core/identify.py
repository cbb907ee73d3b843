"""Identify a request: protocol, service, operation, signing name, region, API version.

Evidence, strongest first:
- AWS JSON 1.0/1.1: `x-amz-target: <TargetPrefix>.<Operation>` (with `application/x-amz-json-1.x`);
  `StorageGateway_20120630.ListGateways` -> storagegateway / ListGateways.
- Query / EC2: `Action` (and `Version`) in the query string or an `application/x-www-form-urlencoded`
  body (the handler passes the bounded body as `form_body`).
- The credential scope's service (Authorization header or X-Amz-Credential): the signing name. This
  comes before the host, because custom endpoints (`127.0.0.1:4566`) say nothing about the service.
- The host: `<endpointPrefix>.<region>.amazonaws.com`, S3 path-style and virtual-hosted buckets.
- REST-JSON / REST-XML operations: method + path + query (+ required headers) matched against each
  operation's `requestUri` in the service model.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from proxy.core.frozen import remember
from proxy.core.model import Protocol, RequestHead, RequestIdentity
from proxy.core.services import ServiceIndex, ServiceInfo, target_family
from proxy.core.sigv4.auth import is_sigv2_query

_FORM = "application/x-www-form-urlencoded"
_JSON_CONTENT_TYPES = {"application/x-amz-json-1.0": "1.0", "application/x-amz-json-1.1": "1.1"}
_AWS_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")
# What a Host names: (S3 bucket, service, region), each None when it names none.
_HostFacts = tuple[str | None, ServiceInfo | None, str | None]


def _credential_scope(head: RequestHead) -> tuple[str | None, str | None]:
    """(region, service) of the credential scope, from the Authorization header or X-Amz-Credential.

    Best effort on malformed values too (the checks report those): `key/date/region/service[/term]`,
    SigV4A's `key/date/service/aws4_request` (no region), and S3's SigV2 header `AWS key:signature` and
    SigV2 query string (`AWSAccessKeyId`, `Signature`, `Expires`).
    """
    credential: str | None = None
    authorization = head.get("authorization")
    if authorization:
        if authorization.startswith("AWS ") and ":" in authorization:
            return None, "s3"  # the SigV2 Authorization header is S3's
        start = authorization.find("Credential=")
        if start >= 0:
            credential = authorization[start + 11 :].split(",", 1)[0].strip()
    elif "X-Amz-Credential=" in head.query:
        for pair in head.query.split("&"):
            if pair.startswith("X-Amz-Credential="):
                credential = unquote_plus(pair[17:])
                break
    elif is_sigv2_query(head.query):
        return None, "s3"  # SigV2 query-string authentication is S3's
    if not credential:
        return None, None
    parts = credential.split("/")
    if authorization is not None and authorization.startswith("AWS4-ECDSA-P256-SHA256") and len(parts) == 4:
        return None, parts[2] or None
    if len(parts) < 4:
        return None, None
    return parts[2] or None, parts[3] or None


def _query_map(query: str) -> dict[str, str]:
    """Decoded query parameters (first value of each key wins)."""
    params: dict[str, str] = {}
    if not query:
        return params
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        if "%" in key or "+" in key:
            key = unquote_plus(key)
        if key not in params:
            params[key] = unquote_plus(value) if ("%" in value or "+" in value) else value
    return params


def _action_and_version(params: dict[str, str], form_body: bytes | None) -> tuple[str | None, str | None]:
    action, version = params.get("Action"), params.get("Version")
    if action is None and form_body:
        body = _query_map(form_body.decode("utf-8", "replace"))
        action, version = body.get("Action"), body.get("Version") or version
    return action, version


def _host_name(host_value: str | None) -> str:
    host = (host_value or "").strip().lower()
    if host.startswith("["):  # IPv6 literal
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _aws_host_labels(host: str) -> list[str] | None:
    """The labels before `amazonaws.com[.cn]`, or None for a non-AWS host."""
    for suffix in _AWS_SUFFIXES:
        if host.endswith(suffix):
            return host[: -len(suffix)].split(".")
    return None


def _s3_host(labels: list[str]) -> tuple[str | None, str | None] | None:
    """(bucket, region) for an S3 host: `[bucket.]s3[.dualstack][.<region>]` or `[bucket.]s3-<region>`."""
    # Right to left: a bucket name may itself start with "s3-" (`s3-logs.s3.amazonaws.com`).
    for index in range(len(labels) - 1, -1, -1):
        label = labels[index]
        if label == "s3" or label.startswith("s3-"):
            bucket = ".".join(labels[:index]) or None
            rest = [part for part in labels[index + 1 :] if part not in ("dualstack", "accelerate")]
            region = rest[0] if rest else None
            if region is None and label.startswith("s3-") and label not in ("s3-accelerate", "s3-external-1"):
                region = label[3:]
            return bucket, region
    return None


def _endpoint_service(labels: list[str], index: ServiceIndex) -> tuple[ServiceInfo | None, str | None]:
    """`<endpointPrefix>[.<region>]` (the prefix may itself contain dots: `runtime.sagemaker`)."""
    for cut in range(len(labels), 0, -1):
        found = index.by_endpoint_prefix(".".join(labels[:cut]))
        if found:
            region = labels[cut] if cut < len(labels) else None
            return found[0], region
    return None, None


def host_region(head: RequestHead) -> str | None:
    """The region an AWS host names (`sts.eu-west-1.amazonaws.com`, `b.s3.us-west-2.amazonaws.com`),
    None for a host that names none (global endpoints, custom endpoints such as 127.0.0.1:4566)."""
    host_value = head.host
    try:
        return _HOST_REGIONS[host_value]
    except KeyError:
        return remember(_HOST_REGIONS, host_value, _host_region(host_value), _MEMO_LIMIT)


_HOST_REGIONS: dict[str | None, str | None] = {}  # Host value -> host_region(), a pure function of it


def _host_region(host_value: str | None) -> str | None:
    labels = _aws_host_labels(_host_name(host_value))
    if labels is None:
        return None
    s3 = _s3_host(labels)
    if s3 is not None:
        return s3[1]
    return labels[-1] if len(labels) >= 2 and labels[-1].count("-") >= 2 else None


def _prefer(candidates: tuple[ServiceInfo, ...], signing_name: str | None) -> ServiceInfo | None:
    if not candidates:
        return None
    if signing_name:
        for service in candidates:
            if service.signing_name == signing_name:
                return service
    return candidates[0]


def _json_identity(
    target: str, index: ServiceIndex, region: str | None, signing: str | None
) -> RequestIdentity:
    prefix, dot, operation = target.strip().rpartition(".")
    candidates = index.by_target_prefix(prefix) if dot else ()
    if len(candidates) > 1:  # e.g. Timestream_20181101: timestream-query and timestream-write
        serving = tuple(service for service in candidates if operation in index.operations(service.name))
        candidates = serving or candidates
    service = _prefer(candidates, signing)
    if service is None and signing:
        service = _prefer(
            tuple(s for s in index.by_signing_name(signing) if s.speaks(Protocol.JSON)), signing
        )
    family_version = prefix[len(target_family(prefix)) + 1 :] if dot else ""
    api_version = family_version or (service.api_version if service else None)
    return RequestIdentity(
        protocol=Protocol.JSON,
        service=service.name if service else None,
        operation=(operation or None) if dot else None,
        signing_name=signing or (service.signing_name if service else None),
        region=region,
        api_version=api_version or None,
    )


_MEMO_LIMIT = 1024


def _host_facts(host_value: str | None, index: ServiceIndex) -> _HostFacts:
    """(bucket, service, region) an AWS host names; all None for another host. Memoised per Host value."""
    memo: dict[str | None, _HostFacts] = index.memo("identify.host")
    found = memo.get(host_value)
    if found is not None:
        return found
    labels = _aws_host_labels(_host_name(host_value))
    facts: _HostFacts = (None, None, None)
    if labels is not None:
        s3 = _s3_host(labels)
        if s3 is not None:
            facts = (s3[0], index.service("s3"), s3[1])
        else:
            host_service, region = _endpoint_service(labels, index)
            facts = (None, host_service, region)
    return remember(memo, host_value, facts, _MEMO_LIMIT)


def identify(head: RequestHead, index: ServiceIndex, form_body: bytes | None = None) -> RequestIdentity:
    """What this request is, as far as the evidence goes (unknown parts stay None).

    An AWS JSON request's identity depends only on its Host, x-amz-target and credential scope, which a
    client repeats on every call: it is memoised on the index (bounded), a hit returns the same frozen
    RequestIdentity.
    """
    region, signing = _credential_scope(head)
    host_value = head.host

    target = head.get("x-amz-target")
    if target:
        # A SigV2 `AWS key:signature` header says "S3" only when nothing stronger does.
        sigv2_header = (head.get("authorization") or "").startswith("AWS ")
        key = (host_value, target, region, signing, sigv2_header)
        memo: dict[tuple[str | None, str, str | None, str | None, bool], RequestIdentity]
        memo = index.memo("identify.json")
        found = memo.get(key)
        if found is None:
            host_region = _host_facts(host_value, index)[2]
            found = _json_identity(target, index, region or host_region, None if sigv2_header else signing)
            remember(memo, key, found, _MEMO_LIMIT)
        return found

    bucket, host_service, host_region = _host_facts(host_value, index)
    region = region or host_region

    params = _query_map(head.query)
    content_type = (head.get("content-type") or "").split(";", 1)[0].strip().lower()
    action, version = _action_and_version(params, form_body if content_type == _FORM else None)

    candidates: tuple[ServiceInfo, ...] = index.by_signing_name(signing) if signing else ()
    if not candidates and host_service is not None:
        candidates = (host_service,)

    if action is not None:
        query_services = tuple(s for s in candidates if s.speaks(Protocol.QUERY) or s.speaks(Protocol.EC2))
        service = _prefer(query_services or candidates, signing)
        protocol = (
            Protocol.EC2 if service is not None and service.protocol is Protocol.EC2 else Protocol.QUERY
        )
        return RequestIdentity(
            protocol=protocol,
            service=service.name if service else None,
            operation=action or None,
            signing_name=signing or (service.signing_name if service else None),
            region=region,
            api_version=version or None,  # as sent: the Version check needs to know it is absent
        )

    if content_type in _JSON_CONTENT_TYPES:
        json_services = tuple(s for s in candidates if s.speaks(Protocol.JSON))
        if json_services:
            service = _prefer(json_services, signing)
            assert service is not None
            return RequestIdentity(
                protocol=Protocol.JSON,
                service=service.name,
                signing_name=signing or service.signing_name,
                region=region,
                api_version=service.api_version or None,
            )

    segments = [segment for segment in head.path.split("/") if segment]
    if bucket is not None:
        segments.insert(0, bucket)
    rest = tuple(s for s in candidates if s.protocol in (Protocol.REST_XML, Protocol.REST_JSON))
    if not rest:
        service = _prefer(candidates, signing)
        return RequestIdentity(
            protocol=service.protocol if service else Protocol.UNKNOWN,
            service=service.name if service else None,
            signing_name=signing or (service.signing_name if service else None),
            region=region,
            api_version=(service.api_version or None) if service else None,
        )
    method = head.method.upper()
    header_names = head.header_names
    best: tuple[int, ServiceInfo, str | None] | None = None
    for service in rest:
        operation, score = index.match_rest_operation(service.name, method, segments, params, header_names)
        # Ties go to the service whose name is the signing name (s3 over s3control).
        rank = 2 * score + (service.name == signing)
        if best is None or rank > best[0]:
            best = (rank, service, operation)
    assert best is not None
    _, service, operation = best
    return RequestIdentity(
        protocol=service.protocol,
        service=service.name,
        operation=operation,
        signing_name=signing or service.signing_name,
        region=region,
        api_version=service.api_version or None,
    )
