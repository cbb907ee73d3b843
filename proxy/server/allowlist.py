"""Where the forward proxy may go: destination patterns and the allowlist built from them.

sigwatch must not become an open proxy: absolute-form requests and CONNECT tunnels are forwarded only
to destinations matching `forward.allow`, plus the configured upstream, the emulator and loopback.

Loopback is allowed by default only when sigwatch itself listens on loopback (local debugging: the
client is on the same host and could reach those services anyway). On any other listener (0.0.0.0 in a
pod) the host's own loopback services would become reachable by every client that can reach sigwatch,
so a loopback destination must then be named by a `forward.allow` entry (`127.0.0.1:9000`,
`localhost`, `127.0.0.0/8`; `*` does not count) or be the configured upstream. Every spelling a
resolver turns into a loopback address counts as loopback: `127.1`, `0x7f.1`, `2130706433`,
`[::ffff:127.0.0.1]`, and the unspecified `0.0.0.0` / `[::]` (which connect to the local host).
Pure code (no I/O library): the config loader validates patterns with the same parser.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_KEY = "forward.allow"
ALLOW_ENV = "SIGWATCH_FORWARD_ALLOW"


def normalize_host(host: str) -> str:
    """Host names compare case-insensitively and without a trailing dot; IPv6 without brackets."""
    return host.strip().strip("[]").rstrip(".").lower()


def split_authority(authority: str, default_port: int | None = None) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, `host` -> (normalized host, port or `default_port`).

    Raises ValueError when the port is not a number in 1..65535 or the host is empty.
    """
    text = authority.strip()
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise ValueError("unclosed [ in an IPv6 address")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError("text after ]")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text:
            raise ValueError("empty port")
    else:
        host = text  # a name, an IPv4 address or a bare IPv6 address
    host = normalize_host(host)
    if not host:
        raise ValueError("no host")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
            raise ValueError(f"bad port {port_text!r}")
        return host, int(port_text)
    return host, default_port


def host_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def destination_address(host: str) -> IPAddress | None:
    """The address a connection to `host` would reach when `host` is an address in any spelling the
    system resolver accepts (inet_aton's `127.1`, `0x7f000001`, `2130706433`), IPv4-mapped IPv6
    unwrapped; None for a name."""
    address = host_address(host)
    if address is None and host and all(ch in "0123456789abcdefxABCDEFX." for ch in host):
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(host: str) -> bool:
    """Does `host` reach this machine: a localhost name, a loopback address, or the unspecified one?"""
    if host == "localhost" or host.endswith(".localhost"):
        return True  # RFC 6761 §6.3: localhost names resolve to loopback
    address = destination_address(host)
    return address is not None and (address.is_loopback or address.is_unspecified)


@dataclass(frozen=True, slots=True)
class DestinationPattern:
    """One allowlist entry: `*`, a host, `*.domain` (any name below it), an IP or a CIDR, with an
    optional `:port` (host and IP forms)."""

    text: str
    host: str = ""  # normalized host, or the domain of a wildcard
    wildcard: bool = False
    network: IPNetwork | None = None
    port: int | None = None
    anything: bool = False

    def matches(self, host: str, port: int) -> bool:
        if self.anything:
            return True
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            address = destination_address(host)
            return address is not None and address in self.network
        if self.wildcard:
            return host.endswith("." + self.host)
        return host == self.host


def parse_pattern(text: str) -> DestinationPattern:
    """Parse one `forward.allow` entry; ValueError says what is wrong with it."""
    entry = text.strip()
    if not entry:
        raise ValueError("empty")
    if entry == "*":
        return DestinationPattern(entry, anything=True)
    if any(ch.isspace() or ch in "@?#\\" for ch in entry):
        raise ValueError("spaces and @?#\\ cannot appear in a destination")
    if "/" in entry:
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError as exc:
            raise ValueError(f"not a CIDR: {exc}") from exc
        return DestinationPattern(entry, network=network)
    host, port = split_authority(entry)
    wildcard = host.startswith("*.")
    if wildcard:
        host = host[2:]
    if "*" in host:
        raise ValueError('a wildcard is allowed only as the first label, as in "*.amazonaws.com"')
    if not host:
        raise ValueError("no host")
    address = host_address(host)
    if address is not None and not wildcard:
        return DestinationPattern(entry, network=ipaddress.ip_network(address), port=port)
    return DestinationPattern(entry, host=host, wildcard=wildcard, port=port)


class Allowlist:
    """The configured patterns plus the destinations always allowed (upstream, emulator, and loopback
    when `loopback` is True: sigwatch listens on loopback itself)."""

    def __init__(self, patterns: Iterable[str], always: Iterable[str] = (), *, loopback: bool = True) -> None:
        self.patterns = tuple(parse_pattern(p) for p in patterns)
        self.always = tuple(parse_pattern(p) for p in always)
        self.loopback = loopback

    def allows(self, host: str, port: int) -> bool:
        host = normalize_host(host)
        entries = (*self.always, *self.patterns)
        if is_loopback(host):
            # Named explicitly, or not at all: `*` opens the world, not this host's own services.
            return self.loopback or any(not p.anything and p.matches(host, port) for p in entries)
        return any(p.matches(host, port) for p in entries)

    def describe(self) -> list[str]:
        return [p.text for p in (*self.patterns, *self.always)] + (["loopback"] if self.loopback else [])


def how_to_allow(host: str, port: int) -> str:
    """The fix a refused destination's log line and answer carry."""
    return (
        f'add "{host}" (or "{host}:{port}", or a "*.domain" pattern) to {ALLOW_KEY} in the config file, '
        f"or to the comma-separated environment variable {ALLOW_ENV}"
    )
