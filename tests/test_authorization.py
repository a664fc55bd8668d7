"""Who may call what: every API route × anonymous, read key, admin key, wrong key, revoked key."""

from __future__ import annotations

import re

import pytest

from .factories import bearer, make_key, post_pledge

CALLERS = ("anonymous", "read", "admin", "wrong", "revoked")
BODIES = {
    "POST /api/v1/campaigns/<campaign>/pledges": {
        "kind": "resident",
        "neighborhood": "allentown",
        "email": "{n}@x.org",
    },
    "POST /api/v1/admin/pledges/<pledge_id>/remove": {"reason": "matrix"},
    "POST /api/v1/admin/pledges/<pledge_id>/restore": {"reason": "matrix"},
    "POST /api/v1/admin/pledges/bulk-remove": {
        "email_domain": "nowhere.example",
        "since": "2020-01-01T00:00:00Z",
        "until": "2030-01-01T00:00:00Z",
        "reason": "matrix",
    },
    "POST /api/v1/admin/campaigns": {
        "slug": "matrix-{n}",
        "name": "Matrix",
        "city": "Buffalo, NY",
        "timezone": "America/New_York",
        "starts_at": "2030-01-01T00:00:00Z",
        "ends_at": "2030-02-01T00:00:00Z",
    },
    "PATCH /api/v1/admin/campaigns/<slug>": {"goal": 1234},
    "POST /api/v1/admin/pledges/bulk-release": {
        "address_hash": "0" * 64,
        "since": "2020-01-01T00:00:00Z",
        "until": "2030-01-01T00:00:00Z",
        "reason": "matrix",
    },
    "POST /api/v1/admin/shared-places": {"address_hash": "0" * 64, "reason": "matrix"},
    "POST /api/v1/campaigns/<campaign>/pledges/import": {"pledges": []},
    "POST /api/v1/admin/names/approve": {"ids": ["{business}"]},
    "POST /api/v1/admin/names/reject": {"ids": ["{business}"]},
}
# Routes that need an intake (or admin) key: anonymous callers get 401, read keys 403.
INTAKE_ROUTES = {"POST /api/v1/campaigns/<campaign>/pledges/import"}


def filled(value, **names):  # noqa: ANN001, ANN201
    """A body's value with {placeholders} filled in, in strings and lists of strings."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [filled(item, **names) for item in value]
    return value


def api_routes(app) -> list[tuple[str, str]]:
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule))
    return sorted(routes)


@pytest.fixture
def tokens(seeded_app) -> dict[str, dict[str, str]]:
    revoked = make_key(seeded_app, "revoked")
    seeded_app.test_cli_runner().invoke(args=["keys", "revoke", "revoked"])
    return {
        "anonymous": {},
        "read": bearer(make_key(seeded_app, "reader")),
        "admin": bearer(make_key(seeded_app, "admin", scope="admin")),
        "wrong": bearer("pl_" + "x" * 43),
        "revoked": bearer(revoked),
    }


def test_every_route_answers_each_kind_of_caller_as_the_contract_says(seeded_app, client, tokens):
    pledge_id = post_pledge(client).get_json()["id"]
    business = post_pledge(client, kind="business", name="Matrix Bakery", show_name=True).get_json()["id"]
    routes = api_routes(seeded_app)
    assert len(routes) >= 15, routes
    failures = []
    for number, (method, rule) in enumerate(routes):
        admin_route = rule.startswith("/api/v1/admin/") or f"{method} {rule}" in INTAKE_ROUTES
        slug = "nno-2027" if "campaigns/<slug>" in rule else "allentown"
        path = (
            rule.replace("<campaign>", "nno-2027")
            .replace("<slug>", slug)
            .replace("<pledge_id>", pledge_id)
            .replace("<name>", "swagger-ui.css")
        )
        assert not re.search(r"<\w+>", path), path
        for caller in CALLERS:
            body = BODIES.get(f"{method} {rule}")
            if body is not None:
                body = {k: filled(v, n=f"{caller}{number}", business=business) for k, v in body.items()}
            response = client.open(path, method=method, headers=tokens[caller], json=body)
            status = response.status_code
            response.close()
            if caller in ("wrong", "revoked"):
                expected_ok = status == 401 and response.headers.get("WWW-Authenticate", "").startswith(
                    "Bearer"
                )
            elif admin_route and caller == "anonymous":
                expected_ok = status == 401
            elif admin_route and caller == "read":
                expected_ok = status == 403
            else:
                expected_ok = status < 400
            if not expected_ok:
                failures.append(f"{caller:9} {method:5} {path} -> {status}")
    assert failures == []
