"""Write grafana/dashboards/sigwatch.json, the sigwatch Grafana dashboard, from the panel list below.

    .venv/bin/python tools/build_dashboard.py

The dashboard is generated so that every panel follows the same rules (datasource variable, $service /
$operation filters, `$__rate_interval` in every range selector, units) without copy-paste;
tests/observability check that the committed file equals this output and run every query on a real
Prometheus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "grafana" / "dashboards" / "sigwatch.json"

UID = "sigwatch-overview"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Label filters: every panel of per-request metrics follows the service (and operation) variables.
S = 'service=~"$service"'
SO = 'service=~"$service", operation=~"$operation"'
RATE = "[$__rate_interval]"


def rate(metric: str, selector: str = SO) -> str:
    return f"rate({metric}{{{selector}}}{RATE})"


def with_label(selector: str, name: str, value: str, match: str = "=") -> str:
    return f'{selector}, {name}{match}"{value}"'


def quantile(q: float, metric: str, selector: str = SO) -> str:
    return f"histogram_quantile({q}, sum by (le) ({rate(metric, selector)}))"


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    format: str = "time_series"


@dataclass
class Panel:
    title: str
    description: str
    queries: list[Query]
    kind: str = "timeseries"
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    decimals: int | None = None


@dataclass
class Row:
    title: str
    panels: list[Panel]


REQUESTS = "sigwatch_requests_total"
ERRORS = "sigwatch_upstream_errors_total"
ALL_REQUESTS = f"sum({rate(REQUESTS)})"
CLIENT_OR_SERVER_ERRORS = with_label(SO, "status_class", "4xx|5xx", "=~")
# Requests whose client skew is beyond sigwatch's 5-minute early warning (on either side); the `le`
# regex matches both exposition spellings ("300.0" from prometheus-client, "300" once Prometheus 3
# normalises classic-histogram bucket labels).
SKEW_BEYOND_5_MINUTES = (
    f'sum(rate(sigwatch_clock_skew_seconds_bucket{{{S}, le=~"-300|-300.0"}}{RATE}))'
    f" + sum(rate(sigwatch_clock_skew_seconds_count{{{S}}}{RATE}))"
    f' - sum(rate(sigwatch_clock_skew_seconds_bucket{{{S}, le=~"300|300.0"}}{RATE}))'
)


def share_of_requests(status_class: str) -> str:
    """The share of requests answered with `status_class`; 0 (not "no data") when there are none."""
    answered = rate(REQUESTS, with_label(SO, "status_class", status_class))
    return f"(sum({answered}) or vector(0)) / {ALL_REQUESTS}"


ROWS = [
    Row(
        "Traffic: rate, errors, duration",
        [
            Panel(
                "Requests per second",
                "Every request sigwatch answered (proxied or answered itself).",
                [Query(ALL_REQUESTS, "requests/s")],
                kind="stat",
                unit="reqps",
                width=6,
                height=5,
            ),
            Panel(
                "Server error ratio (5xx)",
                "Share of requests answered with a 5xx: the upstream's own, and 502/504 from sigwatch when "
                "the upstream could not be used. The SLO behind the error-budget burn alerts.",
                [Query(share_of_requests("5xx"))],
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                decimals=2,
            ),
            Panel(
                "Client error ratio (4xx)",
                "Share of requests answered with a 4xx (not found, throttling, validation, authentication).",
                [Query(share_of_requests("4xx"))],
                kind="stat",
                unit="percentunit",
                width=6,
                height=5,
                decimals=2,
            ),
            Panel(
                "p99 duration",
                "99th percentile of the time from the request head to the last byte of the answer.",
                [Query(quantile(0.99, "sigwatch_request_duration_seconds_bucket"), "p99")],
                kind="stat",
                unit="s",
                width=6,
                height=5,
            ),
            Panel(
                "Request rate by operation",
                "Requests per second for each service and operation.",
                [Query(f"sum by (service, operation) ({rate(REQUESTS)})", "{{service}}.{{operation}}")],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Errors by outcome",
                "Requests that did not end well: error (the upstream answered an error), rejected "
                "(enforce mode answered with AWS's error), upstream_failure (502/504 from sigwatch), "
                "bad_request, client_abort.",
                [
                    Query(
                        f"sum by (outcome) ({rate(REQUESTS, with_label(SO, 'outcome', 'ok', '!='))})",
                        "{{outcome}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Duration p50 / p90 / p99",
                "Request duration seen by clients, and the upstream's time to its response head (p99): "
                "the gap is the time spent in sigwatch and on the body.",
                [
                    Query(quantile(0.5, "sigwatch_request_duration_seconds_bucket"), "p50"),
                    Query(quantile(0.9, "sigwatch_request_duration_seconds_bucket"), "p90"),
                    Query(quantile(0.99, "sigwatch_request_duration_seconds_bucket"), "p99"),
                    Query(quantile(0.99, "sigwatch_upstream_duration_seconds_bucket"), "upstream p99"),
                ],
                unit="s",
            ),
            Panel(
                "Error ratio by status class",
                "Share of requests per status class 4xx and 5xx.",
                [
                    Query(
                        f"sum by (status_class) ({rate(REQUESTS, CLIENT_OR_SERVER_ERRORS)})"
                        f" / ignoring (status_class) group_left {ALL_REQUESTS}",
                        "{{status_class}}",
                    )
                ],
                unit="percentunit",
            ),
        ],
    ),
    Row(
        "Errors from the upstream (classified against the catalogs)",
        [
            Panel(
                "Error rate by exception",
                "Upstream error responses per second, by exception (`__type`, `<Code>`).",
                [Query(f"sum by (exception) ({rate(ERRORS)})", "{{exception}}")],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Error rate by code",
                "By the most specific documented code (Storage Gateway's operation error code, else the "
                "code); codes outside the catalogs are `other` (the log line keeps the real code).",
                [Query(f"sum by (code) ({rate(ERRORS)})", "{{code}}")],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Top error codes",
                "The ten most frequent upstream errors now, with their category and whether an SDK retries "
                "them.",
                [
                    Query(
                        f"sort_desc(topk(10, sum by (service, exception, code, category, retryable) "
                        f"({rate(ERRORS)})))",
                        instant=True,
                        format="table",
                    )
                ],
                kind="table",
                unit="reqps",
                width=24,
                transformations=[
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {"Time": True},
                            "indexByName": {
                                "service": 0,
                                "exception": 1,
                                "code": 2,
                                "category": 3,
                                "retryable": 4,
                                "Value": 5,
                            },
                            "renameByName": {"Value": "errors/s"},
                        },
                    }
                ],
            ),
            Panel(
                "Error categories over time",
                "authentication, authorization, clock_skew, throttling, validation, not_found, conflict, "
                "precondition, quota, server, unavailable, redirect, unknown.",
                [Query(f"sum by (category) ({rate(ERRORS)})", "{{category}}")],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Retryable vs not",
                "Upstream errors an AWS SDK retries (botocore's standard retry mode: throttling, transient "
                "codes, 500/502/503/504) against those it does not.",
                [Query(f"sum by (retryable) ({rate(ERRORS)})", "retryable={{retryable}}")],
                unit="reqps",
                stacked=True,
            ),
        ],
    ),
    Row(
        "Validation: findings, rejections, signatures, clocks",
        [
            Panel(
                "Validation findings by check",
                "Findings per second, by check and severity (observe and enforce mode alike).",
                [
                    Query(
                        f"sum by (check, severity) ({rate('sigwatch_validation_findings_total', S)})",
                        "{{check}} ({{severity}})",
                    )
                ],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Rejections (enforce mode)",
                "Requests sigwatch answered itself with the error AWS would send, by check and code.",
                [
                    Query(
                        f"sum by (check, code) ({rate('sigwatch_rejections_total', S)})",
                        "{{check}}: {{code}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Signature verification",
                "valid; invalid (wrong secret, tampered request, malformed Authorization); unverifiable "
                "(the access key's secret is not configured); unsigned.",
                [
                    Query(
                        f"sum by (result) ({rate('sigwatch_signature_verifications_total', S)})",
                        "{{result}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "Clock skew distribution",
                "Signed difference between each request's signing time and sigwatch's clock (positive: "
                "the client is ahead). AWS rejects past ±900 s; sigwatch warns past ±300 s.",
                [
                    Query(
                        f"sum by (le) ({rate('sigwatch_clock_skew_seconds_bucket', S)})",
                        "{{le}}",
                        format="heatmap",
                    )
                ],
                kind="heatmap",
                unit="s",
            ),
            Panel(
                "Clients near the 15-minute window",
                "Requests per second signed with a clock more than 5 minutes off: they are accepted today "
                "and rejected once the drift passes 15 minutes.",
                [Query(SKEW_BEYOND_5_MINUTES, "skew beyond ±5 min")],
                unit="reqps",
            ),
        ],
    ),
    Row(
        "SDK retries",
        [
            Panel(
                "Retry amplification (attempts per invocation)",
                "Requests per first attempt (`amz-sdk-request: attempt=N`): 1 means no retries; 2 means "
                "every call is sent twice on average.",
                [
                    Query(
                        f"sum({rate('sigwatch_sdk_attempts_total')})"
                        f" / sum({rate('sigwatch_sdk_attempts_total', with_label(SO, 'attempt', '1'))})",
                        "attempts per invocation",
                    )
                ],
                unit="short",
                decimals=2,
            ),
            Panel(
                "SDK attempts by attempt number",
                "Requests per second by attempt number; attempt > 1 is a retry.",
                [Query(f"sum by (attempt) ({rate('sigwatch_sdk_attempts_total')})", "attempt {{attempt}}")],
                unit="reqps",
                stacked=True,
            ),
        ],
    ),
    Row(
        "Upstream and sigwatch",
        [
            Panel(
                "Upstream connection failures",
                "Requests the upstream could not answer (502/504 sent by sigwatch), by reason.",
                [
                    Query(
                        f"sum by (reason) (rate(sigwatch_upstream_connection_failures_total{RATE}))",
                        "{{reason}}",
                    )
                ],
                unit="reqps",
                stacked=True,
            ),
            Panel(
                "In-flight requests",
                "Requests being handled, per sigwatch instance (peak over each interval).",
                [
                    Query(
                        f"sum by (instance) (max_over_time(sigwatch_in_flight_requests{RATE}))",
                        "{{instance}}",
                    )
                ],
                unit="short",
            ),
            Panel(
                "Body bytes in / out",
                "Request bodies received from clients and response bodies sent to them.",
                [
                    Query(f"sum({rate('sigwatch_request_body_bytes_total', S)})", "in"),
                    Query(f"sum({rate('sigwatch_response_body_bytes_total', S)})", "out"),
                ],
                unit="Bps",
            ),
            Panel(
                "Connections cut by sigwatch",
                "Client connections closed by the listener: header_timeout (headers not finished in "
                "time), connection_refused (over the connection limit).",
                [Query(f"sum by (event) (rate(sigwatch_connection_events_total{RATE}))", "{{event}}")],
                unit="short",
            ),
        ],
    ),
]


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    targets = [
        {
            "refId": chr(ord("A") + index),
            "datasource": DATASOURCE,
            "editorMode": "code",
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
            "format": query.format,
        }
        for index, query in enumerate(panel.queries)
    ]
    options: dict[str, Any]
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "showPoints": "never",
            "spanNulls": False,
        }
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind == "stat":
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    elif panel.kind == "heatmap":
        options = {
            "calculate": False,
            "yAxis": {"unit": "s", "axisPlacement": "left"},
            "rowsFrame": {"layout": "le"},
            "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "fill": "dark-orange"},
            "cellGap": 1,
            "tooltip": {"mode": "single", "yHistogram": True},
            "legend": {"show": True},
        }
    else:
        options = {"showHeader": True, "cellHeight": "sm"}
    options.update(panel.options)
    body: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }
    if panel.transformations:
        body["transformations"] = panel.transformations
    return body


def layout() -> list[dict[str, Any]]:
    """Rows one under the other; panels fill each row left to right, 24 grid units wide."""
    panels: list[dict[str, Any]] = []
    panel_id = 1
    y = 0
    for row in ROWS:
        panels.append(
            {
                "id": panel_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                "panels": [],
            }
        )
        panel_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > 24:
                x = 0
                y += line_height
                line_height = 0
            panels.append(panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return panels


def variable(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values", "qryType": 1},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
        "regex": "",
        "options": [],
    }


def dashboard() -> dict[str, Any]:
    return {
        "uid": UID,
        "title": "sigwatch",
        "description": "AWS API traffic through sigwatch: rate, errors and duration; classified upstream "
        "errors; validation findings and rejections; clock skew; SDK retries; upstream failures.",
        "tags": ["sigwatch", "aws"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "timepicker": {},
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                },
                variable("service", "Service", "label_values(sigwatch_requests_total, service)"),
                variable(
                    "operation",
                    "Operation",
                    'label_values(sigwatch_requests_total{service=~"$service"}, operation)',
                ),
            ]
        },
        "panels": layout(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
