"""Concurrent writers on several gunicorn workers and instances: the burst limit is exact, none is refused.

One address's burst is counted under its PostgreSQL advisory lock, so however many workers
and instances take its pledges at once, exactly BURST_LIMIT are counted; a write PostgreSQL
aborts as a deadlock or serialization failure is retried before anyone is answered.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pledges.extensions import db
from pledges.models import Pledge

from .conftest import POSTGRESQL, SQLITE, make_app
from .servers import flask_cli, log_tail, running_server, server_env, server_log_path, settled_totals

pytestmark = pytest.mark.slow
PLEDGES = "/api/v1/campaigns/current/pledges"
BURST_LIMIT = 20
BURST_PLEDGES = 60
WORKERS = 2
REQUEST_TIMEOUT = (5, 30)
BARRIER_TIMEOUT = 20.0
# The production worker class, no mail (past the burst a pledge waits for review), no trusted network.
PRODUCTION_LIKE = {
    "WORKER_CLASS": "gevent",
    "SMTP_HOST": "",
    "PLEDGE_CONFIRMATION": "none",
    "TRUSTED_NETWORKS": "",
    "BURST_LIMIT": str(BURST_LIMIT),
    "BURST_WINDOW_MINUTES": "10",
}


@dataclass(frozen=True)
class Answer:
    email: str
    base_url: str
    status: int
    body: dict[str, Any]


def resident(email: str) -> dict[str, Any]:
    return {"kind": "resident", "neighborhood": "lovejoy", "email": email}


# One keep-alive connection per client thread, as wrk or a browser holds it; closed by close_clients().
clients = threading.local()
opened: list[requests.Session] = []


def send(
    base_url: str, body: dict[str, Any], together: threading.Barrier, forwarded_for: str | None = None
) -> Answer:
    """One pledge, sent once every client of `together` is ready."""
    if not hasattr(clients, "session"):
        clients.session = requests.Session()
        opened.append(clients.session)
        # Connected before the barrier: the pledges then reach the workers together.
        clients.session.get(base_url + "/healthz", timeout=REQUEST_TIMEOUT).raise_for_status()
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    together.wait(timeout=BARRIER_TIMEOUT)
    response = clients.session.post(base_url + PLEDGES, json=body, headers=headers, timeout=REQUEST_TIMEOUT)
    try:
        answer = response.json()
    except ValueError:
        answer = {"unparsed": response.text[:300]}
    return Answer(body["email"], base_url, response.status_code, answer)


def close_clients() -> None:
    while opened:
        opened.pop().close()


@contextmanager
def instances(
    database_url: str, tmp_path: Path, count: int, extra_env: dict[str, str]
) -> Iterator[list[str]]:
    """`count` app instances of WORKERS gunicorn workers on one database; their logs shown on failure."""
    homes = [tmp_path / chr(ord("a") + n) for n in range(count)]
    with ExitStack() as stack:
        try:
            urls = []
            for home in homes:
                home.mkdir()
                urls.append(stack.enter_context(running_server(database_url, home, WORKERS, extra_env)))
            stack.callback(close_clients)
            yield urls
        except BaseException:
            for home in homes:
                tail = log_tail(server_log_path(home))
                print(f"\n--- gunicorn log of instance {home.name} (tail) ---\n{tail}")
            raise


def stored_statuses(database_url: str, tmp_path: Path) -> Counter[tuple[str, str | None]]:
    """How many pledge rows are stored with each (status, pending_reason)."""
    app = make_app(database_url, tmp_path)
    with app.app_context():
        rows = db.session.execute(db.select(Pledge.status, Pledge.pending_reason)).all()
        db.session.remove()
        db.engine.dispose()
    return Counter((status, reason) for status, reason in rows)


def recount_is_clean(database_url: str, tmp_path: Path) -> None:
    check = flask_cli("pledges", "recount", "--check", env=server_env(database_url, tmp_path))
    assert check.returncode == 0, check.stdout + check.stderr


def burst_from_one_address(urls: list[str]) -> list[Answer]:
    """BURST_PLEDGES pledges with new emails from 127.0.0.1, shared out over `urls`, all sent at once."""
    run = uuid.uuid4().hex[:8]
    together = threading.Barrier(BURST_PLEDGES)
    with ThreadPoolExecutor(max_workers=BURST_PLEDGES) as pool:
        futures = [
            pool.submit(send, urls[n % len(urls)], resident(f"burst{n}.{run}@example.org"), together)
            for n in range(BURST_PLEDGES)
        ]
        return [future.result() for future in futures]


def assert_exactly_the_limit_counted(answers: list[Answer], urls: list[str]) -> None:
    statuses = Counter(a.status for a in answers)
    told = Counter((a.body.get("status"), a.body.get("pending_reason")) for a in answers)
    print(f"\nburst over {len(urls)} instance(s): statuses {dict(statuses)}, told {dict(told)}")
    assert statuses == {201: BURST_PLEDGES}, [a.body for a in answers if a.status != 201][:5]
    assert sum(1 for a in answers if a.body["status"] == "counted") == BURST_LIMIT, told
    pending = [a for a in answers if a.body["status"] != "counted"]
    assert len(pending) == BURST_PLEDGES - BURST_LIMIT
    assert all(a.body["status"] == "pending" and a.body["pending_reason"] == "review" for a in pending), told
    for base_url in urls:
        totals = settled_totals(base_url)
        assert (totals["total"], totals["pending"]) == (BURST_LIMIT, BURST_PLEDGES - BURST_LIMIT), base_url


@pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)
def test_sixty_pledges_from_one_address_at_once_over_two_postgresql_instances_count_exactly_the_burst_limit(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    shared = PRODUCTION_LIKE | {"RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
    with instances(database_url, tmp_path, 2, shared) as urls:
        answers = burst_from_one_address(urls)
        # Both instances took their share: the count was decided across them, not within one.
        assert {a.base_url for a in answers} == set(urls)
        assert_exactly_the_limit_counted(answers, urls)

    assert stored_statuses(database_url, tmp_path) == {
        ("counted", None): BURST_LIMIT,
        ("pending", "review"): BURST_PLEDGES - BURST_LIMIT,
    }
    recount_is_clean(database_url, tmp_path / "a")


@pytest.mark.parametrize("backend", [SQLITE], indirect=True)
def test_sixty_pledges_from_one_address_at_once_on_two_sqlite_workers_count_exactly_the_burst_limit(
    database_url: str, tmp_path: Path
) -> None:
    with instances(database_url, tmp_path, 1, PRODUCTION_LIKE) as urls:
        assert_exactly_the_limit_counted(burst_from_one_address(urls), urls)

    assert stored_statuses(database_url, tmp_path) == {
        ("counted", None): BURST_LIMIT,
        ("pending", "review"): BURST_PLEDGES - BURST_LIMIT,
    }
    recount_is_clean(database_url, tmp_path / "a")


NEW_EMAILS = 400
RACED_PAIRS = 50  # pairs of them also sent to the other instance at the same moment
RACE_EVERY = 4  # one pair in RACE_EVERY is raced, spread through the run among the others
CLIENTS = 32
NEIGHBORHOODS = ("allentown", "black-rock", "central", "central-park", "ellicott", "lovejoy")


def varied_pledge(number: int, run: str) -> dict[str, Any]:
    """A new pledge for one of a few neighborhoods and kinds: batches share count rows crosswise."""
    body = {"kind": "resident", "neighborhood": NEIGHBORHOODS[number % len(NEIGHBORHOODS)]}
    if number % 3 == 0:
        body |= {"kind": "business", "name": f"Porch Shop {number}"}
    return body | {"email": f"writer{number}.{run}@example.org"}


@pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)
def test_concurrent_writers_on_two_postgresql_instances_are_all_answered_with_a_2xx(
    database_url: str, tmp_path: Path, redis_url: str
) -> None:
    shared = PRODUCTION_LIKE | {
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
        "TRUSTED_PROXIES": "1",
    }
    run = uuid.uuid4().hex[:8]
    with instances(database_url, tmp_path, 2, shared) as (first, second):
        # Each email from an address of its own, so no burst applies. A raced pair of emails goes to
        # both instances, all four copies released together: their batches meet the same rows crosswise.
        plan: list[tuple[str, dict[str, Any], threading.Barrier, str]] = []
        for pair in range(NEW_EMAILS // 2):
            one, two = varied_pledge(2 * pair, run), varied_pledge(2 * pair + 1, run)
            here, there = f"10.0.{pair}.1", f"10.0.{pair}.2"
            if pair % RACE_EVERY == 0 and pair < RACE_EVERY * RACED_PAIRS:
                quad = threading.Barrier(4)
                plan += [(first, one, quad, here), (first, two, quad, there)]
                plan += [(second, two, quad, there), (second, one, quad, here)]
            else:
                solo = threading.Barrier(1)
                plan += [(first, one, solo, here), (second, two, solo, there)]
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            answers = list(pool.map(lambda step: send(*step), plan))

        statuses = Counter(a.status for a in answers)
        retries = sum(
            server_log_path(tmp_path / home).read_text(errors="replace").count("write aborted")
            for home in ("a", "b")
        )
        print(f"\nwriters: {len(answers)} answers {dict(statuses)}; transient aborts retried: {retries}")
        failures = [(a.status, a.body) for a in answers if not 200 <= a.status < 300]
        assert failures == [], f"{len(failures)} of {len(answers)} answers outside 2xx, e.g. {failures[:5]}"
        by_email: dict[str, list[Answer]] = {}
        for answer in answers:
            by_email.setdefault(answer.email, []).append(answer)
        for email, copies in by_email.items():
            created = [a for a in copies if a.status == 201]
            assert len(created) == 1, (email, [(a.status, a.body) for a in copies])
            assert created[0].body["status"] == "counted", created[0].body
            for repeat in (a for a in copies if a.status != 201):
                assert repeat.status == 200
                assert repeat.body == {"id": created[0].body["id"], "status": "counted", "duplicate": True}
        assert sum(1 for copies in by_email.values() if len(copies) == 2) == 2 * RACED_PAIRS
        assert statuses[201] == NEW_EMAILS
        assert statuses[200] == 2 * RACED_PAIRS
        for base_url in (first, second):
            totals = settled_totals(base_url)
            assert (totals["total"], totals["pending"]) == (statuses[201], 0), base_url

    assert stored_statuses(database_url, tmp_path) == {("counted", None): NEW_EMAILS}
    recount_is_clean(database_url, tmp_path / "a")
