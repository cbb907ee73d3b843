"""settle_heap(): after start-up, the start-up objects are frozen out of collections and young
collections wait for 10,000 allocations (proxy/server/runtime.py says what that buys)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc, weakref
from proxy.server.runtime import GC_GEN0_THRESHOLD, settle_heap
class Node: pass
def cycle():
    node = Node()
    node.me = node
    return weakref.ref(node)
before = gc.get_threshold()
start_up_garbage = cycle()
settle_heap()
print(start_up_garbage() is None, gc.get_freeze_count() > 10_000)  # collected, not frozen for good
print(gc.get_threshold() == (GC_GEN0_THRESHOLD, *before[1:]))
serving_garbage = cycle()
gc.collect()
print(serving_garbage() is None)  # cycles made while serving are still collected
"""


def test_settle_heap_freezes_start_up_and_raises_the_young_threshold() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True", "True"]
