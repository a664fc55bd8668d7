"""Gunicorn settings for `make run` and production (override with the environment).

gevent workers: one process holds thousands of open dashboard streams, each a
cheap greenlet, while pledges keep flowing; psycopg 3 cooperates with gevent.
"""

import os
import shutil
import signal
import tempfile
import threading

# Prometheus counters from every worker, summed at /metrics: they share a directory.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="porchlight-metrics-"))

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "2"))
worker_class = os.environ.get("WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# Streams stay open for hours; gevent workers keep their heartbeat with the master regardless.
timeout = 30
# On SIGTERM, requests in flight (a pledge being written) get this long to finish; open streams
# end at once (post_worker_init below), so a restart takes a second or two.
graceful_timeout = 20
# Seconds a connection may sit idle between requests, or take to send a request's headers:
# idle keep-alive and half-open connections give their place back to pledges this soon, and a
# shutdown waits no longer for them. (Open streams write a heartbeat; this does not end them.)
keepalive = 2
# gunicornc's control socket: off unless CONTROL_SOCKET names one. Its default path, under the
# home directory, is the same for every instance on a host, and each would take it from the last.
if os.environ.get("CONTROL_SOCKET"):
    control_socket = os.environ["CONTROL_SOCKET"]
else:
    control_socket_disable = True
# The app writes one JSON line per request (pledges/observability.py); gunicorn's own access
# log is off unless ACCESS_LOG names a file. Its format keeps no client address, no query string.
accesslog = os.environ.get("ACCESS_LOG") or None
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# The longest request line gunicorn allows (its maximum; 0 = unlimited): long filter or cursor
# values reach the app, which answers them with a JSON error instead of gunicorn's HTML 414.
limit_request_line = int(os.environ.get("LIMIT_REQUEST_LINE", "8190"))


def on_starting(server):  # noqa: ARG001 - gunicorn's hook signature
    """Start each server run with empty metrics."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):  # noqa: ARG001
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    """On SIGTERM, end this worker's open streams at once, then stop as gunicorn does."""
    graceful_exit = signal.getsignal(signal.SIGTERM)

    def end_streams_then_exit(signum, frame):
        from pledges import live

        # Not in the handler itself, which may run in gevent's hub: ending streams takes locks.
        in_background(live.end_all_streams)
        graceful_exit(signum, frame)

    signal.signal(signal.SIGTERM, end_streams_then_exit)
    signal.siginterrupt(signal.SIGTERM, False)  # as gunicorn set it: requests in flight go on


def in_background(task):
    """Run `task` in a greenlet under gevent (a thread's start would block the hub), else a thread."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        gevent.spawn(task)
    else:
        threading.Thread(target=task, daemon=True).start()
