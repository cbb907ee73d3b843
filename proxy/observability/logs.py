"""Structured logs: exactly one canonical line per request, plus lifecycle events.

JSON (orjson, bytes logger) when not on a terminal; a coloured one-line-per-call console view for
local debugging. A redaction processor runs last before rendering, as a safety net behind the rule
that no secret is ever put in an event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any

import orjson
import structlog

from proxy.record import RequestRecord

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

# Signatures and tokens, wherever they might appear in free text (headers echoed in an error message...).
_SECRET_PATTERNS = (
    re.compile(r"(Signature=)[0-9a-fA-F]{8,}"),
    re.compile(r"(X-Amz-Signature=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(X-Amz-Security-Token=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(x-amz-security-token:\s*)\S+", re.IGNORECASE),
    re.compile(r"(aws_secret_access_key\s*=\s*)\S+", re.IGNORECASE),
)
_MARKERS = ("ignature", "oken", "secret")


def redact_text(text: str) -> str:
    if not any(marker in text for marker in _MARKERS):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\1[redacted]", text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            event[key] = _redact_value(value)
    return event


_STYLES = {"2": "\x1b[32m", "3": "\x1b[36m", "4": "\x1b[33m", "5": "\x1b[31m"}
_RESET = "\x1b[0m"
_DIM = "\x1b[2m"


def console_line(event: MutableMapping[str, Any], colors: bool) -> str:
    """`POST storagegateway.ListGateways 400 InvalidGatewayRequestException/GatewayNotFound client 3.1ms`"""
    status = str(event.get("status", ""))
    target = f"{event.get('service') or '?'}.{event.get('operation') or '?'}"
    parts = [str(event.get("method", "")), target, status]
    error = event.get("error")
    if isinstance(error, dict):
        label = error.get("exception") or ""
        if error.get("code") and error.get("code") != label:
            label = f"{label}/{error['code']}" if label else str(error["code"])
        parts.append(label or "error")
        parts.append(str(error.get("fault") or ""))
    parts.append(f"{event.get('duration_ms', 0):.1f}ms")
    if event.get("answered_by") == "proxy":
        parts.append("(answered by sigwatch)")
    line = " ".join(p for p in parts if p)
    findings = event.get("findings") or []
    extras = [f"{f['severity']}:{f['check']}:{f['code']} {f['explanation']}" for f in findings]
    if event.get("skew_seconds") is not None and abs(float(event["skew_seconds"])) >= 1:
        extras.append(f"skew {event['skew_seconds']:+.0f}s")
    if colors:
        line = f"{_STYLES.get(status[:1], '')}{line}{_RESET}"
        extras = [f"{_DIM}  ↳ {e}{_RESET}" for e in extras]
    else:
        extras = [f"  ↳ {e}" for e in extras]
    return "\n".join([line, *extras])


class _ConsoleRenderer:
    def __init__(self, colors: bool) -> None:
        self.colors = colors
        self.fallback = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        if event.get("event") == "request":
            return console_line(event, self.colors)
        return str(self.fallback(logger, name, event))


def configure_logging(fmt: str = "auto", level: str = "info", stream: IO[str] | None = None) -> str:
    """Set up structlog; returns the format chosen ("json" or "console")."""
    out = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        redact,
    ]
    if fmt == "json":
        processors = [*shared, structlog.processors.JSONRenderer(serializer=orjson.dumps)]
        factory: Any = structlog.BytesLoggerFactory(file=getattr(out, "buffer", out))
    else:
        processors = [*shared, _ConsoleRenderer(colors=out.isatty())]
        factory = structlog.PrintLoggerFactory(file=out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level.lower()]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    # aiohttp's own access log would duplicate the canonical line: silence it; keep its errors.
    logging.getLogger("aiohttp.access").disabled = True
    return fmt


def get_logger(name: str = "sigwatch") -> Any:
    return structlog.get_logger(name)


def _finding_entry(finding: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "check": finding.check,
        "severity": finding.severity.value,
        "code": finding.code,
        "explanation": finding.explanation,
    }
    if finding.debug:
        entry["debug"] = dict(finding.debug)
    return entry


def request_event(record: RequestRecord) -> dict[str, Any]:
    """The canonical log line's fields (a pure function of the record, so tests can check the schema)."""
    event: dict[str, Any] = {
        "request_id": record.request_id,
        "kind": record.kind,
        "client": record.client,
        "method": record.method,
        "protocol": record.protocol,
        "service": record.service,
        "operation": record.operation,
        "region": record.region,
        "status": record.status,
        "upstream_status": record.upstream_status,
        "outcome": record.outcome,
        "answered_by": "proxy" if record.answered_by_proxy else "upstream",
        "mode": record.mode,
        "duration_ms": round(record.duration_seconds * 1000, 3),
        "upstream_ms": None
        if record.upstream_duration_seconds is None
        else round(record.upstream_duration_seconds * 1000, 3),
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "signature": record.signature_state,
        "access_key_id": record.access_key_id,
        "skew_seconds": None if record.skew_seconds is None else round(record.skew_seconds, 3),
        "findings": [_finding_entry(f) for f in record.findings],
        "retry_attempt": record.retry_attempt,
        "retry_max": record.retry_max,
        "invocation_id": record.invocation_id,
    }
    if record.target_host is not None:
        event["target_host"] = record.target_host
    if record.upstream_failure is not None:
        event["upstream_failure"] = record.upstream_failure
    if record.notes:
        event["notes"] = list(record.notes)
    classification = record.classification
    if classification is not None:
        event["error"] = classification_fields(classification)
    return event


def classification_fields(classification: Any) -> dict[str, Any]:
    fields = {
        name: getattr(classification, name, None)
        for name in (
            "exception",
            "code",
            "operation_error_code",
            "category",
            "retryable",
            "fault",
            "documented_status",
            "request_id",
        )
    }
    contract = getattr(classification, "contract_findings", None) or getattr(classification, "contract", None)
    if contract:
        fields["contract"] = [str(getattr(c, "message", c)) for c in contract]
    return {k: v for k, v in fields.items() if v is not None}


def log_request(logger: Any, record: RequestRecord) -> None:
    """The one line per request: called exactly once per request."""
    level = "warning" if record.outcome in {"rejected", "upstream_failure"} else "info"
    getattr(logger, level)("request", **request_event(record))
