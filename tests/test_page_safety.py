"""Every page: a strict CSP, no outside requests, safe cookies, and light enough for a phone."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .conftest import make_app
from .factories import post_pledge, submit_form

STATIC = Path(__file__).resolve().parents[1] / "pledges" / "static"
PAGE_BUDGET = 50 * 1024


class References(HTMLParser):
    """Every address a page makes the browser fetch or follow."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched: list[str] = []
        self.linked: list[str] = []
        self.inline_scripts = 0
        self.inline_styles = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a:
            self.inline_styles += 1
        if tag == "style":
            self.inline_styles += 1
        if tag == "script":
            if a.get("src"):
                self.fetched.append(a["src"])
            else:
                self._in_script = True
        for attr in ("src", "srcset", "data", "poster"):
            if tag != "script" and a.get(attr):
                self.fetched.append(a[attr])
        if tag == "link" and a.get("href"):
            self.fetched.append(a["href"])
        if tag in ("a", "form") and (a.get("href") or a.get("action")):
            self.linked.append(a.get("href") or a.get("action"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def references(html: str) -> References:
    parser = References()
    parser.feed(html)
    return parser


PAGES = ["/", "/?lang=es", "/thanks", "/no-such-page"]


@pytest.mark.parametrize("path", PAGES)
def test_pages_carry_a_strict_content_security_policy_and_safety_headers(client, path):
    response = client.get(path)

    csp = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


@pytest.mark.parametrize(
    "path", ["/", "/embed/current", "/api/v1/campaigns/current/totals", "/healthz", "/nope"]
)
def test_each_safety_header_and_the_request_id_is_sent_once(client, path):
    response = client.get(path)

    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Request-ID"):
        assert len(response.headers.getlist(name)) == 1, (name, response.headers)
    assert len(response.headers.getlist("X-Frame-Options")) == (0 if path == "/embed/current" else 1)


def test_api_responses_carry_the_same_headers(client):
    response = client.get("/api/v1/campaigns/current/totals")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", PAGES)
def test_pages_fetch_nothing_from_another_host_and_run_no_inline_code(client, path):
    post_pledge(client, kind="business", name="Shown Shop", show_name=True)
    found = references(client.get(path).get_data(as_text=True))

    assert found.fetched, "the page loads its stylesheet and script"
    assert all(url.startswith("/") and not url.startswith("//") for url in found.fetched), found.fetched
    assert found.inline_scripts == 0
    assert found.inline_styles == 0


def test_the_stylesheet_asks_for_no_web_fonts_or_outside_files():
    css = (STATIC / "css" / "site.css").read_text()
    assert "@font-face" not in css and "@import" not in css
    assert not re.search(r"url\((?!['\"]?data:)", css)


def test_the_session_cookie_is_httponly_and_samesite_lax(client):
    submit_form(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert not cookie.secure


def test_the_session_cookie_is_secure_behind_https(database_url, tmp_path):
    app = make_app(database_url, tmp_path, TRUSTED_PROXIES=1)
    with app.app_context():
        from flask_migrate import upgrade

        from pledges.services.seeding import seed

        upgrade()
        seed(goal=10)
    client = app.test_client()
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', client.get("/", headers=https).get_data(as_text=True)
    )
    response = client.post(
        "/",
        data={
            "kind": "resident",
            "neighborhood": "allentown",
            "email": "s@example.org",
            "csrf_token": token.group(1),
        },
        headers={**https, "Referer": "https://localhost/"},
    )
    assert response.status_code == 303
    set_cookie = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session=")]
    assert set_cookie and "Secure" in set_cookie[0] and "HttpOnly" in set_cookie[0]


def test_the_front_page_with_its_css_and_js_weighs_at_most_50_kb(client, seeded_app):
    for number in range(60):
        post_pledge(
            client,
            kind="business",
            name=f"Longish Business Name Number {number:03d}",
            show_name=True,
            neighborhood="seneca-cazenovia",
        )
    html = client.get("/?lang=es").get_data()
    found = references(html.decode())
    weight = len(html) + sum(len(client.get(url).get_data()) for url in found.fetched)

    assert weight <= PAGE_BUDGET, f"{weight} bytes"
