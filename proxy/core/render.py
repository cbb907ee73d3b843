"""Render an AwsError in the wire shape of a protocol, byte for byte what AWS sends.

One helper serves every caller that answers on AWS's behalf: enforce-mode rejections, the proxy's own
502/504 answers and the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

import orjson

from proxy.core.model import AwsError, Protocol

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class RenderedError:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _xml_elements(pairs: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"<{name}>{escape(value)}</{name}>" for name, value in pairs)


def render_error(
    protocol: Protocol,
    error: AwsError,
    request_id: str,
    *,
    json_version: str = "1.1",
    host_id: str = "",
    xml_namespace: str | None = None,
    head: bool = False,
) -> RenderedError:
    """The status, headers and body AWS answers `error` with, for `protocol`.

    `head`: a HEAD request gets the status and headers but no body (as S3 does for HeadObject 404s).
    """
    headers: list[tuple[str, str]]
    if protocol in (Protocol.JSON, Protocol.UNKNOWN):
        # AWS JSON 1.0/1.1: `{"__type": ..., "message": ...}`; Storage Gateway nests its operation error
        # code under "error" (seed 000, "Error Responses").
        doc: dict[str, object] = {"__type": error.code, "message": error.message}
        if error.operation_error is not None:
            doc["error"] = {"errorCode": error.operation_error}
        content_type = (
            f"application/x-amz-json-{json_version}" if protocol is Protocol.JSON else "application/json"
        )
        headers = [("Content-Type", content_type), ("x-amzn-RequestId", request_id)]
        body = orjson.dumps(doc)
    elif protocol is Protocol.REST_JSON:
        # REST-JSON: botocore reads the code from x-amzn-ErrorType first, then the body.
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error.code),
        ]
        body = orjson.dumps({"__type": error.code, "message": error.message})
    elif protocol is Protocol.REST_XML:
        # S3: <Error><Code/><Message/>...extra...<RequestId/><HostId/></Error>
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
        if host_id:
            headers.append(("x-amz-id-2", host_id))
        body = (
            _XML_DECLARATION
            + "<Error>"
            + _xml_elements((("Code", error.code), ("Message", error.message)))
            + _xml_elements(error.extra)
            + _xml_elements((("RequestId", request_id), ("HostId", host_id)))
            + "</Error>"
        ).encode()
    elif protocol is Protocol.QUERY:
        # Query: <ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/>
        xmlns = f' xmlns="{escape(xml_namespace)}"' if xml_namespace else ""
        fault = "Sender" if error.sender_fault else "Receiver"
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
        body = (
            f"<ErrorResponse{xmlns}><Error>"
            + _xml_elements((("Type", fault), ("Code", error.code), ("Message", error.message)))
            + _xml_elements(error.extra)
            + f"</Error><RequestId>{escape(request_id)}</RequestId></ErrorResponse>"
        ).encode()
    else:
        # EC2: <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
        body = (
            _XML_DECLARATION
            + "<Response><Errors><Error>"
            + _xml_elements((("Code", error.code), ("Message", error.message)))
            + f"</Error></Errors><RequestID>{escape(request_id)}</RequestID></Response>"
        ).encode()
    if head:
        body = b""
    return RenderedError(status=error.status, headers=tuple(headers), body=body)
