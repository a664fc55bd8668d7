"""Totals never scan pledges: their cost must stay flat from 1 thousand to 1 million pledges.

Serves a fresh database with a real gunicorn and times GET /api/v1/campaigns/current/totals
against GET /healthz (the floor: same server, same client, no database) at 1,000 pledges;
grows that same database to 1,000,000 with `pledges demo` and times both again. So that the
machine's drift between the two moments cannot pass for growth, the second measurement is
interleaved with a reference: a second gunicorn on a second fresh database left at 1,000.

    .venv/bin/python bench/totals_flat.py [--database-url postgresql+psycopg://…]

SQLite always; PostgreSQL too when --database-url is given (in schemas of their own, dropped after).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from typing import Any

import requests
from _harness import (
    UNLIMITED,
    BenchError,
    Server,
    Summary,
    Target,
    add_database_options,
    database_urls,
    fresh_database,
    get_ok,
    gunicorn,
    markdown_table,
    prepare,
    print_header,
    save_results,
    timed_blocks,
)

TOTALS = "/api/v1/campaigns/current/totals"
HEALTHZ = "/healthz"
TARGET_RATIO = 1.1
TITLE = "bench/totals_flat.py — Totals never scan pledges: cost flat from 1 thousand to 1 million"


@dataclass(frozen=True)
class Point:
    """The latencies of one server at one size of its pledges table."""

    pledges: int
    measured: str
    totals: Summary
    healthz: Summary
    database_bytes: int

    @property
    def over_floor(self) -> float:
        return self.totals.p50 / self.healthz.p50


@dataclass(frozen=True)
class BackendResult:
    backend: str
    before: Point  # the grown database, before it grew
    after: Point  # the same database and server, after
    reference: Point  # a second server on a small database, interleaved with `after`
    grow_seconds: float
    worker: str
    connection_header: str
    settings: str
    commands: list[str]

    @property
    def ratio(self) -> float:
        """p50 large over p50 small, measured in the same minutes: the figure the target is about."""
        return self.after.totals.p50 / self.reference.totals.p50

    @property
    def sequential_ratio(self) -> float:
        """p50 after growth over p50 before it, minutes apart."""
        return self.after.totals.p50 / self.before.totals.p50

    @property
    def sequential_normalized_ratio(self) -> float:
        """The same, each p50 first divided by the /healthz p50 measured alongside it."""
        return self.after.over_floor / self.before.over_floor


def measure(
    servers: dict[str, tuple[Server, Target, int]], args: argparse.Namespace, measured: str
) -> dict[str, Point]:
    """Totals and /healthz of every server, all interleaved in blocks, after checking each total."""
    urls: dict[str, str] = {}
    with requests.Session() as session:
        for name, (server, _, pledges) in servers.items():
            total = get_ok(session, server.base_url + TOTALS).json()["total"]
            if total != pledges:
                raise BenchError(f"{name}: totals say {total} pledges, expected {pledges}")
            urls[f"{name} totals"] = server.base_url + TOTALS
            urls[f"{name} healthz"] = server.base_url + HEALTHZ
        timed_blocks(session, urls, args.warmup, args.block)
        samples = timed_blocks(session, urls, args.requests, args.block)
    return {
        name: Point(
            pledges=pledges,
            measured=measured if name == "grown" else f"{measured}, reference server",
            totals=Summary.of(samples[f"{name} totals"]),
            healthz=Summary.of(samples[f"{name} healthz"]),
            database_bytes=target.database_bytes(),
        )
        for name, (_, target, pledges) in servers.items()
    }


def _say(point: Point) -> None:
    what = f"{point.pledges:>9,} pledges ({point.measured})"
    print(f"  {what}: totals p50 {point.totals.p50:.2f} ms", flush=True)


def run_backend(database_url: str | None, args: argparse.Namespace) -> BackendResult:
    with fresh_database(database_url) as grown, fresh_database(database_url) as small:
        print(f"\n== {grown.label}; reference {small.label}", flush=True)
        for target in (grown, small):
            prepare(target)
            target.flask("pledges", "demo", "--count", str(args.small))
        with gunicorn(grown) as server:
            with requests.Session() as session:
                connection = get_ok(session, server.base_url + HEALTHZ).headers.get("Connection", "(none)")
            before = measure({"grown": (server, grown, args.small)}, args, "before growth")["grown"]
            _say(before)
            grow = grown.flask("pledges", "demo", "--count", str(args.large - args.small), timeout=1800)
            print(f"  grew by {args.large - args.small:,} pledges in {grow.seconds:.1f} s", flush=True)
            with gunicorn(small) as reference_server:
                points = measure(
                    {
                        "grown": (server, grown, args.large),
                        "reference": (reference_server, small, args.small),
                    },
                    args,
                    "after growth",
                )
        for point in points.values():
            _say(point)
        return BackendResult(
            backend=grown.backend,
            before=before,
            after=points["grown"],
            reference=points["reference"],
            grow_seconds=grow.seconds,
            worker=server.worker,
            connection_header=connection,
            settings=grown.settings(),
            commands=grown.commands + [f"{c}   # reference" for c in small.commands],
        )


def report(results: list[BackendResult], args: argparse.Namespace) -> None:
    rows: list[list[Any]] = []
    for r in results:
        for p in (r.before, r.after, r.reference):
            rows.append(
                [
                    r.backend,
                    p.measured,
                    f"{p.pledges:,}",
                    f"{p.totals.p50:.2f}",
                    f"{p.totals.p95:.2f}",
                    f"{p.totals.mean:.2f}",
                    f"{p.healthz.p50:.2f}",
                    f"{p.over_floor:.2f}",
                    f"{p.database_bytes / 2**20:,.1f}",
                ]
            )
    print("\n" + "=" * 100)
    print("Totals latency against the size of the pledges table (ms, client side, sequential requests)\n")
    headers = [
        "backend",
        "measured",
        "pledges",
        "totals p50",
        "totals p95",
        "totals mean",
        "healthz p50",
        "totals/healthz",
        "size MiB*",
    ]
    print(markdown_table(headers, rows, labels=2))
    print(
        "* size on disk: SQLite, the whole database file and its WAL;"
        " PostgreSQL, pg_total_relation_size of the pledges table\n"
    )
    verdicts = [
        [
            r.backend,
            f"{r.ratio:.3f}",
            f"≤ {TARGET_RATIO}",
            "target met" if r.ratio <= TARGET_RATIO else "TARGET MISSED",
            f"{r.sequential_ratio:.3f}",
            f"{r.sequential_normalized_ratio:.3f}",
            f"{r.grow_seconds:.1f}",
        ]
        for r in results
    ]
    large, small = f"{args.large:,}", f"{args.small:,}"
    headers = [
        "backend",
        f"p50({large}) / p50({small}), same minutes",
        "target",
        "verdict",
        "after / before growth",
        "same, over healthz",
        f"demo +{args.large - args.small:,} (s)",
    ]
    print(markdown_table(headers, verdicts))
    print("\nHow it was measured:")
    print(
        f"  before growth: {args.warmup} warm-up then {args.requests} timed GETs each of totals and /healthz,"
        f" alternating in blocks of {args.block}; after growth: the same for the grown server and the"
        " reference server together (four URLs in rotating blocks, the order reversed every round);"
        " one requests.Session, one client thread, on the same machine as the servers"
    )
    print(
        "  the verdict compares the grown server with the reference measured in the same minutes;"
        " 'after / before growth' is the same database before and after, minutes apart"
        " ('over healthz' divides out what the machine's drift did to /healthz meanwhile)"
    )
    print(
        "  latency is client-side wall time (time.perf_counter around session.get), including"
        f" the HTTP round trip on 127.0.0.1; rate limits set to {UNLIMITED}"
    )
    for r in results:
        print(
            f"  {r.backend}: gunicorn -w 2 (worker class '{r.worker}', from the repository's gunicorn.conf.py"
            f" if present), started once and kept running while the table grew;"
            f" it answers 'Connection: {r.connection_header}'"
        )
        print(f"    environment: {r.settings}")
        for command in r.commands:
            print(f"    $ {command}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_database_options(parser)
    parser.add_argument("--small", type=int, default=1_000, help="pledges at the first measurement")
    parser.add_argument("--large", type=int, default=1_000_000, help="pledges at the second measurement")
    parser.add_argument("--requests", type=int, default=2_000, help="timed GETs per URL and size")
    parser.add_argument("--warmup", type=int, default=200, help="untimed GETs per URL before timing")
    parser.add_argument("--block", type=int, default=100, help="GETs in a row before switching URL")
    args = parser.parse_args(argv)
    if not 0 < args.small < args.large:
        parser.error("need 0 < --small < --large")
    urls = database_urls(parser, args)

    print_header(TITLE, args.database_url)
    results = [run_backend(url, args) for url in urls]
    report(results, args)
    save_results("totals_flat", args, [_as_json(r) for r in results])
    return 0


def _as_json(result: BackendResult) -> dict[str, Any]:
    return asdict(result) | {
        "ratio": result.ratio,
        "sequential_ratio": result.sequential_ratio,
        "sequential_normalized_ratio": result.sequential_normalized_ratio,
    }


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
