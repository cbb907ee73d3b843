"""Every catalog row, rendered in its service's wire format, is classified back to the same exception,
code and category, with no contract finding."""

from __future__ import annotations

import pytest

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import CatalogEntry, EntryKind, Fault, ServiceCatalog, SourceFact
from proxy.core.errors.classify import ContractCheck, annotation_error, classify, metric_code
from proxy.core.errors.extract import BodyState, extract_error
from proxy.core.model import AwsError
from proxy.core.render import render_error

CATALOGS = load_builtin_catalogs()
SEED_SERVICES = ("storagegateway", "s3", "importexport")


def rows(kind: EntryKind) -> list[tuple[str, str]]:
    return [
        (service, code)
        for service in SEED_SERVICES
        for code, entry in CATALOGS.by_service[service].entries.items()
        if entry.kind is kind
    ]


def alternate_rows() -> list[tuple[str, str, int]]:
    return [
        (service, code, i)
        for service in SEED_SERVICES
        for code, facts in CATALOGS.by_service[service].alternates.items()
        for i in range(len(facts))
    ]


def render(catalog: ServiceCatalog, error: AwsError) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    rendered = render_error(
        catalog.protocol,
        error,
        "roundtrip-request-id",
        json_version=catalog.json_version or "1.1",
        xml_namespace=catalog.xml_namespace,
        host_id="roundtrip-host-id",
    )
    return rendered.status, rendered.headers, rendered.body


def check_exception(catalog: ServiceCatalog, entry: CatalogEntry, fact: SourceFact) -> None:
    assert fact.http_status is not None
    error = AwsError(entry.code, fact.http_status, fact.message, sender_fault=entry.fault is Fault.CLIENT)
    status, headers, body = render(catalog, error)
    info = extract_error(catalog.protocol, status, headers, body)
    assert info.body_state is BodyState.PARSED
    assert info.message == fact.message
    assert info.request_id == "roundtrip-request-id"
    result = classify(info, catalog.service, None, CATALOGS)
    assert (result.exception, result.code, result.category) == (entry.code, entry.code, entry.category)
    assert result.documented
    # A wrapper exception alone breaks its own contract: it must carry an operation error code.
    expected = [ContractCheck.MISSING_OPERATION_ERROR] if entry.code in catalog.wrapper_exceptions else []
    assert [finding.check for finding in result.findings] == expected
    assert result.fault is entry.fault
    assert result.clock_skew is entry.clock_skew
    assert result.documented_status == entry.http_status
    assert metric_code(result, CATALOGS) == entry.code
    assert annotation_error(result) == f"{entry.code}/{entry.code}"


@pytest.mark.parametrize(("service", "code"), rows(EntryKind.EXCEPTION))
def test_exception_row_round_trips(service: str, code: str) -> None:
    catalog = CATALOGS.by_service[service]
    entry = catalog.entries[code]
    check_exception(catalog, entry, entry.sources[0])
    for fact in entry.sources[1:]:  # every agreeing source's wording too
        check_exception(catalog, entry, fact)


@pytest.mark.parametrize(("service", "code", "index"), alternate_rows())
def test_alternate_fact_round_trips(service: str, code: str, index: int) -> None:
    catalog = CATALOGS.by_service[service]
    check_exception(catalog, catalog.entries[code], catalog.alternates[code][index])


@pytest.mark.parametrize(("service", "code"), rows(EntryKind.OPERATION_ERROR))
def test_operation_error_row_round_trips_in_each_wrapper(service: str, code: str) -> None:
    catalog = CATALOGS.by_service[service]
    entry = catalog.entries[code]
    operation = sorted(entry.operations)[0]
    assert entry.wrappers
    for wrapper_code in entry.wrappers:
        wrapper = catalog.entries[wrapper_code]
        assert wrapper.http_status is not None
        error = AwsError(wrapper_code, wrapper.http_status, entry.message, operation_error=code)
        status, headers, body = render(catalog, error)
        info = extract_error(catalog.protocol, status, headers, body)
        assert (info.code, info.operation_error) == (wrapper_code, code)
        result = classify(info, service, operation, CATALOGS)
        assert (result.exception, result.code, result.operation_error) == (wrapper_code, wrapper_code, code)
        assert result.category is entry.category
        assert result.findings == ()
        assert result.documented_status == wrapper.http_status
        assert metric_code(result, CATALOGS) == code
        assert annotation_error(result) == f"{wrapper_code}/{code}"
