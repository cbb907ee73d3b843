"""Input validation and default outputs driven by botocore's service models.

AWS JSON services check an input against the operation's shapes before running it and answer
ValidationException with every violated constraint, in the wording of AWS's service framework:

    2 validation errors detected: Value null at 'gatewayARN' failed to satisfy constraint: Member must
    not be null; Value 'x' at 'gatewayName' failed to satisfy constraint: Member must have length
    greater than or equal to 2

(member paths start lower-case, list items are `<list>.<n>.member`, map items `<map>.<key>.member`.)
A value of the wrong JSON type never reaches that stage: the deserializer fails first and the answer is
SerializationException.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import botocore.session

JsonValue = Any  # what orjson.loads returns


class SerializationProblem(Exception):
    """The input does not deserialize into the operation's shapes (a wrong JSON type)."""


@functools.cache
def service_model(service: str) -> Any:
    """botocore's model of `service` (loaded once per process)."""
    return botocore.session.get_session().get_service_model(service)


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    """The model's (Java) pattern as a Python regex; None for the few Python cannot compile."""
    python_pattern = pattern.replace(r"\A", "^").replace(r"\z", "$").replace(r"\Z", "$")
    try:
        return re.compile(python_pattern)
    except re.error:
        return None


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _render(value: JsonValue) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return f"'{str(value).lower()}'"
    if isinstance(value, list):
        return "'[" + ", ".join(str(item) for item in value) + "]'"
    return f"'{value}'"


def _violation(path: str, value: JsonValue, constraint: str) -> str:
    return f"Value {_render(value)} at '{path}' failed to satisfy constraint: Member must {constraint}"


def validate_input(shape: Any, value: JsonValue) -> list[str]:
    """Every constraint of `shape` that `value` violates, in AWS's wording; [] when valid.

    Raises SerializationProblem when a value has the wrong JSON type.
    """
    problems: list[str] = []
    if not isinstance(value, dict):
        raise SerializationProblem("Start of structure or map found where not expected.")
    _check_structure(shape, value, "", problems)
    return problems


def validation_message(problems: list[str]) -> str:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(problems)


def _check_structure(shape: Any, value: dict[str, JsonValue], prefix: str, problems: list[str]) -> None:
    members: Mapping[str, Any] = shape.members
    for name in shape.required_members:
        if value.get(name) is None:
            problems.append(
                f"Value null at '{prefix}{_lower_first(name)}' failed to satisfy constraint: "
                "Member must not be null"
            )
    for name, member_value in value.items():
        member_shape = members.get(name)
        if member_shape is None or member_value is None:
            continue  # unknown members are ignored by the deserializer
        _check_value(member_shape, member_value, f"{prefix}{_lower_first(name)}", problems)


def _check_value(shape: Any, value: JsonValue, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    metadata = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise SerializationProblem("Start of structure or map found where not expected.")
        _check_structure(shape, value, path + ".", problems)
    elif kind == "list":
        if not isinstance(value, list):
            raise SerializationProblem("Start of list found where not expected")
        _check_length(len(value), metadata, path, value, problems)
        for index, item in enumerate(value, start=1):
            if item is not None:
                _check_value(shape.member, item, f"{path}.{index}.member", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            raise SerializationProblem("Start of structure or map found where not expected.")
        for key, item in value.items():
            _check_value(shape.key, key, f"{path}.{key}.key", problems)
            if item is not None:
                _check_value(shape.value, item, f"{path}.{key}.member", problems)
    elif kind == "string":
        if not isinstance(value, str):
            raise SerializationProblem(f"Unexpected value type in payload at '{path}'")
        _check_string(shape, value, path, problems)
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise SerializationProblem(f"Unexpected value type in payload at '{path}'")
        if "min" in metadata and value < metadata["min"]:
            problems.append(_violation(path, value, f"have value greater than or equal to {metadata['min']}"))
        if "max" in metadata and value > metadata["max"]:
            problems.append(_violation(path, value, f"have value less than or equal to {metadata['max']}"))
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SerializationProblem(f"Unexpected value type in payload at '{path}'")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise SerializationProblem(f"Unexpected value type in payload at '{path}'")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SerializationProblem(f"Unexpected value type in payload at '{path}'")
    elif kind == "blob" and not isinstance(value, str):
        raise SerializationProblem(f"Unexpected value type in payload at '{path}'")


def _check_length(
    length: int, metadata: Mapping[str, Any], path: str, value: JsonValue, problems: list[str]
) -> None:
    if "min" in metadata and length < metadata["min"]:
        problems.append(_violation(path, value, f"have length greater than or equal to {metadata['min']}"))
    if "max" in metadata and length > metadata["max"]:
        problems.append(_violation(path, value, f"have length less than or equal to {metadata['max']}"))


def _check_string(shape: Any, value: str, path: str, problems: list[str]) -> None:
    metadata = shape.metadata
    _check_length(len(value), metadata, path, value, problems)
    enum = shape.enum
    if enum and value not in enum:
        problems.append(_violation(path, value, "satisfy enum value set: [" + ", ".join(enum) + "]"))
    pattern = metadata.get("pattern")
    if pattern:
        compiled = _compiled(pattern)
        if compiled is not None and compiled.search(value) is None:
            problems.append(_violation(path, value, f"satisfy regular expression pattern: {pattern}"))


def default_output(shape: Any, request: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    """A plausible answer for an operation the emulator keeps no state for.

    Members the input also carries (GatewayARN, VolumeARN, FileShareARN, ...) are echoed, lists are
    empty; everything else is left out, as AWS leaves out members it has no value for.
    """
    if shape is None:
        return {}
    output: dict[str, JsonValue] = {}
    for name, member in shape.members.items():
        echoed = request.get(name)
        if echoed is not None and member.type_name == "string" and isinstance(echoed, str):
            output[name] = echoed
        elif member.type_name == "list":
            output[name] = []
    return output
