"""What partners build on: CORS for reads, caching, the docs page, the embeddable counter and badge."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from .factories import bearer, make_key, post_pledge

READS = [
    "/api/v1/campaigns",
    "/api/v1/campaigns/current",
    "/api/v1/neighborhoods",
    "/api/v1/campaigns/current/totals",
    "/api/v1/campaigns/current/totals.csv",
    "/api/v1/campaigns/current/neighborhoods/allentown",
    "/api/v1/campaigns/current/timeseries?interval=day",
    "/api/v1/campaigns/current/businesses",
]
CACHED = READS[2:]


@pytest.mark.parametrize("path", READS)
def test_public_reads_allow_any_origin_without_credentials(client, path):
    response = client.get(path, headers={"Origin": "https://blockclub.example"})

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]


def test_a_preflight_for_a_keyed_read_is_allowed(client):
    response = client.options(
        "/api/v1/campaigns/current/totals",
        headers={
            "Origin": "https://news.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]


def test_writes_and_admin_routes_allow_no_other_origin(client, seeded_app):
    admin = make_key(seeded_app, "admin", scope="admin")
    write = post_pledge(client)
    admin_read = client.get("/api/v1/admin/pledges", headers={**bearer(admin), "Origin": "https://x.example"})
    assert "Access-Control-Allow-Origin" not in write.headers
    assert "Access-Control-Allow-Origin" not in admin_read.headers


@pytest.mark.parametrize("path", CACHED)
def test_cacheable_reads_carry_an_etag_short_public_max_age_and_stale_while_revalidate(client, path):
    response = client.get(path)

    cache = response.cache_control
    assert response.headers["ETag"]
    assert cache.public and 0 < cache.max_age <= 10 and cache.stale_while_revalidate
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_docs_page_is_served_by_the_app_under_its_own_policy(client):
    page = client.get("/api/docs")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources)
    assert "<script>" not in html
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_only_the_swagger_files_are_served_from_the_bundle(client):
    assert client.get("/api/docs/assets/index.html").status_code == 404
    assert client.get("/api/docs/assets/..%2Fsetup.py").status_code == 404


def test_the_embed_counter_may_be_framed_by_any_site_and_nothing_else_may(client):
    post_pledge(client)

    embed = client.get("/embed/current")
    front = client.get("/")

    assert embed.status_code == 200
    assert "frame-ancestors *" in embed.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed.headers
    assert "1 porch light pledged" in re.sub(
        r"\s+", " ", re.sub(r"<[^>]+>", " ", embed.get_data(as_text=True))
    )
    assert "frame-ancestors 'none'" in front.headers["Content-Security-Policy"]
    assert front.headers["X-Frame-Options"] == "DENY"


def test_the_embed_counter_speaks_spanish_and_links_to_the_pledge_form(client):
    html = client.get("/embed/nno-2027?lang=es").get_data(as_text=True)
    assert '<html lang="es">' in html
    assert "luces comprometidas" in html
    assert 'href="http://localhost/"' in html


def test_the_badge_is_a_cacheable_svg_with_the_current_total(client):
    for _ in range(3):
        post_pledge(client)

    badge = client.get("/badge/current.svg")

    assert badge.status_code == 200 and badge.mimetype == "image/svg+xml"
    svg = ET.fromstring(badge.get_data(as_text=True))
    assert svg.get("role") == "img" and svg.get("aria-label") == "porch lights: 3"
    assert badge.headers["ETag"] and badge.cache_control.public
    assert client.get("/badge/current.svg?lang=es").get_data(as_text=True).count("luces") >= 1


def test_embed_and_badge_of_an_unknown_campaign_are_404(client):
    assert client.get("/embed/nno-1999").status_code == 404
    assert client.get("/badge/nno-1999.svg").status_code == 404
