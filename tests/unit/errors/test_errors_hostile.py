"""Hostile error bodies from an untrusted upstream: nesting bombs, entity expansion, external entities,
huge numbers, random bytes under every header combination. The extractor never raises, keeps its fields
capped and examines no more than its limit (tests/fuzz/targets.py `error_body`, shared with atheris)."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from proxy.core.errors.extract import DEFAULT_DECODED_LIMIT, _extract
from proxy.core.model import Protocol
from tests.fuzz.targets import error_body

HOSTILE = {
    "json nesting bomb": b"[" * 100_000 + b"]" * 100_000,
    "json object bomb": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "xml nesting bomb": b"<a>" * 50_000 + b"</a>" * 50_000,
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<Error><Code>&c;</Code></Error>",
    "external entity": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<Error><Code>&x;</Code></Error>",
    "huge number": b'{"__type": 1' + b"0" * 100_000 + b"}",
    "huge code": b'{"__type": "' + b"C" * 200_000 + b'"}',
    "gzip bomb": gzip.compress(b"{" + b" " * 20_000_000 + b"}"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("protocol", list(Protocol))
def test_hostile_documents(name: str, protocol: Protocol) -> None:
    headers = [("Content-Encoding", "gzip")] if name == "gzip bomb" else []
    info = _extract(
        protocol, 400, headers, HOSTILE[name], truncated=False, limit=None, max_decoded=DEFAULT_DECODED_LIMIT
    )
    assert info.status == 400
    assert info.code is None or len(info.code) <= 1024
    assert "root:" not in info.message and "aaaaaaaaaaaaaaaaaaaa" not in (info.code or "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
@example(b"\x00\x01\x90\x01" + gzip.compress(b'{"__type":"X"}'))
def test_random_bytes_under_every_header_combination(data: bytes) -> None:
    error_body(data)
