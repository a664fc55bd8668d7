"""Bad input at volume: random bodies cause no 5xx and no drifting count; hostile requests change nothing."""

from __future__ import annotations

import socket
import threading

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pledges.extensions import db
from pledges.models import Campaign, Pledge
from pledges.services.counts import find_drift

from .conftest import BOTH_BACKENDS
from .factories import bearer, make_key
from .servers import running_server

PLEDGES = "/api/v1/campaigns/current/pledges"
ALLOWED = {200, 201, 400, 404, 409, 413, 415, 422}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
pledge_bodies = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["resident", "business", "", "RESIDENT"]) | json_values,
        "neighborhood": st.sampled_from(["allentown", "lovejoy", "atlantis", ""]) | json_values,
        "email": st.emails() | st.sampled_from(["a@b", " X@Example.ORG ", ""]) | json_values,
        "name": st.text(max_size=130) | json_values,
        "show_name": st.booleans() | json_values,
        "extra": json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bodies=st.lists(pledge_bodies | json_values, min_size=1, max_size=6))
def test_any_body_gets_a_contract_answer_and_the_counts_never_drift(seeded_app, bodies):
    client = seeded_app.test_client()
    for body in bodies:
        response = client.post(PLEDGES, json=body)
        assert response.status_code in ALLOWED, (body, response.status_code, response.data[:200])
        assert response.is_json
    with seeded_app.app_context():
        campaign_id = db.session.scalars(db.select(Campaign.id)).one()
        counted = db.session.scalar(
            db.select(db.func.count()).select_from(Pledge).where(Pledge.status == "counted")
        )
        assert find_drift(campaign_id) == []
    assert client.get("/api/v1/campaigns/current/totals").get_json()["total"] == counted


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_deeply_nested_json_is_refused_with_400_not_a_crash(client, opening):
    closing = "]" if opening == "[" else "}"
    response = client.post(
        PLEDGES, data=opening * 3000 + "1" + closing * 3000, content_type="application/json"
    )
    assert response.status_code in (400, 413)
    assert response.get_json()["error"]["code"] in ("bad_request", "payload_too_large")


def test_nesting_within_the_limit_is_just_a_validation_error(client):
    response = client.post(
        PLEDGES, json={"kind": [[[[["resident"]]]]], "neighborhood": "allentown", "email": "n@x.org"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
    ],
)
def test_wrong_content_types_are_415(client, content_type, status):
    response = client.post(PLEDGES, data=b'{"kind": "resident"}', content_type=content_type)
    assert response.status_code == status


@pytest.mark.slow
def test_huge_headers_are_refused_and_the_server_keeps_serving(database_url, tmp_path):
    with running_server(database_url, tmp_path, workers=1) as base:
        try:
            refused = requests.get(
                base + "/api/v1/campaigns", headers={"X-Padding": "x" * 20_000}, timeout=10
            )
            assert 400 <= refused.status_code < 500
        except requests.ConnectionError:
            pass  # closing the connection is a refusal too
        assert requests.get(base + "/api/v1/campaigns", timeout=10).status_code == 200


@pytest.mark.slow
def test_a_client_sending_a_byte_a_second_holds_up_no_one(database_url, tmp_path):
    with running_server(database_url, tmp_path, workers=1) as base:
        host, port = base.removeprefix("http://").split(":")
        stop = threading.Event()

        def trickle() -> None:
            with socket.create_connection((host, int(port)), timeout=30) as slow:
                for byte in b"POST /api/v1/campaigns/current/pledges HTTP/1.1\r\nHost: x\r\n":
                    if stop.wait(1.0):
                        return
                    slow.send(bytes([byte]))

        slow_client = threading.Thread(target=trickle, daemon=True)
        slow_client.start()
        try:
            # Each pledge must be answered within its 5 s timeout while the slow client dawdles.
            statuses = [
                requests.post(
                    base + PLEDGES,
                    json={"kind": "resident", "neighborhood": "lovejoy", "email": f"fast{n}@example.org"},
                    timeout=5,
                ).status_code
                for n in range(20)
            ]
        finally:
            stop.set()
            slow_client.join(timeout=5)
    assert statuses == [201] * 20


@BOTH_BACKENDS
def test_admin_routes_refuse_names_the_app_never_writes_before_they_reach_the_database(seeded_app):
    """A NUL anywhere (PostgreSQL cannot store one) or a malformed id or hash is a 422: never a 500."""
    client = seeded_app.test_client()
    admin = bearer(make_key(seeded_app, "mayor", scope="admin"))
    window = {"since": "2026-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z", "reason": "fuzz"}
    for path, body, status in (
        ("/api/v1/admin/names/approve", {"ids": ["i]\u0085\u0000f"]}, 422),
        ("/api/v1/admin/names/approve", {"ids": ["not an id!"]}, 422),
        ("/api/v1/admin/shared-places", {"address_hash": "\u0000" + "a" * 63, "reason": "fuzz"}, 422),
        ("/api/v1/admin/shared-places", {"address_hash": "z" * 64, "reason": "fuzz"}, 422),
        ("/api/v1/admin/pledges/bulk-release", {"address_hash": "A" * 64, **window}, 422),
        ("/api/v1/admin/pledges/bulk-remove", {"intake_key": "table\u0000", **window}, 422),
        (
            PLEDGES,
            {"kind": "resident", "neighborhood": "allentown", "email": "a@example.org", "x\u0000": 1},
            422,
        ),
    ):
        answer = client.post(path, json=body, headers=admin)
        assert answer.status_code == status, (path, answer.get_data(as_text=True))
        assert answer.get_json()["error"]["code"] == "validation_error"
    for query in ("intake_key=x%00y", "neighborhood=%F1%9C%A0%9F%3F%00", "q=%00"):
        answer = client.get(f"/api/v1/admin/pledges?{query}", headers=admin)
        assert answer.status_code == 422 and query.split("=")[0] in answer.get_json()["error"]["fields"]
