"""Running it: JSON logs with a request id, Prometheus metrics, graceful shutdown."""

from __future__ import annotations

import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from pledges.extensions import db
from pledges.models import Pledge

from .conftest import make_app
from .servers import running_server, server_log_path


def test_every_response_carries_a_request_id_and_keeps_a_sane_one_given(client):
    generated = client.get("/api/v1/campaigns")
    given = client.get("/api/v1/campaigns", headers={"X-Request-ID": "edge-42.a_b"})
    forged = client.get("/api/v1/campaigns", headers={"X-Request-ID": "bad id; with spaces"})

    assert len(generated.headers["X-Request-ID"]) == 32
    assert given.headers["X-Request-ID"] == "edge-42.a_b"
    assert (
        forged.headers["X-Request-ID"] != "bad id; with spaces" and len(forged.headers["X-Request-ID"]) == 32
    )


def test_metrics_count_requests_by_route_and_pledges_by_outcome(client):
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "lovejoy", "email": "m@example.org"},
    )
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "lovejoy", "email": "m@example.org"},
    )
    client.get("/api/v1/campaigns/current/totals")

    body = client.get("/metrics").get_data(as_text=True)

    assert (
        'porchlight_request_duration_seconds_count{method="GET",route="/api/v1/campaigns/<campaign>/totals",status="200"}'
        in body
    )
    assert 'porchlight_pledges_total{outcome="counted"}' in body
    assert 'porchlight_pledges_total{outcome="duplicate"}' in body
    assert "porchlight_stream_clients" in body
    assert "m@example.org" not in body


@pytest.mark.slow
def test_a_server_logs_json_lines_with_request_ids_and_sums_metrics_over_its_workers(database_url, tmp_path):
    with running_server(database_url, tmp_path, workers=2) as base:
        for number in range(6):
            requests.post(
                base + "/api/v1/campaigns/current/pledges",
                json={"kind": "resident", "neighborhood": "lovejoy", "email": f"w{number}@example.org"},
                headers={"Connection": "close", "X-Request-ID": f"trace-{number}"},
                timeout=10,
            )
        metrics = requests.get(base + "/metrics", timeout=10).text
    counted = next(
        line
        for line in metrics.splitlines()
        if line.startswith('porchlight_pledges_total{outcome="counted"}')
    )
    assert float(counted.split()[-1]) == 6.0
    lines = [
        json.loads(line)
        for line in server_log_path(tmp_path).read_text().splitlines()
        if line.startswith("{")
    ]
    pledges = [entry for entry in lines if entry.get("path") == "/api/v1/campaigns/current/pledges"]
    assert {entry["request_id"] for entry in pledges} == {f"trace-{n}" for n in range(6)}
    assert all(entry["status"] == 201 and "duration_ms" in entry for entry in pledges)


@pytest.mark.slow
def test_on_sigterm_pledges_in_flight_finish_and_every_201_is_kept(database_url, tmp_path):
    results: list[tuple[str, int | None]] = []
    lock = threading.Lock()
    with running_server(database_url, tmp_path, workers=2) as base:
        master = int(
            next(
                line for line in server_log_path(tmp_path).read_text().splitlines() if "Listening at" in line
            )
            .split("[")[2]
            .split("]")[0]
        )

        def pledge(number: int) -> None:
            email = f"term{number}@example.org"
            try:
                status = requests.post(
                    base + "/api/v1/campaigns/current/pledges",
                    json={"kind": "resident", "neighborhood": "lovejoy", "email": email},
                    timeout=30,
                ).status_code
            except requests.ConnectionError:
                status = None  # refused after shutdown began: never accepted, never half-done
            with lock:
                results.append((email, status))

        with ThreadPoolExecutor(max_workers=16) as pool:
            for number in range(200):
                pool.submit(pledge, number)
                if number == 60:
                    os.kill(master, signal.SIGTERM)
    statuses = {status for _, status in results}
    assert statuses <= {201, None}, statuses
    accepted = {email for email, status in results if status == 201}
    assert accepted
    app = make_app(database_url, tmp_path)
    with app.app_context():
        stored = set(db.session.scalars(db.select(Pledge.email)))
    assert accepted <= stored
