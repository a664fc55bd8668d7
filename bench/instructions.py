"""Instructions per request, GET totals over GET /healthz, counted by callgrind: what a read costs the app.

On a shared machine requests per second drift by ±15 % from one run to the next, so a change of a
few per cent in what a totals read costs cannot be seen under wrk. callgrind counts the instructions
the process executes instead (the same count for the same code, whatever else the machine does):

1. A fresh database (`db upgrade`, `pledges seed`), as bench/throughput.py makes it.
2. This script again, as a child under `valgrind --tool=callgrind`, counting only inside
   `functools.reduce`: the child builds the app (`create_app()`, the settings below), answers each
   URL twice to warm it, then calls the WSGI app directly `--requests` times per URL inside one
   `reduce` each (no server, no socket: the app's own cost), with the garbage collector paused.
3. The counts of those two calls, divided by `--requests`.

Settings: PYTHONHASHSEED=0 (the same dict layouts every run), SNAPSHOT_SECONDS=3600 (under
callgrind a request takes a hundred times longer; with the default second the totals copy would be
rebuilt every few requests, which at full speed happens once in thousands), rate limits lifted as in
throughput.py, the JSON request log at WARNING (it writes to stderr; both URLs write the same line).

    .venv/bin/python bench/instructions.py [--requests 200]

Prints both counts, their difference and their ratio; the figures land in bench/out/ too.
Needs valgrind (Debian: `apt-get install valgrind`). A run takes one to two minutes.
"""

from __future__ import annotations

import argparse
import functools
import gc
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _harness import REPO_ROOT, BenchError, fresh_database, prepare, print_header, save_results

URLS = {"healthz": "/healthz", "totals": "/api/v1/campaigns/current/totals"}
CHILD_SETTINGS = {"PYTHONHASHSEED": "0", "SNAPSHOT_SECONDS": "3600", "LOG_LEVEL": "WARNING"}


def child(requests: int) -> None:
    """Runs under callgrind: one `reduce` per URL, `requests` WSGI calls in each."""
    sys.path.insert(0, str(REPO_ROOT))
    from pledges import create_app

    app = create_app()

    def call(path: str) -> None:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        statuses = []
        b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
        if not statuses[0].startswith("200"):
            raise BenchError(f"GET {path} answered {statuses[0]}")

    for name, path in URLS.items():
        call(path)
        call(path)
        gc.collect()
        gc.disable()
        functools.reduce(lambda _, __: call(path), range(requests), None)
        gc.enable()
        print(f"counted {name}", flush=True)


def counted(out_dir: Path, requests: int) -> dict[str, float]:
    """Instructions per request from the last dumps, one per URL, in the order the child ran them."""
    dumps = sorted(out_dir.glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    totals = []
    for dump in dumps[-len(URLS) :]:
        match = re.search(r"^(?:totals|summary): (\d+)", dump.read_text(errors="replace"), re.M)
        if match is None:
            raise BenchError(f"no instruction count in {dump}")
        totals.append(int(match.group(1)) / requests)
    return dict(zip(URLS, totals, strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="WSGI calls counted per URL")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(database_url=None)  # SQLite only; save_results records it
    args = parser.parse_args()
    if args.child:
        child(args.requests)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise BenchError("valgrind is not installed (apt-get install valgrind)")
    print_header(__doc__.split("\n\n")[0], None)
    with fresh_database(None) as target:
        prepare(target)
        out_dir = Path(tempfile.mkdtemp(prefix="porchlight-callgrind-"))
        argv = [
            valgrind,
            "--tool=callgrind",
            "--collect-atstart=no",
            "--toggle-collect=functools_reduce",
            "--dump-after=functools_reduce",
            f"--callgrind-out-file={out_dir}/callgrind.out",
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            f"--requests={args.requests}",
        ]
        env = {**target.env, **CHILD_SETTINGS}
        try:
            run = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800)
            if run.returncode != 0 or run.stdout.count("counted ") != len(URLS):
                raise BenchError(
                    f"the child under callgrind failed ({run.returncode}):\n{run.stderr[-3000:]}"
                )
            per_request = counted(out_dir, args.requests)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
    healthz, totals = per_request["healthz"], per_request["totals"]
    print(f"  /healthz   {healthz:>12,.0f} instructions a request")
    print(f"  totals     {totals:>12,.0f} instructions a request")
    print(f"  difference {totals - healthz:>12,.0f}; /healthz ÷ totals = {healthz / totals:.3f}")
    print(f"How: {args.requests} direct WSGI calls per URL, counted by callgrind, with")
    print(f"  {' '.join(f'{k}={v}' for k, v in CHILD_SETTINGS.items())}")
    print(f"  $ {' '.join(argv[:6])} python bench/instructions.py --child --requests={args.requests}")
    result = {
        "instructions_per_request": per_request,
        "difference": totals - healthz,
        "ratio": healthz / totals,
    }
    save_results("instructions", args, [result])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench/instructions.py: {error}", file=sys.stderr)
        sys.exit(2)
