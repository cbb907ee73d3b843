"""The request-time window (issue 3, check 2).

Header-signed requests: rejected when the request time is more than `max_skew_seconds` (15 min) before
or after the server clock ("Signature expired: ... is now earlier than ... (... - 15 min.)", S3:
RequestTimeTooSkewed); a warning past `warn_skew_seconds` (5 min) shows skewed hosts before AWS rejects
them. The signed skew (request minus server, seconds) is recorded for metrics.

Presigned requests: valid from X-Amz-Date (allowing the same clock skew) for X-Amz-Expires seconds.
"""

from __future__ import annotations

from datetime import timedelta

from proxy.core.checks.base import CheckContext, NamedCheck, analysis, finding
from proxy.core.checks.errors import Failure
from proxy.core.checks.structure import presigned_expires_seconds
from proxy.core.model import Finding, Severity
from proxy.core.sigv4.dates import format_amz_date, format_iso8601, skew_seconds


def _window(ctx: CheckContext) -> Finding | None:
    info = analysis(ctx)
    auth, date = info.auth, info.date
    if auth is None or auth.presigned or date is None or date.moment is None:
        return None
    now = ctx.now
    skew = skew_seconds(date.moment, now)
    info.skew_seconds = skew
    limit = ctx.settings.max_skew_seconds
    if abs(skew) <= ctx.settings.warn_skew_seconds and abs(skew) <= limit:
        return None  # the common case: nothing to format
    window = timedelta(seconds=limit)
    fields: dict[str, object] = {
        "request_amz": date.amz,
        "raw": date.raw,
        "now_amz": format_amz_date(now),
        "server_time": format_iso8601(now),
        "max_skew": limit,
    }
    name = "clock.window"
    if skew < -limit:
        return finding(
            ctx,
            name,
            Failure.SIGNATURE_EXPIRED,
            f"The request time is {-skew:.0f} s behind the server clock (limit {limit:.0f} s).",
            bound=format_amz_date(now - window),
            fields=fields,
        )
    if skew > limit:
        return finding(
            ctx,
            name,
            Failure.SIGNATURE_NOT_YET_CURRENT,
            f"The request time is {skew:.0f} s ahead of the server clock (limit {limit:.0f} s).",
            bound=format_amz_date(now + window),
            fields=fields,
        )
    if abs(skew) > ctx.settings.warn_skew_seconds:
        behind = skew < 0
        return finding(
            ctx,
            name,
            Failure.SIGNATURE_EXPIRED if behind else Failure.SIGNATURE_NOT_YET_CURRENT,
            f"The client clock is {abs(skew):.0f} s {'behind' if behind else 'ahead'}: past the "
            f"{ctx.settings.warn_skew_seconds:.0f} s early warning; AWS rejects past {limit:.0f} s.",
            severity=Severity.WARNING,
            bound=format_amz_date(now - window if behind else now + window),
            fields=fields,
        )
    return None


def _presigned(ctx: CheckContext) -> Finding | None:
    info = analysis(ctx)
    auth, date = info.auth, info.date
    if auth is None or not auth.presigned or date is None or date.moment is None:
        return None
    expires = presigned_expires_seconds(auth.expires)
    if expires is None or expires < 1:
        return None
    now = ctx.now
    name = "clock.presigned"
    expires_at = date.moment + timedelta(seconds=expires)
    if now > expires_at:
        return finding(
            ctx,
            name,
            Failure.PRESIGNED_EXPIRED,
            f"The presigned URL expired at {format_iso8601(expires_at)} (X-Amz-Expires {expires} s).",
            request_amz=date.amz,
            expires=auth.expires,
            expires_seconds=expires,
            expires_at=format_iso8601(expires_at),
            server_time=format_iso8601(now),
            now_amz=format_amz_date(now),
            bound=format_amz_date(now - timedelta(seconds=expires)),
        )
    limit = ctx.settings.max_skew_seconds
    if date.moment > now + timedelta(seconds=limit):
        return finding(
            ctx,
            name,
            Failure.PRESIGNED_NOT_YET_VALID,
            f"The presigned URL is dated {date.amz}, more than {limit:.0f} s after the server clock.",
            request_amz=date.amz,
            server_time=format_iso8601(now),
            now_amz=format_amz_date(now),
            bound=format_amz_date(now + timedelta(seconds=limit)),
            max_skew=limit,
        )
    return None


WINDOW = NamedCheck("clock.window", _window)
PRESIGNED = NamedCheck("clock.presigned", _presigned)
