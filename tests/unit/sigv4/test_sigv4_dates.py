"""x-amz-date and HTTP Date parsing, and which one a request is signed with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.core.model import RequestHead
from proxy.core.sigv4.dates import (
    format_amz_date,
    format_iso8601,
    minutes_text,
    parse_amz_date,
    parse_http_date,
    request_date,
    skew_seconds,
)

NOV6 = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


def test_amz_date_basic_format() -> None:
    assert parse_amz_date("20150830T123600Z") == datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20150830 123600Z",
        "20151330T123600Z",
        "2015083T1236000Z",
        "",
    ],
)
def test_amz_date_rejects_anything_else(value: str) -> None:
    assert parse_amz_date(value) is None


@pytest.mark.parametrize(
    "value",
    ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"],
)
def test_http_date_three_formats(value: str) -> None:
    assert parse_http_date(value) == NOV6


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "soon",
    ],
)
def test_http_date_rejects_invalid(value: str) -> None:
    assert parse_http_date(value) is None


def test_numeric_zones_as_botocore_sends_them() -> None:
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 -0000") == NOV6
    assert parse_http_date("Sun, 06 Nov 1994 10:49:37 +0200") == NOV6
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 +0260") is None


def test_rfc850_two_digit_year_pivot() -> None:
    assert parse_http_date("Monday, 10-Sep-12 00:00:00 GMT") == datetime(2012, 9, 10, tzinfo=UTC)


def test_x_amz_date_wins_over_date() -> None:
    head = RequestHead.build(
        "GET", "/", [("Date", "Mon, 10 Sep 2012 00:00:00 GMT"), ("X-Amz-Date", "20150830T123600Z")]
    )
    chosen = request_date(head)
    assert chosen is not None
    assert chosen.source == "x-amz-date"
    assert chosen.amz == "20150830T123600Z"


def test_date_header_is_converted_for_the_string_to_sign() -> None:
    head = RequestHead.build("GET", "/", [("Date", "Mon, 10 Sep 2012 00:00:00 GMT")])
    chosen = request_date(head)
    assert chosen is not None
    assert (chosen.source, chosen.raw, chosen.amz, chosen.day) == (
        "date",
        "Mon, 10 Sep 2012 00:00:00 GMT",
        "20120910T000000Z",
        "20120910",
    )


def test_presigned_date_wins_and_missing_is_none() -> None:
    head = RequestHead.build("GET", "/", [("X-Amz-Date", "20150830T123600Z")])
    chosen = request_date(head, "20130524T000000Z")
    assert chosen is not None and chosen.source == "X-Amz-Date" and chosen.amz == "20130524T000000Z"
    assert request_date(RequestHead.build("GET", "/", [])) is None


def test_formatting_and_skew() -> None:
    moment = datetime(2013, 6, 9, 10, 0, 15, tzinfo=UTC)
    assert format_amz_date(moment) == "20130609T100015Z"
    assert format_iso8601(moment) == "2013-06-09T10:00:15Z"
    assert minutes_text(900) == "15 min."
    assert minutes_text(90) == "1.5 min."
    assert skew_seconds(datetime(2013, 6, 9, 10, 1, 15, tzinfo=UTC), moment) == 60.0
