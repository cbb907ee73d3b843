"""Fault scenarios: parsing and validation of the TOML file, and the rates honoured over a fixed seed."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from proxy.config import ConfigError
from proxy.emulator.errors import ErrorBook, UnknownErrorCode
from proxy.emulator.faults import FaultInjector, check_scenario, load_scenario, parse_scenario
from proxy.emulator.shapes import service_model

REPO = Path(__file__).resolve().parents[3]
DRAWS = 10_000


def binomial_bounds(rate: float, draws: int = DRAWS, sigmas: float = 5.0) -> tuple[float, float]:
    """The count a fair draw lands in with overwhelming probability: mean ± 5 standard deviations."""
    mean = rate * draws
    spread = sigmas * math.sqrt(draws * rate * (1 - rate))
    return mean - spread, mean + spread


SCENARIO = {
    "seed": 11,
    "error": [
        {"service": "storagegateway", "operations": ["*"], "code": "ThrottlingException", "rate": 0.02},
        {
            "service": "storagegateway",
            "operations": ["*"],
            "code": "InternalServerError/GatewayInternalError",
            "rate": 0.005,
        },
        {"service": "s3", "operations": ["GetObject"], "code": "SlowDown", "rate": 0.1},
    ],
    "latency": [{"service": "*", "operations": ["*"], "rate": 0.3, "min_ms": 10, "max_ms": 40}],
    "drop": [{"service": "s3", "operations": ["GetObject"], "rate": 0.01}],
}


def test_error_rates_are_honoured_within_binomial_bounds() -> None:
    injector = FaultInjector(parse_scenario(SCENARIO, "test"), seed=0)
    errors = Counter(injector.decide("storagegateway", "ListGateways").error for _ in range(DRAWS))
    for code, rate in (("ThrottlingException", 0.02), ("InternalServerError/GatewayInternalError", 0.005)):
        low, high = binomial_bounds(rate)
        assert low <= errors[code] <= high, (code, errors[code], low, high)
    assert set(errors) == {None, "ThrottlingException", "InternalServerError/GatewayInternalError"}


def test_drop_and_per_operation_rates_are_honoured() -> None:
    injector = FaultInjector(parse_scenario(SCENARIO, "test"), seed=0)
    decisions = [injector.decide("s3", "GetObject") for _ in range(DRAWS)]
    drops = sum(decision.drop for decision in decisions)
    low, high = binomial_bounds(0.01)
    assert low <= drops <= high
    # A dropped request is neither delayed nor answered; SlowDown is drawn among the others.
    assert all(d.error is None and d.delay_seconds == 0 for d in decisions if d.drop)
    kept = [d for d in decisions if not d.drop]
    slow_downs = sum(d.error == "SlowDown" for d in kept)
    low, high = binomial_bounds(0.1, len(kept))
    assert low <= slow_downs <= high
    other = [injector.decide("s3", "PutObject") for _ in range(1000)]
    assert not any(d.error or d.drop for d in other)


def test_latency_rate_and_range() -> None:
    injector = FaultInjector(parse_scenario(SCENARIO, "test"), seed=0)
    delays = [injector.decide("importexport", "ListJobs").delay_seconds for _ in range(DRAWS)]
    delayed = [delay for delay in delays if delay > 0]
    low, high = binomial_bounds(0.3)
    assert low <= len(delayed) <= high
    assert all(0.010 <= delay <= 0.040 for delay in delayed)
    assert 0.020 < sum(delayed) / len(delayed) < 0.030  # uniform between 10 and 40 ms: mean 25 ms


def test_same_seed_same_faults_and_scenario_seed_wins() -> None:
    unseeded = parse_scenario({k: v for k, v in SCENARIO.items() if k != "seed"}, "test")
    assert _sequence(FaultInjector(unseeded, seed=1)) == _sequence(FaultInjector(unseeded, seed=1))
    assert _sequence(FaultInjector(unseeded, seed=1)) != _sequence(FaultInjector(unseeded, seed=2))
    seeded = parse_scenario(SCENARIO, "test")  # its own seed (11) overrides the emulator's
    assert _sequence(FaultInjector(seeded, seed=1)) == _sequence(FaultInjector(seeded, seed=2))


def _sequence(injector: FaultInjector) -> list[object]:
    return [injector.decide("s3", "GetObject") for _ in range(500)]


def test_no_scenario_no_faults() -> None:
    injector = FaultInjector(None, seed=3)
    assert not injector.active
    assert all(not d.drop and d.error is None and d.delay_seconds == 0 for d in _sequence(injector))


@pytest.mark.parametrize(
    ("document", "key", "problem"),
    [
        ({"errors": []}, "errors", "unknown key"),
        ({"error": [{"code": "X"}]}, "error[0].rate", "missing"),
        ({"error": [{"code": "X", "rate": 1.5}]}, "error[0].rate", "out of range"),
        ({"error": [{"rate": 0.1}]}, "error[0].code", "missing"),
        ({"error": [{"code": "X", "rate": 0.1, "service": "ec2"}]}, "error[0].service", "unknown service"),
        ({"error": [{"code": "X", "rate": 0.1, "operations": 3}]}, "error[0].operations", "not a list"),
        ({"latency": [{"rate": 1, "min_ms": 50, "max_ms": 10}]}, "latency[0].max_ms", "out of range"),
        ({"drop": [{"rate": 0.1, "every": 2}]}, "drop[0].every", "unknown key"),
        ({"seed": "x"}, "seed", "not an integer"),
        (
            {"error": [{"code": "A", "rate": 0.7}, {"code": "B", "rate": 0.6, "service": "s3"}]},
            "error",
            "add up to 1.3",
        ),
    ],
)
def test_bad_scenarios_name_the_key_and_the_fix(document: dict[str, object], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_scenario(document, "bad.toml")
    assert raised.value.source == "bad.toml"
    assert raised.value.key == key
    assert problem in raised.value.problem
    assert raised.value.fix


def test_codes_and_operations_are_checked_against_catalogs_and_models(books: dict[str, ErrorBook]) -> None:
    operations = {name: frozenset(service_model(name).operation_names) for name in books}

    def can_force(service: str, code: str) -> str | None:
        try:
            books[service].forced(code)
        except UnknownErrorCode as problem:
            return str(problem)
        return None

    check_scenario(parse_scenario(SCENARIO, "ok.toml"), can_force, operations)
    unknown_code = {"error": [{"service": "s3", "code": "ThrottlingException", "rate": 0.1}]}
    with pytest.raises(ConfigError) as raised:
        check_scenario(parse_scenario(unknown_code, "s3.toml"), can_force, operations)
    assert raised.value.key == "error[0].code"
    wildcard = {"error": [{"code": "ThrottlingException", "rate": 0.1}]}
    with pytest.raises(ConfigError) as raised:
        check_scenario(parse_scenario(wildcard, "any.toml"), can_force, operations)
    assert "name the service" in raised.value.fix
    wrong_operation = {"latency": [{"service": "s3", "operations": ["ListGateways"], "rate": 1}]}
    with pytest.raises(ConfigError) as raised:
        check_scenario(parse_scenario(wrong_operation, "op.toml"), can_force, operations)
    assert raised.value.key == "latency[0].operations"


def test_shipped_scenarios_load_and_check(books: dict[str, ErrorBook]) -> None:
    operations = {name: frozenset(service_model(name).operation_names) for name in books}
    files = sorted((REPO / "config" / "scenarios").glob("*.toml"))
    assert files

    def can_force(service: str, code: str) -> str | None:
        try:
            books[service].forced(code)
        except UnknownErrorCode as problem:
            return str(problem)
        return None

    for path in files:
        scenario = load_scenario(path)
        check_scenario(scenario, can_force, operations)
        assert scenario.errors or scenario.latencies or scenario.drops


def test_load_scenario_reports_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[[error]\nrate = 0.1\n")
    with pytest.raises(ConfigError) as raised:
        load_scenario(path)
    assert raised.value.key == "(syntax)"
    with pytest.raises(ConfigError) as raised:
        load_scenario(tmp_path / "absent.toml")
    assert raised.value.key == "(file)"
