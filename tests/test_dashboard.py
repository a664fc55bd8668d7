"""/dashboard: the mayor's office's live totals, rendered on the server first."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Campaign, Neighborhood
from pledges.services.counts import apply_deltas, hour_of

from .factories import post_pledge

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def text_of(response) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_the_dashboard_renders_with_no_pledges(client):
    response = client.get("/dashboard")

    assert response.status_code == 200
    text = text_of(response)
    assert "National Night Out 2027" in text
    assert "0 porch lights pledged" in text
    assert "no pledges yet" in text
    assert "No business has asked to be listed yet." in text
    assert 'data-stream-url="/api/v1/campaigns/nno-2027/stream"' in response.get_data(as_text=True)


def test_the_dashboard_shows_totals_kinds_goal_and_every_neighborhood(client, seeded_app):
    seeded_app.config["BUSINESS_NAMES"] = "immediate"  # approval is tests/test_business_names.py's
    post_pledge(client, neighborhood="lovejoy")
    post_pledge(client, neighborhood="lovejoy", kind="business", name="Lovejoy Pizza", show_name=True)

    html = client.get("/dashboard").get_data(as_text=True)
    text = text_of(client.get("/dashboard"))

    assert "2 porch lights pledged" in text
    assert re.search(r"Residents\s*</dt>\s*<dd data-residents>1<", html)
    assert re.search(r"Businesses\s*</dt>\s*<dd data-businesses>1<", html)
    assert "Goal: 1,000" in text
    assert html.count("data-slug=") == 35
    assert html.index('data-slug="lovejoy"') < html.index('data-slug="allentown"')
    assert "Lovejoy Pizza" in text
    assert 'data-state="static"' in html


def test_the_dashboard_renders_a_million_pledges(client, seeded_app):
    with seeded_app.app_context(), write_transaction():
        campaign = db.session.scalars(db.select(Campaign)).one()
        ids = list(db.session.scalars(db.select(Neighborhood.id)))
        by_neighborhood = Counter({(n, "resident"): 1_000_000 // len(ids) for n in ids})
        by_neighborhood[(ids[0], "resident")] += 1_000_000 - sum(by_neighborhood.values())
        now = utcnow()
        hours = [hour_of(now - timedelta(hours=h)) for h in range(40)]
        by_hour = Counter({(hour, "resident"): 1_000_000 // 40 for hour in hours})
        apply_deltas(campaign.id, by_neighborhood, by_hour)

    text = text_of(client.get("/dashboard"))
    chart = client.get("/dashboard/chart.svg?campaign=nno-2027")

    assert "1,000,000 porch lights pledged" in text
    assert "Goal: 1,000 · 100% there" in text
    assert chart.status_code == 200 and chart.mimetype == "image/svg+xml"
    assert "25,000" in chart.get_data(as_text=True)


def test_the_dashboard_is_in_spanish(client):
    post_pledge(client)
    text = text_of(client.get("/dashboard?lang=es"))
    assert "1 luz comprometida" in text
    assert "Vecindarios" in text
    assert "Compromisos por hora" in text


def test_kiosk_mode_marks_the_page_for_the_projector(client):
    html = client.get("/dashboard?kiosk=1").get_data(as_text=True)
    assert re.search(r'<body class="dashboard-page kiosk">', html)
    assert "theme=kiosk" in html


def test_the_dashboard_shows_no_personal_data(client):
    post_pledge(client, email="hidden.person@example.org", name="Hidden Person")
    post_pledge(client, kind="business", name="Unlisted Shop", email="shop@example.org")

    html = client.get("/dashboard").get_data(as_text=True)

    assert not EMAIL.search(html)
    assert "Hidden Person" not in html and "Unlisted Shop" not in html


def test_the_hourly_chart_is_an_svg_with_a_text_alternative_and_an_etag(client):
    post_pledge(client)
    chart = client.get("/dashboard/chart.svg")
    svg = chart.get_data(as_text=True)

    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "style=" not in svg
    assert chart.headers["ETag"]
    again = client.get("/dashboard/chart.svg", headers={"If-None-Match": chart.headers["ETag"]})
    assert again.status_code == 304
    page = client.get("/dashboard").get_data(as_text=True)
    assert re.search(r'<img src="/dashboard/chart.svg[^"]*" alt="1 hour shown\.', page)


def test_the_dashboard_of_an_unknown_campaign_is_404(client):
    assert client.get("/dashboard?campaign=nno-1999").status_code == 404


def test_the_dashboard_shows_how_many_pledges_wait_and_the_stream_carries_it(client, seeded_app):
    seeded_app.config["BURST_LIMIT"] = 1
    for _ in range(3):
        post_pledge(client, neighborhood="lovejoy")

    text = text_of(client.get("/dashboard"))

    assert "1 porch light pledged" in text
    assert "2 pledges wait for email confirmation or review (not in the total yet)" in text
    first_event = next(client.get("/api/v1/campaigns/current/stream").response).decode()
    assert '"pending":2' in first_event
