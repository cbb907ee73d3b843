"""The table parsers of tools/build_catalogs.py on small documents in each seed's format."""

from __future__ import annotations

import textwrap
from types import ModuleType

import pytest
from catalog_tool import load_build_catalogs


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return load_build_catalogs()


GRID = textwrap.dedent(
    """\
    .. table::

       +-----------------------------------+------+-------------------------------+
       | Error                             | Code | Description                   |
       +===================================+======+===============================+
       | IllegalVersioningConfiguration\\   | 400  | Indicates that the versioning |
       | Exception                         |      | configuration is invalid.     |
       +-----------------------------------+------+-------------------------------+
       | ServiceUnavailable                | 503  | Reduce your request rate.     |
       +-----------------------------------+------+-------------------------------+
       | ServiceUnavailable                | 503  | The request has failed.       |{trailing}
       +-----------------------------------+------+-------------------------------+
       | Weird\\_Escape                     | 400  | A \\*literal\\* star and        |
       |                                   |      |  double  spaces.              |
       +-----------------------------------+------+-------------------------------+

    Prose after the table.
    """
).format(trailing="   ")  # the seeds have trailing blanks after some rows


def test_grid_table_joins_wrapped_cells_and_backslash_split_codes(tool: ModuleType) -> None:
    [table] = tool.parse_rst_tables(GRID)
    assert table.header == ["Error", "Code", "Description"]
    assert table.rows == [
        [
            "IllegalVersioningConfigurationException",
            "400",
            "Indicates that the versioning configuration is invalid.",
        ],
        ["ServiceUnavailable", "503", "Reduce your request rate."],
        ["ServiceUnavailable", "503", "The request has failed."],
        ["Weird_Escape", "400", "A *literal* star and double spaces."],
    ]


def test_grid_table_rows_keep_repeated_codes(tool: ModuleType) -> None:
    codes_only = GRID[: GRID.index("   | Weird")] + "\n"
    rows = tool.s3_rows(codes_only, "003", {"code": "Error", "status": "Code", "message": "Description"}, {})
    assert [(r.code, r.status, r.message) for r in rows] == [
        (
            "IllegalVersioningConfigurationException",
            400,
            "Indicates that the versioning configuration is invalid.",
        ),
        ("ServiceUnavailable", 503, "Reduce your request rate."),
        ("ServiceUnavailable", 503, "The request has failed."),
    ]


def test_grid_table_rows_refuse_a_cell_that_is_not_a_code(tool: ModuleType) -> None:
    with pytest.raises(tool.SeedFormatError, match="'Weird_Escape' is not an error code"):
        tool.s3_rows(GRID, "003", {"code": "Error", "status": "Code", "message": "Description"}, {})


def test_grid_table_refuses_a_spanning_cell(tool: ModuleType) -> None:
    spanning = "+----+----+\n| a  | b  |\n+----+----+\n| wide    |\n+---------+\n"
    with pytest.raises(tool.SeedFormatError, match="spanning"):
        tool.parse_rst_tables(spanning)


SIMPLE = textwrap.dedent(
    """\
    =====================  ======  ==========================
    Error                  Code    Description
    =====================  ======  ==========================
    NoSuchKey              404     The specified key does not
                                   exist.
    RequestTimeTooSkewed\\   403     Clock skew.
    =====================  ======  ==========================
    """
)


def test_simple_table_continuation_lines(tool: ModuleType) -> None:
    [table] = tool.parse_rst_tables(SIMPLE)
    assert table.header == ["Error", "Code", "Description"]
    assert table.rows[0] == ["NoSuchKey", "404", "The specified key does not exist."]
    assert table.rows[1][1:] == ["403", "Clock skew."]


# Seed 000's rows end with "| " (a trailing blank).
MARKDOWN = "\n".join(
    [
        "| Exception | Message  | HTTP Status Code | ",
        "| --- | --- | --- | ",
        "| InternalServerError | One of the messages in [Operation Error Codes](#APIOperationErrorCodes)\\. "
        "| 500 Internal Server Error | ",
        "| InvalidClientTokenId | The X\\.509 certificate \\(or key\\) does not exist\\.  | 403 Forbidden | ",
    ]
)


def test_markdown_table_unescapes_and_drops_links(tool: ModuleType) -> None:
    [table] = tool.parse_markdown_tables(MARKDOWN)
    assert table.header == ["Exception", "Message", "HTTP Status Code"]
    cells = [[tool.markdown_text(cell) for cell in row] for row in table.rows]
    assert cells[0] == [
        "InternalServerError",
        "One of the messages in Operation Error Codes.",
        "500 Internal Server Error",
    ]
    assert cells[1][1] == "The X.509 certificate (or key) does not exist."
    assert tool.status_of(cells[1][2], "t") == 403


def test_markdown_operation_cell_is_a_list_of_links(tool: ModuleType) -> None:
    cell = " [AddCache](https://x/API_AddCache.html) [AddUploadBuffer](https://x/API_AddUploadBuffer.html) "
    assert tool.markdown_links(cell) == ["AddCache", "AddUploadBuffer"]


PLAIN = textwrap.dedent(
    """\
    Exceptions

    ExceptionMessage HTTP Status Code
    ThrottlingExceptionRate exceeded.400 Bad Request
    InternalFailureThe request processing has failed. 500 Internal Server Error

    Operation Error Codes

    Operation Error CodeMessageOperations That Return this Error Code
    ActivationKeyExpiredThe specified activation key has expired.ActivateGateway
    GatewayInternalErrorA gateway internal error occurred.

    AddCache

    AddUploadBuffer
    VolumeNotReadyThe specified volume is not ready.CreateSnapshot

    CreateSnapshotFromVolumeRecoveryPoint

    Error Responses
    """
)


def test_plain_text_rendering_splits_glued_cells(tool: ModuleType) -> None:
    exceptions, operations = tool.storagegateway_plain(PLAIN, "001")
    assert [(r.code, r.message, r.status) for r in exceptions] == [
        ("ThrottlingException", "Rate exceeded.", 400),
        ("InternalFailure", "The request processing has failed.", 500),
    ]
    assert [(r.code, r.message, r.operations) for r in operations] == [
        ("ActivationKeyExpired", "The specified activation key has expired.", ("ActivateGateway",)),
        ("GatewayInternalError", "A gateway internal error occurred.", ("AddCache", "AddUploadBuffer")),
        (
            "VolumeNotReady",
            "The specified volume is not ready.",
            ("CreateSnapshot", "CreateSnapshotFromVolumeRecoveryPoint"),
        ),
    ]


HTMLISH = textwrap.dedent(
    """\
    <ErrorResponse xmlns="http://importexport.amazonaws.com/">
    </ErrorResponse>There are errors. The following table describes those error codes.
    |
    Code |
    Description | HTTP Code |
    |---|---|---|
    | BucketPermissionException | The account does not have permissions. | 400 |
    |
    CanceledJobIdException |
    The specified job ID has been canceled. | 400 |
    |
    InvalidJobIdException | The JOBID was missing, or not
    associated with the AWS account. | 400 |
    """
)


def test_htmlish_table_reads_cells_across_line_breaks(tool: ModuleType) -> None:
    rows = tool.importexport_rows(HTMLISH, "004")
    assert [(r.code, r.message, r.status) for r in rows] == [
        ("BucketPermissionException", "The account does not have permissions.", 400),
        ("CanceledJobIdException", "The specified job ID has been canceled.", 400),
        ("InvalidJobIdException", "The JOBID was missing, or not associated with the AWS account.", 400),
    ]
    assert tool.xml_namespace_of(HTMLISH, "004") == "http://importexport.amazonaws.com/"


def test_htmlish_table_refuses_a_row_with_a_missing_cell(tool: ModuleType) -> None:
    broken = HTMLISH.replace(
        "| BucketPermissionException | The account does not have permissions. | 400 |", "| A | 400 |"
    )
    with pytest.raises(tool.SeedFormatError, match="3 cells"):
        tool.importexport_rows(broken, "004")
