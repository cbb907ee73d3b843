"""The rules every catalog entry follows: retryable as botocore's standard retry mode decides, clock skew
as the SDKs list it, categories from code and status."""

from __future__ import annotations

import pytest
from botocore.retries import standard

from proxy.core.catalog import (
    CLOCK_SKEW_CODES,
    THROTTLING_CODES,
    THROTTLING_STATUSES,
    TRANSIENT_CODES,
    TRANSIENT_STATUSES,
    Category,
    Fault,
    default_fault,
    infer_category,
    is_clock_skew,
    is_retryable,
)


def test_retry_lists_are_botocores() -> None:
    assert set(standard.ThrottledRetryableChecker._THROTTLED_ERROR_CODES) == THROTTLING_CODES
    assert set(standard.TransientRetryableChecker._TRANSIENT_ERROR_CODES) == TRANSIENT_CODES
    assert set(standard.TransientRetryableChecker._TRANSIENT_STATUS_CODES) == TRANSIENT_STATUSES
    assert set(standard.ThrottlingStatusCodeChecker._THROTTLING_STATUS_CODES) == THROTTLING_STATUSES


@pytest.mark.parametrize(
    ("code", "status", "modeled", "expected"),
    [
        ("SlowDown", 503, True, True),
        ("ThrottlingException", 400, True, True),
        ("PriorRequestNotComplete", 400, True, True),
        ("RequestTimeout", 400, True, True),
        ("InternalError", 500, True, True),
        ("AnythingAtAll", 502, False, True),
        ("504", 504, False, True),
        ("NotImplemented", 501, True, False),
        ("NoSuchKey", 404, True, False),
        ("ServiceUnavailable", 400, True, False),  # the code alone is not in botocore's lists
        ("429", 429, False, True),  # an unknown 429: botocore's ThrottlingStatusCodeChecker
        ("KnownError", 429, True, False),  # a modeled code: the model decides
        (None, 500, False, True),
    ],
)
def test_is_retryable_follows_botocore_standard_mode(
    code: str | None, status: int, modeled: bool, expected: bool
) -> None:
    assert is_retryable(code, status, modeled=modeled) is expected


def test_retryable_trait_makes_a_modeled_error_retryable() -> None:
    assert is_retryable("TransactionConflict", 400, modeled=True, retryable_trait=True)


def test_clock_skew_codes_are_the_sdks() -> None:
    assert {
        "RequestTimeTooSkewed",
        "RequestExpired",
        "RequestInTheFuture",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "AuthFailure",
    } == CLOCK_SKEW_CODES
    assert is_clock_skew("SignatureDoesNotMatch")
    assert not is_clock_skew("AccessDenied")
    assert not is_clock_skew(None)


@pytest.mark.parametrize(
    ("code", "status", "category"),
    [
        ("RequestTimeTooSkewed", 403, Category.CLOCK_SKEW),
        ("RequestExpired", 400, Category.CLOCK_SKEW),
        ("SignatureDoesNotMatch", 403, Category.AUTHENTICATION),  # may be skew, may be a wrong secret
        ("InvalidAccessKeyId", 403, Category.AUTHENTICATION),
        ("AccessDenied", 403, Category.AUTHORIZATION),
        ("SlowDown", 503, Category.THROTTLING),
        ("BandwidthThrottleScheduleNotFound", None, Category.NOT_FOUND),
        ("InvalidInstanceID.NotFound", 400, Category.NOT_FOUND),
        ("NoSuchBucketException", 400, Category.NOT_FOUND),
        ("MalformedQueryString", 404, Category.VALIDATION),
        ("InvalidRedirectLocation", 400, Category.VALIDATION),
        ("UnknownOperationException", 403, Category.VALIDATION),
        ("PermanentRedirect", 301, Category.REDIRECT),
        ("NotModified", 304, Category.PRECONDITION),
        ("PreconditionFailed", 412, Category.PRECONDITION),
        ("BucketAlreadyOwnedByYou", 409, Category.CONFLICT),
        ("VolumeInUse", None, Category.CONFLICT),
        ("MPUinProgress", 409, Category.CONFLICT),
        ("TooManyBuckets", 400, Category.QUOTA),
        ("LimitExceeded", 409, Category.QUOTA),
        ("LimitExceededException", 400, Category.THROTTLING),  # botocore throttles on it
        ("ServiceUnavailable", 503, Category.UNAVAILABLE),
        ("RequestTimeout", 400, Category.UNAVAILABLE),
        ("InternalError", 500, Category.SERVER),
        ("NotImplemented", 501, Category.SERVER),
        ("404", 404, Category.NOT_FOUND),  # an S3 HEAD: botocore's code is the status
        ("502", 502, Category.UNAVAILABLE),
        ("418", 418, Category.VALIDATION),
        ("SomethingOdd", 500, Category.SERVER),
        ("SomethingOdd", None, Category.UNKNOWN),
        ("", 200, Category.UNKNOWN),
    ],
)
def test_infer_category(code: str, status: int | None, category: Category) -> None:
    assert infer_category(code, status) is category


def test_default_fault() -> None:
    assert default_fault(Category.VALIDATION, 400) is Fault.CLIENT
    assert default_fault(Category.THROTTLING, 503) is Fault.SERVER
    assert default_fault(Category.SERVER, None) is Fault.SERVER
    assert default_fault(Category.NOT_FOUND, None) is Fault.CLIENT
