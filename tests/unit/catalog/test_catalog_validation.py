"""A bad catalog file stops start-up with a message naming the file, the key, the problem and the fix;
good user files add to or override the built-in catalogs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from proxy.catalogs import load_builtin_catalogs, load_catalog_file
from proxy.core.catalog import (
    CatalogError,
    Catalogs,
    Category,
    EntryKind,
    Fault,
    merge_catalogs,
    parse_catalog,
)
from proxy.core.model import Protocol

FILE = "conf/catalogs/widgets.json"


def valid_document() -> dict[str, object]:
    return {
        "service": "widgets",
        "protocol": "json",
        "json_version": "1.1",
        "sources": {"vendor": "Widgets API reference"},
        "entries": [
            {
                "code": "WidgetNotFound",
                "http_status": 404,
                "message": "The widget does not exist.",
                "category": "not_found",
                "sources": [
                    {"source": "vendor", "http_status": 404, "message": "The widget does not exist."}
                ],
            },
            {"code": "Internal", "http_status": 500, "message": "Internal failure.", "category": "server"},
            {
                "code": "WidgetBusy",
                "kind": "operation_error",
                "http_status": None,
                "message": "The widget is busy.",
                "category": "conflict",
                "operations": ["SpinWidget"],
                "wrappers": ["Internal"],
            },
        ],
        "alternates": [
            {
                "code": "WidgetNotFound",
                "source": "vendor",
                "http_status": 400,
                "message": "Older servers say 400.",
            }
        ],
    }


def test_a_minimal_user_catalog_is_accepted_with_derived_fields() -> None:
    catalog = parse_catalog(valid_document(), FILE)
    assert catalog.service == "widgets"
    assert catalog.protocol is Protocol.JSON
    assert catalog.origin == FILE
    internal = catalog.entries["Internal"]
    assert internal.fault is Fault.SERVER  # derived from 500
    assert internal.retryable  # botocore retries 500
    assert internal.sources[0].source == FILE  # no sources given: the file itself
    busy = catalog.entries["WidgetBusy"]
    assert busy.kind is EntryKind.OPERATION_ERROR and busy.operations == {"SpinWidget"}
    assert catalog.wrapper_exceptions == {"Internal"}
    assert catalog.documented_statuses("WidgetNotFound") == (400, 404)


Mutation = Callable[[dict[str, object]], None]


def entry(doc: dict[str, object], index: int) -> dict[str, object]:
    entries = doc["entries"]
    assert isinstance(entries, list)
    item = entries[index]
    assert isinstance(item, dict)
    return item


BAD: list[tuple[str, Mutation, str, str, str]] = [
    # (case, mutation, key in the message, problem fragment, fix fragment)
    (
        "unknown category",
        lambda d: entry(d, 0).update(category="missing"),
        "entries[0].category",
        "unknown value 'missing'",
        "use one of: authentication, authorization, clock_skew",
    ),
    (
        "status not an integer",
        lambda d: entry(d, 0).update(http_status="404"),
        "entries[0].http_status",
        "must be an integer from 100 to 599",
        "write the documented status as a number",
    ),
    (
        "status out of range",
        lambda d: entry(d, 1).update(http_status=600),
        "entries[1].http_status",
        "found 600",
        "as a number",
    ),
    (
        "status is a boolean",
        lambda d: entry(d, 1).update(http_status=True),
        "entries[1].http_status",
        "found True",
        "as a number",
    ),
    (
        "missing message",
        lambda d: entry(d, 1).pop("message"),
        "entries[1].message",
        "missing",
        "add 'message'",
    ),
    (
        "empty message",
        lambda d: entry(d, 1).update(message="  "),
        "entries[1].message",
        "expected a non-empty string",
        "non-empty string",
    ),
    (
        "missing status",
        lambda d: entry(d, 1).pop("http_status"),
        "entries[1].http_status",
        "missing",
        "add 'http_status'",
    ),
    (
        "duplicate code without an alternates record",
        lambda d: d["entries"].append(copy.deepcopy(entry(d, 1))),  # type: ignore[attr-defined]
        "entries[3].code",
        "duplicate code Internal (also entries[1])",
        "record the other source's fact under 'alternates'",
    ),
    (
        "a disagreeing source inside an entry",
        lambda d: entry(d, 0)["sources"].append(  # type: ignore[attr-defined]
            {"source": "vendor", "http_status": 400, "message": "x"}
        ),
        "entries[0].sources[1].http_status",
        "vendor documents 400 for WidgetNotFound, the entry says 404",
        "move this fact to the top-level 'alternates'",
    ),
    (
        "unknown key (a typo)",
        lambda d: entry(d, 1).update(retriable=True),
        "entries[1].retriable",
        "unknown key 'retriable'",
        "use one of:",
    ),
    (
        "retryable contradicts botocore",
        lambda d: entry(d, 1).update(retryable=False),
        "entries[1].retryable",
        "Internal with status 500 is retried by botocore's standard retry mode",
        "set 'retryable_trait'",
    ),
    (
        "clock-skew code flagged false",
        lambda d: entry(d, 1).update(code="RequestTimeTooSkewed", clock_skew=False),
        "entries[1].clock_skew",
        "treat RequestTimeTooSkewed as a clock-skew error",
        "set clock_skew to true",
    ),
    (
        "wrapper that is not an exception here",
        lambda d: entry(d, 2).update(wrappers=["Nope"]),
        "entries[2].wrappers[0]",
        "Nope is not an exception of this catalog",
        "add an exception entry for Nope",
    ),
    (
        "operation error without operations",
        lambda d: entry(d, 2).pop("operations"),
        "entries[2].operations",
        "lists no operation",
        "list the operations",
    ),
    (
        "operations on an exception",
        lambda d: entry(d, 1).update(operations=["SpinWidget"]),
        "entries[1].operations",
        "only operation error codes have operations",
        '"kind": "operation_error"',
    ),
    (
        "alternate for an unknown code",
        lambda d: d["alternates"][0].update(code="Ghost"),  # type: ignore[index]
        "alternates[0].code",
        "no entry for Ghost",
        "add an entry",
    ),
    (
        "undeclared source",
        lambda d: entry(d, 0)["sources"][0].update(source="blog"),  # type: ignore[index]
        "entries[0].sources[0].source",
        "source 'blog' is not declared",
        "use one of: vendor",
    ),
    (
        "unknown protocol",
        lambda d: d.update(protocol="soap"),
        "protocol",
        "unknown value 'soap'",
        "json, rest-json, rest-xml, query, ec2",
    ),
    (
        "bad service name",
        lambda d: d.update(service="Widgets Service"),
        "service",
        "'Widgets Service' is not valid",
        "botocore service name",
    ),
    (
        "bad code",
        lambda d: entry(d, 1).update(code="Bad Code"),
        "entries[1].code",
        "'Bad Code' is not valid",
        "letters, digits",
    ),
    (
        "no entries",
        lambda d: d.update(entries=[]),
        "entries",
        "no entries",
        "list at least one",
    ),
    (
        "entries not a list",
        lambda d: d.update(entries={"a": 1}),
        "entries",
        "expected a list, found an object",
        "JSON list",
    ),
    (
        "future format",
        lambda d: d.update(format_version=2),
        "format_version",
        "unsupported format version 2",
        "write 1",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "key", "problem", "fix"), BAD, ids=[b[0] for b in BAD])
def test_bad_catalog_names_file_key_problem_and_fix(
    case: str, mutate: Mutation, key: str, problem: str, fix: str
) -> None:
    doc = valid_document()
    mutate(doc)
    with pytest.raises(CatalogError) as raised:
        parse_catalog(doc, FILE)
    error = raised.value
    assert error.file == FILE
    assert error.key == key, case
    assert problem in error.problem, case
    assert fix in error.fix, case
    assert str(error) == f"{FILE}: {key}: {error.problem}. Fix: {error.fix}"


def test_catalog_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "widgets.json"
    path.write_text('{"service": "widgets",')
    with pytest.raises(CatalogError) as raised:
        load_catalog_file(path)
    assert raised.value.file == str(path)
    assert "not valid JSON" in raised.value.problem
    assert raised.value.fix == "fix the JSON syntax"


def test_catalog_file_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "widgets.json"
    path.write_text("[]")
    with pytest.raises(CatalogError, match="not a JSON object"):
        load_catalog_file(path)


def test_catalog_file_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as raised:
        load_catalog_file(tmp_path / "absent.json")
    assert raised.value.key == "(file)"
    assert "check the path" in raised.value.fix


def test_catalog_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "widgets.json"
    path.write_bytes(orjson.dumps(valid_document()))
    assert load_catalog_file(path) == parse_catalog(valid_document(), str(path))


def test_merge_adds_a_service_and_overrides_codes_of_a_known_one() -> None:
    base = load_builtin_catalogs()
    widgets = parse_catalog(valid_document(), FILE)
    s3_override = parse_catalog(
        {
            "service": "s3",
            "protocol": "rest-xml",
            "entries": [
                {
                    "code": "SlowDown",
                    "http_status": 429,
                    "message": "Our server says 429.",
                    "category": "throttling",
                },
                {"code": "MyCustomError", "http_status": 418, "message": "Teapot.", "category": "validation"},
            ],
        },
        "conf/catalogs/s3.json",
    )
    merged = merge_catalogs(base, [widgets, s3_override])
    assert set(merged.services) == set(base.services) | {"widgets"}
    s3 = merged.by_service["s3"]
    assert s3.entries["SlowDown"].http_status == 429
    assert s3.entries["MyCustomError"].category is Category.VALIDATION
    assert s3.entries["NoSuchKey"] == base.by_service["s3"].entries["NoSuchKey"]  # untouched
    # the overridden code's alternates from the base are dropped, the others kept
    overridden = merge_catalogs(
        base,
        [
            parse_catalog(
                {
                    "service": "s3",
                    "protocol": "rest-xml",
                    "entries": [
                        {
                            "code": "ServiceUnavailable",
                            "http_status": 503,
                            "message": "x",
                            "category": "unavailable",
                        }
                    ],
                },
                "o.json",
            )
        ],
    )
    assert "ServiceUnavailable" not in overridden.by_service["s3"].alternates
    assert base.by_service["s3"].alternates["ServiceUnavailable"]
    assert "conf/catalogs/s3.json" in s3.origin
    # the base is immutable and unchanged
    assert base.by_service["s3"].entries["SlowDown"].http_status == 503


def test_merge_of_nothing_is_the_base() -> None:
    base = load_builtin_catalogs()
    assert merge_catalogs(base, []) == base
    assert merge_catalogs(Catalogs(), []).services == ()
