"""What the benchmarks share: a fresh database, the app's own CLI, a real gunicorn, and the arithmetic.

Everything runs on this machine against 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "bench" / "out"
# The venv the benchmark runs in: `.venv/bin/python bench/…` uses `.venv/bin/flask` and `.venv/bin/gunicorn`.
BIN = Path(sys.executable).parent
# Limits no benchmark reaches, so that it measures the app rather than its 429s.
UNLIMITED = "1000000/minute"
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0
SQLITE, POSTGRESQL = "sqlite", "postgresql"
# What the printed commands ran with (SECRET_KEY is set too, but never printed).
SHOWN_SETTINGS = (
    "DATABASE_URL",
    "INSTANCE_PATH",
    "API_RATE_LIMIT",
    "PLEDGE_RATE_LIMIT",
    "API_KEY_RATE_LIMIT",
    "RATELIMIT_STORAGE_URI",
)


class BenchError(RuntimeError):
    """A step of a benchmark failed: the figures would mean nothing."""


@dataclass
class Target:
    """One fresh database, and the environment the app's CLI and gunicorn see it through."""

    backend: str
    workdir: Path
    env: dict[str, str]
    schema: str | None = None
    admin_url: str | None = None
    commands: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"PostgreSQL (schema {self.schema})" if self.schema else "SQLite (instance/porchlight.db)"

    def settings(self) -> str:
        """The environment the benchmark sets for the app, as a shell prefix (password hidden)."""
        shown = {k: self.env[k] for k in SHOWN_SETTINGS if k in self.env}
        if "DATABASE_URL" in shown:
            shown["DATABASE_URL"] = hidden_password(shown["DATABASE_URL"])
        return " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items()) + " SECRET_KEY=…"

    def flask(self, *args: str, timeout: float = 600) -> Run:
        """`flask --app wsgi ARGS`, timed from process start to exit; a failure stops the benchmark."""
        return self.run([str(BIN / "flask"), "--app", "wsgi", *args], timeout=timeout)

    def run(self, argv: Sequence[str], timeout: float = 600) -> Run:
        self.commands.append(shlex.join([_short(a) for a in argv]))
        cpu_before = _children_cpu()
        started = time.perf_counter()
        done = subprocess.run(
            list(argv), cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        seconds = time.perf_counter() - started
        cpu_seconds = _children_cpu() - cpu_before
        if done.returncode != 0:
            raise BenchError(
                f"{shlex.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
            )
        return Run(stdout=done.stdout.strip(), seconds=seconds, cpu_seconds=cpu_seconds)

    def database_bytes(self) -> int:
        """On-disk size of the pledges and their indexes (PostgreSQL) or of the whole file (SQLite)."""
        if self.backend == SQLITE:
            db_file = self.workdir / "instance" / "porchlight.db"
            return sum(p.stat().st_size for p in (db_file, Path(f"{db_file}-wal")) if p.exists())
        engine = create_engine(self.admin_url or "")
        try:
            with engine.connect() as conn:
                return int(
                    conn.execute(
                        text("SELECT pg_total_relation_size(:table)"), {"table": f'"{self.schema}".pledges'}
                    ).scalar_one()
                )
        finally:
            engine.dispose()


@dataclass(frozen=True)
class Run:
    stdout: str
    seconds: float
    # User + system CPU of the command's process: what the machine's other load cannot inflate
    # (except through caches); a database server's own work is not in it.
    cpu_seconds: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _short(arg: str) -> str:
    """Commands as printed: the venv's binaries relative to the repository."""
    try:
        return str(Path(arg).relative_to(REPO_ROOT))
    except ValueError:
        return arg


def _postgres_admin_url(database_url: str) -> str:
    url = make_url(database_url)
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextmanager
def fresh_database(database_url: str | None) -> Iterator[Target]:
    """A temp instance folder with an empty database: SQLite in it, or a new PostgreSQL schema.

    The schema is dropped and the folder removed afterwards, whatever happened.
    """
    workdir = Path(tempfile.mkdtemp(prefix="porchlight-bench-"))
    env = dict(os.environ)
    env.update(
        {
            "INSTANCE_PATH": str(workdir / "instance"),
            "SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "API_RATE_LIMIT": UNLIMITED,
            "PLEDGE_RATE_LIMIT": UNLIMITED,
            "API_KEY_RATE_LIMIT": UNLIMITED,
            "RATELIMIT_STORAGE_URI": "memory://",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DATABASE_URL", None)
    if database_url is None:
        try:
            yield Target(SQLITE, workdir, env)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    admin_url = _postgres_admin_url(database_url)
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["DATABASE_URL"] = (
            make_url(admin_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
        yield Target(POSTGRESQL, workdir, env, schema=schema, admin_url=admin_url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
        shutil.rmtree(workdir, ignore_errors=True)


def prepare(target: Target) -> None:
    """Migrate and seed, as `make run` does."""
    target.flask("db", "upgrade")
    target.flask("pledges", "seed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base_url: str
    # The worker class gunicorn reports (gunicorn.conf.py in the repository may choose it).
    worker: str
    # The gunicorn master: its children are the workers (see worker_pids), for py-spy and /proc.
    pid: int = 0


@contextmanager
def gunicorn(target: Target, workers: int = 2) -> Iterator[Server]:
    """gunicorn serving the target's database on a free local port, in a process group of its own.

    It runs in the repository, so it reads gunicorn.conf.py there as `make run` does; the
    whole group is stopped afterwards (SIGTERM, then SIGKILL).
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"]
    target.commands.append(shlex.join([_short(a) for a in argv]))
    log = target.workdir / f"gunicorn-{port}.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=target.env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, base_url, log)
        match = re.search(r"Using worker: (\S+)", log.read_text(errors="replace"))
        yield Server(base_url, match.group(1) if match else "unknown", process.pid)
    finally:
        _stop(process)


def worker_pids(master: int) -> list[int]:
    """The processes a gunicorn master has forked: its workers."""
    found: list[int] = []
    for task in Path(f"/proc/{master}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(found)


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        try:
            code = process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise BenchError(f"gunicorn exited {code} before answering /healthz:\n{log.read_text()[-3000:]}")
    raise BenchError(f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=SHUTDOWN_TIMEOUT)
    except ProcessLookupError:
        process.wait(timeout=SHUTDOWN_TIMEOUT)


def get_ok(session: requests.Session, url: str) -> requests.Response:
    response = session.get(url, timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {url} answered {response.status_code}: {response.text[:500]}")
    return response


def timed_blocks(
    session: requests.Session, urls: dict[str, str], requests_each: int, block: int
) -> dict[str, list[float]]:
    """`requests_each` sequential GETs per URL, in alternating blocks of `block`, latencies in ms.

    Alternating blocks (and swapping which URL leads each round) spread the machine's
    noise evenly over the URLs being compared.
    """
    samples: dict[str, list[float]] = {name: [] for name in urls}
    names = list(urls)
    rounds = -(-requests_each // block)
    for round_no in range(rounds):
        order = names if round_no % 2 == 0 else names[::-1]
        for name in order:
            url = urls[name]
            for _ in range(min(block, requests_each - len(samples[name]))):
                started = time.perf_counter()
                get_ok(session, url)
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    mean: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        return cls(n=len(samples), p50=cuts[49], p95=cuts[94], mean=statistics.fmean(samples))


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], labels: int = 1) -> str:
    """A Markdown table: the first `labels` columns read left to right, figures line up on the right."""
    cells = [list(map(str, headers)), *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = (
            c.ljust(w) if i < labels else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def _cpu_model() -> str:
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(os.cpu_count())


def _git_version() -> str:
    """The commit measured, '-dirty' when the working tree differs from it."""
    try:
        argv = ["git", "describe", "--always", "--dirty"]
        done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "(git unavailable)"
    return done.stdout.strip() or "(not a git checkout)"


def postgres_version(database_url: str) -> str:
    engine = create_engine(_postgres_admin_url(database_url))
    try:
        with engine.connect() as conn:
            version = str(conn.execute(text("SELECT version()")).scalar_one())
    finally:
        engine.dispose()
    match = re.match(r"PostgreSQL [\d.]+", version)
    return match.group(0) if match else version


def load_average() -> str:
    """1, 5 and 15 minute load averages: on a shared machine, the noise under the figures."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_lines(database_url: str | None) -> list[str]:
    """How and where: printed before the figures, so a result never travels without them."""
    lines = [
        f"date (UTC):  {datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
        f"machine:     nproc={_nproc()}, {_cpu_model()}, load average at start {load_average()}",
        f"software:    Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
        + (f", {postgres_version(database_url)}" if database_url else ""),
        f"repository:  {REPO_ROOT} at {_git_version()}",
    ]
    return lines


def hidden_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def add_database_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", help="also run on this PostgreSQL (a fresh schema, dropped after)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only PostgreSQL")


def database_urls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str | None]:
    """The backends to run on, in order: None for SQLite, then the PostgreSQL URL if given."""
    urls: list[str | None] = [] if args.skip_sqlite else [None]
    if args.database_url:
        urls.append(args.database_url)
    if not urls:
        parser.error("--skip-sqlite needs --database-url")
    return urls


def print_header(title: str, database_url: str | None) -> None:
    print(title)
    for line in machine_lines(database_url):
        print(line)
    if database_url:
        print(f"PostgreSQL:  {hidden_password(database_url)} (fresh schema, search_path via ?options)")


def save_results(name: str, args: argparse.Namespace, results: list[dict[str, Any]]) -> Path:
    """Keep the raw figures under bench/out/ (ignored by git), for the README's table."""
    settings = vars(args) | {"database_url": args.database_url and hidden_password(args.database_url)}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"args": settings, "results": results}, indent=2, default=str) + "\n")
    print(f"\nload average at end: {load_average()}")
    print(f"raw figures: {path.relative_to(REPO_ROOT)}")
    return path
