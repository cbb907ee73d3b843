"""Read the official SigV4 test suites from ../shared (never copied into the project).

`SIGWATCH_SHARED` points at the shared folder (default: `<repo>/../shared`). Each case becomes a
SuiteCase with the raw signed request parsed into a RequestHead and the expected intermediate values.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proxy.core.model import RequestHead

REPO = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("SIGWATCH_SHARED", REPO.parent / "shared"))
SUITE = SHARED / "sigv4-testsuite"
LEGACY = SUITE / "aws4_testsuite"
CRT = SUITE / "aws-c-auth" / "aws-signing-test-suite" / "v4"

LEGACY_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
LEGACY_ACCESS_KEY = "AKIDEXAMPLE"
LEGACY_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)


@dataclass(frozen=True)
class SuiteCase:
    name: str
    head: RequestHead
    body: bytes
    creq: str
    sts: str
    signature: str
    secret: str
    access_key: str
    region: str
    service: str
    normalize: bool
    now: datetime
    presigned: bool = False
    token_signed: bool = True  # False: the security token was added after signing


def parse_raw_request(text: str) -> tuple[RequestHead, bytes]:
    """A raw HTTP/1.1 request as the suites write it: request line, headers (with obs-fold
    continuation lines), blank line, body. The target may contain spaces (`GET /example space/`)."""
    lines = text.split("\n")
    request_line = lines[0]
    method, _, rest = request_line.partition(" ")
    target = rest.rsplit(" ", 1)[0]
    headers: list[tuple[str, str]] = []
    index = 1
    while index < len(lines) and lines[index] != "":
        line = lines[index]
        if line[0] in " \t" and headers:
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
        index += 1
    body = "\n".join(lines[index + 1 :]).encode()
    return RequestHead.build(method, target, headers), body


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def legacy_cases() -> list[SuiteCase]:
    cases = []
    for req in sorted(LEGACY.rglob("*.req")):
        stem = req.with_suffix("")
        head, body = parse_raw_request(_read(stem.with_suffix(".sreq")))
        authz = _read(stem.with_suffix(".authz"))
        cases.append(
            SuiteCase(
                name=str(req.parent.relative_to(LEGACY)),
                head=head,
                body=body,
                creq=_read(stem.with_suffix(".creq")),
                sts=_read(stem.with_suffix(".sts")),
                signature=authz.rsplit("Signature=", 1)[1].strip(),
                secret=LEGACY_SECRET,
                access_key=LEGACY_ACCESS_KEY,
                region="us-east-1",
                service="service",
                normalize=True,
                now=LEGACY_TIME,
                token_signed="header-after" not in req.name,
            )
        )
    return cases


def crt_cases() -> list[SuiteCase]:
    cases = []
    for context_file in sorted(CRT.glob("*/context.json")):
        folder = context_file.parent
        context = json.loads(_read(context_file))
        credentials = context["credentials"]
        now = datetime.fromisoformat(context["timestamp"].replace("Z", "+00:00"))
        for form in ("header", "query"):
            head, body = parse_raw_request(_read(folder / f"{form}-signed-request.txt"))
            cases.append(
                SuiteCase(
                    name=f"{folder.name}[{form}]",
                    head=head,
                    body=body,
                    creq=_read(folder / f"{form}-canonical-request.txt"),
                    sts=_read(folder / f"{form}-string-to-sign.txt"),
                    signature=_read(folder / f"{form}-signature.txt").strip(),
                    secret=credentials["secret_access_key"],
                    access_key=credentials["access_key_id"],
                    region=context["region"],
                    service=context["service"],
                    normalize=context["normalize"],
                    now=now,
                    presigned=form == "query",
                    token_signed=not context.get("omit_session_token", False),
                )
            )
    return cases


def suite_params(loader: str, *, normalizing_only: bool = False) -> list[object]:
    """pytest params over every case on disk, or one skipped param saying why there are none.

    `normalizing_only`: just the cases that normalize the path (every service but S3 does).
    """
    folder = LEGACY if loader == "legacy" else CRT
    if not folder.is_dir():
        reason = f"SigV4 test suite not found at {folder} (set SIGWATCH_SHARED)"
        print(reason)
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="suite-missing")]
    cases = legacy_cases() if loader == "legacy" else crt_cases()
    return [pytest.param(case, id=case.name) for case in cases if case.normalize or not normalizing_only]
