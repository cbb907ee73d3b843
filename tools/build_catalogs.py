#!/usr/bin/env python3
"""Regenerate proxy/catalogs/data/*.json from the seed documents (../shared/seeds).

    .venv/bin/python tools/build_catalogs.py                # write the seed catalogs
    .venv/bin/python tools/build_catalogs.py --check        # exit 1 when a committed file is stale

Seeds: --seeds DIR, else $SIGWATCH_SHARED/seeds, else <repo>/../shared/seeds.

Each seed is parsed as what it is, with a real table parser, never by its line numbers:
  000  Storage Gateway API reference, Markdown pipe tables (exceptions; operation error codes)
  001  the same pages rendered as plain text (cells glued together): the cross-check of 000
  002  an S3-compatible server's "AWS Error Codes", reStructuredText grid table
  003  Zenko CloudServer's error messages, reStructuredText grid tables (AWS and non-AWS errors)
  004  AWS Import/Export errors, an HTML-ish pipe table whose cells break across lines
Disagreements between sources are kept as data: agreeing facts in each entry's `sources`, differing
statuses and repeated rows in `alternates`, and a `notes` line wherever two renderings differ.
Output is deterministic: sorted keys, entries sorted by code, two-space indent, trailing newline.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from proxy.core.catalog import (  # noqa: E402  (the repo root is put on sys.path above)
    FORMAT_VERSION,
    CatalogEntry,
    EntryKind,
    SourceFact,
    default_fault,
    entry_document,
    fact_document,
    infer_category,
    is_clock_skew,
    is_retryable,
    parse_catalog,
)

DATA_DIR = REPO / "proxy" / "catalogs" / "data"
SEED_CATALOGS = ("storagegateway", "s3", "importexport")


class SeedFormatError(Exception):
    """A seed no longer looks like the document this script was written for."""


# --- table model --------------------------------------------------------------------------------------


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    line: int  # 1-based line of the table's first line, for error messages


@dataclass
class Row:
    """One row of a seed's error table, cleaned."""

    source: str
    code: str
    message: str
    status: int | None
    operations: tuple[str, ...] = ()
    note: str = ""


def collapse(text: str) -> str:
    """One space between words, none before . or , (the plain-text rendering leaves `Gateway .`)."""
    text = " ".join(text.split())
    return re.sub(r" +([.,])", r"\1", text)


def status_of(cell: str, where: str) -> int:
    match = re.match(r"^(\d{3})\b", cell.strip())
    if not match:
        raise SeedFormatError(f"{where}: expected an HTTP status, found {cell!r}")
    return int(match.group(1))


# --- Markdown pipe tables (seed 000, the seeds README) ----------------------------------------------------

_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_MD_LINK = re.compile(r"\[([^\[\]]*)\]\([^()]*\)")
_HTML_ANCHOR = re.compile(r"<a name=\"[^\"]*\"></a>")


def markdown_text(cell: str) -> str:
    """A Markdown cell as plain text: links become their text, escapes are undone, anchors dropped."""
    text = _HTML_ANCHOR.sub("", cell)
    previous = None
    while previous != text:  # nested links: [[Task 1](...)](#...)
        previous, text = text, _MD_LINK.sub(r"\1", text)
    return collapse(_MD_ESCAPE.sub(r"\1", text))


def markdown_links(cell: str) -> list[str]:
    return [collapse(_MD_ESCAPE.sub(r"\1", m.group(1))) for m in _MD_LINK.finditer(cell)]


def _split_pipe_row(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def parse_markdown_tables(text: str) -> list[Table]:
    """GitHub-flavoured pipe tables: a header row, a `| --- |` delimiter row, then body rows."""
    lines = text.splitlines()
    tables: list[Table] = []
    i = 0
    while i < len(lines) - 1:
        delimiter = lines[i + 1].strip()
        if lines[i].lstrip().startswith("|") and re.fullmatch(
            r"\|?(\s*:?-{3,}:?\s*\|)+\s*(:?-{3,}:?)?\s*", delimiter
        ):
            header = _split_pipe_row(lines[i])
            rows: list[list[str]] = []
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                cells = _split_pipe_row(lines[j])
                if len(cells) != len(header):
                    raise SeedFormatError(f"line {j + 1}: {len(cells)} cells in a {len(header)}-column table")
                rows.append(cells)
                j += 1
            tables.append(Table(header=[markdown_text(h) for h in header], rows=rows, line=i + 1))
            i = j
        else:
            i += 1
    return tables


# --- reStructuredText tables (seeds 002, 003) -------------------------------------------------------------

_RST_ESCAPE = re.compile(r"\\(.)")
_GRID_BORDER = re.compile(r"^\s*\+(?:[-=]+\+)+\s*$")
_SIMPLE_BORDER = re.compile(r"^\s*=+(?: +=+)+\s*$")


def rst_cell(lines: Sequence[str]) -> str:
    """The text of a (possibly wrapped) cell. A backslash before the line break escapes the break itself,
    and reStructuredText removes escaped whitespace: `IllegalVersioningConfigurationEx\\` + `ception` is
    one word. Other lines join with a space; other escapes become the escaped character."""
    text = ""
    for raw in lines:
        part = raw.strip()
        if not part:
            continue
        if text.endswith("\\") and not text.endswith("\\\\"):
            text = text[:-1] + part
        else:
            text = f"{text} {part}" if text else part
    return collapse(_RST_ESCAPE.sub(r"\1", text))


def _grid_table(lines: list[str], start: int) -> tuple[Table, int]:
    border = lines[start].rstrip()
    columns = [i for i, ch in enumerate(border) if ch == "+"]
    header: list[str] | None = None
    rows: list[list[str]] = []
    pending: list[list[str]] = [[] for _ in columns[:-1]]
    i = start + 1
    while i < len(lines):
        line = lines[i].rstrip()
        if _GRID_BORDER.match(line):
            if [j for j, ch in enumerate(line) if ch == "+"] != columns:
                raise SeedFormatError(f"line {i + 1}: spanning cells are not supported in this table")
            cells = [rst_cell(cell) for cell in pending]
            if "=" in line:
                header = cells
            elif any(cells):
                rows.append(cells)
            pending = [[] for _ in columns[:-1]]
            i += 1
            continue
        if not line.strip() or line.lstrip()[0] != "|":
            break
        for k in range(len(columns) - 1):
            if line[columns[k]] != "|":
                raise SeedFormatError(
                    f"line {i + 1}: no cell boundary at offset {columns[k]} "
                    "(spanning cells are not supported)"
                )
            pending[k].append(line[columns[k] + 1 : columns[k + 1]])
        i += 1
    if any(any(part.strip() for part in cell) for cell in pending):
        raise SeedFormatError(f"line {i}: table row not closed by a border")
    return Table(header=header or [], rows=rows, line=start + 1), i


def _simple_table(lines: list[str], start: int) -> tuple[Table, int]:
    border = lines[start].rstrip()
    spans = [(m.start(), m.end()) for m in re.finditer(r"=+", border)]

    def cells_of(line: str) -> list[str]:
        out = []
        for k, (begin, end) in enumerate(spans):
            stop = len(line) if k == len(spans) - 1 else spans[k + 1][0]
            out.append(line[begin:stop] if k == len(spans) - 1 else line[begin : max(end, stop)])
        return out

    blocks: list[list[list[str]]] = [[]]
    i = start + 1
    borders = 1
    while i < len(lines):
        line = lines[i].rstrip()
        if _SIMPLE_BORDER.match(line):
            borders += 1
            i += 1
            if borders == 3 or (i < len(lines) and not lines[i].strip()):
                break
            blocks.append([])
            continue
        if not line.strip():
            i += 1
            continue
        parts = cells_of(line)
        current = blocks[-1]
        if current and not parts[0].strip():  # a blank first column continues the previous row
            for k, part in enumerate(parts):
                current[-1][k] += "\n" + part
        else:
            current.append(parts)
        i += 1
    if len(blocks) == 1:
        header, body = [], blocks[0]
    else:
        header_rows, body = blocks[0], blocks[1]
        header = [rst_cell(cell.split("\n")) for cell in header_rows[0]] if header_rows else []
    rows = [[rst_cell(cell.split("\n")) for cell in row] for row in body]
    return Table(header=header, rows=rows, line=start + 1), i


def parse_rst_tables(text: str) -> list[Table]:
    """Grid tables (`+---+` borders, `+===+` under the header) and simple tables (`===  ===`)."""
    lines = text.splitlines()
    tables: list[Table] = []
    i = 0
    while i < len(lines):
        if _GRID_BORDER.match(lines[i]):
            table, i = _grid_table(lines, i)
            tables.append(table)
        elif _SIMPLE_BORDER.match(lines[i]):
            table, i = _simple_table(lines, i)
            tables.append(table)
        else:
            i += 1
    return tables


# --- seed 000: Storage Gateway, Markdown ------------------------------------------------------------------

SG_EXCEPTION_HEADER = ["Exception", "Message", "HTTP Status Code"]
SG_OPERATION_HEADER = ["Operation Error Code", "Message", "Operations That Return this Error Code"]


def _find_table(tables: Iterable[Table], header: list[str], where: str) -> Table:
    for table in tables:
        if table.header == header:
            return table
    raise SeedFormatError(f"{where}: no table with header {header}")


def storagegateway_markdown(text: str, source: str) -> tuple[list[Row], list[Row]]:
    tables = parse_markdown_tables(text)
    exceptions = [
        Row(source, markdown_text(code), markdown_text(message), status_of(markdown_text(status), source))
        for code, message, status in _find_table(tables, SG_EXCEPTION_HEADER, source).rows
    ]
    operation_errors = [
        Row(source, markdown_text(code), markdown_text(message), None, tuple(markdown_links(operations)))
        for code, message, operations in _find_table(tables, SG_OPERATION_HEADER, source).rows
    ]
    return exceptions, operation_errors


def storagegateway_wrappers(text: str, source: str) -> list[str]:
    """ "All operation error codes are returned with one of two general exceptions—`A` and `B`"."""
    match = re.search(
        r"operation error codes are returned with one of two general exceptions(.{0,200})", text
    )
    names = re.findall(r"`([A-Za-z]+)`", match.group(1)) if match else []
    if len(names) != 2:
        raise SeedFormatError(f"{source}: the two exceptions wrapping operation error codes were not found")
    return names


def json_version_of(text: str, source: str) -> str:
    match = re.search(r"application/x-amz-json-(1\.[01])", text)
    if not match:
        raise SeedFormatError(f"{source}: no application/x-amz-json-1.x content type")
    return match.group(1)


# --- seed 001: Storage Gateway, plain text ----------------------------------------------------------------

_STATUS_TAIL = re.compile(r"\s*(\d{3}) [A-Z][A-Za-z ]*$")
_INLINE_OPERATION = re.compile(r"^(.*\.)([A-Z][A-Za-z0-9]*)$")
_IDENTIFIER = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def split_glued(line: str, where: str) -> tuple[str, str]:
    """`InvalidActionThe requested action...` -> (`InvalidAction`, `The requested action...`).

    The rendering dropped the cell boundary. A code is CamelCase and a message starts with a capitalised
    word, so the boundary is the last capital of the first whitespace-free token (`...ErrorA gateway`,
    `...ExceptionRate exceeded`). A message starting with an all-capitals word would defeat this; the
    cross-check against 000 reports any code that comes out unknown.
    """
    token, _, rest = line.partition(" ")
    capitals = [i for i, ch in enumerate(token) if ch.isupper()]
    if len(capitals) < 2:
        raise SeedFormatError(f"{where}: cannot split code and message in {line!r}")
    cut = capitals[-1]
    return token[:cut], f"{token[cut:]} {rest}".strip()


def storagegateway_plain(text: str, source: str) -> tuple[list[Row], list[Row]]:
    lines = [line.strip() for line in text.splitlines()]
    try:
        exceptions_at = lines.index("ExceptionMessage HTTP Status Code") + 1
        operations_at = lines.index("Operation Error CodeMessageOperations That Return this Error Code") + 1
    except ValueError as exc:
        raise SeedFormatError(f"{source}: table header not found ({exc})") from None
    exceptions: list[Row] = []
    for line in lines[exceptions_at:]:
        if not line:
            break
        status = _STATUS_TAIL.search(line)
        if status is None:
            raise SeedFormatError(f"{source}: no HTTP status at the end of {line!r}")
        code, message = split_glued(line[: status.start()], source)
        exceptions.append(Row(source, code, collapse(message), int(status.group(1))))
    operation_errors: list[Row] = []
    for line in lines[operations_at:]:
        if line == "Error Responses":
            break
        if not line:
            continue
        if _IDENTIFIER.match(line):
            if not operation_errors:
                raise SeedFormatError(f"{source}: operation {line!r} before any error code")
            last = operation_errors[-1]
            last.operations = (*last.operations, line)
            continue
        code, message = split_glued(line, source)
        inline = _INLINE_OPERATION.match(message)
        operations: tuple[str, ...] = ()
        if inline:
            message, operations = inline.group(1), (inline.group(2),)
        operation_errors.append(Row(source, code, collapse(message), None, operations))
    return exceptions, operation_errors


# --- seeds 002 / 003: S3-compatible servers, reStructuredText ---------------------------------------------


def s3_rows(text: str, source: str, columns: Mapping[str, str], notes: Mapping[int, str]) -> list[Row]:
    """Rows of every table in the document; `columns` maps role (code/message/status) to header text,
    `notes` adds a note to the rows of the n-th table (e.g. 003's non-AWS errors)."""
    rows: list[Row] = []
    tables = parse_rst_tables(text)
    if not tables:
        raise SeedFormatError(f"{source}: no reStructuredText table")
    for n, table in enumerate(tables):
        try:
            index = {role: table.header.index(name) for role, name in columns.items()}
        except ValueError:
            raise SeedFormatError(
                f"{source}: table at line {table.line} has header {table.header}, expected {dict(columns)}"
            ) from None
        for row in table.rows:
            code = row[index["code"]]
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", code):
                raise SeedFormatError(f"{source}: table at line {table.line}: {code!r} is not an error code")
            status = status_of(row[index["status"]], f"{source}: {code}")
            rows.append(Row(source, code, row[index["message"]], status, note=notes.get(n, "")))
    return rows


# --- seed 004: Import/Export, an HTML-ish pipe table ------------------------------------------------------


def importexport_rows(text: str, source: str) -> list[Row]:
    """The table after `|---|---|---|`: cells are separated by `|` but a cell (and the row around it)
    may break across lines, so cells are read as a stream and a row ends at its 3-digit HTTP code."""
    lines = text.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if re.fullmatch(r"\|(-{3,}\|){3}", line.strip()))
    except StopIteration:
        raise SeedFormatError(f"{source}: no |---|---|---| table delimiter") from None
    header = [collapse(c) for c in "\n".join(lines[max(0, start - 4) : start]).split("|")]
    if [c for c in header if c][-3:] != ["Code", "Description", "HTTP Code"]:
        raise SeedFormatError(f"{source}: unexpected table header {header}")
    rows: list[Row] = []
    cells: list[str] = []
    partial = ""
    for line in lines[start + 1 :]:
        if "|" not in line and not cells and not partial.strip():
            break  # prose after the table
        pieces = line.split("|")
        partial += pieces[0] + "\n"
        for piece in pieces[1:]:
            if partial.strip():
                cells.append(collapse(partial))
            partial = piece + "\n"
            if cells and re.fullmatch(r"\d{3}", cells[-1]):
                if len(cells) != 3:
                    raise SeedFormatError(f"{source}: row {cells} does not have 3 cells")
                rows.append(Row(source, cells[0], cells[1], int(cells[2])))
                cells = []
    if cells or partial.strip():
        raise SeedFormatError(f"{source}: unterminated row {cells} {partial!r}")
    return rows


def xml_namespace_of(text: str, source: str) -> str:
    match = re.search(r'<ErrorResponse xmlns="([^"]+)">', text)
    if not match:
        raise SeedFormatError(f"{source}: no <ErrorResponse xmlns=...> example")
    return match.group(1)


# --- assembling catalogs ----------------------------------------------------------------------------------


@dataclass
class Assembled:
    """Every fact about a code from every source, in source order, and the notes about them."""

    code: str
    facts: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def group(rows: Iterable[Row]) -> dict[str, Assembled]:
    grouped: dict[str, Assembled] = {}
    for row in rows:
        grouped.setdefault(row.code, Assembled(row.code)).facts.append(row)
    return grouped


def _fact(row: Row) -> SourceFact:
    return SourceFact(
        source=row.source, http_status=row.status, message=row.message, operations=row.operations
    )


def entry_and_alternates(
    item: Assembled, kind: EntryKind, wrappers: Sequence[str] = (), category_status: int | None = None
) -> tuple[CatalogEntry, list[dict[str, object]]]:
    """The first fact is the entry's; facts with another status, or a second row from the same source,
    become alternates; the rest back the entry as agreeing sources.

    `category_status`: the status that decides the category when the code's words do not (an operation
    error code has no status of its own: it is the wrapping exception's)."""
    primary = item.facts[0]
    agreeing: list[Row] = [primary]
    alternates: list[dict[str, object]] = []
    notes = list(item.notes)
    for row in item.facts[1:]:
        if row.status != primary.status:
            alternates.append({"code": item.code, **fact_document(_fact(row))})
            notes.append(
                f"{primary.source} documents HTTP {primary.status}, {row.source} documents {row.status}"
            )
        elif any(seen.source == row.source for seen in agreeing):
            alternates.append({"code": item.code, **fact_document(_fact(row))})
            notes.append(f"{row.source} lists {item.code} more than once: {row.message!r}")
        else:
            agreeing.append(row)
    for row in item.facts:
        for note in row.note.split("; ") if row.note else ():
            if note not in notes:
                notes.append(note)
    category = infer_category(item.code, primary.status if category_status is None else category_status)
    operations = frozenset(op for row in item.facts for op in row.operations)
    entry = CatalogEntry(
        code=item.code,
        kind=kind,
        http_status=primary.status,
        message=primary.message,
        fault=default_fault(category, primary.status),
        category=category,
        retryable=is_retryable(item.code, primary.status or 0, modeled=True),
        clock_skew=is_clock_skew(item.code),
        sources=tuple(_fact(row) for row in agreeing),
        operations=operations,
        wrappers=tuple(wrappers),
        notes=tuple(notes),
    )
    return entry, alternates


def cross_check_renderings(
    reference: dict[str, Assembled], other: Mapping[str, Row], label: str
) -> list[str]:
    """Compare the plain-text rendering (001) with the Markdown one (000), code by code; returns
    catalog-level notes and adds entry-level notes."""
    catalog_notes: list[str] = []
    for code, item in reference.items():
        primary = item.facts[0]
        row = other.get(code)
        if row is None:
            catalog_notes.append(f"{label}: {code} is in {primary.source} but not in the {row_source(other)}")
            continue
        if collapse(row.message).lower() != collapse(primary.message).lower():
            item.notes.append(
                f"message differs: {primary.source} {primary.message!r}, {row.source} {row.message!r}"
            )
        if row.status != primary.status:
            item.notes.append(f"{row.source} documents {row.status}")
        if primary.operations or row.operations:
            missing = sorted(set(primary.operations) - set(row.operations))
            extra = sorted(set(row.operations) - set(primary.operations))
            if missing:
                item.notes.append(f"{row.source} omits operations {', '.join(missing)}")
            if extra:
                item.notes.append(f"{row.source} adds operations {', '.join(extra)}")
        item.facts.append(row)
    for code in other:
        if code not in reference:
            catalog_notes.append(
                f"{label}: {code} is in {row_source(other)} but not in the reference rendering"
            )
            reference[code] = Assembled(code, [other[code]])
    return catalog_notes


def row_source(rows: Mapping[str, Row]) -> str:
    return next(iter(rows.values())).source if rows else "?"


def shared_messages(rows: Sequence[Row]) -> None:
    """Note rows of one source that give two different codes the same message (a copy-paste slip, as in
    003 where ServiceUnavailable repeats SlowDown's "Reduce your request rate.")."""
    by_message: dict[str, list[Row]] = {}
    for row in rows:
        by_message.setdefault(collapse(row.message).lower().rstrip("."), []).append(row)
    for same in by_message.values():
        codes = sorted({row.code for row in same})
        for row in same:
            others = [code for code in codes if code != row.code]
            if others:
                note = f"{row.source} gives it the same message as {', '.join(others)}"
                row.note = f"{row.note}; {note}" if row.note else note


def duplicates_within(rows: Sequence[Row]) -> list[str]:
    seen: dict[str, int] = {}
    for row in rows:
        seen[row.code] = seen.get(row.code, 0) + 1
    return [f"{rows[0].source} lists {code} {n} times" for code, n in seen.items() if n > 1]


def catalog_document(
    *,
    service: str,
    protocol: str,
    sources: Mapping[str, str],
    entries: Sequence[CatalogEntry],
    alternates: Sequence[dict[str, object]],
    notes: Sequence[str] = (),
    json_version: str | None = None,
    xml_namespace: str | None = None,
) -> dict[str, object]:
    doc: dict[str, object] = {
        "format_version": FORMAT_VERSION,
        "generated_by": "tools/build_catalogs.py (do not edit: regenerate)",
        "service": service,
        "protocol": protocol,
        "sources": dict(sources),
        "entries": [entry_document(e) for e in sorted(entries, key=lambda e: e.code)],
        "alternates": sorted(alternates, key=lambda a: str(a["code"])),
    }
    if notes:
        doc["notes"] = list(notes)
    if json_version:
        doc["json_version"] = json_version
    if xml_namespace:
        doc["xml_namespace"] = xml_namespace
    return doc


@dataclass
class Seeds:
    directory: Path

    def path(self, prefix: str) -> Path:
        found = sorted(self.directory.glob(f"{prefix}_*.txt"))
        if len(found) != 1:
            raise SeedFormatError(f"{self.directory}: expected one {prefix}_*.txt, found {len(found)}")
        return found[0]

    def text(self, prefix: str) -> str:
        return self.path(prefix).read_text(encoding="utf-8")

    def describe(self, prefix: str) -> str:
        """`<file>: <what it is>` from the seeds README table."""
        name = self.path(prefix).name
        readme = self.directory / "README.md"
        if readme.exists():
            for table in parse_markdown_tables(readme.read_text(encoding="utf-8")):
                for row in table.rows:
                    if markdown_text(row[0]) == name and len(row) > 1:
                        return f"{name}: {markdown_text(row[1])}"
        return name


def build_storagegateway(seeds: Seeds) -> dict[str, object]:
    markdown_text_ = seeds.text("000")
    md_exceptions, md_operations = storagegateway_markdown(markdown_text_, "000")
    plain_exceptions, plain_operations = storagegateway_plain(seeds.text("001"), "001")
    if len(md_exceptions) != 17:
        raise SeedFormatError(f"000: expected the 17 exceptions, found {len(md_exceptions)}")
    wrappers = storagegateway_wrappers(markdown_text_, "000")
    wrapper_statuses = [r.status for r in md_exceptions if r.code in wrappers and r.status is not None]
    client_wrapper_status = min(wrapper_statuses) if wrapper_statuses else None
    for rows in (md_exceptions, md_operations, plain_exceptions, plain_operations):
        shared_messages(rows)
    notes = [
        *duplicates_within(md_exceptions),
        *duplicates_within(md_operations),
        *duplicates_within(plain_exceptions),
        *duplicates_within(plain_operations),
    ]
    exceptions = group(md_exceptions)
    operations = group(md_operations)
    notes += cross_check_renderings(exceptions, {r.code: r for r in plain_exceptions}, "exceptions")
    notes += cross_check_renderings(
        operations, {r.code: r for r in plain_operations}, "operation error codes"
    )
    entries: list[CatalogEntry] = []
    alternates: list[dict[str, object]] = []
    for item in exceptions.values():
        entry, alts = entry_and_alternates(item, EntryKind.EXCEPTION)
        entries.append(entry)
        alternates.extend(alts)
    for item in operations.values():
        entry, alts = entry_and_alternates(item, EntryKind.OPERATION_ERROR, wrappers, client_wrapper_status)
        entries.append(entry)
        alternates.extend(alts)
    return catalog_document(
        service="storagegateway",
        protocol="json",
        json_version=json_version_of(markdown_text_, "000"),
        sources={"000": seeds.describe("000"), "001": seeds.describe("001")},
        entries=entries,
        alternates=alternates,
        notes=notes,
    )


def build_s3(seeds: Seeds) -> dict[str, object]:
    rows_002 = s3_rows(
        seeds.text("002"),
        "002",
        {"code": "Error Code", "message": "Error Description", "status": "Error"},
        {},
    )
    rows_003 = s3_rows(
        seeds.text("003"),
        "003",
        {"code": "Error", "status": "Code", "message": "Description"},
        {1: "003: a non-AWS error of Zenko CloudServer (multipart upload in progress)"},
    )
    shared_messages(rows_002)
    shared_messages(rows_003)
    entries: list[CatalogEntry] = []
    alternates: list[dict[str, object]] = []
    for item in group([*rows_002, *rows_003]).values():
        entry, alts = entry_and_alternates(item, EntryKind.EXCEPTION)
        entries.append(entry)
        alternates.extend(alts)
    return catalog_document(
        service="s3",
        protocol="rest-xml",
        sources={"002": seeds.describe("002"), "003": seeds.describe("003")},
        entries=entries,
        alternates=alternates,
        notes=duplicates_within(rows_002) + duplicates_within(rows_003),
    )


def build_importexport(seeds: Seeds) -> dict[str, object]:
    text = seeds.text("004")
    rows = importexport_rows(text, "004")
    shared_messages(rows)
    entries: list[CatalogEntry] = []
    alternates: list[dict[str, object]] = []
    for item in group(rows).values():
        entry, alts = entry_and_alternates(item, EntryKind.EXCEPTION)
        entries.append(entry)
        alternates.extend(alts)
    return catalog_document(
        service="importexport",
        protocol="query",
        xml_namespace=xml_namespace_of(text, "004"),
        sources={"004": seeds.describe("004")},
        entries=entries,
        alternates=alternates,
        notes=duplicates_within(rows),
    )


# --- output -----------------------------------------------------------------------------------------------


def render(doc: Mapping[str, object], name: str) -> bytes:
    parse_catalog(doc, name)  # never write a file the proxy would refuse
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def default_seeds_dir() -> Path:
    shared = os.environ.get("SIGWATCH_SHARED")
    return (Path(shared) if shared else REPO.parent / "shared") / "seeds"


def build_seed_catalogs(seeds_dir: Path) -> dict[str, bytes]:
    """File name -> bytes of every seed catalog (what the committed files must equal)."""
    seeds = Seeds(seeds_dir)
    builders = {"storagegateway": build_storagegateway, "s3": build_s3, "importexport": build_importexport}
    return {f"{name}.json": render(builders[name](seeds), f"{name}.json") for name in SEED_CATALOGS}


def _changed(outputs: Mapping[str, bytes], out_dir: Path) -> Iterator[str]:
    for name, data in outputs.items():
        path = out_dir / name
        if not path.exists() or path.read_bytes() != data:
            yield name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=Path, default=None, help="the seeds folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    args = parser.parse_args(argv)
    seeds_dir = args.seeds or default_seeds_dir()
    if not seeds_dir.is_dir():
        print(f"seeds folder {seeds_dir} not found (set SIGWATCH_SHARED or pass --seeds)", file=sys.stderr)
        return 2
    try:
        outputs = build_seed_catalogs(seeds_dir)
    except SeedFormatError as exc:
        print(f"cannot parse the seeds: {exc}", file=sys.stderr)
        return 2
    stale = list(_changed(outputs, args.out))
    if args.check:
        for name in stale:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (args.out / name).write_bytes(outputs[name])
        print(f"wrote {args.out / name}")
    if not stale:
        print("catalogs up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
