"""Read the error out of an AWS error response: code, message, request id, and how trustworthy that is.

botocore is the reference: for every protocol this follows botocore/parsers.py step by step, so the code
found here is the code a boto3 user sees in `ClientError.response['Error']['Code']` (the parity test runs
a corpus through both). Where botocore cannot read a body it derives the code from the status
(`str(status_code)`); so does this module, and it says so with a body state (`empty`, `malformed`,
`truncated`). Where botocore would crash (invalid UTF-8 in a JSON body, a JSON list, invalid XML in a
Query response) this module returns the status-derived code with the `malformed` state instead.

Never raises, never looks past the bytes it is given (nor past `limit`), never expands XML entities
(defusedxml), and decompresses gzip/deflate bodies only up to `max_decoded` bytes.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from typing import Final
from xml.etree.ElementTree import Element, TreeBuilder, XMLParser

import orjson
from defusedxml.ElementTree import DefusedXMLParser

from proxy.core.frozen import remember, slot_constructor
from proxy.core.model import Protocol

DEFAULT_BODY_LIMIT: Final = 64 * 1024
DEFAULT_DECODED_LIMIT: Final = 64 * 1024
_MAX_FIELD = 1024  # longest code / message / id kept from a body or a header


class BodyState(StrEnum):
    PARSED = "parsed"  # a well-formed error document of the protocol
    EMPTY = "empty"  # no body at all (S3 HEAD 404, a bare 5xx)
    MALFORMED = "malformed"  # HTML from a load balancer, invalid JSON/XML, bad gzip, not an error shape
    TRUNCATED = "truncated"  # only a prefix of the body was available (the read limit)


class CodeSource(StrEnum):
    BODY = "body"
    ERROR_TYPE_HEADER = "x-amzn-errortype"
    QUERY_ERROR_HEADER = "x-amzn-query-error"
    STATUS = "status"  # botocore's fallback: the code is str(status)
    PREFIX_SCAN = "prefix-scan"  # found in the readable prefix of a truncated body
    NONE = "none"  # botocore finds no code in this (well-formed) document


# The members the hot paths read, as module globals: an Enum class attribute costs ~70 ns in Python 3.11
# (EnumType defines __getattr__, which puts every class attribute look-up on the slow path), a global ~8.
_PARSED, _MALFORMED, _EMPTY, _TRUNCATED = (
    BodyState.PARSED,
    BodyState.MALFORMED,
    BodyState.EMPTY,
    BodyState.TRUNCATED,
)
_FROM_BODY, _FROM_STATUS, _NO_CODE = CodeSource.BODY, CodeSource.STATUS, CodeSource.NONE
_JSON, _REST_JSON, _REST_XML, _UNKNOWN = (
    Protocol.JSON,
    Protocol.REST_JSON,
    Protocol.REST_XML,
    Protocol.UNKNOWN,
)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What an error response says, as botocore would read it.

    `code` is botocore's `Error.Code` ('' or None where botocore finds none); `exception` is the error
    type before an `x-amzn-query-error` header replaced the code (botocore's `QueryErrorCode`, the
    modeled exception name), else the code. `operation_error` is Storage Gateway's `error.errorCode`.
    """

    protocol: Protocol
    status: int
    code: str | None
    message: str
    body_state: BodyState
    code_source: CodeSource
    exception: str | None = None
    operation_error: str | None = None
    operation_error_details: str | None = None
    error_type: str | None = None  # Sender / Receiver (<Type>, x-amzn-query-error)
    request_id: str | None = None
    host_id: str | None = None  # S3's x-amz-id-2
    extra: tuple[tuple[str, str], ...] = ()  # S3's other <Error> elements (BucketName, StringToSign, ...)
    compressed: bool = False
    bytes_examined: int = 0


_make_error_info = slot_constructor(ErrorInfo)
_REASONS: Final = {status.value: status.phrase for status in HTTPStatus}
_WANTED_HEADERS: Final = frozenset(
    {
        "x-amzn-requestid",
        "x-amz-request-id",
        "x-amz-id-2",
        "x-amzn-errortype",
        "x-amzn-query-error",
        "content-encoding",
    }
)


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The few headers extraction reads, lower-cased names, first value wins."""
    found: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if lowered in _WANTED_HEADERS and lowered not in found:
            found[lowered] = value
    return found


def _clip(value: str) -> str:
    return value[:_MAX_FIELD] if len(value) > _MAX_FIELD else value


def _strip_type(code: str) -> str:
    """botocore: "com.aws.dynamodb.vAPI#ProvisionedThroughputExceededException" and
    "ValidationException:http://internal.amazon.com/coral/..." both mean the part after `#`, before `:`
    (`code.split(':', 1)[0]`, then `code.rsplit('#', 1)[1]`)."""
    if ":" in code:
        code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    return code


# --- body decoding ----------------------------------------------------------------------------------------


def _decode_content(body: bytes, encoding: str | None, max_decoded: int) -> tuple[bytes, bool, bool] | None:
    """(decoded body, was compressed, decoded output was cut at max_decoded), or None when undecodable.

    gzip and deflate only: they are what HTTP servers and load balancers send."""
    if not encoding:
        return body, False, False
    tokens = [token.strip().lower() for token in encoding.split(",") if token.strip()]
    tokens = [t for t in tokens if t != "identity"]
    if not tokens:
        return body, False, False
    if len(tokens) != 1 or tokens[0] not in ("gzip", "x-gzip", "deflate"):
        return None
    # wbits 32+15: zlib or gzip header, detected; raw deflate (some servers' "deflate") as a fallback.
    for wbits in (32 + zlib.MAX_WBITS,) if tokens[0] != "deflate" else (32 + zlib.MAX_WBITS, -zlib.MAX_WBITS):
        decompressor = zlib.decompressobj(wbits)
        try:
            decoded = decompressor.decompress(body, max_decoded)
        except zlib.error:
            continue
        cut = bool(decompressor.unconsumed_tail) or (len(decoded) >= max_decoded and not decompressor.eof)
        return decoded, True, cut
    return None


def _is_generic_error(status: int, body: bytes) -> bool:
    """botocore ResponseParser._is_generic_error_response: a 5xx whose body is empty or starts with
    `<html>` (a load balancer's page) carries no AWS error."""
    if status < 500:
        return False
    stripped = body.strip()
    return not stripped or stripped.startswith(b"<html>")


def _load_json(body: bytes) -> object | None:
    """The JSON value of the body, or None. orjson first (fast); where orjson refuses something the
    standard library accepts (NaN, lone surrogates, huge numbers), botocore's json.loads decides."""
    value: object
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):
            return None
    return value


def _parse_xml(body: bytes) -> Element | None:
    """botocore's XMLParser(target=TreeBuilder(), encoding='utf-8'), without entity expansion or
    external references. None when the body is not well-formed (or declares entities).

    A plain error document (what AWS sends) is read by `_simple_xml` without expat: building an expat
    parser costs more than reading the document. Anything else goes to expat.

    Only a document type declaration can declare entities (internal or external); without `<!DOCTYPE`
    expat knows the five predefined entities and nothing else. So a body without one is parsed by the
    plain (twice as fast) parser, and any body with one by defusedxml, which refuses entity declarations.
    The encoding is forced to UTF-8 (as botocore does), so the byte test cannot be dodged by re-encoding.
    """
    simple = _simple_xml(body)
    if simple is not None:
        return simple
    try:
        if b"<!DOCTYPE" in body:
            parser: XMLParser = DefusedXMLParser(target=TreeBuilder(), encoding="utf-8")
        else:
            parser = XMLParser(target=TreeBuilder(), encoding="utf-8")
        parser.feed(body)
        root: Element = parser.close()
    except Exception:  # ParseError, defusedxml's EntitiesForbidden, expat's odd ValueErrors: all "invalid"
        return None
    return root


# _simple_xml: the subset of XML 1.0 it reads. Markup is `<name>`, `</name>`, `<name/>`, each optionally
# with one default-namespace declaration (`xmlns="uri"`); names ASCII and without a prefix; text without
# references (`&`), CR (expat normalises line ends), `]]>` or characters XML forbids (XML 1.0 §2.2:
# C0 controls but TAB and LF here, U+FFFE, U+FFFF); at most the usual XML declaration, at the very start.
_XML_TAG = re.compile(
    r"(/?)([A-Za-z_][A-Za-z0-9_.\-]*)"
    r"(?:[ \t\n]+xmlns[ \t\n]*=[ \t\n]*(?:\"([^\"<&\t\n]*)\"|'([^'<&\t\n]*)'))?"
    r"[ \t\n]*(/?)"
)
# C0 controls but TAB and LF, CR, `&`: one bytes.translate pass (a regular expression costs 3x more).
_XML_REFUSED_BYTES = bytes((*range(0x09), 0x0B, 0x0C, 0x0D, *range(0x0E, 0x20), ord("&")))
_XML_DECLARATIONS = frozenset(
    {'?xml version="1.0" encoding="UTF-8"?', '?xml version="1.0" encoding="utf-8"?', '?xml version="1.0"?'}
)
_XML_SPACE = " \t\n"
_XML_RESERVED_NAMESPACES = frozenset(
    {"http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/"}
)
# Markup text -> (closing, name, declared default namespace or None, empty element), None when outside the
# subset. AWS error documents repeat a dozen tags.
_XmlTag = tuple[bool, str, str | None, bool] | None
_XML_TAGS: dict[str, _XmlTag] = {}
_UNSEEN: Final = ("", "", None, False)  # a tuple no markup parses to ("" is no name)


def _xml_tag(markup: str) -> _XmlTag:
    match = _XML_TAG.fullmatch(markup)
    parsed: _XmlTag = None
    if match is not None:
        closing, name, double_quoted, single_quoted, empty = match.groups()
        declared = double_quoted if double_quoted is not None else single_quoted
        if not (closing and (empty or declared is not None)) and declared not in _XML_RESERVED_NAMESPACES:
            parsed = (bool(closing), name, declared, bool(empty))
    return remember(_XML_TAGS, markup, parsed)


def _simple_xml(body: bytes) -> Element | None:
    """The tree expat + TreeBuilder build for a document of the plain subset above, or None when the
    body is outside it (malformed or not): the caller then asks expat, which decides.

    Element for element the same tree: tags (`{uri}name` under a default namespace, as expat's namespace
    mode reports them), empty attributes (a namespace declaration is not an attribute there), text and
    tails; character data outside the root element is not reported, as expat does not.
    """
    if len(body.translate(None, _XML_REFUSED_BYTES)) != len(body) or b"]]>" in body:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text.isascii() and ("\ufffe" in text or "\uffff" in text):
        return None
    pieces = text.split("<")  # text, then "markup>text" for each markup
    if pieces[0].strip(_XML_SPACE):
        return None
    first = 1
    if len(pieces) > 1 and pieces[1].startswith("?"):
        # "The document type declaration ... [and] the XML declaration ... MUST be the first thing".
        declaration, _, following = pieces[1].partition(">")
        if pieces[0] or declaration not in _XML_DECLARATIONS or following.strip(_XML_SPACE):
            return None
        first = 2
    builder = TreeBuilder()
    open_elements: list[tuple[str, str, str | None]] = []  # (name, tag, default namespace)
    closed_root = False
    tags = _XML_TAGS
    for piece in pieces[first:]:
        markup, closed, following = piece.partition(">")
        parsed = tags.get(markup, _UNSEEN)
        if parsed is _UNSEEN:
            parsed = _xml_tag(markup)
        if parsed is None or not closed or closed_root:
            return None
        closing, name, declared, empty = parsed
        if closing:
            if not open_elements or open_elements[-1][0] != name:
                return None
            builder.end(open_elements.pop()[1])
        else:
            namespace = open_elements[-1][2] if open_elements else None
            if declared is not None:
                namespace = declared or None  # xmlns="" undeclares the default namespace
            tag = f"{{{namespace}}}{name}" if namespace else name
            builder.start(tag, {})
            if empty:
                builder.end(tag)
            else:
                open_elements.append((name, tag, namespace))
        if open_elements:
            if following:
                builder.data(following)
        else:
            closed_root = True
            if following.strip(_XML_SPACE):
                return None  # "junk after document element"
    if not closed_root:
        return None  # no element, or one left open
    root: Element = builder.close()
    return root


_NAMESPACE = re.compile(r"{.*}")


def _tag(node: Element) -> str:
    return _NAMESPACE.sub("", node.tag) if "}" in node.tag else node.tag


class _Repeated:
    """An element that occurs more than once among its siblings. botocore turns the occurrences into a
    list and then reads the first one's children: a repeated <Error> is the first error, a repeated leaf
    (two <Code>s) is an empty dict, never a string."""

    __slots__ = ("first",)

    def __init__(self, first: Element) -> None:
        self.first = first


_Node = Element | _Repeated


def _children(node: Element) -> dict[str, _Node]:
    """botocore's _build_name_to_xml_node: child tag (namespace stripped) -> child."""
    found: dict[str, _Node] = {}
    for child in node:
        name = _tag(child)
        previous = found.get(name)
        if previous is None:
            found[name] = child
        elif isinstance(previous, Element):
            found[name] = _Repeated(previous)
    return found


def _element(node: _Node | None) -> Element | None:
    """The element whose children botocore reads (the first of repeated ones)."""
    return node.first if isinstance(node, _Repeated) else node


def _leaf_text(node: _Node | None) -> str | None:
    """The text of a leaf element as botocore's _replace_nodes takes it (`node.text`: None when empty);
    None for a missing, repeated or non-leaf element too (botocore would give a dict there)."""
    if not isinstance(node, Element) or len(node) or node.text is None:
        return None
    return _clip(node.text)


# --- truncated bodies: what the readable prefix says -----------------------------------------------------

_JSON_FIELD = {
    name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*"((?:[^"\\]|\\.){0,512})"')
    for name in ("__type", "code", "Code", "message", "Message", "errorCode")
}
_XML_FIELD = {
    name: re.compile(rb"<" + name.encode() + rb">([^<]{0,512})</" + name.encode() + rb">")
    for name in ("Code", "Message", "RequestId", "RequestID", "Type")
}


def _scan_json(prefix: bytes, name: str) -> str | None:
    match = _JSON_FIELD[name].search(prefix)
    if match is None:
        return None
    try:
        value = json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None
    return _clip(value) if isinstance(value, str) else None


def _scan_xml(prefix: bytes, name: str) -> str | None:
    match = _XML_FIELD[name].search(prefix)
    if match is None:
        return None
    text = match.group(1).decode("utf-8", "replace")
    return _clip(text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&"))


# --- the protocols -----------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """The mutable result while one protocol's rules run."""

    status: int
    code: str | None
    message: str
    state: BodyState
    source: CodeSource
    exception: str | None = None
    operation_error: str | None = None
    operation_error_details: str | None = None
    error_type: str | None = None
    request_id: str | None = None
    host_id: str | None = None
    extra: tuple[tuple[str, str], ...] = ()


def _from_status(status: int, state: BodyState) -> _Draft:
    """botocore's fallback when a body says nothing: Code = str(status), Message = the reason phrase."""
    return _Draft(status, str(status), _REASONS.get(status, ""), state, _FROM_STATUS)


_MISSING: Final = object()


def _json_error(status: int, body: bytes, headers: dict[str, str], rest: bool, truncated: bool) -> _Draft:
    """botocore BaseJSONParser._do_error_parse (+ RestJSONParser._inject_error_code when `rest`)."""
    doc: object = {} if not body else _load_json(body)
    apply_query_error = True
    if isinstance(doc, dict):
        raw_type = doc.get("__type", _MISSING)
        if raw_type is _MISSING:
            raw_type, source = str(status), _FROM_STATUS
        else:
            source = _FROM_BODY
        if raw_type is not None and not isinstance(raw_type, str):
            draft = _from_status(status, _MALFORMED)
        else:
            # botocore starts from Code '' and keeps it (skipping the header rules) when "__type" is null.
            apply_query_error = raw_type is not None
            code = "" if raw_type is None else _clip(_strip_type(raw_type))
            if not code:
                source = _NO_CODE
            state = _PARSED if code else _MALFORMED
            message = doc["message"] if "message" in doc else doc.get("Message", "")
            draft = _Draft(
                status,
                code,
                message if isinstance(message, str) and len(message) <= _MAX_FIELD else _text_value(message),
                state if body else _EMPTY,
                source,
                code,
            )
            nested = doc.get("error")
            if isinstance(nested, dict):
                operation_error = nested.get("errorCode")
                draft.operation_error = _clip(operation_error) if isinstance(operation_error, str) else None
                details = nested.get("errorDetails")
                if details is not None:
                    draft.operation_error_details = _clip(
                        details if isinstance(details, str) else orjson.dumps(details).decode()
                    )
            if rest and ("code" in doc or "Code" in doc) and "x-amzn-errortype" not in headers:
                body_code = doc.get("code", doc.get("Code", ""))
                if body_code is not None:
                    # RestJSONParser._inject_error_code: a body "code" replaces __type (a null one does not).
                    draft.code = _clip(
                        _strip_type(body_code) if isinstance(body_code, str) else str(body_code)
                    )
                    draft.exception, draft.source = draft.code, _FROM_BODY
    elif truncated:
        draft = _json_prefix(status, body, rest)
    else:
        # Not JSON (HTML, text, invalid UTF-8) or not an object: botocore keeps the text as the message
        # and takes the status as the code (or crashes on a non-object; the status is the best answer).
        stripped = body.strip()
        draft = _from_status(status, _EMPTY if not stripped else _MALFORMED)
        draft.message = _clip(body.decode("utf-8", "replace").strip()) if stripped else ""
    _json_headers(draft, headers, rest, apply_query_error)
    return draft


def _text_value(value: object) -> str:
    if value is None:
        return ""
    return _clip(value if isinstance(value, str) else str(value))


def _json_prefix(status: int, prefix: bytes, rest: bool) -> _Draft:
    draft = _from_status(status, _TRUNCATED)
    code = _scan_json(prefix, "__type")
    if rest:
        code = _scan_json(prefix, "code") or _scan_json(prefix, "Code") or code
    if code is not None:
        draft.code = draft.exception = _strip_type(code)
        draft.source = CodeSource.PREFIX_SCAN
        draft.message = _scan_json(prefix, "message") or _scan_json(prefix, "Message") or ""
    draft.operation_error = _scan_json(prefix, "errorCode")
    return draft


def _json_headers(draft: _Draft, headers: dict[str, str], rest: bool, apply_query_error: bool) -> None:
    # botocore _do_query_compatible_error_parse: "x-amzn-query-error: Code;Sender" replaces the code
    # (the old Query code of a service that moved to JSON); the original is kept as QueryErrorCode.
    query_error = headers.get("x-amzn-query-error")
    if query_error is not None and apply_query_error and draft.code is not None:
        parts = query_error.split(";")
        if len(parts) == 2 and parts[0]:
            draft.exception = draft.code
            draft.code = _clip(parts[0])
            draft.error_type = _clip(parts[1])
            draft.source = CodeSource.QUERY_ERROR_HEADER
    # RestJSONParser._inject_error_code: the x-amzn-ErrorType header comes first of all.
    error_type = headers.get("x-amzn-errortype")
    if rest and error_type is not None:
        draft.code = draft.exception = _clip(_strip_type(error_type))
        draft.source = CodeSource.ERROR_TYPE_HEADER
    draft.request_id = headers.get("x-amzn-requestid")


def _xml_prefix(status: int, prefix: bytes) -> _Draft:
    draft = _from_status(status, _TRUNCATED)
    code = _scan_xml(prefix, "Code")
    if code is not None:
        draft.code = draft.exception = code
        draft.source = CodeSource.PREFIX_SCAN
        draft.message = _scan_xml(prefix, "Message") or ""
        draft.error_type = _scan_xml(prefix, "Type")
    draft.request_id = _scan_xml(prefix, "RequestId") or _scan_xml(prefix, "RequestID")
    return draft


def _unparsed_xml(status: int, body: bytes, truncated: bool) -> _Draft:
    if truncated:
        return _xml_prefix(status, body)
    return _from_status(status, _EMPTY if not body.strip() else _MALFORMED)


_S3_METADATA = frozenset({"Code", "Message", "RequestId", "HostId"})


def _rest_xml_error(status: int, body: bytes, headers: dict[str, str], truncated: bool) -> _Draft:
    """botocore RestXMLParser._do_error_parse: S3's <Error> root, else <ErrorResponse><Error>; an empty or
    unparsable body gives the status as the code (S3 HEAD 404 -> "404")."""
    root = _parse_xml(body) if body else None
    if root is None:
        draft = _unparsed_xml(status, body, truncated)
        draft.request_id = draft.request_id or headers.get("x-amz-request-id")
        draft.host_id = headers.get("x-amz-id-2")
        return draft
    fields = _children(root)
    if root.tag == "Error":  # exactly: a namespaced <Error xmlns=...> is not S3's shape for botocore
        code = _leaf_text(fields.get("Code"))
        draft = _Draft(  # positional (keywords cost more): status, code, message, state, source, exception
            status,
            code,
            _leaf_text(fields.get("Message")) or "",
            _PARSED if code else _MALFORMED,
            _FROM_BODY if code is not None else _NO_CODE,
            code,
        )
        draft.extra = tuple(
            (name, text)
            for name, node in fields.items()
            if name not in _S3_METADATA and (text := _leaf_text(node)) is not None
        )
        if "x-amzn-requestid" in headers:
            draft.request_id = headers["x-amzn-requestid"]
        else:
            draft.request_id = headers.get("x-amz-request-id") or _leaf_text(fields.get("RequestId"))
            draft.host_id = headers.get("x-amz-id-2") or _leaf_text(fields.get("HostId"))
        return draft
    # Other rest-xml services: <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>,
    # merged over botocore's default {'Code': '', 'Message': ''}.
    draft = _query_like(status, fields, default_code="")
    draft.request_id = draft.request_id or headers.get("x-amzn-requestid")
    return draft


def _query_like(status: int, fields: dict[str, _Node], default_code: str | None) -> _Draft:
    error = _element(fields.get("Error"))
    code: str | None = default_code
    message = ""
    error_type = None
    if isinstance(error, Element) and len(error):
        inner = _children(error)
        if "Code" in inner:
            code = _leaf_text(inner["Code"])
        message = _leaf_text(inner.get("Message")) or ""
        error_type = _leaf_text(inner.get("Type"))
    draft = _Draft(  # positional: ..., exception, operation_error, operation_error_details, error_type
        status,
        code,
        message,
        _PARSED if code else _MALFORMED,
        _FROM_BODY if code else _NO_CODE,
        code,
        None,
        None,
        error_type,
    )
    draft.request_id = _leaf_text(fields.get("RequestId")) or _leaf_text(fields.get("RequestID"))
    return draft


def _query_error(status: int, body: bytes, headers: dict[str, str], truncated: bool) -> _Draft:
    """botocore QueryParser / EC2QueryParser._do_error_parse: `<ErrorResponse><Error>` (Query) or
    `<Response><Errors><Error>` (EC2, RequestID); `Errors` is flattened into the top level."""
    root = _parse_xml(body)
    if root is None:
        # botocore raises ResponseParserError here; the status is the only fact left.
        draft = _unparsed_xml(status, body, truncated)
    else:
        fields = _children(root)
        errors = _element(fields.pop("Errors", None))
        if errors is not None:
            fields.update(_children(errors))
        draft = _query_like(status, fields, default_code=None)
    draft.request_id = headers.get("x-amzn-requestid") or draft.request_id
    return draft


def _sniffed(body: bytes) -> Protocol:
    """For an unknown protocol: JSON when the body looks like JSON, else the XML rules."""
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        return _JSON
    return _REST_XML if head == b"<" else _JSON


def extract_error(
    protocol: Protocol,
    status: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    *,
    body_truncated: bool = False,
    limit: int | None = None,
    max_decoded: int = DEFAULT_DECODED_LIMIT,
) -> ErrorInfo:
    """Everything an error response says, read as botocore reads it for `protocol`.

    `body` is what the handler read (at most its configured limit); `body_truncated` says the upstream
    sent more. `limit`, when given, cuts `body` here too. Never raises.
    """
    try:
        return _extract(protocol, status, headers, body, body_truncated, limit, max_decoded)
    except Exception:  # a bug must not break the proxy's response path: report what the status says
        draft = _from_status(status, _MALFORMED)
        return _finish(protocol, draft, compressed=False, examined=len(body))


def _extract(  # noqa: PLR0917 - extract_error's arguments, passed on positionally (the hot path)
    protocol: Protocol,
    status: int,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    truncated: bool,
    limit: int | None,
    max_decoded: int,
) -> ErrorInfo:
    if limit is not None and len(body) > limit:
        body, truncated = body[: max(limit, 0)], True
    examined = len(body)
    found = _header_map(headers)
    compressed = False
    if "content-encoding" in found:
        decoded = _decode_content(body, found["content-encoding"], max_decoded)
        if decoded is None:
            draft = _from_status(status, _MALFORMED)
            draft.request_id = found.get("x-amzn-requestid") or found.get("x-amz-request-id")
            return _finish(protocol, draft, compressed=True, examined=examined)
        body, compressed, cut = decoded
        truncated = truncated or cut
    if _is_generic_error(status, body):
        draft = _from_status(status, _EMPTY if not body.strip() else _MALFORMED)
        draft.request_id = found.get("x-amzn-requestid") or found.get("x-amz-request-id")
        draft.host_id = found.get("x-amz-id-2")
        return _finish(protocol, draft, compressed=compressed, examined=examined)
    wire = _sniffed(body) if protocol is _UNKNOWN else protocol
    if wire is _JSON:
        draft = _json_error(status, body, found, rest=False, truncated=truncated)
    elif wire is _REST_JSON:
        draft = _json_error(status, body, found, rest=True, truncated=truncated)
    elif wire is _REST_XML:
        draft = _rest_xml_error(status, body, found, truncated)
        if protocol is _UNKNOWN and not draft.code:  # maybe Query / EC2 XML after all
            query = _query_error(status, body, found, truncated)
            draft = query if query.code else draft
    else:
        draft = _query_error(status, body, found, truncated)
    if truncated and draft.state is _PARSED:
        draft.state = _TRUNCATED
    return _finish(protocol, draft, compressed=compressed, examined=examined)


def _finish(protocol: Protocol, draft: _Draft, *, compressed: bool, examined: int) -> ErrorInfo:
    request_id, host_id = draft.request_id, draft.host_id
    # Every field, in order, filled through the slots: a frozen dataclass's __init__ (15 fields) was the
    # costliest step of a JSON error.
    return _make_error_info(
        protocol,
        draft.status,
        draft.code,
        draft.message,
        draft.state,
        draft.source,
        draft.exception if draft.exception is not None else draft.code,
        draft.operation_error,
        draft.operation_error_details,
        draft.error_type,
        (request_id if len(request_id) <= _MAX_FIELD else request_id[:_MAX_FIELD]) if request_id else None,
        (host_id if len(host_id) <= _MAX_FIELD else host_id[:_MAX_FIELD]) if host_id else None,
        draft.extra,
        compressed,
        examined,
    )
