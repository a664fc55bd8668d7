"""Signed-in /admin and /signup sessions live on the server: sign-out, revocation, idle time and
ADMIN_SESSION_HOURS end them, whatever copy of the cookie comes back."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from pledges.database import utcnow
from pledges.extensions import db
from pledges.models import WebSession

from .factories import csrf_token, make_key

PAGES = {
    "admin": {"home": "/admin", "scope": "admin"},
    "signup": {"home": "/signup", "scope": "intake"},
}


class Clock:
    """The time `pledges.database.utcnow` tells, moved on by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr("pledges.database.utcnow", clock)
    return clock


@pytest.fixture(params=sorted(PAGES))
def page(request: pytest.FixtureRequest) -> str:
    return request.param


def sign_in(client: FlaskClient, page: str, key: str, next_url: str | None = None) -> TestResponse:
    path = f"/{page}/sign-in"
    query = {"next": next_url} if next_url is not None else None
    form = {"key": key, "csrf_token": csrf_token(client, path)}
    return client.post(path, data=form, query_string=query)


def signed_in_client(app: Flask, page: str, name: str = "table") -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, page, make_key(app, name, scope=PAGES[page]["scope"])).status_code == 303
    return client


def sign_out(client: FlaskClient, page: str) -> TestResponse:
    return client.post(f"/{page}/sign-out", data={"csrf_token": csrf_token(client, PAGES[page]["home"])})


def copy_of_cookie(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding exactly the session cookie `client` holds now."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    other = app.test_client()
    other.set_cookie(cookie.key, cookie.value)
    return other


def opens(client: FlaskClient, page: str) -> bool:
    status = client.get(PAGES[page]["home"]).status_code
    assert status in (200, 303)
    return status == 200


def stored_sessions(app: Flask) -> list[tuple[datetime, datetime, datetime | None]]:
    with app.app_context():
        query = db.select(WebSession.created_at, WebSession.seen_at, WebSession.ended_at)
        return [tuple(row) for row in db.session.execute(query.order_by(WebSession.created_at))]


def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(seeded_app, page):
    browser = signed_in_client(seeded_app, page)
    stolen = copy_of_cookie(seeded_app, browser)
    assert opens(stolen, page)

    out = sign_out(browser, page)

    assert out.status_code == 303 and out.headers["Location"].endswith(f"/{page}/sign-in")
    assert not opens(browser, page)
    assert not opens(stolen, page)
    ((_, _, ended_at),) = stored_sessions(seeded_app)
    assert ended_at is not None


def test_a_session_used_every_20_minutes_still_ends_after_admin_session_hours(seeded_app, page, clock):
    browser = signed_in_client(seeded_app, page)
    lifetime = timedelta(hours=seeded_app.config["ADMIN_SESSION_HOURS"])
    signed_in_at = clock.now

    while clock.now + timedelta(minutes=20) < signed_in_at + lifetime:
        clock.advance(minutes=20)
        assert opens(browser, page), f"closed {clock.now - signed_in_at} after sign-in"
    clock.advance(minutes=20)

    assert not opens(browser, page)
    assert not opens(copy_of_cookie(seeded_app, browser), page)


def test_a_session_lives_while_used_and_ends_after_admin_idle_minutes_without_use(seeded_app, page, clock):
    browser = signed_in_client(seeded_app, page)
    idle = seeded_app.config["ADMIN_IDLE_MINUTES"]

    clock.advance(minutes=idle - 1)
    assert opens(browser, page)
    clock.advance(minutes=idle - 1)  # longer than the idle time since sign-in, not since last use
    assert opens(browser, page)
    stolen = copy_of_cookie(seeded_app, browser)
    clock.advance(minutes=idle + 1)

    assert not opens(browser, page)
    assert not opens(stolen, page)


def test_use_is_written_down_at_most_once_a_minute(seeded_app, clock):
    browser = signed_in_client(seeded_app, "admin")
    signed_in_at = clock.now

    clock.advance(seconds=30)
    assert opens(browser, "admin") and opens(browser, "admin")
    assert stored_sessions(seeded_app) == [(signed_in_at, signed_in_at, None)]

    clock.advance(seconds=31)
    assert opens(browser, "admin")
    assert stored_sessions(seeded_app) == [(signed_in_at, clock.now, None)]


def test_signing_in_starts_a_new_session_and_ends_the_one_the_browser_had(seeded_app, page):
    browser = seeded_app.test_client()
    scope = PAGES[page]["scope"]
    csrf_token(browser, f"/{page}/sign-in")  # the sign-in page sets a cookie before anyone signs in
    planted = copy_of_cookie(seeded_app, browser)
    assert sign_in(browser, page, make_key(seeded_app, "first", scope=scope)).status_code == 303
    first = copy_of_cookie(seeded_app, browser)

    assert sign_in(browser, page, make_key(seeded_app, "second", scope=scope)).status_code == 303

    assert opens(browser, page)
    assert not opens(planted, page)  # a cookie fixed before sign-in is not the one signed in
    assert not opens(first, page)  # nor does the earlier sign-in live on in a copy of its cookie
    assert [ended is not None for _, _, ended in stored_sessions(seeded_app)] == [True, False]


@pytest.mark.parametrize(
    "elsewhere",
    ["//evil.example/admin", "https://evil.example/admin", "/\\evil.example/admin", "/\\/evil.example", ""],
)
def test_next_never_leads_off_site_after_sign_in(seeded_app, elsewhere):
    client = seeded_app.test_client()
    key = make_key(seeded_app, "mayor", scope="admin")

    answer = sign_in(client, "admin", key, next_url=elsewhere)

    assert answer.status_code == 303
    target = urlsplit(answer.headers["Location"])
    assert target.netloc in ("", "localhost") and target.path == "/admin"


def test_next_within_admin_is_followed_after_sign_in(seeded_app):
    client = seeded_app.test_client()
    answer = sign_in(
        client, "admin", make_key(seeded_app, "mayor", scope="admin"), next_url="/admin/import?a=1"
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin/import?a=1"


def test_revoking_the_key_ends_an_open_session(seeded_app, page):
    browser = signed_in_client(seeded_app, page, name="lent tablet")
    stolen = copy_of_cookie(seeded_app, browser)
    assert opens(browser, page)

    result = seeded_app.test_cli_runner().invoke(args=["keys", "revoke", "lent tablet"])

    assert result.exit_code == 0
    assert not opens(browser, page)
    assert not opens(stolen, page)
