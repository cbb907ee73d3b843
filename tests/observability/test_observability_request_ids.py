"""Request ids: 32 hex digits like uuid4().hex, unique within a process and across worker processes."""

from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
from pathlib import Path

from proxy.record import new_request_id

REPO = Path(__file__).resolve().parents[2]
HEX32 = re.compile(r"[0-9a-f]{32}")
PRINT_IDS = "from proxy.record import new_request_id\nfor _ in range(1000): print(new_request_id())"


def test_ids_are_32_lower_case_hex_digits_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(100_000)]
    assert all(HEX32.fullmatch(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_worker_processes_draw_their_own_ids() -> None:
    runs = [
        subprocess.run(
            [sys.executable, "-c", PRINT_IDS],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=True,
        ).stdout.split()
        for _ in range(2)
    ]
    assert all(len(run) == 1000 for run in runs)
    assert {i[:16] for i in runs[0]}.isdisjoint({i[:16] for i in runs[1]})
    assert set(runs[0]).isdisjoint(runs[1])
    # Each process's counter starts at its own random point: a client's id is not a request count.
    first = [int(run[0][16:], 16) for run in runs]
    assert first[0] != first[1] and min(first) > 1000


def _child_id(queue: multiprocessing.Queue[str]) -> None:
    queue.put(new_request_id())


def test_a_forked_child_draws_again() -> None:
    parent = new_request_id()
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[str] = context.Queue()
    child = context.Process(target=_child_id, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    assert HEX32.fullmatch(from_child)
    assert from_child[:16] != parent[:16]
    assert from_child != new_request_id()
