"""With neighborhood boundaries imported, the front page draws its map, and axe-core finds nothing wrong.

The boundaries are imported with the operator's CLI into a server of this module's own, so the
Buffalo neighborhoods of the other browser tests stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from ..servers import flask_cli, running_server, server_env
from .conftest import DESKTOP, PHONE, axe_violations, pledge_through_api, sideways_overflow

pytestmark = pytest.mark.browser
TINY_CITY = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-city.geojson"


@pytest.fixture(scope="module")
def map_server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on a database of its own, seeded, with tiny-city's two neighborhoods imported."""
    tmp_path = tmp_path_factory.mktemp("map-server")
    database_url = f"sqlite:///{tmp_path / 'porchlight.db'}"
    with running_server(database_url, tmp_path, workers=1) as url:
        imported = flask_cli(
            "neighborhoods", "import", str(TINY_CITY), env=server_env(database_url, tmp_path)
        )
        assert imported.returncode == 0, imported.stdout + imported.stderr
        yield url


@pytest.fixture
def map_page(browser: Browser, map_server: str) -> Iterator[Page]:
    context = browser.new_context(base_url=map_server, viewport=DESKTOP)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def slug_of(server: str, name: str) -> str:
    neighborhoods = requests.get(f"{server}/api/v1/neighborhoods", timeout=10).json()["neighborhoods"]
    return next(n["slug"] for n in neighborhoods if n["name"] == name)


def test_the_front_page_draws_the_imported_neighborhoods_as_a_map_axe_finds_no_fault_in(
    map_page, map_server, axe_source, artifacts
):
    harbor, elm = slug_of(map_server, "Harbor Point"), slug_of(map_server, "Élm Hollow")
    pledge_through_api(map_server, neighborhood=harbor)
    map_page.goto("/")

    drawing = map_page.locator("figure.map svg[role=img]")
    expect(drawing).to_be_visible()
    # Named by its title and its description: what the shading says, in words.
    expect(drawing).to_have_accessible_name(
        re.compile(
            r"^Pledges by neighborhood A map of 2 neighborhoods.* Harbor Point has the most, with 1 pledge\."
        )
    )
    expect(drawing.locator("path")).to_have_count(2)
    expect(drawing.locator(f"path[data-slug={harbor}]")).to_have_class("map-shade-5")
    expect(drawing.locator(f"path[data-slug={elm}]")).to_have_class("map-shade-0")
    assert drawing.bounding_box()["height"] > 100, "the map is drawn too small to see"
    map_page.screenshot(path=artifacts / "front-map-1280.png", full_page=True)

    problems = {"1280 px": axe_violations(map_page, axe_source)}
    map_page.set_viewport_size(PHONE)
    overflow = sideways_overflow(map_page)
    problems["360 px"] = axe_violations(map_page, axe_source)

    assert overflow <= 0, f"with the map, the front page scrolls {overflow} px sideways at 360 px"
    assert not any(problems.values()), "axe found WCAG 2.1 A/AA violations with the map:\n" + "\n".join(
        f"  at {width}: {line}" for width, lines in problems.items() for line in lines
    )
