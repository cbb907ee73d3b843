"""Observe mode, end to end: the same faulty requests as the enforce tests (wrong secret, unknown key,
skewed clock both ways, tampered body) are forwarded unchanged, and sigwatch reports what AWS would
answer: the finding's code on the x-sigwatch-findings header, the log line and the metrics (metric
counts are checked as a rise between two scrapes of the session's registry).

Against the emulator (which authenticates as AWS does) the upstream's own answer is that very code:
sigwatch's verdict and the endpoint's agree, request for request. moto_server does not authenticate:
its answers show that observe mode never stands in the way.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from e2e_proxy_support import (
    CASES,
    FAULTS,
    Case,
    MotoServer,
    RunningEmulator,
    RunningSigwatch,
    boto,
    faulty_client,
    line_for,
)
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e


def findings_counted(proxy: RunningSigwatch, service: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(generate_latest(proxy.registry).decode()):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "sigwatch_validation_findings_total" and labels["service"] == service:
                total += sample.value
    return total


# Every protocol family on each upstream (the enforce tests run the whole matrix).
OBSERVED = [case for case in CASES if (case.upstream, case.service) not in {("moto", "iam"), ("moto", "sqs")}]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("case", OBSERVED, ids=[f"{c.upstream}-{c.service}" for c in OBSERVED])
def test_faults_are_reported_and_forwarded(
    request: pytest.FixtureRequest, case: Case, fault: str, skewable: Callable[[timedelta], None], logs: Any
) -> None:
    on_emulator = case.upstream == "emulator"
    proxy: RunningSigwatch = request.getfixturevalue("observe_proxy" if on_emulator else "moto_observe_proxy")
    emulator: RunningEmulator = request.getfixturevalue("emulator")
    moto: MotoServer = request.getfixturevalue("moto")
    if case.service == "s3":
        boto("s3", proxy.url).create_bucket(Bucket=f"faults-{case.upstream}")
    received = len(emulator.received) if on_emulator else moto.requests_received()
    counted = findings_counted(proxy, case.service)
    expected = case.codes[fault]
    # An access key sigwatch has no secret for: in observe mode the request is unverifiable (issue 3,
    # check 6), noted, not an error; the structural checks still ran.
    severity, state = ("info", "unverifiable") if fault == "unknown_key" else ("error", "invalid")
    client = faulty_client(fault, case.service, proxy.url, skewable)
    try:
        response = case.call(client)
    except ClientError as error:
        response = error.response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert "x-sigwatch-origin" not in headers  # the upstream answered
    assert f"={expected};{severity}" in headers["x-sigwatch-findings"]
    line = line_for(logs, headers["x-sigwatch-request-id"])
    assert (line["answered_by"], line["mode"]) == ("upstream", "observe")
    assert expected in [f["code"] for f in line["findings"] if f["severity"] == severity]
    if fault in ("wrong_secret", "unknown_key", "tampered") and case.service != "s3":
        assert line["sigv4"] == state
    assert findings_counted(proxy, case.service) > counted
    if on_emulator:
        # The endpoint, authenticating as AWS does, answered exactly what sigwatch said it would.
        assert response["Error"]["Code"] == expected
        assert line["error"]["code"] == expected
        assert len(emulator.received) == received + 1
    else:
        assert moto.requests_received() == received + 1
