"""Totals, CSV, one neighborhood and the timeseries: exact, cacheable, and never a scan of pledges."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from pledges.database import write_transaction
from pledges.extensions import db
from pledges.models import Campaign, Neighborhood, Pledge
from pledges.services.counts import count_pledge
from pledges.services.seeding import buffalo_neighborhoods
from pledges.services.totals import timeseries

from .factories import neighborhood_row, post_pledge, recorded_sql, totals


def test_totals_list_every_neighborhood_with_zeros_sorted_by_name(client):
    body = totals(client)

    assert list(body) == [
        "campaign",
        "total",
        "residents",
        "businesses",
        "goal",
        "pending",
        "updated_at",
        "neighborhoods",
    ]
    assert body["campaign"] == "nno-2027"
    assert (body["total"], body["residents"], body["businesses"], body["goal"]) == (0, 0, 0, 1000)
    assert body["pending"] == 0
    assert body["updated_at"] is None
    names = [row["name"] for row in body["neighborhoods"]]
    assert sorted(names, key=str.casefold) == names
    assert set(names) == {n.name for n in buffalo_neighborhoods()}
    assert len(names) == 35
    assert all(
        set(row) == {"slug", "name", "residents", "businesses", "total"} for row in body["neighborhoods"]
    )
    assert all(row["total"] == 0 for row in body["neighborhoods"])


def test_totals_add_up_residents_and_businesses_per_neighborhood(client):
    post_pledge(client, neighborhood="kaisertown")
    post_pledge(client, neighborhood="kaisertown")
    post_pledge(client, neighborhood="kaisertown", kind="business", name="Corner Store")
    post_pledge(client, neighborhood="riverside", kind="business", name="Boat Shop")

    body = totals(client)

    assert (body["total"], body["residents"], body["businesses"]) == (4, 2, 2)
    assert neighborhood_row(body, "kaisertown") == {
        "slug": "kaisertown",
        "name": "Kaisertown",
        "residents": 2,
        "businesses": 1,
        "total": 3,
    }
    assert neighborhood_row(body, "riverside")["businesses"] == 1
    assert body["updated_at"].endswith("Z")


def test_totals_carry_an_etag_and_a_short_public_max_age(client):
    response = client.get("/api/v1/campaigns/current/totals")

    assert len(response.headers.getlist("ETag")) == 1 and response.headers["ETag"]
    assert len(response.headers.getlist("Cache-Control")) == 1
    cache = response.cache_control
    assert cache.public and 0 < cache.max_age <= 10


def test_totals_answer_304_to_a_matching_if_none_match_until_a_pledge_arrives(client):
    etag = client.get("/api/v1/campaigns/current/totals").headers["ETag"]

    unchanged = client.get("/api/v1/campaigns/current/totals", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.data == b""

    post_pledge(client)
    changed = client.get("/api/v1/campaigns/current/totals", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_totals_by_slug_and_by_current_agree(client):
    post_pledge(client)
    assert totals(client, "nno-2027") == totals(client, "current")


def test_totals_of_an_unknown_campaign_are_404(client):
    response = client.get("/api/v1/campaigns/nno-1999/totals")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_totals_read_the_pledges_table_only_to_count_the_waiting_ones_by_their_index(client, seeded_app):
    """Totals cost the same at a thousand pledges as at a million: stored counts, and the queue's index."""
    post_pledge(client)
    with recorded_sql(seeded_app) as statements:
        for path in (
            "totals",
            "totals.csv",
            "neighborhoods/allentown",
            "timeseries",
            "timeseries?interval=day",
        ):
            assert client.get(f"/api/v1/campaigns/current/{path}").status_code == 200

    assert statements, "the requests ran no SQL at all"
    reads = {s for s in statements if " pledges" in s}
    assert len(reads) == 1 and "pledges.status = " in reads.pop()
    with seeded_app.app_context():
        if db.engine.dialect.name == "sqlite":
            waiting = "SELECT count(*) FROM pledges WHERE campaign_id = 1 AND status = 'pending'"
            plan = db.session.execute(text(f"EXPLAIN QUERY PLAN {waiting}")).all()
            assert "ix_pledges_pending" in " ".join(str(row) for row in plan)


def test_totals_csv_has_the_contract_header_and_a_row_per_neighborhood(client):
    post_pledge(client, neighborhood="mlk-park", kind="business", name="Jefferson Ave Market")
    post_pledge(client, neighborhood="mlk-park")

    response = client.get("/api/v1/campaigns/current/totals.csv")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["neighborhood_slug", "neighborhood", "residents", "businesses", "total"]
    assert len(rows) == 36
    assert ["mlk-park", "MLK Park", "1", "1", "2"] in rows
    assert response.headers["ETag"]


def test_one_neighborhood_answers_its_row_as_in_totals(client):
    post_pledge(client, neighborhood="fruit-belt")

    response = client.get("/api/v1/campaigns/current/neighborhoods/fruit-belt")

    assert response.status_code == 200
    assert response.get_json() == neighborhood_row(totals(client), "fruit-belt")


def test_an_unknown_neighborhood_is_404(client):
    response = client.get("/api/v1/campaigns/current/neighborhoods/atlantis")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def _add_pledges_at(app, moments: list[tuple[datetime, str]]) -> Campaign:
    """Pledges at given moments, counted the way record_pledge counts them."""
    with app.app_context(), write_transaction():
        campaign = db.session.scalars(db.select(Campaign)).one()
        campaign.starts_at = datetime(2027, 7, 1, tzinfo=UTC)
        neighborhood = db.session.scalars(db.select(Neighborhood)).first()
        for number, (moment, kind) in enumerate(moments):
            db.session.add(
                Pledge(
                    campaign_id=campaign.id,
                    neighborhood_id=neighborhood.id,
                    kind=kind,
                    email=f"t{number}@example.org",
                    created_at=moment,
                )
            )
            count_pledge(campaign.id, neighborhood.id, kind, moment, +1)
    return campaign


def test_hourly_timeseries_fills_gaps_and_accumulates(seeded_app):
    t = datetime(2027, 8, 3, 22, 5, tzinfo=UTC)
    _add_pledges_at(
        seeded_app,
        [(t, "resident"), (t + timedelta(minutes=30), "business"), (t + timedelta(hours=2), "resident")],
    )
    with seeded_app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        series = timeseries(campaign, "hour", now=t + timedelta(hours=3, minutes=10))

    assert series["interval"] == "hour"
    starts = [p["start"] for p in series["points"]]
    assert starts == [datetime(2027, 8, 3, h, tzinfo=UTC) for h in (22, 23)] + [
        datetime(2027, 8, 4, h, tzinfo=UTC) for h in (0, 1)
    ]
    assert [(p["residents"], p["businesses"], p["total"], p["cumulative"]) for p in series["points"]] == [
        (1, 1, 2, 2),
        (0, 0, 0, 2),
        (1, 0, 1, 3),
        (0, 0, 0, 3),
    ]


def test_daily_timeseries_uses_the_campaigns_own_midnight(seeded_app):
    # 23:30 and 03:30 UTC on consecutive dates fall on the same Buffalo day (UTC-4 in August).
    _add_pledges_at(
        seeded_app,
        [
            (datetime(2027, 8, 2, 23, 30, tzinfo=UTC), "resident"),
            (datetime(2027, 8, 3, 3, 30, tzinfo=UTC), "resident"),
            (datetime(2027, 8, 3, 5, 0, tzinfo=UTC), "business"),
        ],
    )
    with seeded_app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        series = timeseries(campaign, "day", now=datetime(2027, 8, 3, 12, tzinfo=UTC))

    assert [(p["start"], p["total"], p["cumulative"]) for p in series["points"]] == [
        (datetime(2027, 8, 2, 4, tzinfo=UTC), 2, 2),
        (datetime(2027, 8, 3, 4, tzinfo=UTC), 1, 3),
    ]


def test_timeseries_over_http_is_utc_with_z_and_cacheable(client):
    post_pledge(client)
    post_pledge(client, kind="business", name="Shop")

    response = client.get("/api/v1/campaigns/current/timeseries?interval=hour")

    assert response.status_code == 200
    body = response.get_json()
    assert body["interval"] == "hour"
    assert body["points"][-1]["cumulative"] == 2
    assert all(p["start"].endswith(":00:00Z") for p in body["points"])
    assert response.headers["ETag"]
    assert client.get("/api/v1/campaigns/current/timeseries").get_json()["interval"] == "hour"


def test_timeseries_with_no_pledges_has_no_points(client):
    assert client.get("/api/v1/campaigns/current/timeseries?interval=day").get_json() == {
        "interval": "day",
        "points": [],
    }


@pytest.mark.parametrize("interval", ["week", "", "HOUR"])
def test_an_unknown_interval_is_422(client, interval):
    response = client.get(f"/api/v1/campaigns/current/timeseries?interval={interval}")
    assert response.status_code == 422
    assert "interval" in response.get_json()["error"]["fields"]
