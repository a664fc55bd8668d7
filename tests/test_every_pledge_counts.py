"""Sixty neighbours on one Wi-Fi, a sign-up tablet, a church hall: every pledge counts, or waits and says so.

The number of people told "counted" is always exactly what the total grew by; the mayor's office
sees what waits, and releases or removes it a whole address or intake key at a time.
"""

from __future__ import annotations

import re
from datetime import timedelta

from flask_migrate import upgrade

from pledges.database import utcnow
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, csrf_token, make_key, neighborhood_row, submit_form, totals
from .test_front_page import page

COMMUNITY_CENTER = "198.51.100.20"
CHURCH_HALL = "198.51.100.30"


def night_app(database_url, tmp_path, **settings):
    settings = {"BURST_LIMIT": 20, "BURST_WINDOW_MINUTES": 10, "TRUSTED_PROXIES": 1, **settings}
    app = make_app(database_url, tmp_path, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def pledge_through_the_form(app, n: int, address: str, **fields):
    """One neighbour on their own phone: the form, then the thank-you page it is sent to."""
    phone = app.test_client()
    phone.environ_base["HTTP_X_FORWARDED_FOR"] = address
    sent = submit_form(
        phone, email=f"neighbor{n}-{address}@example.org", neighborhood="broadway-fillmore", **fields
    )
    assert sent.status_code == 303, sent.get_data(as_text=True)
    return page(phone.get(sent.headers["Location"])).all_text


def pledge_by_api(client, n: int, address: str):
    body = {"kind": "resident", "neighborhood": "broadway-fillmore", "email": f"api{n}-{address}@example.org"}
    return client.post(
        "/api/v1/campaigns/current/pledges", json=body, headers={"X-Forwarded-For": address}
    ).get_json()


def test_sixty_neighbours_on_one_wifi_are_each_counted_or_told_it_waits_for_a_quick_check(
    database_url, tmp_path
):
    app = night_app(database_url, tmp_path)
    before = totals(app.test_client())

    thanked = [pledge_through_the_form(app, n, COMMUNITY_CENTER) for n in range(60)]

    told_counted = [text for text in thanked if "Your pledge is counted." in text]
    told_waiting = [text for text in thanked if "it will be counted after a quick check" in text]
    assert (len(told_counted), len(told_waiting)) == (20, 40)
    after = totals(app.test_client())
    assert after["total"] - before["total"] == len(told_counted)
    assert after["pending"] == len(told_waiting)
    # Each counted neighbour's page shows a count that includes their own pledge.
    assert "Broadway Fillmore now has 1 porch light pledged." in told_counted[0]
    for number, text in enumerate(told_counted[1:], start=2):
        assert f"Broadway Fillmore now has {number} porch lights pledged." in text
    assert not any("porch light" in text and "now has" in text for text in told_waiting)


def test_with_mail_the_neighbours_past_the_burst_are_told_to_check_their_email(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = night_app(database_url, tmp_path, BURST_LIMIT=2, SMTP_HOST="127.0.0.1", SMTP_PORT=port)

    thanked = [pledge_through_the_form(app, n, COMMUNITY_CENTER) for n in range(4)]

    assert ["Your pledge is counted." in text for text in thanked] == [True, True, False, False]
    assert all("check your email" in text for text in thanked[2:])
    assert len(inbox.messages) == 2
    assert (totals(app.test_client())["total"], totals(app.test_client())["pending"]) == (2, 2)


def test_the_waiting_pledges_are_told_so_in_spanish(database_url, tmp_path):
    app = night_app(database_url, tmp_path, BURST_LIMIT=1)
    pledge_through_the_form(app, 0, COMMUNITY_CENTER)
    phone = app.test_client()
    phone.environ_base["HTTP_X_FORWARDED_FOR"] = COMMUNITY_CENTER
    phone.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"
    sent = submit_form(phone, email="vecina@example.org", neighborhood="broadway-fillmore")

    text = page(phone.get(sent.headers["Location"])).all_text

    assert "se contará después de una revisión rápida" in text
    assert "cuenta" not in text.split("Gracias")[0]  # no claim before the thanks


def test_the_queue_shows_what_waits_by_address_and_one_action_releases_an_address(database_url, tmp_path):
    app = night_app(database_url, tmp_path, BURST_LIMIT=3)
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    for n in range(8):
        pledge_by_api(client, n, COMMUNITY_CENTER)
    for n in range(5):
        pledge_by_api(client, n, CHURCH_HALL)

    queue = client.get("/api/v1/admin/queue", headers=admin).get_json()
    assert queue["waiting"] == {"confirm_email": 0, "review": 7}
    biggest, second = queue["review_sources"]
    assert (biggest["pledges"], second["pledges"]) == (5, 2)
    window = {
        "since": (utcnow() - timedelta(hours=1)).isoformat(),
        "until": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    release = {
        "address_hash": biggest["address_hash"],
        "reason": "the community center's block party",
        **window,
    }

    dry = client.post("/api/v1/admin/pledges/bulk-release", json=release, headers=admin).get_json()
    assert (dry["matched"], dry["released"], dry["dry_run"]) == (5, 0, True)
    assert (totals(client)["total"], totals(client)["pending"]) == (6, 7)

    done = client.post(
        "/api/v1/admin/pledges/bulk-release", json={**release, "dry_run": False}, headers=admin
    ).get_json()
    assert (done["matched"], done["released"]) == (5, 5)
    assert (totals(client)["total"], totals(client)["pending"]) == (11, 2)
    audit = client.get("/api/v1/admin/audit", headers=admin).get_json()["entries"]
    assert audit[0]["action"] == "pledge.bulk_release" and audit[0]["details"]["matched"] == 5
    assert app.test_cli_runner().invoke(args=["pledges", "recount", "--check"]).exit_code == 0


def test_removing_only_the_waiting_pledges_of_an_address_leaves_its_counted_ones(database_url, tmp_path):
    app = night_app(database_url, tmp_path, BURST_LIMIT=3)
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    for n in range(6):
        pledge_by_api(client, n, COMMUNITY_CENTER)
    (source,) = client.get("/api/v1/admin/queue", headers=admin).get_json()["review_sources"]
    window = {
        "since": (utcnow() - timedelta(hours=1)).isoformat(),
        "until": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    body = {
        "address_hash": source["address_hash"],
        "reason": "a script",
        "pending_review_only": True,
        **window,
    }

    done = client.post("/api/v1/admin/pledges/bulk-remove", json={**body, "dry_run": False}, headers=admin)

    assert done.get_json()["removed"] == 3
    assert (totals(client)["total"], totals(client)["pending"]) == (3, 0)


def test_an_intake_keys_pledges_are_bulk_removed_in_a_window_and_revoking_it_keeps_them(
    database_url, tmp_path
):
    app = night_app(database_url, tmp_path, BURST_LIMIT=3)
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    table = bearer(make_key(app, "Lovejoy table", scope="intake"))
    for n in range(6):
        body = {"kind": "resident", "neighborhood": "lovejoy", "email": f"t{n}@example.org"}
        assert client.post("/api/v1/campaigns/current/pledges", json=body, headers=table).status_code == 201

    result = app.test_cli_runner().invoke(args=["keys", "revoke", "Lovejoy table"])
    assert result.exit_code == 0
    assert totals(client)["total"] == 6  # revoking a key keeps what it took

    window = {
        "since": (utcnow() - timedelta(hours=1)).isoformat(),
        "until": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    body = {"intake_key": "Lovejoy table", "reason": "a test table, not the real one", **window}
    dry = client.post("/api/v1/admin/pledges/bulk-remove", json=body, headers=admin).get_json()
    assert (dry["matched"], dry["removed"]) == (6, 0)
    done = client.post("/api/v1/admin/pledges/bulk-remove", json={**body, "dry_run": False}, headers=admin)
    assert done.get_json()["removed"] == 6
    assert neighborhood_row(totals(client), "lovejoy")["total"] == 0
    unknown = client.post(
        "/api/v1/admin/pledges/bulk-remove", json={**body, "intake_key": "nobody"}, headers=admin
    )
    assert unknown.status_code == 422 and "intake_key" in unknown.get_json()["error"]["fields"]


def test_an_address_marked_as_a_shared_place_is_no_longer_burst_checked(database_url, tmp_path):
    app = night_app(database_url, tmp_path, BURST_LIMIT=2)
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    for n in range(3):
        pledge_by_api(client, n, CHURCH_HALL)
    (source,) = client.get("/api/v1/admin/queue", headers=admin).get_json()["review_sources"]

    marked = client.post(
        "/api/v1/admin/shared-places",
        json={"address_hash": source["address_hash"], "reason": "St. Stanislaus church hall"},
        headers=admin,
    )

    assert marked.status_code == 201
    later = [pledge_by_api(client, n, CHURCH_HALL) for n in range(3, 8)]
    assert {answer["status"] for answer in later} == {"counted"}
    queue = client.get("/api/v1/admin/queue", headers=admin).get_json()
    assert queue["review_sources"][0]["shared_place"] is True
    audit = client.get("/api/v1/admin/audit", headers=admin).get_json()["entries"]
    assert audit[0]["action"] == "address.shared_place"
    assert audit[0]["reason"] == "St. Stanislaus church hall"


def test_the_admin_page_shows_the_queue_at_the_top_and_releases_an_address_after_a_preview(
    database_url, tmp_path
):
    app = night_app(database_url, tmp_path, BURST_LIMIT=2)
    client = app.test_client()
    for n in range(5):
        pledge_by_api(client, n, COMMUNITY_CENTER)
    office = app.test_client()
    signed_in = office.post(
        "/admin/sign-in",
        data={
            "key": make_key(app, "mayor", scope="admin"),
            "csrf_token": csrf_token(office, "/admin/sign-in"),
        },
    )
    assert signed_in.status_code == 303

    html = office.get("/admin").get_data(as_text=True)
    top = page(office.get("/admin")).all_text
    assert "3 pledges wait for review" in top.split("Pledges, newest first")[0]
    form = dict(re.findall(r'<input type="hidden" name="(address_hash|since|until)" value="([^"]+)"', html))
    token = csrf_token(office, "/admin")

    preview = office.post("/admin/queue", data={**form, "action": "release", "csrf_token": token})
    assert (
        preview.status_code == 200 and "This counts 3 pledges that wait for review." in page(preview).all_text
    )
    assert totals(client)["total"] == 2  # the preview changes nothing

    done = office.post(
        "/admin/queue",
        data={
            **form,
            "action": "release",
            "confirm": "1",
            "reason": "community center party",
            "csrf_token": token,
        },
    )
    assert done.status_code == 303
    assert (totals(client)["total"], totals(client)["pending"]) == (5, 0)
    assert "0 pledges wait for review" in page(office.get("/admin")).all_text


def test_the_mayors_office_releases_an_intake_keys_unconfirmed_pledges_in_one_action(
    database_url, tmp_path, smtp
):
    inbox, port = smtp
    app = night_app(
        database_url, tmp_path, PLEDGE_CONFIRMATION="email", SMTP_HOST="127.0.0.1", SMTP_PORT=port
    )
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    table = bearer(make_key(app, "Kaisertown block club", scope="intake"))
    for n in range(4):
        body = {"kind": "resident", "neighborhood": "kaisertown", "email": f"k{n}@example.org"}
        answer = client.post("/api/v1/campaigns/current/pledges", json=body, headers=table).get_json()
        assert (answer["status"], answer["pending_reason"]) == ("pending", "confirm_email")
    pledge_by_api(client, 99, COMMUNITY_CENTER)  # someone else's, waiting too: not the club's
    window = {
        "since": (utcnow() - timedelta(hours=1)).isoformat(),
        "until": (utcnow() + timedelta(minutes=1)).isoformat(),
    }
    release = {"intake_key": "Kaisertown block club", "reason": "signed on paper in person", **window}

    assert (
        client.post("/api/v1/admin/pledges/bulk-release", json=release, headers=admin).get_json()["matched"]
        == 0
    )
    vouched = {**release, "waiting_for": "confirm_email", "dry_run": False}
    done = client.post("/api/v1/admin/pledges/bulk-release", json=vouched, headers=admin).get_json()

    assert (done["matched"], done["released"]) == (4, 4)
    assert (totals(client)["total"], totals(client)["pending"]) == (4, 1)
    assert app.test_cli_runner().invoke(args=["pledges", "recount", "--check"]).exit_code == 0
