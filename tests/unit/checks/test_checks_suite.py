"""The official suites' signed requests pass validate() end to end (the emulator authenticates this way).

Only the path-normalizing cases: validate() applies S3's rule to S3 alone, and the suites' unnormalized
cases use service "service" (they are checked step by step in tests/unit/sigv4).
"""

from __future__ import annotations

import hashlib

import pytest
from checks_support import INDEX
from sigv4_suite_cases import SuiteCase, suite_params

from proxy.core.checks import CheckContext, SignatureState, ValidationSettings, validate
from proxy.core.identify import identify
from proxy.core.model import Credential

# The legacy suite's .sreq of this case carries another case's signature (see tests/unit/sigv4).
WRONG_SREQ = {"get-vanilla-with-session-token"}


def _validate(case: SuiteCase) -> tuple[str, list[str]]:
    credential = Credential(case.access_key, case.secret)
    ctx = CheckContext(
        request=case.head,
        identity=identify(case.head, INDEX),
        now=case.now,
        settings=ValidationSettings(),
        credentials={case.access_key: credential},
        body_sha256=hashlib.sha256(case.body).hexdigest(),
        enforce=True,
        services=INDEX,
    )
    result = validate(ctx)
    return result.signature_state, [
        f"{f.check}:{f.code}" for f in result.findings if f.severity.value == "error"
    ]


@pytest.mark.parametrize("case", suite_params("legacy", normalizing_only=True))
def test_legacy_suite_validates(case: SuiteCase) -> None:
    state, errors = _validate(case)
    if case.name in WRONG_SREQ:
        assert (state, errors) == (SignatureState.INVALID, ["signature.verify:InvalidSignatureException"])
    else:
        assert (state, errors) == (SignatureState.VALID, [])


@pytest.mark.parametrize("case", suite_params("crt", normalizing_only=True))
def test_aws_c_auth_suite_validates(case: SuiteCase) -> None:
    assert _validate(case) == (SignatureState.VALID, [])
