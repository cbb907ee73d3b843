"""Processes the harness starts: free ports, CPU pinning, CPU time and peak RSS from /proc, clean stops.

Everything the harness starts goes through `Service`, which remembers it so `stop_all()` (run on exit,
on error and on the global deadline) ends exactly the processes this run started, by their ids.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPU_COUNT = os.cpu_count() or 1
# The contender gets CPU 0 to itself; the load generator, the upstream and the harness share CPU 1.
PROXY_CPU = 0
LOAD_CPU = 1
PINNING = CPU_COUNT >= 2 and shutil.which("taskset") is not None

_STARTED: list[Service] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_harness() -> bool:
    """Put the harness (and so every child it starts without taskset) on the load generator's CPU."""
    if not PINNING:
        return False
    os.sched_setaffinity(0, {LOAD_CPU})
    return True


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    """`taskset -c CPUS command` when pinning is possible; the command unchanged otherwise."""
    if cpus is None or not PINNING:
        return list(command)
    return ["taskset", "-c", cpus, *command]


def set_affinity(pids: Iterable[int], cpus: set[int]) -> None:
    if not PINNING:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(pid, cpus)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may contain spaces and parentheses: fields start after the last ')'
    return text[text.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """`root` and every live process below it (nginx workers, sigwatch --workers children)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [root], [root]
    while queue:
        for child in parents.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime (fields 14 and 15 of /proc/<pid>/stat) of the given processes, in seconds."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU time all processes spent in user, nice and system mode so far (first line of /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return sum(int(x) for x in fields[1:4]) / CLOCK_TICKS


def harness_seconds() -> float:
    """CPU time of this process plus its reaped children (wrk, once it has been waited for)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_TCP_ESTABLISHED = "01"


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of the established TCP connections whose local port is `port` (/proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
            if fields[3] == _TCP_ESTABLISHED and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def connections_by_pid(port: int, pids: Iterable[int]) -> dict[int, int]:
    """How many established connections to local `port` each process holds: how SO_REUSEPORT spread
    a run's keep-alive connections over `sigwatch --workers` (sample it while the load runs)."""
    inodes = _established_inodes(port)
    counts = {}
    for pid in pids:
        held = 0
        with contextlib.suppress(FileNotFoundError, PermissionError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        held += 1
        counts[pid] = held
    return counts


def status_kib(pid: int, key: str) -> int | None:
    """A `kB` figure of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current RSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0): the next peak is the run's."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before listening on {port}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def wait_for_url(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Poll until `url` answers 200 (sigwatch's /readyz: started and the upstream reached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode} before {url} answered")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as answer:
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


@dataclass
class Service:
    """One started process (a contender, the upstream): its port and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    output: Path | None = None
    stop_signal: int = signal.SIGTERM
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        return descendants(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)  # its own session: started that way below
                self.process.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # anything it left behind in its session
        if self in _STARTED:
            _STARTED.remove(self)


def start(
    name: str,
    command: Sequence[str],
    port: int,
    *,
    cpus: str | None,
    output: Path | None = None,
    env: dict[str, str] | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Service:
    """Start `command` (pinned to `cpus`) in its own session, stdout+stderr to `output` or /dev/null."""
    sink = open(output, "wb") if output is not None else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        process = subprocess.Popen(
            pinned(command, cpus),
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    finally:
        if output is not None:
            sink.close()  # type: ignore[union-attr]
    service = Service(name, process, port, output, stop_signal)
    _STARTED.append(service)
    return service


def stop_all() -> None:
    for service in list(reversed(_STARTED)):
        with contextlib.suppress(Exception):
            service.stop(timeout=10)
