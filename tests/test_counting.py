"""Stored counts stay exact; `pledges recount` finds and repairs any drift."""

from __future__ import annotations

import threading

from pledges.database import write_transaction
from pledges.extensions import db
from pledges.models import HourlyCount, NeighborhoodCount, Pledge
from pledges.services.pledging import record_pledge

from .conftest import BOTH_BACKENDS
from .factories import pledge_body, post_pledge, totals


def test_recount_check_passes_when_counts_match(client, runner):
    post_pledge(client)
    post_pledge(client, kind="business", name="Shop", neighborhood="lovejoy")

    result = runner.invoke(args=["pledges", "recount", "--check"])

    assert result.exit_code == 0, result.output
    assert "match" in result.output


def test_recount_check_exits_non_zero_on_drift_and_changes_nothing(client, runner, seeded_app):
    post_pledge(client, neighborhood="lovejoy")
    with seeded_app.app_context(), write_transaction():
        db.session.execute(db.update(NeighborhoodCount).values(count=NeighborhoodCount.count + 5))

    result = runner.invoke(args=["pledges", "recount", "--check"])

    assert result.exit_code == 1
    assert "stored 6, pledges 1" in result.output
    assert totals(client)["total"] == 6


def test_recount_repairs_drift_in_totals_and_timeseries(client, runner, seeded_app):
    post_pledge(client, neighborhood="lovejoy")
    post_pledge(client, neighborhood="lovejoy", kind="business", name="Shop")
    with seeded_app.app_context(), write_transaction():
        db.session.execute(db.delete(NeighborhoodCount).where(NeighborhoodCount.kind == "business"))
        db.session.execute(db.update(HourlyCount).values(count=99))

    repaired = runner.invoke(args=["pledges", "recount"])
    check = runner.invoke(args=["pledges", "recount", "--check"])

    assert repaired.exit_code == 0, repaired.output
    assert "rebuilt" in repaired.output
    assert check.exit_code == 0, check.output
    assert totals(client)["total"] == 2
    points = client.get("/api/v1/campaigns/current/timeseries").get_json()["points"]
    assert points[-1]["cumulative"] == 2


def test_recount_of_an_unknown_campaign_says_so(runner):
    result = runner.invoke(args=["pledges", "recount", "--campaign", "nope"])
    assert result.exit_code != 0
    assert "no campaign" in result.output


def test_only_counted_pledges_are_counted_by_recount(client, runner, seeded_app):
    post_pledge(client)
    with seeded_app.app_context(), write_transaction():
        db.session.execute(db.update(Pledge).values(status="removed"))

    assert runner.invoke(args=["pledges", "recount", "--check"]).exit_code == 1
    runner.invoke(args=["pledges", "recount"])
    assert totals(client)["total"] == 0


@BOTH_BACKENDS
def test_racing_threads_with_one_email_make_one_pledge(seeded_app):
    """The unique (campaign, email) constraint decides a race: one pledge, counted once."""
    body = pledge_body(email="racer@example.org")
    results, errors = [], []
    start = threading.Barrier(8)

    def pledge() -> None:
        with seeded_app.app_context():
            start.wait(timeout=10)
            try:
                results.append(record_pledge("current", dict(body)))
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=pledge) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert len({r.id for r in results}) == 1
    with seeded_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Pledge)) == 1
        assert db.session.scalar(db.select(db.func.sum(NeighborhoodCount.count))) == 1
