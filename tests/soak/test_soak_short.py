"""The soak in short (about 20 s of traffic): the same mixed traffic and faults against a `sigwatch run`
process, and the same equalities (sent = log lines = metrics = answered + abandoned, nothing left
unanswered, no fd growth at rest). RSS growth is only judged by the full run (`make soak`): 20 s is too
short a window for it. sigwatch's whole log goes through the suite's leak scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.observability.leak_scan import scan_output
from tests.soak.soak import run_soak


@pytest.mark.slow
async def test_short_soak_counts_agree(tmp_path: Path) -> None:
    result = await run_soak(duration=20, warmup=5, concurrency=4, seed=7, workdir=tmp_path)
    print(result.report())
    assert result.problems(check_memory=False) == []
    assert result.sent > 500
    # Every kind of traffic and fault happened, and each was answered as it should be.
    statuses = set(result.tally.statuses)
    assert {"json ok 200", "json bad signature 400", "upstream reset 502", "unparseable 400"} <= statuses
    assert "upstream cut mid-body 200 (cut)" in statuses
    assert result.tally.abandoned["upload abandoned"] and result.tally.abandoned["download abandoned"]
    scan_output(
        "sigwatch soak", stdout=result.log_path.read_bytes(), stderr=(tmp_path / "sigwatch.err").read_bytes()
    )
