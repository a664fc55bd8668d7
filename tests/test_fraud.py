"""A burst from one address is held, answered normally, and counted only when an admin releases it."""

from __future__ import annotations

from flask_migrate import upgrade

from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, make_key, post_pledge, totals


def burst_app(database_url, tmp_path, **settings):
    app = make_app(database_url, tmp_path, BURST_LIMIT=3, BURST_WINDOW_MINUTES=10, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def test_pledges_beyond_the_burst_are_held_answered_normally_and_not_counted(database_url, tmp_path):
    client = burst_app(database_url, tmp_path).test_client()

    answers = [post_pledge(client, email=f"b{n}@example.org") for n in range(5)]

    assert [a.status_code for a in answers] == [201] * 5
    assert {a.get_json()["status"] for a in answers} == {"counted"}  # a bot learns nothing
    assert totals(client)["total"] == 3


def test_another_address_is_not_held_by_someone_elses_burst(database_url, tmp_path):
    client = burst_app(database_url, tmp_path, TRUSTED_PROXIES=1).test_client()
    for n in range(4):
        client.post(
            "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "allentown", "email": f"x{n}@example.org"},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
    neighbor = client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "allentown", "email": "neighbor@example.org"},
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert neighbor.status_code == 201
    assert totals(client)["total"] == 4  # three from the burst, and the neighbor


def test_an_admin_releases_a_held_pledge_into_the_count(database_url, tmp_path):
    app = burst_app(database_url, tmp_path)
    client, admin = app.test_client(), bearer(make_key(app, "admin", scope="admin"))
    for n in range(4):
        post_pledge(client, email=f"h{n}@example.org")

    (held,) = client.get("/api/v1/admin/pledges?status=held", headers=admin).get_json()["pledges"]
    released = client.post(
        f"/api/v1/admin/pledges/{held['id']}/restore", json={"reason": "a real block party"}, headers=admin
    )

    assert released.get_json()["status"] == "counted"
    assert totals(client)["total"] == 4
    assert app.test_cli_runner().invoke(args=["pledges", "recount", "--check"]).exit_code == 0


def test_the_abuse_report_lists_addresses_and_domains_per_hour_flagged_above_thresholds(
    database_url, tmp_path
):
    app = burst_app(database_url, tmp_path, ABUSE_ADDRESS_THRESHOLD=2, ABUSE_DOMAIN_THRESHOLD=3)
    client, admin = app.test_client(), bearer(make_key(app, "admin", scope="admin"))
    for n in range(3):
        post_pledge(client, email=f"farm{n}@spam.example")
    post_pledge(client, email="someone@real.example")

    report = client.get("/api/v1/admin/abuse?hours=2", headers=admin).get_json()

    (hour,) = report["hours"]
    (address,) = hour["addresses"]
    assert (address["pledges"], address["flagged"]) == (4, True)
    domains = {d["email_domain"]: (d["pledges"], d["flagged"]) for d in hour["domains"]}
    assert domains == {"spam.example": (3, False), "real.example": (1, False)}
    assert (report["address_threshold"], report["domain_threshold"]) == (2, 3)
    assert client.get("/api/v1/admin/abuse").status_code == 401
