"""Group commit (pledges/services/group_commit.py): pledges waiting in one process share a transaction."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from pledges.extensions import db
from pledges.models import Campaign, Neighborhood, NeighborhoodCount, Pledge
from pledges.services import group_commit
from pledges.services.group_commit import GroupCommit
from pledges.services.pledging import NewPledge, _write

from .conftest import BOTH_BACKENDS
from .factories import eventually, recorded_sql


def new_pledge(app: Flask, email: str, neighborhood: str = "allentown", neighborhood_id: int | None = None):
    with app.app_context():
        campaign_id = db.session.scalar(select(Campaign.id))
        found = db.session.scalar(select(Neighborhood.id).where(Neighborhood.slug == neighborhood))
        db.session.remove()
    return NewPledge(
        campaign_id=campaign_id,
        neighborhood_id=neighborhood_id if neighborhood_id is not None else found,
        neighborhood_slug=neighborhood,
        kind="resident",
        email=email,
        email_canonical=email,
        name=None,
        show_name=False,
        address_hash=None,
        intake_key_id=None,
        checked=False,
    )


def stored(app: Flask) -> tuple[list[str], int]:
    with app.app_context():
        emails = sorted(db.session.scalars(select(Pledge.email)))
        counted = db.session.scalar(select(func.coalesce(func.sum(NeighborhoodCount.count), 0)))
        db.session.remove()
    return emails, counted


def submit_in_thread(app: Flask, writer: GroupCommit, item, answers: dict) -> threading.Thread:  # noqa: ANN001
    def run() -> None:
        with app.app_context():
            try:
                answers[item.email] = writer.submit(item)
            except Exception as error:  # noqa: BLE001 - the test looks at what each caller got
                answers[item.email] = error
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def gated(write: Callable, gate: threading.Event, entered: threading.Event) -> Callable:
    """`write`, but the first batch waits at `gate` (so that others queue up behind it)."""
    first = [True]

    def wrapper(items):  # noqa: ANN001, ANN202
        if first[0]:
            first[0] = False
            entered.set()
            assert gate.wait(10)
        return write(items)

    return wrapper


def queue_behind_a_first_batch(app: Flask, writer: GroupCommit, first, others, answers, gate, entered):  # noqa: ANN001
    threads = [submit_in_thread(app, writer, first, answers)]
    assert entered.wait(10)
    threads += [submit_in_thread(app, writer, item, answers) for item in others]
    assert eventually(lambda: len(writer._waiting) == len(others))
    gate.set()
    for thread in threads:
        thread.join(20)
    return threads


@BOTH_BACKENDS
def test_pledges_that_wait_behind_a_transaction_are_written_together_in_the_next(seeded_app):
    gate, entered, answers = threading.Event(), threading.Event(), {}
    writer = GroupCommit(gated(_write, gate, entered), touches=("counts",))
    first = new_pledge(seeded_app, "first@example.org")
    others = [new_pledge(seeded_app, f"queued{n}@example.org", "lovejoy") for n in range(5)]

    queue_behind_a_first_batch(seeded_app, writer, first, others, answers, gate, entered)

    assert (writer.batches, writer.items) == (2, 6)
    assert all(answer[1] == "counted" and answer[0].created for answer in answers.values()), answers
    emails, counted = stored(seeded_app)
    assert emails == sorted(answers) and counted == 6


@BOTH_BACKENDS
def test_a_pledge_the_database_refuses_fails_alone_and_the_rest_of_its_batch_is_written(seeded_app):
    gate, entered, answers = threading.Event(), threading.Event(), {}
    writer = GroupCommit(gated(_write, gate, entered), touches=("counts",))
    first = new_pledge(seeded_app, "first@example.org")
    bad = new_pledge(seeded_app, "bad@example.org", neighborhood_id=999_999)  # no such neighborhood
    others = [new_pledge(seeded_app, "a@example.org"), bad, new_pledge(seeded_app, "b@example.org")]

    queue_behind_a_first_batch(seeded_app, writer, first, others, answers, gate, entered)

    assert isinstance(answers["bad@example.org"], Exception)
    assert {email for email, answer in answers.items() if isinstance(answer, tuple)} == {
        "first@example.org",
        "a@example.org",
        "b@example.org",
    }
    emails, counted = stored(seeded_app)
    assert emails == ["a@example.org", "b@example.org", "first@example.org"] and counted == 3


def test_a_database_failure_fails_the_whole_batch_once_and_writes_nothing(seeded_app):
    calls: list[int] = []

    def unavailable(items):  # noqa: ANN001, ANN202
        calls.append(len(items))
        _write(items)
        raise OperationalError("COMMIT", {}, Exception("disk I/O error"))

    gate, entered, answers = threading.Event(), threading.Event(), {}
    writer = GroupCommit(gated(unavailable, gate, entered), touches=("counts",))
    first = new_pledge(seeded_app, "first@example.org")
    others = [new_pledge(seeded_app, f"queued{n}@example.org") for n in range(3)]

    queue_behind_a_first_batch(seeded_app, writer, first, others, answers, gate, entered)

    assert calls == [1, 3]  # no retry one by one: the database, not a pledge, is at fault
    assert all(isinstance(answer, OperationalError) for answer in answers.values())
    assert stored(seeded_app) == ([], 0)


def test_a_duplicate_within_one_batch_gets_the_first_pledges_receipt(seeded_app):
    with seeded_app.app_context():
        twice = new_pledge(seeded_app, "twice@example.org")
        answers = _write([twice, twice])
        db.session.commit()
    (first, first_status), (again, again_status) = answers
    assert (first_status, again_status) == ("counted", "duplicate")
    assert again.id == first.id and first.created and not again.created
    assert stored(seeded_app) == (["twice@example.org"], 1)


@BOTH_BACKENDS
def test_a_batch_reads_its_addresses_bursts_in_one_statement_and_counts_its_own_pledges_too(seeded_app):
    seeded_app.config["BURST_LIMIT"] = 3
    busy, other = "b" * 64, "c" * 64

    def sent_from(address: str, email: str) -> NewPledge:
        return replace(new_pledge(seeded_app, email), address_hash=address, checked=True)

    earlier = sent_from(busy, "earlier@example.org")
    batch = [sent_from(busy, f"busy{n}@example.org") for n in range(4)]
    batch.insert(2, sent_from(other, "other@example.org"))
    batch.insert(3, batch[1])  # a duplicate is not written, so it is not one more from its address
    with seeded_app.app_context():
        _write([earlier])
        db.session.commit()
        with recorded_sql(seeded_app) as seen:
            answers = _write(batch)
        db.session.commit()

    assert [status for _, status in answers] == [
        "counted",
        "counted",
        "counted",
        "duplicate",
        "review",
        "review",
    ]
    assert sum("count(*)" in sql and "address_hash =" in sql for sql in seen) == 1, seen
    assert stored(seeded_app)[1] == 4  # earlier, busy0, busy1, other


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_pledges_that_arrive_while_another_process_holds_the_write_lock_join_the_waiting_batch(
    seeded_app, database_url
):
    """On SQLite the batch is taken once the lock is held: waiting for it is time to gather."""
    other_process = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # another worker is writing
    writer, answers = GroupCommit(_write, touches=("counts",)), {}
    pledges = [new_pledge(seeded_app, f"waited{n}@example.org") for n in range(4)]
    try:
        threads = [submit_in_thread(seeded_app, writer, pledges[0], answers)]
        time.sleep(0.2)  # the first is now waiting for the lock
        threads += [submit_in_thread(seeded_app, writer, item, answers) for item in pledges[1:]]
        assert eventually(lambda: len(writer._waiting) == 4)
    finally:
        other_process.execute("COMMIT")
        other_process.close()
    for thread in threads:
        thread.join(20)

    assert (writer.batches, writer.items) == (1, 4)
    assert stored(seeded_app) == (sorted(answers), 4)


# --- callers that go away (gevent, as in the gunicorn workers) --------------------------------


class Interrupted(BaseException):
    """What a caller can meet that is not an error of the write: a timeout, its greenlet killed."""


@pytest.fixture
def cooperative(monkeypatch):
    """GroupCommit on gevent's primitives, as in a monkey-patched gunicorn worker, for this test."""
    gevent = pytest.importorskip("gevent")
    from gevent import event, lock

    monkeypatch.setattr(group_commit, "threading", SimpleNamespace(Event=event.Event, Lock=lock.Semaphore))
    monkeypatch.setattr(group_commit, "time", SimpleNamespace(sleep=gevent.sleep))
    return gevent


def spawn_submit(gevent, app: Flask, writer: GroupCommit, item: str):  # noqa: ANN001, ANN201
    def submit() -> object:
        with app.app_context():
            try:
                return writer.submit(item)
            except BaseException as error:  # noqa: BLE001 - the test looks at what each caller got
                return error
            finally:
                db.session.remove()

    return gevent.spawn(submit)


def test_a_caller_that_gives_up_while_waiting_is_not_handed_the_lead(seeded_app, cooperative):
    gevent, gate = cooperative, cooperative.event.Event()

    def write(items):  # noqa: ANN001, ANN202
        if items[0] == "first":
            gate.wait()
        return [f"wrote {item}" for item in items]

    writer = GroupCommit(write, touches=())
    first = spawn_submit(gevent, seeded_app, writer, "first")
    gevent.sleep(0.05)  # leading; its write held at the gate
    quitter = spawn_submit(gevent, seeded_app, writer, "quitter")
    patient = spawn_submit(gevent, seeded_app, writer, "patient")
    gevent.sleep(0.05)
    quitter.kill()  # e.g. a dropped connection: the greenlet is killed while it waits
    gate.set()
    gevent.joinall([first, patient], timeout=5)
    late = spawn_submit(gevent, seeded_app, writer, "late")
    late.join(5)

    assert (first.value, patient.value, late.value) == ("wrote first", "wrote patient", "wrote late")
    assert writer._leader is None and writer._waiting == []


def test_an_interruption_while_a_batch_is_retried_alone_fails_the_rest_of_it_too(seeded_app, cooperative):
    gevent, gate = cooperative, cooperative.event.Event()

    def write(items):  # noqa: ANN001, ANN202
        if items[0] == "first":
            gate.wait()
        elif len(items) > 1:
            raise IntegrityError("INSERT", {}, Exception("one of them is refused"))
        elif items[0] == "x":
            raise Interrupted()
        return [f"wrote {item}" for item in items]

    writer = GroupCommit(write, touches=())
    first = spawn_submit(gevent, seeded_app, writer, "first")
    gevent.sleep(0.05)
    queued = [spawn_submit(gevent, seeded_app, writer, item) for item in ("x", "y", "z")]
    gevent.sleep(0.05)
    gate.set()
    gevent.joinall([first, *queued], timeout=5)

    assert first.value == "wrote first"
    assert [type(g.value) for g in queued] == [Interrupted] * 3, "none left waiting for ever"
    assert writer._leader is None and writer._waiting == []
