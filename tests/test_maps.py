"""The neighborhood map: an accessible, escaped, compact SVG choropleth."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask_babel import get_locale

from pledges import create_app
from pledges.services.maps import SHADE_CLASSES, SHADES, neighborhood_map
from pledges.services.seeding import parse_geojson

SVG = "{http://www.w3.org/2000/svg}"
FIXTURE = Path(__file__).parent / "fixtures" / "tiny-city.geojson"


@pytest.fixture
def map_app(tmp_path: Path) -> Flask:
    return create_app(
        {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "t", "INSTANCE_PATH": str(tmp_path)}
    )


@pytest.fixture
def in_request(map_app: Flask) -> Iterator[None]:
    with map_app.test_request_context():
        yield


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def place(name: str, boundary: dict[str, Any] | None, slug: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(slug=slug or name.lower().replace(" ", "-"), name=name, boundary=boundary)


def totals_for(places: list[SimpleNamespace], **counts: int) -> dict[str, Any]:
    rows = [
        {"slug": p.slug, "name": p.name, "residents": counts.get(p.slug, 0), "businesses": 0} for p in places
    ]
    for row in rows:
        row["total"] = row["residents"] + row["businesses"]
    return {"total": sum(r["total"] for r in rows), "neighborhoods": rows}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def paths(svg: str) -> list[ET.Element]:
    return parse(svg).findall(f"{SVG}path")


def three_places() -> list[SimpleNamespace]:
    return [
        place("Allentown", square(-78.90, 42.90)),
        place("Black Rock", square(-78.89, 42.90)),
        place("Central", square(-78.88, 42.90)),
    ]


@pytest.mark.usefixtures("in_request")
def test_there_is_no_map_when_no_neighborhood_has_a_boundary() -> None:
    places = [place("Allentown", None), place("Black Rock", None)]
    assert neighborhood_map(places, totals_for(places, allentown=3)) is None
    assert neighborhood_map([], totals_for([])) is None


@pytest.mark.usefixtures("in_request")
def test_each_neighborhood_with_a_boundary_is_drawn_as_one_path() -> None:
    places = [*three_places(), place("Downtown", None)]
    svg = neighborhood_map(places, totals_for(places))

    assert svg is not None
    assert [p.get("data-slug") for p in paths(svg)] == ["allentown", "black-rock", "central"]


@pytest.mark.usefixtures("in_request")
def test_the_busiest_neighborhood_gets_the_top_shade_and_one_without_pledges_shade_zero() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places, allentown=40, **{"black-rock": 10}))

    assert svg is not None
    shades = {p.get("data-slug"): p.get("class") for p in paths(svg)}
    assert shades == {"allentown": "map-shade-5", "black-rock": "map-shade-2", "central": "map-shade-0"}
    assert tuple(f"map-shade-{n}" for n in range(SHADES + 1)) == SHADE_CLASSES


@pytest.mark.usefixtures("in_request")
def test_a_neighborhood_with_any_pledge_is_shaded_above_zero() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places, allentown=1000, central=1))

    assert svg is not None
    assert {p.get("data-slug"): p.get("class") for p in paths(svg)}["central"] == "map-shade-1"


@pytest.mark.usefixtures("in_request")
def test_the_svg_is_xml_labelled_by_a_title_and_desc_inside_it() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places, central=2))

    assert svg is not None
    root = parse(svg)
    assert root.get("role") == "img"
    labels = root.get("aria-labelledby", "").split()
    ids = {element.get("id"): element.tag for element in root.iter() if element.get("id")}
    assert [ids.get(label) for label in labels] == [f"{SVG}title", f"{SVG}desc"]
    assert root.find(f"{SVG}title").text == "Pledges by neighborhood"


@pytest.mark.usefixtures("in_request")
def test_each_path_has_a_title_with_its_name_and_count() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places, allentown=1, central=7))

    assert svg is not None
    titles = [p.find(f"{SVG}title").text for p in paths(svg)]
    assert titles == ["Allentown: 1 pledge", "Black Rock: 0 pledges", "Central: 7 pledges"]


@pytest.mark.usefixtures("in_request")
def test_the_description_names_the_leader_and_its_count() -> None:
    places = [*three_places(), place("Downtown", None)]
    svg = neighborhood_map(places, totals_for(places, allentown=3, **{"black-rock": 1234}))

    assert svg is not None
    desc = parse(svg).find(f"{SVG}desc").text
    assert "3 neighborhoods" in desc
    assert "Black Rock has the most, with 1,234 pledges." in desc
    assert "1 more neighborhood has no boundary" in desc


@pytest.mark.usefixtures("in_request")
def test_the_description_says_when_there_are_no_pledges_yet() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places))

    assert svg is not None
    assert "No neighborhood has a pledge yet." in parse(svg).find(f"{SVG}desc").text


@pytest.mark.usefixtures("in_request")
def test_the_title_can_be_replaced_and_ids_take_the_given_prefix() -> None:
    places = three_places()
    svg = neighborhood_map(places, totals_for(places), title="Pledges <so far>", id_prefix="home-map")

    assert svg is not None
    root = parse(svg)
    assert root.get("aria-labelledby") == "home-map-title home-map-desc"
    assert root.find(f"{SVG}title").text == "Pledges <so far>"
    with pytest.raises(ValueError):
        neighborhood_map(places, totals_for(places), id_prefix='x" onload="alert(1)')


@pytest.mark.usefixtures("in_request")
def test_untrusted_names_and_slugs_are_escaped() -> None:
    hostile = place('<script>&"\x07', square(-78.9, 42.9), slug='"><script>')
    svg = neighborhood_map([hostile], totals_for([hostile], **{'"><script>': 2}))

    assert svg is not None
    assert "<script>" not in svg
    path = paths(svg)[0]
    assert path.get("data-slug") == '"><script>'
    assert path.find(f"{SVG}title").text == '<script>&": 2 pledges'
    assert '<script>&" has the most' in parse(svg).find(f"{SVG}desc").text


@pytest.mark.usefixtures("in_request")
def test_multipolygons_and_holes_each_make_one_evenodd_path() -> None:
    outer = [[-78.90, 42.88], [-78.86, 42.88], [-78.86, 42.92], [-78.90, 42.92], [-78.90, 42.88]]
    hole = [[-78.89, 42.89], [-78.87, 42.89], [-78.87, 42.91], [-78.89, 42.91], [-78.89, 42.89]]
    islands = {
        "type": "MultiPolygon",
        "coordinates": [square(-78.85, 42.88)["coordinates"], square(-78.83, 42.90)["coordinates"]],
    }
    places = [place("Ring", {"type": "Polygon", "coordinates": [outer, hole]}), place("Islands", islands)]
    svg = neighborhood_map(places, totals_for(places))

    assert svg is not None
    drawn = paths(svg)
    assert len(drawn) == 2
    assert all(p.get("fill-rule") == "evenodd" for p in drawn)
    assert [p.get("d").count("M") for p in drawn] == [2, 2]


@pytest.mark.usefixtures("in_request")
def test_degenerate_rings_and_unreadable_geometry_are_skipped() -> None:
    line = {"type": "Polygon", "coordinates": [[[-78.9, 42.9], [-78.8, 42.9], [-78.9, 42.9]]]}
    with_a_dot = square(-78.9, 42.9)
    with_a_dot["coordinates"].append([[-78.895, 42.905]] * 4)
    places = [
        place("Line", line),
        place("Dot", with_a_dot),
        place("Point", {"type": "Point", "coordinates": [-78.9, 42.9]}),
        place("Junk", {"type": "Polygon", "coordinates": [[["a", "b"]], None]}),
    ]
    svg = neighborhood_map(places, totals_for(places))

    assert svg is not None
    assert [(p.get("data-slug"), p.get("d").count("M")) for p in paths(svg)] == [("dot", 1)]
    assert neighborhood_map([places[0]], totals_for([places[0]])) is None


@pytest.mark.usefixtures("in_request")
def test_north_is_up_and_longitude_is_narrowed_by_latitude() -> None:
    places = [place("South", square(10.0, 60.0, 1.0)), place("North", square(10.0, 61.0, 1.0))]
    svg = neighborhood_map(places, totals_for(places))

    assert svg is not None
    _, _, width, height = (float(n) for n in parse(svg).get("viewBox").split())
    # Two stacked one-degree squares around 60.5°N: about cos(60.5°) ≈ 0.49 as wide as one is tall.
    assert width / (height / 2) == pytest.approx(0.49, abs=0.02)
    south_y, north_y = (min(map(float, re.findall(r"[\d.]+", p.get("d"))[1::2])) for p in paths(svg))
    assert north_y < south_y


@pytest.mark.usefixtures("in_request")
def test_the_fixture_city_map_is_small_rounded_and_free_of_inline_styles() -> None:
    places = parse_geojson(FIXTURE.read_text("utf-8"))
    svg = neighborhood_map(places, totals_for(places, **{"harbor-point": 5}))

    assert svg is not None
    assert len(svg.encode()) < 20_000
    assert "style" not in svg.lower()
    assert float(parse(svg).get("viewBox").split()[2]) == pytest.approx(1008, abs=1)
    numbers = [n for p in paths(svg) for n in re.findall(r"[\d.]+", p.get("d"))]
    assert numbers and all(len(n.partition(".")[2]) <= 1 for n in numbers)
    assert [p.find(f"{SVG}title").text for p in paths(svg)] == [
        "Harbor Point: 5 pledges",
        "Élm Hollow: 0 pledges",
    ]


def test_a_spanish_request_still_produces_the_map_text(map_app: Flask) -> None:
    places = three_places()
    with map_app.test_request_context("/?lang=es"):
        assert str(get_locale()) == "es"
        svg = neighborhood_map(places, totals_for(places, central=1500))

    assert svg is not None
    root = parse(svg)
    assert root.find(f"{SVG}title").text
    assert "Central" in root.find(f"{SVG}desc").text
    assert "1.500" in root.find(f"{SVG}desc").text  # numbers follow the Spanish locale
    assert all(p.find(f"{SVG}title").text for p in paths(svg))
