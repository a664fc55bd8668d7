"""One client opens 4,200 streams at once: /healthz, the front page and pledges must stay fast.

Serves a fresh database as `make run` does (`flask db upgrade`, `pledges seed`, then gunicorn with
the repository's gunicorn.conf.py: WORKERS=2 gevent workers of WORKER_CONNECTIONS=2000 each) with
the production stream caps (STREAMS_PER_ADDRESS, STREAMS_PER_PROCESS at their defaults; --uncapped
sets both to a million, the "before" figure), then measures three phases:

1. baseline: no flood, --baseline-seconds;
2. flood: a second process (one asyncio loop, raw sockets, all from 127.0.0.1) opens --streams
   connections at once, each sending GET /api/v1/campaigns/current/stream, and holds every
   connection open whatever the answer (200, 429, 503), reading what comes, for --flood-seconds;
3. after: the flood client closes every connection at once ("the client left"); --after-seconds.

Throughout, three probes run in threads of this process, one request at a time each, every
--probe-interval seconds, each request on a new connection: GET /healthz, GET /, and a new
pledge POSTed to /api/v1/campaigns/current/pledges. A probe that gets no answer within
--probe-timeout counts as that long. Latency is from just before the connect to the last byte of
the answer (time.perf_counter). Target: p95 ≤ 250 ms for each probe in each phase.

    .venv/bin/python bench/stream_flood.py [--streams 4200] [--uncapped] [--database-url …]

Exits 1 when a target is missed, 2 when the benchmark itself failed. Everything on 127.0.0.1;
every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import shlex
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import requests
from _harness import (
    BIN,
    REPO_ROOT,
    SHUTDOWN_TIMEOUT,
    BenchError,
    Summary,
    Target,
    _short,
    _stop,
    _wait_until_healthy,
    free_port,
    fresh_database,
    markdown_table,
    prepare,
    print_header,
)

TITLE = "bench/stream_flood.py — one client opens 4,200 streams; pages and pledges must stay fast"
STREAM = "/api/v1/campaigns/current/stream"
PLEDGES = "/api/v1/campaigns/current/pledges"
TARGET_P95_MS = 250.0
CONNECT_TIMEOUT = 20.0  # a flood connection not accepted by then counts as refused by the kernel
ANSWER_TIMEOUT = 20.0  # nor answered by then: counted as unanswered, and held anyway
# Every pledge comes from 127.0.0.1: without this, all but the first 20 would be held for review.
SERVER_SETTINGS = {"BURST_LIMIT": "1000000000"}
UNCAPPED = {"STREAMS_PER_ADDRESS": "1000000", "STREAMS_PER_PROCESS": "1000000"}


@contextmanager
def make_run_server(target: Target, settings: dict[str, str]) -> Iterator[str]:
    """`make run`'s gunicorn (gunicorn.conf.py) on a free port, in a process group of its own."""
    port = free_port()
    env = target.env | settings | {"HOST": "127.0.0.1", "PORT": str(port)}
    argv = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    shown = " ".join(f"{k}={v}" for k, v in settings.items())
    target.commands.append(f"{shown} HOST=127.0.0.1 PORT={port} " + shlex.join([_short(a) for a in argv]))
    log = target.workdir / "gunicorn.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, f"http://127.0.0.1:{port}", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)


# --- The flood (a process of its own) ----------------------------------------------------------


async def _flood_one(
    port: int, outcomes: Counter[str], writers: list[asyncio.StreamWriter], leaving: asyncio.Event
) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError):
        outcomes["not connected"] += 1
        return
    writers.append(writer)
    writer.write(
        f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    try:
        status_line = await asyncio.wait_for(reader.readline(), ANSWER_TIMEOUT)
        outcomes[status_line.split()[1].decode() if status_line else "closed unanswered"] += 1
    except (OSError, TimeoutError, IndexError):
        outcomes["connected, unanswered in 20 s"] += 1
    try:
        while await reader.read(65536):  # held open, whatever the answer, until the client leaves
            pass
        outcomes["closed by the server"] += 1
    except OSError:
        if not leaving.is_set():
            outcomes["reset by the server"] += 1


async def _flood(conn: Connection, port: int, streams: int) -> None:
    outcomes: Counter[str] = Counter()
    writers: list[asyncio.StreamWriter] = []
    leaving = asyncio.Event()
    tasks = [asyncio.create_task(_flood_one(port, outcomes, writers, leaving)) for _ in range(streams)]
    command = await asyncio.to_thread(conn.recv)
    assert command == "leave"
    leaving.set()
    for writer in writers:
        writer.transport.abort()  # the client leaves: every connection closed at once
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(dict(outcomes))


def flood_process(conn: Connection, port: int, streams: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < streams + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(streams + 100, hard), hard))
    asyncio.run(_flood(conn, port, streams))


# --- The probes ---------------------------------------------------------------------------------


@dataclass
class Probes:
    base_url: str
    interval: float
    timeout: float

    def __post_init__(self) -> None:
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.failures: Counter[tuple[str, str, str]] = Counter()
        self.phase = "baseline"
        self.stopping = threading.Event()

    def send(self, name: str) -> requests.Response:
        if name == "pledge":
            body = {
                "kind": "resident",
                "neighborhood": "allentown",
                "email": f"{uuid.uuid4().hex}@example.org",
            }
            return requests.post(self.base_url + PLEDGES, json=body, timeout=self.timeout)
        return requests.get(self.base_url + name, timeout=self.timeout)

    def run(self, name: str, expected: int) -> None:
        while not self.stopping.is_set():
            phase, started = self.phase, time.perf_counter()
            try:
                status = str(self.send(name).status_code)
            except requests.RequestException as error:
                status = type(error).__name__
            ms = (time.perf_counter() - started) * 1000
            if status != str(expected):
                self.failures[(phase, name, status)] += 1
                ms = max(ms, self.timeout * 1000)  # a failed probe counts as no answer
            self.samples.setdefault((phase, name), []).append(ms)
            self.stopping.wait(self.interval)

    @contextmanager
    def running(self) -> Iterator[None]:
        threads = [
            threading.Thread(target=self.run, args=(name, expected), daemon=True)
            for name, expected in (("/healthz", 200), ("/", 200), ("pledge", 201))
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self.stopping.set()
            for thread in threads:
                thread.join(timeout=self.timeout + 5)


def run(args: argparse.Namespace) -> tuple[Probes, dict[str, int], list[str], dict[str, str]]:
    settings = SERVER_SETTINGS | (UNCAPPED if args.uncapped else {})
    # The workers inherit it: 2,000 connections each need as many file descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 8192:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(8192, hard), hard))
    with fresh_database(args.database_url) as target:
        prepare(target)
        with make_run_server(target, settings) as base_url:
            port = int(base_url.rsplit(":", 1)[1])
            probes = Probes(base_url, args.probe_interval, args.probe_timeout)
            ours, theirs = multiprocessing.Pipe()
            flood = multiprocessing.get_context("spawn").Process(
                target=flood_process, args=(theirs, port, args.streams), daemon=True
            )
            with probes.running():
                time.sleep(args.baseline_seconds)
                probes.phase = "flood"
                flood.start()
                time.sleep(args.flood_seconds)
                ours.send("leave")
                probes.phase = "after"
                if not ours.poll(60):
                    raise BenchError("the flood client did not report within 60 s")
                outcomes = ours.recv()
                time.sleep(args.after_seconds)
            flood.join(timeout=SHUTDOWN_TIMEOUT)
            if flood.is_alive():
                flood.kill()
        return probes, outcomes, target.commands, settings


def report(args: argparse.Namespace, probes: Probes, outcomes: dict[str, int], commands: list[str]) -> bool:
    print("\nhow:")
    for command in commands:
        print(f"  {command}")
    print(
        f"  baseline {args.baseline_seconds:g} s; flood: {args.streams} stream requests from one process on "
        f"127.0.0.1, all connections held open {args.flood_seconds:g} s, then closed at once; after "
        f"{args.after_seconds:g} s. Probes: one request at a time per route every {args.probe_interval:g} s, "
        f"each on a new connection; no answer in {args.probe_timeout:g} s (or a wrong status) counts as "
        f"{args.probe_timeout * 1000:.0f} ms."
    )
    settled = ("connected, unanswered in 20 s", "not connected")
    answered = sum(v for k, v in outcomes.items() if k.isdigit() or k in settled)
    outcomes = outcomes | {"still waiting to be answered when the client left": args.streams - answered}
    print("\nflood answers (per connection): " + ", ".join(f"{k} ×{v}" for k, v in sorted(outcomes.items())))
    rows, met = [], True
    for phase in ("baseline", "flood", "after"):
        for name in ("/healthz", "/", "pledge"):
            samples = probes.samples.get((phase, name), [])
            if len(samples) < 2:
                rows.append([phase, name, len(samples), "—", "—", "—", "—"])
                met = False
                continue
            summary = Summary.of(samples)
            failed = sum(v for (p, n, _), v in probes.failures.items() if (p, n) == (phase, name))
            met &= summary.p95 <= TARGET_P95_MS
            rows.append(
                [
                    phase,
                    name,
                    summary.n,
                    failed,
                    f"{summary.p50:.1f}",
                    f"{summary.p95:.1f}",
                    f"{max(samples):.1f}",
                ]
            )
    print()
    print(markdown_table(["phase", "probe", "n", "failed", "p50 ms", "p95 ms", "max ms"], rows, labels=2))
    for (phase, name, status), count in sorted(probes.failures.items()):
        print(f"  {phase} {name}: {status} ×{count}")
    print(
        f"\ntarget: {'met' if met else 'MISSED'}: every probe's p95 ≤ {TARGET_P95_MS:.0f} ms in every phase"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=4200, help="stream requests the flood opens at once")
    parser.add_argument("--uncapped", action="store_true", help="stream caps set to a million: the 'before'")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--after-seconds", type=float, default=10.0)
    parser.add_argument(
        "--probe-interval", type=float, default=0.1, help="pause between one probe's requests"
    )
    parser.add_argument("--probe-timeout", type=float, default=5.0)
    parser.add_argument("--database-url", help="PostgreSQL instead of SQLite (a fresh schema, dropped after)")
    args = parser.parse_args(argv)
    if args.streams < 1 or min(args.baseline_seconds, args.flood_seconds, args.after_seconds) <= 0:
        parser.error("--streams and the phases' seconds must be positive")
    print_header(TITLE, args.database_url)
    print(f"command:     {shlex.join([_short(sys.executable), _short(__file__), *sys.argv[1:]])}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    probes, outcomes, commands, _settings = run(args)
    met = report(args, probes, outcomes, commands)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if met else 1


def _main() -> Any:
    try:
        return main()
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_main())
