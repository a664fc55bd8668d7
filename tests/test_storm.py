"""A storm of pledges against real gunicorn workers: repeated emails race their originals.

However the requests interleave across processes, each email is stored once,
answered 201 once, and the stored counts equal the pledge rows.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func

from pledges import create_app
from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.campaigns import find_campaign
from pledges.services.counts import find_drift

from .conftest import BOTH_BACKENDS
from .servers import flask_cli, log_tail, running_server, server_env, server_log_path, settled_totals

WORKERS = 4
CLIENTS = 24
DISTINCT_EMAILS = 320
SENT_TWICE = 40  # emails whose original is raced by one repeat
SENT_THRICE = 8  # … and by two
BARRIER_TIMEOUT = 30.0
REQUEST_TIMEOUT = (5, 60)
PLEDGES_PATH = "/api/v1/campaigns/current/pledges"


@dataclass(frozen=True)
class Attempt:
    email: str  # normalized: what the server stores
    body: dict[str, Any]
    start_together: threading.Barrier | None  # shared by the attempts of one repeated email


@dataclass(frozen=True)
class Outcome:
    attempt: Attempt
    status: int
    body: dict[str, Any]
    started: float  # perf_counter() when sent and answered
    answered: float

    @property
    def milliseconds(self) -> float:
        return (self.answered - self.started) * 1000


def spelled_differently(email: str, variant: int) -> str:
    """The same address as a person might retype it; the API trims and lower-cases."""
    local, domain = email.split("@")
    spellings = [
        email,
        f"  {email.upper()} ",
        f"{local.capitalize()}@{domain.upper()}\t",
        f" {local}@{domain.title()}",
    ]
    return spellings[variant % len(spellings)]


def pledge_body(email: str, neighborhood: str, kind: str, number: int) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "neighborhood": neighborhood, "email": email}
    if kind == "business":
        body["name"] = f"Storm Shop {number}"
        body["show_name"] = number % 2 == 0
    return body


def storm_plan(neighborhoods: list[str], rng: random.Random) -> list[Attempt]:
    """Every email once, some twice or thrice; the copies of one email are adjacent and start together.

    A repeat may name another neighborhood or kind: the first pledge to commit is the
    one counted, so the expected figures follow whichever attempt the server answers 201.
    """
    copies = [3] * SENT_THRICE + [2] * SENT_TWICE + [1] * (DISTINCT_EMAILS - SENT_TWICE - SENT_THRICE)
    rng.shuffle(copies)
    plan: list[Attempt] = []
    for number, count in enumerate(copies):
        email = f"storm.neighbor{number}@porch.example"
        barrier = threading.Barrier(count) if count > 1 else None
        for variant in range(count):
            kind = "business" if rng.random() < 0.25 else "resident"
            body = pledge_body(spelled_differently(email, variant), rng.choice(neighborhoods), kind, number)
            plan.append(Attempt(email, body, barrier))
    return plan


class Clients:
    """One requests.Session per client thread, as separate browsers or apps would hold."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def send(self, attempt: Attempt) -> Outcome:
        if attempt.start_together is not None:
            attempt.start_together.wait(timeout=BARRIER_TIMEOUT)
        started = time.perf_counter()
        response = self.session().post(
            f"{self.base_url}{PLEDGES_PATH}", json=attempt.body, timeout=REQUEST_TIMEOUT
        )
        answered = time.perf_counter()
        try:
            body = response.json()
        except ValueError:
            body = {"unparsed": response.text[:500]}
        return Outcome(attempt, response.status_code, body, started, answered)

    def close(self) -> None:
        for session in self._sessions:
            session.close()


@contextmanager
def server_log_on_failure(tmp_path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        print(f"\n--- gunicorn log (tail) ---\n{log_tail(server_log_path(tmp_path), 120)}")
        raise


def expected_totals(winners: list[Outcome]) -> dict[str, Counter[str]]:
    by_neighborhood: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in winners:
        by_neighborhood[outcome.attempt.body["neighborhood"]][outcome.attempt.body["kind"]] += 1
    return by_neighborhood


def in_flight_together(answers: list[Outcome]) -> bool:
    """Every copy of an email was sent before any of them was answered: they raced."""
    return max(o.started for o in answers) < min(o.answered for o in answers)


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@pytest.mark.slow
@BOTH_BACKENDS
def test_a_storm_of_racing_pledges_stores_each_email_once_and_counts_every_pledge(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    with running_server(database_url, tmp_path, workers=WORKERS) as base_url, server_log_on_failure(tmp_path):
        neighborhoods = requests.get(f"{base_url}/api/v1/neighborhoods", timeout=10).json()["neighborhoods"]
        slugs = [n["slug"] for n in neighborhoods]
        plan = storm_plan(slugs, random.Random(20240806))

        clients = Clients(base_url)
        started = time.perf_counter()
        # Submitted in plan order, so the copies of one email are taken by neighbouring threads at once.
        with ThreadPoolExecutor(max_workers=CLIENTS, thread_name_prefix="client") as pool:
            outcomes = list(pool.map(clients.send, plan))
        elapsed = time.perf_counter() - started
        clients.close()

        statuses = Counter(o.status for o in outcomes)
        by_email: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in outcomes:
            by_email[outcome.attempt.email].append(outcome)
        latencies = [o.milliseconds for o in outcomes]
        repeated = [a for a in by_email.values() if len(a) > 1]
        raced = sum(in_flight_together(a) for a in repeated)
        print(
            f"\nstorm [{backend}]: {len(outcomes)} requests from {CLIENTS} clients to {WORKERS} gunicorn "
            f"workers; {len(by_email)} distinct emails, {len(outcomes) - len(by_email)} repeats "
            f"({len(repeated)} emails repeated, {raced} of them in flight together); "
            f"201s {statuses[201]}, 200s {statuses[200]}, "
            f"other {sum(c for s, c in statuses.items() if s not in (200, 201))}; "
            f"{elapsed:.2f} s, {len(outcomes) / elapsed:.0f} req/s; "
            f"latency p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms"
        )

        failures = [(o.status, o.body) for o in outcomes if o.status not in (200, 201)]
        assert not failures, f"{len(failures)} answers were neither 201 nor 200, e.g. {failures[:5]}"
        assert len(by_email) == DISTINCT_EMAILS
        # The barriers make copies overlap; were most of them serialised, the race would go untested.
        assert raced >= len(repeated) // 2, f"only {raced} of {len(repeated)} repeated emails raced"
        winners = []
        for email, answers in by_email.items():
            created = [o for o in answers if o.status == 201]
            assert len(created) == 1, f"{email}: {len(created)} answers were 201"
            winner = created[0]
            winners.append(winner)
            assert winner.body["neighborhood"] == winner.attempt.body["neighborhood"]
            assert winner.body["kind"] == winner.attempt.body["kind"]
            for other in answers:
                if other is not winner:  # the first pledge's id and status, and nothing else of it
                    assert other.body == {"id": winner.body["id"], "status": "counted", "duplicate": True}

        totals = settled_totals(base_url)
        expected = expected_totals(winners)
        assert totals["total"] == DISTINCT_EMAILS
        assert totals["residents"] == sum(c["resident"] for c in expected.values())
        assert totals["businesses"] == sum(c["business"] for c in expected.values())
        assert {r["slug"] for r in totals["neighborhoods"]} == set(slugs)
        for row in totals["neighborhoods"]:
            sent = expected.get(row["slug"], Counter())
            assert (row["residents"], row["businesses"], row["total"]) == (
                sent["resident"],
                sent["business"],
                sent["resident"] + sent["business"],
            ), row["slug"]

    checker = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t", "INSTANCE_PATH": str(tmp_path / "check")}
    )
    with checker.app_context():
        campaign = find_campaign("current")
        stored_twice = db.session.execute(
            db.select(Pledge.email, func.count())
            .where(Pledge.campaign_id == campaign.id)
            .group_by(Pledge.email)
            .having(func.count() > 1)
        ).all()
        stored = set(db.session.scalars(db.select(Pledge.email).where(Pledge.campaign_id == campaign.id)))
        drift = find_drift(campaign.id)
        db.session.remove()
        db.engine.dispose()
    assert stored_twice == []
    assert stored == set(by_email)
    assert drift == []

    check = flask_cli("pledges", "recount", "--check", env=server_env(database_url, tmp_path))
    assert check.returncode == 0, check.stdout + check.stderr
