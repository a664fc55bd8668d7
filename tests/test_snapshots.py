"""Per-process copies of totals, the current campaign and the neighborhoods (pledges/snapshots.py)."""

from __future__ import annotations

import threading
import time

import pytest

from pledges.extensions import db
from pledges.snapshots import COUNTS, NEIGHBORHOODS, Snapshots

from .conftest import BOTH_BACKENDS, make_app
from .factories import bearer, eventually, make_key, post_pledge, recorded_sql, totals

ADMIN = "/api/v1/admin"


class Builder:
    """A build function that counts its calls and returns a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_a_copy_is_reused_until_it_is_older_than_max_age():
    snapshots, build = Snapshots(max_age=0.2), Builder()
    assert [snapshots.get((COUNTS, "a"), build) for _ in range(5)] == [1] * 5
    time.sleep(0.25)
    assert snapshots.get((COUNTS, "a"), build) == 2


def test_max_age_zero_reads_every_time():
    snapshots, build = Snapshots(max_age=0), Builder()
    assert [snapshots.get((COUNTS, "a"), build) for _ in range(3)] == [1, 2, 3]


def test_forgetting_a_topic_drops_its_copies_and_no_others():
    snapshots, counts, places = Snapshots(max_age=60), Builder(), Builder()
    snapshots.get((COUNTS, "a"), counts), snapshots.get((NEIGHBORHOODS, "ids"), places)
    snapshots.forget([COUNTS])
    assert snapshots.get((COUNTS, "a"), counts) == 2
    assert snapshots.get((NEIGHBORHOODS, "ids"), places) == 1
    snapshots.forget()
    assert snapshots.get((NEIGHBORHOODS, "ids"), places) == 2


@pytest.mark.parametrize("topics", [[COUNTS], None])
def test_a_copy_read_before_a_write_is_not_kept_after_it(topics):
    """A read that began before this process wrote may hold the old value: it must not stay."""
    snapshots = Snapshots(max_age=60)
    values = iter(["read before the write", "read after the write"])

    def build_across_a_write() -> str:
        value = next(values)
        if value == "read before the write":
            snapshots.forget(topics)  # another greenlet commits while this one reads
        return value

    assert snapshots.get((COUNTS, "a"), build_across_a_write) == "read before the write"
    assert snapshots.get((COUNTS, "a"), build_across_a_write) == "read after the write"


def test_while_one_caller_rebuilds_an_expired_copy_the_others_get_the_old_one_at_once():
    snapshots = Snapshots(max_age=0.05)
    snapshots.get((COUNTS, "a"), lambda: "old")
    time.sleep(0.1)
    release, started = threading.Event(), threading.Event()

    def slow_build() -> str:
        started.set()
        release.wait(5)
        return "new"

    rebuilder = threading.Thread(target=snapshots.get, args=((COUNTS, "a"), slow_build))
    rebuilder.start()
    try:
        assert started.wait(5)
        begun = time.monotonic()
        assert snapshots.get((COUNTS, "a"), lambda: "a second rebuild") == "old"
        assert time.monotonic() - begun < 1
    finally:
        release.set()
        rebuilder.join(5)
    assert snapshots.get((COUNTS, "a"), lambda: "a second rebuild") == "new"


def test_a_failed_build_leaves_nothing_behind():
    snapshots = Snapshots(max_age=60)
    for ref in ("no-such-1", "no-such-2"):
        with pytest.raises(LookupError):
            snapshots.get((COUNTS, ref), lambda: (_ for _ in ()).throw(LookupError()))
    assert snapshots._entries == {} and snapshots._building == {}


def test_totals_read_again_within_a_second_cost_no_sql(client, seeded_app):
    first = client.get("/api/v1/campaigns/current/totals")
    with recorded_sql(seeded_app) as seen:
        again = client.get("/api/v1/campaigns/current/totals")
    assert again.status_code == 200 and again.data == first.data
    assert again.headers["ETag"] == first.headers["ETag"]
    assert seen == []


def test_a_pledge_reads_neither_its_campaign_nor_its_neighborhood_again(client, seeded_app):
    assert post_pledge(client).status_code == 201
    with recorded_sql(seeded_app) as seen:
        assert post_pledge(client, neighborhood="lovejoy").status_code == 201
    assert seen, "the pledge wrote nothing"
    assert not [s for s in seen if "from campaigns" in s or "from neighborhoods" in s]


def test_a_process_sees_its_own_pledges_and_campaign_changes_at_once(client, seeded_app):
    admin = bearer(make_key(seeded_app, "Mayor's office", scope="admin"))
    before = totals(client)
    assert post_pledge(client).status_code == 201
    assert totals(client)["total"] == before["total"] + 1

    edited = client.patch(f"{ADMIN}/campaigns/nno-2027", json={"goal": 4321}, headers=admin)
    assert edited.status_code == 200 and totals(client)["goal"] == 4321

    closed = client.patch(
        f"{ADMIN}/campaigns/nno-2027", json={"close": True, "reason": "storm"}, headers=admin
    )
    assert closed.get_json()["status"] == "closed"
    assert post_pledge(client).status_code == 409


@BOTH_BACKENDS
def test_another_instances_pledges_and_closing_reach_this_one_within_snapshot_seconds(
    seeded_app, database_url, tmp_path
):
    """Two app instances on one database: what one writes, the other serves within SNAPSHOT_SECONDS."""
    other = make_app(database_url, tmp_path / "other", SNAPSHOT_SECONDS=0.5)
    here = seeded_app.test_client()
    there = other.test_client()
    try:
        assert post_pledge(here).status_code == 201  # this instance now holds the campaign and totals
        start = totals(here)["total"]
        assert post_pledge(there).status_code == 201
        assert eventually(lambda: totals(here)["total"] == start + 1, seconds=2.0, every=0.05)

        admin = bearer(make_key(other, "Mayor's office", scope="admin"))
        closed = there.patch(
            f"{ADMIN}/campaigns/nno-2027", json={"close": True, "reason": "storm"}, headers=admin
        )
        assert closed.status_code == 200
        assert eventually(lambda: post_pledge(here).status_code == 409, seconds=2.0, every=0.05)
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
