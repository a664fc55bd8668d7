"""The admin API: search with personal data, remove and restore, bulk removal, campaigns, audit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Pledge

from .factories import bearer, make_key, post_pledge, totals

ADMIN = "/api/v1/admin"


@pytest.fixture
def admin(seeded_app) -> dict[str, str]:
    return bearer(make_key(seeded_app, "Mayor's office", scope="admin"))


def recount_ok(app) -> bool:
    return app.test_cli_runner().invoke(args=["pledges", "recount", "--check"]).exit_code == 0


def test_admins_search_pledges_with_their_personal_data(client, admin):
    post_pledge(client, email="ana@example.org", neighborhood="lovejoy")
    post_pledge(client, email="bo@other.example", kind="business", name="Bo's Bikes", neighborhood="central")

    everything = client.get(f"{ADMIN}/pledges", headers=admin).get_json()["pledges"]
    by_name = client.get(f"{ADMIN}/pledges?q=bike", headers=admin).get_json()["pledges"]
    by_email = client.get(f"{ADMIN}/pledges?q=ANA@", headers=admin).get_json()["pledges"]
    by_place = client.get(f"{ADMIN}/pledges?neighborhood=lovejoy&kind=resident", headers=admin).get_json()[
        "pledges"
    ]

    assert [p["email"] for p in everything] == ["bo@other.example", "ana@example.org"]
    assert [p["name"] for p in by_name] == ["Bo's Bikes"]
    assert [p["email"] for p in by_email] == ["ana@example.org"]
    assert [p["neighborhood"] for p in by_place] == ["lovejoy"]
    assert everything[0]["address_hash"] and len(everything[0]["address_hash"]) == 64


def test_search_by_status_and_date_range(client, admin):
    post_pledge(client)
    later = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert client.get(f"{ADMIN}/pledges?status=counted", headers=admin).get_json()["pledges"]
    assert client.get(f"{ADMIN}/pledges?status=removed", headers=admin).get_json()["pledges"] == []
    assert client.get(f"{ADMIN}/pledges?since={later}", headers=admin).get_json()["pledges"] == []
    assert len(client.get(f"{ADMIN}/pledges?until={later}", headers=admin).get_json()["pledges"]) == 1


def test_the_pledge_list_pages_with_a_stable_cursor(client, admin):
    for number in range(5):
        post_pledge(client, email=f"p{number}@example.org")

    first = client.get(f"{ADMIN}/pledges?limit=2", headers=admin).get_json()
    post_pledge(client, email="newcomer@example.org")  # arrives between pages
    second = client.get(first["next"], headers=admin).get_json()
    third = client.get(second["next"], headers=admin).get_json()

    emails = [p["email"] for page in (first, second, third) for p in page["pledges"]]
    assert emails == [f"p{n}@example.org" for n in (4, 3, 2, 1, 0)]
    assert third["next"] is None


def test_removing_a_pledge_takes_it_out_of_the_totals_at_once_and_restoring_puts_it_back(
    client, admin, seeded_app
):
    pledge_id = post_pledge(client, neighborhood="riverside").get_json()["id"]

    removed = client.post(
        f"{ADMIN}/pledges/{pledge_id}/remove", json={"reason": "duplicate household"}, headers=admin
    )
    assert removed.status_code == 200 and removed.get_json()["status"] == "removed"
    assert totals(client)["total"] == 0
    assert recount_ok(seeded_app)

    restored = client.post(f"{ADMIN}/pledges/{pledge_id}/restore", json={"reason": "was real"}, headers=admin)
    assert restored.get_json()["status"] == "counted"
    assert totals(client)["total"] == 1
    assert recount_ok(seeded_app)


def test_removing_twice_counts_down_once(client, admin):
    pledge_id = post_pledge(client).get_json()["id"]
    for _ in range(2):
        client.post(f"{ADMIN}/pledges/{pledge_id}/remove", json={"reason": "spam"}, headers=admin)
    assert totals(client)["total"] == 0


def test_a_reason_is_required_and_an_unknown_pledge_is_404(client, admin):
    pledge_id = post_pledge(client).get_json()["id"]
    assert client.post(f"{ADMIN}/pledges/{pledge_id}/remove", json={}, headers=admin).status_code == 422
    missing = client.post(f"{ADMIN}/pledges/nope/remove", json={"reason": "x"}, headers=admin)
    assert missing.status_code == 404
    assert totals(client)["total"] == 1


def _set_address(app, email: str, address_hash: str) -> None:
    with app.app_context(), write_transaction():
        db.session.execute(db.update(Pledge).where(Pledge.email == email).values(address_hash=address_hash))


def test_bulk_removal_by_address_hash_shows_a_dry_run_first(client, admin, seeded_app):
    for number in range(3):
        post_pledge(client, email=f"bot{number}@example.org")
        _set_address(seeded_app, f"bot{number}@example.org", "b" * 64)
    post_pledge(client, email="human@example.org")
    window = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "reason": "a script"}

    dry = client.post(
        f"{ADMIN}/pledges/bulk-remove", json={**window, "address_hash": "b" * 64}, headers=admin
    )
    assert dry.get_json() == {"campaign": "nno-2027", "matched": 3, "removed": 0, "dry_run": True}
    assert totals(client)["total"] == 4

    real = client.post(
        f"{ADMIN}/pledges/bulk-remove",
        json={**window, "address_hash": "b" * 64, "dry_run": False},
        headers=admin,
    )
    assert real.get_json()["removed"] == 3
    assert totals(client)["total"] == 1
    assert recount_ok(seeded_app)


def test_bulk_removal_by_email_domain_within_a_window(client, admin, seeded_app):
    post_pledge(client, email="a@spam.example")
    post_pledge(client, email="b@SPAM.example")
    post_pledge(client, email="c@notspam.example")
    body = {
        "email_domain": "spam.example",
        "since": "2020-01-01T00:00:00Z",
        "reason": "farm",
        "dry_run": False,
    }

    outside = client.post(
        f"{ADMIN}/pledges/bulk-remove", json={**body, "until": "2021-01-01T00:00:00Z"}, headers=admin
    )
    inside = client.post(
        f"{ADMIN}/pledges/bulk-remove", json={**body, "until": "2100-01-01T00:00:00Z"}, headers=admin
    )

    assert outside.get_json()["matched"] == 0
    assert inside.get_json()["removed"] == 2
    assert totals(client)["total"] == 1


def test_bulk_removal_needs_exactly_one_criterion(client, admin):
    window = {"since": "2020-01-01T00:00:00Z", "until": "2100-01-01T00:00:00Z", "reason": "x"}
    assert client.post(f"{ADMIN}/pledges/bulk-remove", json=window, headers=admin).status_code == 422
    both = {**window, "address_hash": "a" * 64, "email_domain": "x.example"}
    assert client.post(f"{ADMIN}/pledges/bulk-remove", json=both, headers=admin).status_code == 422


def test_admins_create_edit_close_and_reopen_campaigns(client, admin):
    created = client.post(
        f"{ADMIN}/campaigns",
        json={
            "slug": "nno-2028",
            "name": "National Night Out 2028",
            "city": "Buffalo, NY",
            "timezone": "America/New_York",
            "starts_at": "2028-01-01T00:00:00Z",
            "ends_at": "2028-08-02T04:00:00Z",
            "goal": 5000,
        },
        headers=admin,
    )
    assert created.status_code == 201 and created.get_json()["status"] == "upcoming"

    edited = client.patch(
        f"{ADMIN}/campaigns/nno-2027", json={"goal": 777, "name": "NNO 2027"}, headers=admin
    )
    assert edited.get_json()["goal"] == 777 and totals(client)["goal"] == 777

    closed = client.patch(
        f"{ADMIN}/campaigns/nno-2027", json={"close": True, "reason": "storm"}, headers=admin
    )
    assert closed.get_json()["status"] == "closed"
    assert post_pledge(client).status_code == 409

    reopened = client.patch(f"{ADMIN}/campaigns/nno-2027", json={"reopen": True}, headers=admin)
    assert reopened.get_json()["status"] == "open"
    assert post_pledge(client).status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"ends_at": "2000-01-01T00:00:00Z"}, "ends_at"),
        ({"goal": 0}, "goal"),
    ],
)
def test_a_bad_campaign_edit_is_422_and_changes_nothing(client, admin, change, field):
    before = client.get("/api/v1/campaigns/nno-2027").get_json()
    response = client.patch(f"{ADMIN}/campaigns/nno-2027", json=change, headers=admin)
    assert response.status_code == 422 and field in response.get_json()["error"]["fields"]
    assert client.get("/api/v1/campaigns/nno-2027").get_json() == before


def test_every_admin_action_is_in_the_audit_log(client, admin):
    pledge_id = post_pledge(client).get_json()["id"]
    client.post(f"{ADMIN}/pledges/{pledge_id}/remove", json={"reason": "test entry"}, headers=admin)
    client.patch(f"{ADMIN}/campaigns/nno-2027", json={"goal": 10}, headers=admin)

    entries = client.get(f"{ADMIN}/audit", headers=admin).get_json()["entries"]

    assert [e["action"] for e in entries[:2]] == ["campaign.update", "pledge.remove"]
    assert entries[1]["actor"] == "Mayor's office"
    assert entries[1]["target"] == pledge_id and entries[1]["reason"] == "test entry"
    assert entries[1]["created_at"].endswith("Z")


def test_campaigns_are_created_and_updated_from_the_cli_too(runner, client):
    created = runner.invoke(
        args=["campaigns", "create", "--slug", "nno-2029", "--name", "NNO 2029", "--city", "Buffalo, NY"]
        + ["--timezone", "America/New_York", "--starts", "2029-01-01", "--ends", "2029-08-08", "--goal", "50"]
    )
    closed = runner.invoke(args=["campaigns", "update", "nno-2029", "--close", "--reason", "cancelled"])
    bad = runner.invoke(args=["campaigns", "update", "nno-2029", "--timezone", "Nowhere/Atlantis"])

    assert created.exit_code == 0, created.output
    assert closed.exit_code == 0 and "closed" in closed.output
    assert bad.exit_code != 0 and "time zone" in bad.output
    assert client.get("/api/v1/campaigns/nno-2029").get_json()["goal"] == 50
