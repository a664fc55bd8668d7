"""How Porch Light talks to its database: SQLite tuning, write transactions, upserts."""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeDecorator

from .extensions import db
from .snapshots import forget_snapshots

# Write transactions on SQLite start with BEGIN IMMEDIATE: a deferred transaction
# that reads first cannot upgrade its lock under load and fails "database is locked".
IMMEDIATE = "porchlight_immediate"
LOCK_WAIT_MS = 30_000  # how long a writer waits for SQLite's write lock before giving up


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC and always handed back timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


def configure_engine(engine: Engine) -> None:
    """Tune SQLite connections; PostgreSQL needs nothing here."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so "begin" below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(IMMEDIATE, False):
            _begin_immediate(connection.connection.dbapi_connection)
        else:
            connection.exec_driver_sql("BEGIN")


def _begin_immediate(raw: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another process's write lock in short sleeps.

    SQLite's own busy wait sleeps inside C, which would freeze a whole gevent worker
    (and every stream it holds); time.sleep lets the other greenlets run meanwhile.
    """
    raw.execute("PRAGMA busy_timeout=0")
    try:
        deadline, pause = time.monotonic() + LOCK_WAIT_MS / 1000, 0.0005
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.004)
    finally:
        raw.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")


log = logging.getLogger(__name__)
T = TypeVar("T")
# PostgreSQL aborted the transaction for its own reasons (deadlock_detected, serialization_failure):
# the same work, run again, succeeds.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
WRITE_ATTEMPTS = 5


def is_transient(error: BaseException) -> bool:
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in TRANSIENT_SQLSTATES


def retrying_write(work: Callable[[], T], touches: Collection[str] | None = None) -> T:
    """`work()` in a write transaction, run again (at most WRITE_ATTEMPTS times, with jitter)
    when PostgreSQL aborts it as a deadlock or serialization failure: never the pledger's fault."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with write_transaction(touches=touches):
                return work()
        except DBAPIError as error:
            if attempt == WRITE_ATTEMPTS or not is_transient(error):
                raise
            log.warning("write aborted (%s), attempt %d: retrying", error.orig.sqlstate, attempt)  # type: ignore[union-attr]
            time.sleep(random.uniform(0, 0.005 * 2**attempt))
    raise AssertionError("unreachable")


# One SQLite writer at a time per process: the others wait here, cooperatively under gevent,
# instead of polling the file lock. Re-entrant, so a nested write transaction cannot hang.
_SQLITE_WRITER = threading.RLock()


@contextmanager
def write_transaction(touches: Collection[str] | None = None) -> Iterator[None]:
    """One transaction that commits as a whole or not at all, holding SQLite's write lock from the start.

    `touches` names the snapshot topics it may change (snapshots.py); None, the default, means any.
    """
    session = db.session()
    if session.in_transaction():
        # A read-only transaction left open by the caller would be a deferred one.
        session.commit()
    sqlite = session.get_bind().dialect.name == "sqlite"
    with _SQLITE_WRITER if sqlite else nullcontext():
        session.connection(execution_options={IMMEDIATE: True})
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            # Even a failed commit may have written (PostgreSQL can lose the answer, not the write).
            forget_snapshots(touches)


@contextmanager
def snapshot_read() -> Iterator[None]:
    """Reads that all see one moment of the database, even while pledges keep arriving."""
    session = db.session()
    if session.in_transaction():
        session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    try:
        yield
    finally:
        session.rollback()
