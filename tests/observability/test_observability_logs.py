"""The canonical request line, lifecycle lines, the console view and redaction."""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from observability.leak_scan import find_leaks
from observability_support import catalogs, finding, record, s3_error, storagegateway_error

from proxy.core.errors.classify import classify
from proxy.core.errors.extract import extract_error
from proxy.core.model import Protocol, Severity
from proxy.observability import logs as logs_module
from proxy.observability.logs import (
    ERROR_KEYS,
    FINDING_KEYS,
    REDACTED,
    REQUEST_KEYS,
    REQUIRED_KEYS,
    classification_fields,
    configure_logging,
    console_line,
    get_logger,
    log_request,
    redact_bytes,
    redact_text,
    register_secrets,
    request_event,
)
from proxy.record import OUTCOME_ERROR, OUTCOME_REJECTED, OUTCOME_UPSTREAM_FAILURE, OUTCOMES

EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request, "
    f"SignedHeaders=content-type;host;x-amz-date, Signature={SIGNATURE}"
)
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD6m+SAMPLE/TOKEN=="
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def fresh_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registered secrets stay within the test (a global registration would hide other tests' leaks)."""
    monkeypatch.setattr(logs_module, "_SECRETS", logs_module._Secrets())


# -- the request line --------------------------------------------------------------------------------


def test_request_event_has_exactly_the_schema_keys() -> None:
    assert set(request_event(record())) == REQUEST_KEYS


def test_one_request_gives_one_json_line_with_time_level_event_first(logs: Any) -> None:
    log_request(get_logger(), record(retry_attempt=2, retry_max=3, invocation_id="inv-1", skew_seconds=-0.4))
    (line,) = logs.lines
    event = orjson.loads(line)
    assert list(event)[:3] == ["time", "level", "event"]
    assert REQUIRED_KEYS["request"] <= set(event)
    assert ISO_UTC.match(event["time"])
    assert event["level"] == "info"
    assert event["event"] == "request"
    assert event["service"] == "storagegateway" and event["operation"] == "ListGateways"
    assert event["status"] == 200 and event["upstream_status"] == 200
    assert event["duration_ms"] == 4.2 and event["upstream_ms"] == 3.1
    assert event["bytes_in"] == 2 and event["bytes_out"] == 31
    assert event["answered_by"] == "upstream"
    assert event["sigv4"] == "valid"
    assert event["retry_attempt"] == 2 and event["retry_max"] == 3 and event["invocation_id"] == "inv-1"
    assert event["skew_seconds"] == -0.4
    assert event["error"] is None and event["findings"] == []


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_level_is_warning_for_rejections_and_upstream_failures(outcome: str, logs: Any) -> None:
    log_request(get_logger(), record(outcome=outcome))
    (event,) = logs.events("request")
    expected = "warning" if outcome in {OUTCOME_REJECTED, OUTCOME_UPSTREAM_FAILURE} else "info"
    assert event["level"] == expected


def test_nothing_is_written_for_a_disabled_level(logs: Any) -> None:
    configure_logging("json", "warning", stream=logs)
    logger = get_logger()
    log_request(logger, record())
    log_request(logger, record(outcome=OUTCOME_ERROR, status=400))
    assert logs.lines == []
    log_request(logger, record(outcome=OUTCOME_REJECTED, status=403, answered_by_proxy=True))
    (event,) = logs.events("request")
    assert event["answered_by"] == "proxy"


def test_classification_and_findings_in_the_line(logs: Any) -> None:
    classification = storagegateway_error(
        "InvalidGatewayRequestException", "GatewayNotFound", "DescribeGatewayInformation"
    )
    skewed = finding(
        "clock.window", Severity.WARNING, "RequestTimeTooSkewed", "the clock is 6 minutes behind"
    )
    skewed = type(skewed)(
        skewed.check, skewed.severity, skewed.error, skewed.explanation, debug=(("max_skew", "900"),)
    )
    log_request(
        get_logger(),
        record(status=400, outcome=OUTCOME_ERROR, classification=classification, findings=(skewed,)),
    )
    (event,) = logs.events("request")
    error = event["error"]
    assert isinstance(error, dict) and set(error) >= ERROR_KEYS
    assert error["exception"] == "InvalidGatewayRequestException"
    assert error["operation_error"] == "GatewayNotFound"
    assert error["category"] == "not_found"
    assert error["retryable"] is False and error["fault"] == "client"
    assert error["request_id"] == "req-1"
    (entry,) = event["findings"]
    assert set(entry) >= FINDING_KEYS
    assert entry == {
        "check": "clock.window",
        "severity": "warning",
        "code": "RequestTimeTooSkewed",
        "explanation": "the clock is 6 minutes behind",
        "debug": {"max_skew": "900"},
    }


def test_the_log_keeps_the_real_code_and_the_contract_findings(logs: Any) -> None:
    invented = s3_error("MyVendorQuirk", 400)
    log_request(
        get_logger(), record(service="s3", status=400, outcome=OUTCOME_ERROR, classification=invented)
    )
    (event,) = logs.events("request")
    assert event["error"]["code"] == "MyVendorQuirk"
    assert [c["check"] for c in event["error"]["contract"]] == ["undocumented_code"]


# -- lifecycle lines and library logs ----------------------------------------------------------------


def test_lifecycle_events_are_their_own_lines(logs: Any) -> None:
    logger = get_logger()
    logger.info(
        "started", version="0.1.0", listen="127.0.0.1:8080", admin="127.0.0.1:9090", upstream="u", mode="x"
    )
    logger.warning("upstream_down", upstream="http://127.0.0.1:1")
    for kind in ("started", "upstream_down"):
        (event,) = logs.events(kind)
        assert REQUIRED_KEYS[kind] <= set(event)
    assert logs.events("upstream_down")[0]["level"] == "warning"


def test_standard_logging_from_libraries_arrives_as_json(logs: Any) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("aiohttp.server").exception("Error handling request")
    (event,) = logs.events("library")
    assert event["level"] == "error"
    assert event["logger"] == "aiohttp.server"
    assert event["message"] == "Error handling request"
    assert "RuntimeError: boom" in event["exception"]


def test_aiohttp_access_log_is_off() -> None:
    assert logging.getLogger("aiohttp.access").disabled


# -- formats and the console view --------------------------------------------------------------------


def test_auto_format_is_json_off_a_terminal_and_console_on_one(logs: Any) -> None:
    assert configure_logging("auto", "info", stream=io.StringIO()) == "json"
    assert configure_logging("auto", "info", stream=Terminal()) == "console"
    with pytest.raises(ValueError, match="log format"):
        configure_logging("xml", "info", stream=io.StringIO())


def _console_output(records: list[Any], stream: io.StringIO) -> str:
    configure_logging("console", "info", stream=stream)
    logger = get_logger()
    for item in records:
        log_request(logger, item)
    return stream.getvalue()


def test_console_shows_one_readable_line_per_call() -> None:
    classification = storagegateway_error("InvalidGatewayRequestException", "GatewayNotFound", "ListGateways")
    output = _console_output(
        [
            record(status=400, outcome=OUTCOME_ERROR, classification=classification, duration_seconds=0.0031),
            record(method="GET", service="s3", operation="GetObject", status=200, duration_seconds=0.0123),
        ],
        io.StringIO(),
    )
    assert output.splitlines() == [
        "POST storagegateway.ListGateways 400 InvalidGatewayRequestException/GatewayNotFound client 3.1ms",
        "GET s3.GetObject 200 12.3ms",
    ]


def test_console_explains_findings_retries_skew_and_local_answers() -> None:
    mismatch = finding("signature.verify", Severity.ERROR, "InvalidSignatureException", "wrong secret key")
    output = _console_output(
        [
            record(
                status=400,
                outcome=OUTCOME_REJECTED,
                answered_by_proxy=True,
                findings=(mismatch,),
                skew_seconds=-412.0,
                retry_attempt=2,
                retry_max=3,
                duration_seconds=0.0009,
            )
        ],
        io.StringIO(),
    )
    assert output.splitlines() == [
        "POST storagegateway.ListGateways 400 0.9ms (answered by sigwatch)",
        "  ↳ error signature.verify: InvalidSignatureException — wrong secret key",
        "  ↳ clock skew -412s",
        "  ↳ SDK retry: attempt 2 of 3",
    ]


def test_console_colours_by_status_class_on_a_terminal() -> None:
    output = _console_output([record(status=503, outcome=OUTCOME_ERROR), record()], Terminal())
    first, second = output.splitlines()
    assert first.startswith("\x1b[31m") and second.startswith("\x1b[32m")
    assert ANSI.sub("", first) == "POST storagegateway.ListGateways 503 4.2ms"


def test_console_lifecycle_lines_are_readable() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    get_logger().warning("upstream_down", upstream="http://127.0.0.1:1")
    line = stream.getvalue()
    assert "upstream_down" in line and "upstream=http://127.0.0.1:1" in line and "warning" in line


def test_console_line_is_a_pure_function_of_the_event() -> None:
    event = {"method": "PUT", "service": None, "operation": None, "status": 502, "duration_ms": 1.25,
             "upstream_failure": "refused", "answered_by": "proxy"}  # fmt: skip
    assert console_line(event, colors=False) == "PUT ?.? 502 upstream refused 1.2ms (answered by sigwatch)"


# -- redaction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"Authorization: {AUTHORIZATION}", "SignedHeaders=content-type;host;x-amz-date, Signature="),
        (f"GET /b/k?X-Amz-Credential=AKID%2F20150830&X-Amz-Signature={SIGNATURE}&x=1", "&x=1"),
        (f"/k?X-Amz-Security-Token={TOKEN}&X-Amz-Date=20150830T123600Z", "&X-Amz-Date=20150830T123600Z"),
        (f"host:example.com\nx-amz-security-token:{TOKEN}\nx-amz-date:20150830T123600Z", "\nx-amz-date:"),
        (f"chunk-signature={SIGNATURE}\r\n", "\r\n"),
        (f"[default]\naws_secret_access_key = {EXAMPLE_SECRET}\n", "[default]\n"),
        (f'{{"SignatureProvided": "{SIGNATURE}", "x": 1}}', '"x": 1'),
    ],
    ids=[
        "authorization",
        "presigned",
        "presigned-token",
        "canonical-request",
        "chunk",
        "credentials",
        "s3-echo",
    ],
)
def test_secrets_and_signatures_are_redacted_from_text(text: str, kept: str) -> None:
    redacted = redact_text(text)
    assert SIGNATURE not in redacted and TOKEN not in redacted and EXAMPLE_SECRET not in redacted
    assert REDACTED in redacted and kept in redacted
    assert redact_bytes(text.encode()) == redacted.encode()


def test_hashes_and_states_that_are_not_secrets_stay() -> None:
    text = f"x-amz-content-sha256:{EMPTY_SHA256}\nsigv4=invalid signature_state=valid token_count=3"
    assert redact_text(text) == text


def test_a_logged_request_never_shows_what_the_client_signed_with(logs: Any, fresh_secrets: None) -> None:
    register_secrets([EXAMPLE_SECRET, TOKEN, None, "short"])
    canonical = f"POST\n/\n\nhost:example.com\nx-amz-security-token:{TOKEN}\n\nhost;x-amz-security-token\n"
    mismatch = finding("signature.verify", Severity.ERROR, "InvalidSignatureException", "signature mismatch")
    mismatch = type(mismatch)(
        mismatch.check,
        mismatch.severity,
        mismatch.error,
        f"{mismatch.explanation}; provided Signature={SIGNATURE}",
        debug=(("canonical_request", canonical), ("provided", f'"signature": "{SIGNATURE}"')),
    )
    logger = get_logger()
    log_request(logger, record(findings=(mismatch,), notes=[f"client config had {EXAMPLE_SECRET}"]))
    logger.info(
        "started", authorization=AUTHORIZATION, secret_key=None, credentials={"x-amz-security-token": TOKEN}
    )
    assert len(logs.lines) == 2
    for line in logs.lines:
        text = line.decode()
        assert SIGNATURE not in text and TOKEN not in text and EXAMPLE_SECRET not in text
        assert find_leaks(text) == []
        orjson.loads(line)  # still valid JSON after redaction
    started = logs.events("started")[0]
    assert started["secret_key"] is None
    assert started["credentials"] == {"x-amz-security-token": REDACTED}
    assert "Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-east-1/iam/aws4_request" in started["authorization"]


def test_registered_secrets_are_redacted_on_the_console_too(fresh_secrets: None) -> None:
    register_secrets([EXAMPLE_SECRET])
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    get_logger().info("config", note=f"secret {EXAMPLE_SECRET} loaded", auth=AUTHORIZATION)
    output = stream.getvalue()
    assert EXAMPLE_SECRET not in output and SIGNATURE not in output and REDACTED in output


_HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_FILLER = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_SIGNATURE_CONTEXTS = (
    "Signature={}",
    "X-Amz-Signature={}",
    "x-amz-signature={}",
    "chunk-signature={}",
    '"SignatureProvided":"{}"',
    "calculated signature: {}",
    "SIGNATURE={}",
)


@settings(max_examples=150, deadline=None)
@given(
    before=_FILLER,
    after=_FILLER,
    value=_HEX,
    context=st.sampled_from(_SIGNATURE_CONTEXTS),
)
def test_a_signature_value_never_survives_rendering(
    before: str, after: str, value: str, context: str
) -> None:
    message = before + context.format(value) + " " + after
    line = logs_module._json(None, "info", {"time": "t", "level": "info", "event": "e", "message": message})
    assert value.encode() not in line
    assert orjson.loads(line)["event"] == "e"
    assert value not in redact_text(message)


def test_errors_of_one_kind_share_their_verdict_but_keep_their_own_request_id_and_message() -> None:
    """The verdict's part of the error fields is built once per kind; each response keeps its own facts."""

    def gateway_missing(request_id: str, message: str) -> Any:
        body = orjson.dumps({"__type": "InvalidGatewayRequestException", "message": message})
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
        info = extract_error(Protocol.JSON, 400, headers, body)
        return classify(info, "storagegateway", "ListGateways", catalogs())

    first, second = gateway_missing("req-1", "first"), gateway_missing("req-2", "second")
    assert first.verdict is second.verdict
    fields = classification_fields(first)
    for entry in fields.get("contract", []):  # a caller changes its own copy in place
        entry["check"] = "mine"
    fields.setdefault("contract", []).append({"check": "mine"})
    fields["exception"] = "Changed"
    again, other = classification_fields(first), classification_fields(second)
    assert again["exception"] == other["exception"] == "InvalidGatewayRequestException"
    assert "mine" not in str(again.get("contract"))
    assert (again["request_id"], again["message"]) == ("req-1", "first")
    assert (other["request_id"], other["message"]) == ("req-2", "second")
