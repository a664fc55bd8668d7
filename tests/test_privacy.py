"""Privacy by design: no personal data on public routes or in logs, addresses kept only as an HMAC."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta

import requests
from flask_migrate import upgrade

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Campaign, Pledge
from pledges.services.seeding import seed

from .conftest import make_app
from .factories import post_pledge, totals
from .servers import running_server, server_log_path

CLIENT_ADDRESS = "203.0.113.77"
SECRETS = ("secret.resident@example.org", "Rosa Hidden", "Quiet Corner Store", CLIENT_ADDRESS)


def seed_personal_data(client) -> None:
    headers = {"X-Forwarded-For": CLIENT_ADDRESS}
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={
            "kind": "resident",
            "neighborhood": "lovejoy",
            "email": SECRETS[0],
            "name": SECRETS[1],
            "show_name": True,  # residents are never shown, even when they ask
        },
        headers=headers,
    )
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "business", "neighborhood": "lovejoy", "email": "shop@example.org", "name": SECRETS[2]},
        headers=headers,
    )
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={
            "kind": "business",
            "neighborhood": "lovejoy",
            "email": "shown@example.org",
            "name": "Proudly Shown Bakery",
            "show_name": True,
        },
        headers=headers,
    )


def public_paths(app) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or "admin" in rule.rule or rule.rule.endswith("/stream"):
            continue
        path = (
            rule.rule.replace("<campaign>", "current")
            .replace("<slug>", "lovejoy")
            .replace("<name>", "swagger-ui.css")
            .replace("<path:filename>", "css/site.css")
            .replace("<token>", "x")
        )
        paths.append(path)
    return paths


def test_no_public_route_shows_an_email_an_address_or_a_name_not_meant_to_be_shown(database_url, tmp_path):
    app = make_app(database_url, tmp_path, TRUSTED_PROXIES=1, BUSINESS_NAMES="immediate")
    with app.app_context():
        upgrade()
        seed(goal=100)
    client = app.test_client()
    seed_personal_data(client)
    with app.app_context():
        hashes = [p.address_hash for p in db.session.scalars(db.select(Pledge))]
    paths = public_paths(app)
    assert len(paths) >= 15, paths
    shown = False
    for path in paths:
        for lang in ("en", "es"):
            body = client.get(path, query_string={"lang": lang}).get_data(as_text=True)
            leaked = [s for s in (*SECRETS, *hashes) if s and s.lower() in body.lower()]
            assert not leaked, f"{path}?lang={lang} shows {leaked}"
            assert not re.search(r"[\w.+-]+@example\.org", body), path
            shown = shown or "Proudly Shown Bakery" in body
    assert shown, "a business that asked to be shown is shown somewhere"


def test_the_client_address_is_kept_only_as_an_hmac_with_the_secret_key(database_url, tmp_path):
    app = make_app(database_url, tmp_path, TRUSTED_PROXIES=1, SECRET_KEY="k3y")
    with app.app_context():
        upgrade()
        seed(goal=100)
    client = app.test_client()
    client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "lovejoy", "email": "a@example.org"},
        headers={"X-Forwarded-For": CLIENT_ADDRESS},
    )
    with app.app_context():
        pledge = db.session.scalars(db.select(Pledge)).one()
        row = db.session.execute(db.select(Pledge.__table__)).one()
    assert pledge.address_hash == hmac.new(b"k3y", CLIENT_ADDRESS.encode(), hashlib.sha256).hexdigest()
    assert CLIENT_ADDRESS not in " ".join(str(value) for value in row)


def test_the_server_log_holds_no_email_and_no_client_address(database_url, tmp_path):
    with running_server(database_url, tmp_path, workers=1, extra_env={"TRUSTED_PROXIES": "1"}) as base:
        for path in ("/", "/api/v1/campaigns/current/totals"):
            requests.get(base + path, headers={"X-Forwarded-For": CLIENT_ADDRESS}, timeout=10)
        requests.post(
            base + "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "lovejoy", "email": SECRETS[0], "name": SECRETS[1]},
            headers={"X-Forwarded-For": CLIENT_ADDRESS},
            timeout=10,
        )
        requests.post(
            base + "/api/v1/campaigns/current/pledges?email=" + SECRETS[0],
            data="not json",
            headers={"X-Forwarded-For": CLIENT_ADDRESS, "Content-Type": "application/json"},
            timeout=10,
        )
    log = server_log_path(tmp_path).read_text()
    assert '"path": "/api/v1/campaigns/current/pledges"' in log  # requests are logged
    assert CLIENT_ADDRESS not in log
    assert SECRETS[0] not in log and SECRETS[1] not in log


def _age_campaign(app, days: int) -> None:
    with app.app_context(), write_transaction():
        campaign = db.session.scalars(db.select(Campaign)).one()
        campaign.starts_at = utcnow() - timedelta(days=days + 30)
        campaign.ends_at = utcnow() - timedelta(days=days)


def test_anonymize_replaces_emails_names_and_hashes_of_old_campaigns_and_keeps_the_counts(
    client, runner, seeded_app
):
    post_pledge(client, email="old@example.org", name="Old Name", kind="business", show_name=True)
    post_pledge(client, email="other@example.org")
    before = totals(client)

    too_recent = runner.invoke(args=["pledges", "anonymize"])
    assert "no campaign" in too_recent.output

    _age_campaign(seeded_app, days=181)
    result = runner.invoke(args=["pledges", "anonymize"])

    assert result.exit_code == 0 and "2 pledges anonymized" in result.output
    with seeded_app.app_context():
        pledges = list(db.session.scalars(db.select(Pledge)))
    assert all(p.email.endswith("@anonymized.invalid") for p in pledges)
    assert all(p.email_canonical == p.email for p in pledges)  # the canonical form was personal too
    assert {p.name for p in pledges} == {None} and {p.address_hash for p in pledges} == {None}
    assert not any(p.show_name for p in pledges)
    assert totals(client)["total"] == before["total"]
    assert runner.invoke(args=["pledges", "recount", "--check"]).exit_code == 0


def test_anonymize_one_campaign_on_request(client, runner, seeded_app):
    post_pledge(client, email="now@example.org")
    result = runner.invoke(args=["pledges", "anonymize", "--campaign", "nno-2027"])
    assert result.exit_code == 0
    with seeded_app.app_context():
        assert db.session.scalars(db.select(Pledge.email)).one().endswith("@anonymized.invalid")
