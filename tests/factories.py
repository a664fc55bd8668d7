"""Building blocks for tests: pledge bodies and API calls."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.test import TestResponse

from pledges.extensions import db

_numbers = itertools.count(1)
PLEDGES_URL = "/api/v1/campaigns/{campaign}/pledges"


def pledge_body(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "resident",
        "neighborhood": "allentown",
        "email": f"neighbor{next(_numbers)}@example.org",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def post_pledge(client: FlaskClient, campaign: str = "current", **fields: Any) -> TestResponse:
    return client.post(PLEDGES_URL.format(campaign=campaign), json=pledge_body(**fields))


def totals(client: FlaskClient, campaign: str = "current") -> dict[str, Any]:
    response = client.get(f"/api/v1/campaigns/{campaign}/totals")
    assert response.status_code == 200
    return response.get_json()


def neighborhood_row(body: dict[str, Any], slug: str) -> dict[str, Any]:
    return next(row for row in body["neighborhoods"] if row["slug"] == slug)


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the form on `path`, as a browser would have it."""
    match = CSRF_INPUT.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def submit_form(client: FlaskClient, token: str | None = None, **fields: Any) -> TestResponse:
    """Post the front page's pledge form the way a browser with JavaScript off does."""
    form: dict[str, Any] = {
        "kind": "resident",
        "neighborhood": "allentown",
        "email": f"web{next(_numbers)}@example.org",
    }
    form.update(fields)
    form = {k: v for k, v in form.items() if v is not None}
    if token is None:
        token = csrf_token(client)
    if token:
        form["csrf_token"] = token
    return client.post("/", data=form)


def make_key(app: Flask, name: str, scope: str = "read", limit: str | None = None) -> str:
    """A new API key through the CLI, as an operator makes one; returns the printed token."""
    args = ["keys", "create", "--name", name, "--scope", scope] + (["--limit", limit] if limit else [])
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def recorded_sql(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app's engine runs inside the block, lower-cased."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):  # noqa: ANN001
        seen.append(statement.lower())

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def eventually(check: Callable[[], bool], seconds: float = 10, every: float = 0.02) -> bool:
    """Whether `check()` comes true within `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True
