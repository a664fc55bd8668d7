"""Faults, made to happen under real gunicorn workers: what clients are told, and what the database keeps.

The database or Redis stops (a TcpProxy in front of the shared service is cut),
a worker is killed in the middle of a write storm, the SQLite file turns
read-only or its disk fills up. Every answer must be a 201 or a clear 503,
every pledge answered 201 must be stored, and the stored counts must match the
pledges (`pledges recount --check`), with no restart of the server.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from flask_migrate import upgrade
from sqlalchemy import func
from sqlalchemy.engine import make_url

from pledges import create_app
from pledges.extensions import db
from pledges.models import NeighborhoodCount, Pledge
from pledges.services.campaigns import find_campaign
from pledges.services.counts import find_drift
from pledges.services.seeding import seed

from .conftest import BOTH_BACKENDS, POSTGRESQL, SQLITE, make_app
from .outage import TcpProxy, through, upstream
from .servers import (
    flask_cli,
    log_tail,
    serve,
    server_env,
    server_log_path,
    settled_totals,
)

pytestmark = pytest.mark.slow

PLEDGES = "/api/v1/campaigns/current/pledges"
REQUEST_TIMEOUT = (5, 30)
PHASE_TIMEOUT = 30.0  # the longest any one step of a fault may take
POLL_INTERVAL = 0.05
OUTAGE_SECONDS = 2.0
NEIGHBORHOODS = ("allentown", "elmwood-bidwell", "north-park", "kaisertown")
ONLY_POSTGRESQL = pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)
ONLY_SQLITE = pytest.mark.parametrize("backend", [SQLITE], indirect=True)


# --- serving ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def workers(self) -> set[int]:
        return child_pids(self.process.pid)

    def all_workers(self, expected: int, gone: int | None = None) -> set[int]:
        """The worker pids, once there are `expected` of them and `gone` (a killed one) is not among them."""

        def complete() -> set[int] | None:
            pids = self.workers()
            return pids if len(pids) == expected and gone not in pids else None

        return poll_until(complete, f"{expected} gunicorn workers")

    def busiest_worker(self, expected: int) -> int:
        """The worker holding the most client connections: the one whose death cuts requests short."""
        port = int(self.base_url.rsplit(":", 1)[1])
        established = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()  # sl, local address, remote address, state, …, inode (10th)
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(f"socket:[{fields[9]}]")

        def held(pid: int) -> int:
            count = 0
            for fd in Path(f"/proc/{pid}/fd").glob("*"):
                with contextlib.suppress(OSError):  # closed meanwhile
                    count += os.readlink(fd) in established
            return count

        return max(sorted(self.all_workers(expected)), key=held)


def child_pids(parent: int) -> set[int]:
    """Live children of `parent`, from /proc (gunicorn's workers are its master's children)."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid …": comm may hold spaces or parentheses, so split after the last ")".
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        if int(ppid) == parent and state != "Z":
            children.add(int(stat.parent.name))
    return children


def prepare(database_url: str, tmp_path: Path) -> None:
    """Migrate and seed, as running_server does, but in this process: two interpreters fewer to start."""
    app = make_app(database_url, tmp_path)
    with app.app_context():
        upgrade()
        seed(goal=1000)
        db.session.remove()
        db.engine.dispose()


@contextmanager
def gunicorn(
    database_url: str, tmp_path: Path, workers: int = 2, extra_env: Mapping[str, str] | None = None
) -> Iterator[Server]:
    """running_server's gunicorn, on a database already prepared, with the master process at hand."""
    env = server_env(database_url, tmp_path, extra_env)
    try:
        with serve(env, tmp_path, workers) as (base_url, process):
            yield Server(base_url, process)
    except BaseException:
        print(f"\n--- gunicorn log (tail) ---\n{log_tail(server_log_path(tmp_path), 80)}")
        raise


def poll_until(check: Callable[[], Any], what: str, timeout: float = PHASE_TIMEOUT) -> Any:
    """The first truthy result of `check`, tried until `timeout`: for things only polling can see."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_INTERVAL)


# --- clients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    email: str
    status: int | None  # None: the connection broke before an answer came
    body: dict[str, Any]
    retry_after: str | None
    sent: float  # time.monotonic()
    answered: float

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error")
        return error.get("code") if isinstance(error, dict) else None


def pledge_for(email: str, rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "resident", "neighborhood": rng.choice(NEIGHBORHOODS), "email": email}
    if rng.random() < 0.25:
        body.update(kind="business", name=f"Shop {email.split('@')[0]}", show_name=True)
    return body


def send_pledge(
    session: requests.Session,
    server: Server,
    email: str,
    body: dict[str, Any],
    timeout: tuple[float, float] = REQUEST_TIMEOUT,
) -> Answer:
    sent = time.monotonic()
    try:
        response = session.post(server.url(PLEDGES), json=body, timeout=timeout)
    except requests.RequestException:
        return Answer(email, None, {}, None, sent, time.monotonic())
    try:
        payload = response.json()
    except ValueError:
        payload = {"unparsed": response.text[:300]}
    return Answer(
        email, response.status_code, payload, response.headers.get("Retry-After"), sent, time.monotonic()
    )


class Pledger:
    """One client sending pledges one at a time, each with a fresh email; every answer kept."""

    def __init__(self, server: Server, label: str) -> None:
        self.server = server
        self.label = label
        self.session = requests.Session()
        self.rng = random.Random(label)
        self.answers: list[Answer] = []

    def __enter__(self) -> Pledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.session.close()

    def pledge(self) -> Answer:
        email = f"{self.label}.{len(self.answers)}@porch.example"
        answer = send_pledge(self.session, self.server, email, pledge_for(email, self.rng))
        self.answers.append(answer)
        return answer

    def statuses(self, pledges: int) -> list[int | None]:
        return [self.pledge().status for _ in range(pledges)]


class PledgeLoad:
    """Client threads posting pledges, each with a fresh email, until stopped or `per_client` are sent.

    With `resend_broken`, a pledge whose connection broke is sent again with the same
    email, as a careful client would: the API answers a repeat with the first pledge.
    """

    MAX_SENDS = 5

    def __init__(
        self,
        server: Server,
        clients: int,
        per_client: int | None = None,
        resend_broken: bool = False,
        label: str = "fault",
    ) -> None:
        self.server = server
        self.clients = clients
        self.per_client = per_client
        self.resend_broken = resend_broken
        self.label = label
        self.answers: list[Answer] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._running = 0

    def __enter__(self) -> PledgeLoad:
        self._running = self.clients
        for number in range(self.clients):
            thread = threading.Thread(
                target=self._client, args=(number,), name=f"client-{number}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT[0] + REQUEST_TIMEOUT[1] + 5)

    def wait_for(
        self, condition: Callable[[list[Answer]], bool], what: str, timeout: float = PHASE_TIMEOUT
    ) -> None:
        """Block until `condition(answers)` holds; fail if the clients finish or `timeout` passes first."""
        with self._changed:
            self._changed.wait_for(lambda: condition(self.answers) or self._running == 0, timeout)
            if not condition(self.answers):
                ended = "the clients finished" if self._running == 0 else f"{timeout:.0f} s passed"
                raise AssertionError(f"{ended} before {what}; {len(self.answers)} answers so far")

    def finish(self, timeout: float) -> None:
        """Wait for every client to send all its pledges."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._running == 0, timeout):
                raise AssertionError(f"the clients did not finish within {timeout:.0f} s")

    def _client(self, number: int) -> None:
        rng = random.Random(number)
        session = requests.Session()
        try:
            sent = 0
            while not self._stop.is_set() and (self.per_client is None or sent < self.per_client):
                email = f"{self.label}.{number}.{sent}@porch.example"
                body = pledge_for(email, rng)
                for _ in range(self.MAX_SENDS):
                    answer = send_pledge(session, self.server, email, body)
                    with self._changed:
                        self.answers.append(answer)
                        self._changed.notify_all()
                    if answer.status is not None or not self.resend_broken:
                        break
                sent += 1
        finally:
            session.close()
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


def count(answers: list[Answer], status: int | None, sent_after: float = 0.0) -> int:
    return sum(a.status == status and a.sent >= sent_after for a in answers)


def assert_unavailable(answer: Answer) -> None:
    assert answer.status == 503, answer
    assert answer.error_code == "unavailable", answer.body
    assert answer.retry_after, f"a 503 without Retry-After: {answer}"


# --- what the database holds -----------------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    emails: set[str]
    counted_pledges: int
    stored_count: int  # the sum of neighborhood_counts: the total everyone sees
    drift: list[Any]


def stored_pledges(database_url: str, tmp_path: Path) -> Stored:
    checker = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "t", "INSTANCE_PATH": str(tmp_path / "check")}
    )
    with checker.app_context():
        campaign = find_campaign("current")
        emails = Counter(db.session.scalars(db.select(Pledge.email).where(Pledge.campaign_id == campaign.id)))
        counted = db.session.scalar(
            db.select(func.count()).where(Pledge.campaign_id == campaign.id, Pledge.status == "counted")
        )
        total = db.session.scalar(
            db.select(func.coalesce(func.sum(NeighborhoodCount.count), 0)).where(
                NeighborhoodCount.campaign_id == campaign.id
            )
        )
        drift = find_drift(campaign.id)
        db.session.remove()
        db.engine.dispose()
    assert max(emails.values(), default=1) == 1, "an email is stored twice"
    return Stored(set(emails), counted, total, drift)


def assert_recount_finds_no_drift(database_url: str, tmp_path: Path) -> None:
    check = flask_cli("pledges", "recount", "--check", env=server_env(database_url, tmp_path), timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def assert_consistent(database_url: str, tmp_path: Path, answers: list[Answer]) -> Stored:
    """Every 201 is stored, nothing unasked-for is, and the counts match the pledges."""
    stored = stored_pledges(database_url, tmp_path)
    created = {a.email for a in answers if a.status == 201}
    assert created - stored.emails == set(), "pledges answered 201 are missing"
    assert stored.emails - {a.email for a in answers} == set(), "pledges no one sent are stored"
    assert stored.drift == []
    assert stored.stored_count == stored.counted_pledges
    assert_recount_finds_no_drift(database_url, tmp_path)
    return stored


def sqlite_path(database_url: str) -> Path:
    return Path(make_url(database_url).database or "")


def integrity(database_url: str) -> str:
    with closing(sqlite3.connect(sqlite_path(database_url))) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


# --- 1. the database stops -------------------------------------------------------------------


@ONLY_POSTGRESQL
def test_when_the_database_stops_pledges_get_503_and_the_same_server_recovers_when_it_returns(
    database_url: str, tmp_path: Path
) -> None:
    prepare(database_url, tmp_path)
    with TcpProxy(*upstream(database_url, 5432)) as proxy:
        proxied = through(proxy, database_url)
        with gunicorn(proxied, tmp_path) as server, PledgeLoad(server, clients=6, label="outage") as load:
            load.wait_for(lambda answers: count(answers, 201) >= 30, "30 pledges before the outage")

            proxy.cut()
            cut_at = time.monotonic()
            # An outage of some seconds, not one blip: 503s keep coming, each one promptly.
            load.wait_for(
                lambda answers: count(answers, 503, sent_after=cut_at + OUTAGE_SECONDS) >= 5,
                f"503s {OUTAGE_SECONDS:.0f} s into the outage",
            )
            ready = requests.get(server.url("/readyz"), timeout=REQUEST_TIMEOUT)
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"] == "unavailable"
            assert ready.headers["Retry-After"]

            restored_at = time.monotonic()
            proxy.restore()
            load.wait_for(
                lambda answers: count(answers, 201, sent_after=restored_at) >= 30,
                "30 pledges after the outage",
            )
            ready = requests.get(server.url("/readyz"), timeout=REQUEST_TIMEOUT)
            assert (ready.status_code, ready.json()["checks"]) == (200, {"database": "ok"})
        answers = list(load.answers)

    statuses = Counter(a.status for a in answers)
    during = [a for a in answers if a.sent >= cut_at and a.answered <= restored_at]
    after = [a for a in answers if a.sent >= restored_at + 0.001]
    print(
        f"\ndatabase outage [postgresql]: {len(answers)} pledges sent, {dict(statuses)}; "
        f"{len(during)} sent and answered during the outage, {len(after)} after it"
    )
    assert set(statuses) <= {201, 503}, f"answers other than 201 or 503: {statuses}"
    assert during and all(a.status == 503 for a in during)
    for answer in answers:
        if answer.status == 503:
            assert_unavailable(answer)
    assert after and all(a.status == 201 for a in after), Counter(a.status for a in after)
    stored = assert_consistent(database_url, tmp_path, answers)
    # A commit whose answer was lost with the connection: stored, though the client was told 503.
    committed_anyway = {a.email for a in answers if a.status == 503} & stored.emails
    print(f"stored {len(stored.emails)}; of the 503s, {len(committed_anyway)} were committed all the same")


HUNG_DATABASE_WAIT = 8.0


def test_when_the_database_hangs_pledges_get_503_within_seconds(tmp_path: Path) -> None:
    # A listener that never accepts: connections are made, and then nothing ever answers.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"postgresql+psycopg://postgres@127.0.0.1:{hung.getsockname()[1]}/porchlight"
        with gunicorn(url, tmp_path) as server, requests.Session() as session:
            email = "hung@porch.example"
            body = pledge_for(email, random.Random(1))
            answer = send_pledge(session, server, email, body, timeout=(5, HUNG_DATABASE_WAIT))
            hung.close()  # the waiting connects fail now, so the workers stop without their grace period

    assert answer.status is not None, f"no answer within {HUNG_DATABASE_WAIT:.0f} s"
    assert_unavailable(answer)


# --- 2. Redis stops --------------------------------------------------------------------------


@pytest.fixture
def limiter_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own in the shared Redis, its counters removed afterwards."""
    prefix = f"faults-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    for key in client.scan_iter(f"LIMITS:LIMITER/{prefix}/*"):
        client.delete(key)


def limiter_counters(client: redis.Redis, prefix: str) -> dict[str, int]:
    return {
        key.decode(): int(client.get(key) or 0)
        for key in client.scan_iter(f"LIMITS:LIMITER/{prefix}/*")
        if client.type(key) == b"string"
    }


@ONLY_SQLITE
def test_when_redis_stops_pledges_keep_flowing_and_the_limit_holds_again_when_it_returns(
    database_url: str, tmp_path: Path, redis_url: str, limiter_prefix: str
) -> None:
    limit = 12
    direct = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    prepare(database_url, tmp_path)
    with TcpProxy(*upstream(redis_url, 6379)) as proxy:
        env = {
            "RATELIMIT_STORAGE_URI": through(proxy, redis_url),
            "RATELIMIT_KEY_PREFIX": limiter_prefix,
            "PLEDGE_RATE_LIMIT": f"{limit}/hour",
        }
        # One worker: its limiter alone decides when Redis is back, so the counts below are exact.
        with (
            gunicorn(database_url, tmp_path, workers=1, extra_env=env) as server,
            Pledger(server, "redis") as client,
        ):
            before = client.statuses(3)
            counters = limiter_counters(direct, limiter_prefix)
            pledge_key = next(key for key in counters if "/pledge/" in key)
            assert counters[pledge_key] == 3, counters

            proxy.cut()
            during = [client.pledge() for _ in range(5)]
            ready = requests.get(server.url("/readyz"), timeout=REQUEST_TIMEOUT)
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": "ok", "rate_limit_storage": "unavailable"}

            proxy.restore()
            # The limiter looks for Redis again with a backoff; reads (unlimited here) show when it has.
            counters = limiter_counters(direct, limiter_prefix)
            poll_until(
                lambda: (
                    client.session.get(
                        server.url("/api/v1/campaigns/current/totals"), timeout=REQUEST_TIMEOUT
                    ).ok
                    and limiter_counters(direct, limiter_prefix) != counters
                ),
                "the limiter to count in Redis again",
            )
            recovered_at = time.monotonic()
            after = client.statuses(limit - 3 + 1)
            final_count = limiter_counters(direct, limiter_prefix)[pledge_key]
        assert proxy.accepted > 0

    slowest = max(a.answered - a.sent for a in during)
    print(
        f"\nredis outage: before {before}, during {[a.status for a in during]} "
        f"(slowest {slowest * 1000:.0f} ms); Redis counted again "
        f"{recovered_at - during[-1].answered:.1f} s after the outage's last pledge; after {after}"
    )
    assert before == [201] * 3
    assert [a.status for a in during] == [201] * 5
    # Within the hour's limit, counted in Redis from where it stood before the outage.
    assert after == [201] * (limit - 3) + [429]
    assert final_count >= limit, "the limit was counted in Redis"
    assert_consistent(database_url, tmp_path, client.answers)


# --- 3. a worker is killed during a write storm ----------------------------------------------

STORM_WORKERS = 3
STORM_CLIENTS = 16
STORM_PER_CLIENT = 60
KILLS = 2


@BOTH_BACKENDS
def test_a_worker_killed_during_a_write_storm_loses_no_answered_pledge_and_counts_none_twice(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    prepare(database_url, tmp_path)
    planned = STORM_CLIENTS * STORM_PER_CLIENT
    with gunicorn(database_url, tmp_path, workers=STORM_WORKERS) as server:
        started = time.monotonic()
        with PledgeLoad(server, STORM_CLIENTS, STORM_PER_CLIENT, resend_broken=True, label="storm") as load:
            for kill in range(1, KILLS + 1):
                load.wait_for(lambda answers, k=kill: len(answers) >= planned * k // (KILLS + 1), "the storm")
                victim = server.busiest_worker(STORM_WORKERS)
                os.kill(victim, signal.SIGKILL)
                # The master forks a replacement; the next kill waits for it, so there are always workers.
                server.all_workers(STORM_WORKERS, gone=victim)
            load.finish(timeout=120)
        elapsed = time.monotonic() - started
        answers = list(load.answers)
        totals = settled_totals(server.url(""))

    by_email: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        by_email[answer.email].append(answer)
    broken = [a for a in answers if a.status is None]
    statuses = Counter(a.status for a in answers)
    print(
        f"\nstorm with SIGKILL [{backend}]: {planned} pledges from {STORM_CLIENTS} clients to "
        f"{STORM_WORKERS} workers, {KILLS} killed; {len(broken)} connections broken and resent; "
        f"answers {dict(statuses)}; "
        f"{elapsed:.1f} s, {len(answers) / elapsed:.0f} req/s"
    )
    assert len(by_email) == planned
    assert broken, "no request was in flight when the workers were killed: the kill tested nothing"
    for email, tries in by_email.items():
        final = tries[-1]
        assert final.status in (200, 201), f"{email}: {[(a.status, a.body) for a in tries]}"
        assert sum(a.status == 201 for a in tries) <= 1, f"{email} was answered 201 twice"
        if final.status == 200:
            # The first pledge of an email already stored: only after a resend.
            assert tries[0].status is None, f"{email}: 200 without a broken send first"
    stored = assert_consistent(database_url, tmp_path, answers)
    assert stored.emails == set(by_email)
    assert totals["total"] == stored.stored_count == planned
    if backend == SQLITE:
        assert integrity(database_url) == "ok"


# --- 4. SQLite read-only, SQLite disk full ---------------------------------------------------


def csrf_form(session: requests.Session, server: Server) -> str:
    page = session.get(server.url("/"), timeout=REQUEST_TIMEOUT)
    assert page.status_code == 200
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def assert_form_pledge_gets_a_friendly_503(session: requests.Session, server: Server) -> None:
    token = csrf_form(session, server)
    form = {
        "csrf_token": token,
        "kind": "resident",
        "neighborhood": "allentown",
        "email": "form@porch.example",
    }
    page = session.post(server.url("/"), data=form, timeout=REQUEST_TIMEOUT, allow_redirects=False)
    assert page.status_code == 503
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["Retry-After"]
    assert "Porch Light is briefly unavailable" in page.text
    assert "Traceback" not in page.text


def chattr(flag: str, paths: list[Path]) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True, timeout=10)


@pytest.fixture
def immutable() -> Iterator[Callable[[list[Path], bool], None]]:
    """Make files immutable and mutable again (root ignores permissions, but not this)."""
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("making a file read-only for root needs chattr, as root")
    frozen: set[Path] = set()

    def freeze(paths: list[Path], on: bool) -> None:
        chattr("+i" if on else "-i", paths)
        (frozen.update if on else frozen.difference_update)(paths)

    try:
        yield freeze
    finally:
        if left := [p for p in frozen if p.exists()]:
            chattr("-i", left)


@ONLY_SQLITE
def test_when_the_sqlite_files_turn_read_only_pledges_get_503_and_nothing_is_corrupted(
    database_url: str, tmp_path: Path, immutable: Callable[[list[Path], bool], None]
) -> None:
    prepare(database_url, tmp_path)
    path = sqlite_path(database_url)
    with gunicorn(database_url, tmp_path) as server, Pledger(server, "readonly") as client:
        assert client.statuses(4) == [201] * 4
        # Not the -shm: it is mapped into memory, and a write to an immutable mapping is a SIGBUS.
        files = [path, path.with_name(path.name + "-wal")]
        immutable(files, True)

        for _ in range(4):
            assert_unavailable(client.pledge())
        assert_form_pledge_gets_a_friendly_503(client.session, server)
        assert settled_totals(server.url(""), client.session)["total"] == 4, "reads are still served"

        immutable(files, False)
        assert client.statuses(4) == [201] * 4

    assert integrity(database_url) == "ok"
    stored = assert_consistent(database_url, tmp_path, client.answers)
    assert len(stored.emails) == 8


@ONLY_SQLITE
def test_when_sqlite_is_opened_read_only_pledges_get_503(database_url: str, tmp_path: Path) -> None:
    prepare(database_url, tmp_path)
    read_only = f"sqlite:///file:{sqlite_path(database_url)}?mode=ro&uri=true"
    with gunicorn(read_only, tmp_path) as server, Pledger(server, "opened-read-only") as client:
        assert_unavailable(client.pledge())
        assert_form_pledge_gets_a_friendly_503(client.session, server)
        totals = client.session.get(server.url("/api/v1/campaigns/current/totals"), timeout=REQUEST_TIMEOUT)
        assert totals.status_code == 200, "reads are still served"

    assert integrity(database_url) == "ok"
    assert stored_pledges(database_url, tmp_path).emails == set()
    assert_recount_finds_no_drift(database_url, tmp_path)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own, to fill up."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a disk to fill up needs mounting a tmpfs, as root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        if subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=10).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mountpoint)], capture_output=True, timeout=10)


def fill_up(directory: Path) -> Path:
    """A file that takes every free byte of `directory`'s filesystem."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1 << 9, 1):
            block = b"\0" * chunk
            try:
                while True:
                    f.write(block)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
    return filler


def test_when_the_sqlite_disk_is_full_pledges_get_503_and_nothing_is_corrupted(
    tmp_path: Path, small_disk: Path
) -> None:
    database_url = f"sqlite:///{small_disk / 'porchlight.db'}"
    prepare(database_url, tmp_path)
    with gunicorn(database_url, tmp_path) as server, Pledger(server, "full") as client:
        assert client.statuses(4) == [201] * 4
        filler = fill_up(small_disk)

        # SQLite may still have room in pages it already holds; it runs out within a few pledges.
        refused = next((a for a in (client.pledge() for _ in range(200)) if a.status != 201), None)
        assert refused is not None, "200 pledges fit on a full disk"
        assert_unavailable(refused)
        for _ in range(3):
            assert_unavailable(client.pledge())
        assert_form_pledge_gets_a_friendly_503(client.session, server)

        filler.unlink()
        assert client.statuses(4) == [201] * 4

    statuses = Counter(a.status for a in client.answers)
    print(f"\ndisk full [sqlite]: {dict(statuses)}")
    assert set(statuses) <= {201, 503}
    assert integrity(database_url) == "ok"
    assert_consistent(database_url, tmp_path, client.answers)
