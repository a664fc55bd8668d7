"""PostgreSQL never refuses a pledge for its own reasons: no lock-order cycle, and a retry if one comes.

Two batches that share emails insert them in one order, so neither waits on the other while
holding what the other wants; a transaction PostgreSQL still aborts as a deadlock is run again.
"""

from __future__ import annotations

import contextlib
import logging
import threading

import pytest
from sqlalchemy import event, func, select, text

from pledges.database import retrying_write
from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.pledging import _write

from .conftest import POSTGRESQL
from .factories import eventually
from .test_group_commit import new_pledge

ON_POSTGRESQL = pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)
ADVISORY_WAITS = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")


@ON_POSTGRESQL
def test_a_transaction_postgresql_aborts_as_a_deadlock_is_run_again_and_succeeds(seeded_app, caplog):
    attempts: list[int] = []
    holds_first, holds_second = threading.Event(), threading.Event()

    def the_other_transaction() -> None:
        with seeded_app.app_context(), db.engine.connect() as other, db.engine.connect() as watcher:
            holds_first.wait(10)
            other.execute(text("SELECT pg_advisory_xact_lock(2)"))
            holds_second.set()
            assert eventually(lambda: watcher.execute(ADVISORY_WAITS).scalar() == 1)
            other.execute(text("SELECT pg_advisory_xact_lock(1)"))  # the cycle: one of the two must go
            other.commit()

    def work() -> str:
        attempts.append(len(attempts) + 1)
        db.session.execute(text("SELECT pg_advisory_xact_lock(1)"))
        if len(attempts) == 1:
            holds_first.set()
            holds_second.wait(10)
        db.session.execute(text("SELECT pg_advisory_xact_lock(2)"))
        return "written"

    other = threading.Thread(target=the_other_transaction)
    other.start()
    with caplog.at_level(logging.WARNING, logger="pledges.database"), seeded_app.app_context():
        result = retrying_write(work)
    other.join(10)

    assert result == "written"
    assert attempts == [1, 2]
    assert any("40P01" in record.getMessage() for record in caplog.records)


@ON_POSTGRESQL
def test_two_batches_sharing_emails_in_opposite_orders_never_deadlock(seeded_app, caplog):
    first, second = new_pledge(seeded_app, "ann@example.org"), new_pledge(seeded_app, "bob@example.org")
    after_first_insert = threading.Barrier(2)
    inserts = threading.local()

    def hold_after_the_first_insert(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.startswith("INSERT INTO pledges"):
            inserts.n = getattr(inserts, "n", 0) + 1
            if inserts.n == 1:
                # Both batches hold one row here, unless one is already waiting on the other.
                with contextlib.suppress(threading.BrokenBarrierError):
                    after_first_insert.wait(2)

    answers: dict[str, list] = {}

    def write(name: str, batch: list) -> None:
        with seeded_app.app_context():
            answers[name] = retrying_write(lambda: _write(batch))

    with seeded_app.app_context():
        engine = db.engine
    event.listen(engine, "after_cursor_execute", hold_after_the_first_insert)
    try:
        with caplog.at_level(logging.WARNING, logger="pledges.database"):
            threads = [
                threading.Thread(target=write, args=("one", [first, second])),
                threading.Thread(target=write, args=("other", [second, first])),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
    finally:
        event.remove(engine, "after_cursor_execute", hold_after_the_first_insert)

    assert not [r for r in caplog.records if "write aborted" in r.getMessage()], "a deadlock was retried"
    outcomes = sorted(outcome for batch in answers.values() for _, outcome in batch)
    assert outcomes == ["counted", "counted", "duplicate", "duplicate"]
    with seeded_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Pledge)) == 2
