"""Request lines are batched per event-loop turn: written by the loop's next turn, in call order with
every other line, the same bytes as structlog's pipeline writes, and never lost (shutdown, exit)."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from observability_support import finding, record, storagegateway_error

from proxy.core.model import Severity
from proxy.observability import logs as logs_module
from proxy.observability.logs import (
    FLUSH_BYTES,
    configure_logging,
    flush_logs,
    get_logger,
    log_request,
    register_secrets,
    request_event,
)
from proxy.record import OUTCOME_ERROR, OUTCOME_REJECTED

REPO = Path(__file__).resolve().parents[2]
SIGNATURE = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class Writes(io.RawIOBase):
    """A binary stream that keeps each write() call apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.writes.append(bytes(data))
        return len(data)

    @property
    def buffer(self) -> Writes:
        return self

    def isatty(self) -> bool:
        return False

    def lines(self) -> list[bytes]:
        return b"".join(self.writes).splitlines()


def request_ids(lines: list[bytes]) -> list[str]:
    return [str(orjson.loads(line).get("request_id", orjson.loads(line)["event"])) for line in lines]


def ids(count: int, prefix: str = "") -> list[str]:
    return [prefix + format(index, f"0{32 - len(prefix)}x") for index in range(count)]


async def test_a_request_line_is_written_by_the_next_loop_turn(logs: Any) -> None:
    log_request(get_logger(), record())
    assert logs.lines == []  # buffered: nothing written while this turn runs
    await asyncio.sleep(0)
    (event,) = logs.events("request")
    assert event["request_id"] == record().request_id


async def test_the_lines_of_one_turn_are_one_write_in_call_order() -> None:
    stream = Writes()
    configure_logging("json", "info", stream=stream)  # type: ignore[arg-type]
    logger = get_logger()
    wanted = ids(5)
    for request_id in wanted:
        log_request(logger, record(request_id=request_id))
    assert stream.writes == []
    await asyncio.sleep(0)
    assert len(stream.writes) == 1
    assert request_ids(stream.lines()) == wanted


def test_the_next_turn_writes_on_uvloop_too() -> None:
    """`sigwatch run` runs on uvloop: its call_soon flush runs before the next turn's socket events."""
    uvloop = pytest.importorskip("uvloop", reason="uvloop (the `speed` extra) is not installed")
    stream = Writes()
    configure_logging("json", "info", stream=stream)  # type: ignore[arg-type]
    logger = get_logger()
    seen: list[int] = []

    async def log_then_yield() -> None:
        log_request(logger, record())
        seen.append(len(stream.writes))
        await asyncio.sleep(0)
        seen.append(len(stream.writes))

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(log_then_yield())
    finally:
        loop.close()
    assert seen == [0, 1]


async def test_a_full_buffer_is_written_before_the_turn_ends() -> None:
    stream = Writes()
    configure_logging("json", "info", stream=stream)  # type: ignore[arg-type]
    logger = get_logger()
    line_size = len(orjson.dumps(request_event(record()))) + 60  # time, level, event
    count = FLUSH_BYTES // line_size + 10
    wanted = ids(count)
    for request_id in wanted:
        log_request(logger, record(request_id=request_id))
    assert len(stream.writes) == 1  # the buffer passed FLUSH_BYTES once
    assert len(stream.writes[0]) >= FLUSH_BYTES
    await asyncio.sleep(0)
    assert len(stream.writes) == 2
    assert request_ids(stream.lines()) == wanted


async def test_other_events_keep_their_place_among_buffered_request_lines(logs: Any) -> None:
    logger = get_logger()
    first, second = ids(2)
    log_request(logger, record(request_id=first))
    logger.warning("upstream_down", upstream="http://127.0.0.1:1")  # written at once, after `first`
    assert [e.get("request_id", e["event"]) for e in logs.events()] == [first, "upstream_down"]
    log_request(logger, record(request_id=second, outcome=OUTCOME_REJECTED, status=403))
    await asyncio.sleep(0)
    assert [e.get("request_id", e["event"]) for e in logs.events()] == [first, "upstream_down", second]


async def test_shutdown_writes_what_is_buffered(logs: Any) -> None:
    logger = get_logger()
    log_request(logger, record())
    logger.info("stopped")  # the server's last line: everything before it is out with it
    assert [e["event"] for e in logs.events()] == ["request", "stopped"]
    log_request(logger, record())
    flush_logs()
    assert [e["event"] for e in logs.events()] == ["request", "stopped", "request"]


def test_lines_of_a_loop_stopped_before_its_flush_are_not_lost_and_come_first(logs: Any) -> None:
    loop = asyncio.new_event_loop()
    first = ids(1, "a")[0]

    def log_and_stop() -> None:
        log_request(get_logger(), record(request_id=first))
        loop.stop()  # the scheduled flush is left behind in the closed loop

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    assert logs.lines == []
    get_logger().info("stopped")  # no loop running: written through, after the stranded line
    assert [e.get("request_id", e["event"]) for e in logs.events()] == [first, "stopped"]


def test_without_a_running_loop_every_line_is_written_at_once() -> None:
    stream = Writes()
    configure_logging("json", "info", stream=stream)  # type: ignore[arg-type]
    logger = get_logger()
    log_request(logger, record())
    log_request(logger, record())
    assert len(stream.writes) == 2


def test_a_loop_thread_and_the_main_thread_lose_no_line(logs: Any) -> None:
    logger = get_logger()
    in_loop, outside = ids(300, "1"), ids(300, "2")

    async def serve() -> None:
        for index, request_id in enumerate(in_loop):
            log_request(logger, record(request_id=request_id))
            if index % 7 == 0:
                await asyncio.sleep(0)

    thread = threading.Thread(target=lambda: asyncio.run(serve()))
    thread.start()
    for request_id in outside:
        log_request(logger, record(request_id=request_id))
    thread.join(timeout=30)
    written = [str(e["request_id"]) for e in logs.events("request")]
    assert [i for i in written if i in set(in_loop)] == in_loop
    assert [i for i in written if i in set(outside)] == outside


@pytest.mark.parametrize("outcome", ["ok", OUTCOME_ERROR, OUTCOME_REJECTED])
def test_the_line_is_the_bytes_structlog_s_pipeline_writes(
    outcome: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """log_request renders without structlog's per-call chain: compared with the chain itself."""
    monkeypatch.setattr(logs_module, "_SECRETS", logs_module._Secrets())
    register_secrets([EXAMPLE_SECRET])

    class FixedClock:
        def now(self) -> str:
            return "2015-08-30T12:36:00.000000Z"

    monkeypatch.setattr(logs_module, "_CLOCK", FixedClock())
    mismatch = finding("signature.verify", Severity.ERROR, "SignatureDoesNotMatch", f"Signature={SIGNATURE}")
    item = record(
        outcome=outcome,
        status=400,
        findings=(mismatch,),
        classification=storagegateway_error("InvalidGatewayRequestException", "GatewayNotFound", "X"),
        notes=[f"had {EXAMPLE_SECRET}", 'a "quoted" note'],
        payload={"kind": "UNSIGNED-PAYLOAD", "verified": False, "chunks": 0},
        user_agent="Boto3/1.34.0 ünïcode",
    )
    fast, chain = Writes(), Writes()
    configure_logging("json", "info", stream=fast)  # type: ignore[arg-type]
    log_request(get_logger(), item)
    configure_logging("json", "info", stream=chain)  # type: ignore[arg-type]
    level = "warning" if outcome == OUTCOME_REJECTED else "info"
    getattr(get_logger().bind(), level)(logs_module._Line("request", request_event(item)))
    assert fast.writes == chain.writes
    assert EXAMPLE_SECRET.encode() not in fast.writes[0] and SIGNATURE.encode() not in fast.writes[0]


def test_the_console_view_still_goes_through_structlog() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream=stream)
    log_request(get_logger(), record(duration_seconds=0.0031))
    assert stream.getvalue() == "POST storagegateway.ListGateways 200 3.1ms\n"


EXIT_SCRIPT = """
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from observability_support import record
from proxy.observability.logs import configure_logging, get_logger, log_request

configure_logging("json", "info")
loop = asyncio.new_event_loop()

def log_and_stop():
    log_request(get_logger(), record())
    loop.stop()

loop.call_soon(log_and_stop)
loop.run_forever()
loop.close()
"""


def test_the_process_exit_writes_what_a_closed_loop_left_buffered() -> None:
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(Path(__file__).parent)],
        capture_output=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    (line,) = done.stdout.splitlines()
    assert orjson.loads(line)["event"] == "request"
