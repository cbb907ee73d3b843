"""The forward-proxy fixtures of tests/functional/forward (sigwatch, the emulator, test TLS), shared."""

from __future__ import annotations

from tests.functional.forward.conftest import (  # noqa: F401 - fixtures, registered by being imported
    clean_environment,
    start_emulator,
    start_sigwatch,
    test_tls,
)
