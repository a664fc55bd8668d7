"""Campaigns and neighborhoods as the contract lists them."""

from __future__ import annotations

from datetime import timedelta

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Campaign

from .factories import bearer, make_key


def add_campaign(app, slug: str, starts: timedelta, ends: timedelta) -> None:
    now = utcnow()
    with app.app_context(), write_transaction():
        db.session.add(
            Campaign(
                slug=slug,
                name=slug.title(),
                city="Buffalo, NY",
                timezone="America/New_York",
                starts_at=now + starts,
                ends_at=now + ends,
                goal=None,
            )
        )


def test_campaigns_are_listed_with_the_contract_fields(client):
    response = client.get("/api/v1/campaigns")

    assert response.status_code == 200
    (campaign,) = response.get_json()["campaigns"]
    assert list(campaign) == ["slug", "name", "city", "starts_at", "ends_at", "goal", "status"]
    assert campaign["slug"] == "nno-2027"
    assert campaign["name"] == "National Night Out 2027"
    assert campaign["city"] == "Buffalo, NY"
    assert campaign["status"] == "open"
    assert campaign["goal"] == 1000
    assert campaign["ends_at"] == "2027-08-04T04:00:00Z"
    assert campaign["starts_at"].endswith("Z")


def test_a_campaign_is_found_by_slug(client):
    response = client.get("/api/v1/campaigns/nno-2027")
    assert response.status_code == 200
    assert response.get_json()["slug"] == "nno-2027"


def test_an_unknown_campaign_is_404_json(client):
    response = client.get("/api/v1/campaigns/nno-1999")
    assert response.status_code == 404
    assert response.get_json() == {
        "error": {"code": "not_found", "message": "There is no campaign 'nno-1999'."}
    }


def test_status_is_upcoming_open_or_closed_by_the_clock(client, seeded_app):
    add_campaign(seeded_app, "past", timedelta(days=-30), timedelta(days=-20))
    add_campaign(seeded_app, "future", timedelta(days=20), timedelta(days=30))

    statuses = {c["slug"]: c["status"] for c in client.get("/api/v1/campaigns").get_json()["campaigns"]}

    assert statuses == {"past": "closed", "future": "upcoming", "nno-2027": "open"}
    assert client.get("/api/v1/campaigns/past").get_json()["goal"] is None


def test_current_is_the_open_campaign_even_when_another_started_later(client, seeded_app):
    add_campaign(seeded_app, "future", timedelta(days=20), timedelta(days=30))
    assert client.get("/api/v1/campaigns/current").get_json()["slug"] == "nno-2027"


def test_current_falls_back_to_the_most_recent_campaign_when_none_is_open(client, seeded_app):
    with seeded_app.app_context(), write_transaction():
        db.session.execute(db.delete(Campaign))
    add_campaign(seeded_app, "older", timedelta(days=-300), timedelta(days=-200))
    add_campaign(seeded_app, "newer", timedelta(days=-30), timedelta(days=-20))

    assert client.get("/api/v1/campaigns/current").get_json()["slug"] == "newer"


def test_current_is_404_when_there_are_no_campaigns(app):
    response = app.test_client().get("/api/v1/campaigns/current")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_neighborhoods_are_slug_and_name_sorted_by_name(client):
    response = client.get("/api/v1/neighborhoods")

    assert response.status_code == 200
    rows = response.get_json()["neighborhoods"]
    assert len(rows) == 35
    assert all(set(row) == {"slug", "name"} for row in rows)
    assert [r["name"] for r in rows] == sorted((r["name"] for r in rows), key=str.casefold)
    assert {"slug": "mlk-park", "name": "MLK Park"} in rows
    assert {"slug": "fillmore-leroy", "name": "Fillmore-Leroy"} in rows


def test_api_responses_are_utf8_json(client):
    response = client.get("/api/v1/campaigns")
    assert response.mimetype == "application/json"


def test_a_goal_must_be_a_positive_number_the_database_can_hold(client, seeded_app):
    admin = bearer(make_key(seeded_app, "mayor", scope="admin"))
    for goal in (0, -5, 10**20):
        refused = client.patch("/api/v1/admin/campaigns/nno-2027", json={"goal": goal}, headers=admin)
        assert refused.status_code == 422 and "goal" in refused.get_json()["error"]["fields"]
    assert (
        client.patch("/api/v1/admin/campaigns/nno-2027", json={"goal": 5000}, headers=admin).status_code
        == 200
    )
