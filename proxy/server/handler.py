"""The proxy's request handler: the only code on the request path that awaits.

Everything it decides comes from the pure core (identification, checks, payload verification, error
extraction and classification); this module moves bytes, measures, and fills the per-request record
that metrics and logs read once at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientConnectionError, web
from aiohttp.http_exceptions import HttpProcessingError
from yarl import URL

from proxy.config import Settings
from proxy.core.catalog import Catalogs
from proxy.core.checks import (
    CheckContext,
    PayloadVerifier,
    ValidationResult,
    ValidationSettings,
    needs_body,
    payload_verifier,
    validate,
)
from proxy.core.errors.classify import (
    Classification,
    annotation_error,
    annotation_error_class,
    classify,
)
from proxy.core.errors.extract import extract_error
from proxy.core.identify import identify
from proxy.core.model import AwsError, Credential, Finding, Protocol, RequestHead, RequestIdentity, Severity
from proxy.core.render import RenderedError, render_error
from proxy.core.services import ServiceIndex
from proxy.core.sigv4.auth import ambiguous_credentials
from proxy.observability.logs import log_request
from proxy.observability.metrics import Metrics
from proxy.record import (
    OUTCOME_BAD_REQUEST,
    OUTCOME_CLIENT_ABORT,
    OUTCOME_ERROR,
    OUTCOME_INTERNAL_ERROR,
    OUTCOME_OK,
    OUTCOME_REJECTED,
    OUTCOME_UPSTREAM_FAILURE,
    RequestRecord,
    new_request_id,
    parse_sdk_request_header,
)
from proxy.server.answer import WholeAnswer
from proxy.server.deadline import LazyDeadline
from proxy.server.forward import (
    KIND_FORWARD,
    KIND_REVERSE,
    Destination,
    ForwardProxy,
    destination_for,
    is_this_listener,
    parse_absolute,
    refusal,
)
from proxy.server.listener import GuardedRequestHandler, parse_problem
from proxy.server.tunnel import Tunnels, TunnelState
from proxy.server.upstream import (
    HOP_BY_HOP_RAW,
    Upstream,
    UpstreamFailure,
    UpstreamResponse,
    end_to_end_raw,
    failure_from,
)

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Set on the request once an answer's head is on the wire. (`writer.output_size` cannot tell: it also
# counts an interim `100 Continue`, after which a full answer can and must still be sent.)
_HEAD_SENT = web.RequestKey("sigwatch_head_sent", bool)
# botocore parses every response from 301 up as an error (S3's PermanentRedirect, 304 NotModified...).
_ERROR_STATUS = 301
_FORM = "application/x-www-form-urlencoded"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# Request headers never forwarded: hop-by-hop ones, and Expect (the upstream client sends its own
# `Expect: 100-continue` when the client waits for one).
_NOT_FORWARDED = HOP_BY_HOP_RAW | {b"expect"}
# sigwatch's own code for a request it refuses to interpret (unparseable, ambiguous, badly framed);
# S3 answers malformed requests with the same code.
INVALID_REQUEST = "InvalidRequest"
# A bug in sigwatch answered with a 500 (not among proxy.record.OUTCOMES yet: metrics label it "other").


def utc_now() -> datetime:
    return datetime.now(UTC)


class _BodyTooLarge(Exception):
    """The body is past a configured limit."""


class _BodyStalled(Exception):
    """No byte of the body arrived for limits.body_timeout seconds."""


class _BodyMalformed(Exception):
    """The body's framing is broken (bad chunk size, chunk extension with a bare LF, ...)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _PayloadRejected(Exception):
    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.code)
        self.finding = finding


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """Everything built once at start-up that the handler reads on every request."""

    settings: Settings
    credentials: Mapping[str, Credential]
    services: ServiceIndex
    catalogs: Catalogs
    validation: ValidationSettings


@dataclass(slots=True)
class _Exchange:
    """One request in flight: what the steps of the handler share."""

    request: web.BaseRequest
    record: RequestRecord
    head: RequestHead
    identity: RequestIdentity
    destination: Destination
    result: ValidationResult | None = None
    # Observe mode: the checks, when they run while the upstream works on the request (run_pending_checks).
    pending_checks: Callable[[], None] | None = None

    def run_pending_checks(self) -> None:
        checks, self.pending_checks = self.pending_checks, None
        if checks is not None:
            checks()


def request_head(request: web.BaseRequest, scheme: str = "http") -> RequestHead:
    """The request exactly as sent: raw target (origin or absolute form) and raw header bytes.

    For an absolute-form request (`GET http://host/path HTTP/1.1`, sent through HTTP_PROXY) aiohttp's
    raw_path is the whole URL: SigV4 signs only the path and query, so they are cut out of it here.
    `scheme` is that of an origin-form request's connection (https on an intercepted tunnel).
    """
    target = request.raw_path
    absolute = parse_absolute(target)
    if absolute is not None:
        target, scheme = absolute.origin_form, absolute.scheme
    return RequestHead.from_raw(request.method, target, request.raw_headers, scheme=scheme)


def _has_undecodable(head: RequestHead) -> bool:
    return any(_is_surrogate(n) or _is_surrogate(v) for n, v in head.headers)


def _is_surrogate(text: str) -> bool:
    return not text.isascii() and any("\udc80" <= ch <= "\udcff" for ch in text)


def _proxy_error(code: str, status: int, message: str) -> AwsError:
    return AwsError(code=code, status=status, message=message, sender_fault=status < 500)


class ProxyHandler:
    """Callable for aiohttp's low-level server: one instance serves every request of a listener."""

    def __init__(
        self,
        ctx: HandlerContext,
        upstream: Upstream,
        metrics: Metrics,
        logger: Any,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.upstream = upstream
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.mode = ctx.settings.validation.mode
        self.enforce = ctx.settings.enforce
        self.limits = ctx.settings.limits
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.upstream_seen = False  # set once the upstream answered anything: /readyz
        host_policy = ctx.settings.upstream.host_header
        self._host_override: bytes | None = None
        if host_policy == "upstream":
            self._host_override = upstream.base.authority.encode()
        elif host_policy != "preserve":
            self._host_override = host_policy.encode()
        base = upstream.base
        self._reverse = Destination(
            KIND_REVERSE, base, base.host or "", base.port or (443 if base.scheme == "https" else 80)
        )
        self.forward = ForwardProxy(ctx.settings, clock=clock)
        self.tunnels = Tunnels(self.forward, self.limits)
        if self.forward.ca is not None:
            logger.info(
                "tls_interception",
                ca_cert=str(self.forward.ca.cert_path),
                ca_created=self.forward.ca_created,
                allow=self.forward.allowlist.describe(),
                trust=f"run `sigwatch ca`, or set AWS_CA_BUNDLE={self.forward.ca.cert_path} in the client",
            )

    # -- entry point -------------------------------------------------------------------------------

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.monotonic()
        record = RequestRecord(
            request_id=new_request_id(),
            started_at=time.time(),
            client=request.remote or "",
            method=request.method,
            mode=self.mode,
        )
        if request.method == "CONNECT":
            return await self._tunnel(request, record, started)
        self.in_flight += 1
        self.idle.clear()
        self.metrics.in_flight.inc()
        try:
            return await self._handle(request, record)
        except (ConnectionResetError, ClientConnectionError, asyncio.CancelledError):
            record.outcome = OUTCOME_CLIENT_ABORT
            raise
        except Exception as exc:
            return await self._answer_internal_error(request, record, exc)
        finally:
            self.metrics.in_flight.dec()
            self._account(record, started)
            self.in_flight -= 1
            if self.in_flight == 0:
                self.idle.set()

    def answer_unparseable(self, request: web.BaseRequest, status: int, problem: str) -> web.StreamResponse:
        """A request aiohttp's parser refused (GuardedRequestHandler.handle_error): the handler never saw
        it, so it is answered, logged and counted here, once. Its head could not be read: no protocol is
        known, so the answer takes the generic JSON shape (`{"__type": ..., "message": ...}`)."""
        started = time.monotonic()
        record = RequestRecord(
            request_id=new_request_id(),
            started_at=time.time(),
            client=request.remote or "",
            method="-",  # the request line may be what could not be parsed
            mode=self.mode,
        )
        record.outcome = OUTCOME_BAD_REQUEST
        record.notes.append(f"unparseable request: {problem}")
        error = _proxy_error(
            INVALID_REQUEST,
            status,
            f"sigwatch could not parse the request: {problem}. Nothing was forwarded.",
        )
        response = self._error_response(record, Protocol.UNKNOWN, error)
        response.force_close()
        self._account(record, started)
        return response

    def _account(self, record: RequestRecord, started: float) -> None:
        """The one metrics observation and the one log line of a request (or of a tunnel)."""
        record.duration_seconds = time.monotonic() - started
        self.metrics.observe(record)
        log_request(self.logger, record)

    async def _tunnel(
        self, request: web.BaseRequest, record: RequestRecord, started: float
    ) -> web.StreamResponse:
        """CONNECT. A tunnel is not an in-flight request (graceful shutdown does not wait for idle
        tunnels); an intercepted one is accounted for by its requests, not by itself."""
        state = TunnelState()
        try:
            return await self.tunnels.serve(request, record, state)
        except (ConnectionResetError, ClientConnectionError, asyncio.CancelledError):
            record.outcome = OUTCOME_CLIENT_ABORT
            raise
        finally:
            if not state.intercepted:
                self._account(record, started)

    # -- the steps ---------------------------------------------------------------------------------

    def _destination(self, request: web.BaseRequest) -> Destination:
        """Where this request goes; ValueError for an absolute-form target sigwatch cannot forward."""
        protocol = request.protocol
        if isinstance(protocol, GuardedRequestHandler) and protocol.forward_origin is not None:
            origin = URL(protocol.forward_origin)
            return destination_for(KIND_FORWARD, origin.scheme, origin.raw_authority)
        absolute = parse_absolute(request.raw_path)
        if absolute is None:
            return self._reverse
        destination = destination_for(KIND_FORWARD, absolute.scheme, absolute.authority)
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return self._reverse if is_this_listener(destination, sockname) else destination

    async def _handle(self, request: web.BaseRequest, record: RequestRecord) -> web.StreamResponse:
        intercepted = isinstance(request.protocol, GuardedRequestHandler) and request.protocol.nested
        head = request_head(request, "https" if intercepted else "http")
        record.user_agent = head.get("user-agent")
        record.retry_attempt, record.retry_max = parse_sdk_request_header(head.get("amz-sdk-request"))
        record.invocation_id = head.get("amz-sdk-invocation-id")
        try:
            destination = self._destination(request)
            problem = None
        except ValueError as exc:
            destination, problem = self._reverse, str(exc)
        x = _Exchange(request, record, head, identify(head, self.ctx.services), destination)
        record.kind = destination.kind
        if destination.kind == KIND_FORWARD:
            record.target_host = destination.target_host
        self._note_identity(x)
        if problem is not None:
            record.kind = KIND_FORWARD
            return await self._answer_bad_request(
                x, 400, "InvalidProxyTarget", f"sigwatch cannot forward to {request.raw_path!r}: {problem}."
            )
        if _has_undecodable(head):
            return await self._answer_bad_request(
                x, 400, "InvalidHeaderValue", "A header is not valid UTF-8 text."
            )
        framing = _framing_problem(request, head)
        if framing is not None:
            return await self._answer_bad_request(x, 400, INVALID_REQUEST, framing)
        ambiguity = ambiguous_credentials(head)
        if ambiguity is not None and (self.enforce or len(head.get_all("host")) > 1):
            # RFC 9112 §3.2: "A server MUST respond with a 400 ... to any HTTP/1.1 request message that
            # ... contains more than one Host header line"; the rest only in enforce mode (below).
            return await self._answer_bad_request(x, 400, INVALID_REQUEST, ambiguity)
        declared = request.content_length
        if declared is not None and declared > self.limits.max_body_bytes:
            return await self._answer_too_large(x, self.limits.max_body_bytes, "limits.max_body_bytes")
        if (
            destination.kind == KIND_FORWARD
            and not intercepted
            and not self.forward.allows(destination.host, destination.port)
        ):
            return await self._answer_refused(x)
        body: bytes | None = None
        body_sha256: str | None = None
        expect_continue = (head.get("expect") or "").lower() == "100-continue"
        if request.body_exists and needs_body(head, x.identity):
            if expect_continue:
                await request.writer.write(_CONTINUE)
                expect_continue = False
            try:
                body = await self._read_bounded(request, self.limits.max_buffered_body_bytes)
            except _BodyTooLarge:
                return await self._answer_too_large(
                    x, self.limits.max_buffered_body_bytes, "limits.max_buffered_body_bytes"
                )
            except _BodyStalled:
                return await self._answer_stalled(x)
            except _BodyMalformed as exc:
                return await self._answer_malformed(x, _malformed_body(exc))
            record.bytes_in = len(body)
            body_sha256 = hashlib.sha256(body).hexdigest()
            if (head.get("content-type") or "").startswith(_FORM):
                x.identity = identify(head, self.ctx.services, form_body=body)
                self._note_identity(x)
        elif not request.body_exists:
            body_sha256 = _EMPTY_SHA256

        check_ctx = CheckContext(
            request=head,
            identity=x.identity,
            now=self.clock(),
            settings=self.ctx.validation,
            credentials=self.ctx.credentials,
            body_sha256=body_sha256,
            enforce=self.enforce,
            services=self.ctx.services,
        )
        if not self.enforce and (body is not None or not request.body_exists):
            # Observe mode with the whole request in hand: what the checks find changes nothing that is
            # forwarded, so they run once the request is out, while the upstream works on it (they leave
            # the latency path). They still run before the answer is relayed, and annotate it.
            x.pending_checks = lambda: self._check_off_path(x, check_ctx, ambiguity, body is not None)
            return await self._forward(x, body, None, expect_continue)
        result = self._check(x, check_ctx, ambiguity, buffered=body is not None)
        first_error = result.first_error
        if self.enforce and first_error is not None:
            record.outcome = OUTCOME_REJECTED
            # A body left unread (e.g. never sent: the client awaited our 100 Continue) would be taken
            # for the next request on this connection: close it after the answer.
            return await self._send(x, first_error.error, close=request.body_exists and body is None)

        verifier = None if body is not None else payload_verifier(check_ctx, result)
        return await self._forward(x, body, verifier, expect_continue)

    def _check(
        self, x: _Exchange, check_ctx: CheckContext, ambiguity: str | None, *, buffered: bool
    ) -> ValidationResult:
        """The checks of the request, noted on the record."""
        record = x.record
        x.result = result = validate(check_ctx)
        record.findings = result.findings
        if ambiguity is not None:
            # Observe mode: forwarded as sent (the service decides), flagged as the first finding.
            record.findings = (_ambiguity_finding(ambiguity), *result.findings)
        record.skew_seconds = result.skew_seconds
        record.signature_state = result.signature_state
        record.access_key_id = result.access_key_id
        if buffered:
            # The buffered body's hash is part of the canonical request: a valid signature verifies it.
            record.payload = _payload_summary(x.head, verified=result.signature_state == "valid")
        return result

    def _check_off_path(
        self, x: _Exchange, check_ctx: CheckContext, ambiguity: str | None, buffered: bool
    ) -> None:
        """_check once the request has gone upstream (observe mode). A bug in a check must not cost the
        request its answer, which the upstream is already preparing: it is logged and noted instead."""
        try:
            self._check(x, check_ctx, ambiguity, buffered=buffered)
        except Exception as exc:
            x.record.notes.append(f"internal error in the checks: {type(exc).__name__}")
            self.logger.error(
                "internal_error", request_id=x.record.request_id, error=type(exc).__name__, exc_info=exc
            )

    def _note_identity(self, x: _Exchange) -> None:
        record, identity = x.record, x.identity
        record.protocol = identity.protocol.value
        record.service = identity.service
        record.operation = identity.operation
        record.region = identity.region

    async def _read_bounded(self, request: web.BaseRequest, limit: int) -> bytes:
        declared = request.content_length
        if declared is not None and declared > limit:
            raise _BodyTooLarge
        content = request.content
        if content.is_eof():
            # The whole body came in with the head (the common case for API calls): taken as it is.
            try:
                body = content.read_nowait()
            except HttpProcessingError as exc:
                raise _BodyMalformed(parse_problem(exc)) from exc
            if len(body) > limit:
                raise _BodyTooLarge
            return body
        parts: list[bytes] = []
        size = 0
        async for chunk in self._client_body(request):
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge
            parts.append(chunk)
        return b"".join(parts)

    async def _client_body(self, request: web.BaseRequest) -> AsyncIterator[bytes]:
        """The request body as it arrives, cut when it stalls for limits.body_timeout seconds.

        aiohttp has no body deadline: a client that sends a head and then trickles (or stops sending)
        its body would hold a connection, a task and an upstream connection forever. Broken framing
        (a bad chunk size) is raised as _BodyMalformed, a stall as _BodyStalled; a client that goes
        away surfaces as ConnectionResetError, as everywhere else. What has already arrived is taken
        without arming a deadline (a small body usually comes in the same read as its head).
        """
        content = request.content
        # limits.body_timeout, counted only while waiting for the client (a pause while the upstream
        # drains what was sent is not a stall); a stall wakes the pending read with _BodyStalled (the
        # connection is closed after the answer).
        watch: LazyDeadline | None = None
        try:
            while True:
                try:
                    # Every piece aiohttp holds, as its parser handed them over: one piece passes without
                    # a copy (a size cap would join and slice pieces: two copies of every byte, 7% of an
                    # upload's CPU). What one step holds stays bounded by aiohttp's flow control, which
                    # stops reading the socket past 2 x read_bufsize (128 KiB) plus one socket read.
                    chunk = content.read_nowait(-1)
                    if not chunk and not content.is_eof():
                        if watch is None:
                            watch = LazyDeadline(
                                asyncio.get_running_loop(),
                                self.limits.body_timeout,
                                lambda: content.set_exception(_BodyStalled()),
                            )
                        watch.start()
                        chunk = await content.readany()
                        watch.pause()
                except HttpProcessingError as exc:
                    raise _BodyMalformed(parse_problem(exc)) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            if watch is not None:
                watch.cancel()

    async def _stream_body(
        self, x: _Exchange, verifier: PayloadVerifier | None, state: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """Forward the body as it arrives, checking it on the way.

        The latest piece is held back until the next one arrives, and the last piece is released only
        after the verifier's final verdict: an upstream never receives the whole of a body that fails
        its payload check in enforce mode.
        """
        record = x.record
        limit = self.limits.max_body_bytes
        held: bytes | None = None
        try:
            async for chunk in self._client_body(x.request):
                record.bytes_in += len(chunk)
                if record.bytes_in > limit:
                    state["too_large"] = True
                    raise _BodyTooLarge
                if verifier is not None:
                    self._verdict(verifier.feed(chunk), record, state)
                if held is not None:
                    yield held
                held = chunk
        except _BodyStalled:
            state["stalled"] = True
            raise
        except _BodyMalformed as exc:
            state["malformed"] = _malformed_body(exc)
            raise
        if verifier is not None:
            self._verdict(verifier.finish(), record, state)
            record.payload = _payload_summary(
                x.head, verified=not state.get("payload_failed"), verifier=verifier
            )
        if held is not None:
            yield held

    def _verdict(self, finding: Finding | None, record: RequestRecord, state: dict[str, Any]) -> None:
        if finding is None:
            return
        state["payload_failed"] = True
        record.findings = (*record.findings, finding)
        if self.enforce and finding.severity is Severity.ERROR:
            state["rejected"] = finding
            raise _PayloadRejected(finding)

    def _upstream_headers(
        self, request: web.BaseRequest, destination: Destination
    ) -> list[tuple[bytes, bytes]]:
        """The client's header lines as received (bytes, order and case kept: SigV4 signed their values),
        less hop-by-hop ones, with Host replaced only when upstream.host_header says so."""
        # Forward mode keeps the Host the client signed, which names the destination already.
        host_override = self._host_override if destination.kind == KIND_REVERSE else None
        headers = end_to_end_raw(request.raw_headers, _NOT_FORWARDED)
        if host_override is not None:
            headers = [(n, host_override) if n.lower() == b"host" else (n, v) for n, v in headers]
        return headers

    async def _forward(
        self, x: _Exchange, body: bytes | None, verifier: PayloadVerifier | None, expect_continue: bool
    ) -> web.StreamResponse:
        request, record, head, destination = x.request, x.record, x.head, x.destination
        headers = self._upstream_headers(request, destination)
        if expect_continue:
            # The client waits for our 100 before sending its body; it is streamed straight through.
            await request.writer.write(_CONTINUE)
        state: dict[str, Any] = {}
        data: bytes | AsyncIterator[bytes] | None
        if body is not None:
            data = body
        elif request.body_exists:
            data = self._stream_body(x, verifier, state)
        else:
            data = None
        target = head.path + ("?" + head.query if head.query else "")
        route = None
        if destination.kind == KIND_FORWARD:
            route = self.upstream.route_to(destination.origin, self.forward.ssl, self.forward.connect_timeout)
        sent = time.monotonic()
        try:
            async with self.upstream.request(
                head.method,
                target.encode("utf-8", "surrogateescape"),
                headers,
                data,
                route=route,
                expect_continue=expect_continue,
                on_sent=x.run_pending_checks if x.pending_checks is not None else None,
            ) as upstream_response:
                record.upstream_duration_seconds = time.monotonic() - sent
                record.upstream_status = upstream_response.status
                if destination.kind == KIND_REVERSE:
                    self.upstream_seen = True
                return await self._relay(x, upstream_response)
        except Exception as exc:
            x.run_pending_checks()  # the request may never have gone out: its checks still run, once
            if request.get(_HEAD_SENT):
                # An answer is already on its way (a failure after its head): never write a second one.
                if request.transport is not None:
                    request.transport.close()
                raise ConnectionResetError("the answer was cut") from exc
            if state:
                return await self._answer_stream_failure(x, state)
            if _client_gone(request):
                record.outcome = OUTCOME_CLIENT_ABORT
                raise ConnectionResetError("client went away") from exc
            return await self._answer_upstream_failure(x, failure_from(exc))

    async def _relay(self, x: _Exchange, upstream_response: UpstreamResponse) -> web.StreamResponse:
        """The upstream's answer to the client: headers less hop-by-hop ones, the body byte-exact.

        An answer whose body has already arrived whole (the common case: AWS API answers are small)
        goes out as one write; a longer one is streamed as it arrives, under read back-pressure.
        """
        request, record, identity = x.request, x.record, x.identity
        status = upstream_response.status
        fields = end_to_end_raw(upstream_response.raw_headers)
        headers: list[tuple[str, str]] | None = None  # decoded only for an error or a streamed answer
        prefix = b""
        classification = None
        if status >= _ERROR_STATUS:
            headers = _decoded(fields)
            prefix, complete = await _read_prefix(upstream_response, self.limits.max_error_body_bytes)
            info = extract_error(identity.protocol, status, headers, prefix, body_truncated=not complete)
            classification = classify(info, identity.service, identity.operation, self.ctx.catalogs)
            record.classification = classification
            record.outcome = OUTCOME_ERROR
        else:
            record.outcome = OUTCOME_OK
        record.status = status
        response: web.StreamResponse
        whole = upstream_response.complete
        annotations = self._annotations(x, classification)
        if whole:
            body = prefix + upstream_response.take_buffered()  # b"" + data is data itself: no copy
            answer = WholeAnswer(status, upstream_response.reason, fields, body)
            for name, value in annotations:
                answer.set(name, value)
            response = answer
        else:
            response = web.StreamResponse(status=status, reason=upstream_response.reason)
            response_headers = response.headers
            for name, value in headers if headers is not None else _decoded(fields):
                response_headers.add(name, value)
            for name, value in annotations:
                response_headers[name] = value
        if x.head.has("upgrade"):
            # sigwatch never switches protocols (Upgrade is hop-by-hop, dropped). aiohttp's C parser
            # discards the bytes that follow a declined upgrade request in the same read: closing after
            # the answer makes a request pipelined behind it fail at once (clients retry that) instead
            # of waiting unanswered for the idle timeout.
            response.force_close()
        if whole:
            await _start_answer(request, response)
            await response.write_eof()
            record.bytes_out += len(body)
            return response
        await _start_answer(request, response)
        if prefix:
            await response.write(prefix)
            record.bytes_out += len(prefix)
        try:
            async for chunk in upstream_response.chunks():
                await response.write(chunk)
                record.bytes_out += len(chunk)
        except Exception as exc:  # reset, timeout, a body shorter than its Content-Length, bad framing
            if _client_gone(request):
                record.outcome = OUTCOME_CLIENT_ABORT
                raise
            # The head is already sent: the only honest signal left is to cut the connection (a second
            # answer written now would land inside this one's body).
            failure = failure_from(exc)
            record.upstream_failure = failure.reason
            record.outcome = OUTCOME_UPSTREAM_FAILURE
            record.notes.append(f"upstream failed mid-body: {failure}")
            if request.transport is not None:
                request.transport.close()
            return response
        await response.write_eof()
        return response

    # -- annotations ---------------------------------------------------------------------------------

    def _annotations(
        self, x: _Exchange, classification: Classification | None = None
    ) -> list[tuple[str, str]]:
        """The x-sigwatch-* fields of an answer: what sigwatch saw of the request (and of the error)."""
        record = x.record
        fields: list[tuple[str, str]] = []
        if classification is not None:
            fields.append(("x-sigwatch-error", annotation_error(classification)))
            fields.append(("x-sigwatch-error-class", annotation_error_class(classification)))
        fields.append(("x-sigwatch-request-id", record.request_id))
        if x.result is None:
            return fields
        fields.append(("x-sigwatch-signature", x.result.signature_state))
        if record.findings:
            fields.append(
                (
                    "x-sigwatch-findings",
                    ", ".join(f"{f.check}={f.code};{f.severity.value}" for f in record.findings),
                )
            )
        if record.skew_seconds is not None:
            fields.append(("x-sigwatch-skew-seconds", str(round(record.skew_seconds))))
        return fields

    # -- answers sigwatch gives itself ---------------------------------------------------------------

    async def _send(self, x: _Exchange, error: AwsError, *, close: bool = False) -> web.StreamResponse:
        """Answer with `error` in the request's protocol's shape, marked as sigwatch's own answer."""
        request, record = x.request, x.record
        response = self._error_response(
            record,
            x.identity.protocol,
            error,
            json_version=_json_version(x.head),
            head=request.method == "HEAD",
        )
        for name, value in self._annotations(x):
            response.set(name, value)
        if close:
            # An unread request body would be taken for the next request on this connection.
            response.force_close()
        await _start_answer(request, response)
        await response.write_eof()
        return response

    def _error_response(
        self,
        record: RequestRecord,
        protocol: Protocol,
        error: AwsError,
        *,
        json_version: str = "1.1",
        head: bool = False,
    ) -> WholeAnswer:
        """`error` rendered in `protocol`'s wire shape, marked as sigwatch's own answer, and noted on the
        record (the one place that builds an answer sigwatch gives itself)."""
        rendered: RenderedError = render_error(
            protocol, error, record.request_id, json_version=json_version, head=head
        )
        response = WholeAnswer(rendered.status, None, (), rendered.body)
        for name, value in rendered.headers:
            response.set(name, value)
        response.set("x-sigwatch-origin", "proxy")
        response.set("x-sigwatch-request-id", record.request_id)
        record.status = rendered.status
        record.answered_by_proxy = True
        record.bytes_out += len(rendered.body)
        return response

    async def _answer_internal_error(
        self, request: web.BaseRequest, record: RequestRecord, exc: Exception
    ) -> web.StreamResponse:
        """A bug in sigwatch must not cost the request its log line, its count or a well-formed answer:
        a 500 in the generic AWS shape (InternalFailure), the traceback on its own error line."""
        record.outcome = OUTCOME_INTERNAL_ERROR
        record.notes.append(f"internal error: {type(exc).__name__}")
        self.logger.error(
            "internal_error", request_id=record.request_id, error=type(exc).__name__, exc_info=exc
        )
        if request.get(_HEAD_SENT) or _client_gone(request):
            # The head is already out (or nobody is listening): cutting the connection is all that is left.
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("sigwatch failed while answering") from exc
        error = _proxy_error(
            "InternalFailure", 500, f"sigwatch failed to handle the request (request id {record.request_id})."
        )
        response = self._error_response(record, Protocol.UNKNOWN, error, head=request.method == "HEAD")
        response.force_close()
        await _start_answer(request, response)
        await response.write_eof()
        return response

    async def _answer_bad_request(
        self, x: _Exchange, status: int, code: str, message: str
    ) -> web.StreamResponse:
        x.record.outcome = OUTCOME_BAD_REQUEST
        x.record.notes.append(message)
        return await self._send(x, _proxy_error(code, status, message), close=True)

    async def _answer_refused(self, x: _Exchange) -> web.StreamResponse:
        """A forward request to a destination outside the allowlist: 403, and how to allow it."""
        finding = refusal(x.destination.host, x.destination.port)
        x.record.findings = (finding,)
        x.record.outcome = OUTCOME_REJECTED
        return await self._send(x, finding.error, close=True)

    async def _answer_upstream_failure(self, x: _Exchange, failure: UpstreamFailure) -> web.StreamResponse:
        record = x.record
        record.outcome = OUTCOME_UPSTREAM_FAILURE
        record.upstream_failure = failure.reason
        record.notes.append(str(failure))
        upstream = str(x.destination.origin)
        if failure.timeout:
            error = _proxy_error(
                "GatewayTimeout", 504, f"sigwatch: the upstream {upstream} did not answer in time."
            )
        else:
            error = _proxy_error(
                "BadGateway", 502, f"sigwatch: the upstream {upstream} could not be used ({failure.reason})."
            )
        return await self._send(x, error)

    async def _answer_too_large(self, x: _Exchange, limit: int, key: str) -> web.StreamResponse:
        return await self._answer_bad_request(
            x, 413, "RequestEntityTooLarge", f"The request body is larger than {key} ({limit} bytes)."
        )

    async def _answer_stalled(self, x: _Exchange) -> web.StreamResponse:
        """S3's answer to a body that stops arriving (RequestTimeout, 400), then close at once (aiohttp
        would otherwise linger, reading the rest of a body that is not coming)."""
        return await self._answer_and_close(
            x,
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout "
            f"period (limits.body_timeout: {self.limits.body_timeout:g} s without a byte of the body).",
        )

    async def _answer_malformed(self, x: _Exchange, problem: str) -> web.StreamResponse:
        """400, then close at once: the rest of the connection's bytes cannot be framed, so aiohttp must
        not linger reading them (its read would only raise the parser's error again)."""
        return await self._answer_and_close(x, INVALID_REQUEST, problem)

    async def _answer_and_close(self, x: _Exchange, code: str, message: str) -> web.StreamResponse:
        response = await self._answer_bad_request(x, 400, code, message)
        protocol = x.request.protocol
        if isinstance(protocol, GuardedRequestHandler):
            protocol.force_close()
        return response

    async def _answer_stream_failure(self, x: _Exchange, state: Mapping[str, Any]) -> web.StreamResponse:
        """The body failed while it was being forwarded (the upstream request is aborted with it)."""
        if state.get("too_large"):
            return await self._answer_too_large(x, self.limits.max_body_bytes, "limits.max_body_bytes")
        if state.get("stalled"):
            return await self._answer_stalled(x)
        if state.get("malformed"):
            return await self._answer_malformed(x, state["malformed"])
        rejected = state["rejected"]
        x.record.outcome = OUTCOME_REJECTED
        return await self._send(x, rejected.error, close=True)


def _framing_problem(request: web.BaseRequest, head: RequestHead) -> str | None:
    """Request framing sigwatch will not interpret (aiohttp's parser accepts these)."""
    if request.version < (1, 0):
        return "HTTP/0.9 requests are not supported: send HTTP/1.1."
    if request.version == (1, 0) and head.has("transfer-encoding"):
        # RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message containing a
        # Transfer-Encoding header field MUST treat the message as if the framing is faulty".
        return "An HTTP/1.0 request cannot use Transfer-Encoding (RFC 9112 section 6.1)."
    return None


def _malformed_body(exc: _BodyMalformed) -> str:
    return f"The request body is badly framed ({exc.problem}); nothing of it was accepted."


AMBIGUITY_CHECK = "request.ambiguous"


def _ambiguity_finding(problem: str) -> Finding:
    """Observe mode's record of an ambiguous request that was forwarded anyway."""
    return Finding(
        check=AMBIGUITY_CHECK,
        severity=Severity.ERROR,
        error=_proxy_error(INVALID_REQUEST, 400, problem),
        explanation=problem,
    )


def _payload_summary(
    head: RequestHead, *, verified: bool, verifier: PayloadVerifier | None = None
) -> dict[str, object]:
    """How the body was checked, for the log line: the x-amz-content-sha256 form (a declared hex digest
    is "sha256"; none: "body-sha256", computed from the buffered body), the verdict, and for aws-chunked
    bodies the number of chunk signatures verified."""
    declared = head.get("x-amz-content-sha256")
    if declared is None:
        kind = "body-sha256"
    elif len(declared) == 64 and all(c in "0123456789abcdefABCDEF" for c in declared):
        kind = "sha256"
    else:
        kind = declared
    summary: dict[str, object] = {"kind": kind, "verified": verified and kind != "UNSIGNED-PAYLOAD"}
    chunks = getattr(verifier, "verified", None)
    if isinstance(chunks, int) and not isinstance(chunks, bool):
        summary["chunks"] = chunks
        # Framing alone (secret unknown: no chunk signature checked) is not a verified payload.
        summary["verified"] = summary["verified"] and chunks > 0
    return summary


async def _start_answer(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Send the answer's head, and remember that it is on the wire."""
    await response.prepare(request)
    request[_HEAD_SENT] = True


def _client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _json_version(head: RequestHead) -> str:
    """AWS answers a JSON-protocol error in the JSON version the client spoke (1.0 or 1.1)."""
    return "1.0" if (head.get("content-type") or "").startswith("application/x-amz-json-1.0") else "1.1"


def _decoded(fields: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Header lines as text; an undecodable byte travels as a lone surrogate (and is encoded back)."""
    return [
        (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
        for name, value in fields
    ]


async def _read_prefix(response: UpstreamResponse, limit: int) -> tuple[bytes, bool]:
    """Read at most `limit` bytes of a body; True when that was all of it."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await response.read(limit - size)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), response.at_eof()


__all__ = ["HandlerContext", "Protocol", "ProxyHandler", "request_head"]
