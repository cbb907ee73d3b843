"""Observe mode runs the checks of a whole request once it has gone upstream, while the upstream works on it;
enforce mode runs them first. Either way every answer carries what the checks found, and a failing check
never costs an observed request the upstream's answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from proxy.core.checks import ValidationResult
from proxy.server import handler as handler_module
from proxy.server.runtime import ProxyServer
from proxy.server.upstream import Upstream
from tests.functional.proxy.conftest import Recorder, StartProxy
from tests.functional.proxy.test_forwarding import S3_GET, STORAGE_GATEWAY, recording_upstream, send
from tests.support.net import free_port

pytestmark = pytest.mark.asyncio

CASES = [STORAGE_GATEWAY, S3_GET]
IDS = ["json-buffered-body", "rest-xml-no-body"]


Proxied = Callable[..., Awaitable[tuple[ProxyServer, Recorder]]]


@pytest.fixture
def proxied(aiohttp_raw_server: Any, start_proxy: StartProxy) -> Proxied:
    """sigwatch in `mode` in front of an upstream that records what it receives and answers `answer`."""

    async def start(mode: str = "observe", answer: str = "ok") -> tuple[ProxyServer, Recorder]:
        recorder = Recorder()
        upstream = await aiohttp_raw_server(recording_upstream(recorder, text=answer))
        server = await start_proxy(str(upstream.make_url("/")), validation={"mode": mode})
        return server, recorder

    return start


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order of the two steps that matter: the request head handed to the upstream's transport
    (Upstream.request's on_sent, which the upstream client calls right after the write), and the checks."""
    order: list[str] = []
    real_request, real_validate = Upstream.request, handler_module.validate

    def request(self: Upstream, *args: Any, on_sent: Any = None, **kwargs: Any) -> Any:
        def sent() -> None:
            order.append("sent")
            if on_sent is not None:
                on_sent()

        return real_request(self, *args, on_sent=sent, **kwargs)

    def validate(ctx: Any) -> ValidationResult:
        order.append("checks")
        return real_validate(ctx)

    monkeypatch.setattr(Upstream, "request", request)
    monkeypatch.setattr(handler_module, "validate", validate)
    return order


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_observe_mode_checks_once_the_request_is_out(
    case: dict[str, Any], proxied: Proxied, steps: list[str], logs: Any
) -> None:
    server, _ = await proxied()
    status, headers, _ = await send(server, case)
    assert status == 200
    assert steps == ["sent", "checks"]
    assert headers["x-sigwatch-signature"] == "valid"  # the checks ran before the answer was relayed
    (line,) = logs.events("request")
    assert line["sigv4"] == "valid"
    assert line["outcome"] == "ok"


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_enforce_mode_checks_before_anything_goes_out(
    case: dict[str, Any], proxied: Proxied, steps: list[str]
) -> None:
    server, _ = await proxied("enforce")
    status, headers, _ = await send(server, case)
    assert status == 200
    assert steps == ["checks", "sent"]
    assert headers["x-sigwatch-signature"] == "valid"


async def test_the_checks_still_run_when_the_upstream_cannot_be_reached(
    start_proxy: StartProxy, steps: list[str], logs: Any
) -> None:
    server = await start_proxy(f"http://127.0.0.1:{free_port()}")
    status, headers, _ = await send(server, STORAGE_GATEWAY)
    assert status == 502
    assert steps == ["checks"]  # nothing was sent, the checks ran once all the same
    assert headers["x-sigwatch-signature"] == "valid"
    (line,) = logs.events("request")
    assert line["sigv4"] == "valid"
    assert line["upstream_failure"] == "refused"


@pytest.fixture
def broken_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    def validate(ctx: Any) -> ValidationResult:
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(handler_module, "validate", validate)


@pytest.mark.usefixtures("broken_checks")
async def test_a_failing_check_never_costs_an_observed_request_its_answer(
    proxied: Proxied, logs: Any
) -> None:
    server, recorder = await proxied(answer="from upstream")
    status, headers, body = await send(server, STORAGE_GATEWAY)
    assert (status, body) == (200, b"from upstream")
    assert "x-sigwatch-signature" not in headers  # nothing is claimed about checks that did not finish
    assert len(recorder.seen) == 1
    (line,) = logs.events("request")
    assert line["notes"] == ["internal error in the checks: RuntimeError"]
    (error,) = logs.events("internal_error")
    assert error["request_id"] == line["request_id"]


@pytest.mark.usefixtures("broken_checks")
async def test_a_failing_check_in_enforce_mode_answers_500_and_forwards_nothing(
    proxied: Proxied, logs: Any
) -> None:
    server, recorder = await proxied("enforce")
    status, headers, _ = await send(server, STORAGE_GATEWAY)
    assert status == 500
    assert headers["x-sigwatch-origin"] == "proxy"
    assert recorder.seen == []
    (line,) = logs.events("request")
    assert line["outcome"] == "internal_error"
