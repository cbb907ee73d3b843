"""The emulator's aiohttp application: one route that dispatches every request to its service.

Per request: route it to a service (credential scope, x-amz-target, Action, else S3), read the body
(bounded), authenticate it exactly as AWS does (proxy.core.checks, enforce mode), then apply a forced
error (x-sigwatch-emulate-error) or the fault scenario (drop, latency, error), and finally let the
service answer. Every error body is rendered by proxy.core.render, so the emulator's wire shapes are the
proxy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol as TypingProtocol
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from proxy.catalogs import load_builtin_catalogs
from proxy.core.catalog import Catalogs
from proxy.core.model import AwsError, Protocol, RequestHead, RequestIdentity
from proxy.core.render import render_error
from proxy.core.services import ServiceIndex
from proxy.emulator.auth import Authenticator
from proxy.emulator.errors import FORCE_ERROR_HEADER, ErrorBook, UnknownErrorCode
from proxy.emulator.faults import FaultInjector, check_scenario
from proxy.emulator.importexport import ImportExportService
from proxy.emulator.s3 import S3Service
from proxy.emulator.settings import EmulatorSettings
from proxy.emulator.shapes import service_model
from proxy.emulator.storagegateway import StorageGatewayService
from proxy.emulator.wire import Call, IdSource, Reply, ServiceError, http_date
from proxy.service_models import load_service_index

SERVICE_NAMES = ("storagegateway", "s3", "importexport")
# When a forced code is not in the service's catalog, the emulator says so in the service's own
# "bad parameter" error.
_BAD_PARAMETER = {
    "storagegateway": "ValidationException",
    "s3": "InvalidArgument",
    "importexport": "InvalidParameterException",
}


class EmulatedService(TypingProtocol):
    service: str
    protocol: Protocol
    errors: ErrorBook

    def handle(self, call: Call) -> Reply: ...


@dataclass(frozen=True, slots=True)
class EmulatedServices:
    """The state of one emulator application (tests and the demo read it through SERVICES_KEY)."""

    storagegateway: StorageGatewayService
    s3: S3Service
    importexport: ImportExportService
    faults: FaultInjector


SERVICES_KEY: web.AppKey[EmulatedServices] = web.AppKey("sigwatch_emulator_services", EmulatedServices)


@dataclass(frozen=True, slots=True)
class _Exchange:
    """One request on its way through the handler: where it goes and how its answers are labelled."""

    service: EmulatedService
    head: RequestHead
    request_id: str
    host_id: str


def _scope_service(head: RequestHead) -> str | None:
    """The service named in the SigV4 credential scope (header or presigned query), if any."""
    authorization = head.get("authorization") or ""
    _, found, rest = authorization.partition("Credential=")
    if not found:
        rest = dict(parse_qsl(head.query)).get("X-Amz-Credential", "")
    parts = rest.split(",", 1)[0].strip().split("/")
    return parts[3] if len(parts) >= 5 else None


class EmulatorHandler:
    """The single request handler of the emulator application."""

    def __init__(self, settings: EmulatorSettings, catalogs: Catalogs, services: ServiceIndex) -> None:
        self.settings = settings
        self.ids = IdSource(settings.seed)
        books = {}
        for name in SERVICE_NAMES:
            catalog = catalogs.get(name)
            if catalog is None:
                raise ValueError(f"the catalogs have no {name} catalog; the emulator needs it")
            books[name] = ErrorBook(catalog)
        self.books: Mapping[str, ErrorBook] = books
        self.storagegateway = StorageGatewayService(books["storagegateway"], settings, self.ids)
        self.s3 = S3Service(books["s3"], settings, self.ids)
        self.importexport = ImportExportService(books["importexport"], settings, self.ids, self.s3)
        if settings.scenario is not None:
            check_scenario(
                settings.scenario,
                self._why_not_forceable,
                {name: frozenset(service_model(name).operation_names) for name in SERVICE_NAMES},
            )
        self.faults = FaultInjector(settings.scenario, settings.seed)
        self.authenticator = Authenticator(settings, services)

    def _why_not_forceable(self, service: str, code: str) -> str | None:
        try:
            self.books[service].forced(code)
        except UnknownErrorCode as problem:
            return str(problem)
        return None

    # -- routing -------------------------------------------------------------------------------------

    def route(self, head: RequestHead, body: bytes) -> EmulatedService:
        """Which emulated service a request is for: the credential scope decides when it names one of
        them; otherwise x-amz-target or a JSON content type means Storage Gateway, an Action parameter
        Import/Export, anything else S3."""
        scope = _scope_service(head)
        if scope == "storagegateway":
            return self.storagegateway
        if scope == "importexport":
            return self.importexport
        if scope == "s3":
            return self.s3
        if head.has("x-amz-target") or (head.get("content-type") or "").lower().startswith(
            "application/x-amz-json"
        ):
            return self.storagegateway
        if "Action" in ImportExportService.parameters(head, body):
            return self.importexport
        return self.s3

    def operation_of(self, service: EmulatedService, head: RequestHead, body: bytes) -> str | None:
        if service is self.importexport:
            return self.importexport.operation_of(head, body)
        if service is self.storagegateway:
            return self.storagegateway.operation_of(head)
        return self.s3.operation_of(head)

    # -- the request path ----------------------------------------------------------------------------

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        now = self.settings.clock()
        head = RequestHead.build(
            request.method,
            request.raw_path,
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.raw_headers],
            scheme=request.scheme,
        )
        try:
            raw = await self._read_body(request)
        except (ConnectionResetError, HttpProcessingError):
            # The client went away mid-body (an aborted upload, a proxy refusing the rest of a stream)
            # or broke its framing: nothing usable arrived, and most likely nobody is listening. Not an
            # emulator error: answer as the service answers an incomplete body, and close.
            service = self.route(head, b"")
            incomplete = self._error_response(self._exchange(service, head), self._incomplete(service))
            incomplete.force_close()
            return incomplete
        service = self.route(head, raw or b"")
        s3_style = service is self.s3
        exchange = self._exchange(service, head)
        if raw is None:
            return self._error_response(exchange, self._too_large(service))
        operation = self.operation_of(service, head, raw)
        routed = RequestIdentity(
            protocol=service.protocol,
            service=service.service,
            operation=operation,
            signing_name=service.service,
        )
        identity = self.authenticator.identity(head, raw, routed)
        authenticated = self.authenticator.authenticate(head, identity, raw, now)
        if authenticated.error is not None:
            return self._error_response(exchange, authenticated.error)
        if authenticated.access_key_id is None and self.settings.authenticate and s3_style:
            # S3 serves anonymous requests only for public resources; the emulator has none.
            return self._error_response(exchange, self.s3.errors.error("AccessDenied"))
        try:
            body, trailers = self.s3.decode_payload(head, raw) if s3_style else (raw, ())
            forced = head.get(FORCE_ERROR_HEADER)
            if forced is not None:
                raise ServiceError(self._forced_error(service, forced))
            decision = self.faults.decide(service.service, operation)
            if decision.drop:
                # A dropped connection: no status line at all, as when a load balancer resets it.
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)
            if decision.delay_seconds > 0:
                await self.settings.sleep(decision.delay_seconds)
            if decision.error is not None:
                raise ServiceError(service.errors.forced(decision.error))
            call = Call(
                head=head,
                body=body,
                now=now,
                request_id=exchange.request_id,
                host_id=exchange.host_id,
                access_key_id=authenticated.access_key_id,
                account_id=self.settings.account_for(authenticated.access_key_id),
                operation=operation,
                trailers=trailers,
            )
            reply = service.handle(call)
        except ServiceError as failure:
            return self._error_response(exchange, failure.error)
        return self._response(exchange, reply)

    def _exchange(self, service: EmulatedService, head: RequestHead) -> _Exchange:
        s3_style = service is self.s3
        return _Exchange(
            service=service,
            head=head,
            request_id=self.ids.s3_request_id() if s3_style else self.ids.uuid(),
            host_id=self.ids.s3_host_id() if s3_style else "",
        )

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The whole body, or None when it exceeds max_body_bytes (checked while reading)."""
        limit = self.settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, service: EmulatedService) -> AwsError:
        limit = str(self.settings.max_body_bytes)
        if service is self.s3:
            return service.errors.error("EntityTooLarge", extra=(("MaxSizeAllowed", limit),))
        if service is self.importexport:
            return service.errors.error(
                "InvalidParameterException", message=f"The request body is larger than {limit} bytes."
            )
        return service.errors.error("SerializationException")

    def _incomplete(self, service: EmulatedService) -> AwsError:
        """A body shorter than it said, per service: S3's IncompleteBody; a JSON body that ends early
        cannot be parsed (SerializationException); Import/Export's bad-parameter error."""
        if service is self.s3:
            return service.errors.error("IncompleteBody")
        if service is self.importexport:
            return service.errors.error(
                "InvalidParameterException", message="The request body is incomplete."
            )
        return service.errors.error("SerializationException")

    def _forced_error(self, service: EmulatedService, spec: str) -> AwsError:
        try:
            return service.errors.forced(spec)
        except UnknownErrorCode as problem:
            codes = ", ".join(sorted(service.errors.catalog.entries))
            message = f"{FORCE_ERROR_HEADER}: {problem}; known codes: {codes}"
            return service.errors.error(_BAD_PARAMETER[service.service], message=message)

    # -- answers -------------------------------------------------------------------------------------

    def _headers(self, exchange: _Exchange, own: tuple[tuple[str, str], ...]) -> CIMultiDict[str]:
        headers: CIMultiDict[str] = CIMultiDict([("Date", http_date(self.settings.clock()))])
        if exchange.service is self.s3:
            headers["Server"] = "AmazonS3"
        headers.extend(own)
        return headers

    def _error_response(self, exchange: _Exchange, error: AwsError) -> web.Response:
        catalog = exchange.service.errors.catalog
        is_head = exchange.head.method.upper() == "HEAD"
        rendered = render_error(
            exchange.service.protocol,
            error,
            exchange.request_id,
            json_version=catalog.json_version or "1.1",
            host_id=exchange.host_id,
            xml_namespace=catalog.xml_namespace,
            head=is_head,
        )
        headers = self._headers(exchange, rendered.headers)
        return web.Response(status=rendered.status, headers=headers, body=rendered.body or None)

    def _response(self, exchange: _Exchange, reply: Reply) -> web.Response:
        headers = self._headers(exchange, reply.headers)
        return web.Response(status=reply.status, headers=headers, body=reply.body or None)


def build_emulator_app(
    settings: EmulatorSettings,
    *,
    catalogs: Catalogs | None = None,
    services: ServiceIndex | None = None,
) -> web.Application:
    """The emulator as an aiohttp application (serve it with web.AppRunner or aiohttp's test server).

    `catalogs` default to the built-in ones (pass the merged ones when users add catalogs), `services`
    to botocore's service index. A scenario whose codes or operations do not exist raises ConfigError
    (file, key, problem, fix) here, at start-up. The state is `app[SERVICES_KEY]`.
    """
    handler = EmulatorHandler(settings, catalogs or load_builtin_catalogs(), services or load_service_index())
    # The handler reads the body itself, bounded by max_body_bytes.
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SERVICES_KEY] = EmulatedServices(
        storagegateway=handler.storagegateway,
        s3=handler.s3,
        importexport=handler.importexport,
        faults=handler.faults,
    )
    app.router.add_route("*", "/{tail:.*}", handler.__call__)
    return app
