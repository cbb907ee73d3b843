"""The committed catalogs are exactly what tools/build_catalogs.py makes of the seed documents, and they
carry the seeds' facts (including where the seeds disagree)."""

from __future__ import annotations

import pytest
from catalog_tool import DATA, SEEDS, load_build_catalogs, seeds_missing_reason

from proxy.catalogs import builtin_catalog_names, load_builtin_catalogs
from proxy.core.catalog import Category, EntryKind, Fault
from proxy.core.model import Protocol

SEED_FILES = ("storagegateway.json", "s3.json", "importexport.json")


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    reason = seeds_missing_reason()
    if reason:
        print(reason)
        pytest.skip(reason)
    outputs: dict[str, bytes] = load_build_catalogs().build_seed_catalogs(SEEDS)
    return outputs


@pytest.mark.parametrize("name", SEED_FILES)
def test_committed_catalog_equals_what_the_script_builds_from_the_seeds(
    generated: dict[str, bytes], name: str
) -> None:
    committed = (DATA / name).read_bytes()
    assert committed == generated[name], f"{name} is stale: run `make catalogs` (tools/build_catalogs.py)"


def test_generation_is_deterministic(generated: dict[str, bytes]) -> None:
    again = load_build_catalogs().build_seed_catalogs(SEEDS)
    assert again == generated
    assert all(data.endswith(b"}\n") for data in generated.values())


def test_every_packaged_file_is_a_valid_catalog() -> None:
    names = builtin_catalog_names()
    assert set(SEED_FILES) <= set(names)
    catalogs = load_builtin_catalogs()
    assert set(catalogs.services) == {name.removesuffix(".json") for name in names}


def test_storagegateway_has_the_17_exceptions_and_the_operation_error_codes() -> None:
    catalog = load_builtin_catalogs().by_service["storagegateway"]
    assert catalog.protocol is Protocol.JSON
    assert catalog.json_version == "1.1"
    exceptions = {c for c, e in catalog.entries.items() if e.kind is EntryKind.EXCEPTION}
    operation_errors = {c for c, e in catalog.entries.items() if e.kind is EntryKind.OPERATION_ERROR}
    assert len(exceptions) == 17
    assert {"InvalidSignatureException", "RequestExpired", "ThrottlingException"} <= exceptions
    assert len(operation_errors) == 36
    assert catalog.wrapper_exceptions == {"InternalServerError", "InvalidGatewayRequestException"}
    volume_not_found = catalog.entries["VolumeNotFound"]
    assert volume_not_found.http_status is None  # the wrapper's status applies
    assert volume_not_found.wrappers == ("InternalServerError", "InvalidGatewayRequestException")
    assert "DescribeStorediSCSIVolumes" in volume_not_found.operations  # seed 000's example
    assert "ListGateways" not in volume_not_found.operations
    assert catalog.entries["ActivationKeyInvalid"].operations == {"ActivateGateway"}
    assert catalog.entries["InvalidSignatureException"].http_status == 400
    assert catalog.entries["InvalidSignatureException"].clock_skew
    assert catalog.entries["ServiceUnavailable"].category is Category.UNAVAILABLE


def test_storagegateway_entries_record_both_renderings_and_their_differences() -> None:
    catalog = load_builtin_catalogs().by_service["storagegateway"]
    for entry in catalog.entries.values():
        assert [fact.source for fact in entry.sources] == ["000", "001"], entry.code
    internal = catalog.entries["InternalServerError"]
    # 000 lost the word "in" before its link; 001 keeps it.
    assert internal.sources[0].message == "One of the operation error code messages Operation Error Codes."
    assert internal.sources[1].message == "One of the operation error code messages in Operation Error Codes."
    assert any("message differs" in note for note in internal.notes)


def test_s3_is_the_union_of_two_servers_with_both_facts_kept() -> None:
    catalog = load_builtin_catalogs().by_service["s3"]
    assert catalog.protocol is Protocol.REST_XML
    # a code split across two lines with a trailing backslash
    long_code = catalog.entries["IllegalVersioningConfigurationException"]
    assert [fact.source for fact in long_code.sources] == ["002", "003"]
    assert "IncorrectNumberOfFilesInPostRequest" in catalog.entries
    assert "ReplicationConfigurationNotFoundError" in catalog.entries  # 003 only, also split
    # only 003 documents these; only 002 nothing the other lacks
    assert [f.source for f in catalog.entries["MPUinProgress"].sources] == ["003"]
    assert catalog.entries["MPUinProgress"].http_status == 409
    # ServiceUnavailable: 002 once, 003 twice with two messages; every fact is kept.
    unavailable = catalog.entries["ServiceUnavailable"]
    assert [f.source for f in unavailable.sources] == ["002", "003"]
    assert unavailable.sources[1].message == "Reduce your request rate."
    alternates = catalog.alternates["ServiceUnavailable"]
    assert [(f.source, f.http_status) for f in alternates] == [("003", 503)]
    assert alternates[0].message == "The request has failed due to a temporary failure of the server."
    assert catalog.documented_statuses("ServiceUnavailable") == (503,)
    # wrapped description cells are joined
    assert catalog.entries["BucketAlreadyOwnedByYou"].message.startswith(
        "The previous request to create the named bucket succeeded and the user already own it."
    )
    assert catalog.entries["SlowDown"].category is Category.THROTTLING
    assert catalog.entries["SlowDown"].retryable
    assert catalog.entries["SignatureDoesNotMatch"].http_status == 403
    assert catalog.entries["NotModified"].http_status == 304


def test_importexport_has_the_query_shape_and_namespace() -> None:
    catalog = load_builtin_catalogs().by_service["importexport"]
    assert catalog.protocol is Protocol.QUERY
    assert catalog.xml_namespace == "http://importexport.amazonaws.com/"
    assert len(catalog.entries) == 20
    # cells broken across lines are joined into one message
    assert catalog.entries["InvalidAccessIdException"].message == (
        "The AWS Access Key ID specified in the request did not match the manifest's accessKeyId value. "
        "The manifest and the request authentication must use the same AWS Access Key ID."
    )
    assert catalog.entries["UnableToCancelJobIdException"].http_status == 409
    assert catalog.entries["UnknownOperationException"].http_status == 403
    assert catalog.entries["UnknownOperationException"].category is Category.VALIDATION
    assert catalog.entries["InvalidClientTokenIdException"].fault is Fault.CLIENT


def test_same_code_different_status_per_service() -> None:
    catalogs = load_builtin_catalogs()
    assert catalogs.lookup("storagegateway", "UnknownOperationException").http_status == 400  # type: ignore[union-attr]
    assert catalogs.lookup("importexport", "UnknownOperationException").http_status == 403  # type: ignore[union-attr]
    assert catalogs.lookup("s3", "VolumeNotFound") is None
