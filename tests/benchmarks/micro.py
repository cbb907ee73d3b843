"""The micro-benchmarks of tools/ (verification, classification, metrics + log line), run and parsed.

Each script runs as its own process on the proxy's CPU (idle at that point), its printed figures are
kept verbatim and parsed into numbers for the table and the JSON.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.benchmarks.processes import PROXY_CPU, pinned

REPO = Path(__file__).resolve().parents[2]
_ROW = re.compile(r"^(?P<name>\S.*?)\s+(?P<numbers>[\d.]+(?:\s+[\d.]+)+)\s*$")
_OBSERVE = re.compile(
    r"^\s*(?P<name>\w+)\s+Metrics\.observe\s+(?P<observe>[\d.]+)\s+log_request\s+(?P<log>[\d.]+)"
    r"\s+both\s+(?P<both>[\d.]+)"
)


def _run(script: str, arguments: list[str]) -> str:
    command = pinned([sys.executable, str(REPO / "tools" / script), *arguments], str(PROXY_CPU))
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _rows(output: str) -> dict[str, list[float]]:
    rows = {}
    for line in output.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match["name"].strip()] = [float(x) for x in match["numbers"].split()]
    return rows


def run_micro(quick: bool = False) -> dict[str, Any]:
    """{verify, classify, observe}: per-case µs, the figure each target is judged on, the raw output."""
    verify_out = _run("bench_verify.py", ["--iterations", "500", "--rounds", "2"] if quick else [])
    classify_out = _run("bench_classify.py", ["--iterations", "1000", "--rounds", "2"] if quick else [])
    observe_out = _run("bench_observe.py", ["--requests", "1000"] if quick else [])

    verify = {name: {"verify_us": v[0], "validate_us": v[1]} for name, v in _rows(verify_out).items()}
    classify = {
        name: {"extract_us": v[0], "classify_us": v[1], "all_us": v[2]}
        for name, v in _rows(classify_out).items()
        if len(v) == 3
    }
    observe = {}
    for line in observe_out.splitlines():
        match = _OBSERVE.match(line)
        if match:
            observe[match["name"]] = {
                "metrics_us": float(match["observe"]),
                "log_us": float(match["log"]),
                "both_us": float(match["both"]),
            }
    sgw_verify = next((v["verify_us"] for k, v in verify.items() if k.startswith("storagegateway")), None)
    sgw_classify = classify.get("json storagegateway two-level", {}).get("all_us")
    return {
        "verify": verify,
        "classify": classify,
        "observe": observe,
        "figures": {
            # the targets' figures: the harness's own request shapes (Storage Gateway JSON 1.1)
            "verification_us": sgw_verify,
            "verification_worst_us": max((v["verify_us"] for v in verify.values()), default=None),
            "classification_us": sgw_classify,
            "classification_worst_us": max((v["all_us"] for v in classify.values()), default=None),
            "metrics_log_us": observe.get("ok", {}).get("both_us"),
            "metrics_log_error_us": observe.get("error", {}).get("both_us"),
        },
        "raw": {"bench_verify": verify_out, "bench_classify": classify_out, "bench_observe": observe_out},
    }
