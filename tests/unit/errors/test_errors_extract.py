"""extract_error, case by case: the fields besides the code, and the bodies that are not error documents."""

from __future__ import annotations

import gzip
import zlib

import pytest

from proxy.core.errors.extract import BodyState, CodeSource, extract_error
from proxy.core.model import Protocol

JSON_HEADERS = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", "req-1")]


def test_storagegateway_two_level_error() -> None:
    body = (
        b'{"__type":"InvalidGatewayRequestException","message":"The specified volume was not found.",'
        b'"error":{"errorCode":"VolumeNotFound","errorDetails":{"volumeARN":"arn:x"}}}'
    )
    info = extract_error(Protocol.JSON, 400, JSON_HEADERS, body)
    assert (info.code, info.exception, info.operation_error) == (
        "InvalidGatewayRequestException",
        "InvalidGatewayRequestException",
        "VolumeNotFound",
    )
    assert info.operation_error_details == '{"volumeARN":"arn:x"}'
    assert info.message == "The specified volume was not found."
    assert info.request_id == "req-1"
    assert (info.body_state, info.code_source) == (BodyState.PARSED, CodeSource.BODY)


def test_json_message_capitalised_and_details_as_text() -> None:
    body = b'{"__type":"X","Message":"capital M","error":{"errorCode":"Y","errorDetails":"text"}}'
    info = extract_error(Protocol.JSON, 400, [], body)
    assert info.message == "capital M"
    assert info.operation_error_details == "text"


def test_query_compatible_json_keeps_the_modeled_exception() -> None:
    headers = [("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")]
    info = extract_error(Protocol.JSON, 400, headers, b'{"__type":"com.amazonaws.sqs#QueueDoesNotExist"}')
    assert info.code == "AWS.SimpleQueueService.NonExistentQueue"
    assert info.exception == "QueueDoesNotExist"
    assert info.error_type == "Sender"
    assert info.code_source is CodeSource.QUERY_ERROR_HEADER


def test_rest_json_error_type_header_wins() -> None:
    headers = [("X-Amzn-ErrorType", "ResourceNotFoundException:http://internal.amazon.com/x")]
    info = extract_error(Protocol.REST_JSON, 404, headers, b'{"code":"Other","message":"m"}')
    assert info.code == "ResourceNotFoundException"
    assert info.code_source is CodeSource.ERROR_TYPE_HEADER
    assert info.message == "m"


def test_s3_error_keeps_its_extra_elements_and_both_request_ids() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>gone</Message>'
        b"<Key>a/b</Key><BucketName>bkt</BucketName><RequestId>body-id</RequestId><HostId>body-host</HostId></Error>"
    )
    headers = [("x-amz-request-id", "hdr-id"), ("x-amz-id-2", "hdr-host")]
    info = extract_error(Protocol.REST_XML, 404, headers, body)
    assert (info.code, info.message) == ("NoSuchKey", "gone")
    assert info.extra == (("Key", "a/b"), ("BucketName", "bkt"))
    assert (info.request_id, info.host_id) == ("hdr-id", "hdr-host")
    # without the headers, the body's ids
    info = extract_error(Protocol.REST_XML, 404, [], body)
    assert (info.request_id, info.host_id) == ("body-id", "body-host")


def test_s3_head_404_has_no_body() -> None:
    info = extract_error(Protocol.REST_XML, 404, [("x-amz-request-id", "r"), ("x-amz-id-2", "h")], b"")
    assert (info.code, info.message) == ("404", "Not Found")
    assert (info.body_state, info.code_source) == (BodyState.EMPTY, CodeSource.STATUS)
    assert (info.request_id, info.host_id) == ("r", "h")


def test_query_error_response() -> None:
    body = (
        b'<ErrorResponse xmlns="http://importexport.amazonaws.com/"><Error><Type>Sender</Type>'
        b"<Code>InvalidJobIdException</Code><Message>m</Message></Error><RequestId>q-1</RequestId></ErrorResponse>"
    )
    info = extract_error(Protocol.QUERY, 400, [], body)
    assert (info.code, info.message, info.error_type, info.request_id) == (
        "InvalidJobIdException",
        "m",
        "Sender",
        "q-1",
    )


def test_ec2_response_errors_first_error_and_request_id() -> None:
    body = (
        b"<Response><Errors><Error><Code>First</Code><Message>a</Message></Error>"
        b"<Error><Code>Second</Code></Error></Errors><RequestID>e-1</RequestID></Response>"
    )
    info = extract_error(Protocol.EC2, 400, [], body)
    assert (info.code, info.message, info.request_id) == ("First", "a", "e-1")


@pytest.mark.parametrize("protocol", [Protocol.JSON, Protocol.REST_XML, Protocol.QUERY, Protocol.REST_JSON])
def test_load_balancer_html_5xx(protocol: Protocol) -> None:
    body = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    info = extract_error(protocol, 502, [("Content-Type", "text/html")], body)
    assert (info.code, info.message, info.body_state) == ("502", "Bad Gateway", BodyState.MALFORMED)


def test_gzip_body_is_decompressed() -> None:
    body = gzip.compress(b'{"__type":"ThrottlingException","message":"Rate exceeded."}')
    info = extract_error(Protocol.JSON, 400, [("Content-Encoding", "gzip")], body)
    assert (info.code, info.message, info.compressed) == ("ThrottlingException", "Rate exceeded.", True)
    assert info.bytes_examined == len(body)


def test_deflate_body_is_decompressed() -> None:
    xml = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
    for data in (zlib.compress(xml), zlib.compress(xml)[2:-4]):  # zlib-wrapped and raw deflate
        info = extract_error(Protocol.REST_XML, 503, [("Content-Encoding", "deflate")], data)
        assert info.code == "SlowDown"


def test_gzip_bomb_is_decoded_only_up_to_the_limit() -> None:
    document = b'{"__type":"ThrottlingException","message":"' + b"x" * 50_000_000 + b'"}'
    bomb = gzip.compress(document, compresslevel=9)
    assert len(bomb) < 100_000
    info = extract_error(Protocol.JSON, 400, [("Content-Encoding", "gzip")], bomb, max_decoded=4096)
    assert info.code == "ThrottlingException"  # from the decoded prefix
    assert info.body_state is BodyState.TRUNCATED
    assert info.code_source is CodeSource.PREFIX_SCAN


def test_broken_gzip_and_unknown_encoding_are_malformed() -> None:
    info = extract_error(Protocol.JSON, 400, [("Content-Encoding", "gzip")], b"not gzip at all")
    assert (info.code, info.body_state) == ("400", BodyState.MALFORMED)
    info = extract_error(Protocol.JSON, 400, [("Content-Encoding", "br")], b"\x1b\x00")
    assert (info.code, info.body_state) == ("400", BodyState.MALFORMED)
    info = extract_error(Protocol.JSON, 400, [("Content-Encoding", "identity")], b'{"__type":"A"}')
    assert info.code == "A" and not info.compressed


def test_truncated_body_reads_the_prefix() -> None:
    body = b'{"__type":"com.amazon#ProvisionedThroughputExceededException","message":"slow down pl'
    # the upstream sent more than the handler read: the prefix names the error
    info = extract_error(Protocol.JSON, 400, [], body, body_truncated=True)
    assert (info.code, info.body_state, info.code_source) == (
        "ProvisionedThroughputExceededException",
        BodyState.TRUNCATED,
        CodeSource.PREFIX_SCAN,
    )
    # the upstream itself sent this broken body: botocore's rule, the status
    info = extract_error(Protocol.JSON, 400, [], body)
    assert (info.code, info.body_state) == ("400", BodyState.MALFORMED)


def test_limit_cuts_the_body_and_marks_it_truncated() -> None:
    body = b"<Error><Code>AccessDenied</Code><Message>" + b"m" * 10_000 + b"</Message></Error>"
    info = extract_error(Protocol.REST_XML, 403, [], body, limit=100)
    assert info.bytes_examined == 100
    assert (info.code, info.body_state) == ("AccessDenied", BodyState.TRUNCATED)
    assert extract_error(Protocol.REST_XML, 403, [], body, limit=10).code == "403"


@pytest.mark.parametrize(
    ("protocol", "body", "code", "state"),
    [
        (Protocol.JSON, b"", "400", BodyState.EMPTY),
        (Protocol.JSON, b"   ", "400", BodyState.EMPTY),
        (Protocol.JSON, b"[1, 2]", "400", BodyState.MALFORMED),
        (Protocol.JSON, b'{"__type": 5}', "400", BodyState.MALFORMED),
        (Protocol.JSON, b'{"__type": null}', "", BodyState.MALFORMED),
        (Protocol.JSON, b"\xff\xfe{}", "400", BodyState.MALFORMED),
        (Protocol.JSON, b'{"message":"no type"}', "400", BodyState.PARSED),
        (Protocol.REST_XML, b"<Error><Message>no code</Message></Error>", None, BodyState.MALFORMED),
        (Protocol.REST_XML, b'<Error xmlns="urn:x"><Code>A</Code></Error>', "", BodyState.MALFORMED),
        (Protocol.QUERY, b"", "400", BodyState.EMPTY),
        (Protocol.QUERY, b"<Oops>", "400", BodyState.MALFORMED),
        (Protocol.QUERY, b"<Error><Code>A</Code></Error>", None, BodyState.MALFORMED),
    ],
)
def test_bodies_that_are_not_error_documents(
    protocol: Protocol, body: bytes, code: str | None, state: BodyState
) -> None:
    info = extract_error(protocol, 400, [], body)
    assert (info.code, info.body_state) == (code, state)


def test_xml_entities_are_never_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<Error><Code>&lol2;</Code></Error>"
    )
    info = extract_error(Protocol.REST_XML, 400, [], bomb)
    assert (info.code, info.body_state) == ("400", BodyState.MALFORMED)
    external = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><Error><Code>&x;</Code></Error>'
    assert extract_error(Protocol.QUERY, 400, [], external).code == "400"


def test_entity_references_without_a_dtd_are_errors() -> None:
    assert extract_error(Protocol.REST_XML, 400, [], b"<Error><Code>&boom;</Code></Error>").code == "400"
    # the five predefined entities are text
    info = extract_error(
        Protocol.REST_XML, 400, [], b"<Error><Code>A&amp;B</Code><Message>&lt;x&gt;</Message></Error>"
    )
    assert (info.code, info.message) == ("A&B", "<x>")


def test_unknown_protocol_is_sniffed() -> None:
    assert extract_error(Protocol.UNKNOWN, 400, [], b'{"__type":"J"}').code == "J"
    assert (
        extract_error(Protocol.UNKNOWN, 404, [], b"<Error><Code>NoSuchKey</Code></Error>").code == "NoSuchKey"
    )
    query = b"<ErrorResponse><Error><Code>Q</Code></Error></ErrorResponse>"
    assert extract_error(Protocol.UNKNOWN, 400, [], query).code == "Q"
    ec2 = b"<Response><Errors><Error><Code>E</Code></Error></Errors></Response>"
    assert extract_error(Protocol.UNKNOWN, 400, [], ec2).code == "E"


def test_long_fields_are_clipped() -> None:
    info = extract_error(
        Protocol.JSON, 400, [("x-amzn-RequestId", "r" * 5000)], b'{"__type":"' + b"A" * 5000 + b'"}'
    )
    assert len(info.code or "") == 1024
    assert len(info.request_id or "") == 1024
