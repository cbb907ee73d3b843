"""slot_constructor builds the same frozen objects as the dataclass constructor; remember() is bounded."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from proxy.core.checks import Dialect, ValidationResult
from proxy.core.frozen import MAX_KEY_CHARS, remember, slot_constructor
from proxy.core.model import AwsError, Protocol, RequestHead, RequestIdentity
from proxy.core.sigv4.auth import CredentialScope, SigV4Authorization
from proxy.core.sigv4.chunked import ChunkSigning
from proxy.core.sigv4.signing import RequestSignature

_SCOPE = CredentialScope("AKID", "20240501", "us-east-1", "storagegateway", "aws4_request")

# The classes the hot path builds with slot_constructor, and a couple more.
SAMPLES: list[Any] = [
    RequestIdentity(
        Protocol.JSON, "storagegateway", "ListGateways", "storagegateway", "us-east-1", "20130630"
    ),
    RequestIdentity(),
    AwsError("ThrottlingException", 400, "Rate exceeded.", (("a", "b"),), False, "VolumeNotFound"),
    RequestHead.build("GET", "/p?q=1", [("Host", "h"), ("X-A", "1"), ("x-a", "2")]),
    SigV4Authorization(
        _SCOPE, ("host", "x-amz-date"), "0" * 64, "host;x-amz-date", raw="AWS4-HMAC-SHA256 ..."
    ),
    RequestSignature("canonical", "to sign", "f" * 64, b"k" * 32),
    ChunkSigning(b"k" * 32, "20240501T120000Z", _SCOPE.scope, "0" * 64),
    ValidationResult((), 1.5, "valid", "AKID", None, "e3b0", Dialect.S3),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_slot_constructor_builds_an_equal_frozen_object(sample: Any) -> None:
    cls = type(sample)
    values = [getattr(sample, item.name) for item in dataclasses.fields(cls)]
    made = slot_constructor(cls)(*values)
    assert type(made) is cls
    assert made == sample
    assert all(getattr(made, name) is getattr(sample, name) for name in cls.__slots__)
    assert repr(made) == repr(sample)
    assert hash(made) == hash(sample)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.__setattr__(dataclasses.fields(cls)[0].name, None)


def test_slot_constructor_takes_every_field_positionally() -> None:
    make = slot_constructor(RequestIdentity)
    with pytest.raises(TypeError):
        make(Protocol.JSON)  # no defaults: every field is given
    with pytest.raises(TypeError):
        make(protocol=Protocol.JSON)


def test_slot_constructor_refuses_a_class_without_slots() -> None:
    @dataclasses.dataclass(frozen=True)
    class Plain:
        value: int

    with pytest.raises(TypeError, match="not a slots dataclass"):
        slot_constructor(Plain)


def test_remember_is_bounded_and_returns_the_value() -> None:
    memo: dict[int, str] = {}
    for number in range(100):
        assert remember(memo, number, str(number), limit=10) == str(number)
        assert len(memo) <= 10
        assert memo[number] == str(number)


def test_remember_does_not_store_huge_keys() -> None:
    memo: dict[object, int] = {}
    assert remember(memo, "k" * (MAX_KEY_CHARS + 1), 1) == 1
    assert remember(memo, b"k" * (MAX_KEY_CHARS + 1), 2) == 2
    assert remember(memo, ("k" * 600, None, "k" * 600, True), 3) == 3
    assert memo == {}
    assert remember(memo, ("k" * 600, None, "k" * 400, True), 4) == 4
    assert remember(memo, "k" * MAX_KEY_CHARS, 5) == 5
    assert len(memo) == 2
