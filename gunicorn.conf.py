"""Gunicorn settings for `make run` and production (override with the environment).

gevent workers: one process holds thousands of open dashboard streams, each a
cheap greenlet, while pledges keep flowing; psycopg 3 cooperates with gevent.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WORKERS", "2"))
worker_class = os.environ.get("WORKER_CLASS", "gevent")
worker_connections = int(os.environ.get("WORKER_CONNECTIONS", "2000"))
# Streams stay open for hours; gevent workers keep their heartbeat with the master regardless.
timeout = 30
# On SIGTERM, requests in flight (a pledge being written) get this long to finish.
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-")
# No client address and no query string in the access log (privacy): a query can carry an email.
access_log_format = '%(t)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

# The longest request line gunicorn allows: long filter or cursor values reach the app,
# which answers them with a JSON error instead of gunicorn's HTML 414.
limit_request_line = 8190
