"""Blind CONNECT tunnels and forward-proxy requests: their own series and readable console lines."""

from __future__ import annotations

from observability_support import new_metrics, record, value

from proxy.observability.logs import console_line, request_event


def tunnel(**fields: object) -> object:
    values: dict[str, object] = {
        "kind": "tunnel",
        "method": "CONNECT",
        "protocol": "unknown",
        "service": None,
        "operation": None,
        "signature_state": "not_checked",
        "target_host": "s3.us-east-1.amazonaws.com:443",
        "status": 200,
        "upstream_status": None,
        "upstream_duration_seconds": None,
        "bytes_in": 1536,
        "bytes_out": 3 * 1024 * 1024,
        "duration_seconds": 2.5,
    }
    values.update(fields)
    return record(**values)


def test_a_blind_tunnel_is_counted_as_a_tunnel_not_as_a_request() -> None:
    metrics, registry = new_metrics()
    metrics.observe(tunnel())
    metrics.observe(tunnel(outcome="rejected", status=403, bytes_in=0, bytes_out=0, duration_seconds=0.001))
    assert value(registry, "sigwatch_tunnels_total", outcome="ok") == 1
    assert value(registry, "sigwatch_tunnels_total", outcome="rejected") == 1
    assert value(registry, "sigwatch_tunnel_bytes_total", direction="client_to_target") == 1536
    assert value(registry, "sigwatch_tunnel_bytes_total", direction="target_to_client") == 3 * 1024 * 1024
    assert value(registry, "sigwatch_tunnel_duration_seconds_count") == 2
    assert value(registry, "sigwatch_tunnel_duration_seconds_bucket", le="5.0") == 2
    # not an AWS request: absent from every request series
    requests = [
        sample.value
        for metric in registry.collect()
        if metric.name == "sigwatch_requests"
        for sample in metric.samples
        if sample.name == "sigwatch_requests_total"
    ]
    assert sum(requests) == 0


def test_console_line_of_a_tunnel_names_the_target_and_the_bytes() -> None:
    line = console_line(request_event(tunnel()), colors=False)
    assert line == "CONNECT s3.us-east-1.amazonaws.com:443 200 blind tunnel ↑1.5 KiB ↓3.0 MiB 2.5s"


def test_console_line_of_a_forward_request_names_the_destination() -> None:
    event = request_event(record(kind="forward", target_host="storagegateway.us-east-1.amazonaws.com:443"))
    assert console_line(event, colors=False).startswith(
        "POST storagegateway.ListGateways → storagegateway.us-east-1.amazonaws.com:443 200"
    )
