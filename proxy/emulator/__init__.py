"""`sigwatch emulate`: an AWS-style endpoint (Storage Gateway, S3, Import/Export) that authenticates as
AWS does, keeps state in memory, answers every documented error and injects faults on demand.

Public API: build_emulator_app(EmulatorSettings) -> aiohttp Application; load_scenario(path) -> Scenario;
run_demo_traffic(...) (proxy.emulator.traffic) for `sigwatch demo --traffic`.
"""

from __future__ import annotations

from proxy.emulator.app import SERVICES_KEY, EmulatedServices, build_emulator_app
from proxy.emulator.errors import FORCE_ERROR_HEADER
from proxy.emulator.faults import Scenario, load_scenario
from proxy.emulator.settings import (
    EXAMPLE_ACCESS_KEY_ID,
    EXAMPLE_CREDENTIAL,
    EXAMPLE_SECRET_ACCESS_KEY,
    EmulatorSettings,
)
from proxy.emulator.traffic import run_demo_traffic

__all__ = [
    "EXAMPLE_ACCESS_KEY_ID",
    "EXAMPLE_CREDENTIAL",
    "EXAMPLE_SECRET_ACCESS_KEY",
    "FORCE_ERROR_HEADER",
    "SERVICES_KEY",
    "EmulatedServices",
    "EmulatorSettings",
    "Scenario",
    "build_emulator_app",
    "load_scenario",
    "run_demo_traffic",
]
