"""Throughput under wrk: requests per second, p50 and p99, each over the /healthz floor of the same run.

Serves fresh databases with a real gunicorn, run in the repository so that it reads
gunicorn.conf.py as `make run` does (gevent workers, keep-alive), and loads it from this
machine with wrk (Debian's package: `apt-get install wrk`), one scenario at a time, every
scenario framed by runs of GET /healthz, the floor (same server, same client, no database):

    at 1,000 pledges:     floor totals floor pledge floor mix floor
    `pledges demo` grows the same database to 1,000,000 pledges, its server still running
    at 1,000,000:         floor totals totals(ref) floor totals(ref) totals floor pledge floor mix floor

- totals: GET /api/v1/campaigns/current/totals
- pledge: POST /api/v1/campaigns/current/pledges, a new email on every request (bench/lua/pledge.lua)
- mix:    per wrk thread, 9 totals GETs then 1 pledge POST, over and over
- ref:    a second gunicorn on a second fresh database left at 1,000 pledges, loaded in turn with
          the grown one (ABBA), so that the machine's drift cannot pass for growth

wrk opens all its connections at once, and gunicorn's gevent workers, when there are several,
accept one connection per turn of their event loop (`max_accept = 1`): under load the last
connections wait seconds in the listen queue before their first request is read. The "ramp"
column says when that queue first emptied, "conns/worker" how the connections ended up shared.
(--hold-ms N makes the first request of every connection wait N ms so that all are accepted
before the load starts; it is off by default because wrk's per-request delay hook then slows
wrk itself: it halved the requests per second of /healthz on this machine.)

A scenario's ratio is its requests per second over the mean of the floor runs either side of it.
Any answer that is not 2xx, any socket error and any timeout is an error; a non-2xx answer in any
run, on either database, fails the benchmark (a rate limit reached by the load is one). After every run that
writes, the counted total must have grown by every 201 (and at most by the requests still in
flight when wrk stopped), and `pledges recount --check` must find no drift at the end.

All load comes from 127.0.0.1, so the rate limits are lifted. On the night pledges come from
many residents: the server runs with TRUSTED_PROXIES=1, as behind one reverse proxy, and every
pledge carries an X-Forwarded-For address of its own (BURST_LIMIT stays at its default).
--one-address sends every pledge from 127.0.0.1 instead, with BURST_LIMIT lifted (past the
burst limit a pledge is held, uncounted).

    .venv/bin/python bench/throughput.py [--database-url postgresql+psycopg://…] [--skip-sqlite]
        [--workers 2] [--connections 64] [--seconds 8] [--profile]
    .venv/bin/python bench/throughput.py --sweep-workers 2,3,4 --sweep-connections 32,64

With --database-url the PostgreSQL run stores rate limits in Redis (--redis-url) under a key
prefix of its own. --sweep-* measures only the 1,000-pledge row for every combination.
--profile adds, at 1,000,000 pledges, one more run of each scenario with py-spy recording
every worker; the stacks land in bench/out/ and the hottest frames are printed.
Exits 1 when a target is missed on SQLite or any answer was not 2xx (on either database), with a
FAILED line for each; 2 when the benchmark itself failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from _harness import (
    BIN,
    OUT_DIR,
    REPO_ROOT,
    SQLITE,
    UNLIMITED,
    BenchError,
    Server,
    Target,
    add_database_options,
    database_urls,
    fresh_database,
    get_ok,
    gunicorn,
    load_average,
    markdown_table,
    prepare,
    print_header,
    save_results,
    worker_pids,
)

TITLE = "bench/throughput.py — requests per second under wrk, each over the /healthz floor of the same run"
HEALTHZ = "/healthz"
TOTALS = "/api/v1/campaigns/current/totals"
NEIGHBORHOODS = "/api/v1/neighborhoods"
LUA = REPO_ROOT / "bench" / "lua"
FLOOR, READ, WRITE, MIX = "healthz", "totals", "pledge", "mix"
MIX_EVERY = 10  # one POST in ten requests: the 90/10 read/write mix
# Every pledge comes from 127.0.0.1: past BURST_LIMIT in BURST_WINDOW_MINUTES they would be held,
# uncounted, as a bot's would. The benchmark measures taking pledges, so it lifts the limit.
NO_BURST = "1000000000"
# Targets on SQLite: totals and pledges per second bind ("Every real pledge counts"); the pledge
# ratio (issue 7's) and the flatness are printed alongside, and flatness binds as before.
TOTALS_OVER_FLOOR = 0.85
FLAT_RATIO = 1.1
PLEDGE_OVER_FLOOR = 0.4  # reported, not binding: pledges per second is the guard now
PLEDGES_PER_SECOND = 1_000


# --- wrk -----------------------------------------------------------------------------------------


@dataclass
class Load:
    """One wrk run: what was asked, what came back, and what it cost."""

    phase: str  # "1k" / "1M": the size of the grown database, as a label
    server: str  # "grown" or "reference"
    scenario: str
    pledges: int  # counted pledges when the run started
    workers: int
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    non_2xx: int  # answers whose status was not 2xx (also in errors)
    socket_errors: dict[str, int]
    statuses: dict[str, int]
    server_cpu_percent: float  # master and workers, user + system, over the run's wall time
    server_cpu_ms: float  # the same per request answered: what the machine's other load moves least
    wrk_cpu_percent: float
    accepted_after: float | None  # seconds until the listen queue first held no waiting connection
    per_worker: list[int]  # wrk's connections held by each worker, most first, once all were in
    cpu_pressure: float | None  # share of the run in which some task on the machine waited for a CPU
    load_average: str  # at the end of the run
    counted: int | None = None  # growth of the counted total during a writing run
    ratio: float | None = None  # rps over the mean of the floor runs either side (set afterwards)
    command: str = ""


def wrk_argv(base_url: str, scenario: str, args: argparse.Namespace, slugs: Sequence[str]) -> list[str]:
    common = [
        "wrk",
        f"-t{min(args.threads, args.connections)}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--timeout",
        "10s",
    ]
    if scenario in (FLOOR, READ):
        path = HEALTHZ if scenario == FLOOR else TOTALS
        return [*common, "-s", str(LUA / "get.lua"), base_url + path]
    every = 1 if scenario == WRITE else MIX_EVERY
    tag = f"{scenario}{uuid.uuid4().hex[:10]}"
    spread = "1" if args.spread_addresses else "0"
    script_args = [tag, str(every), TOTALS, spread, *slugs]
    return [*common, "-s", str(LUA / "pledge.lua"), base_url, "--", *script_args]


def _cpu_ticks(pids: Sequence[int]) -> int:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_pressure_us() -> int | None:
    """Microseconds in which some task waited for a CPU (/proc/pressure/cpu), since boot."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    match = re.search(r"total=(\d+)", first)
    return int(match.group(1)) if match else None


class Connections:
    """Watches how gunicorn takes wrk's connections while wrk runs.

    wrk opens every connection at once. gunicorn's gevent workers share one listening socket
    and, when there are several, accept one connection per turn of their event loop
    (`max_accept = 1`): under load the last connections wait seconds before their first
    request is read (`accepted_after`, when the listen queue first empties), and however
    it goes, the split between workers is left to chance and stays for the whole run
    (`per_worker`, counted once every connection is in: a worker holding none idles).
    """

    def __init__(self, port: int, settle: float, every: float = 0.2) -> None:
        self.port, self.settle, self.every = port, settle, every
        self.accepted_after: float | None = None
        self.per_worker: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Connections:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _ss(self, *argv: str) -> str | None:
        try:
            done = subprocess.run(["ss", "-H", *argv], capture_output=True, text=True, timeout=2)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout

    def _waiting(self) -> int | None:
        listing = self._ss("-ltn", f"sport = :{self.port}")
        try:
            return int((listing or "").split()[1])
        except (IndexError, ValueError):
            return None

    def _watch(self) -> None:
        seen_waiting = False
        while not self._stop.wait(self.every):
            waiting = self._waiting()
            if waiting is None:
                return
            seen_waiting |= waiting > 0
            elapsed = time.perf_counter() - self._started
            if waiting == 0 and seen_waiting:
                self.accepted_after = elapsed
                break
            if waiting == 0 and elapsed > self.settle:
                self.accepted_after = 0.0  # never saw a connection wait
                break
        if self._stop.wait(max(0.0, self.settle - (time.perf_counter() - self._started))):
            return
        listing = self._ss("-tnp", "state", "established", f"( sport = :{self.port} )") or ""
        self.per_worker = sorted(Counter(re.findall(r"pid=(\d+)", listing)).values(), reverse=True)


def counted_total(base_url: str) -> int:
    # Each worker serves totals from a copy up to SNAPSHOT_SECONDS (1 s) old: wait it out.
    time.sleep(1.5)
    with requests.Session() as session:
        return int(get_ok(session, base_url + TOTALS).json()["total"])


def run_wrk(
    server: Server,
    scenario: str,
    args: argparse.Namespace,
    slugs: Sequence[str],
    phase: str,
    server_name: str,
) -> Load:
    argv = wrk_argv(server.base_url, scenario, args, slugs)
    writes = scenario in (WRITE, MIX)
    before = counted_total(server.base_url)
    pids = [server.pid, *worker_pids(server.pid)]
    pressure = _cpu_pressure_us()
    ticks, wrk_cpu, started = _cpu_ticks(pids), _children_cpu(), time.perf_counter()
    threads = min(args.threads, args.connections)
    hold = {"WRK_HOLD_MS": str(args.hold_ms), "WRK_CONNECTIONS_PER_THREAD": str(args.connections // threads)}
    port = int(server.base_url.rsplit(":", 1)[1])
    with Connections(port, settle=args.hold_ms / 1000 + 0.5) as connections:
        done = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            env=os.environ | hold,
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
        )
    wall = time.perf_counter() - started
    pressure_after = _cpu_pressure_us()
    server_cpu = (_cpu_ticks(pids) - ticks) / os.sysconf("SC_CLK_TCK")
    wrk_cpu = _children_cpu() - wrk_cpu
    match = re.search(r"^WRK-JSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise BenchError(
            f"{shlex.join(argv)} exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
    report = json.loads(match.group(1))
    socket_errors = {k: int(v) for k, v in report["errors"].items()}
    statuses = {k: int(v) for k, v in sorted(report["statuses"].items())}
    if statuses:  # the script saw every answer: anything but 2xx is an error
        bad_answers = sum(n for status, n in statuses.items() if not status.startswith("2"))
    else:  # wrk's own count, of answers ≥ 400
        bad_answers = socket_errors["status"]
    errors = bad_answers + sum(n for kind, n in socket_errors.items() if kind != "status")
    # The held first requests (report.lua) leave the start of the run idle: it is not load.
    seconds = (report["duration_us"] - report["hold_us"]) / 1e6
    latency = report["latency_us"]
    load = Load(
        phase=phase,
        server=server_name,
        scenario=scenario,
        pledges=before,
        workers=len(pids) - 1,
        connections=args.connections,
        seconds=seconds,
        requests=int(report["requests"]),
        rps=report["requests"] / seconds,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        mean_ms=report["latency_mean_us"] / 1000,
        max_ms=report["latency_max_us"] / 1000,
        errors=errors,
        non_2xx=bad_answers,
        socket_errors=socket_errors,
        statuses=statuses,
        server_cpu_percent=100 * server_cpu / wall,
        server_cpu_ms=1000 * server_cpu / max(int(report["requests"]), 1),
        wrk_cpu_percent=100 * wrk_cpu / wall,
        accepted_after=connections.accepted_after,
        # Padded with the workers that took none.
        per_worker=connections.per_worker + [0] * (len(pids) - 1 - len(connections.per_worker))
        if connections.per_worker
        else [],
        cpu_pressure=None
        if pressure is None or pressure_after is None
        else (pressure_after - pressure) / 1e6 / wall,
        load_average=load_average(),
        command=" ".join(f"{k}={v}" for k, v in hold.items())
        + " "
        + shlex.join([_relative(a) for a in argv]),
    )
    if bad_answers:
        shown = {status: n for status, n in statuses.items() if not status.startswith("2")} or bad_answers
        print(f"    ! {bad_answers} answers were not 2xx: {shown}", flush=True)
    if writes:
        load.counted = counted_total(server.base_url) - before
        created = statuses.get("201", 0)
        # Requests still in flight when wrk stops are answered to nobody, but counted all the same.
        if not created <= load.counted <= created + args.connections:
            load.errors += abs(load.counted - created)
            print(f"    ! {created} answered 201 but the total grew by {load.counted}", flush=True)
    print(
        f"    {phase:>3} {server_name:<9} {scenario:<7} {load.rps:8,.0f} req/s"
        f"  p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:7.2f} ms  errors {load.errors}"
        f"  server CPU {load.server_cpu_percent:3.0f}% ({load.server_cpu_ms:.2f} ms/req)"
        f"  wrk CPU {load.wrk_cpu_percent:3.0f}%  accepted after {_seconds(load.accepted_after)}"
        f" split {'/'.join(map(str, load.per_worker))}"
        f"  CPU pressure {_percent(load.cpu_pressure)}  load {load.load_average}",
        flush=True,
    )
    return load


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f} s"


def _percent(value: float | None) -> str:
    return "?" if value is None else f"{100 * value:.0f}%"


def _relative(arg: str) -> str:
    try:
        return str(Path(arg).relative_to(REPO_ROOT))
    except ValueError:
        return arg


def set_ratios(loads: Sequence[Load]) -> None:
    """Each run of the grown server over the mean of the floor runs on either side of it."""
    floors = [i for i, load in enumerate(loads) if load.scenario == FLOOR]
    for i, load in enumerate(loads):
        if load.scenario == FLOOR:
            continue
        before = [loads[j].rps for j in floors if j < i][-1:]
        after = [loads[j].rps for j in floors if j > i][:1]
        around = before + after
        if around:
            load.ratio = load.rps / (sum(around) / len(around))


# --- one backend ---------------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    workers: int
    connections: int
    worker_class: str
    loads: list[Load]
    grow_seconds: float | None
    recount: str
    settings: str
    commands: list[str]
    profiles: dict[str, list[list[Any]]] = field(default_factory=dict)

    def runs(self, phase: str, scenario: str, server: str = "grown") -> list[Load]:
        return [x for x in self.loads if (x.phase, x.scenario, x.server) == (phase, scenario, server)]


def configure(target: Target, args: argparse.Namespace) -> None:
    """Limits no benchmark reaches; Redis for rate limits next to PostgreSQL."""
    target.env.update({"PLEDGE_RATE_LIMIT": UNLIMITED, "API_RATE_LIMIT": UNLIMITED})
    if target.backend != SQLITE and args.redis_url:
        target.env["RATELIMIT_STORAGE_URI"] = args.redis_url
        target.env["RATELIMIT_KEY_PREFIX"] = f"bench-{target.schema}"
    if args.spread_addresses:
        # As behind one reverse proxy: every pledge from an address of its own, in X-Forwarded-For.
        target.env["TRUSTED_PROXIES"] = "1"
    else:
        target.env["BURST_LIMIT"] = NO_BURST


def neighborhood_slugs(server: Server) -> list[str]:
    with requests.Session() as session:
        listed = get_ok(session, server.base_url + NEIGHBORHOODS).json()["neighborhoods"]
    return [n["slug"] for n in listed]


def warm_up(server: Server, args: argparse.Namespace, slugs: Sequence[str], writes: bool = True) -> None:
    """Two seconds of each scenario, unreported: imports, pools and caches filled in every worker."""
    quick = argparse.Namespace(**vars(args) | {"seconds": 2})
    for scenario in (FLOOR, READ, MIX) if writes else (FLOOR, READ):
        subprocess.run(
            wrk_argv(server.base_url, scenario, quick, slugs), cwd=REPO_ROOT, capture_output=True, timeout=60
        )


def small_row(server: Server, args: argparse.Namespace, slugs: Sequence[str], phase: str) -> list[Load]:
    order = (FLOOR, READ, FLOOR, WRITE, FLOOR, MIX, FLOOR)
    return [run_wrk(server, scenario, args, slugs, phase, "grown") for scenario in order]


def large_row(grown: Server, reference: Server, args: argparse.Namespace, slugs: Sequence[str]) -> list[Load]:
    servers = {"grown": grown, "reference": reference}
    order = [
        ("grown", FLOOR),
        ("grown", READ),
        ("reference", READ),
        ("grown", FLOOR),
        ("reference", READ),
        ("grown", READ),
        ("grown", FLOOR),
        ("grown", WRITE),
        ("grown", FLOOR),
        ("grown", MIX),
        ("grown", FLOOR),
    ]
    loads = []
    for name, scenario in order:
        phase = "1k" if name == "reference" else "1M"
        loads.append(run_wrk(servers[name], scenario, args, slugs, phase, name))
    return loads


def run_backend(database_url: str | None, args: argparse.Namespace) -> BackendResult:
    with fresh_database(database_url) as grown, fresh_database(database_url) as small:
        print(f"\n== {grown.label}; reference {small.label}", flush=True)
        for target in (grown, small):
            configure(target, args)
            prepare(target)
            target.flask("pledges", "demo", "--count", str(args.small))
        with gunicorn(grown, workers=args.workers) as server:
            slugs = neighborhood_slugs(server)
            warm_up(server, args, slugs)
            loads = small_row(server, args, slugs, "1k")
            grow_by = args.large - counted_total(server.base_url)
            grow = grown.flask("pledges", "demo", "--count", str(grow_by), timeout=1800)
            print(f"  grew by {grow_by:,} pledges in {grow.seconds:.1f} s", flush=True)
            if (total := counted_total(server.base_url)) != args.large:
                raise BenchError(f"after growth the totals say {total:,} pledges, expected {args.large:,}")
            with gunicorn(small, workers=args.workers) as reference:
                warm_up(reference, args, slugs, writes=False)
                loads += large_row(server, reference, args, slugs)
            profiles = profile(server, grown.backend, args, slugs) if args.profile else {}
        recount = grown.flask("pledges", "recount", "--check", timeout=600)
        set_ratios([x for x in loads if x.server == "grown"])
        result = BackendResult(
            backend=grown.backend,
            workers=args.workers,
            connections=args.connections,
            worker_class=server.worker,
            loads=loads,
            grow_seconds=grow.seconds,
            recount=recount.stdout.splitlines()[-1] if recount.stdout else "ok",
            settings=grown.settings() + _extra_settings(grown),
            commands=grown.commands + [f"{c}   # reference" for c in small.commands] + _wrk_commands(loads),
            profiles=profiles,
        )
        forget_rate_limits(grown, small)
        return result


def sweep_backend(database_url: str | None, args: argparse.Namespace) -> list[BackendResult]:
    """The 1,000-pledge row for every worker count and connection count asked for."""
    results = []
    for workers in args.sweep_workers:
        with fresh_database(database_url) as target:
            print(f"\n== {target.label}, {workers} workers", flush=True)
            configure(target, args)
            prepare(target)
            target.flask("pledges", "demo", "--count", str(args.small))
            with gunicorn(target, workers=workers) as server:
                slugs = neighborhood_slugs(server)
                warm_up(server, args, slugs)
                for connections in args.sweep_connections:
                    settings = argparse.Namespace(
                        **vars(args) | {"connections": connections, "workers": workers}
                    )
                    loads = small_row(server, settings, slugs, "1k")
                    set_ratios(loads)
                    results.append(
                        BackendResult(
                            backend=target.backend,
                            workers=workers,
                            connections=connections,
                            worker_class=server.worker,
                            loads=loads,
                            grow_seconds=None,
                            recount="(not run)",
                            settings=target.settings() + _extra_settings(target),
                            commands=target.commands + _wrk_commands(loads),
                        )
                    )
            forget_rate_limits(target)
    return results


def _extra_settings(target: Target) -> str:
    shown = ("BURST_LIMIT", "RATELIMIT_KEY_PREFIX", "TRUSTED_PROXIES")
    return "".join(f" {k}={shlex.quote(target.env[k])}" for k in shown if k in target.env)


def _wrk_commands(loads: Sequence[Load]) -> list[str]:
    """One wrk command per scenario (the tag of a pledge run is random each time)."""
    seen: dict[str, str] = {}
    for load in loads:
        seen.setdefault(load.scenario, load.command)
    return list(seen.values())


def forget_rate_limits(*targets: Target) -> None:
    """Drop the run's counters from Redis (they would expire within the minute anyway)."""
    for target in targets:
        prefix = target.env.get("RATELIMIT_KEY_PREFIX")
        url = target.env.get("RATELIMIT_STORAGE_URI", "")
        if not prefix or not url.startswith("redis://"):
            continue
        import redis

        client = redis.Redis.from_url(url, socket_timeout=2)
        try:
            keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError as error:
            print(f"  (could not clear the Redis counters: {error})")
        finally:
            client.close()


# --- profiling -----------------------------------------------------------------------------------


def profile(
    server: Server, backend: str, args: argparse.Namespace, slugs: Sequence[str]
) -> dict[str, list[list[Any]]]:
    """One more run of each scenario with py-spy recording every worker; the hottest frames of each."""
    py_spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if py_spy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy)")
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    summaries: dict[str, list[list[Any]]] = {}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for scenario in (FLOOR, READ, WRITE):
        outputs = []
        with ExitStack() as stack:
            for pid in worker_pids(server.pid):
                out = OUT_DIR / f"throughput-{backend}-{scenario}-{stamp}-{pid}.txt"
                argv = [py_spy, "record", "--format", "raw", "-r", "100", "-d", str(args.seconds)]
                argv += ["--pid", str(pid), "-o", str(out)]
                stack.enter_context(_background(argv))
                outputs.append(out)
            time.sleep(0.5)
            run_wrk(server, scenario, args, slugs, "1M", "profiled")
        summaries[scenario] = hottest_frames(outputs)
        print(f"  py-spy stacks of {scenario}: {', '.join(str(o.relative_to(REPO_ROOT)) for o in outputs)}")
    return summaries


@contextmanager
def _background(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def hottest_frames(outputs: Sequence[Path], top: int = 25, trunk: float = 0.7) -> list[list[Any]]:
    """Share of samples in which each frame appears (inclusive) and is the innermost (self).

    Frames in more than `trunk` of the samples are the server's and Flask's own call chain,
    the same for every request: they are left out, so the table shows where requests differ.
    """
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for path in outputs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [_frame(f) for f in stack.split(";") if f]
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            if frames:
                leaf[frames[-1]] += n
    if not total:
        return []
    branches = [(frame, n) for frame, n in inclusive.most_common() if n <= trunk * total][:top]
    return [[frame, f"{100 * n / total:.1f}", f"{100 * leaf[frame] / total:.1f}"] for frame, n in branches]


def _frame(raw: str) -> str:
    """`function (path/to/file.py:123)` → `function (file.py)`: lines differ, functions add up."""
    match = re.match(r"(.*) \((.*?):\d+\)$", raw.strip())
    if not match:
        return raw.strip()
    function, path = match.groups()
    parts = Path(path).parts
    short = "/".join(parts[parts.index("pledges") :]) if "pledges" in parts else "/".join(parts[-2:])
    return f"{function} ({short})"


# --- report --------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def load_rows(results: Sequence[BackendResult]) -> list[list[Any]]:
    rows = []
    for r in results:
        for x in r.loads:
            rows.append(
                [
                    r.backend,
                    f"{r.workers} × {r.connections}",
                    f"{x.pledges:,}",
                    x.server,
                    x.scenario,
                    f"{x.rps:,.0f}",
                    _ms(x.p50_ms),
                    _ms(x.p99_ms),
                    "" if x.ratio is None else f"{x.ratio:.2f}",
                    str(x.errors),
                    "" if x.counted is None else f"{x.counted:,}",
                    f"{x.server_cpu_percent:.0f}",
                    f"{x.server_cpu_ms:.2f}",
                    f"{x.wrk_cpu_percent:.0f}",
                    "> run" if x.accepted_after is None else f"{x.accepted_after:.1f}",
                    "/".join(map(str, x.per_worker)) or "?",
                    "" if x.cpu_pressure is None else f"{100 * x.cpu_pressure:.0f}",
                    x.load_average.split()[0],
                ]
            )
    return rows


LOAD_HEADERS = [
    "backend",
    "workers × conns",
    "pledges",
    "server",
    "scenario",
    "req/s",
    "p50 ms",
    "p99 ms",
    "× floor",
    "errors",
    "counted",
    "server CPU %",
    "CPU ms/req",
    "wrk CPU %",
    "ramp s",
    "conns/worker",
    "CPU wait %",
    "load 1m",
]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


@dataclass(frozen=True)
class Verdict:
    backend: str
    target: str
    measured: str
    met: bool
    how: str = ""  # how the figure was measured
    everywhere: bool = False  # binding on every database, not on SQLite alone
    reported: bool = False  # printed for comparison with earlier runs, binding nowhere


WRK = "wrk -t{t} -c{c} -d{d}s"


def answers_verdict(r: BackendResult) -> Verdict:
    """Every answer of every measured run (floors and reference too) was 2xx, on any database."""
    non_2xx = sum(x.non_2xx for x in r.loads)
    sockets = sum(n for x in r.loads for kind, n in x.socket_errors.items() if kind != "status")
    statuses: Counter[str] = Counter()
    for x in r.loads:
        statuses.update({k: v for k, v in x.statuses.items() if not k.startswith("2")})
    answered = sum(x.requests for x in r.loads)
    return Verdict(
        r.backend,
        "every answer 2xx, no socket error or timeout",
        f"{non_2xx:,} non-2xx{f' {dict(statuses)}' if statuses else ''}, {sockets} socket errors"
        f" in {answered:,} answers",
        non_2xx == 0 and sockets == 0,
        f"every status counted by bench/lua/report.lua over all {len(r.loads)} wrk runs",
        everywhere=True,
    )


def verdicts(r: BackendResult, args: argparse.Namespace) -> list[Verdict]:
    wrk = WRK.format(t=min(args.threads, r.connections), c=r.connections, d=args.seconds)
    totals_large = r.runs("1M", READ)
    totals_reference = r.runs("1k", READ, "reference")
    ratio_large = _mean([x.ratio for x in totals_large if x.ratio is not None])
    flat = _mean([x.p50_ms for x in totals_large]) / _mean([x.p50_ms for x in totals_reference])
    runs = " and ".join(f"{x.rps:,.0f} req/s ({x.ratio:.2f} ×)" for x in totals_large if x.ratio is not None)
    out = [
        answers_verdict(r),
        Verdict(
            r.backend,
            f"totals at 1M ≥ {TOTALS_OVER_FLOOR} × /healthz",
            f"{ratio_large:.2f} × /healthz",
            ratio_large >= TOTALS_OVER_FLOOR,
            f"{wrk} GET {TOTALS}, {len(totals_large)} runs ({runs}), each over the mean of the"
            f" GET {HEALTHZ} runs either side of it on the same server, same run; the mean of them",
        ),
        Verdict(
            r.backend,
            f"totals p50 at 1M ÷ p50 at 1k ≤ {FLAT_RATIO} (same minutes)",
            f"{flat:.3f}",
            flat <= FLAT_RATIO,
            f"{wrk} GET {TOTALS}: wrk's p50, grown server over the reference server, interleaved ABBA",
        ),
    ]
    for phase in ("1k", "1M"):
        for x in r.runs(phase, WRITE):
            out += [
                Verdict(
                    r.backend,
                    f"pledge POST at {phase} ≥ {PLEDGE_OVER_FLOOR} × floor",
                    f"{x.ratio:.2f} × floor",
                    (x.ratio or 0) >= PLEDGE_OVER_FLOOR,
                    f"the req/s below over the mean of the GET {HEALTHZ} runs either side, same run",
                    reported=True,
                ),
                Verdict(
                    r.backend,
                    f"pledge POST at {phase} ≥ {PLEDGES_PER_SECOND:,}/s",
                    f"{x.rps:,.0f}/s",
                    x.rps >= PLEDGES_PER_SECOND,
                    f"{wrk} POST a new pledge each (bench/lua/pledge.lua): answers ÷ {x.seconds:.1f} s",
                ),
                Verdict(
                    r.backend,
                    f"pledge POST at {phase}: zero errors, every 201 counted",
                    f"{x.errors} errors, {x.statuses.get('201', 0):,} × 201, total +{x.counted:,}",
                    x.errors == 0,
                    "statuses from wrk; the counted total read from the totals API before and after",
                ),
            ]
    for x in r.runs("1k", MIX) + r.runs("1M", MIX):
        out.append(
            Verdict(
                r.backend,
                f"90/10 mix at {x.phase}: zero errors",
                f"{x.errors} errors",
                x.errors == 0,
                f"{wrk}, 9 GET totals then 1 POST pledge per thread, over and over",
            )
        )
    return out


def report(results: Sequence[BackendResult], args: argparse.Namespace, sweep: bool) -> bool:
    print("\n" + "=" * 100)
    print(
        f"wrk -t{args.threads} -d{args.seconds}s from the same machine;"
        " latency as wrk measures it (client side)\n"
    )
    print(markdown_table(LOAD_HEADERS, load_rows(results), labels=5))
    print(
        "\n× floor: req/s over the mean of the /healthz runs either side, same server and client."
        " counted: growth of the counted total during the run."
        " server CPU: gunicorn master + workers, user + system, over wall time (200 % = both cores),"
        " and per request answered. ramp: seconds until gunicorn had accepted every wrk connection;"
        " conns/worker: how they were shared (a worker with none sat idle)."
        " CPU wait: share of the run in which some task on the machine waited for a CPU (/proc/pressure/cpu)."
    )
    failed: list[Verdict] = []
    if sweep:
        failed += [v for r in results if not (v := answers_verdict(r)).met]
    else:
        rows = []
        for r in results:
            for v in verdicts(r, args):
                binding = (r.backend == SQLITE or v.everywhere) and not v.reported
                if binding and not v.met:
                    failed.append(v)
                verdict = ("met" if v.met else "MISSED") if binding else ("(met)" if v.met else "(missed)")
                rows.append([v.backend, v.target, v.measured, verdict, v.how])
        print("\nTargets (binding on SQLite, 2xx answers on both; PostgreSQL against the same numbers):\n")
        headers = ["backend", "target", "measured", "verdict", "how it was measured"]
        print(markdown_table(headers, rows, labels=5))
        for r in results:
            if r.grow_seconds is not None:
                print(
                    f"\n{r.backend}: grown to {args.large:,} in {r.grow_seconds:.1f} s;"
                    f" recount --check: {r.recount}"
                )
            for scenario, frames in r.profiles.items():
                print(f"\n{r.backend}, py-spy over every worker during '{scenario}' (% of samples):\n")
                print(markdown_table(["frame", "inclusive %", "self %"], frames))
    print("\nHow it was measured:")
    for r in results[:1] if sweep else results:
        print(f"  {r.backend}: gunicorn worker class '{r.worker_class}' (gunicorn.conf.py)")
        print(f"    environment: {r.settings}")
        for command in r.commands:
            print(f"    $ {command}")
    print()
    for v in failed:
        print(f"FAILED ({v.backend}): {v.target}: measured {v.measured}", flush=True)
    if not failed:
        print("All binding targets met.")
    return not failed


def _int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_database_options(parser)
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="rate limits of the PostgreSQL run ('' for memory)",
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (`make run`: WORKERS=2)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seconds", type=int, default=8, help="length of every wrk run")
    parser.add_argument(
        "--hold-ms",
        type=int,
        default=0,
        help="the first request of every connection waits this long (slows wrk: see above)",
    )
    parser.add_argument(
        "--small", type=int, default=1_000, help="pledges at the first row and in the reference"
    )
    parser.add_argument("--large", type=int, default=1_000_000, help="pledges after growth")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy every worker in extra runs at the large size"
    )
    parser.add_argument(
        "--one-address",
        dest="spread_addresses",
        action="store_false",
        help="every pledge from 127.0.0.1 (BURST_LIMIT lifted), not each from an address of its own",
    )
    parser.add_argument(
        "--sweep-workers", type=_int_list, help="e.g. 2,3,4: only the small row, per combination"
    )
    parser.add_argument("--sweep-connections", type=_int_list, help="e.g. 32,64 (default: --connections)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed: apt-get install -y wrk")
    urls = database_urls(parser, args)
    sweep = bool(args.sweep_workers or args.sweep_connections)
    if sweep:
        args.sweep_workers = args.sweep_workers or [args.workers]
        args.sweep_connections = args.sweep_connections or [args.connections]

    print_header(TITLE, args.database_url)
    results: list[BackendResult] = []
    for url in urls:
        results += sweep_backend(url, args) if sweep else [run_backend(url, args)]
    all_met = report(results, args, sweep)
    save_results("throughput-sweep" if sweep else "throughput", args, [asdict(r) for r in results])
    return 0 if all_met else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
