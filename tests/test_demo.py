"""`pledges demo`: synthetic pledges, marked as such, spread out, counted, and removable."""

from __future__ import annotations

from datetime import timedelta

from pledges.database import utcnow
from pledges.extensions import db
from pledges.models import Pledge

from .factories import post_pledge, totals


def test_demo_adds_marked_pledges_spread_over_neighborhoods_kinds_and_days(client, runner, seeded_app):
    started = utcnow()

    result = runner.invoke(args=["pledges", "demo", "--count", "2000"])

    assert result.exit_code == 0, result.output
    body = totals(client)
    assert body["total"] == 2000
    assert body["residents"] > 0 and body["businesses"] > 0
    assert sum(1 for row in body["neighborhoods"] if row["total"]) == 35
    with seeded_app.app_context():
        pledges = list(db.session.scalars(db.select(Pledge)))
    assert all(p.synthetic for p in pledges)
    assert all(started - timedelta(days=3, seconds=5) <= p.created_at <= utcnow() for p in pledges)
    assert (max(p.created_at for p in pledges) - min(p.created_at for p in pledges)) > timedelta(days=2)
    assert runner.invoke(args=["pledges", "recount", "--check"]).exit_code == 0
    days = client.get("/api/v1/campaigns/current/timeseries?interval=day").get_json()["points"]
    assert len(days) >= 3 and days[-1]["cumulative"] == 2000


def test_demo_purge_removes_only_synthetic_pledges_and_their_counts(client, runner, seeded_app):
    real = post_pledge(client, neighborhood="central").get_json()
    runner.invoke(args=["pledges", "demo", "--count", "500"])
    runner.invoke(args=["pledges", "demo", "--count", "250"])
    assert totals(client)["total"] == 751

    result = runner.invoke(args=["pledges", "demo", "--purge"])

    assert result.exit_code == 0, result.output
    assert "750" in result.output
    body = totals(client)
    assert body["total"] == 1
    assert [row["slug"] for row in body["neighborhoods"] if row["total"]] == ["central"]
    with seeded_app.app_context():
        assert [p.public_id for p in db.session.scalars(db.select(Pledge))] == [real["id"]]
    assert runner.invoke(args=["pledges", "recount", "--check"]).exit_code == 0
    points = client.get("/api/v1/campaigns/current/timeseries").get_json()["points"]
    assert points[-1]["cumulative"] == 1


def test_demo_needs_exactly_one_of_count_or_purge(runner):
    assert runner.invoke(args=["pledges", "demo"]).exit_code != 0
    assert runner.invoke(args=["pledges", "demo", "--count", "5", "--purge"]).exit_code != 0
    assert runner.invoke(args=["pledges", "demo", "--count", "0"]).exit_code != 0


def test_demo_without_neighborhoods_says_to_seed_first(app):
    from pledges.database import write_transaction
    from pledges.models import Campaign
    from pledges.services.seeding import DEFAULT_CAMPAIGN, default_campaign_window

    with app.app_context(), write_transaction():
        starts, ends = default_campaign_window(utcnow())
        db.session.add(Campaign(**DEFAULT_CAMPAIGN, starts_at=starts, ends_at=ends))
    result = app.test_cli_runner().invoke(args=["pledges", "demo", "--count", "5"])
    assert result.exit_code != 0
    assert "seed" in result.output
