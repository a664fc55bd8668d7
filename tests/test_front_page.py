"""The front page and its pledge form, without JavaScript: what a phone or a library computer sees."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

from pledges.database import utcnow, write_transaction
from pledges.extensions import db
from pledges.models import Campaign, Pledge

from .factories import csrf_token, post_pledge, submit_form, totals

FIXTURES = Path(__file__).parent / "fixtures"


class Page(HTMLParser):
    """The parts of a page the tests look at: tags with their attributes, and the visible text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(" ".join(data.split()))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def by_id(self, element_id: str) -> dict[str, str]:
        (found,) = [a for _, a in self.tags if a.get("id") == element_id]
        return found

    @property
    def all_text(self) -> str:
        return " ".join(self.text)


def page(response) -> Page:
    return Page(response.get_data(as_text=True))


def stored(app) -> list[Pledge]:
    with app.app_context():
        return list(db.session.scalars(db.select(Pledge)))


def test_the_front_page_shows_the_campaign_its_total_and_goal(client):
    post_pledge(client)
    post_pledge(client)

    response = client.get("/")

    assert response.status_code == 200
    text = page(response).all_text
    assert "National Night Out 2027" in text
    assert "Tuesday, August 3, 2027" in text
    assert "2 porch lights pledged" in text
    assert "Goal: 1,000 · 0% there" in text


def test_the_form_carries_the_api_field_names_and_every_neighborhood_sorted(client):
    doc = page(client.get("/"))

    (form,) = doc.find("form")
    assert (form["method"], form["action"]) == ("post", "/")
    names = {a["name"] for a in doc.find("input") + doc.find("select") if "name" in a}
    assert {"kind", "neighborhood", "name", "email", "show_name", "csrf_token"} <= names
    options = [a["value"] for a in doc.find("option") if a["value"]]
    api = client.get("/api/v1/neighborhoods").get_json()["neighborhoods"]
    assert options == [n["slug"] for n in api]
    assert "checked" not in doc.by_id("field-show_name")
    assert doc.find("input", name="kind", value="resident")[0].get("checked") == ""


def test_every_neighborhood_has_a_bar_ranked_by_pledges(client):
    post_pledge(client, neighborhood="lovejoy")
    post_pledge(client, neighborhood="lovejoy")
    post_pledge(client, neighborhood="riverside")

    html = client.get("/").get_data(as_text=True)

    bars = re.findall(r'<span class="bar-name">([^<]+)</span>\s*<span class="bar-count">(\d+)</span>', html)
    assert len(bars) == 35
    assert bars[:2] == [("Lovejoy", "2"), ("Riverside", "1")]
    assert 'class="bar w-100"' in html and 'class="bar w-50"' in html


def test_a_pledge_without_javascript_redirects_303_to_thanks_naming_the_neighborhood_and_count(
    client, seeded_app
):
    post_pledge(client, neighborhood="first-ward")

    response = submit_form(client, neighborhood="first-ward")

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/thanks")
    thanks = client.get("/thanks")
    text = page(thanks).all_text
    assert "Thank you for leaving your light on!" in text
    assert "First Ward now has 2 porch lights pledged." in text
    assert 'href="http://localhost/"' in thanks.get_data(as_text=True)
    assert len(stored(seeded_app)) == 2


def test_a_business_pledge_through_the_form_is_counted_and_shown_when_asked(client, seeded_app):
    seeded_app.config["BUSINESS_NAMES"] = "immediate"  # approval is tests/test_business_names.py's
    response = submit_form(
        client, kind="business", name="Tipico Coffee", show_name="on", neighborhood="west-side"
    )

    assert response.status_code == 303
    body = totals(client)
    assert body["businesses"] == 1
    assert "Tipico Coffee" in page(client.get("/")).all_text


def test_a_business_that_did_not_ask_is_not_on_the_wall(client):
    submit_form(client, kind="business", name="Quiet Hardware")
    assert "Quiet Hardware" not in client.get("/").get_data(as_text=True)


def test_a_resident_name_is_never_shown_even_with_show_name(client):
    submit_form(client, name="Rosa Resident", show_name="on")
    assert "Rosa Resident" not in client.get("/").get_data(as_text=True)


def test_form_errors_sit_beside_their_fields_with_a_summary_and_keep_what_was_typed(client, seeded_app):
    response = submit_form(client, kind="business", name="", email="not an email", neighborhood="ellicott")

    assert response.status_code == 422
    doc = page(response)
    summary = doc.find("div", role="alert")
    assert summary and "autofocus" in summary[0] and summary[0]["tabindex"] == "-1"
    email = doc.by_id("field-email")
    assert email["aria-invalid"] == "true"
    assert "email-error" in email["aria-describedby"].split()
    assert email["value"] == "not an email"
    assert doc.by_id("field-name")["aria-invalid"] == "true"
    assert doc.find("option", value="ellicott")[0].get("selected") == ""
    assert doc.find("input", name="kind", value="business")[0].get("checked") == ""
    assert "Enter an email address like name@example.org." in doc.all_text
    assert "Enter the business's name: businesses are listed by name." in doc.all_text
    hrefs = [a["href"] for a in doc.find("a") if a.get("href", "").startswith("#field-")]
    assert set(hrefs) == {"#field-email", "#field-name"}
    assert stored(seeded_app) == []


def test_a_missing_neighborhood_is_an_error_beside_the_select(client):
    response = submit_form(client, neighborhood="")
    assert response.status_code == 422
    assert page(response).by_id("field-neighborhood")["aria-invalid"] == "true"


def test_a_repeat_email_is_told_kindly_and_counted_once(client, seeded_app):
    submit_form(client, email="ana@example.org", neighborhood="central")

    again = submit_form(client, email="ANA@example.org ", neighborhood="lovejoy")

    assert again.status_code == 303
    text = page(client.get("/thanks")).all_text
    assert "This email address has already pledged" in text
    assert "Central" not in text and "Lovejoy" not in text  # nothing of the first pledge
    assert totals(client)["total"] == 1


def test_the_form_and_the_api_share_one_service_a_form_pledge_blocks_an_api_repeat(client):
    submit_form(client, email="shared@example.org")
    api = post_pledge(client, email="shared@example.org")
    assert api.status_code == 200
    assert totals(client)["total"] == 1


def test_a_filled_honeypot_is_thanked_and_not_counted(client, seeded_app):
    response = submit_form(client, website="http://spam.example")

    assert response.status_code == 303
    assert client.get("/thanks").status_code == 200
    assert stored(seeded_app) == []


def test_a_post_without_a_csrf_token_saves_nothing_and_keeps_the_input(client, seeded_app):
    response = submit_form(client, token="", email="kept@example.org")

    assert response.status_code == 400
    doc = page(response)
    assert doc.by_id("field-email")["value"] == "kept@example.org"
    assert "This form had expired" in doc.all_text
    assert stored(seeded_app) == []


def test_the_json_api_needs_no_csrf_token(client):
    assert post_pledge(client).status_code == 201


def test_a_closed_campaign_shows_no_form_and_refuses_a_stale_one(client, seeded_app):
    token = csrf_token(client)
    with seeded_app.app_context(), write_transaction():
        campaign = db.session.scalars(db.select(Campaign)).one()
        campaign.ends_at = utcnow() - timedelta(minutes=1)

    doc = page(client.get("/"))
    assert "Pledges are closed" in doc.all_text
    assert doc.find("form") == []

    response = submit_form(client, token=token, campaign="nno-2027")
    assert response.status_code == 422
    assert "is closed" in page(response).all_text
    assert stored(seeded_app) == []


def test_an_unknown_page_is_a_friendly_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Page not found" in page(response).all_text


def test_pledging_through_the_form_is_rate_limited_too(seeded_app):
    seeded_app.config["PLEDGE_RATE_LIMIT"] = "1/minute"
    client = seeded_app.test_client()
    assert submit_form(client).status_code == 303
    refused = submit_form(client)
    assert refused.status_code == 429
    assert "Too many pledges have come from your connection" in page(refused).all_text


def test_with_boundaries_imported_the_front_page_draws_a_map_with_a_text_alternative(client, seeded_app):
    runner = seeded_app.test_cli_runner()
    assert runner.invoke(args=["neighborhoods", "import", str(FIXTURES / "tiny-city.geojson")]).exit_code == 0
    post_pledge(client, neighborhood="harbor-point")

    doc = page(client.get("/"))

    (svg,) = doc.find("svg")
    assert svg["role"] == "img"
    labels = svg["aria-labelledby"].split()
    assert all(any(a.get("id") == label for _, a in doc.tags) for label in labels)


def test_without_boundaries_there_is_no_map(client):
    assert page(client.get("/")).find("svg") == []


def test_the_thanks_page_counts_in_the_campaign_the_pledge_was_made_for(client, seeded_app):
    token = csrf_token(client)  # the page was loaded while nno-2027 was current
    with seeded_app.app_context(), write_transaction():
        now = utcnow()
        db.session.add(
            Campaign(
                slug="block-party",
                name="Block party",
                city="Buffalo, NY",
                timezone="America/New_York",
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=2),  # ends soonest: current from now on
            )
        )
    sent = submit_form(client, token=token, campaign="nno-2027", neighborhood="central")
    assert sent.status_code == 303

    text = page(client.get("/thanks")).all_text

    assert "Your pledge is counted." in text
    assert "Central now has 1 porch light pledged." in text
