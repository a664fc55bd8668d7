"""A thousand open dashboards while pledges arrive at 100 a second: lag, pledge latency, memory.

Serves a fresh database exactly as `make run` does (`flask db upgrade`, `pledges seed`, then
`gunicorn --config gunicorn.conf.py wsgi:app` with HOST, PORT and WORKERS set), then:

1. baseline: pledges at --rate per second for --baseline-seconds with no stream open;
2. opens --clients SSE streams on GET /api/v1/campaigns/current/stream, in batches of --batch
   (each batch waits for its first `totals` events, so the listen backlog is never overrun);
3. hold: pledges at --rate per second for --seconds while every stream stays open, sampling the
   server's memory once a second; then waits (at most --drain-seconds) for every stream to show
   the final total, and closes them.

Stream clients run in a second process (one asyncio loop, raw sockets, chunked SSE parsed by
hand); pledges are sent open-loop from this one, each on a new connection, so a slow answer never
delays the next pledge. Both processes stamp with CLOCK_MONOTONIC, which they share.

Lag: after the k-th 201 of the hold (in the order the 201s arrived), the total is at least
`base + k`; a stream has caught up with that pledge at the first `totals` event whose total is at
least that (0 when it already had). Lag percentiles cover every (pledge, stream) pair, binned by
the millisecond.

The machine is shared: for each pledging phase the CPU table shows how much of the wall time each
server process ran and how much it waited, runnable, for a CPU (/proc/<pid>/task/*/schedstat),
and the share of it in which any task on the machine waited for one (/proc/pressure/cpu). Large
waits mean the figures measure the neighbours as much as the app. Memory is VmRSS of the master
and of each worker, and their summed PSS (shared pages counted once).

    .venv/bin/python bench/stream_load.py [--clients 1000] [--rate 100] [--seconds 30] \
        [--baseline-seconds 10] [--database-url postgresql+psycopg://…]

SQLite unless --database-url is given. Targets: every stream connected, lag p95 ≤ 2 s,
pledge p95 ≤ 100 ms. Exits 1 when a target is missed, 2 when the benchmark itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import re
import resource
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests

# _short, _stop, _wait_until_healthy: the harness's own printing, start-up wait and stop.
from _harness import (
    BIN,
    OUT_DIR,
    REPO_ROOT,
    SHUTDOWN_TIMEOUT,
    STARTUP_TIMEOUT,
    BenchError,
    Summary,
    Target,
    _short,
    _stop,
    _wait_until_healthy,
    free_port,
    fresh_database,
    hidden_password,
    markdown_table,
    prepare,
    print_header,
)

TITLE = "bench/stream_load.py — 1,000 live dashboards while pledges arrive at 100 per second"
STREAM = "/api/v1/campaigns/current/stream"
PLEDGES = "/api/v1/campaigns/current/pledges"
TOTALS = "/api/v1/campaigns/current/totals"
TARGET_LAG_P95 = 2.0
TARGET_PLEDGE_P95_MS = 100.0
PLEDGE_TIMEOUT = 30.0
# How long one batch of streams may take to be answered before the next batch starts anyway.
BATCH_TIMEOUT = 30.0
# Every pledge comes from 127.0.0.1: without this, all but the first 20 would be held for review.
# All 1,000 streams come from 127.0.0.1 too: lift the stream caps (bench/stream_flood.py measures them).
SERVER_SETTINGS = {
    "BURST_LIMIT": "1000000000",
    "STREAMS_PER_ADDRESS": "1000000",
    "STREAMS_PER_PROCESS": "1000000",
}


# --- The server, as `make run` starts it -------------------------------------------------------


@dataclass(frozen=True)
class Server:
    port: int
    master: int
    workers: list[int]
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def make_run_server(target: Target, workers: int) -> Iterator[Server]:
    """`make run`'s gunicorn on a free port, in a process group of its own, stopped afterwards."""
    port = free_port()
    env = target.env | {"HOST": "127.0.0.1", "PORT": str(port), "WORKERS": str(workers)}
    argv = [str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"]
    shown = " ".join(f"{k}={v}" for k, v in SERVER_SETTINGS.items())
    target.commands.append(
        f"{shown} HOST=127.0.0.1 PORT={port} WORKERS={workers} " + shlex.join([_short(a) for a in argv])
    )
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
        yield Server(port, process.pid, _wait_for_workers(process.pid, workers), log)
    finally:
        _stop(process)


def _wait_for_workers(master: int, workers: int) -> list[int]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while len(found := children(master)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    return sorted(found)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _kib(pid: int, name: str, field_name: str) -> int:
    """A `Name:   123 kB` line of /proc/<pid>/<name>, in KiB (0 when the process is gone)."""
    try:
        for row in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if row.startswith(field_name + ":"):
                return int(row.split()[1])
    except OSError:
        pass
    return 0


def scheduled_seconds(pid: int) -> tuple[float, float]:
    """Seconds the process's threads have run on a CPU, and have waited, runnable, for one."""
    ran = waited = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            on_cpu, on_queue, _ = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue
        ran, waited = ran + int(on_cpu), waited + int(on_queue)
    return ran / 1e9, waited / 1e9


def cpu_pressure_seconds() -> float | None:
    """Seconds in which some task of the machine waited for a CPU (PSI), None where not available."""
    try:
        for row in Path("/proc/pressure/cpu").read_text().splitlines():
            if row.startswith("some"):
                return int(row.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return None


class CpuWindow:
    """What processes did with the CPU over a stretch of time: ran, or waited for a CPU (the noise)."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.started = time.monotonic()
        self.before = {role: scheduled_seconds(pid) for role, pid in roles.items()}
        self.pressure = cpu_pressure_seconds()

    def percent(self) -> dict[str, Any]:
        """% of the wall time; `machine_cpu_pressure`: share of it in which any task waited for a CPU."""
        wall = time.monotonic() - self.started
        shares: dict[str, Any] = {}
        for role, pid in self.roles.items():
            ran, waited = scheduled_seconds(pid)
            shares[role] = {
                "running": (ran - self.before[role][0]) / wall * 100,
                "waiting_for_cpu": (waited - self.before[role][1]) / wall * 100,
            }
        pressure = cpu_pressure_seconds()
        if pressure is not None and self.pressure is not None:
            shares["machine_cpu_pressure"] = (pressure - self.pressure) / wall * 100
        shares["load_average"] = os.getloadavg()[0]
        shares["wall_seconds"] = wall
        return shares


@dataclass(frozen=True)
class Memory:
    """RSS of the master and each worker; PSS sums shared pages once (workers fork from the master)."""

    master_rss_kib: int
    worker_rss_kib: list[int]
    pss_kib: int

    @property
    def rss_kib(self) -> int:
        return self.master_rss_kib + sum(self.worker_rss_kib)

    @classmethod
    def of(cls, server: Server) -> Memory:
        pids = [server.master, *server.workers]
        return cls(
            master_rss_kib=_kib(server.master, "status", "VmRSS"),
            worker_rss_kib=[_kib(w, "status", "VmRSS") for w in server.workers],
            pss_kib=sum(_kib(p, "smaps_rollup", "Pss") for p in pids),
        )


def open_sockets(pid: int) -> int:
    """TCP connections a worker holds open: its share of the streams."""
    count = 0
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                count += os.readlink(fd).startswith("socket:")
            except OSError:
                continue
    except OSError:
        pass
    return count


# --- Stream clients (a process of their own) ---------------------------------------------------


@dataclass(eq=False)
class StreamClient:
    opened: float = 0.0
    status: int | None = None
    first_event: float | None = None
    # (arrival, total) of every `totals` event, in arrival order.
    events: list[tuple[float, int]] = field(default_factory=list)
    heartbeats: int = 0
    # Set when the stream ended or failed before the benchmark closed it.
    ended: float | None = None
    error: str | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def latest_total(self) -> int:
        return self.events[-1][1] if self.events else -1

    def as_record(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "status": self.status,
            "first_event": self.first_event,
            "events": self.events,
            "heartbeats": self.heartbeats,
            "ended": self.ended,
            "error": self.error,
        }


class StreamEnded(Exception):
    pass


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise StreamEnded("closed before the status line")
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def follow_stream(client: StreamClient, port: int, totals_of: dict[bytes, int]) -> None:
    """Read one event stream until cancelled, noting when each `totals` event arrives."""
    writer: asyncio.StreamWriter | None = None
    client.opened = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        client.status, headers = await _read_head(reader)
        if client.status != 200 or headers.get("transfer-encoding") != "chunked":
            raise StreamEnded(f"answered {client.status} {headers.get('transfer-encoding', '')}")
        pending = b""
        while True:
            size_line = await reader.readline()
            if not size_line:
                raise StreamEnded("connection closed")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                raise StreamEnded("stream ended")
            pending += (await reader.readexactly(size + 2))[:-2]
            arrived = time.monotonic()
            *blocks, pending = pending.split(b"\n\n")
            for block in blocks:
                _take_event(client, block, arrived, totals_of)
    except asyncio.CancelledError:
        raise
    except (OSError, ValueError, StreamEnded, asyncio.IncompleteReadError) as error:
        client.ended, client.error = time.monotonic(), f"{type(error).__name__}: {error}"
    finally:
        client.settled.set()
        if writer is not None:
            writer.close()


def _take_event(client: StreamClient, block: bytes, arrived: float, totals_of: dict[bytes, int]) -> None:
    event, data = b"message", b""
    for line in block.split(b"\n"):
        if line.startswith(b":"):
            client.heartbeats += 1
        elif line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    if event != b"totals":
        return
    # Every stream gets the same payloads: parse each once.
    if (total := totals_of.get(data)) is None:
        total = totals_of[data] = int(json.loads(data)["total"])
    client.events.append((arrived, total))
    if client.first_event is None:
        client.first_event = arrived
        client.settled.set()


async def _hold_streams(conn: Connection, port: int, count: int, batch: int) -> None:
    clients = [StreamClient() for _ in range(count)]
    totals_of: dict[bytes, int] = {}
    tasks: list[asyncio.Task[None]] = []
    ramp_started = time.monotonic()
    for start in range(0, count, batch):
        group = clients[start : start + batch]
        tasks += [asyncio.create_task(follow_stream(c, port, totals_of)) for c in group]
        try:
            async with asyncio.timeout(BATCH_TIMEOUT):
                await asyncio.gather(*(c.settled.wait() for c in group))
        except TimeoutError:
            pass
    conn.send(
        {
            "ramp_seconds": time.monotonic() - ramp_started,
            "connected": sum(c.first_event is not None and c.ended is None for c in clients),
        }
    )
    command, final_total, drain_seconds = await asyncio.to_thread(conn.recv)
    assert command == "finish"
    drain_started = time.monotonic()
    while time.monotonic() - drain_started < drain_seconds and any(
        c.ended is None and c.latest_total < final_total for c in clients
    ):
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    conn.send(
        {
            "clients": [c.as_record() for c in clients],
            "drain_seconds": time.monotonic() - drain_started,
        }
    )


def stream_process(conn: Connection, port: int, count: int, batch: int) -> None:
    """Entry point of the clients' process: needs one file descriptor per stream."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count + 100, hard), hard))
    asyncio.run(_hold_streams(conn, port, count, batch))


# --- Pledges -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PledgeTiming:
    scheduled: float
    started: float
    done: float
    status: int  # 0: no answer (timeout or connection error)
    error: str | None = None

    @property
    def ms(self) -> float:
        return (self.done - self.started) * 1000


async def send_pledge(port: int, body: bytes, scheduled: float) -> PledgeTiming:
    """One pledge on a new connection, as a phone would send it; timed to the last byte of the answer."""
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(PLEDGE_TIMEOUT):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                f"POST {PLEDGES} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            status, headers = await _read_head(reader)
            await reader.readexactly(int(headers.get("content-length", "0")))
            return PledgeTiming(scheduled, started, time.monotonic(), status)
    except (OSError, TimeoutError, ValueError, StreamEnded, asyncio.IncompleteReadError) as error:
        return PledgeTiming(scheduled, started, time.monotonic(), 0, f"{type(error).__name__}: {error}")
    finally:
        if writer is not None:
            writer.close()


def pledge_body(run_id: str, index: int, neighborhoods: Sequence[str]) -> bytes:
    pledge: dict[str, Any] = {
        "kind": "resident",
        "neighborhood": neighborhoods[index % len(neighborhoods)],
        "email": f"bench-{run_id}-{index}@example.org",
    }
    if index % 10 == 9:
        pledge |= {"kind": "business", "name": f"Bench Bakery {index}", "show_name": index % 20 == 19}
    return json.dumps(pledge).encode()


async def pledge_wave(
    port: int, rate: float, seconds: float, run_id: str, first_index: int, neighborhoods: Sequence[str]
) -> list[PledgeTiming]:
    """`rate` pledges a second for `seconds`, each sent on schedule whatever the earlier ones are doing."""
    count = round(rate * seconds)
    began = time.monotonic() + 0.05
    tasks: list[asyncio.Task[PledgeTiming]] = []
    for i in range(count):
        scheduled = began + i / rate
        if (wait := scheduled - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        body = pledge_body(run_id, first_index + i, neighborhoods)
        tasks.append(asyncio.create_task(send_pledge(port, body, scheduled)))
    return list(await asyncio.gather(*tasks))


async def sample_memory(server: Server, stop: asyncio.Event, every: float = 1.0) -> list[Memory]:
    samples: list[Memory] = []
    while True:
        samples.append(Memory.of(server))
        try:
            async with asyncio.timeout(every):
                await stop.wait()
            return samples
        except TimeoutError:
            continue


async def hold(
    server: Server, rate: float, seconds: float, run_id: str, first_index: int, neighborhoods: Sequence[str]
) -> tuple[list[PledgeTiming], list[Memory]]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(server, stop))
    timings = await pledge_wave(server.port, rate, seconds, run_id, first_index, neighborhoods)
    stop.set()
    return timings, await sampler


# --- Arithmetic --------------------------------------------------------------------------------


@dataclass
class LagHistogram:
    """Lags in whole milliseconds: exact enough, and a million pairs cost a list of counts."""

    counts: list[int] = field(default_factory=list)
    n: int = 0
    over_target: int = 0

    def add(self, seconds: float) -> None:
        ms = max(0, round(seconds * 1000))
        if ms >= len(self.counts):
            self.counts.extend([0] * (ms + 1 - len(self.counts)))
        self.counts[ms] += 1
        self.n += 1
        self.over_target += seconds > TARGET_LAG_P95

    def quantile(self, q: float) -> float:
        """Seconds below which a share `q` of the lags lie (nearest rank)."""
        rank, seen = max(1, math.ceil(q * self.n)), 0
        for ms, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return ms / 1000
        return float("nan")


def pledge_lags(
    clients: Sequence[dict[str, Any]], timings: Sequence[PledgeTiming], base_total: int
) -> tuple[LagHistogram, int]:
    """Lag of every (acknowledged pledge, stream) pair; and pairs never caught up with."""
    acknowledged = sorted(t.done for t in timings if t.status == 201)
    histogram, missed = LagHistogram(), 0
    for client in clients:
        if client["first_event"] is None:
            continue
        events = client["events"]
        e = 0
        for k, acked in enumerate(acknowledged, start=1):
            needed = base_total + k
            # Totals only grow (nothing is moderated meanwhile): one pass over both lists.
            while e < len(events) and events[e][1] < needed:
                e += 1
            if e == len(events):
                missed += len(acknowledged) - k + 1
                break
            histogram.add(events[e][0] - acked)
    return histogram, missed


def pledge_summary(timings: Sequence[PledgeTiming], seconds: float) -> dict[str, Any]:
    latencies = [t.ms for t in timings if t.status == 201]
    summary = Summary.of(latencies) if len(latencies) > 1 else None
    errors: dict[str, int] = {}
    for t in timings:
        if t.status != 201:
            key = t.error or f"HTTP {t.status}"
            errors[key] = errors.get(key, 0) + 1
    return {
        "sent": len(timings),
        "created": len(latencies),
        "errors": errors,
        "per_second": len(latencies) / seconds,
        "p50_ms": summary.p50 if summary else None,
        "p95_ms": summary.p95 if summary else None,
        "max_ms": max(latencies, default=None),
        # How far the sender fell behind its schedule (its own CPU): should stay near 0.
        "late_start_max_ms": max(((t.started - t.scheduled) * 1000 for t in timings), default=0.0),
    }


def server_log_problems(log: Path) -> dict[str, int]:
    text = log.read_text(errors="replace")
    patterns = {
        "tracebacks": r"^Traceback",
        "errors": r"\[ERROR\]",
        "worker timeouts": r"WORKER TIMEOUT",
        "database locked": r"database is locked",
    }
    return {name: len(re.findall(p, text, re.MULTILINE)) for name, p in patterns.items()}


# --- The run -----------------------------------------------------------------------------------


@dataclass
class Result:
    settings: dict[str, Any]
    commands: list[str]
    streams: dict[str, Any]
    lag: dict[str, Any]
    baseline: dict[str, Any]
    with_streams: dict[str, Any]
    memory: dict[str, Any]
    cpu_percent: dict[str, Any]
    server_log: dict[str, int]
    final_total: int
    # Pledges whose answer never came (timed out) but which the server did count.
    counted_without_201: int
    # Per pledge: [seconds since the phase began, latency in ms, HTTP status], to see queues build.
    pledge_timings: dict[str, list[list[float]]] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)


def get_totals(base_url: str) -> dict[str, Any]:
    response = requests.get(base_url + TOTALS, timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {TOTALS} answered {response.status_code}")
    return response.json()


def _recv(conn: Connection, timeout: float, what: str) -> dict[str, Any]:
    if not conn.poll(timeout):
        raise BenchError(f"the stream clients did not report {what} within {timeout:.0f} s")
    return conn.recv()


def run(args: argparse.Namespace) -> Result:
    with fresh_database(args.database_url) as target:
        target.env |= SERVER_SETTINGS
        prepare(target)
        with make_run_server(target, args.workers) as server:
            observed = observe(args, target, server)
    return summarise(args, observed)


@dataclass
class Observed:
    """What one run saw, before any arithmetic."""

    commands: list[str]
    settings: str
    baseline: list[PledgeTiming]
    base_total: int
    ramp: dict[str, Any]
    memory_idle: Memory
    memory_streams: Memory
    sockets_per_worker: list[int]
    timings: list[PledgeTiming]
    memory_samples: list[Memory]
    memory_end: Memory
    cpu_percent: dict[str, Any]
    final_total: int
    clients: dict[str, Any]
    served_total: int
    server_log: dict[str, int]


def observe(args: argparse.Namespace, target: Target, server: Server) -> Observed:
    """Baseline pledges, then the streams, then pledges with the streams open."""
    run_id = uuid.uuid4().hex[:8]
    print(f"serving {server.base_url}: master {server.master}, workers {server.workers}", flush=True)
    totals = get_totals(server.base_url)
    neighborhoods = [n["slug"] for n in totals["neighborhoods"]]
    memory_idle = Memory.of(server)

    print(f"baseline: {args.rate:g} pledges/s for {args.baseline_seconds:g} s, no streams", flush=True)
    server_roles = {"master": server.master} | {f"worker {i + 1}": w for i, w in enumerate(server.workers)}
    window = CpuWindow(server_roles)
    baseline = asyncio.run(
        pledge_wave(server.port, args.rate, args.baseline_seconds, run_id, 0, neighborhoods)
    )
    baseline_cpu = window.percent()
    base_total = get_totals(server.base_url)["total"]
    if base_total != totals["total"] + sum(t.status == 201 for t in baseline):
        failures = pledge_summary(baseline, args.baseline_seconds)["errors"]
        raise BenchError(f"after the baseline the total is {base_total}; pledges not created: {failures}")

    print(f"opening {args.clients} streams in batches of {args.batch}", flush=True)
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    clients_process = context.Process(
        target=stream_process, args=(theirs, server.port, args.clients, args.batch), daemon=True
    )
    clients_process.start()
    try:
        ramp = _recv(ours, BATCH_TIMEOUT * (args.clients / args.batch + 1), "their connections")
        print(f"  {ramp['connected']} connected in {ramp['ramp_seconds']:.1f} s", flush=True)
        time.sleep(args.settle_seconds)
        memory_streams = Memory.of(server)
        sockets = [open_sockets(w) for w in server.workers]

        print(f"hold: {args.rate:g} pledges/s for {args.seconds:g} s, streams open", flush=True)
        window = CpuWindow(server_roles | {"stream clients": clients_process.pid or 0})
        timings, memory_samples = asyncio.run(
            hold(server, args.rate, args.seconds, run_id, len(baseline), neighborhoods)
        )
        hold_cpu = window.percent()
        # The server's word, not the 201s: a pledge whose answer timed out may still have been counted.
        final_total = get_totals(server.base_url)["total"]
        print(f"waiting for every stream to show {final_total}", flush=True)
        ours.send(("finish", final_total, args.drain_seconds))
        clients = _recv(ours, args.drain_seconds + 120, "their events")
        memory_end = Memory.of(server)
    finally:
        clients_process.join(timeout=SHUTDOWN_TIMEOUT)
        if clients_process.is_alive():
            clients_process.kill()
    return Observed(
        commands=target.commands,
        settings=target.settings(),
        baseline=baseline,
        base_total=base_total,
        ramp=ramp,
        memory_idle=memory_idle,
        memory_streams=memory_streams,
        sockets_per_worker=sockets,
        timings=timings,
        memory_samples=memory_samples,
        memory_end=memory_end,
        cpu_percent={"baseline": baseline_cpu, "with_streams": hold_cpu},
        final_total=final_total,
        clients=clients,
        served_total=get_totals(server.base_url)["total"],
        server_log=server_log_problems(server.log),
    )


def summarise(args: argparse.Namespace, seen: Observed) -> Result:
    acknowledged = seen.base_total + sum(t.status == 201 for t in seen.timings)
    if seen.served_total < acknowledged:
        raise BenchError(f"the server counts {seen.served_total}, but the 201s say {acknowledged}")
    clients = seen.clients["clients"]
    print("computing lags", flush=True)
    histogram, missed = pledge_lags(clients, seen.timings, seen.base_total)
    connected = [c for c in clients if c["first_event"] is not None]
    first_waits = [(c["first_event"] - c["opened"]) * 1000 for c in connected]
    first = Summary.of(first_waits) if len(first_waits) > 1 else None
    errors: dict[str, int] = {}
    for c in clients:
        if c["error"]:
            errors[c["error"]] = errors.get(c["error"], 0) + 1
    memory = {
        "idle": seen.memory_idle,
        "streams_open": seen.memory_streams,
        "peak_during_pledges": max(seen.memory_samples, key=lambda m: m.rss_kib),
        "end": seen.memory_end,
    }
    result = Result(
        settings={"app": seen.settings, "args": vars(args) | {"database_url": _shown(args.database_url)}},
        commands=seen.commands,
        streams={
            "requested": args.clients,
            "connected": len(connected),
            "connected_after_ramp": seen.ramp["connected"],
            "stayed_connected": sum(c["ended"] is None for c in connected),
            "saw_final_total": sum(
                bool(c["events"]) and c["events"][-1][1] >= seen.final_total for c in clients
            ),
            "ramp_seconds": seen.ramp["ramp_seconds"],
            "first_event_p50_ms": first and first.p50,
            "first_event_p95_ms": first and first.p95,
            "first_event_max_ms": max(first_waits, default=0.0),
            "events_received": sum(len(c["events"]) for c in clients),
            "heartbeats_received": sum(c["heartbeats"] for c in clients),
            "errors": errors,
            "sockets_per_worker": seen.sockets_per_worker,
            "drain_seconds": seen.clients["drain_seconds"],
        },
        lag={
            "pairs": histogram.n,
            "missed_pairs": missed,
            "p50_s": histogram.quantile(0.50),
            "p95_s": histogram.quantile(0.95),
            "p99_s": histogram.quantile(0.99),
            "max_s": (len(histogram.counts) - 1) / 1000 if histogram.n else float("nan"),
            "over_2s_pairs": histogram.over_target,
        },
        baseline=pledge_summary(seen.baseline, args.baseline_seconds),
        with_streams=pledge_summary(seen.timings, args.seconds),
        memory={name: asdict(m) | {"rss_kib": m.rss_kib} for name, m in memory.items()},
        cpu_percent=seen.cpu_percent,
        server_log=seen.server_log,
        final_total=seen.served_total,
        counted_without_201=seen.served_total - acknowledged,
        pledge_timings={"baseline": _timeline(seen.baseline), "with_streams": _timeline(seen.timings)},
    )
    result.targets = {
        "all streams connected and stayed": result.streams["stayed_connected"] == args.clients,
        "lag p95 ≤ 2 s": missed == 0 and result.lag["p95_s"] <= TARGET_LAG_P95,
        "pledge p95 ≤ 100 ms": (result.with_streams["p95_ms"] or math.inf) <= TARGET_PLEDGE_P95_MS,
    }
    return result


def _timeline(timings: Sequence[PledgeTiming]) -> list[list[float]]:
    began = min((t.scheduled for t in timings), default=0.0)
    return [[round(t.started - began, 4), round(t.ms, 2), t.status] for t in timings]


def _shown(url: str | None) -> str | None:
    return url and hidden_password(url)


# --- Output ------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def report(result: Result, args: argparse.Namespace) -> None:
    s, lag, base, held = result.streams, result.lag, result.baseline, result.with_streams
    print("\nhow:")
    for command in result.commands:
        print(f"  {command}")
    print(f"  settings: {result.settings['app']}")
    print(
        f"  baseline {args.baseline_seconds:g} s at {args.rate:g}/s without streams; {args.clients} streams "
        f"opened in batches of {args.batch}; hold {args.seconds:g} s at {args.rate:g}/s; "
        f"then up to {args.drain_seconds:g} s for the last events"
    )

    print("\nstreams:")
    print(
        markdown_table(
            ["streams", "value"],
            [
                ["requested", s["requested"]],
                ["connected (first `totals` event received)", s["connected"]],
                ["stayed connected to the end", s["stayed_connected"]],
                ["received the final total", s["saw_final_total"]],
                ["ramp (all batches), s", f"{s['ramp_seconds']:.1f}"],
                ["connect → first event p50 / p95 / max, ms", _three(s, "first_event")],
                ["open sockets per worker (after the ramp)", " / ".join(map(str, s["sockets_per_worker"]))],
                [
                    "`totals` events / heartbeats received",
                    f"{s['events_received']} / {s['heartbeats_received']}",
                ],
            ],
        )
    )
    for error, count in s["errors"].items():
        print(f"  stream error ×{count}: {error}")

    print("\nlag, pledge's 201 → its total on a stream (every pledge × every stream):")
    print(
        markdown_table(
            ["pairs", "missed", "p50 s", "p95 s", "p99 s", "max s", "> 2 s"],
            [
                [
                    lag["pairs"],
                    lag["missed_pairs"],
                    f"{lag['p50_s']:.3f}",
                    f"{lag['p95_s']:.3f}",
                    f"{lag['p99_s']:.3f}",
                    f"{lag['max_s']:.3f}",
                    lag["over_2s_pairs"],
                ]
            ],
            labels=0,
        )
    )

    print("\npledges (POST, new connection each, open loop):")
    rows = []
    for name, p in (("no streams (baseline)", base), (f"{s['connected']} streams open", held)):
        rows.append(
            [
                name,
                p["sent"],
                p["created"],
                sum(p["errors"].values()),
                f"{p['per_second']:.1f}",
                _ms(p["p50_ms"]),
                _ms(p["p95_ms"]),
                _ms(p["max_ms"]),
                _ms(p["late_start_max_ms"]),
            ]
        )
    print(
        markdown_table(
            ["phase", "sent", "201", "errors", "201/s", "p50 ms", "p95 ms", "max ms", "sender late max ms"],
            rows,
        )
    )
    if base["p95_ms"] and held["p95_ms"]:
        print(f"  p95 with streams / without: {held['p95_ms'] / base['p95_ms']:.2f}×")
    for name, p in (("baseline", base), ("with streams", held)):
        for error, count in p["errors"].items():
            print(f"  {name} pledge error ×{count}: {error}")

    print("\nserver memory (gunicorn master + workers):")
    mem_rows = []
    for name, m in result.memory.items():
        workers = " + ".join(_mib(w) for w in m["worker_rss_kib"])
        mem_rows.append(
            [
                name.replace("_", " "),
                _mib(m["master_rss_kib"]),
                workers,
                _mib(m["rss_kib"]),
                _mib(m["pss_kib"]),
            ]
        )
    print(
        markdown_table(
            ["moment", "master RSS MiB", "workers RSS MiB", "total RSS MiB", "total PSS MiB"], mem_rows
        )
    )

    print("\nCPU, % of one core over each pledging phase: running / waiting, runnable, for a CPU:")
    phases = result.cpu_percent
    roles = [r for r, v in phases["with_streams"].items() if isinstance(v, dict)]
    cpu_rows = []
    for role in roles:
        cells = [phases[p].get(role) for p in ("baseline", "with_streams")]
        cpu_rows.append(
            [role, *(f"{c['running']:.0f} / {c['waiting_for_cpu']:.0f}" if c else "—" for c in cells)]
        )
    for key, name in (
        ("machine_cpu_pressure", "machine: some task waiting for a CPU, %"),
        ("load_average", "load average (1 min) at the end"),
    ):
        cpu_rows.append([name, *(_number(phases[p].get(key)) for p in ("baseline", "with_streams"))])
    per_pledge = []
    for phase, pledged in (("baseline", result.baseline), ("with_streams", result.with_streams)):
        shares = phases[phase]
        busy = sum(v["running"] for r, v in shares.items() if r.startswith("worker") or r == "master")
        per_pledge.append(_number(busy / 100 * shares["wall_seconds"] / max(pledged["created"], 1) * 1000))
    cpu_rows.append(["server CPU per pledge created, ms", *per_pledge])
    print(markdown_table(["process", "baseline", "with streams"], cpu_rows))
    print(f"server log: {', '.join(f'{k} {v}' for k, v in result.server_log.items())}")
    print(
        f"final total served: {result.final_total} ({result.counted_without_201} counted without a 201 seen)"
    )

    print("\ntargets:")
    for name, met in result.targets.items():
        print(f"  {'met   ' if met else 'MISSED'} {name}")


def _three(s: dict[str, Any], key: str) -> str:
    return f"{_ms(s[key + '_p50_ms'])} / {_ms(s[key + '_p95_ms'])} / {_ms(s[key + '_max_ms'])}"


def save(result: Result) -> Path:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"stream_load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(asdict(result), indent=2, default=str, ensure_ascii=False) + "\n")
    print(f"\nraw figures: {path.relative_to(REPO_ROOT)}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000, help="stream clients to hold open")
    parser.add_argument("--rate", type=float, default=100.0, help="pledges per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="pledging with the streams open")
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="pledging with no stream open")
    parser.add_argument("--batch", type=int, default=100, help="streams opened at once while ramping up")
    parser.add_argument("--settle-seconds", type=float, default=2.0, help="pause after the ramp")
    parser.add_argument("--drain-seconds", type=float, default=10.0, help="wait for the final total")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (`make run`: WORKERS=2)")
    parser.add_argument("--database-url", help="PostgreSQL instead of SQLite (a fresh schema, dropped after)")
    args = parser.parse_args(argv)
    if min(args.clients, args.batch, args.workers) < 1 or min(args.rate, args.seconds) <= 0:
        parser.error("--clients, --batch, --workers, --rate and --seconds must be positive")

    print_header(TITLE, args.database_url)
    print(f"command:     {shlex.join([_short(sys.executable), _short(__file__), *sys.argv[1:]])}")
    result = run(args)
    report(result, args)
    save(result)
    return 0 if all(result.targets.values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
