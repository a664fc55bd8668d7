"""Run the real app under gunicorn for tests that need server processes, not the test client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 10.0
# Limits no test load reaches: a test that wants rate limiting sets its own through extra_env.
UNLIMITED = "100000/minute"
# Past SNAPSHOT_SECONDS (1 s), every worker's copy of the totals was read after the writes before it.
SNAPSHOT_WAIT = 1.2
TOTALS_PATH = "/api/v1/campaigns/current/totals"


def settled_totals(base_url: str, session: requests.Session | None = None) -> dict:
    """The totals as every worker serves them once writes made before this call have shown.

    Each worker answers totals from a copy up to SNAPSHOT_SECONDS old (pledges/snapshots.py),
    so a read right after a pledge taken by another worker may not include it yet.
    """
    time.sleep(SNAPSHOT_WAIT)
    response = (session or requests).get(base_url + TOTALS_PATH, timeout=10)
    response.raise_for_status()
    return response.json()


def server_log_path(tmp_path: Path) -> Path:
    """Where running_server(…, tmp_path) writes gunicorn's stdout and stderr."""
    return Path(tmp_path) / "gunicorn.log"


def log_tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def server_env(
    database_url: str, tmp_path: Path, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of the app's CLI and of its gunicorn workers, as production would set it."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "INSTANCE_PATH": str(Path(tmp_path) / "instance"),
            "SECRET_KEY": "test",
            "PLEDGE_RATE_LIMIT": UNLIMITED,
            "API_RATE_LIMIT": UNLIMITED,
            "API_KEY_RATE_LIMIT": UNLIMITED,
            "BURST_LIMIT": "100000",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    return env


def flask_cli(*args: str, env: Mapping[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m flask --app wsgi ARGS` in the repository, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(env: Mapping[str, str]) -> None:
    """Migrate and seed, as `make run` does before it serves."""
    for args in (("db", "upgrade"), ("pledges", "seed")):
        done = flask_cli(*args, env=env)
        if done.returncode != 0:
            raise RuntimeError(
                f"flask {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr[-4000:]}"
            )


def wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        try:
            # Waiting on the process is the pause between polls: an early exit ends it at once.
            code = process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(f"gunicorn exited {code} before it answered /healthz:\n{log_tail(log)}")
    raise RuntimeError(f"gunicorn did not answer /healthz within {STARTUP_TIMEOUT:.0f} s:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole process group (master and workers), SIGKILL if it lingers."""
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


@contextmanager
def serve(
    env: Mapping[str, str], tmp_path: Path, workers: int = 4
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """gunicorn with the production settings on a database already prepared: (base URL, master process).

    Its output goes to server_log_path(tmp_path), for a failing test to print.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = server_log_path(tmp_path)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "5",
        "wsgi:app",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_healthy(process, base_url, log)
        yield base_url, process
    finally:
        stop(process)


@contextmanager
def running_server(
    database_url: str,
    tmp_path: Path,
    workers: int = 4,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[str]:
    """Migrate and seed `database_url`, serve it with gunicorn, yield the base URL, then stop it."""
    env = server_env(database_url, tmp_path, extra_env)
    prepare_database(env)
    with serve(env, tmp_path, workers) as (base_url, _process):
        yield base_url
