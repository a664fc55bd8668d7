"""`pledges seed` and `neighborhoods import`."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pledges.extensions import db
from pledges.models import Campaign, Neighborhood

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_NAMES = Path(__file__).resolve().parents[1] / "pledges" / "data" / "buffalo-neighborhoods.txt"


def neighborhoods(app) -> dict[str, Neighborhood]:
    with app.app_context():
        return {n.slug: n for n in db.session.scalars(db.select(Neighborhood))}


def campaigns(app) -> list[Campaign]:
    with app.app_context():
        return list(db.session.scalars(db.select(Campaign)))


def test_seed_loads_the_35_buffalo_neighborhoods_and_opens_the_default_campaign(app):
    result = app.test_cli_runner().invoke(args=["pledges", "seed"])

    assert result.exit_code == 0, result.output
    names = {n.name for n in neighborhoods(app).values()}
    expected = {
        line.strip()
        for line in SHARED_NAMES.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert names == expected and len(names) == 35
    (campaign,) = campaigns(app)
    assert (campaign.slug, campaign.name, campaign.city, campaign.timezone) == (
        "nno-2027",
        "National Night Out 2027",
        "Buffalo, NY",
        "America/New_York",
    )
    assert campaign.status == "open"
    assert campaign.goal == 10000
    night = campaign.ends_at.astimezone(ZoneInfo("America/New_York"))
    assert (night.year, night.month, night.day, night.hour) == (2027, 8, 4, 0)
    assert datetime(2027, 8, 3).weekday() == 1  # the event is on a Tuesday
    assert campaign.ends_at - campaign.starts_at > timedelta(days=1)


def test_seed_twice_changes_nothing(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["pledges", "seed"])
    before = (
        {s: n.name for s, n in neighborhoods(app).items()},
        [(c.slug, c.starts_at) for c in campaigns(app)],
    )

    second = runner.invoke(args=["pledges", "seed"])

    assert second.exit_code == 0
    after = (
        {s: n.name for s, n in neighborhoods(app).items()},
        [(c.slug, c.starts_at) for c in campaigns(app)],
    )
    assert after == before


def test_seed_goal_is_configurable(app):
    runner = app.test_cli_runner()
    runner.invoke(args=["pledges", "seed", "--goal", "2500"])
    assert campaigns(app)[0].goal == 2500
    runner.invoke(args=["pledges", "seed", "--goal", "4000"])
    assert campaigns(app)[0].goal == 4000
    runner.invoke(args=["pledges", "seed"])
    assert campaigns(app)[0].goal == 4000


def test_seed_refuses_a_goal_below_one(app):
    result = app.test_cli_runner().invoke(args=["pledges", "seed", "--goal", "0"])
    assert result.exit_code != 0
    assert campaigns(app) == []


def test_import_reads_a_names_file(app, tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("# Springfield\nOld Town\n\nRiver Row\n")

    result = app.test_cli_runner().invoke(args=["neighborhoods", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert {s: n.name for s, n in neighborhoods(app).items()} == {
        "old-town": "Old Town",
        "river-row": "River Row",
    }


def test_import_reads_a_csv_with_a_name_column(app, tmp_path):
    path = tmp_path / "hoods.csv"
    path.write_text("id,name\n1,Old Town\n2,  River Row \n")

    result = app.test_cli_runner().invoke(args=["neighborhoods", "import", str(path)])

    assert result.exit_code == 0, result.output
    assert set(neighborhoods(app)) == {"old-town", "river-row"}


def test_import_keeps_geojson_boundaries(app):
    source = json.loads((FIXTURES / "tiny-city.geojson").read_text())

    result = app.test_cli_runner().invoke(
        args=["neighborhoods", "import", str(FIXTURES / "tiny-city.geojson")]
    )

    assert result.exit_code == 0, result.output
    rows = neighborhoods(app)
    assert set(rows) == {"harbor-point", "elm-hollow"}
    assert rows["elm-hollow"].name == "Élm Hollow"
    assert rows["harbor-point"].boundary == source["features"][0]["geometry"]
    assert rows["elm-hollow"].boundary["type"] == "MultiPolygon"


def test_import_again_updates_without_duplicating(app, tmp_path):
    runner = app.test_cli_runner()
    path = tmp_path / "names.txt"
    path.write_text("Old Town\n")
    runner.invoke(args=["neighborhoods", "import", str(path)])
    path.write_text("OLD TOWN\nNew Town\n")

    result = runner.invoke(args=["neighborhoods", "import", str(path)])

    assert result.exit_code == 0
    assert {s: n.name for s, n in neighborhoods(app).items()} == {
        "old-town": "OLD TOWN",
        "new-town": "New Town",
    }


def test_seed_after_an_import_keeps_the_other_citys_neighborhoods_alone(app, tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Old Town\n")
    runner = app.test_cli_runner()
    runner.invoke(args=["neighborhoods", "import", str(path)])

    runner.invoke(args=["pledges", "seed"])

    assert set(neighborhoods(app)) == {"old-town"}


def test_a_bad_import_file_is_refused_with_a_reason_and_changes_nothing(app, tmp_path):
    runner = app.test_cli_runner()
    cases = {
        "dupes.txt": "Old Town\nold town\n",
        "empty.txt": "# nothing\n",
        "nocol.csv": "id,label\n1,Old Town\n",
        "points.geojson": json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"name": "X"}, "geometry": {"type": "Point"}}],
            }
        ),
        "noname.geojson": json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {}, "geometry": None}],
            }
        ),
        "broken.geojson": "{not json",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = runner.invoke(args=["neighborhoods", "import", str(path)])
        assert result.exit_code != 0, name
        assert "cannot import" in result.output, name
    assert neighborhoods(app) == {}
