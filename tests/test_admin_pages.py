"""The admin page: sign in with an admin key, review, remove and restore with a reason; never cached."""

from __future__ import annotations

import re
from datetime import timedelta

from pledges.database import utcnow

from .factories import bearer, csrf_token, make_key, post_pledge, totals


def sign_in(client, key: str):
    return client.post(
        "/admin/sign-in", data={"key": key, "csrf_token": csrf_token(client, "/admin/sign-in")}
    )


def action_form(html: str, action: str) -> str:
    return re.search(rf'action="(/admin/pledges/[^/"]+/{action})"', html).group(1)


def test_the_admin_page_asks_for_a_sign_in(client):
    response = client.get("/admin")
    assert response.status_code == 303 and "/admin/sign-in" in response.headers["Location"]


def test_a_read_key_or_a_wrong_key_cannot_sign_in(client, seeded_app):
    reader = make_key(seeded_app, "reader")
    for key in (reader, "pl_wrong", ""):
        refused = sign_in(client, key)
        assert refused.status_code == 401
        assert "not an active admin key" in refused.get_data(as_text=True)
    assert client.get("/admin").status_code == 303


def test_an_admin_reviews_removes_and_restores_with_a_reason(client, seeded_app):
    post_pledge(client, email="visible.in.admin@example.org", neighborhood="central")
    assert sign_in(client, make_key(seeded_app, "mayor", scope="admin")).status_code == 303

    page = client.get("/admin")
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "visible.in.admin@example.org" in html

    token = csrf_token(client, "/admin")
    no_reason = client.post(action_form(html, "remove"), data={"reason": " ", "csrf_token": token})
    assert no_reason.status_code == 303 and totals(client)["total"] == 1

    client.post(action_form(html, "remove"), data={"reason": "test", "csrf_token": token})
    assert totals(client)["total"] == 0
    html = client.get("/admin?status=removed").get_data(as_text=True)
    client.post(action_form(html, "restore"), data={"reason": "real", "csrf_token": token})
    assert totals(client)["total"] == 1
    admin = bearer(make_key(seeded_app, "auditor", scope="admin"))
    actions = [
        (e["actor"], e["action"])
        for e in client.get("/api/v1/admin/audit", headers=admin).get_json()["entries"]
    ]
    assert actions[:2] == [("mayor", "pledge.restore"), ("mayor", "pledge.remove")]


def test_moderation_needs_the_csrf_token(client, seeded_app):
    post_pledge(client)
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))
    html = client.get("/admin").get_data(as_text=True)
    assert client.post(action_form(html, "remove"), data={"reason": "x"}).status_code == 400
    assert totals(client)["total"] == 1


def test_search_and_the_abuse_report_render_in_spanish(client, seeded_app):
    post_pledge(client, email="buscar@example.org")
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))

    found = client.get("/admin?q=buscar&lang=es").get_data(as_text=True)
    report = client.get("/admin/abuse?lang=es").get_data(as_text=True)

    assert "buscar@example.org" in found and "Buscar" in found
    assert "Informe de abusos" in report


def test_signing_out_and_revoking_the_key_end_the_session(client, seeded_app):
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))
    assert client.get("/admin").status_code == 200
    seeded_app.test_cli_runner().invoke(args=["keys", "revoke", "mayor"])
    assert client.get("/admin").status_code == 303

    sign_in(client, make_key(seeded_app, "mayor2", scope="admin"))
    client.post("/admin/sign-out", data={"csrf_token": csrf_token(client, "/admin")})
    assert client.get("/admin").status_code == 303


def test_an_idle_session_expires(client, seeded_app, monkeypatch):
    sign_in(client, make_key(seeded_app, "mayor", scope="admin"))
    assert client.get("/admin").status_code == 200
    later = utcnow() + timedelta(minutes=31)
    monkeypatch.setattr("pledges.database.utcnow", lambda: later)
    assert client.get("/admin").status_code == 303
