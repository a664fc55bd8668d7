"""Operations: JSON logs with a request id, and Prometheus metrics at /metrics.

Logs carry no personal data: paths without query strings, no client addresses,
no emails. Metrics are per route template (never a raw path), and never public:
only the bearer of METRICS_TOKEN reads them, or, with no token set, the loopback
address (as ProxyFix reports the client: a proxied remote client is not loopback).
Anyone else gets a 404, as if there were nothing there.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch: "$" would let a trailing newline in
request_log = logging.getLogger("porchlight.request")

REQUEST_SECONDS = Histogram(
    "porchlight_request_duration_seconds",
    "Time to answer a request, by route template, method and status.",
    ["route", "method", "status"],
)
PLEDGES = Counter("porchlight_pledges_total", "Pledges taken, by outcome.", ["outcome"])
STREAM_CLIENTS = Gauge("porchlight_stream_clients", "Open live-totals streams.", multiprocess_mode="livesum")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)


def start_request() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.started = time.perf_counter()


def finish_request(response: Response) -> Response:
    response.headers.add("X-Request-ID", g.get("request_id", ""))  # added: nothing else sets it
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    REQUEST_SECONDS.labels(route, request.method, str(response.status_code)).observe(elapsed)
    request_log.info(
        "request",
        extra={
            "fields": {
                "method": request.method,
                "path": request.path,  # never the query string: it could carry an email
                "route": route,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 1),
            }
        },
    )
    return response


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False  # no address (a unix socket), or not one
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


def may_read_metrics() -> bool:
    token: str = current_app.config["METRICS_TOKEN"]
    if not token:
        return is_loopback(request.remote_addr)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time: how long a wrong guess takes says nothing about the token.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics() -> Response:
    if not may_read_metrics():
        abort(404)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # every gunicorn worker's numbers together
        body = generate_latest(registry)
    else:
        body = generate_latest()
    response = Response(body, mimetype=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"  # never kept by a proxy for the next caller
    return response


def init_app(app: Flask) -> None:
    if app.config["LOG_FORMAT"] == "json":
        configure_logging(app.config["LOG_LEVEL"])
    app.before_request(start_request)
    app.after_request(finish_request)
    app.add_url_rule("/metrics", "metrics", metrics)
