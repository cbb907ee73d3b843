"""The allowlist: which destinations the forward proxy may reach, and what a bad pattern says."""

from __future__ import annotations

import pytest

from proxy.config import ConfigError, load_settings
from proxy.server.allowlist import Allowlist, parse_pattern, split_authority
from proxy.server.forward import parse_absolute

DEFAULT = Allowlist(["*.amazonaws.com", "*.amazonaws.com.cn"], always=["upstream.internal:8443", "emu:8081"])


@pytest.mark.parametrize(
    ("host", "port", "allowed"),
    [
        ("storagegateway.us-east-2.amazonaws.com", 443, True),
        ("S3.Amazonaws.COM.", 443, True),  # case and a trailing dot do not matter
        ("bucket.s3.cn-north-1.amazonaws.com.cn", 443, True),
        ("amazonaws.com", 443, False),  # "*." means names below the domain
        ("evilamazonaws.com", 443, False),
        ("amazonaws.com.evil.example", 443, False),
        ("upstream.internal", 8443, True),  # the configured upstream, on its port only
        ("upstream.internal", 443, False),
        ("emu", 8081, True),
        ("127.0.0.1", 22, True),  # loopback, always
        ("127.8.9.10", 80, True),
        ("::1", 443, True),
        ("localhost", 8080, True),
        ("example.com", 443, False),
        ("169.254.169.254", 80, False),  # instance metadata is not a destination
        ("10.0.0.1", 443, False),
    ],
)
def test_default_allowlist(host: str, port: int, allowed: bool) -> None:
    assert DEFAULT.allows(host, port) is allowed


def test_pattern_forms() -> None:
    allow = Allowlist(["10.0.0.0/8", "[2001:db8::1]:443", "api.example:8443", "192.0.2.7", "*"])
    assert allow.allows("10.200.0.1", 1)
    assert allow.allows("example.org", 1)  # "*": anything
    narrow = Allowlist(["10.0.0.0/8", "[2001:db8::1]:443", "api.example:8443", "192.0.2.7"])
    assert narrow.allows("10.200.0.1", 1) and not narrow.allows("11.0.0.1", 1)
    assert narrow.allows("2001:db8::1", 443) and not narrow.allows("2001:db8::1", 80)
    assert narrow.allows("api.example", 8443) and not narrow.allows("api.example", 443)
    assert narrow.allows("192.0.2.7", 9) and not narrow.allows("192.0.2.8", 9)


@pytest.mark.parametrize(
    "bad", ["", "a b", "*.*.com", "foo*.com", "host:", "host:99999", "10.0.0.0/33", "u@h"]
)
def test_bad_patterns_are_config_errors(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_pattern(bad)
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides={"forward": {"allow": ["*.amazonaws.com", bad]}}, environ={})
    assert caught.value.key == "forward.allow"
    assert repr(bad) in caught.value.problem


def test_authorities() -> None:
    assert split_authority("Host.Example:443") == ("host.example", 443)
    assert split_authority("[::1]:8443") == ("::1", 8443)
    assert split_authority("::1", 80) == ("::1", 80)
    assert split_authority("h", 80) == ("h", 80)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("http://h:1/a%2Fb?x=%7E", ("http", "h:1", "/a%2Fb?x=%7E")),
        ("HTTP://h", ("http", "h", "/")),
        ("http://h?x=1", ("http", "h", "/?x=1")),
        ("http://h/?x=http://y/z", ("http", "h", "/?x=http://y/z")),
        ("https://[::1]:8443//a//b", ("https", "[::1]:8443", "//a//b")),
    ],
)
def test_absolute_targets_keep_path_and_query_as_sent(target: str, expected: tuple[str, str, str]) -> None:
    parsed = parse_absolute(target)
    assert parsed is not None
    assert (parsed.scheme, parsed.authority, parsed.origin_form) == expected
    assert parse_absolute("/origin/form?x=http://y") is None


def test_ca_files_come_in_pairs() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"SIGWATCH_FORWARD_CA_CERT": "/etc/sigwatch/ca/ca.crt"})
    assert caught.value.key == "forward.ca_key"
    settings = load_settings(
        environ={
            "SIGWATCH_FORWARD_CA_CERT": "/etc/sigwatch/ca/ca.crt",
            "SIGWATCH_FORWARD_CA_KEY": "/etc/sigwatch/ca/ca.key",
        },
        overrides={"forward": {"intercept": True}},
    )
    assert (settings.forward.ca_cert, settings.forward.ca_key, settings.forward.intercept) == (
        "/etc/sigwatch/ca/ca.crt",
        "/etc/sigwatch/ca/ca.key",
        True,
    )
