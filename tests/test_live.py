"""Live totals: the stream and the one-per-process broadcaster behind it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from pledges import live
from pledges.extensions import db
from pledges.models import Campaign

from .conftest import make_app
from .servers import running_server, settled_totals

STREAM = "/api/v1/campaigns/current/stream"
WAIT = 10.0  # seconds: a bound on waiting for an event, far above the 1 s poll


class EventReader:
    """Reads Server-Sent Events off a streaming HTTP response, comments included."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.lines: Iterator[str] = response.iter_lines(decode_unicode=True)

    def next(self) -> dict[str, str]:
        """The next event or comment: {"event", "data"} or {"comment"}."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                return {"comment": line[1:].strip()}
            name, _, value = line.partition(":")
            fields[name] = value.lstrip()
        raise EOFError("the stream ended")

    def next_totals(self) -> dict:
        while True:
            item = self.next()
            if item.get("event") == "totals":
                return json.loads(item["data"])


def open_stream(base_url: str) -> EventReader:
    response = requests.get(base_url + STREAM, stream=True, timeout=WAIT)
    assert response.status_code == 200
    return EventReader(response)


def pledge(base_url: str, email: str, neighborhood: str = "allentown") -> None:
    response = requests.post(
        base_url + "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": neighborhood, "email": email},
        timeout=WAIT,
    )
    assert response.status_code == 201


@pytest.fixture
def server(database_url, tmp_path) -> Iterator[str]:
    quick_heartbeat = {"STREAM_HEARTBEAT_SECONDS": "1"}
    with running_server(database_url, tmp_path, workers=2, extra_env=quick_heartbeat) as url:
        yield url


@pytest.mark.slow
def test_the_stream_sends_totals_at_once_with_the_right_headers(server):
    reader = open_stream(server)

    headers = reader.response.headers
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["X-Accel-Buffering"] == "no"
    assert "no-cache" in headers["Cache-Control"]
    first = reader.next_totals()
    assert first == settled_totals(server)
    reader.response.close()


@pytest.mark.slow
def test_a_pledge_reaches_an_open_stream(server):
    reader = open_stream(server)
    before = reader.next_totals()["total"]

    pledge(server, "stream-one@example.org", "lovejoy")
    after = reader.next_totals()

    assert after["total"] == before + 1
    assert next(n for n in after["neighborhoods"] if n["slug"] == "lovejoy")["total"] == 1
    reader.response.close()


@pytest.mark.slow
def test_a_pledge_taken_by_another_app_instance_reaches_the_stream(database_url, tmp_path, server):
    reader = open_stream(server)
    before = reader.next_totals()["total"]
    other = tmp_path / "second"
    other.mkdir()
    with running_server(database_url, other, workers=1) as second:
        pledge(second, "other-instance@example.org")
        assert reader.next_totals()["total"] == before + 1
    reader.response.close()


@pytest.mark.slow
def test_a_quiet_stream_sends_heartbeat_comments(server):
    reader = open_stream(server)
    reader.next_totals()

    assert reader.next() == {"comment": "heartbeat"}
    reader.response.close()


def test_the_stream_of_an_unknown_campaign_is_404_json(client):
    response = client.get("/api/v1/campaigns/nno-1999/stream")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_broadcaster_reads_the_database_once_a_round_however_many_streams_are_open(seeded_app):
    seeded_app.config["LIVE_POLL_SECONDS"] = 0.05
    broadcaster = live.Broadcaster(seeded_app, render=lambda campaign_id: "{}", interval=0.05)
    with seeded_app.app_context():
        campaign_id = db.session.scalars(db.select(Campaign.id)).one()
        version = live.totals_version(campaign_id)
    subscriptions = [broadcaster.subscribe(campaign_id, version) for _ in range(500)]
    try:
        deadline = time.monotonic() + WAIT
        while broadcaster.polls < 10 and time.monotonic() < deadline:
            threading.Event().wait(0.05)
        rounds, polls = broadcaster.rounds, broadcaster.polls
    finally:
        broadcaster.stop()
    assert polls >= 10
    assert polls <= rounds  # one read per round for one watched campaign, not one per stream
    assert broadcaster.client_count == len(subscriptions)


def test_every_stream_gets_a_change_once_even_if_it_reads_slowly(seeded_app):
    rendered = []

    def render(campaign_id: int) -> str:
        rendered.append(campaign_id)
        return json.dumps({"n": len(rendered)})

    broadcaster = live.Broadcaster(seeded_app, render=render, interval=0.05)
    with seeded_app.app_context():
        campaign_id = db.session.scalars(db.select(Campaign.id)).one()
        stale = (-1, None)  # as if connected before a pledge arrived
    slow, fast = broadcaster.subscribe(campaign_id, stale), broadcaster.subscribe(campaign_id, stale)
    try:
        assert fast.next(timeout=WAIT) == '{"n": 1}'
        assert slow.next(timeout=WAIT) == '{"n": 1}'
        assert slow.next(timeout=0.3) is None  # nothing changed since: only a heartbeat would follow
    finally:
        broadcaster.stop()
    assert rendered == [campaign_id]  # rendered once for both streams


def test_the_live_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LIVE_POLL_SECONDS", "0.5")
    monkeypatch.setenv("STREAM_HEARTBEAT_SECONDS", "5")
    app = make_app("sqlite://", tmp_path)
    assert (app.config["LIVE_POLL_SECONDS"], app.config["STREAM_HEARTBEAT_SECONDS"]) == (0.5, 5.0)
