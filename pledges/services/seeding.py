"""The Buffalo seed and loading another city's neighborhoods."""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..database import utcnow, write_transaction
from ..extensions import db
from ..models import Campaign, Neighborhood

DEFAULT_CAMPAIGN = {
    "slug": "nno-2027",
    "name": "National Night Out 2027",
    "city": "Buffalo, NY",
    "timezone": "America/New_York",
}
# National Night Out 2027 is Tuesday 3 August; pledges are open until the end of that night.
EVENT_DAY = (2027, 8, 3)
NAME_PROPERTIES = ("name", "Name", "NAME", "nbhdname", "NBHDNAME", "neighborhood")


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")


@dataclass(frozen=True)
class NeighborhoodSpec:
    name: str
    boundary: dict[str, Any] | None = None

    @property
    def slug(self) -> str:
        return slugify(self.name)


def buffalo_neighborhoods() -> list[NeighborhoodSpec]:
    text = resources.files("pledges").joinpath("data/buffalo-neighborhoods.txt").read_text("utf-8")
    return parse_names(text)


def parse_names(text: str) -> list[NeighborhoodSpec]:
    lines = (line.strip() for line in text.splitlines())
    return [NeighborhoodSpec(line) for line in lines if line and not line.startswith("#")]


def parse_csv(text: str) -> list[NeighborhoodSpec]:
    reader = csv.DictReader(io.StringIO(text))
    column = next((c for c in NAME_PROPERTIES if c in (reader.fieldnames or [])), None)
    if column is None:
        raise ValueError(f"the CSV needs a column called one of: {', '.join(NAME_PROPERTIES)}")
    return [NeighborhoodSpec(row[column].strip()) for row in reader if (row[column] or "").strip()]


def parse_geojson(text: str, name_property: str | None = None) -> list[NeighborhoodSpec]:
    document = json.loads(text)
    if document.get("type") != "FeatureCollection":
        raise ValueError("the GeoJSON must be a FeatureCollection")
    specs = []
    for number, feature in enumerate(document.get("features", []), start=1):
        properties = feature.get("properties") or {}
        keys = (name_property,) if name_property else NAME_PROPERTIES
        name = next((str(properties[k]).strip() for k in keys if properties.get(k)), None)
        if not name:
            raise ValueError(f"feature {number} has no name property ({', '.join(keys)})")
        geometry = feature.get("geometry")
        if geometry and geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValueError(f"feature {number} ({name}) is a {geometry.get('type')}, not a polygon")
        specs.append(NeighborhoodSpec(name, geometry))
    return specs


def read_neighborhood_file(path: Path, name_property: str | None = None) -> list[NeighborhoodSpec]:
    """Neighborhoods from a names file (one a line), a CSV with a name column, or GeoJSON."""
    text = path.read_text("utf-8-sig")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        specs = parse_geojson(text, name_property)
    elif suffix == ".csv":
        specs = parse_csv(text)
    else:
        specs = parse_names(text)
    if not specs:
        raise ValueError(f"{path} names no neighborhoods")
    slugs = [s.slug for s in specs]
    if any(not slug for slug in slugs):
        raise ValueError("a neighborhood name needs at least one letter or digit")
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ValueError(f"names given twice: {', '.join(duplicates)}")
    return specs


def import_neighborhoods(specs: Iterable[NeighborhoodSpec]) -> tuple[int, int]:
    """Add new neighborhoods and update existing ones (matched by slug). Returns (added, updated)."""
    added = updated = 0
    with write_transaction():
        existing = {n.slug: n for n in db.session.scalars(db.select(Neighborhood))}
        for spec in specs:
            row = existing.get(spec.slug)
            if row is None:
                db.session.add(Neighborhood(slug=spec.slug, name=spec.name, boundary=spec.boundary))
                added += 1
            elif row.name != spec.name or (spec.boundary is not None and row.boundary != spec.boundary):
                row.name = spec.name
                if spec.boundary is not None:
                    row.boundary = spec.boundary
                updated += 1
    return added, updated


def default_campaign_window(now: datetime) -> tuple[datetime, datetime]:
    zone = ZoneInfo(DEFAULT_CAMPAIGN["timezone"])
    end_of_night = datetime(*EVENT_DAY, tzinfo=zone) + timedelta(days=1)
    return now, end_of_night


@dataclass(frozen=True)
class SeedResult:
    neighborhoods_added: int
    campaign_created: bool


def seed(goal: int | None, update_goal: bool = False) -> SeedResult:
    """Buffalo's neighborhoods and the default campaign, each only where there is none yet.

    A city that imported its own neighborhoods, or created its own campaigns, keeps them.
    """
    added = 0
    if db.session.scalar(db.select(db.func.count()).select_from(Neighborhood)) == 0:
        added, _ = import_neighborhoods(buffalo_neighborhoods())
    with write_transaction():
        created = False
        campaign = db.session.scalars(
            db.select(Campaign).where(Campaign.slug == DEFAULT_CAMPAIGN["slug"])
        ).first()
        if campaign is None and db.session.scalar(db.select(db.func.count()).select_from(Campaign)) == 0:
            starts_at, ends_at = default_campaign_window(utcnow())
            db.session.add(Campaign(**DEFAULT_CAMPAIGN, starts_at=starts_at, ends_at=ends_at, goal=goal))
            created = True
        elif campaign is not None and update_goal:
            campaign.goal = goal
    return SeedResult(added, created)
