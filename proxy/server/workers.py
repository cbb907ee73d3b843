"""`sigwatch run --workers N`: N processes share the proxy port; the parent serves one /metrics for all.

Each worker binds the proxy address with SO_REUSEPORT, so the kernel spreads connections over them.
Metric values live in prometheus-client's multiprocess files (one directory per run), which the parent's
admin port sums on every scrape. The parent restarts a worker that dies and, on SIGTERM/SIGINT, passes
the signal on, waits for every worker's graceful shutdown, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import shutil
import socket
import tempfile
from collections.abc import Mapping
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType

from proxy.config import Settings, split_address
from proxy.core.model import Credential
from proxy.observability.logs import configure_logging, get_logger
from proxy.observability.metrics import prepare_multiprocess_dir, worker_exited
from proxy.server.runtime import ProxyServer, settle_heap, wait_for_signal

MONITOR_INTERVAL = 0.5
RESTART_BACKOFF = 1.0


def _worker_main(
    settings: Settings, credentials: Mapping[str, Credential], index: int, listening: EventType
) -> None:
    """Entry point of a spawned worker process."""
    from proxy.cli import run_async

    configure_logging(settings.logging.format, settings.logging.level)
    get_logger().info("worker_started", worker=index)
    run_async(_serve_worker(settings, credentials, listening))


async def _serve_worker(
    settings: Settings, credentials: Mapping[str, Credential], listening: EventType
) -> int:
    server = ProxyServer(settings, credentials, reuse_port=True, serve_admin=False)
    await server.start()
    settle_heap()
    listening.set()  # the parent's /readyz waits for every worker to be accepting
    try:
        await wait_for_signal()
    finally:
        await server.stop()
    return 0


def _with_fixed_port(settings: Settings) -> Settings:
    """Workers must share one port: resolve `:0` to a free port once, in the parent."""
    host, port = split_address(settings.listen.address)
    if port != 0:
        return settings
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    listen = dataclasses.replace(settings.listen, address=f"{host}:{port}")
    return dataclasses.replace(settings, listen=listen)


class WorkerPool:
    """Starts, watches, restarts and stops the worker processes."""

    def __init__(self, settings: Settings, credentials: Mapping[str, Credential]) -> None:
        self.settings = settings
        self.credentials = dict(credentials)
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[int, BaseProcess] = {}
        self.listening: dict[int, EventType] = {}
        self.stopping = False
        self.logger = get_logger()

    def start(self) -> None:
        for index in range(self.settings.listen.workers):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        listening = self.context.Event()
        self.listening[index] = listening
        process = self.context.Process(
            target=_worker_main,
            args=(self.settings, self.credentials, index, listening),
            name=f"sigwatch-worker-{index}",
            daemon=False,
        )
        process.start()
        self.processes[index] = process

    def all_listening(self) -> bool:
        """Readiness: every worker is alive and accepting on the shared port."""
        return len(self.processes) == self.settings.listen.workers and all(
            process.is_alive() and self.listening[index].is_set() for index, process in self.processes.items()
        )

    async def watch(self) -> None:
        """Restart a worker that died on its own (a crash must not shrink the pool for good)."""
        while not self.stopping:
            await asyncio.sleep(MONITOR_INTERVAL)
            for index, process in list(self.processes.items()):
                if process.is_alive() or self.stopping:
                    continue
                self.logger.error("worker_died", worker=index, pid=process.pid, exitcode=process.exitcode)
                if process.pid is not None:
                    worker_exited(process.pid)
                await asyncio.sleep(RESTART_BACKOFF)
                if not self.stopping:
                    self._spawn(index)
                    self.logger.info("worker_restarted", worker=index, pid=self.processes[index].pid)

    async def stop(self, grace: float) -> list[int | None]:
        """SIGTERM every worker, wait for their graceful shutdown, kill what is left; exit codes."""
        self.stopping = True
        for process in self.processes.values():
            if process.is_alive():
                process.terminate()
        loop = asyncio.get_running_loop()
        codes: list[int | None] = []
        for process in self.processes.values():
            await loop.run_in_executor(None, process.join, grace + 5)
            if process.is_alive():
                self.logger.warning("worker_killed", pid=process.pid)
                process.kill()
                await loop.run_in_executor(None, process.join, 5)
            if process.pid is not None:
                worker_exited(process.pid)
            codes.append(process.exitcode)
        return codes


async def serve_workers(settings: Settings, credentials: Mapping[str, Credential]) -> int:
    """The parent: workers on the proxy port, the admin port here, until SIGTERM/SIGINT."""
    logger = get_logger()
    directory = tempfile.mkdtemp(prefix="sigwatch-metrics-")
    prepare_multiprocess_dir(directory)
    settings = _with_fixed_port(settings)
    pool = WorkerPool(settings, credentials)
    pool.start()
    admin = ProxyServer(settings, credentials, serve_proxy=False, extra_readiness=pool.all_listening)
    await admin.start()
    logger.info("workers_started", workers=settings.listen.workers, listen=settings.listen.address)
    watcher = asyncio.create_task(pool.watch())
    try:
        await wait_for_signal()
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        codes = await pool.stop(settings.limits.shutdown_grace)
        logger.info("workers_stopped", exit_codes=codes)
        await admin.stop(grace=0)
        shutil.rmtree(directory, ignore_errors=True)
    return 0
