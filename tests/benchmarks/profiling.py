"""Profile a running sigwatch with py-spy (speedscope file) and summarize where its time goes.

py-spy samples the process from outside, so sigwatch runs unmodified. It pauses the process for each
sample (its default): with `--nonblocking` about 40 % of the stacks came out torn (coroutine frames
resumed from uvloop's C callbacks without their callers), which spoils the inclusive figures.
The summary reads the speedscope file: self time per function (where the CPU actually is),
inclusive time per function (what a call costs with everything below it), and self time per area
(sigwatch's modules, aiohttp, structlog, prometheus_client, the event loop, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BENCH_VENV = Path(os.environ.get("BENCH_VENV", REPO / ".venv-bench"))


def py_spy() -> str | None:
    candidate = BENCH_VENV / "bin" / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def start_py_spy(pid: int, output: Path, rate: int = 250) -> subprocess.Popen[bytes]:
    """Record until SIGINT (py-spy then writes the file)."""
    binary = py_spy()
    assert binary is not None
    command = [binary, "record", "--pid", str(pid), "--rate", str(rate)]
    command += ["--format", "speedscope", "--output", str(output)]
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )


def stop_py_spy(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out.decode(errors="replace")


def _area(file: str) -> str:
    """A coarse owner of a source file, for the per-area breakdown."""
    path = file.replace("\\", "/")
    if "/proxy/" in path:
        parts = path.split("/proxy/", 1)[1].split("/")
        return "sigwatch " + "/".join(parts[:-1] or parts)
    for package in ("aiohttp", "structlog", "prometheus_client", "multidict", "yarl", "uvloop", "orjson"):
        if f"/{package}/" in path:
            return package
    if "/asyncio/" in path:
        return "asyncio"
    if "site-packages" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    return "python stdlib / other"


def _short(file: str) -> str:
    path = file.replace("\\", "/")
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path.rsplit("/", 2)[-1] if path.count("/") > 2 else path


def summarize(speedscope: Path, top: int = 25) -> dict[str, Any]:
    """Top self and inclusive costs (functions aggregated over their lines), in % of all samples."""
    document = json.loads(speedscope.read_text())
    frames = document["shared"]["frames"]
    keys = [(f.get("name", "?"), _short(f.get("file", "?"))) for f in frames]
    self_counts: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    areas: Counter[str] = Counter()
    total = 0.0
    count = 0
    for profile in document["profiles"]:
        weights = profile.get("weights") or [1] * len(profile["samples"])
        for stack, weight in zip(profile["samples"], weights, strict=True):
            if not stack:
                continue
            total += weight
            count += 1
            leaf = keys[stack[-1]]
            self_counts[leaf] += weight
            areas[_area(frames[stack[-1]].get("file", "?"))] += weight
            for key in {keys[i] for i in stack}:
                inclusive[key] += weight

    def table(counter: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
        return [
            {"function": name, "file": file, "percent": round(100 * count / total, 2)}
            for (name, file), count in counter.most_common(top)
        ]

    return {
        "samples": count,
        "self": table(self_counts),
        "inclusive": table(inclusive),
        "areas": [{"area": a, "percent": round(100 * c / total, 2)} for a, c in areas.most_common()],
    }
