"""/healthz says the process is up; /readyz says whether it can serve."""

from __future__ import annotations

import socket

from .conftest import make_app
from .factories import post_pledge


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_the_database_answers(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/porchlight.db", tmp_path)

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["checks"]["database"] == "unavailable"
    assert response.headers["Retry-After"]


def test_an_api_call_is_503_unavailable_when_the_database_is_unreachable(tmp_path):
    app = make_app(f"sqlite:///{tmp_path}/missing/dir/porchlight.db", tmp_path)

    response = app.test_client().get("/api/v1/campaigns")

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"]


def test_readyz_is_503_when_the_rate_limit_redis_is_unreachable(database_url, tmp_path):
    app = make_app(database_url, tmp_path, RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}/0")

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.get_json()["checks"]["rate_limit_storage"] == "unavailable"


def test_readyz_is_ok_with_a_reachable_rate_limit_redis(database_url, tmp_path, redis_url):
    app = make_app(database_url, tmp_path, RATELIMIT_STORAGE_URI=redis_url)

    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "rate_limit_storage": "ok"}


def test_health_routes_are_not_rate_limited(database_url, tmp_path):
    app = make_app(database_url, tmp_path, RATELIMIT_DEFAULT="2/minute")
    client = app.test_client()
    assert [client.get("/healthz").status_code for _ in range(5)] == [200] * 5


def test_pledges_beyond_the_rate_limit_get_429_in_the_contract_format(seeded_app):
    seeded_app.config["PLEDGE_RATE_LIMIT"] = "2/minute"
    client = seeded_app.test_client()
    codes = [post_pledge(client).status_code for _ in range(3)]

    assert codes == [201, 201, 429]
    refused = post_pledge(client)
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.headers["X-RateLimit-Limit"] == "2"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
