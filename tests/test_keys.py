"""Partner keys: made by the CLI, shown once, stored as a hash, refused when wrong or revoked."""

from __future__ import annotations

import pytest

from pledges.extensions import db
from pledges.models import ApiKey

from .factories import bearer, make_key

TOTALS = "/api/v1/campaigns/current/totals"
ADMIN = "/api/v1/admin/pledges"


def stored_keys(app) -> list[ApiKey]:
    with app.app_context():
        return list(db.session.scalars(db.select(ApiKey)))


def test_a_new_key_is_printed_alone_on_the_last_line_and_only_its_hash_is_stored(seeded_app):
    result = seeded_app.test_cli_runner().invoke(args=["keys", "create", "--name", "Buffalo News"])

    assert result.exit_code == 0
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("pl_") and len(token) >= 40 and " " not in token
    (key,) = stored_keys(seeded_app)
    assert (key.name, key.scope, key.rate_limit) == ("Buffalo News", "read", None)
    assert token not in {key.token_hash, key.name}
    assert key.token_hash == ApiKey.hash_token(token)


def test_two_keys_never_share_a_token(seeded_app):
    assert make_key(seeded_app, "one") != make_key(seeded_app, "two")


def test_keys_list_shows_name_scope_dates_and_limit_but_never_the_key(seeded_app, client):
    token = make_key(seeded_app, "Block Club", limit="30/minute")
    make_key(seeded_app, "Mayor", scope="admin")
    client.get(TOTALS, headers=bearer(token))

    output = seeded_app.test_cli_runner().invoke(args=["keys", "list"]).output

    assert token not in output and ApiKey.hash_token(token) not in output
    block = next(line for line in output.splitlines() if line.startswith("Block Club"))
    assert "read" in block and "30/minute" in block and "never" not in block
    mayor = next(line for line in output.splitlines() if line.startswith("Mayor"))
    assert "admin" in mayor and "never" in mayor and "1200/minute" in mayor


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "x", "--scope", "superuser"],
        ["--name", "x", "--limit", "lots"],
        ["--name", "   "],
    ],
)
def test_keys_create_refuses_bad_options(seeded_app, args):
    result = seeded_app.test_cli_runner().invoke(args=["keys", "create", *args])
    assert result.exit_code != 0
    assert stored_keys(seeded_app) == []


def test_keys_create_refuses_a_name_in_use(seeded_app):
    make_key(seeded_app, "dup")
    result = seeded_app.test_cli_runner().invoke(args=["keys", "create", "--name", "dup"])
    assert result.exit_code != 0 and "exists" in result.output


def test_a_valid_key_reads_the_api(client, seeded_app):
    token = make_key(seeded_app, "reader")
    assert client.get(TOTALS, headers=bearer(token)).status_code == 200


@pytest.mark.parametrize(
    "header", ["Bearer pl_not-a-real-key", "Bearer ", "Basic dXNlcjpwYXNz", "pl_abc", "Bearer x y"]
)
def test_a_wrong_key_is_401_with_www_authenticate_never_anonymous(client, header):
    response = client.get(TOTALS, headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_revoked_key_is_401_from_the_next_request_on(client, seeded_app):
    token = make_key(seeded_app, "leaving")
    assert client.get(TOTALS, headers=bearer(token)).status_code == 200

    result = seeded_app.test_cli_runner().invoke(args=["keys", "revoke", "leaving"])

    assert result.exit_code == 0
    assert client.get(TOTALS, headers=bearer(token)).status_code == 401
    assert "revoked" in seeded_app.test_cli_runner().invoke(args=["keys", "list"]).output


def test_revoking_an_unknown_key_says_so(seeded_app):
    result = seeded_app.test_cli_runner().invoke(args=["keys", "revoke", "nobody"])
    assert result.exit_code != 0 and "no key" in result.output


def test_a_read_key_on_an_admin_route_is_403_and_an_admin_key_passes(client, seeded_app):
    reader, admin = make_key(seeded_app, "reader"), make_key(seeded_app, "admin", scope="admin")

    refused = client.get(ADMIN, headers=bearer(reader))

    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"
    assert client.get(ADMIN, headers=bearer(admin)).status_code == 200
    assert client.get(ADMIN).status_code == 401


def test_an_admin_key_reads_public_routes_too(client, seeded_app):
    admin = make_key(seeded_app, "admin", scope="admin")
    assert client.get(TOTALS, headers=bearer(admin)).status_code == 200
