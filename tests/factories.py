"""Building blocks for tests: pledge bodies and API calls."""

from __future__ import annotations

import itertools
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

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
