"""The 15-minute window at 14:59 and 15:01 in both directions, the 5-minute early warning, the skew.

The clock is passed in (`now`); the request is signed by botocore at WHEN.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from checks_support import WHEN, run, signed

from proxy.core.checks import ValidationSettings
from proxy.core.model import AwsError, Severity

MIN_14_59 = timedelta(minutes=14, seconds=59)
MIN_15_01 = timedelta(minutes=15, seconds=1)


@pytest.mark.parametrize("kind", ["storagegateway", "sts", "s3"])
@pytest.mark.parametrize("direction", [1, -1])
def test_inside_the_window_at_14_59(kind: str, direction: int) -> None:
    result = run(signed(kind), now=WHEN + direction * MIN_14_59)
    assert result.first_error is None
    assert result.skew_seconds == -direction * MIN_14_59.total_seconds()
    [warning] = result.findings  # past the 5-minute early warning
    assert (warning.check, warning.severity) == ("clock.window", Severity.WARNING)


def test_server_ahead_by_15_01_json() -> None:
    """The request is 15:01 old: "Signature expired"."""
    now = WHEN + MIN_15_01
    result = run(signed("storagegateway"), now=now)
    assert result.first_error is not None and result.first_error.check == "clock.window"
    assert result.first_error.error == AwsError(
        "InvalidSignatureException",
        400,
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z (20240501T121501Z - 15 "
        "min.)",
    )
    assert result.skew_seconds == -901.0


def test_server_behind_by_15_01_json() -> None:
    """The request is 15:01 in the future: "Signature not yet current"."""
    now = WHEN - MIN_15_01
    result = run(signed("storagegateway"), now=now)
    assert result.first_error is not None
    assert result.first_error.error == AwsError(
        "InvalidSignatureException",
        400,
        "Signature not yet current: 20240501T120000Z is still later than 20240501T115959Z "
        "(20240501T114459Z + 15 min.)",
    )
    assert result.skew_seconds == 901.0


def test_query_uses_signature_does_not_match_for_expiry() -> None:
    expired = run(signed("sts"), now=WHEN + MIN_15_01).first_error
    assert expired is not None
    assert expired.error == AwsError(
        "SignatureDoesNotMatch",
        403,
        "Signature expired: 20240501T120000Z is now earlier than 20240501T120001Z (20240501T121501Z - 15 "
        "min.)",
    )
    future = run(signed("sts"), now=WHEN - MIN_15_01).first_error
    assert future is not None and future.error.code == "SignatureDoesNotMatch"
    assert future.error.message.startswith("Signature not yet current: 20240501T120000Z is still later than")


@pytest.mark.parametrize(
    ("offset", "server_time"), [(MIN_15_01, "2024-05-01T12:15:01Z"), (-MIN_15_01, "2024-05-01T11:44:59Z")]
)
def test_s3_request_time_too_skewed(offset: timedelta, server_time: str) -> None:
    result = run(signed("s3"), now=WHEN + offset)
    assert result.first_error is not None
    assert result.first_error.error == AwsError(
        "RequestTimeTooSkewed",
        403,
        "The difference between the request time and the current time is too large.",
        (
            ("RequestTime", "20240501T120000Z"),
            ("ServerTime", server_time),
            ("MaxAllowedSkewMilliseconds", "900000"),
        ),
    )


def test_the_issue_example_message() -> None:
    """Issue 3's reference text, reproduced with the clock passed in."""
    request = signed("dynamodb", when=datetime(2013, 3, 1, tzinfo=UTC))
    result = run(request, now=datetime(2013, 6, 9, 10, 0, 15, tzinfo=UTC))
    assert result.first_error is not None
    assert result.first_error.error.message == (
        "Signature expired: 20130301T000000Z is now earlier than 20130609T094515Z (20130609T100015Z - 15 "
        "min.)"
    )


def test_date_header_when_there_is_no_x_amz_date() -> None:
    """A `Date`-only request: botocore writes it with email.utils.formatdate (numeric zone) and signs the
    same basic timestamp; the window applies."""
    request = signed("sts", headers={"Content-Type": "application/x-www-form-urlencoded", "Date": "x"})
    assert request.head.get("date") == "Wed, 01 May 2024 12:00:00 -0000"
    assert not request.head.has("x-amz-date")
    assert run(request).findings == ()
    skewed = run(request, now=WHEN + MIN_15_01).first_error
    assert skewed is not None and skewed.error.code == "SignatureDoesNotMatch"
    s3 = signed("s3", headers={"Date": "x"})
    late = run(s3, now=WHEN + MIN_15_01).first_error
    assert late is not None and dict(late.error.extra)["RequestTime"] == "Wed, 01 May 2024 12:00:00 -0000"


def test_early_warning_threshold_and_configurable_window() -> None:
    request = signed("storagegateway")
    assert run(request, now=WHEN + timedelta(minutes=5)).findings == ()
    [warning] = run(request, now=WHEN + timedelta(minutes=5, seconds=1)).findings
    assert warning.severity is Severity.WARNING
    assert warning.error.code == "InvalidSignatureException"  # what AWS would answer past the limit
    assert "301 s behind" in warning.explanation
    ahead = run(request, now=WHEN - timedelta(minutes=6)).findings
    assert [(f.severity, "ahead" in f.explanation) for f in ahead] == [(Severity.WARNING, True)]
    tight = ValidationSettings(max_skew_seconds=120.0, warn_skew_seconds=60.0)
    found = run(request, now=WHEN + timedelta(seconds=121), settings=tight).first_error
    assert found is not None
    assert found.error.message.endswith("(20240501T120201Z - 2 min.)")
    assert run(request, now=WHEN + timedelta(seconds=30), settings=tight).findings == ()
