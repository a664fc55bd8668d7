"""Fixtures: a fresh app on a fresh database per test, SQLite by default.

With TEST_DATABASE_URL set, tests run on PostgreSQL (each in a schema of its own);
tests parametrized over both backends run on each. Under CI=true a service that
was asked for but cannot be reached fails the run instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pledges import create_app
from pledges.extensions import db, limiter
from pledges.services.seeding import seed

from .mailbox import Inbox
from .servers import free_port

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
SQLITE, POSTGRESQL = "sqlite", "postgresql"
BOTH_BACKENDS = pytest.mark.parametrize("backend", [SQLITE, POSTGRESQL], indirect=True)


def service_missing(message: str) -> None:
    """Skip locally; fail under CI, where every service asked for must be there."""
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service fails the run)")
    pytest.skip(message)


def _postgres_admin_url() -> str:
    url = make_url(TEST_DATABASE_URL)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_available() -> bool:
    if not TEST_DATABASE_URL:
        return False
    engine = create_engine(_postgres_admin_url())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001
        service_missing(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {type(error).__name__}")
    finally:
        engine.dispose()
    return True


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", POSTGRESQL if TEST_DATABASE_URL else SQLITE)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == SQLITE:
        yield f"sqlite:///{tmp_path / 'porchlight.db'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL tests need TEST_DATABASE_URL")
    request.getfixturevalue("postgres_available")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(_postgres_admin_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    if not TEST_REDIS_URL:
        pytest.skip("Redis tests need TEST_REDIS_URL")
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
        # Counters a previous test left behind would start this one part-spent.
        for key in client.scan_iter("LIMITS:LIMITER/porchlight/*"):
            client.delete(key)
    except redis.RedisError as error:
        service_missing(f"Redis at TEST_REDIS_URL is unreachable: {type(error).__name__}")
    return TEST_REDIS_URL


def make_app(database_url: str, tmp_path: Path, **overrides: object) -> Flask:
    settings = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "PLEDGE_RATE_LIMIT": "10000/minute",
        "RATELIMIT_DEFAULT": "10000/minute",
        # Every test request comes from one address: no burst unless a test asks for one.
        "BURST_LIMIT": 100_000,
        # pytest captures logs itself; the JSON log handler is tested on real servers.
        "LOG_FORMAT": "plain",
    }
    settings.update(overrides)
    # flask-limiter takes RATELIMIT_DEFAULT from the first app its one shared instance is given,
    # and keeps it: each test's app gets its own, as a fresh process would.
    limiter.limit_manager.set_default_limits([])
    app = create_app(settings)
    # flask-limiter keeps "storage is down" on its one shared instance, not per app:
    # each test's app starts with healthy storage, as a fresh process would.
    limiter._storage_dead = False
    return app


@pytest.fixture
def empty_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app whose database has nothing in it, not even tables."""
    app = make_app(database_url, tmp_path)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def app(empty_app: Flask) -> Flask:
    """An app on a database migrated to the latest revision, with no rows."""
    with empty_app.app_context():
        upgrade()
    return empty_app


@pytest.fixture
def seeded_app(app: Flask) -> Flask:
    """The migrated app with Buffalo's neighborhoods and the open default campaign."""
    with app.app_context():
        seed(goal=1000)
        db.session.remove()
    return app


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback: (its inbox, its port)."""
    from aiosmtpd.controller import Controller

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def client(seeded_app: Flask) -> FlaskClient:
    return seeded_app.test_client()


@pytest.fixture
def runner(seeded_app: Flask) -> FlaskCliRunner:
    return seeded_app.test_cli_runner()
