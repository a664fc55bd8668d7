"""Manage my pledge: a signed link mailed to the pledge's address changes or withdraws it.

Against a real local SMTP server; the database is read directly to check what a withdrawal keeps.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import text
from werkzeug.test import TestResponse

from pledges.extensions import db
from pledges.services.moderation import remove_pledge
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import (
    bearer,
    csrf_token,
    eventually,
    make_key,
    neighborhood_row,
    post_pledge,
    submit_form,
    totals,
)

MANAGE_LINK = re.compile(r"https?://\S+/manage/\S+")


def managing_app(database_url, tmp_path, port: int | None, **settings) -> Flask:
    mail = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port} if port else {"SMTP_HOST": ""}
    app = make_app(database_url, tmp_path, PUBLIC_URL="http://localhost", **mail, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def ask_for_link(client: FlaskClient, email: str, **query: str) -> TestResponse:
    """Send /manage's form as a browser does (its mail is sent apart from the request)."""
    path = "/manage" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    data = {"email": email, "csrf_token": csrf_token(client, path)}
    return client.post(path, data=data, buffered=True)


def link_path(inbox, number: int = -1) -> str:
    """The link in a mail: sent apart from the request, so waited for."""
    assert eventually(lambda: len(inbox.messages) > (number if number >= 0 else -number - 1))
    body = inbox.messages[number].get_payload(decode=True).decode()
    return MANAGE_LINK.search(body).group(0).removeprefix("http://localhost")


def send(client: FlaskClient, path: str, **fields: str) -> TestResponse:
    """Press a button of the link's page; any form of the session carries its CSRF token."""
    return client.post(path, data={"csrf_token": csrf_token(client, "/manage"), **fields})


def pledge_row(app: Flask, public_id: str) -> dict:
    with app.app_context():
        row = db.session.execute(
            text(
                "SELECT p.status, p.kind, p.email, p.email_canonical, p.name, p.show_name, p.name_status, "
                "p.address_hash, n.slug AS neighborhood FROM pledges p "
                "JOIN neighborhoods n ON n.id = p.neighborhood_id WHERE p.public_id = :id"
            ),
            {"id": public_id},
        ).one()
        db.session.remove()
    return dict(row._mapping)


def recount_is_clean(app: Flask) -> bool:
    result = app.test_cli_runner().invoke(args=["pledges", "recount", "--check"])
    return result.exit_code == 0 and "counts match" in result.output


def test_asking_with_a_pledged_email_mails_one_link_and_answers_as_for_one_that_never_pledged(
    database_url, tmp_path, smtp
):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()
    post_pledge(client, email="rosa@example.org")

    pledged = ask_for_link(client, "rosa@example.org")
    assert eventually(lambda: len(inbox.messages) == 1)
    never = ask_for_link(client, "nobody@example.org")
    post_pledge(client, email="marker@example.org")
    ask_for_link(client, "marker@example.org")  # mails in order: once this one is in, nobody's would be
    assert eventually(lambda: len(inbox.messages) == 2)

    assert [m["To"] for m in inbox.messages] == ["rosa@example.org", "marker@example.org"]
    assert pledged.status_code == never.status_code == 200
    assert pledged.get_data() == never.get_data()
    assert "If this email has pledged, we have sent it a link" in never.get_data(as_text=True)
    assert pledged.headers["Cache-Control"] == never.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in pledged.headers and "Set-Cookie" not in never.headers
    assert inbox.messages[0]["To"] == "rosa@example.org"
    assert link_path(inbox).startswith("/manage/")


def test_the_link_goes_to_the_address_the_pledge_was_made_with(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()
    post_pledge(client, email="Jane.Doe@gmail.com")

    ask_for_link(client, "janedoe+porch@googlemail.com")  # the same mailbox, spelled otherwise

    assert eventually(lambda: inbox.messages)
    (message,) = inbox.messages
    assert message["To"] == "jane.doe@gmail.com"


def test_opening_the_link_changes_nothing(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    pledge_id = post_pledge(client, email="rosa@example.org", neighborhood="allentown").get_json()["id"]
    ask_for_link(client, "rosa@example.org")

    opened = client.get(link_path(inbox))  # what a mail scanner does

    page = opened.get_data(as_text=True)
    assert opened.status_code == 200 and opened.headers["Cache-Control"] == "no-store"
    assert "Allentown" in page and "Withdraw my pledge" in page and 'method="post"' in page
    assert "rosa@example.org" not in page
    assert pledge_row(app, pledge_id)["status"] == "counted"
    assert totals(client)["total"] == 1


def test_changing_the_neighborhood_moves_the_totals(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    pledge_id = post_pledge(client, email="rosa@example.org", neighborhood="allentown").get_json()["id"]
    post_pledge(client, neighborhood="allentown")
    ask_for_link(client, "rosa@example.org")

    changed = send(client, link_path(inbox), action="change", kind="resident", neighborhood="lovejoy")

    assert changed.status_code == 200 and "Your pledge is changed" in changed.get_data(as_text=True)
    after = totals(client)
    assert neighborhood_row(after, "allentown")["total"] == 1
    assert neighborhood_row(after, "lovejoy")["residents"] == 1
    assert after["total"] == 2
    assert pledge_row(app, pledge_id)["neighborhood"] == "lovejoy"
    assert recount_is_clean(app)


def test_changing_the_kind_moves_the_totals_and_a_business_needs_its_name(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    pledge_id = post_pledge(client, email="shop@example.org", neighborhood="allentown").get_json()["id"]
    ask_for_link(client, "shop@example.org")
    link = link_path(inbox)

    nameless = send(client, link, action="change", kind="business", neighborhood="allentown")
    assert nameless.status_code == 422 and "business&#39;s name" in nameless.get_data(as_text=True)
    assert neighborhood_row(totals(client), "allentown")["residents"] == 1

    named = send(client, link, action="change", kind="business", neighborhood="allentown", name="Corner Shop")

    assert named.status_code == 200
    row = neighborhood_row(totals(client), "allentown")
    assert (row["residents"], row["businesses"], row["total"]) == (0, 1, 1)
    assert pledge_row(app, pledge_id)["name"] == "Corner Shop"
    assert recount_is_clean(app)


def test_withdrawing_takes_the_pledge_out_keeps_nothing_personal_and_frees_the_email(
    database_url, tmp_path, smtp
):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    created = post_pledge(
        client, email="Shop@Example.org", kind="business", name="Corner Shop", show_name=True
    ).get_json()
    ask_for_link(client, "shop@example.org")
    link = link_path(inbox)

    withdrawn = send(client, link, action="withdraw")

    assert withdrawn.status_code == 200 and "withdrawn" in withdrawn.get_data(as_text=True)
    assert totals(client)["total"] == 0
    row = pledge_row(app, created["id"])
    assert row["status"] == "removed"
    assert "shop" not in (row["email"] + row["email_canonical"]).lower()
    assert (row["name"], bool(row["show_name"]), row["name_status"], row["address_hash"]) == (
        None,
        False,
        None,
        None,
    )
    with app.app_context():
        audit = db.session.execute(text("SELECT action, target, details FROM audit_log")).all()
    assert [(a.action, a.target) for a in audit] == [("pledge.withdraw", created["id"])]
    assert "shop" not in str(audit).lower()
    assert recount_is_clean(app)

    again = client.get(link)
    assert again.status_code == 200 and "Your pledge is withdrawn" in again.get_data(as_text=True)
    assert "Withdraw my pledge" not in again.get_data(as_text=True)
    assert send(client, link, action="change", kind="resident", neighborhood="lovejoy").status_code == 200
    assert totals(client)["total"] == 0

    repledged = post_pledge(client, email="shop@example.org")
    assert repledged.status_code == 201 and repledged.get_json()["id"] != created["id"]
    assert totals(client)["total"] == 1


def past_link(app: Flask, public_id: str, hours_ago: float) -> str:
    """A link signed as the app signs them, but `hours_ago` hours ago."""

    class SignedEarlier(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - hours_ago * 3600)

    serializer = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="manage-pledge", signer=SignedEarlier)
    return f"/manage/{serializer.dumps(public_id)}"


def test_a_forged_or_expired_link_says_so_and_changes_nothing(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    pledge_id = post_pledge(client, email="rosa@example.org").get_json()["id"]
    ask_for_link(client, "rosa@example.org")
    link = link_path(inbox)

    forged = client.get(link[:-3] + "xyz")
    assert forged.status_code == 400 and "does not work" in forged.get_data(as_text=True)
    assert send(client, link[:-3] + "xyz", action="withdraw").status_code == 400

    assert client.get(past_link(app, pledge_id, hours_ago=23)).status_code == 200
    expired = client.get(past_link(app, pledge_id, hours_ago=25))
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    assert send(client, past_link(app, pledge_id, hours_ago=25), action="withdraw").status_code == 400
    assert totals(client)["total"] == 1


def test_without_mail_configured_the_page_says_the_feature_is_off(database_url, tmp_path):
    client = managing_app(database_url, tmp_path, None).test_client()
    post_pledge(client, email="rosa@example.org")

    page = client.get("/manage")
    answer = client.post("/manage", data={"email": "rosa@example.org", "csrf_token": csrf_token(client)})

    assert page.status_code == 200 and "turned off" in page.get_data(as_text=True)
    assert 'name="email"' not in page.get_data(as_text=True)
    assert answer.status_code == 200 and "turned off" in answer.get_data(as_text=True)


def test_the_manage_pages_speak_spanish(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()
    post_pledge(client, email="rosa@example.org")

    form = client.get("/manage?lang=es")
    sent = ask_for_link(client, "rosa@example.org", lang="es")
    page = client.get(link_path(inbox) + "?lang=es")

    assert '<html lang="es">' in form.get_data(as_text=True)
    assert "Correo" in form.get_data(as_text=True) or "correo" in form.get_data(as_text=True)
    assert '<html lang="es">' in sent.get_data(as_text=True)
    assert '<html lang="es">' in page.get_data(as_text=True)
    assert "Vecindario" in page.get_data(as_text=True)


def test_every_form_needs_its_csrf_token(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()
    post_pledge(client, email="rosa@example.org")
    client.get("/manage")

    assert client.post("/manage", data={"email": "rosa@example.org"}, buffered=True).status_code == 400
    assert inbox.messages == []
    ask_for_link(client, "rosa@example.org")
    link = link_path(inbox)

    assert client.post(link, data={"action": "withdraw"}).status_code == 400
    assert totals(client)["total"] == 1


def test_a_badly_typed_email_is_shown_again_with_its_error(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()

    answer = ask_for_link(client, "not-an-email")

    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "name@example.org" in page and 'value="not-an-email"' in page
    assert inbox.messages == []


def test_asking_too_often_from_one_connection_is_refused(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = managing_app(database_url, tmp_path, port, PLEDGE_RATE_LIMIT="2/minute").test_client()
    post_pledge(client, email="rosa@example.org")  # one of the address's two

    assert ask_for_link(client, "someone@example.org").status_code == 200
    refused = ask_for_link(client, "rosa@example.org")

    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert 'name="email"' in refused.get_data(as_text=True)
    assert inbox.messages == []


def test_a_repeat_pledge_is_offered_the_manage_page(database_url, tmp_path, smtp):
    _, port = smtp
    client = managing_app(database_url, tmp_path, port).test_client()
    submit_form(client, email="rosa@example.org")

    repeat = submit_form(client, email="rosa@example.org")
    thanks = client.get(repeat.headers["Location"]).get_data(as_text=True)

    assert "Manage your pledge" in thanks and 'href="/manage"' in thanks


def test_a_pledge_the_mayors_office_removed_gets_no_link(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    pledge_id = post_pledge(client, email="rosa@example.org").get_json()["id"]
    with app.app_context():
        remove_pledge(pledge_id, "a test of the queue", "admin")
        db.session.remove()

    answer = ask_for_link(client, "rosa@example.org")

    assert answer.status_code == 200 and "If this email has pledged" in answer.get_data(as_text=True)
    assert inbox.messages == []


def test_once_the_campaign_closes_a_pledge_can_be_withdrawn_but_not_changed(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    post_pledge(client, email="rosa@example.org", neighborhood="allentown")
    ask_for_link(client, "rosa@example.org")
    link = link_path(inbox)
    with app.app_context():
        db.session.execute(text("UPDATE campaigns SET closed_at = :now"), {"now": datetime.now(UTC)})
        db.session.commit()

    assert "Save the changes" not in client.get(link).get_data(as_text=True)
    refused = send(client, link, action="change", kind="resident", neighborhood="lovejoy")
    assert refused.status_code == 409 and "closed" in refused.get_data(as_text=True)
    assert neighborhood_row(totals(client), "allentown")["total"] == 1

    assert send(client, link, action="withdraw").status_code == 200
    assert totals(client)["total"] == 0
    assert recount_is_clean(app)


def test_a_withdrawn_pledge_cannot_be_restored_into_the_count(database_url, tmp_path, smtp):
    """Its person may have pledged again: counting the old one too would count them twice."""
    inbox, port = smtp
    app = managing_app(database_url, tmp_path, port)
    client = app.test_client()
    first = post_pledge(client, email="Jane.Doe@gmail.com").get_json()["id"]
    ask_for_link(client, "jane.doe@gmail.com")
    assert send(client, link_path(inbox), action="withdraw").status_code == 200
    assert post_pledge(client, email="janedoe@gmail.com").status_code == 201
    admin = bearer(make_key(app, "mayor", scope="admin"))

    restored = client.post(f"/api/v1/admin/pledges/{first}/restore", json={"reason": "oops"}, headers=admin)

    assert restored.status_code == 422
    assert totals(client)["total"] == 1
    assert recount_is_clean(app)
