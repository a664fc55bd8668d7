"""One person, one pledge: spellings of the same mailbox are one email, and mail goes where it was typed."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from pledges.emails import canonical_email
from pledges.extensions import db
from pledges.models import Pledge

from .conftest import BOTH_BACKENDS
from .factories import post_pledge, totals
from .test_confirmation import confirming_app


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("jane.doe@gmail.com", "janedoe@gmail.com"),
        ("j.a.n.e.d.o.e@gmail.com", "janedoe@gmail.com"),
        ("janedoe+nno@gmail.com", "janedoe@gmail.com"),
        ("JaneDoe@GoogleMail.com", "janedoe@gmail.com"),
        ("ｖｉｃｔｉｍ@example.org", "victim@example.org"),
        ("victim+night@example.org", "victim@example.org"),
        ("first.last@example.org", "first.last@example.org"),  # dots count outside Gmail
    ],
)
def test_the_canonical_form_folds_case_width_tags_and_gmail_dots(typed, canonical):
    assert canonical_email(typed) == canonical


def test_every_spelling_of_one_mailbox_is_one_pledge_counted_once(client, seeded_app):
    first = post_pledge(client, email="jane.doe@gmail.com")
    again = [
        post_pledge(client, email=spelling)
        for spelling in (
            "j.a.n.e.d.o.e@gmail.com",
            "janedoe+nno@gmail.com",
            "janedoe@googlemail.com",
            "JANE.DOE@GMAIL.COM",
        )
    ]

    assert first.status_code == 201
    assert [a.status_code for a in again] == [200] * 4
    assert {a.get_json()["id"] for a in again} == {first.get_json()["id"]}
    assert totals(client)["total"] == 1
    with seeded_app.app_context():
        (stored,) = db.session.scalars(db.select(Pledge)).all()
        assert (stored.email, stored.email_canonical) == ("jane.doe@gmail.com", "janedoe@gmail.com")


def test_a_full_width_address_is_the_same_person_as_the_plain_one(client):
    assert post_pledge(client, email="victim@example.org").status_code == 201
    assert post_pledge(client, email="ｖｉｃｔｉｍ@example.org").status_code == 200
    assert totals(client)["total"] == 1


def test_mail_goes_to_the_address_as_typed(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = confirming_app(database_url, tmp_path, port).test_client()

    post_pledge(client, email="Jane.Doe+NNO@gmail.com")

    assert [m["To"] for m in inbox.messages] == ["jane.doe+nno@gmail.com"]


@BOTH_BACKENDS
def test_the_migration_backfills_canonical_emails_and_keeps_both_of_two_old_spellings_counted(empty_app):
    with empty_app.app_context():
        upgrade(revision="0007")
        db.session.execute(
            text(
                "INSERT INTO campaigns (slug, name, city, timezone, starts_at, ends_at, created_at) VALUES "
                "('old', 'Old', 'Buffalo', 'America/New_York', '2026-01-01', '2030-01-01', '2026-01-01')"
            )
        )
        db.session.execute(text("INSERT INTO neighborhoods (slug, name) VALUES ('allentown', 'Allentown')"))
        for n, email in enumerate(("jane.doe@gmail.com", "janedoe@gmail.com", "Sam+x@Example.org")):
            db.session.execute(
                text(
                    "INSERT INTO pledges (public_id, campaign_id, neighborhood_id, kind, email, show_name, "
                    "created_at, status, synthetic, confirmation_failures) VALUES "
                    f"('p{n}', 1, 1, 'resident', :email, false, '2026-06-01', 'counted', false, 0)"
                ),
                {"email": email},
            )
        db.session.commit()
        upgrade()
        rows = db.session.execute(
            text("SELECT email, email_canonical, status FROM pledges ORDER BY public_id")
        ).all()
    first, second, third = rows
    assert first == ("jane.doe@gmail.com", "janedoe@gmail.com", "counted")
    assert second[1].startswith("janedoe@gmail.com#") and second[2] == "counted"  # not lost
    assert third[1] == "sam@example.org"


def test_an_address_whose_canonical_form_is_too_long_is_refused_not_a_server_error(client):
    # One ligature NFKC turns into 18 letters: 33 characters typed, 390 once canonical.
    answer = post_pledge(client, email="\ufdfa" * 21 + "@example.com")

    assert answer.status_code == 422 and "email" in answer.get_json()["error"]["fields"]
    assert totals(client)["total"] == 0
