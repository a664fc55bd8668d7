"""Totals and timeseries, read from the stored counts: their cost does not grow with the pledges."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, func

from ..database import utcnow
from ..errors import NotFound
from ..extensions import db
from ..models import Campaign, HourlyCount, Neighborhood, NeighborhoodCount, Pledge
from .counts import hour_of

CSV_HEADER = ("neighborhood_slug", "neighborhood", "residents", "businesses", "total")


def _row(slug: str, name: str, residents: int, businesses: int) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": name,
        "residents": residents,
        "businesses": businesses,
        "total": residents + businesses,
    }


def _neighborhood_rows(
    campaign: Campaign, slug: str | None = None
) -> tuple[list[dict[str, Any]], datetime | None]:
    query = (
        db.select(
            Neighborhood.slug,
            Neighborhood.name,
            NeighborhoodCount.kind,
            NeighborhoodCount.count,
            NeighborhoodCount.updated_at,
        )
        .outerjoin(
            NeighborhoodCount,
            and_(
                NeighborhoodCount.neighborhood_id == Neighborhood.id,
                NeighborhoodCount.campaign_id == campaign.id,
            ),
        )
        .order_by(func.lower(Neighborhood.name), Neighborhood.slug)
    )
    if slug is not None:
        query = query.where(Neighborhood.slug == slug)
    counts: dict[str, dict[str, int]] = {}
    names: dict[str, str] = {}
    updated_at: datetime | None = None
    for n_slug, name, kind, count, changed in db.session.execute(query):
        names[n_slug] = name
        by_kind = counts.setdefault(n_slug, {"resident": 0, "business": 0})
        if kind is not None:
            by_kind[kind] = count
            updated_at = changed if updated_at is None else max(updated_at, changed)
    rows = [_row(s, names[s], c["resident"], c["business"]) for s, c in counts.items()]
    return rows, updated_at


def campaign_totals(campaign: Campaign) -> dict[str, Any]:
    rows, updated_at = _neighborhood_rows(campaign)
    residents = sum(r["residents"] for r in rows)
    businesses = sum(r["businesses"] for r in rows)
    return {
        "campaign": campaign.slug,
        "total": residents + businesses,
        "residents": residents,
        "businesses": businesses,
        "goal": campaign.goal,
        "pending": pending_count(campaign.id),
        "updated_at": updated_at,
        "neighborhoods": rows,
    }


def pending_count(campaign_id: int) -> int:
    """How many of the campaign's pledges wait for confirmation or review (a partial index holds them)."""
    waiting = db.select(func.count()).select_from(Pledge)
    return (
        db.session.scalar(waiting.where(Pledge.campaign_id == campaign_id, Pledge.status == "pending")) or 0
    )


def neighborhood_total(campaign: Campaign, slug: str) -> dict[str, Any]:
    rows, _ = _neighborhood_rows(campaign, slug)
    if not rows:
        raise NotFound(_l("There is no neighborhood '%(slug)s'.", slug=slug))
    return rows[0]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value: Any) -> Any:
    """Text a spreadsheet shows as text, never runs as a formula (OWASP: a leading '); numbers as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def totals_csv(totals: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in totals["neighborhoods"]:
        cells = (row["slug"], row["name"], row["residents"], row["businesses"], row["total"])
        writer.writerow([spreadsheet_cell(cell) for cell in cells])
    return out.getvalue()


def _bucket_start(hour: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "hour":
        return hour
    local = hour.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return midnight.astimezone(UTC)


def _next_bucket(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    if interval == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(zone)
    # Midnight of the next local day, across daylight-saving changes.
    following = (datetime(local.year, local.month, local.day) + timedelta(days=1)).replace(tzinfo=zone)
    return following.astimezone(UTC)


def timeseries(campaign: Campaign, interval: str, now: datetime | None = None) -> dict[str, Any]:
    """Counted pledges per UTC hour, or per day of the campaign's own time zone.

    Points run without gaps from the first pledge to the present (or the campaign's end).
    """
    zone = ZoneInfo(campaign.timezone)
    buckets: dict[datetime, dict[str, int]] = defaultdict(lambda: {"resident": 0, "business": 0})
    for hour, kind, count in db.session.execute(
        db.select(HourlyCount.hour, HourlyCount.kind, HourlyCount.count)
        .where(HourlyCount.campaign_id == campaign.id, HourlyCount.count != 0)
        .order_by(HourlyCount.hour)
    ):
        buckets[_bucket_start(hour, interval, zone)][kind] += count
    points: list[dict[str, Any]] = []
    if buckets:
        present = hour_of(min(now or utcnow(), campaign.ends_at))
        last = max(max(buckets), _bucket_start(present, interval, zone))
        start, cumulative = min(buckets), 0
        while start <= last:
            by_kind = buckets.get(start, {"resident": 0, "business": 0})
            total = by_kind["resident"] + by_kind["business"]
            cumulative += total
            points.append(
                {
                    "start": start,
                    "residents": by_kind["resident"],
                    "businesses": by_kind["business"],
                    "total": total,
                    "cumulative": cumulative,
                }
            )
            start = _next_bucket(start, interval, zone)
    return {"interval": interval, "points": points}
