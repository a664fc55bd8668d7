"""The pledge form past the rate limit: the front page again, what was typed kept, and when to retry."""

from __future__ import annotations

import re

import pytest
from flask_migrate import upgrade

from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.seeding import seed
from pledges.web.views import wait_message

from .conftest import make_app
from .factories import csrf_token, submit_form

TYPED = {
    "kind": "business",
    "neighborhood": "elmwood-bidwell",
    "name": "Lantern Café",
    "email": "lit@example.org",
}


@pytest.fixture
def app(database_url, tmp_path):
    app = make_app(database_url, tmp_path, PLEDGE_RATE_LIMIT="2/minute")
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def refused(app, path: str = "/", **headers: str):
    """Two pledges from the form, then a third one typed in, sent to `path`."""
    client = app.test_client()
    assert [submit_form(client).status_code for _ in range(2)] == [303, 303]
    return client.post(path, data={**TYPED, "csrf_token": csrf_token(client)}, headers=headers)


def stored_emails(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(db.select(Pledge.email)))


def test_the_third_pledge_in_a_minute_gets_the_form_back_as_typed_with_a_retry_after(app):
    answer = refused(app)
    page = answer.get_data(as_text=True)

    assert answer.status_code == 429
    assert 0 < int(answer.headers["Retry-After"]) <= 60
    assert 'value="lit@example.org"' in page
    assert 'value="Lantern Café"' in page
    assert re.search(r'<option value="elmwood-bidwell"\s+selected>', page)
    assert re.search(r'value="business"\s+checked', page)
    assert re.search(
        r"Too many pledges have come from your connection in a short time\. "
        r"Please wait (\d+) seconds? and send the form again\.",
        page,
    )
    assert "lit@example.org" not in stored_emails(app), "nothing of the refused pledge is stored"
    assert len(stored_emails(app)) == 2


@pytest.mark.parametrize("ask", [{"path": "/?lang=es"}, {"Accept-Language": "es-MX,es;q=0.9"}])
def test_the_wait_is_told_in_spanish_to_a_spanish_reader(app, ask):
    answer = refused(app, **ask)
    page = answer.get_data(as_text=True)

    assert answer.status_code == 429
    assert "Retry-After" in answer.headers
    assert 'value="lit@example.org"' in page
    assert re.search(r"Espere (\d+) segundos? y vuelva a enviar el formulario\.", page), page[-3000:]


@pytest.mark.parametrize(
    ("seconds", "told"),
    [
        (1, "wait 1 second "),
        (40, "wait 40 seconds "),
        (90, "wait 90 seconds "),
        (91, "wait 2 minutes "),
        (3600, "wait 60 minutes "),
    ],
)
def test_a_wait_past_a_minute_and_a_half_is_told_in_whole_minutes_rounded_up(app, seconds, told):
    with app.test_request_context("/"):
        assert told in wait_message(seconds)
