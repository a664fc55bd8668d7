"""SQLite is tuned for many writers: WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for writes."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from pledges.database import write_transaction
from pledges.extensions import db
from pledges.models import Pledge

from .conftest import SQLITE

pytestmark = pytest.mark.parametrize("backend", [SQLITE], indirect=True)


def pragma(app, name: str):
    with app.app_context():
        return db.session.execute(text(f"PRAGMA {name}")).scalar()


def test_the_database_is_in_wal_mode_with_a_busy_timeout_and_foreign_keys(app):
    assert pragma(app, "journal_mode") == "wal"
    assert pragma(app, "busy_timeout") >= 5000
    assert pragma(app, "foreign_keys") == 1


def test_a_pledge_for_a_missing_campaign_row_is_refused_by_the_foreign_key(app):
    with app.app_context(), pytest.raises(IntegrityError), write_transaction():
        db.session.add(Pledge(campaign_id=999, neighborhood_id=999, kind="resident", email="a@example.org"))


def test_a_write_transaction_holds_the_write_lock_before_it_writes(app, database_url):
    """BEGIN IMMEDIATE: a deferred transaction that read first could not upgrade its lock under load."""
    path = database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with app.app_context(), write_transaction():
            db.session.execute(text("SELECT 1")).scalar()  # reads only, so far
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once committed
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_reads_outside_a_write_transaction_do_not_take_the_write_lock(app, database_url):
    path = database_url.removeprefix("sqlite:///")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with app.app_context():
            db.session.execute(text("SELECT 1")).scalar()
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            db.session.rollback()
    finally:
        other.close()
