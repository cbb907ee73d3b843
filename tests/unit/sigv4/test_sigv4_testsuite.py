"""Every case of the official SigV4 suites: canonical request, string to sign and signature, step by step.

Inputs are the signed requests exactly as the suites write them; the expected values are the suites'
own files. `normalize: false` cases (aws-c-auth) use the S3 path rule.
"""

from __future__ import annotations

import hashlib

import pytest
from sigv4_suite_cases import SuiteCase, suite_params

from proxy.core.sigv4.auth import parse_authorization, parse_presigned, presigned_parameters
from proxy.core.sigv4.canonical import (
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    string_to_sign,
)
from proxy.core.sigv4.dates import request_date
from proxy.core.sigv4.signing import derive_signing_key, sign, signatures_equal


def _steps(case: SuiteCase) -> tuple[str, str, str]:
    head = case.head
    if case.presigned:
        params = presigned_parameters(head.query)
        assert params is not None
        auth = parse_presigned(params)
    else:
        auth = parse_authorization(head.get("authorization") or "")
    assert auth.credential.access_key_id == case.access_key
    assert auth.credential.region == case.region
    assert auth.credential.service == case.service
    date = request_date(head, auth.amz_date)
    assert date is not None and date.moment == case.now
    payload = head.get("x-amz-content-sha256") or hashlib.sha256(case.body).hexdigest()
    creq = canonical_request(
        head.method,
        canonical_uri(head.path, normalize=case.normalize),
        canonical_query(head.query, drop_signature=True, drop_security_token=not case.token_signed),
        canonical_headers(head, auth.signed_headers),
        auth.signed_headers_line,
        payload,
    )
    sts = string_to_sign(date.amz, auth.credential.scope, creq)
    key = derive_signing_key(
        case.secret, auth.credential.date, auth.credential.region, auth.credential.service
    )
    return creq, sts, sign(key, sts)


def _provided_signature(case: SuiteCase) -> str:
    if case.presigned:
        return parse_presigned(presigned_parameters(case.head.query) or {}).signature
    return parse_authorization(case.head.get("authorization") or "").signature


# The legacy suite's get-vanilla-with-session-token.sreq carries get-vanilla's signature (5fa00fa3...),
# not the one its own .authz and .creq/.sts give (07ec1639...): the .sreq is wrong, see the report.
LEGACY_SREQ_WRONG = {"get-vanilla-with-session-token"}


def _check(case: SuiteCase) -> None:
    creq, sts, signature = _steps(case)
    assert creq == case.creq
    assert sts == case.sts
    assert signature == case.signature
    if case.name in LEGACY_SREQ_WRONG:
        assert not signatures_equal(signature, _provided_signature(case))
    else:
        assert signatures_equal(signature, _provided_signature(case))


@pytest.mark.parametrize("case", suite_params("legacy"))
def test_aws4_testsuite_case(case: SuiteCase) -> None:
    _check(case)


@pytest.mark.parametrize("case", suite_params("crt"))
def test_aws_c_auth_v4_case(case: SuiteCase) -> None:
    _check(case)


def test_suites_are_not_empty() -> None:
    """Guard against a layout change silently turning the parametrized tests into zero cases."""
    legacy = [p for p in suite_params("legacy") if getattr(p, "id", "") != "suite-missing"]
    crt = [p for p in suite_params("crt") if getattr(p, "id", "") != "suite-missing"]
    if not legacy and not crt:
        pytest.skip("SigV4 test suite not present")
    assert len(legacy) >= 30
    assert len(crt) >= 2 * 38
