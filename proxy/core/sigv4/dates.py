"""Request timestamps: `x-amz-date` (ISO 8601 basic) and the HTTP `Date` header (RFC 1123 / 850 / asctime).

"AWS first checks the x-amz-date header or parameter for a time stamp. If AWS can't find a value for
x-amz-date, it looks for the date header." (SigV4 date handling). The parsers are strict and split-based:
they run on every request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from proxy.core.frozen import remember
from proxy.core.model import RequestHead

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1
    )
}
_WEEKDAYS_SHORT = frozenset(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
_WEEKDAYS_LONG = frozenset(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))


@lru_cache(maxsize=4096)  # every request signed in the same second carries the same value
def parse_amz_date(value: str) -> datetime | None:
    """`YYYYMMDD'T'HHMMSS'Z'` or None: "in UTC and in the following ISO 8601 format" (SigV4 dates)."""
    if len(value) != 16 or value[8] != "T" or value[15] != "Z":
        return None
    digits = value[:8] + value[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(value[0:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[9:11]),
            int(value[11:13]),
            int(value[13:15]),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def _clock(value: str) -> tuple[int, int, int] | None:
    parts = value.split(":")
    if len(parts) != 3 or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def _build(year: int, month_name: str, day: str, clock: str) -> datetime | None:
    month = _MONTHS.get(month_name)
    hms = _clock(clock)
    if month is None or hms is None or not (day.isascii() and day.isdigit()) or len(day) > 2:
        return None
    try:
        return datetime(year, month, int(day), *hms, tzinfo=UTC)
    except ValueError:
        return None


def _zone_offset(zone: str) -> timedelta | None:
    """GMT / UT / UTC / Z, or a numeric `+HHMM` / `-HHMM` zone; None for anything else."""
    if zone in ("GMT", "UT", "UTC", "Z"):
        return timedelta(0)
    if len(zone) == 5 and zone[0] in "+-" and zone[1:].isascii() and zone[1:].isdigit():
        hours, minutes = int(zone[1:3]), int(zone[3:5])
        if minutes >= 60:
            return None
        sign = -1 if zone[0] == "-" else 1
        return sign * timedelta(hours=hours, minutes=minutes)
    return None


def parse_http_date(value: str) -> datetime | None:
    """An HTTP-date (RFC 9110 §5.6.7): IMF-fixdate / RFC 1123, obsolete RFC 850, or asctime; else None.

    "Recipients of timestamp values are encouraged to be robust in parsing timestamps unless otherwise
    restricted by the field definition", but the three formats are all a sender may use.
    """
    fields = value.split()
    if len(fields) == 6 and fields[0].endswith(",") and fields[0][:-1] in _WEEKDAYS_SHORT:
        # Sun, 06 Nov 1994 08:49:37 GMT -- or RFC 5322's numeric zone, which botocore sends
        # (email.utils.formatdate: "Wed, 01 May 2024 12:00:00 -0000")
        _, day, month, year, clock, zone = fields
        offset = _zone_offset(zone)
        if offset is None or len(year) != 4 or not (year.isascii() and year.isdigit()):
            return None
        moment = _build(int(year), month, day, clock)
        return None if moment is None else moment - offset
    if len(fields) == 4 and fields[0].endswith(",") and fields[0][:-1] in _WEEKDAYS_LONG:
        # Sunday, 06-Nov-94 08:49:37 GMT
        _, dmy, clock, zone = fields
        parts = dmy.split("-")
        if zone != "GMT" or len(parts) != 3 or len(parts[2]) != 2:
            return None
        if not (parts[2].isascii() and parts[2].isdigit()):
            return None
        # RFC 9110: a two-digit year that appears to be more than 50 years in the future is in the past;
        # without a clock here, use the POSIX strptime pivot (69-99 -> 19xx, 00-68 -> 20xx).
        two = int(parts[2])
        return _build(1900 + two if two >= 69 else 2000 + two, parts[1], parts[0], clock)
    if len(fields) == 5 and fields[0] in _WEEKDAYS_SHORT:
        # Sun Nov  6 08:49:37 1994
        _, month, day, clock, year = fields
        if len(year) != 4 or not (year.isascii() and year.isdigit()):
            return None
        return _build(int(year), month, day, clock)
    return None


def format_amz_date(moment: datetime) -> str:
    """ISO 8601 basic, as the string to sign and the JSON/Query expiry messages write it."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def format_iso8601(moment: datetime) -> str:
    """ISO 8601 extended, as S3 writes ServerTime / Expires (`2013-05-24T00:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class RequestDate:
    """The timestamp a request is signed with, where it came from, and its raw text.

    `amz` is the ISO 8601 basic form that goes into the string to sign: the x-amz-date value as sent,
    or the `Date` header converted (botocore signs a `Date` request with the same basic timestamp).
    `moment` is None when the chosen value does not parse.
    """

    source: str  # "x-amz-date" | "date" | "X-Amz-Date" (presigned query parameter)
    raw: str
    moment: datetime | None

    @property
    def amz(self) -> str:
        if self.source != "date" or self.moment is None:
            return self.raw
        return format_amz_date(self.moment)

    @property
    def day(self) -> str:
        """YYYYMMDD, the credential-scope date this request must carry."""
        return self.amz[:8]


_AMZ_DATES: dict[str, RequestDate] = {}  # x-amz-date as sent -> its RequestDate


def request_date(head: RequestHead, presigned_date: str | None = None) -> RequestDate | None:
    """The signing timestamp: the presigned X-Amz-Date, else x-amz-date, else Date; None when absent.

    "When an x-amz-date header is present, the AWS Storage Gateway ignores any Date header during the
    request authentication" (seed 000, required headers).
    """
    if presigned_date is not None:
        return RequestDate("X-Amz-Date", presigned_date, parse_amz_date(presigned_date))
    sent = head.get("x-amz-date")
    if sent is not None:
        # Every request signed in the same second carries the same value: one frozen RequestDate each.
        found = _AMZ_DATES.get(sent)
        if found is None:
            amz = sent.strip()
            found = remember(_AMZ_DATES, sent, RequestDate("x-amz-date", amz, parse_amz_date(amz)), 4096)
        return found
    date = head.get("date")
    if date is not None:
        date = date.strip()
        return RequestDate("date", date, parse_http_date(date))
    return None


def minutes_text(seconds: float) -> str:
    """`15 min.` as Coral writes a window (whole minutes when whole)."""
    minutes = seconds / 60
    return f"{int(minutes)} min." if minutes == int(minutes) else f"{minutes:g} min."


def skew_seconds(moment: datetime, now: datetime) -> float:
    """Signed skew: positive when the request is ahead of the server clock."""
    return (moment - now) / _ONE_SECOND


_ONE_SECOND = timedelta(seconds=1)
