"""Where the forward proxy may go: destination patterns and the allowlist built from them.

sigwatch must not become an open proxy: absolute-form requests and CONNECT tunnels are forwarded only
to destinations matching `forward.allow`, plus the configured upstream, the emulator and loopback.
Pure code (no I/O library): the config loader validates patterns with the same parser.
"""

from __future__ import annotations

import ipaddress
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


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True  # RFC 6761 §6.3: localhost names resolve to loopback
    address = host_address(host)
    return address is not None and address.is_loopback


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
            address = host_address(host)
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
    """The configured patterns plus the destinations always allowed (upstream, emulator, loopback)."""

    def __init__(self, patterns: Iterable[str], always: Iterable[str] = ()) -> None:
        self.patterns = tuple(parse_pattern(p) for p in patterns)
        self.always = tuple(parse_pattern(p) for p in always)

    def allows(self, host: str, port: int) -> bool:
        host = normalize_host(host)
        if is_loopback(host):
            return True
        return any(p.matches(host, port) for p in (*self.always, *self.patterns))

    def describe(self) -> list[str]:
        return [p.text for p in (*self.patterns, *self.always)] + ["loopback"]


def how_to_allow(host: str, port: int) -> str:
    """The fix a refused destination's log line and answer carry."""
    return (
        f'add "{host}" (or "{host}:{port}", or a "*.domain" pattern) to {ALLOW_KEY} in the config file, '
        f"or to the comma-separated environment variable {ALLOW_ENV}"
    )
