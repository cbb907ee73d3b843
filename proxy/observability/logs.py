"""Structured logs: exactly one canonical line per request, plus lifecycle events.

JSON (orjson) when not on a terminal; a coloured one-line-per-call console view for local debugging.
structlog configures both and renders every event but one: the JSON request line, the one line logged
per request, is rendered by `log_request` with the same two steps structlog would run (same bytes) and
batched per event-loop turn (`_LineWriter`), so a busy proxy writes once per turn, not once per line.
Redaction runs on the rendered line, the last step before it is written: whatever
path a secret took into an event (an echoed header, an error message, a canonical request), the
signature part of Authorization, `X-Amz-Signature`, `x-amz-security-token`, secret keys and the
registered secrets are replaced before a byte leaves the process. It is a safety net behind the rule
that no secret is ever put in an event.

Keys of every line kind are listed in `REQUIRED_KEYS` (the log schema, checked by tests).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
import traceback
from collections.abc import Iterable, MutableMapping
from typing import IO, Any, AnyStr, Final

import orjson
import structlog

from proxy.core.frozen import remember
from proxy.record import OUTCOME_REJECTED, OUTCOME_UPSTREAM_FAILURE, RequestRecord

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# The log schema: keys every line has, then the keys of each line kind (the `event` value).
COMMON_KEYS: Final = frozenset({"time", "level", "event"})
REQUEST_KEYS: Final = frozenset(
    {
        "request_id",
        "kind",
        "client",
        "method",
        "protocol",
        "service",
        "operation",
        "region",
        "status",
        "upstream_status",
        "outcome",
        "answered_by",
        "mode",
        "duration_ms",
        "upstream_ms",
        "bytes_in",
        "bytes_out",
        "sigv4",
        "access_key_id",
        "skew_seconds",
        "findings",
        "error",
        "retry_attempt",
        "retry_max",
        "invocation_id",
        "user_agent",
        "upstream_failure",
        "target_host",
        "notes",
        "payload",
    }
)
REQUIRED_KEYS: Final[dict[str, frozenset[str]]] = {
    "request": COMMON_KEYS | REQUEST_KEYS,
    "started": COMMON_KEYS | {"version", "listen", "admin", "upstream", "mode"},
    "shutdown": COMMON_KEYS | {"in_flight", "grace_seconds"},
    "stopped": COMMON_KEYS,
    "upstream_down": COMMON_KEYS | {"upstream"},
    "upstream_reachable": COMMON_KEYS | {"upstream"},
    "header_timeout": COMMON_KEYS | {"client"},
}
FINDING_KEYS: Final = frozenset({"check", "severity", "code", "explanation"})
ERROR_KEYS: Final = frozenset({"exception", "code", "category", "retryable", "fault"})


# -- redaction ---------------------------------------------------------------------------------------

REDACTED: Final = "[redacted]"
# Where a secret can show up in text: a marker, then (matched right after it) the rest of a key name,
# a `:` or `=`, and the value, which is replaced. Markers are searched with str.find/bytes.find
# (fast); the tail regex only runs, anchored, where a marker was found.
# - SigV4 signatures: `Authorization: AWS4-HMAC-SHA256 Credential=..., Signature=<64 hex>`, presigned
#   `X-Amz-Signature=<64 hex>`, aws-chunked `chunk-signature=<64 hex>`, S3's `<SignatureProvided>`
#   echoed as `"SignatureProvided":"<64 hex>"`: a signature key, then hex (16+ digits).
_SIGNATURE_TAIL = r"[\w-]*\\?\"?\s*[:=]\s*\\?\"?([0-9a-fA-F]{16,})"
# - `x-amz-security-token: <token>` (a header, a canonical-request line), `X-Amz-Security-Token=<token>`
#   (presigned query), `"security_token":"..."`.
_TOKEN_TAIL = r"[-_]token\\?\"?\s*[:=]\s*\\?\"?([^\"&\s\\,;}\]]+)"
# - `aws_secret_access_key = ...` (credentials file), `AWS_SECRET_ACCESS_KEY=...`, `"secret_key":"..."`.
_SECRET_TAIL = r"[-_]?(?:access[-_]?)?key\\?\"?\s*[:=]\s*\\?\"?([^\"&\s\\,;}\]]+)"
_RULES: Final = (("ignature", _SIGNATURE_TAIL), ("ecurity", _TOKEN_TAIL), ("ecret", _SECRET_TAIL))
# Markers are found in a lower-cased copy (same offsets: bytes.lower() maps ASCII letters one to one);
# the text version looks for both cases instead (str.lower() may change a string's length).
_BYTES_RULES: Final = tuple(
    (marker.encode(), re.compile(tail.encode(), re.IGNORECASE)) for marker, tail in _RULES
)
_TEXT_RULES: Final = tuple(
    (case(marker), re.compile(tail, re.IGNORECASE)) for marker, tail in _RULES for case in (str, str.upper)
)
_MIN_SECRET_LENGTH: Final = 8
_SENSITIVE_KEY: Final = re.compile(r"signature(?!_state)|security[-_]token|secret", re.IGNORECASE)


def _scrub(
    data: AnyStr, search_in: AnyStr, rules: tuple[tuple[AnyStr, re.Pattern[AnyStr]], ...], redacted: AnyStr
) -> AnyStr:
    """Replace the value after each marker whose tail matches; `search_in` has `data`'s offsets."""
    for marker, tail in rules:
        found = search_in.find(marker)
        if found < 0:
            continue
        pieces: list[AnyStr] = []
        kept = 0
        while found >= 0:
            after = found + len(marker)
            match = tail.match(data, after)
            if match is not None:
                pieces.append(data[kept : match.start(1)])
                pieces.append(redacted)
                kept = after = match.end(1)
            found = search_in.find(marker, after)
        if pieces:
            pieces.append(data[kept:])
            data = data[:0].join(pieces)
            search_in = data.lower() if isinstance(data, bytes) else data
    return data


class _Secrets:
    """Secret values sigwatch holds (secret keys, session tokens): never written, wherever they appear."""

    def __init__(self) -> None:
        self.text: tuple[str, ...] = ()
        self.bytes: tuple[bytes, ...] = ()

    def register(self, values: Iterable[str | None]) -> None:
        merged = set(self.text) | {v for v in values if v and len(v) >= _MIN_SECRET_LENGTH}
        ordered = tuple(sorted(merged, key=len, reverse=True))  # longest first: a token may hold a key
        self.text = ordered
        self.bytes = tuple(v.encode() for v in ordered)


_SECRETS = _Secrets()


def register_secrets(values: Iterable[str | None]) -> None:
    """Add values (secret access keys, session tokens) that must never appear in a log line."""
    _SECRETS.register(values)


def redact_text(text: str) -> str:
    """`text` with signatures, tokens, secret keys and registered secrets replaced by [redacted]."""
    text = _scrub(text, text, _TEXT_RULES, REDACTED)
    for secret in _SECRETS.text:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


_REDACTED_BYTES: Final = REDACTED.encode()


def redact_bytes(data: bytes) -> bytes:
    """The same as `redact_text`, on a rendered (UTF-8, JSON-escaped) line."""
    data = _scrub(data, data.lower(), _BYTES_RULES, _REDACTED_BYTES)
    for secret in _SECRETS.bytes:
        if secret in data:
            data = data.replace(secret, _REDACTED_BYTES)
    return data


# -- processors --------------------------------------------------------------------------------------


class _Clock:
    """ISO 8601 UTC timestamps with microseconds; the date-time part is formatted once a second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            self._second = second
        return f"{self._prefix}{nanoseconds // 1000:06d}Z"


_CLOCK = _Clock()


_LEVEL_NAMES: Final = {"warn": "warning", "exception": "error", "fatal": "critical"}


class _Line(dict[str, Any]):
    """An event name with its fields, handed to structlog as the event itself.

    structlog's keyword-argument path copies the fields three times (call, bind context, update); the
    30-key request line goes through once this way, and `_head` lays it out flat like any other line.
    """

    __slots__ = ("name",)

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        super().__init__(fields)
        self.name = name


def _head(_logger: Any, method_name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """time, level and event first (readable raw lines), then the event's own keys in order."""
    name = event.pop("event", None)
    head: dict[str, Any] = {"time": _CLOCK.now(), "level": _LEVEL_NAMES.get(method_name, method_name)}
    if type(name) is _Line:
        head["event"] = name.name
        head.update(name)
    else:
        head["event"] = name
    if event:
        head.update(event)
    exc_info = head.pop("exc_info", None)
    if exc_info:
        head["exception"] = _format_exception(exc_info)
    return head


def _format_exception(exc_info: Any) -> str:
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        return "".join(traceback.format_exception(*exc_info))
    return ""


def _json(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> bytes:
    line = orjson.dumps(event, default=str)
    redacted = redact_bytes(line)
    if redacted is not line:
        try:
            orjson.loads(redacted)
        except orjson.JSONDecodeError:
            # A replacement landed on an unquoted value: redact value by value instead (slower, rare).
            redacted = orjson.dumps(_redact_values(event), default=str)
    return redacted


# The JSON pipeline; log_request renders the request line with these two directly (same bytes).
_JSON_PROCESSORS: Final[list[Any]] = [_head, _json]


def _redact_item(key: str, item: Any) -> Any:
    if isinstance(item, str) and _SENSITIVE_KEY.search(key):
        return REDACTED
    return _redact_values(item)


def _redact_values(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(item, str) and _SENSITIVE_KEY.search(str(key))
            else _redact_values(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_values(item) for item in value]
    return value


_STYLES: Final = {"2": "\x1b[32m", "3": "\x1b[36m", "4": "\x1b[33m", "5": "\x1b[31m"}
_RESET: Final = "\x1b[0m"
_DIM: Final = "\x1b[2m"


def error_label(error: MutableMapping[str, Any]) -> str:
    """`InvalidGatewayRequestException/GatewayNotFound`, or just `NoSuchKey` when both are the same."""
    exception = str(error.get("exception") or "")
    detail = str(error.get("operation_error") or error.get("code") or "")
    if detail and detail != exception:
        return f"{exception}/{detail}" if exception else detail
    return exception or "error"


def console_line(event: MutableMapping[str, Any], colors: bool) -> str:
    """`POST storagegateway.ListGateways 400 InvalidGatewayRequestException/GatewayNotFound client 3.1ms`

    Then one dimmed `↳` line per finding (and for a skewed clock), so a developer sees why at a glance.
    """
    status = str(event.get("status", ""))
    if event.get("kind") == "tunnel":
        return _tunnel_line(event, status, colors)
    target = f"{event.get('service') or '?'}.{event.get('operation') or '?'}"
    if event.get("kind") == "forward" and event.get("target_host"):
        target = f"{target} → {event['target_host']}"
    parts = [str(event.get("method", "")), target, status]
    error = event.get("error")
    if isinstance(error, dict):
        parts.append(error_label(error))
        parts.append(str(error.get("fault") or ""))
    if event.get("upstream_failure"):
        parts.append(f"upstream {event['upstream_failure']}")
    parts.append(f"{float(event.get('duration_ms') or 0):.1f}ms")
    if event.get("answered_by") == "proxy":
        parts.append("(answered by sigwatch)")
    line = " ".join(p for p in parts if p)
    extras = [
        f"{f.get('severity')} {f.get('check')}: {f.get('code')} — {f.get('explanation')}"
        for f in event.get("findings") or []
    ]
    skew = event.get("skew_seconds")
    if skew is not None and abs(float(skew)) >= 1:
        extras.append(f"clock skew {float(skew):+.0f}s")
    if event.get("retry_attempt") and int(event["retry_attempt"]) > 1:
        extras.append(f"SDK retry: attempt {event['retry_attempt']} of {event.get('retry_max') or '?'}")
    if colors:
        line = f"{_STYLES.get(status[:1], '')}{line}{_RESET}"
        extras = [f"{_DIM}  ↳ {e}{_RESET}" for e in extras]
    else:
        extras = [f"  ↳ {e}" for e in extras]
    return "\n".join([line, *extras])


def _tunnel_line(event: MutableMapping[str, Any], status: str, colors: bool) -> str:
    """`CONNECT s3.amazonaws.com:443 200 blind tunnel ↑1.2 KiB ↓35.0 KiB 2.3s`"""
    parts = [
        "CONNECT",
        str(event.get("target_host") or "?"),
        status,
        "blind tunnel" if status == "200" else str(event.get("outcome") or ""),
        f"↑{_size(event.get('bytes_in'))} ↓{_size(event.get('bytes_out'))}",
        f"{float(event.get('duration_ms') or 0) / 1000:.1f}s",
    ]
    line = " ".join(p for p in parts if p)
    extras = [f"  ↳ {f.get('explanation')}" for f in event.get("findings") or []]
    if colors:
        line = f"{_STYLES.get(status[:1], '')}{line}{_RESET}"
        extras = [f"{_DIM}{e}{_RESET}" for e in extras]
    return "\n".join([line, *extras])


def _size(value: object) -> str:
    size = float(value) if isinstance(value, int | float) else 0.0
    if size < 1024:
        return f"{size:.0f} B"
    size /= 1024
    unit = "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size /= 1024
        unit = bigger
    return f"{size:.1f} {unit}"


class _ConsoleRenderer:
    """Requests as `console_line`; lifecycle events through structlog's console renderer."""

    def __init__(self, colors: bool) -> None:
        self.colors = colors
        self.fallback = structlog.dev.ConsoleRenderer(colors=colors, timestamp_key="time")

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        if event.get("event") == "request":
            return redact_text(console_line(event, self.colors))
        return redact_text(str(self.fallback(logger, name, event)))


# -- the line writer ---------------------------------------------------------------------------------

# A loop's buffered lines are written at once past this size (and in any case by the loop's next turn).
FLUSH_BYTES: Final = 64 * 1024


class _LineWriter:
    """JSON lines to a binary stream: the request line batched per event-loop iteration, all else at once.

    structlog's BytesLogger writes and flushes every line (a system call each). Here a request line
    logged while an event loop runs goes into that loop's buffer; the first line of a buffer schedules
    one `loop.call_soon` flush, so lines are written by the loop's next iteration at the latest (before
    it reads the next socket events), or as soon as the buffer passes FLUSH_BYTES. Every other line
    (lifecycle events, library errors: structlog calls the level methods below) is written at once,
    after the lines this thread has buffered, so the order in the stream is the order of the calls. With
    no loop running (the CLI, synchronous tests), a line is written through. A buffer is only touched
    by its loop's thread; the stream write itself is under a lock (one per batch, not per line). One
    writer per stream, like BytesLogger's lock per file; `flush_logs()` and the process's exit write
    whatever is still buffered (a loop stopped and closed before its flush ran).
    """

    def __init__(self, file: Any) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._buffers: dict[asyncio.AbstractEventLoop, bytearray] = {}
        self._threads: dict[asyncio.AbstractEventLoop, int] = {}  # the thread each buffer's loop ran in

    def add(self, line: bytes) -> None:
        """One request line (without its newline)."""
        loop = asyncio._get_running_loop()
        if loop is None:
            self.write(line)
            return
        buffer = self._buffers.get(loop)
        if buffer is None:
            self._open(loop, line)
            return
        buffer += line
        buffer += b"\n"
        if len(buffer) >= FLUSH_BYTES:
            self.flush_loop(loop)

    def _open(self, loop: asyncio.AbstractEventLoop, line: bytes) -> None:
        """The first line of a loop iteration: a new buffer and its flush."""
        thread = threading.get_ident()
        if self._threads:
            # A loop of this thread that stopped before its flush ran: its lines go first.
            self._emit(self._take(thread))
        buffer = bytearray(line)
        buffer += b"\n"
        self._threads[loop] = thread
        self._buffers[loop] = buffer
        loop.call_soon(self.flush_loop, loop)

    def flush_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Write what `loop` buffered (its scheduled flush, or a full buffer)."""
        self._threads.pop(loop, None)
        buffer = self._buffers.pop(loop, None)
        if buffer:
            self._emit(buffer)

    def write(self, line: bytes) -> None:
        """One line written at once, after the lines this thread has buffered."""
        pending = self._take(threading.get_ident()) if self._threads else b""
        self._emit(pending + line + b"\n" if pending else line + b"\n")

    def flush(self) -> None:
        """Everything buffered, whichever loop buffered it (shutdown, exit)."""
        for loop in list(self._buffers):
            self.flush_loop(loop)

    def _take(self, thread: int) -> bytes:
        """The buffers of `thread`'s loops, oldest first, removed."""
        taken = b""
        for loop, owner in list(self._threads.items()):
            if owner == thread:
                del self._threads[loop]
                taken += self._buffers.pop(loop, b"")
        return taken

    def _emit(self, data: bytes | bytearray) -> None:
        if data:
            with self._lock:
                self._file.write(data)
                self._file.flush()

    # structlog hands the rendered bytes of every other event to the method named like its level.
    def msg(self, message: bytes) -> None:
        self.write(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = msg


# The writer of every stream configured so far, by the stream's id (the writer keeps its stream alive,
# so the id is never reused for another one).
_WRITERS: dict[int, _LineWriter] = {}
_WRITERS_LOCK = threading.Lock()


def _writer_for(file: Any) -> _LineWriter:
    with _WRITERS_LOCK:
        writer = _WRITERS.get(id(file))
        if writer is None:
            writer = _WRITERS[id(file)] = _LineWriter(file)
        return writer


def flush_logs() -> None:
    """Write every buffered log line now (also done at the process's exit)."""
    for writer in list(_WRITERS.values()):
        writer.flush()


atexit.register(flush_logs)


class _WriterFactory:
    """structlog's logger factory for JSON: every logger writes through the stream's one writer."""

    def __init__(self, writer: _LineWriter) -> None:
        self.writer = writer

    def __call__(self, *_args: Any) -> _LineWriter:
        return self.writer


# -- configuration -----------------------------------------------------------------------------------


class _StdlibBridge(logging.Handler):
    """Lines from libraries that use the standard `logging` (aiohttp's errors) in sigwatch's format."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields: dict[str, Any] = {"logger": record.name, "message": record.getMessage()}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            get_logger().log(record.levelno, "library", **fields)
        except Exception:  # pragma: no cover - logging must never take the process down
            self.handleError(record)


_BRIDGE = _StdlibBridge()
_CONFIGURE_LOCK = threading.Lock()


def configure_logging(fmt: str = "auto", level: str = "info", stream: IO[Any] | None = None) -> str:
    """Set up structlog (and route the standard `logging` into it); returns "json" or "console".

    `auto` picks the console view on a terminal and JSON otherwise. JSON lines are bytes from orjson
    written to the stream's binary buffer, request lines batched per event-loop iteration (_LineWriter).
    Loggers from `get_logger()` bind to this configuration on first use: call this first (the CLI does,
    before anything logs).
    """
    out: Any = stream or sys.stdout
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    if fmt not in {"json", "console"}:
        raise ValueError(f"log format must be json, console or auto, not {fmt!r}")
    threshold = LEVELS[level.lower()]
    factory: Any
    if fmt == "json":
        processors: list[Any] = list(_JSON_PROCESSORS)
        factory = _WriterFactory(_writer_for(getattr(out, "buffer", out)))
    else:
        processors = [_head, _ConsoleRenderer(colors=out.isatty())]
        factory = structlog.PrintLoggerFactory(file=out)
    with _CONFIGURE_LOCK:
        structlog.configure(
            processors=processors,
            wrapper_class=structlog.make_filtering_bound_logger(threshold),
            logger_factory=factory,
            cache_logger_on_first_use=True,
        )
        root = logging.getLogger()
        if _BRIDGE not in root.handlers:
            root.addHandler(_BRIDGE)
        root.setLevel(max(threshold, logging.INFO))  # libraries' debug chatter stays out
        # aiohttp's access log would duplicate the canonical line: off, whatever a runner is given.
        logging.getLogger("aiohttp.access").disabled = True
    return fmt


def get_logger(name: str = "sigwatch") -> Any:
    return structlog.get_logger(name)


# -- the canonical request line ----------------------------------------------------------------------


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


def classification_fields(classification: Any) -> dict[str, Any]:
    """What the log keeps of a Classification (proxy.core.errors.classify): the real code, not the
    bounded metric label, plus the upstream's request id and message for support tickets."""
    verdict = classification.verdict
    cached = _VERDICT_FIELDS.get(id(verdict))
    if cached is None or cached[0] is not verdict:
        cached = _verdict_fields(verdict)
    _, head, contract = cached
    fields = head.copy()
    info = classification.info
    fields["request_id"] = info.request_id
    fields["host_id"] = info.host_id
    fields["message"] = info.message
    fields["body"] = str(info.body_state)
    if contract:
        fields["contract"] = [entry.copy() for entry in contract]
    return fields


# The fields that follow from a classification's Verdict alone, by the verdict's id (with the verdict, so
# a reused id is never mistaken for it). The classifier memoises one Verdict per kind of error response,
# so this is built once per kind; bounded like the classifier's memo, in case verdicts come and go.
_VERDICT_FIELDS: dict[int, tuple[Any, dict[str, Any], list[dict[str, Any]]]] = {}
_VERDICT_FIELDS_LIMIT: Final = 4096


def _verdict_fields(verdict: Any) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    head: dict[str, Any] = {
        "exception": verdict.exception,
        "code": verdict.code,
        "operation_error": verdict.operation_error,
        "category": str(verdict.category),
        "retryable": verdict.retryable,
        "fault": str(verdict.fault),
        "clock_skew": verdict.clock_skew,
        "documented": verdict.documented,
        "documented_status": verdict.documented_status,
    }
    contract = [
        {"check": str(f.check), "severity": str(f.severity), "explanation": f.explanation}
        for f in verdict.findings
    ]
    return remember(_VERDICT_FIELDS, id(verdict), (verdict, head, contract), _VERDICT_FIELDS_LIMIT)


def request_event(record: RequestRecord) -> dict[str, Any]:
    """The canonical log line's fields (a pure function of the record, so tests can check the schema)."""
    fields = _request_line(record, "", "")
    del fields["time"], fields["level"], fields["event"]
    return fields


def _request_line(record: RequestRecord, now: str, level: str) -> dict[str, Any]:
    """The whole request line as `_head` lays it out (time, level, event, then the fields), in one go."""
    upstream_seconds = record.upstream_duration_seconds
    return {
        "time": now,
        "level": level,
        "event": "request",
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
        "upstream_ms": None if upstream_seconds is None else round(upstream_seconds * 1000, 3),
        "bytes_in": record.bytes_in,
        "bytes_out": record.bytes_out,
        "sigv4": record.signature_state,
        "access_key_id": record.access_key_id,
        "skew_seconds": None if record.skew_seconds is None else round(record.skew_seconds, 3),
        "findings": [_finding_entry(f) for f in record.findings] if record.findings else [],
        "error": None if record.classification is None else classification_fields(record.classification),
        "retry_attempt": record.retry_attempt,
        "retry_max": record.retry_max,
        "invocation_id": record.invocation_id,
        "user_agent": record.user_agent,
        "upstream_failure": record.upstream_failure,
        "target_host": record.target_host,
        "notes": record.notes,
        "payload": record.payload,
    }


_WARNING_OUTCOMES: Final = frozenset({OUTCOME_REJECTED, OUTCOME_UPSTREAM_FAILURE})


def log_request(logger: Any, record: RequestRecord) -> None:
    """The one line per request: called exactly once per request. Nothing is built when the level is off.

    With the JSON pipeline (and no bound context), the line is rendered here by the pipeline's own two
    steps and handed to the writer's batch: the same bytes, without structlog's per-call machinery.
    Anything else (the console view, a test's capture_logs) goes through structlog.
    """
    bound = logger.bind()  # a lazy proxy's configured logger (cached after first use)
    if record.outcome in _WARNING_OUTCOMES:
        level, number = "warning", logging.WARNING
    else:
        level, number = "info", logging.INFO
    if not bound.is_enabled_for(number):
        return
    writer = bound._logger
    if type(writer) is _LineWriter and not bound._context and bound._processors == _JSON_PROCESSORS:
        writer.add(_json(None, level, _request_line(record, _CLOCK.now(), level)))
    else:
        getattr(bound, level)(_Line("request", request_event(record)))
