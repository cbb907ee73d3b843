"""The benchmark harness (tests/benchmarks, `make bench`) works: a tiny run end to end.

One contender (sigwatch observe) for one second with the harness's Python load generator against its
aiohttp upstream (so neither wrk nor nginx is needed), plus 1 MiB transfers; the run must print the
table and write a well-formed JSON report. No figure is judged: speed is the harness's business.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.benchmarks.signing import lua_string, rotation

REPO = Path(__file__).resolve().parents[2]


def _lua_bytes(literal: str) -> bytes:
    """Read back a Lua string literal made of printable characters and \\ddd escapes."""
    assert literal.startswith('"') and literal.endswith('"')
    body = literal[1:-1]
    out = bytearray()
    index = 0
    while index < len(body):
        if body[index] == "\\":
            out.append(int(body[index + 1 : index + 4]))
            index += 4
        else:
            out.append(ord(body[index]))
            index += 1
    return bytes(out)


def test_lua_request_literals_carry_the_exact_request_bytes() -> None:
    requests = rotation("127.0.0.1:8080", error_every=3)
    assert [r.header("X-Amz-Target") for r in requests] == [
        "StorageGateway_20130630.ListGateways",
        "StorageGateway_20130630.ListGateways",
        "StorageGateway_20130630.DescribeGatewayInformation",
    ]
    for request in requests:
        literal = lua_string(request.wire())
        assert "\n" not in literal and "\r" not in literal
        assert _lua_bytes(literal) == request.wire()
        assert request.wire().startswith(b"POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
        assert (request.header("Authorization") or "").startswith("AWS4-HMAC-SHA256 Credential=AKIA")


def test_a_tiny_harness_run_prints_the_table_and_writes_the_json(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "tests.benchmarks.harness",
        "--quick",
        "--contenders",
        "sigwatch-observe",
    ]
    command += ["--loadgen", "python", "--upstream", "aiohttp", "--transfer-bytes", str(1 << 20)]
    command += ["--results", str(tmp_path), "--max-minutes", "2"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    # the table: its header and one row of figures for the contender
    assert re.search(r"^contender\s+rps\s+p50 ms\s+p99 ms\s+CPU µs/req", done.stdout, re.MULTILINE)
    assert re.search(r"^sigwatch-observe\s+\d+\s+[\d.]+\s+[\d.]+\s+[\d.]+", done.stdout, re.MULTILINE)
    assert "targets (issue 9):" in done.stdout

    reports = list(tmp_path.glob("*.json"))
    assert len(reports) == 1
    report = json.loads(reports[0].read_text())
    assert "error" not in report
    row = report["contenders"]["sigwatch-observe"]
    # the harness checked that sigwatch really verified the signature and classified the error
    check = row["check"]
    assert (check["ok"], check["problems"], check["signature"]) == (True, [], "valid")
    assert check["error"] == "InvalidGatewayRequestException/GatewayNotFound"
    assert len(row["runs"]) == 1
    run = row["runs"][0]
    assert run["tool"] == "python" and run["requests"] > 0 and run["cpu_s"] is not None
    # one request in ten is the failing call; the load generator counts those 400s
    assert 0 < row["status_errors"] < run["requests"]
    assert row["other_errors"] == 0
    # one JSON log line per request
    assert row["log_request_lines"] >= run["requests"]
    assert row["c1"]["requests"] > 0
    for key in ("rps", "p50_ms", "p99_ms", "cpu_us_per_request"):
        assert isinstance(row[key], float)

    transfers = report["transfers"]
    for name in ("direct", "bare-aiohttp", "sigwatch-enforce"):
        assert transfers[name]["upload"]["status"] == 200
        assert transfers[name]["download"]["status"] == 200
        assert transfers[name]["download"]["bytes"] == 1 << 20
    assert transfers["sigwatch-enforce"]["upload"]["signature"] == "valid"
    assert transfers["sigwatch-enforce"]["upload"]["findings"] is None
    assert transfers["refused_bad_chunk"]["refused"] is True

    assert [t["op"] for t in report["targets"]] == ["≥", "≥", "≤", "≤", "≥", "≥", "≤", "≤", "≤"]
    assert all(set(t) == {"target", "value", "op", "limit", "met"} for t in report["targets"])
