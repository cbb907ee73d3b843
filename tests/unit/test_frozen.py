"""slot_constructor builds the same frozen objects as the dataclass constructor; remember() is bounded."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from proxy.core.frozen import remember, slot_constructor
from proxy.core.model import AwsError, Protocol, RequestIdentity

SAMPLES: list[Any] = [
    RequestIdentity(
        Protocol.JSON, "storagegateway", "ListGateways", "storagegateway", "us-east-1", "20130630"
    ),
    RequestIdentity(),
    AwsError("ThrottlingException", 400, "Rate exceeded.", (("a", "b"),), False, "VolumeNotFound"),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: type(sample).__name__)
def test_slot_constructor_builds_an_equal_frozen_object(sample: Any) -> None:
    cls = type(sample)
    values = [getattr(sample, item.name) for item in dataclasses.fields(cls)]
    made = slot_constructor(cls)(*values)
    assert type(made) is cls
    assert made == sample
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
