"""`python -m proxy` is the `sigwatch` command."""

from __future__ import annotations

import sys

from proxy.cli import main

# The guard matters: --workers spawns processes that re-import the parent's main module.
if __name__ == "__main__":
    sys.exit(main())
