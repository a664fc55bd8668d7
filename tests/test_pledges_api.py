"""POST /api/v1/campaigns/{campaign}/pledges, as the contract says."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Campaign, Pledge

from .factories import PLEDGES_URL, neighborhood_row, pledge_body, post_pledge, totals


def stored_pledges(app):
    with app.app_context():
        return list(db.session.scalars(db.select(Pledge)))


def test_a_pledge_is_answered_201_and_counted_at_once(client):
    response = post_pledge(client, kind="business", neighborhood="black-rock", name="Rock Diner")

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "kind", "neighborhood", "status", "created_at"}
    assert body["kind"] == "business"
    assert body["neighborhood"] == "black-rock"
    assert body["status"] == "counted"
    assert body["created_at"].endswith("Z")
    row = neighborhood_row(totals(client), "black-rock")
    assert (row["residents"], row["businesses"], row["total"]) == (0, 1, 1)


def test_the_same_email_again_gets_200_with_the_first_id_its_status_and_nothing_else(client, seeded_app):
    first = post_pledge(client, email="Maria.Lopez@Example.org ")
    again = post_pledge(client, email="  maria.lopez@EXAMPLE.ORG", neighborhood="central", kind="resident")

    assert first.status_code == 201
    assert again.status_code == 200
    # Not the first pledge's kind, neighborhood or time: a stranger typing her email learns nothing.
    assert again.get_json() == {"id": first.get_json()["id"], "status": "counted", "duplicate": True}
    assert totals(client)["total"] == 1
    assert [p.email for p in stored_pledges(seeded_app)] == ["maria.lopez@example.org"]


def test_emails_are_trimmed_and_lower_cased_before_storing(client, seeded_app):
    post_pledge(client, email="  Sam@Porch.Example  ")
    assert stored_pledges(seeded_app)[0].email == "sam@porch.example"


def test_names_are_trimmed_and_show_name_is_kept(client, seeded_app):
    post_pledge(client, kind="business", name="  Niagara Bakery  ", show_name=True)
    pledge = stored_pledges(seeded_app)[0]
    assert (pledge.name, pledge.show_name) == ("Niagara Bakery", True)


def test_show_name_defaults_to_false(client, seeded_app):
    post_pledge(client, name="Pat")
    assert stored_pledges(seeded_app)[0].show_name is False


def test_the_response_never_repeats_the_email_or_name(client):
    response = post_pledge(client, email="private.person@example.org", name="Private Person")
    assert b"private" not in response.data.lower()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"neighborhood": "atlantis"}, "neighborhood"),
        ({"kind": "landlord"}, "kind"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "   "}, "email"),
        ({"email": "someone@localhost"}, "email"),
        ({"email": "a" * 250 + "@example.org"}, "email"),
        ({"kind": "business", "name": None}, "name"),
        ({"kind": "business", "name": "   "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": "Bell\x07"}, "name"),
        ({"name": "Line\nbreak"}, "name"),
        ({"name": "evil\u202etxt"}, "name"),
        ({"name": 12}, "name"),
        ({"show_name": "yes"}, "show_name"),
        ({"show_name": 1}, "show_name"),
        ({"favourite_color": "blue"}, "favourite_color"),
    ],
)
def test_a_bad_field_is_422_with_that_field_named_and_nothing_counted(client, seeded_app, fields, field):
    response = post_pledge(client, **fields)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    messages = error["fields"][field]
    assert isinstance(messages, list) and messages
    assert all(isinstance(m, str) and len(m) > 5 for m in messages)
    assert stored_pledges(seeded_app) == []
    assert totals(client)["total"] == 0


@pytest.mark.parametrize("missing", ["kind", "neighborhood", "email"])
def test_each_required_field_is_named_when_missing(client, missing):
    body = pledge_body()
    del body[missing]
    response = client.post(PLEDGES_URL.format(campaign="current"), json=body)
    assert response.status_code == 422
    assert missing in response.get_json()["error"]["fields"]


def test_a_name_of_exactly_60_characters_is_accepted(client):
    assert post_pledge(client, name="n" * 60).status_code == 201


def test_a_json_array_is_a_validation_error_without_fields(client):
    response = client.post(PLEDGES_URL.format(campaign="current"), json=[pledge_body()])
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_error"


def test_an_unknown_campaign_is_404(client):
    response = post_pledge(client, campaign="nno-1999")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("starts", "ends"),
    [(timedelta(days=-10), timedelta(days=-1)), (timedelta(days=1), timedelta(days=10))],
    ids=["closed", "upcoming"],
)
def test_a_campaign_that_is_not_open_answers_409_campaign_closed(client, seeded_app, starts, ends):
    now = utcnow()
    with seeded_app.app_context(), write_transaction():
        db.session.add(
            Campaign(
                slug="other",
                name="Other",
                city="Buffalo, NY",
                timezone="America/New_York",
                starts_at=now + starts,
                ends_at=now + ends,
            )
        )

    response = post_pledge(client, campaign="other")

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "campaign_closed"
    assert stored_pledges(seeded_app) == []


def test_a_body_that_is_not_json_is_415(client, seeded_app):
    response = client.post(
        PLEDGES_URL.format(campaign="current"),
        data={"kind": "resident", "neighborhood": "allentown", "email": "a@example.org"},
    )
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert stored_pledges(seeded_app) == []


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe\x00garbage", b""])
def test_malformed_json_is_400(client, raw):
    response = client.post(PLEDGES_URL.format(campaign="current"), data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


def test_a_body_over_16_kib_is_413(client, seeded_app):
    body = pledge_body(name="x" * (17 * 1024))
    response = client.post(PLEDGES_URL.format(campaign="current"), json=body)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert stored_pledges(seeded_app) == []


def test_a_wrong_method_is_405_json_with_allow(client):
    response = client.delete(PLEDGES_URL.format(campaign="current"))
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_an_unknown_api_path_is_404_json(client):
    response = client.get("/api/v1/porches")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"


def test_an_unexpected_failure_is_500_json_without_a_trace(seeded_app, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/porchlight/pledges.py")

    monkeypatch.setattr("pledges.api.campaigns.record_pledge", broken)
    seeded_app.config["PROPAGATE_EXCEPTIONS"] = False
    response = post_pledge(seeded_app.test_client())

    assert response.status_code == 500
    assert response.get_json() == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
    assert b"Traceback" not in response.data and b"secret" not in response.data


def test_a_failed_count_leaves_no_pledge_behind(client, seeded_app, monkeypatch):
    """The pledge and its count commit together: if counting fails, the pledge is gone too."""

    def failing_count(*args, **kwargs):
        raise RuntimeError("count storage failed")

    monkeypatch.setattr("pledges.services.pledging.apply_deltas", failing_count)
    seeded_app.config["PROPAGATE_EXCEPTIONS"] = False

    assert post_pledge(client).status_code == 500
    assert stored_pledges(seeded_app) == []
