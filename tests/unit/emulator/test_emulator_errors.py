"""ErrorBook: every catalog entry of every service can be forced, with the catalog's status and message."""

from __future__ import annotations

import pytest

from proxy.core.catalog import EntryKind
from proxy.emulator.errors import ErrorBook, UnknownErrorCode


def test_every_catalog_entry_can_be_forced(books: dict[str, ErrorBook]) -> None:
    forced = 0
    for book in books.values():
        for code, entry in book.catalog.entries.items():
            error = book.forced(code)
            if entry.kind is EntryKind.OPERATION_ERROR:
                assert error.operation_error == code
                assert error.message == entry.message
                wrapper = book.catalog.entries[error.code]
                assert error.status == wrapper.http_status
            else:
                assert (error.code, error.status, error.message) == (code, entry.http_status, entry.message)
            forced += 1
    assert forced == sum(len(book.catalog.entries) for book in books.values()) > 150


def test_storage_gateway_wrappers(books: dict[str, ErrorBook]) -> None:
    sg = books["storagegateway"]
    assert (sg.forced("GatewayNotFound").code, sg.forced("GatewayNotFound").status) == (
        "InvalidGatewayRequestException",
        400,
    )
    internal = sg.forced("GatewayInternalError")
    assert (internal.code, internal.status, internal.sender_fault) == ("InternalServerError", 500, False)
    explicit = sg.forced("InternalServerError/VolumeNotFound")
    assert (explicit.code, explicit.operation_error, explicit.status) == (
        "InternalServerError",
        "VolumeNotFound",
        500,
    )
    for spec in ("NoSuchCode", "InvalidGatewayRequestException/NoSuchCode", "GatewayNotFound/VolumeNotFound"):
        with pytest.raises(UnknownErrorCode):
            sg.forced(spec)
    with pytest.raises(UnknownErrorCode):
        books["s3"].forced("ThrottlingException")
