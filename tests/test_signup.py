"""The sign-up table (/signup): a tablet signed in with an intake key, one person's pledge after another."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta

from flask_migrate import upgrade
from werkzeug.test import TestResponse

from pledges.database import utcnow
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, csrf_token, make_key, totals

TABLE = "Lovejoy block party"
_people = itertools.count(1)


def table_app(database_url, tmp_path, **settings):
    app = make_app(database_url, tmp_path, **settings)
    with app.app_context():
        upgrade()
        seed(goal=1000)
    return app


def sign_in(client, key: str) -> TestResponse:
    return client.post(
        "/signup/sign-in", data={"key": key, "csrf_token": csrf_token(client, "/signup/sign-in")}
    )


def signed_in_table(app, scope: str = "intake", limit: str | None = None):
    client = app.test_client()
    assert sign_in(client, make_key(app, TABLE, scope=scope, limit=limit)).status_code == 303
    return client


def pledge_at_table(client, token: str | None = None, **fields) -> TestResponse:
    """One person's pledge, sent as the tablet's browser sends the form, with JavaScript off."""
    form = {
        "kind": "resident",
        "neighborhood": "lovejoy",
        "email": f"table{next(_people)}@example.org",
        "campaign": "nno-2027",
        "csrf_token": token or csrf_token(client, "/signup"),
    }
    form.update(fields)
    return client.post("/signup", data={k: v for k, v in form.items() if v is not None})


def token_on(response: TestResponse) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_an_intake_key_signs_in_and_the_page_names_the_table(seeded_app):
    client = seeded_app.test_client()
    assert client.get("/signup").status_code == 303

    signed_in = sign_in(client, make_key(seeded_app, TABLE, scope="intake"))

    assert signed_in.status_code == 303 and signed_in.headers["Location"].endswith("/signup")
    page = client.get("/signup")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Signed in as {TABLE}" in html
    assert 'action="/signup/sign-out"' in html and "Sign out" in html


def test_an_admin_key_may_sign_in_too(seeded_app):
    client = seeded_app.test_client()
    assert sign_in(client, make_key(seeded_app, "mayor", scope="admin")).status_code == 303
    assert client.get("/signup").status_code == 200


def test_a_read_key_or_a_wrong_key_cannot_sign_in(seeded_app):
    client = seeded_app.test_client()
    reader = make_key(seeded_app, "reader", scope="read")
    for key in (reader, "pl_wrong", ""):
        refused = sign_in(client, key)
        assert refused.status_code == 401
        assert "not an active intake key" in refused.get_data(as_text=True)
    assert client.get("/signup").status_code == 303


def test_a_hundred_people_pledge_in_a_row_against_the_keys_own_limit(database_url, tmp_path):
    # The tablet's one address would be burst-checked after 3 and limited after 5 a minute.
    app = table_app(database_url, tmp_path, BURST_LIMIT=3, PLEDGE_RATE_LIMIT="5/minute")
    client = signed_in_table(app)
    before = totals(client)["total"]

    token = csrf_token(client, "/signup")
    for _ in range(100):
        answer = pledge_at_table(client, token)
        assert answer.status_code == 303
        assert answer.headers["Location"] == "/signup?done=counted&lang=en"
        token = token_on(client.get(answer.headers["Location"]))

    assert totals(client)["total"] == before + 100
    admin = bearer(make_key(app, "mayor", scope="admin"))
    taken = client.get(
        "/api/v1/admin/pledges", query_string={"intake_key": TABLE, "limit": 500}, headers=admin
    )
    pledges = taken.get_json()["pledges"]
    assert len(pledges) == 100
    assert {(p["intake_key"], p["status"], p["address_hash"]) for p in pledges} == {(TABLE, "counted", None)}


def test_the_next_person_sees_a_blank_uncached_form_with_no_trace_of_the_last(seeded_app):
    client = signed_in_table(seeded_app)

    answer = pledge_at_table(
        client, kind="business", name="Rosa's Bakery", email="rosa@example.org", show_name="on"
    )
    assert answer.status_code == 303
    assert "rosa" not in answer.headers["Location"].lower() and "done=counted" in answer.headers["Location"]
    page = client.get(answer.headers["Location"])

    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Thank you! Your pledge is counted." in html
    assert "rosa" not in html.lower() and "bakery" not in html.lower()
    assert page.headers["Cache-Control"] == "no-store"
    assert answer.headers["Cache-Control"] == "no-store"
    assert re.search(r'<form method="post" action="/signup[^"]*" class="[^"]*" autocomplete="off"', html)
    for field in ("name", "email"):
        (tag,) = re.findall(rf'<input id="field-{field}"[^>]*>', html)
        assert 'autocomplete="off"' in tag and 'value=""' in tag
    assert 'value="resident" autocomplete="off" checked' in html and "selected" not in html
    with client.session_transaction() as stored:
        assert "rosa" not in repr(dict(stored)).lower()


def test_a_repeat_email_is_told_so_and_never_that_it_counted(seeded_app):
    client = signed_in_table(seeded_app)
    pledge_at_table(client, email="twice@example.org")

    again = pledge_at_table(client, email="Twice@Example.org")

    assert again.status_code == 303 and again.headers["Location"].startswith("/signup?done=repeat")
    html = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "This email address has already pledged." in html and "is counted." not in html
    assert totals(client)["total"] == 1


def test_a_validation_error_keeps_the_input_and_says_what_is_wrong(seeded_app):
    client = signed_in_table(seeded_app)

    answer = pledge_at_table(
        client, kind="business", name="", email="not-an-email", neighborhood="hamlin-park"
    )

    html = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert answer.headers["Cache-Control"] == "no-store"
    assert 'value="not-an-email"' in html and 'value="hamlin-park" selected' in html
    assert 'value="business" autocomplete="off" checked' in html
    assert 'id="email-error"' in html and "Enter an email address like name@example.org." in html
    assert 'id="name-error"' in html and "Enter the business&#39;s name" in html
    assert totals(client)["total"] == 0


def test_a_table_over_its_keys_limit_is_asked_to_wait_with_the_input_kept(database_url, tmp_path):
    app = table_app(database_url, tmp_path)
    client = signed_in_table(app, limit="2/minute")
    assert pledge_at_table(client).status_code == 303
    assert pledge_at_table(client).status_code == 303

    refused = pledge_at_table(client, email="third@example.org")

    html = refused.get_data(as_text=True)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Please wait a moment" in html and 'value="third@example.org"' in html
    assert totals(client)["total"] == 2


def test_each_person_can_switch_the_page_to_spanish(seeded_app):
    client = signed_in_table(seeded_app)

    page = client.get("/signup?lang=es")

    html = page.get_data(as_text=True)
    assert '<html lang="es">' in html
    assert 'href="/signup?lang=en"' in html and 'aria-current="true" lang="es"' in html
    assert "Vecindario" in html and "Me comprometo como" in html
    assert f"Sesión iniciada como {TABLE}" in html and "Cerrar sesión" in html
    answer = pledge_at_table(client, token_on(page))
    assert answer.headers["Location"] == "/signup?done=counted&lang=es"
    assert "¡Gracias! Su compromiso está contado." in client.get(answer.headers["Location"]).get_data(
        as_text=True
    )


def test_signing_out_ends_the_session(seeded_app):
    client = signed_in_table(seeded_app)
    token = csrf_token(client, "/signup")

    out = client.post("/signup/sign-out", data={"csrf_token": token})

    assert out.status_code == 303 and out.headers["Location"].endswith("/signup/sign-in")
    assert client.get("/signup").status_code == 303
    late = pledge_at_table(client, token)  # the form still open on the screen
    assert late.status_code == 303 and late.headers["Location"].endswith("/signup/sign-in")
    assert totals(client)["total"] == 0


def test_revoking_the_key_ends_the_session_on_the_next_request(seeded_app):
    client = signed_in_table(seeded_app)
    token = csrf_token(client, "/signup")

    result = seeded_app.test_cli_runner().invoke(args=["keys", "revoke", TABLE])

    assert result.exit_code == 0
    refused = pledge_at_table(client, token)
    assert refused.status_code == 303 and refused.headers["Location"].endswith("/signup/sign-in")
    assert client.get("/signup").status_code == 303
    assert totals(client)["total"] == 0


def test_an_idle_table_is_signed_out_after_the_admin_idle_time(seeded_app, monkeypatch):
    client = signed_in_table(seeded_app)
    assert client.get("/signup").status_code == 200
    later = utcnow() + timedelta(minutes=seeded_app.config["ADMIN_IDLE_MINUTES"] + 1)
    monkeypatch.setattr("pledges.database.utcnow", lambda: later)
    assert client.get("/signup").status_code == 303


def test_a_pledge_without_a_valid_csrf_token_is_not_saved_and_keeps_the_input(seeded_app):
    client = signed_in_table(seeded_app)

    answer = pledge_at_table(client, token="stale", email="kept@example.org")

    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and answer.headers["Cache-Control"] == "no-store"
    assert "This form had expired" in html and 'value="kept@example.org"' in html
    assert totals(client)["total"] == 0


def test_in_email_mode_the_table_says_check_your_email_not_counted(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = table_app(
        database_url,
        tmp_path,
        PLEDGE_CONFIRMATION="email",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        MAIL_FROM="Porch Light <hello@porchlight.example>",
        PUBLIC_URL="http://localhost",
    )
    client = signed_in_table(app)

    answer = pledge_at_table(client, email="confirm.me@example.org")

    assert answer.status_code == 303 and "done=confirm_email" in answer.headers["Location"]
    html = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "check your email" in html and "It is not counted yet" in html
    assert "Your pledge is counted" not in html
    assert totals(client)["total"] == 0
    assert [message["To"] for message in inbox.messages] == ["confirm.me@example.org"]
