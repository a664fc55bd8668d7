"""Edges a partner's data team found: `current`, dates, timestamps, caching headers, stream ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from werkzeug.test import TestResponse

from pledges.extensions import db
from pledges.schemas import UTCTimestamp
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, eventually, make_key, post_pledge

RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$")
CAMPAIGNS = "/api/v1/campaigns"
STREAM = "/api/v1/campaigns/current/stream"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def popup_campaign(**fields: object) -> dict[str, object]:
    """A campaign open from yesterday to tomorrow: it ends before the default one, so it is `current`."""
    now = datetime.now(UTC)
    body = {
        "slug": "block-party",
        "name": "Block party",
        "city": "Buffalo",
        "timezone": "America/New_York",
        "starts_at": stamp(now - timedelta(days=1)),
        "ends_at": stamp(now + timedelta(days=1)),
    }
    body.update(fields)
    return body


@pytest.fixture
def quick_app(database_url, tmp_path) -> Iterator[Flask]:
    """Seeded, with copies kept a minute (so a stale one would show) and a quick broadcaster."""
    app = make_app(
        database_url, tmp_path, SNAPSHOT_SECONDS=60, LIVE_POLL_SECONDS=0.05, STREAM_HEARTBEAT_SECONDS=0.2
    )
    with app.app_context():
        upgrade()
        seed(goal=1000)
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def admin(seeded_app: Flask) -> dict[str, str]:
    return bearer(make_key(seeded_app, "data-team", scope="admin"))


# 1. `current` and a campaign closed early


def test_a_campaign_closed_early_is_no_longer_current_and_pledges_go_to_the_open_one(quick_app):
    client = quick_app.test_client()
    admin = bearer(make_key(quick_app, "mayor", scope="admin"))
    assert client.post("/api/v1/admin/campaigns", json=popup_campaign(), headers=admin).status_code == 201
    # Read once as `current`, so this process holds copies of it (SNAPSHOT_SECONDS=60).
    assert client.get(f"{CAMPAIGNS}/current").get_json()["slug"] == "block-party"
    assert client.get(f"{CAMPAIGNS}/current/totals").get_json()["campaign"] == "block-party"
    assert post_pledge(client, email="first@example.org").status_code == 201

    closed = client.patch("/api/v1/admin/campaigns/block-party", json={"close": True}, headers=admin)
    assert closed.status_code == 200 and closed.get_json()["status"] == "closed"

    current = client.get(f"{CAMPAIGNS}/current").get_json()
    assert (current["slug"], current["status"]) == ("nno-2027", "open")
    assert client.get(f"{CAMPAIGNS}/current/totals").get_json()["campaign"] == "nno-2027"
    taken = post_pledge(client, email="second@example.org")
    assert taken.status_code == 201, taken.get_json()
    assert client.get("/api/v1/campaigns/block-party/totals").get_json()["total"] == 1
    with open_stream(client) as stream:
        assert '"campaign":"nno-2027"' in next(stream)


def test_the_only_campaign_closed_early_stays_current_and_refuses_pledges_with_409(client, admin):
    client.patch("/api/v1/admin/campaigns/nno-2027", json={"close": True}, headers=admin)
    assert client.get(f"{CAMPAIGNS}/current").get_json()["status"] == "closed"  # the most recent
    refused = post_pledge(client, email="late@example.org")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "campaign_closed"


# 2. Dates outside 2000–2200


@pytest.mark.parametrize(
    "moment",
    ["0999-01-01T00:00:00Z", "1999-12-31T23:59:59Z", "2201-01-01T00:00:00Z", "9999-12-31T23:00:00-05:00"],
)
def test_campaign_dates_outside_2000_to_2200_are_refused_on_create_and_edit(client, admin, moment):
    created = client.post("/api/v1/admin/campaigns", json=popup_campaign(starts_at=moment), headers=admin)
    assert created.status_code == 422 and "starts_at" in created.get_json()["error"]["fields"]
    edited = client.patch("/api/v1/admin/campaigns/nno-2027", json={"ends_at": moment}, headers=admin)
    assert edited.status_code == 422 and "ends_at" in edited.get_json()["error"]["fields"]


def test_campaign_dates_at_the_edges_of_2000_to_2200_are_taken(client, admin):
    body = popup_campaign(starts_at="2000-01-01T00:00:00Z", ends_at="2200-12-31T23:59:59Z")
    created = client.post("/api/v1/admin/campaigns", json=body, headers=admin)
    assert created.status_code == 201, created.get_json()
    assert (created.get_json()["starts_at"], created.get_json()["ends_at"]) == (
        "2000-01-01T00:00:00Z",
        "2200-12-31T23:59:59Z",
    )


def test_admin_search_and_bulk_windows_outside_2000_to_2200_are_refused(client, admin):
    searched = client.get("/api/v1/admin/pledges?since=0999-01-01T00:00:00Z", headers=admin)
    assert searched.status_code == 422 and "since" in searched.get_json()["error"]["fields"]
    window = {
        "since": "2027-08-01T00:00:00Z",
        "until": "2999-01-01T00:00:00Z",
        "reason": "sheet",
        "dry_run": True,
    }
    for action in ("bulk-remove", "bulk-release"):
        body = {**window, "address_hash": "0" * 64}
        refused = client.post(f"/api/v1/admin/pledges/{action}", json=body, headers=admin)
        assert refused.status_code == 422 and "until" in refused.get_json()["error"]["fields"], action


# 3. Timestamps


def test_a_timestamp_is_written_with_a_four_digit_year_whole_seconds_and_z():
    assert UTCTimestamp().serialize("t", {"t": datetime(999, 1, 1, tzinfo=UTC)}) == "0999-01-01T00:00:00Z"
    moment = datetime(2027, 8, 3, 23, 0, 0, 123456, tzinfo=UTC).astimezone(timezone(timedelta(hours=-4)))
    assert UTCTimestamp().serialize("t", {"t": moment}) == "2027-08-03T23:00:00Z"


def test_every_timestamp_the_api_gives_is_rfc3339_utc(client, admin):
    body = popup_campaign(starts_at="2030-08-04T19:00:00.654321-04:00", ends_at="2030-08-05T04:00:00+00:00")
    created = client.post("/api/v1/admin/campaigns", json=body, headers=admin).get_json()
    assert created["starts_at"] == "2030-08-04T23:00:00Z"
    pledged = post_pledge(client, email="stamp@example.org").get_json()
    updated = client.get(f"{CAMPAIGNS}/current/totals").get_json()["updated_at"]
    for value in (created["starts_at"], created["ends_at"], pledged["created_at"], updated):
        assert RFC3339_UTC.match(value), value


def test_the_dashboard_time_element_carries_a_valid_html_datetime(client):
    assert "<time data-updated datetime" not in client.get("/dashboard").get_data(as_text=True)  # none yet
    post_pledge(client, email="time@example.org")
    page = client.get("/dashboard").get_data(as_text=True)
    found = re.search(r'<time data-updated datetime="([^"]*)"', page)
    assert found and RFC3339_UTC.match(found.group(1)), found and found.group(1)
    assert found.group(1) == client.get(f"{CAMPAIGNS}/current/totals").get_json()["updated_at"]


# 4. Vary


def vary(response: TestResponse) -> set[str]:
    return {part.strip().lower() for part in response.headers.get("Vary", "").split(",") if part.strip()}


def test_translated_answers_vary_by_accept_language_and_cookie(client):
    spanish = {"Accept-Language": "es"}
    for path in ("/", "/dashboard", "/api/v1/campaigns/nno-1999", "/api/v1/campaigns/nno-1999/totals"):
        response = client.get(path, headers=spanish)
        assert {"accept-language", "cookie"} <= vary(response), (path, response.headers.get("Vary"))
    refused = client.post(f"{CAMPAIGNS}/current/pledges", json={"kind": "resident"}, headers=spanish)
    assert refused.status_code == 422 and "accept-language" in vary(refused)


def test_reads_in_no_language_do_not_vary_by_it(client):
    for path in ("/totals", "", "/neighborhoods/allentown"):
        response = client.get(f"{CAMPAIGNS}/current{path}", headers={"Accept-Language": "es"})
        assert response.status_code == 200 and "accept-language" not in vary(response), path
    assert "accept-language" not in vary(client.get("/api/v1/neighborhoods"))


# 5 and 7. Caching of /campaigns and /campaigns/{c}; stale-if-error


@pytest.mark.parametrize("path", [CAMPAIGNS, f"{CAMPAIGNS}/current", f"{CAMPAIGNS}/nno-2027"])
def test_campaign_reads_are_cached_like_totals_and_answer_304_to_their_etag(client, path):
    first = client.get(path)
    totals = client.get(f"{CAMPAIGNS}/current/totals")
    assert first.status_code == 200 and first.headers["ETag"]
    assert first.headers["Cache-Control"] == totals.headers["Cache-Control"]
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_cached_public_reads_may_be_served_stale_when_we_fail(client):
    for path in ("/totals", "", "/totals.csv", "/timeseries?interval=hour"):
        cache_control = client.get(f"{CAMPAIGNS}/current{path}").headers["Cache-Control"]
        found = re.search(r"(?:^|,\s*)stale-if-error=(\d+)(?:,|$)", cache_control)
        assert found and int(found.group(1)) >= 3600, (path, cache_control)
        assert (
            re.search(r"max-age=(\d+)", cache_control)
            and int(re.search(r"max-age=(\d+)", cache_control)[1]) <= 10
        )


# 6. Retry-After only when there is something to wait for


def test_answers_that_refuse_nothing_carry_no_retry_after(client):
    for path in ("/api/v1/openapi.json", "/", "/dashboard", "/api/docs", f"{CAMPAIGNS}/current/totals"):
        response = client.get(path)
        assert response.status_code == 200 and "Retry-After" not in response.headers, path


def test_a_page_over_the_default_limit_is_429_with_retry_after_and_the_limit_headers(database_url, tmp_path):
    app = make_app(database_url, tmp_path, RATELIMIT_DEFAULT="1/minute")
    client = app.test_client()
    allowed = client.get("/api/v1/openapi.json")
    assert allowed.status_code == 200 and "Retry-After" not in allowed.headers
    assert allowed.headers["X-RateLimit-Limit"] == "1" and allowed.headers["X-RateLimit-Remaining"] == "0"
    refused = client.get("/api/v1/openapi.json")
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"


# 8. Stream ids and Last-Event-ID


class open_stream:
    """A stream read through the test client: iterating gives its chunks (one event or comment each)."""

    def __init__(self, client: FlaskClient, last_event_id: str | None = None) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        self.response = client.get(STREAM, headers=headers, buffered=False)
        assert self.response.status_code == 200

    def __enter__(self) -> Iterator[str]:
        return (chunk.decode() for chunk in self.response.response)

    def __exit__(self, *exc: object) -> None:
        self.response.close()


def event_id(chunk: str) -> str | None:
    found = re.search(r"^id: (.+)$", chunk, re.MULTILINE)
    return found.group(1) if found else None


def test_each_totals_event_carries_the_totals_version_as_its_id(quick_app):
    client = quick_app.test_client()
    with open_stream(client) as stream:
        first = next(stream)
        assert "event: totals" in first and event_id(first)
    with open_stream(client) as stream:
        assert event_id(next(stream)) == event_id(first)  # stable while nothing changes
    post_pledge(client, email="new@example.org")
    with open_stream(client) as stream:
        after = next(stream)
    assert event_id(after) not in (None, event_id(first))


def test_a_reconnect_holding_the_current_version_gets_no_repeat_but_the_next_change(quick_app):
    client = quick_app.test_client()
    with open_stream(client) as stream:
        held = event_id(next(stream))
    with open_stream(client, last_event_id=held) as stream:
        opening = next(stream)
        assert "event: totals" not in opening and opening.startswith("retry:")
        assert next(stream) == ": heartbeat\n\n"  # waits: nothing has changed
        post_pledge(client, email="change@example.org")
        changed: list[str] = []
        assert eventually(lambda: "event: totals" in (changed.append(next(stream)) or changed[-1]))
    assert event_id(changed[-1]) not in (None, held) and '"total":1' in changed[-1]


def test_a_reconnect_holding_an_older_version_gets_the_totals_at_once(quick_app):
    client = quick_app.test_client()
    with open_stream(client, last_event_id="0.0.0-not-a-version") as stream:
        assert "event: totals" in next(stream)
