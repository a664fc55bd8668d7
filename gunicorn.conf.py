"""Gunicorn settings for `make run` and production (override with the environment).

gevent workers: one process holds thousands of open dashboard streams, each a
cheap greenlet, while pledges keep flowing; psycopg 3 cooperates with gevent.
"""

import os
import shutil
import tempfile

# Prometheus counters from every worker, summed at /metrics: they share a directory.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="porchlight-metrics-"))

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "2"))
worker_class = os.environ.get("WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# Streams stay open for hours; gevent workers keep their heartbeat with the master regardless.
timeout = 30
# On SIGTERM, requests in flight (a pledge being written) get this long to finish.
graceful_timeout = 20
keepalive = 5
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
