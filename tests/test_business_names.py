"""Business names: only names a reader can take in are accepted, and public pages show a name only once the
mayor's office approves it (BUSINESS_NAMES=review, the default) or at once (BUSINESS_NAMES=immediate).
"""

from __future__ import annotations

import html
import re

import pytest
from flask_migrate import upgrade
from sqlalchemy import event

from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, csrf_token, make_key, post_pledge, submit_form, totals

NAMES_URL = "/api/v1/admin/names"
PUBLIC_PAGES = ("/", "/dashboard", "/dashboard?kiosk=1", "/api/v1/campaigns/current/businesses")


def shown_on(client, name: str) -> list[str]:
    """The public pages (front page, dashboard, kiosk, businesses API) that show `name`."""
    shown = []
    for path in PUBLIC_PAGES:
        response = client.get(path)
        if response.is_json:
            names = [row["name"] for row in response.get_json()["businesses"]]
        else:
            names = [html.unescape(response.get_data(as_text=True))]
        if any(name in each for each in names):
            shown.append(path)
    return shown


def business(client, name: str):
    response = post_pledge(client, kind="business", name=name, show_name=True, neighborhood="lovejoy")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def admin(seeded_app) -> dict[str, str]:
    return bearer(make_key(seeded_app, "mayor", scope="admin"))


def stored(app) -> list[Pledge]:
    with app.app_context():
        return list(db.session.scalars(db.select(Pledge)))


ACCEPTED = [
    "Niagara Bakery",
    "Ana's Café",
    "Panadería La Flor",
    "A.J. Hardware",
    "Łódź Deli",
    "St. Mary's Hall",
    "Mr. Fix-It Co.",
    "24/7 Market",
    "Phở Sài Gòn",
    "🍩☕ Donut Stop 🏳️‍🌈",
    "ร้านน้ำ",
    "é" * 60,
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_real_business_names_are_accepted_as_typed(client, seeded_app, name):
    assert business(client, name)["status"] == "counted"
    assert [p.name for p in stored(seeded_app)] == [name]


REFUSED = [
    ("https://cheap-pills.example", "web address"),
    ("Visit http://x.example now", "web address"),
    ("www.cheap-pills.example", "web address"),
    ("cheap-pills.example/buy", "web address"),
    ("CHEAP-PILLS.COM", "web address"),
    ("ｗｗｗ．cheap．example", "web address"),
    ("\ufdfd" * 120, "at most 60 characters"),
    ("n" * 61, "at most 60 characters"),
    ("Z̵̡̛̖a̸l̷g̶o̵", "at most 2 accents on one letter"),
    ("evil\u202etxt.exe", "control characters"),
    ("\u2067Shop\u2069", "control characters"),
    ("Shop\u200f", "control characters"),
]


@pytest.mark.parametrize(("name", "message"), REFUSED)
def test_a_name_that_would_take_over_the_projector_is_422_naming_the_field(client, seeded_app, name, message):
    response = post_pledge(client, kind="business", name=name, show_name=True)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert message in " ".join(error["fields"]["name"])
    assert stored(seeded_app) == [] and totals(client)["total"] == 0


def test_a_refused_name_is_explained_in_spanish(client):
    response = client.post(
        "/api/v1/campaigns/current/pledges?lang=es",
        json={
            "kind": "resident",
            "neighborhood": "lovejoy",
            "email": "a@example.org",
            "name": "www.spam.biz",
        },
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["name"] == [
        "Un nombre no puede contener una dirección web."
    ]


def test_the_form_shows_a_refused_name_beside_the_field_and_keeps_it(client):
    response = submit_form(client, kind="business", name="Z̵̡̛̖a̸l̷g̶o̵ Bakery", show_name="on")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "A name has at most 2 accents on one letter." in html
    assert 'value="Z̵̡̛̖a̸l̷g̶o̵ Bakery"' in html


def test_a_name_waits_for_approval_before_any_public_page_shows_it_and_the_pledge_counts_meanwhile(
    client, admin
):
    pledge = business(client, "Niagara Bakery")

    assert pledge["status"] == "counted" and totals(client)["businesses"] == 1
    assert shown_on(client, "Niagara Bakery") == []
    listed = client.get(NAMES_URL, headers=admin).get_json()
    assert listed["names"][0]["id"] == pledge["id"]
    assert {k: listed["names"][0][k] for k in ("name", "neighborhood", "status", "pledge_status")} == {
        "name": "Niagara Bakery",
        "neighborhood": "lovejoy",
        "status": "pending",
        "pledge_status": "counted",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listed["names"][0]["created_at"])

    approved = client.post(f"{NAMES_URL}/approve", json={"ids": [pledge["id"]]}, headers=admin)

    assert approved.status_code == 200
    assert approved.get_json() == {"status": "approved", "changed": 1, "unchanged": 0, "ids": [pledge["id"]]}
    assert shown_on(client, "Niagara Bakery") == list(PUBLIC_PAGES)
    assert client.get(NAMES_URL, headers=admin).get_json()["names"] == []
    audit = client.get("/api/v1/admin/audit", headers=admin).get_json()["entries"]
    assert [(e["action"], e["target"], e["actor"]) for e in audit] == [
        ("name.approve", pledge["id"], "mayor")
    ]


def test_a_rejected_name_never_shows_and_its_pledge_still_counts(client, admin):
    first, second = business(client, "Quiet Bakery"), business(client, "Loud Deli")
    client.post(f"{NAMES_URL}/approve", json={"ids": [second["id"]]}, headers=admin)
    assert shown_on(client, "Loud Deli") == list(PUBLIC_PAGES)

    both = {"ids": [first["id"], second["id"]], "reason": "not a name"}
    rejected = client.post(f"{NAMES_URL}/reject", json=both, headers=admin)

    assert rejected.status_code == 200 and rejected.get_json()["changed"] == 2
    assert shown_on(client, "Quiet Bakery") == [] and shown_on(client, "Loud Deli") == []
    assert totals(client)["businesses"] == 2
    listed = client.get(NAMES_URL, query_string={"status": "rejected"}, headers=admin).get_json()["names"]
    assert {row["id"] for row in listed} == {first["id"], second["id"]}
    audit = client.get("/api/v1/admin/audit", headers=admin).get_json()["entries"]
    assert {e["reason"] for e in audit if e["action"] == "name.reject"} == {"not a name"}


def test_with_business_names_immediate_a_name_shows_at_once(database_url, tmp_path):
    app = make_app(database_url, tmp_path, BUSINESS_NAMES="immediate")
    with app.app_context():
        upgrade()
        seed(goal=100)
    client = app.test_client()

    business(client, "Tipico Coffee")

    assert shown_on(client, "Tipico Coffee") == list(PUBLIC_PAGES)


def test_an_unknown_id_changes_nothing_and_is_422_naming_ids(client, admin):
    known = business(client, "Niagara Bakery")["id"]
    resident = post_pledge(client, name="Rosa Resident", show_name=True).get_json()["id"]

    response = client.post(f"{NAMES_URL}/approve", json={"ids": [known, "nope", resident]}, headers=admin)

    assert response.status_code == 422
    assert "nope" in response.get_json()["error"]["fields"]["ids"][0]
    assert resident in response.get_json()["error"]["fields"]["ids"][0]
    assert shown_on(client, "Niagara Bakery") == []
    assert client.post(f"{NAMES_URL}/approve", json={"ids": []}, headers=admin).status_code == 422


def test_only_an_admin_key_lists_or_decides_names(client, seeded_app):
    pledge = business(client, "Niagara Bakery")
    reader = bearer(make_key(seeded_app, "reader"))

    assert client.get(NAMES_URL).status_code == 401
    assert client.get(NAMES_URL, headers=reader).status_code == 403
    approve = client.post(f"{NAMES_URL}/approve", json={"ids": [pledge["id"]]}, headers=reader)
    assert approve.status_code == 403
    assert shown_on(client, "Niagara Bakery") == []


def test_the_names_api_pages_through_every_pending_name(client, admin):
    ids = {business(client, f"Shop {n}")["id"] for n in range(5)}

    seen, url = set(), f"{NAMES_URL}?limit=2"
    while url:
        page = client.get(url, headers=admin).get_json()
        seen |= {row["id"] for row in page["names"]}
        url = page["next"]

    assert seen == ids


def sign_in(client, key: str) -> None:
    response = client.post(
        "/admin/sign-in", data={"key": key, "csrf_token": csrf_token(client, "/admin/sign-in")}
    )
    assert response.status_code == 303


def test_the_admin_page_approves_and_rejects_ticked_names_in_bulk(client, seeded_app):
    ids = [business(client, name)["id"] for name in ("Niagara Bakery", "Café Ana", "Spam Shop")]
    assert client.get("/admin/names").status_code == 303  # signed out: to the sign-in page
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))

    page = client.get("/admin/names")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    assert all(f'value="{public_id}"' in html for public_id in ids)
    token = csrf_token(client, "/admin/names")

    approved = client.post(
        "/admin/names", data={"ids": ids[:2], "decision": "approve", "csrf_token": token, "status": "pending"}
    )
    assert approved.status_code == 303
    assert "2 names approved" in client.get(approved.headers["Location"]).get_data(as_text=True)
    rejected = client.post("/admin/names", data={"ids": ids[2], "decision": "reject", "csrf_token": token})

    assert rejected.status_code == 303
    assert shown_on(client, "Niagara Bakery") == shown_on(client, "Café Ana") == list(PUBLIC_PAGES)
    assert shown_on(client, "Spam Shop") == []
    assert totals(client)["businesses"] == 3
    assert "Spam Shop" in client.get("/admin/names?status=rejected").get_data(as_text=True)


def test_the_admin_page_refuses_a_decision_without_its_csrf_token(client, seeded_app):
    pledge = business(client, "Niagara Bakery")
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))

    response = client.post("/admin/names", data={"ids": [pledge["id"]], "decision": "approve"})

    assert response.status_code == 400
    assert shown_on(client, "Niagara Bakery") == []


def test_the_wall_still_reads_the_shown_businesses_index(client, seeded_app):
    if seeded_app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("PostgreSQL plans by table statistics; the partial index is checked on SQLite")
    with seeded_app.app_context():
        engine = db.engine
    statements: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, *args) -> None:  # noqa: ANN001
        if "show_name" in statement and statement.lstrip().lower().startswith("select"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        client.get("/api/v1/campaigns/current/businesses")
    finally:
        event.remove(engine, "before_cursor_execute", record)

    (statement, parameters), *_ = statements
    with seeded_app.app_context():
        plan = db.session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    assert any("ix_pledges_shown" in str(row) for row in plan), plan
