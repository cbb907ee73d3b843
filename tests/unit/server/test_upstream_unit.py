"""The upstream client's pure parts: which header lines are end-to-end, what a request may not carry, and
the Routes built from settings and forward-mode origins."""

from __future__ import annotations

import socket
import ssl

import pytest
from yarl import URL

from proxy.config import UpstreamSettings
from proxy.server.upstream import (
    HOP_BY_HOP_RAW,
    RequestBodyLengthError,
    Upstream,
    UpstreamBodyError,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamProtocolError,
    UpstreamTimeout,
    end_to_end_raw,
    failure_from,
)


def test_end_to_end_raw_drops_hop_by_hop_and_connection_named_fields_keeping_the_rest_as_is() -> None:
    raw = [
        (b"Host", b"example.com"),
        (b"Connection", b"keep-alive, X-Secret-Hop , , Upgrade"),
        (b"x-secret-hop", b"1"),
        (b"X-Amz-Date", b"20240101T000000Z"),
        (b"Keep-Alive", b"timeout=5"),
        (b"TRANSFER-ENCODING", b"chunked"),
        (b"Proxy-Authorization", b"Basic Zm9vOmJhcg=="),
        (b"x-amz-meta-a", b"1"),
        (b"X-Amz-Meta-A", b"2"),
        (b"Upgrade", b"h2c"),
    ]
    assert end_to_end_raw(raw) == [
        (b"Host", b"example.com"),
        (b"X-Amz-Date", b"20240101T000000Z"),
        (b"x-amz-meta-a", b"1"),
        (b"X-Amz-Meta-A", b"2"),
    ]
    # The caller's extra names are dropped too (the handler adds Expect), matched in any case.
    assert end_to_end_raw(raw, HOP_BY_HOP_RAW | {b"x-amz-date", b"host"}) == [
        (b"x-amz-meta-a", b"1"),
        (b"X-Amz-Meta-A", b"2"),
    ]


@pytest.fixture
def client() -> Upstream:
    return Upstream(UpstreamSettings(url="http://127.0.0.1:9"))


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (b"/a\r\nX-Injected: 1", [(b"Host", b"h")]),
        (b"/", [(b"Host", b"h\r\nX-Injected: 1")]),
        (b"/", [(b"Host", b"h"), (b"X-Bare-Lf", b"a\nb")]),
        (b"/", [(b"X-Bare-Cr\r", b"v")]),
    ],
)
def test_a_cr_or_lf_inside_the_target_or_a_field_is_refused(
    client: Upstream, target: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        client.request("GET", target, headers, None)


def test_framing_stays_the_clients_to_add(client: Upstream) -> None:
    with pytest.raises(ValueError, match="Transfer-Encoding"):
        client.request("POST", b"/", [(b"Transfer-Encoding", b"chunked")], b"x")
    with pytest.raises(RequestBodyLengthError):
        client.request("POST", b"/", [(b"Content-Length", b"4")], b"three")
    with pytest.raises(RequestBodyLengthError):
        client.request("POST", b"/", [(b"content-length", b"x")], b"three")
    client.request("POST", b"/", [(b"Content-Length", b"005")], b"three")  # the same size, written otherwise


def test_routes_from_settings_and_from_forward_origins() -> None:
    plain = Upstream(UpstreamSettings(url="http://[::1]:8081/"))
    assert (plain.route.scheme, plain.route.host, plain.route.port) == ("http", "::1", 8081)
    assert (plain.route.ssl, plain.route.server_hostname) == (None, None)
    assert str(plain.base) == "http://[::1]:8081"

    tls = Upstream(
        UpstreamSettings(url="https://storagegateway.us-east-2.amazonaws.com", connect_timeout=3.0)
    )
    route = tls.route
    assert (route.scheme, route.host, route.port) == ("https", "storagegateway.us-east-2.amazonaws.com", 443)
    assert route.server_hostname == route.host and route.connect_timeout == 3.0
    assert route.ssl is not None and route.ssl.verify_mode == ssl.CERT_REQUIRED and route.ssl.check_hostname

    unverified = Upstream(UpstreamSettings(url="https://127.0.0.1:8443", verify_tls=False)).route.ssl
    assert (
        unverified is not None and unverified.verify_mode == ssl.CERT_NONE and not unverified.check_hostname
    )

    context = ssl.create_default_context()
    forward = tls.route_to(URL("https://b\u00fccher.example"), context, 1.5)
    assert (forward.host, forward.port, forward.server_hostname) == (
        "xn--bcher-kva.example",
        443,
        "xn--bcher-kva.example",
    )
    assert forward.ssl is context and forward.connect_timeout == 1.5
    assert tls.route_to(URL("https://b\u00fccher.example"), context, 1.5) is forward
    http = tls.route_to(URL("http://[2001:db8::1]:8080"), context, 1.5)
    assert (http.host, http.port, http.ssl, http.server_hostname) == ("2001:db8::1", 8080, None, None)


def test_own_errors_map_onto_the_bounded_reasons() -> None:
    cases = [
        (
            UpstreamConnectError(socket.gaierror(-2, "Name or service not known")),
            "dns",
            "name resolution failed: ",
        ),
        (UpstreamConnectError(ssl.SSLError(1, "bad cert")), "tls", "TLS handshake failed: "),
        (UpstreamConnectError(ConnectionRefusedError(111, "refused")), "refused", "cannot connect: "),
        (UpstreamConnectError(OSError(101, "Network is unreachable")), "refused", "cannot connect: "),
        (UpstreamTimeout("no byte for 60 s"), "timeout", "no answer in time"),
        (UpstreamDisconnected("closed"), "reset", "connection lost: "),
        (UpstreamDisconnected("reset", mid_body=True), "reset", "connection lost mid-body: "),
        (UpstreamBodyError("closed early"), "protocol", "the body ended early or was badly framed: "),
        (UpstreamProtocolError("bad status"), "protocol", "bad upstream answer: "),
        (RequestBodyLengthError("longer"), "protocol", "bad upstream answer: "),
    ]
    for exc, reason, detail in cases:
        failure = failure_from(exc)
        assert (failure.reason, failure.detail.startswith(detail)) == (reason, True), (exc, failure)
        assert failure.timeout is (reason == "timeout")
