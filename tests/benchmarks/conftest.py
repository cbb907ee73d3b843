"""tests/benchmarks is the benchmark harness (`make bench`), not tests: pytest collects nothing here.

Its smoke test lives in tests/benchmarks_smoke/.
"""

from __future__ import annotations

collect_ignore_glob = ["*"]
