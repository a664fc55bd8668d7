"""Fair limits: reads by key or address, pledges by address, counted in Redis across processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
import requests
from flask_migrate import upgrade
from limits import parse, parse_many
from limits.storage import storage_from_string

from pledges.extensions import limiter
from pledges.ratelimits import EXTENSION, Counters, ProcessWindows, parsed
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, make_key, post_pledge, submit_form
from .outage import TcpProxy, through, upstream
from .servers import running_server

TOTALS = "/api/v1/campaigns/current/totals"


def limited_app(database_url, tmp_path, **settings):
    app = make_app(database_url, tmp_path, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def codes(client, path, times, **kwargs) -> list[int]:
    return [client.get(path, **kwargs).status_code for _ in range(times)]


def test_anonymous_reads_share_one_limit_per_address_across_routes(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, API_RATE_LIMIT="3/minute").test_client()

    assert codes(client, TOTALS, 2) == [200, 200]
    assert client.get("/api/v1/neighborhoods").status_code == 200
    refused = client.get("/api/v1/campaigns")

    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-RateLimit-Limit"] == "3"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) > 0


def test_a_key_has_its_own_bucket_and_its_own_limit(database_url, tmp_path):
    app = limited_app(database_url, tmp_path, API_RATE_LIMIT="2/minute", API_KEY_RATE_LIMIT="4/minute")
    generous, default = make_key(app, "generous", limit="6/minute"), make_key(app, "default")
    client = app.test_client()

    assert codes(client, TOTALS, 3) == [200, 200, 429]
    assert codes(client, TOTALS, 7, headers=bearer(generous)) == [200] * 6 + [429]
    assert codes(client, TOTALS, 5, headers=bearer(default)) == [200] * 4 + [429]
    assert client.get(TOTALS, headers=bearer(default)).headers["X-RateLimit-Limit"] == "4"


def test_random_keys_cannot_mint_fresh_allowances(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, API_RATE_LIMIT="2/minute").test_client()
    assert codes(client, TOTALS, 2) == [200, 200]

    guesses = {client.get(TOTALS, headers=bearer(f"pl_{uuid.uuid4().hex}")).status_code for _ in range(5)}

    assert guesses == {401}  # an unknown key is refused outright: it opens no bucket of its own
    assert client.get(TOTALS).status_code == 429


def test_pledges_are_limited_per_address_across_the_form_and_the_api(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="2/minute").test_client()

    assert post_pledge(client).status_code == 201
    assert submit_form(client).status_code == 303
    assert post_pledge(client).status_code == 429
    assert submit_form(client).status_code == 429


def test_with_no_trusted_proxy_a_forged_forwarded_for_does_not_change_the_bucket(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, API_RATE_LIMIT="2/minute", TRUSTED_PROXIES=0).test_client()

    statuses = [
        client.get(TOTALS, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(3)
    ]

    assert statuses == [200, 200, 429]


def test_behind_one_trusted_proxy_each_client_address_has_its_own_bucket(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, API_RATE_LIMIT="2/minute", TRUSTED_PROXIES=1).test_client()

    first = codes(client, TOTALS, 3, headers={"X-Forwarded-For": "198.51.100.1"})
    second = codes(client, TOTALS, 1, headers={"X-Forwarded-For": "198.51.100.2"})

    assert first == [200, 200, 429]
    assert second == [200]


def test_two_app_instances_on_one_redis_share_the_limit(database_url, tmp_path, redis_url):
    prefix = uuid.uuid4().hex
    settings = {
        "API_RATE_LIMIT": "3/minute",
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": prefix,
    }
    first = limited_app(database_url, tmp_path, **settings).test_client()
    second = make_app(database_url, tmp_path, **settings).test_client()

    assert codes(first, TOTALS, 2) + codes(second, TOTALS, 2) == [200, 200, 200, 429]
    assert redis.Redis.from_url(redis_url).keys(f"LIMITS:LIMITER/{prefix}/*"), "the counters live in Redis"


@pytest.mark.slow
def test_several_gunicorn_workers_on_one_redis_share_the_limit(database_url, tmp_path, redis_url):
    env = {
        "API_RATE_LIMIT": "10/minute",
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
    }
    with running_server(database_url, tmp_path, workers=3, extra_env=env) as base:
        # A fresh connection per request, so the requests spread over the workers.
        statuses = [
            requests.get(base + TOTALS, timeout=10, headers={"Connection": "close"}).status_code
            for _ in range(14)
        ]

    assert statuses.count(200) == 10
    assert statuses[-4:] == [429] * 4


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_when_redis_is_unreachable_requests_are_served_and_a_warning_is_logged(database_url, tmp_path):
    unreachable = "redis://127.0.0.1:9/0"
    app = limited_app(database_url, tmp_path, RATELIMIT_STORAGE_URI=unreachable, API_RATE_LIMIT="50/minute")
    client = app.test_client()
    warnings = Collect()
    logging.getLogger("pledges.ratelimits").addHandler(warnings)
    try:
        statuses = codes(client, TOTALS, 3) + [post_pledge(client).status_code]
    finally:
        logging.getLogger("pledges.ratelimits").removeHandler(warnings)

    assert statuses == [200, 200, 200, 201]
    assert any("storage unreachable" in message for message in warnings.messages)


def test_retry_after_comes_only_with_a_refusal_and_the_reset_is_when_the_window_ends(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, API_RATE_LIMIT="2/minute").test_client()
    started = time.time()

    allowed = client.get(TOTALS)
    client.get(TOTALS)
    refused = client.get(TOTALS)

    assert allowed.status_code == 200 and "Retry-After" not in allowed.headers
    assert allowed.headers["X-RateLimit-Remaining"] == "1"
    reset = int(allowed.headers["X-RateLimit-Reset"])
    assert started + 59 <= reset <= time.time() + 61, "a minute's window ends a minute after it opened"
    assert refused.headers["X-RateLimit-Reset"] == str(reset)
    assert 0 < int(refused.headers["Retry-After"]) <= 60


def test_with_two_limits_the_headers_show_the_one_nearer_to_refusing(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="5/minute;3/hour").test_client()

    first = post_pledge(client)
    answers = [post_pledge(client).status_code for _ in range(3)]

    assert (first.headers["X-RateLimit-Limit"], first.headers["X-RateLimit-Remaining"]) == ("3", "2")
    assert answers == [201, 201, 429], "the hour's 3 refuse the fourth, though the minute allows 5"


def test_memory_windows_start_again_once_expired_and_expired_ones_are_swept():
    now = [1_000_000.0]
    windows = ProcessWindows(clock=lambda: now[0])
    assert [windows.hit("a", 1)[0] for _ in range(3)] == [1, 2, 3]

    now[0] += 1.5
    assert windows.hit("b", 1)[0] == 1
    assert windows.hit("a", 1) == (1, now[0] + 1), "a new window, from 1 again"

    now[0] += ProcessWindows.SWEEP_SECONDS + 10
    windows.hit("c", 1)
    assert set(windows.windows) == {"c"}, "windows that ended are dropped, not kept forever"


@pytest.mark.parametrize("prefix", ["", "porchlight"])
def test_counters_are_kept_under_the_keys_flask_limiter_would_use(prefix):
    """So that counters in Redis carry over a deploy, and read the same to whoever inspects them."""
    counters = Counters(storage_from_string("memory://"), prefix)
    limits = "5/second;10 per 2 minutes;1000/day"

    for window in parsed(limits):
        counters.hit(window, "key:7", "api-read")

    identifiers = (prefix, "key:7", "api-read") if prefix else ("key:7", "api-read")
    assert set(counters.windows.windows) == {limit.key_for(*identifiers) for limit in parse_many(limits)}


def test_a_storage_that_fails_is_left_alone_for_a_while_then_tried_again(redis_url, caplog):
    (window,), prefix = parsed("5/minute"), uuid.uuid4().hex
    direct = redis.Redis.from_url(redis_url)
    with TcpProxy(*upstream(redis_url, 6379)) as proxy:
        proxied = through(proxy, redis_url)
        storage = storage_from_string(proxied, socket_connect_timeout=0.5, socket_timeout=0.5)
        counters = Counters(storage, prefix)
        assert counters.hit(window, "caller", "scope").used == 1

        proxy.cut()
        with caplog.at_level(logging.WARNING, logger="pledges.ratelimits"):
            meanwhile = [counters.hit(window, "caller", "scope").used for _ in range(3)]
        proxy.restore()
        still_waiting = counters.hit(window, "caller", "scope").used
        counters.retry_at = time.monotonic()  # as if RETRY_STORAGE_SECONDS had passed
        again = counters.hit(window, "caller", "scope").used

    assert meanwhile == [1, 2, 3], "counted in this process while Redis was away"
    assert [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()], caplog.records
    assert len(caplog.records) == 1, "one warning per outage, not one per request"
    assert still_waiting == 4, "Redis is not tried again before the wait is over"
    assert again == 2, "then counted in Redis again, from where it stood"
    assert [int(direct.get(key)) for key in direct.keys(f"LIMITS:LIMITER/{prefix}/*")] == [2]
    assert direct.get(f"LIMITS:{parse('5/minute').key_for(prefix, 'caller', 'scope')}") == b"2", (
        "the key flask-limiter itself would use"
    )


def test_a_request_the_minute_refuses_is_not_counted_against_the_hour(database_url, tmp_path):
    app = limited_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="2/minute;100/hour")
    client = app.test_client()

    answers = [post_pledge(client).status_code for _ in range(5)]

    assert answers == [201, 201, 429, 429, 429]
    windows = app.extensions[EXTENSION].windows.windows
    hour = next(used for key, (used, _) in windows.items() if key.endswith("/pledge/100/1/hour"))
    assert hour == 2, "three quick retries must not cost the caller three of the hour's pledges"


def test_counted_routes_are_not_counted_again_by_the_default_limit(database_url, tmp_path):
    client = limited_app(
        database_url, tmp_path, RATELIMIT_DEFAULT="1/minute", API_RATE_LIMIT="3/minute"
    ).test_client()

    assert codes(client, TOTALS, 4) == [200, 200, 200, 429]


def test_flask_limiter_looks_for_limits_only_on_the_routes_it_limits(database_url, tmp_path, monkeypatch):
    """For an exempt route, or one counted by SharedLimit, its check ends before any lookup."""
    client = limited_app(database_url, tmp_path, RATELIMIT_DEFAULT="2/minute").test_client()
    looked_up: list[str] = []
    resolve_limits = limiter.limit_manager.resolve_limits

    def recorded(app, endpoint, *args, **kwargs):
        looked_up.append(endpoint)
        return resolve_limits(app, endpoint, *args, **kwargs)

    monkeypatch.setattr(limiter.limit_manager, "resolve_limits", recorded)
    not_limited_here = ["/healthz", "/readyz", "/metrics", "/api/docs", "/api/v1/neighborhoods", TOTALS]
    answers = [client.get(path).status_code for path in not_limited_here * 3]
    pledged = post_pledge(client)

    assert answers == [200] * len(answers)
    assert pledged.status_code == 201
    assert looked_up == []
    assert codes(client, "/", 3) == [200, 200, 429]  # pages keep flask-limiter's default limit
    assert looked_up == ["web.front_page"] * 3


@pytest.mark.parametrize("refused_by", ["api", "form"])
def test_a_refusal_carries_each_rate_limit_header_once(database_url, tmp_path, refused_by):
    client = limited_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="1/minute").test_client()
    send = post_pledge if refused_by == "api" else submit_form
    send(client)

    refused = send(client)

    assert refused.status_code == 429
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"):
        assert len(refused.headers.getlist(header)) == 1, (header, refused.headers)


def test_with_rate_limiting_off_nothing_is_counted_or_refused(database_url, tmp_path):
    settings = {"RATELIMIT_ENABLED": False, "API_RATE_LIMIT": "1/minute"}
    client = limited_app(database_url, tmp_path, **settings).test_client()
    # In a fresh process too, where no earlier app has opened the limiter's storage.
    fresh = subprocess.run(
        [sys.executable, "-c", "from pledges import create_app; create_app({'RATELIMIT_ENABLED': False})"],
        env={**os.environ, "INSTANCE_PATH": str(tmp_path / "fresh"), "SECRET_KEY": "s" * 32},
        capture_output=True,
        text=True,
        timeout=60,
    )

    answers = [client.get(TOTALS) for _ in range(3)]

    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert "X-RateLimit-Limit" not in answers[-1].headers
