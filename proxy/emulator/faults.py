"""Fault injection, deterministic under a seed: per-operation error rates, added latency, dropped
connections (a TOML scenario file), and the `x-sigwatch-emulate-error` header that forces one error.

A scenario file (every key is documented in config/scenarios/*.toml):

    seed = 7                                  # optional; the emulator's --seed otherwise

    [[error]]
    service = "storagegateway"                # a service name or "*"
    operations = ["*"]                        # operation names (botocore's) or "*"
    code = "ThrottlingException"              # a catalog code, or "<exception>/<operationErrorCode>"
    rate = 0.02                               # probability per matching request

    [[latency]]
    service = "*"
    operations = ["*"]
    rate = 1.0
    min_ms = 5
    max_ms = 50

    [[drop]]                                  # close the connection without an answer
    service = "s3"
    operations = ["GetObject"]
    rate = 0.001

The error rules matching a request share one draw (their rates add up, at most 1), so each rule fires at
exactly its own rate; the same holds for drop rules; every matching latency rule fires on its own draw.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.config import ConfigError

WILDCARD = "*"
SERVICES = ("storagegateway", "s3", "importexport")
_RULE_KEYS = {
    "error": {"service", "operations", "code", "rate"},
    "latency": {"service", "operations", "rate", "min_ms", "max_ms"},
    "drop": {"service", "operations", "rate"},
}
_TOP_KEYS = {"seed", *(_RULE_KEYS)}


@dataclass(frozen=True, slots=True)
class Match:
    """Which requests a rule applies to."""

    service: str = WILDCARD
    operations: tuple[str, ...] = (WILDCARD,)

    def applies(self, service: str, operation: str | None) -> bool:
        if self.service not in (WILDCARD, service):
            return False
        return WILDCARD in self.operations or (operation is not None and operation in self.operations)


@dataclass(frozen=True, slots=True)
class ErrorRule:
    match: Match
    code: str
    rate: float


@dataclass(frozen=True, slots=True)
class LatencyRule:
    match: Match
    rate: float
    min_ms: float
    max_ms: float


@dataclass(frozen=True, slots=True)
class DropRule:
    match: Match
    rate: float


@dataclass(frozen=True, slots=True)
class Scenario:
    errors: tuple[ErrorRule, ...] = ()
    latencies: tuple[LatencyRule, ...] = ()
    drops: tuple[DropRule, ...] = ()
    seed: int | None = None
    source: str = "(built in code)"


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What happens to one request: dropped, delayed, answered with a forced error, or none of these."""

    drop: bool = False
    delay_seconds: float = 0.0
    error: str | None = None
    rule: str | None = None  # e.g. "error[0]", for logs


NO_FAULT = FaultDecision()


def _fail(source: str, key: str, problem: str, fix: str) -> ConfigError:
    return ConfigError(source, key, problem, fix)


def _number(value: Any, source: str, key: str, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(source, key, f"{value!r} is not a number", "write a number, e.g. 0.02")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _fail(source, key, f"{value} is out of range", f"use a value {bounds}")
    return float(value)


def _match(table: Mapping[str, Any], source: str, key: str) -> Match:
    service = table.get("service", WILDCARD)
    if service != WILDCARD and service not in SERVICES:
        raise _fail(
            source,
            f"{key}.service",
            f"unknown service {service!r}",
            f"use one of {', '.join(SERVICES)} or '*'",
        )
    operations = table.get("operations", [WILDCARD])
    if isinstance(operations, str):
        operations = [operations]
    if not isinstance(operations, list) or not operations or not all(isinstance(o, str) for o in operations):
        raise _fail(
            source,
            f"{key}.operations",
            "not a list of operation names",
            'write e.g. operations = ["ListGateways"] or ["*"]',
        )
    return Match(service=service, operations=tuple(operations))


def parse_scenario(document: Mapping[str, Any], source: str) -> Scenario:
    """A validated Scenario from a parsed TOML document; ConfigError names the file, key and fix."""
    for name in document:
        if name not in _TOP_KEYS:
            raise _fail(source, name, "unknown key", f"use only {', '.join(sorted(_TOP_KEYS))}")
    seed = document.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise _fail(source, "seed", f"{seed!r} is not an integer", "write e.g. seed = 7")
    rules: dict[str, list[Any]] = {"error": [], "latency": [], "drop": []}
    for kind, allowed in _RULE_KEYS.items():
        tables = document.get(kind, [])
        if not isinstance(tables, list):
            raise _fail(source, kind, "not an array of tables", f"write each rule as [[{kind}]]")
        for index, table in enumerate(tables):
            key = f"{kind}[{index}]"
            for name in table:
                if name not in allowed:
                    raise _fail(
                        source, f"{key}.{name}", "unknown key", f"use only {', '.join(sorted(allowed))}"
                    )
            if "rate" not in table:
                raise _fail(source, f"{key}.rate", "missing", "add rate = <probability between 0 and 1>")
            match = _match(table, source, key)
            rate = _number(table["rate"], source, f"{key}.rate", low=0.0, high=1.0)
            if kind == "error":
                code = table.get("code")
                if not isinstance(code, str) or not code.strip():
                    raise _fail(
                        source, f"{key}.code", "missing", 'add code = "ThrottlingException" (a catalog code)'
                    )
                rules[kind].append(ErrorRule(match, code.strip(), rate))
            elif kind == "latency":
                low = _number(table.get("min_ms", 0), source, f"{key}.min_ms", low=0.0)
                high = _number(table.get("max_ms", low), source, f"{key}.max_ms", low=low)
                rules[kind].append(LatencyRule(match, rate, low, high))
            else:
                rules[kind].append(DropRule(match, rate))
    scenario = Scenario(
        errors=tuple(rules["error"]),
        latencies=tuple(rules["latency"]),
        drops=tuple(rules["drop"]),
        seed=seed,
        source=source,
    )
    _check_rate_sums(scenario.errors, "error", source)
    _check_rate_sums(scenario.drops, "drop", source)
    return scenario


def _check_rate_sums(rules: Iterable[ErrorRule | DropRule], kind: str, source: str) -> None:
    """The rules that can match one request share one draw: their rates must add up to at most 1."""
    rules = tuple(rules)
    probes = {(WILDCARD, None)} | {
        (rule.match.service, operation) for rule in rules for operation in rule.match.operations
    }
    for service, operation in probes:
        services = SERVICES if service == WILDCARD else (service,)
        for concrete in services:
            concrete_operation = None if operation == WILDCARD else operation
            total = sum(rule.rate for rule in rules if rule.match.applies(concrete, concrete_operation))
            if total > 1.0 + 1e-9:
                raise _fail(
                    source,
                    kind,
                    f"the {kind} rates matching {concrete} {operation or 'requests'} add up to {total:g}",
                    "lower the rates so that the rules matching one request add up to at most 1",
                )


def load_scenario(path: Path | str) -> Scenario:
    """Read and validate a scenario file (TOML)."""
    source = str(path)
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(source, "(file)", "no such file", "give the path of a scenario TOML file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as problem:
        raise _fail(source, "(syntax)", str(problem), "fix the TOML syntax") from None
    return parse_scenario(document, source)


def check_scenario(
    scenario: Scenario,
    can_force: Callable[[str, str], str | None],
    operations: Mapping[str, frozenset[str]],
) -> None:
    """Check a scenario against the catalogs and service models at start-up.

    `can_force(service, code)` returns None when the service's catalog can produce `code`, else why not;
    `operations` are the operation names of each service. A rule for every service ("*") must name a
    code every catalog has.
    """
    source = scenario.source
    rules: list[tuple[str, Match]] = [(f"error[{i}]", rule.match) for i, rule in enumerate(scenario.errors)]
    rules += [(f"latency[{i}]", rule.match) for i, rule in enumerate(scenario.latencies)]
    rules += [(f"drop[{i}]", rule.match) for i, rule in enumerate(scenario.drops)]
    for key, match in rules:
        services = SERVICES if match.service == WILDCARD else (match.service,)
        known = frozenset().union(*(operations.get(service, frozenset()) for service in services))
        for operation in match.operations:
            if operation != WILDCARD and operation not in known:
                raise _fail(
                    source,
                    f"{key}.operations",
                    f"{operation!r} is not an operation of {match.service}",
                    "use botocore's operation names (e.g. ListGateways, PutObject, CreateJob) or '*'",
                )
    for index, rule in enumerate(scenario.errors):
        services = SERVICES if rule.match.service == WILDCARD else (rule.match.service,)
        for service in services:
            problem = can_force(service, rule.code)
            if problem is not None:
                raise _fail(
                    source,
                    f"error[{index}].code",
                    problem,
                    "use a code of that service's catalog"
                    + (" and name the service (service = ...)" if rule.match.service == WILDCARD else ""),
                )


class FaultInjector:
    """Draws the faults of each request from one seeded generator: the same seed and the same sequence
    of requests give the same faults."""

    def __init__(self, scenario: Scenario | None, seed: int) -> None:
        self.scenario = scenario or Scenario()
        effective_seed = seed if self.scenario.seed is None else self.scenario.seed
        self._random = random.Random(f"sigwatch-faults:{effective_seed}")

    @property
    def active(self) -> bool:
        scenario = self.scenario
        return bool(scenario.errors or scenario.latencies or scenario.drops)

    def _pick(self, rules: tuple[Any, ...], service: str, operation: str | None) -> tuple[int, Any] | None:
        matching = [
            (index, rule) for index, rule in enumerate(rules) if rule.match.applies(service, operation)
        ]
        if not matching:
            return None
        draw = self._random.random()
        threshold = 0.0
        for index, rule in matching:
            threshold += rule.rate
            if draw < threshold:
                return index, rule
        return None

    def decide(self, service: str, operation: str | None) -> FaultDecision:
        if not self.active:
            return NO_FAULT
        scenario = self.scenario
        dropped = self._pick(scenario.drops, service, operation)
        if dropped is not None:
            return FaultDecision(drop=True, rule=f"drop[{dropped[0]}]")
        delay_ms = 0.0
        for rule in scenario.latencies:
            if rule.match.applies(service, operation) and self._random.random() < rule.rate:
                delay_ms += self._random.uniform(rule.min_ms, rule.max_ms)
        picked = self._pick(scenario.errors, service, operation)
        if picked is None:
            return FaultDecision(delay_seconds=delay_ms / 1000.0)
        index, rule = picked
        return FaultDecision(delay_seconds=delay_ms / 1000.0, error=rule.code, rule=f"error[{index}]")
