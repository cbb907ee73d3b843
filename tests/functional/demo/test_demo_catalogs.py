"""The emulator that `sigwatch emulate` and `sigwatch demo` start knows the user's extra catalogs too,
so every code sigwatch classifies can also be forced on it."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from proxy.config import load_settings
from proxy.server.demo import emulator_settings, start_emulator
from proxy.server.runtime import load_catalogs
from tests.support.sigwatch import EXAMPLE_CREDENTIALS, EXAMPLE_KEY_ID, EXAMPLE_SECRET


def user_catalog(tmp_path: Path) -> Path:
    """The built-in S3 catalog plus one code of the user's own."""
    builtin = Path(__file__).resolve().parents[3] / "proxy" / "catalogs" / "data" / "s3.json"
    document = json.loads(builtin.read_text())
    document["entries"].append(
        {
            "category": "quota",
            "clock_skew": False,
            "code": "TooManyWidgets",
            "fault": "client",
            "http_status": 429,
            "kind": "exception",
            "message": "You have too many widgets.",
            "retryable": False,
            "sources": [{"http_status": 429, "message": "You have too many widgets.", "source": "user"}],
        }
    )
    document["sources"]["user"] = "this test"
    path = tmp_path / "s3.json"
    path.write_text(json.dumps(document))
    return path


async def test_a_code_from_a_user_catalog_can_be_forced_on_the_demo_emulator(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"catalogs": {"extra": [str(user_catalog(tmp_path))]}})
    runner, url = await start_emulator(
        emulator_settings(settings, EXAMPLE_CREDENTIALS), "127.0.0.1:0", load_catalogs(settings)
    )
    try:
        request = AWSRequest(
            method="GET", url=f"{url}/bucket", headers={"x-sigwatch-emulate-error": "TooManyWidgets"}
        )
        S3SigV4Auth(Credentials(EXAMPLE_KEY_ID, EXAMPLE_SECRET), "s3", "us-east-1").add_auth(request)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/bucket", headers=dict(request.headers.items())) as response,
        ):
            body = await response.text()
            assert response.status == 429
            assert "<Code>TooManyWidgets</Code>" in body
    finally:
        await runner.cleanup()
