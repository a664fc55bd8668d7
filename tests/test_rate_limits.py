"""Fair limits: reads by key or address, pledges by address, counted in Redis across processes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import uuid

import pytest
import requests
from flask_migrate import upgrade
from limits import parse
from limits.strategies import FixedWindowRateLimiter

from pledges import ratelimits
from pledges.process_storage import ProcessStorage
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, eventually, make_key, post_pledge, submit_form
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

    assert guesses == {429}  # a guess counts as the address's read: it opens no bucket of its own
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
    elsewhere = make_app(database_url, tmp_path, **settings | {"RATELIMIT_KEY_PREFIX": f"{prefix}-2"})

    assert codes(first, TOTALS, 2) + codes(second, TOTALS, 2) == [200, 200, 200, 429]
    assert second.get(TOTALS).headers["X-RateLimit-Remaining"] == "0"
    assert codes(elsewhere.test_client(), TOTALS, 1) == [200], "another key prefix counts apart"


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


def test_a_request_a_short_window_refuses_is_not_counted_against_the_longer_one(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="2 per 2 seconds;3/minute").test_client()

    answers = [post_pledge(client).status_code for _ in range(5)]
    retries: list = []
    # Refused by the two seconds until they are over (and none of that counted against the minute).
    assert eventually(lambda: retries.append(post_pledge(client)) or retries[-1].status_code == 201)
    third = retries[-1]

    assert answers == [201, 201, 429, 429, 429]
    assert (third.headers["X-RateLimit-Limit"], third.headers["X-RateLimit-Remaining"]) == ("3", "0"), (
        "the minute holds three pledges: the refused retries cost the caller none of them"
    )
    assert post_pledge(client).status_code == 429


def test_when_redis_goes_away_mid_run_requests_are_counted_in_memory_then_in_redis_again(
    database_url, tmp_path, redis_url, monkeypatch
):
    monkeypatch.setattr(ratelimits, "RETRY_STORAGE_SECONDS", 2.0)  # shorter, to wait less
    limit, prefix = 1000, uuid.uuid4().hex
    with TcpProxy(*upstream(redis_url, 6379)) as proxy:
        settings = {"API_RATE_LIMIT": f"{limit}/minute", "RATELIMIT_KEY_PREFIX": prefix}
        proxied = limited_app(
            database_url, tmp_path, RATELIMIT_STORAGE_URI=through(proxy, redis_url), **settings
        ).test_client()
        direct = make_app(database_url, tmp_path, RATELIMIT_STORAGE_URI=redis_url, **settings).test_client()
        before = [remaining(proxied.get(TOTALS)) for _ in range(200)]

        proxy.cut()
        warnings = Collect()
        ratelimits.log.addHandler(warnings)
        try:
            during = [remaining(proxied.get(TOTALS)) for _ in range(3)] + [post_pledge(proxied).status_code]
        finally:
            ratelimits.log.removeHandler(warnings)
        in_redis_meanwhile = remaining(direct.get(TOTALS))
        proxy.restore()
        polled: list[int] = []
        back = eventually(lambda: polled.append(remaining(proxied.get(TOTALS))) or polled[-1] < limit - 200)

    assert before[-1] == limit - 200
    assert during == [limit - 1, limit - 2, limit - 3, 201], "served, and counted in this process meanwhile"
    assert len([m for m in warnings.messages if "unreachable" in m]) == 1, "one warning per outage"
    assert in_redis_meanwhile == limit - 201, "what was counted in memory did not reach Redis"
    assert back, polled
    assert polled[-1] == limit - 202, "then counted in Redis again, from where it stood"
    assert polled[:-1] == list(range(limit - 4, limit - 4 - len(polled) + 1, -1)), "in memory until then"


def remaining(response) -> int:
    assert response.status_code == 200, response.status_code
    return int(response.headers["X-RateLimit-Remaining"])


def test_counted_routes_are_not_counted_again_by_the_default_limit(database_url, tmp_path):
    client = limited_app(
        database_url, tmp_path, RATELIMIT_DEFAULT="1/minute", API_RATE_LIMIT="3/minute"
    ).test_client()

    assert codes(client, TOTALS, 4) == [200, 200, 200, 429]


def test_the_default_limit_leaves_exempt_and_counted_routes_alone_and_limits_pages(database_url, tmp_path):
    client = limited_app(database_url, tmp_path, RATELIMIT_DEFAULT="2/minute").test_client()
    not_limited_here = ["/healthz", "/readyz", "/metrics", "/api/docs", "/api/v1/neighborhoods", TOTALS]

    answers = [client.get(path).status_code for path in not_limited_here * 3]
    pledges = [post_pledge(client).status_code for _ in range(3)]

    assert answers == [200] * len(answers)
    assert pledges == [201] * 3
    assert codes(client, "/", 3) == [200, 200, 429]  # pages keep flask-limiter's default limit


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


def test_in_process_counters_reset_when_their_window_ends_and_forget_old_callers():
    """memory://'s counters, through limits' own fixed-window strategy, on a clock the test moves."""
    now = [1_000.0]
    storage = ProcessStorage(clock=lambda: now[0])
    limiter = FixedWindowRateLimiter(storage)
    two_a_minute = parse("2/minute")

    assert [limiter.hit(two_a_minute, "198.51.100.1", "pledge") for _ in range(3)] == [True, True, False]
    stats = limiter.get_window_stats(two_a_minute, "198.51.100.1", "pledge")
    assert (stats.remaining, stats.reset_time) == (0, 1_060.0)
    assert limiter.hit(two_a_minute, "198.51.100.2", "pledge")  # another caller has a bucket of its own

    now[0] = 1_060.0
    assert limiter.hit(two_a_minute, "198.51.100.1", "pledge")  # a new window
    assert limiter.get_window_stats(two_a_minute, "198.51.100.1", "pledge").remaining == 1
    now[0] = 1_000.0 + storage.SWEEP_SECONDS + 61
    limiter.hit(two_a_minute, "198.51.100.3", "pledge")
    assert limiter.get_window_stats(two_a_minute, "198.51.100.2", "pledge").remaining == 2
    assert storage.reset() == 1  # only the caller still inside a window is kept
