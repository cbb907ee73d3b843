"""How the harness's own servers run: on uvloop when installed (as sigwatch does), else asyncio."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def proxy_main(description: str, serve: Callable[[int, str], Coroutine[Any, Any, None]]) -> None:
    """`--port P --upstream URL`, then `serve(P, URL)` until the process is stopped."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    run(serve(args.port, args.upstream))
