"""Past the burst limit an address's pledges wait, saying why: for their emailed link, or for review.

No pledge is held in silence: each is counted now, or pending with its reason, and the
number told "counted" is exactly what the totals grew by.
"""

from __future__ import annotations

from flask_migrate import upgrade

from pledges.services.seeding import seed

from .conftest import make_app
from .factories import bearer, make_key, post_pledge, totals


def burst_app(database_url, tmp_path, **settings):
    app = make_app(database_url, tmp_path, BURST_LIMIT=3, BURST_WINDOW_MINUTES=10, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


def mailing_burst_app(database_url, tmp_path, port, **settings):
    return burst_app(
        database_url,
        tmp_path,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        PUBLIC_URL="http://localhost",
        **settings,
    )


def statuses(answers):
    return [(a.get_json()["status"], a.get_json().get("pending_reason")) for a in answers]


def test_past_the_burst_without_mail_pledges_wait_for_review_and_say_so(database_url, tmp_path):
    client = burst_app(database_url, tmp_path).test_client()

    answers = [post_pledge(client, email=f"b{n}@example.org") for n in range(5)]

    assert [a.status_code for a in answers] == [201] * 5
    assert statuses(answers) == [("counted", None)] * 3 + [("pending", "review")] * 2
    assert (totals(client)["total"], totals(client)["pending"]) == (3, 2)


def test_past_the_burst_with_mail_pledges_get_a_link_and_count_once_confirmed(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = mailing_burst_app(database_url, tmp_path, port).test_client()

    answers = [post_pledge(client, email=f"m{n}@example.org") for n in range(4)]

    assert statuses(answers) == [("counted", None)] * 3 + [("pending", "confirm_email")]
    assert [m["To"] for m in inbox.messages] == ["m3@example.org"]
    assert (totals(client)["total"], totals(client)["pending"]) == (3, 1)
    link = inbox.link().removeprefix("http://localhost")
    page = client.get(link).get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post(link, data={"csrf_token": token}).status_code == 200
    assert (totals(client)["total"], totals(client)["pending"]) == (4, 0)


def test_in_email_mode_a_burst_pledge_is_answered_exactly_like_any_other(database_url, tmp_path, smtp):
    inbox, port = smtp
    client = mailing_burst_app(database_url, tmp_path, port, PLEDGE_CONFIRMATION="email").test_client()

    answers = [post_pledge(client, email=f"e{n}@example.org") for n in range(5)]

    assert statuses(answers) == [("pending", "confirm_email")] * 5
    assert {tuple(sorted(a.get_json())) for a in answers} == {
        ("created_at", "id", "kind", "neighborhood", "pending_reason", "status")
    }
    assert len(inbox.messages) == 5


def test_another_address_is_not_held_by_someone_elses_burst(database_url, tmp_path):
    client = burst_app(database_url, tmp_path, TRUSTED_PROXIES=1).test_client()
    for n in range(4):
        client.post(
            "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "allentown", "email": f"x{n}@example.org"},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
    neighbor = client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "allentown", "email": "neighbor@example.org"},
        headers={"X-Forwarded-For": "198.51.100.8"},
    )
    assert neighbor.get_json()["status"] == "counted"
    assert totals(client)["total"] == 4  # three from the burst, and the neighbor


def test_trusted_networks_skip_the_burst_check(database_url, tmp_path):
    client = burst_app(
        database_url, tmp_path, TRUSTED_PROXIES=1, TRUSTED_NETWORKS="203.0.113.0/24, 2001:db8::/32"
    ).test_client()
    for place, address in enumerate(("203.0.113.9", "2001:db8::5")):
        answers = [
            client.post(
                "/api/v1/campaigns/current/pledges",
                json={
                    "kind": "resident",
                    "neighborhood": "allentown",
                    "email": f"lib{place}-{n}@example.org",
                },
                headers={"X-Forwarded-For": address},
            )
            for n in range(5)
        ]
        assert statuses(answers) == [("counted", None)] * 5
    assert totals(client)["total"] == 10


def test_an_intake_key_skips_the_burst_check_and_its_pledges_are_attributed_to_it(database_url, tmp_path):
    app = burst_app(database_url, tmp_path)
    client = app.test_client()
    table = bearer(make_key(app, "Lovejoy block party", scope="intake"))
    admin = bearer(make_key(app, "mayor", scope="admin"))

    answers = [
        client.post(
            "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "lovejoy", "email": f"t{n}@example.org"},
            headers=table,
        )
        for n in range(6)
    ]

    assert statuses(answers) == [("counted", None)] * 6
    listing = client.get("/api/v1/admin/pledges?intake_key=Lovejoy+block+party", headers=admin).get_json()
    assert len(listing["pledges"]) == 6
    assert {p["intake_key"] for p in listing["pledges"]} == {"Lovejoy block party"}
    # A read key is no intake key: its pledges are checked like anyone's.
    reader = bearer(make_key(app, "news", scope="read"))
    read_answers = [
        client.post(
            "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "lovejoy", "email": f"r{n}@example.org"},
            headers=reader,
        )
        for n in range(4)
    ]
    assert statuses(read_answers) == [("counted", None)] * 3 + [("pending", "review")]


def test_an_admin_releases_a_pending_pledge_into_the_count(database_url, tmp_path):
    app = burst_app(database_url, tmp_path)
    client, admin = app.test_client(), bearer(make_key(app, "admin", scope="admin"))
    for n in range(4):
        post_pledge(client, email=f"h{n}@example.org")

    (waiting,) = client.get("/api/v1/admin/pledges?status=pending", headers=admin).get_json()["pledges"]
    assert waiting["pending_reason"] == "review"
    released = client.post(
        f"/api/v1/admin/pledges/{waiting['id']}/restore", json={"reason": "a real block party"}, headers=admin
    )

    assert (released.get_json()["status"], released.get_json()["pending_reason"]) == ("counted", None)
    assert (totals(client)["total"], totals(client)["pending"]) == (4, 0)
    assert app.test_cli_runner().invoke(args=["pledges", "recount", "--check"]).exit_code == 0


def test_the_abuse_report_lists_addresses_and_domains_per_hour_flagged_above_thresholds(
    database_url, tmp_path
):
    app = burst_app(database_url, tmp_path, ABUSE_ADDRESS_THRESHOLD=2, ABUSE_DOMAIN_THRESHOLD=3)
    client, admin = app.test_client(), bearer(make_key(app, "admin", scope="admin"))
    for n in range(3):
        post_pledge(client, email=f"farm{n}@spam.example")
    post_pledge(client, email="someone@real.example")

    report = client.get("/api/v1/admin/abuse?hours=2", headers=admin).get_json()

    (hour,) = report["hours"]
    (address,) = hour["addresses"]
    assert (address["pledges"], address["flagged"]) == (4, True)
    domains = {d["email_domain"]: (d["pledges"], d["flagged"]) for d in hour["domains"]}
    assert domains == {"spam.example": (3, False), "real.example": (1, False)}
    assert (report["address_threshold"], report["domain_threshold"]) == (2, 3)
    assert client.get("/api/v1/admin/abuse").status_code == 401
