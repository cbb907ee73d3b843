"""Forward-proxy mode: where a request goes, whether it may go there, and how TLS is handled.

One listener serves three kinds of traffic:
- origin-form requests (`POST / HTTP/1.1`, an SDK with `endpoint_url` at sigwatch): reverse proxy to
  the configured upstream;
- absolute-form requests (`POST http://host:port/ HTTP/1.1`, an SDK with `HTTP_PROXY`): forwarded to
  that URL's origin, when the allowlist allows it;
- `CONNECT host:port` (an SDK with `HTTPS_PROXY`): a blind tunnel, or with `forward.intercept` a TLS
  connection terminated with a leaf certificate from the local CA, whose requests are then handled
  like the others and forwarded over TLS to `host:port` (see proxy.server.tunnel).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from yarl import URL

from proxy.config import Settings, split_address
from proxy.core.model import AwsError, Finding, Severity
from proxy.server.allowlist import Allowlist, how_to_allow, is_loopback, split_authority
from proxy.tls import LeafContexts, LocalCA, ca_paths, load_or_create_ca

KIND_REVERSE = "reverse"
KIND_FORWARD = "forward"
KIND_TUNNEL = "tunnel"

DEFAULT_PORTS = {"http": 80, "https": 443}

DESTINATION_CHECK = "destination"
DESTINATION_REFUSED = "ProxyDestinationNotAllowed"


@dataclass(frozen=True, slots=True)
class AbsoluteTarget:
    """An absolute-form request target (RFC 9112 §3.2.2) split into what SigV4 and the pool need."""

    scheme: str  # lower-case
    authority: str  # as written
    origin_form: str  # the path and query exactly as sent, `/` when the URL had no path


def parse_absolute(target: str) -> AbsoluteTarget | None:
    """`http://host:port/p?q` -> (http, host:port, /p?q); None for an origin-form target.

    The path and query are cut out of the URL as bytes, never decoded or re-encoded: SigV4 signs them
    exactly as sent (botocore's canonical request uses the path of the URL it sends).
    """
    if target.startswith("/") or "://" not in target:
        return None
    scheme, _, rest = target.partition("://")
    slash = rest.find("/")
    query_mark = rest.find("?")
    if slash == -1 or (query_mark != -1 and query_mark < slash):
        end = query_mark if query_mark != -1 else len(rest)
        authority, origin_form = rest[:end], "/" + rest[end:]
    else:
        authority, origin_form = rest[:slash], rest[slash:]
    return AbsoluteTarget(scheme.lower(), authority, origin_form)


@dataclass(frozen=True, slots=True)
class Destination:
    """Where one request is forwarded: an origin (scheme://host:port) and the host it names."""

    kind: str  # reverse | forward
    origin: URL
    host: str
    port: int

    @property
    def target_host(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def destination_for(kind: str, scheme: str, authority: str) -> Destination:
    """Raises ValueError for an authority that is not host[:port] or a scheme other than http(s)."""
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"sigwatch forwards http and https only, not {scheme}")
    host, port = split_authority(authority, DEFAULT_PORTS[scheme])
    assert port is not None
    bracketed = f"[{host}]" if ":" in host else host
    return Destination(
        kind, URL.build(scheme=scheme, authority=f"{bracketed}:{port}", encoded=True), host, port
    )


def refusal(host: str, port: int) -> Finding:
    """The finding (and 403 answer) for a destination outside the allowlist."""
    explanation = f"sigwatch does not forward to {host}:{port}: {how_to_allow(host, port)}."
    return Finding(
        check=DESTINATION_CHECK,
        severity=Severity.ERROR,
        error=AwsError(code=DESTINATION_REFUSED, status=403, message=explanation),
        explanation=explanation,
    )


def forward_ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """Verification of the real hosts sigwatch forwards to: the system CAs or `forward.ca_bundle`."""
    return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)


def listens_on_loopback(settings: Settings) -> bool:
    """Is the proxy listener bound to a loopback address (only this host's clients reach it)?"""
    host = split_address(settings.listen.address)[0]
    return host not in {"0.0.0.0", "::", ""} and is_loopback(host)


def _always_allowed(settings: Settings, loopback: bool) -> list[str]:
    """The configured upstream (the reverse proxy goes there anyway) and, for local debugging on a
    loopback listener, the emulator."""
    upstream = urlsplit(settings.upstream.url)
    always = []
    if upstream.hostname:
        port = upstream.port or DEFAULT_PORTS.get(upstream.scheme, 443)
        host = f"[{upstream.hostname}]" if ":" in upstream.hostname else upstream.hostname
        always.append(f"{host}:{port}")
    if loopback or not is_loopback(split_address(settings.emulator.address)[0]):
        always.append(settings.emulator.address)
    return list(dict.fromkeys(always))


class ForwardProxy:
    """Everything forward mode needs, built once at start-up from the settings.

    With interception on, the CA is loaded (or created on first use) here, so a bad CA file stops
    start-up with a message naming it instead of failing the first tunnel.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        forward = settings.forward
        self.settings = forward
        self.intercept = forward.intercept
        loopback = listens_on_loopback(settings)
        self.allowlist = Allowlist(
            forward.allow, always=_always_allowed(settings, loopback), loopback=loopback
        )
        self.ssl = forward_ssl_context(forward.ca_bundle)
        # What Upstream.route_to takes; the read timeout is upstream.read_timeout, as for the reverse proxy.
        self.connect_timeout = forward.connect_timeout
        self.ca: LocalCA | None = None
        self.ca_created = False
        self.leaves: LeafContexts | None = None
        if forward.intercept:
            self.ca, self.ca_created = load_or_create_ca(ca_paths(forward, environ), clock())
            self.leaves = LeafContexts(self.ca, clock=clock)

    def allows(self, host: str, port: int) -> bool:
        return self.allowlist.allows(host, port)


def is_this_listener(destination: Destination, sockname: object) -> bool:
    """Does an absolute-form target name sigwatch's own listener (the port the client connected to)?

    An SDK with both `HTTP_PROXY` and `endpoint_url` at sigwatch sends `POST http://127.0.0.1:8080/`
    to sigwatch itself: that is a reverse-proxy request, not a loop.
    """
    if not isinstance(sockname, tuple) or len(sockname) < 2 or destination.port != sockname[1]:
        return False
    own = str(sockname[0])
    if destination.host == own:
        return True
    return is_loopback(destination.host) and (is_loopback(own) or own in {"0.0.0.0", "::"})
