"""PLEDGE_CONFIRMATION=email, against a real local SMTP server: pending until the link's button is pressed."""

from __future__ import annotations

import time

from flask_migrate import upgrade

from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, csrf_token, make_key, post_pledge, totals
from .servers import free_port


def confirming_app(database_url, tmp_path, port: int, **settings):
    app = make_app(
        database_url,
        tmp_path,
        PLEDGE_CONFIRMATION="email",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        MAIL_FROM="Porch Light <hello@porchlight.example>",
        PUBLIC_URL="http://localhost",
        **settings,
    )
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def path_of(link: str) -> str:
    return link.removeprefix("http://localhost")


def test_a_pledge_is_pending_until_the_emailed_link_is_confirmed(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = confirming_app(database_url, tmp_path, port).test_client()

    answer = post_pledge(client, email="Rosa@Example.org", neighborhood="lovejoy")

    assert answer.status_code == 201 and answer.get_json()["status"] == "pending"
    assert totals(client)["total"] == 0
    (message,) = inbox.messages
    assert message["To"] == "rosa@example.org"
    assert message["From"] == "Porch Light <hello@porchlight.example>"
    link = path_of(inbox.link())

    opened = client.get(link)  # what a mail scanner does: it must not confirm
    assert opened.status_code == 200 and 'method="post"' in opened.get_data(as_text=True)
    assert totals(client)["total"] == 0

    confirmed = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert confirmed.status_code == 200 and "confirmed and counted" in confirmed.get_data(as_text=True)
    assert totals(client)["total"] == 1

    again = client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert "Already confirmed" in again.get_data(as_text=True)
    assert totals(client)["total"] == 1


def test_a_forged_or_expired_link_confirms_nothing(database_url, tmp_path, smtp, monkeypatch):
    inbox, port = smtp
    app = confirming_app(database_url, tmp_path, port)
    client = app.test_client()
    post_pledge(client)
    link = path_of(inbox.link())

    forged = client.get(link[:-3] + "xyz")
    assert forged.status_code == 400 and "does not work" in forged.get_data(as_text=True)

    eight_days_later = time.time() + 8 * 86_400
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: eight_days_later)
    expired = client.get(link)
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    assert totals(client)["total"] == 0


def test_the_confirm_button_needs_its_csrf_token(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = confirming_app(database_url, tmp_path, port).test_client()
    post_pledge(client)
    assert client.post(path_of(inbox.link())).status_code == 400
    assert totals(client)["total"] == 0


def test_a_mail_failure_keeps_the_pledge_pending_visible_to_admins_and_retried(database_url, tmp_path, smtp):
    inbox, port = smtp
    closed = free_port()
    app = confirming_app(database_url, tmp_path, closed)
    client, admin = app.test_client(), bearer(make_key(app, "admin", scope="admin"))

    answer = post_pledge(client, email="waiting@example.org")

    assert answer.status_code == 201 and answer.get_json()["status"] == "pending"
    (pending,) = client.get("/api/v1/admin/pledges?status=pending", headers=admin).get_json()["pledges"]
    assert pending["confirmation_failures"] == 1 and pending["confirmation_sent_at"] is None

    app.config["SMTP_PORT"] = port  # the mail server is back
    retried = app.test_cli_runner().invoke(args=["pledges", "send-confirmations"])

    assert retried.exit_code == 0 and "sent: 1" in retried.output
    assert inbox.messages and inbox.messages[0]["To"] == "waiting@example.org"
    client.post(path_of(inbox.link()), data={"csrf_token": csrf_token(client, path_of(inbox.link()))})
    assert totals(client)["total"] == 1


def test_starttls_is_used_when_asked(database_url, tmp_path, smtp):
    """This local server offers no STARTTLS, so a client that asks for it must fail, not send in clear."""
    inbox, port = smtp
    client = confirming_app(database_url, tmp_path, port, SMTP_STARTTLS=True).test_client()

    answer = post_pledge(client)

    assert answer.status_code == 201
    assert inbox.messages == []


def test_without_confirmation_pledges_count_at_once_and_no_mail_is_sent(client, smtp):
    inbox, _ = smtp
    assert post_pledge(client).get_json()["status"] == "counted"
    assert inbox.messages == []


def test_a_link_for_a_pledge_removed_meanwhile_counts_nothing_and_says_so(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = confirming_app(database_url, tmp_path, port)
    client, admin = app.test_client(), bearer(make_key(app, "mayor", scope="admin"))
    pledge_id = post_pledge(client, email="gone@example.org").get_json()["id"]
    link = path_of(inbox.link())
    removed = client.post(
        f"/api/v1/admin/pledges/{pledge_id}/remove", json={"reason": "a script"}, headers=admin
    )
    assert removed.status_code == 200

    confirmed = client.post(link, data={"csrf_token": csrf_token(client, link)})

    assert "This pledge is not counted" in confirmed.get_data(as_text=True)
    assert "counted." not in confirmed.get_data(as_text=True).replace("not counted", "")
    assert totals(client)["total"] == 0
