"""Fair limits: reads by key or address, pledges by address, counted in Redis across processes."""

from __future__ import annotations

import logging
import uuid

import pytest
import redis
import requests
from flask_migrate import upgrade

from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, make_key, post_pledge, submit_form
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
    assert redis.Redis.from_url(redis_url).keys("LIMITS:LIMITER/porchlight/*"), "the counters live in Redis"


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
    logging.getLogger("flask-limiter").addHandler(warnings)
    try:
        statuses = codes(client, TOTALS, 3) + [post_pledge(client).status_code]
    finally:
        logging.getLogger("flask-limiter").removeHandler(warnings)

    assert statuses == [200, 200, 200, 201]
    assert any("storage unreachable" in message for message in warnings.messages)
