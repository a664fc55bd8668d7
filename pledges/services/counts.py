"""Stored counts: moved in the same transaction as the pledges they count, checked and repaired."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, text

from ..database import UTCDateTime, utcnow
from ..extensions import db
from ..models import HourlyCount, NeighborhoodCount, Pledge

# (neighborhood_id, kind) and (hour, kind) → change in count
NeighborhoodDeltas = Counter[tuple[int, str]]
HourlyDeltas = Counter[tuple[datetime, str]]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# Race-free upserts in the syntax SQLite and PostgreSQL share. Written once as text: SQLAlchemy
# recompiled the equivalent insert().on_conflict_do_update() on every pledge, inside the write lock.
NEIGHBORHOOD_UPSERT = text(
    "INSERT INTO neighborhood_counts (campaign_id, neighborhood_id, kind, count, updated_at) "
    "VALUES (:campaign_id, :neighborhood_id, :kind, :count, :updated_at) "
    "ON CONFLICT (campaign_id, neighborhood_id, kind) DO UPDATE "
    "SET count = neighborhood_counts.count + excluded.count, updated_at = excluded.updated_at"
).bindparams(bindparam("updated_at", type_=UTCDateTime()))
HOURLY_UPSERT = text(
    "INSERT INTO hourly_counts (campaign_id, hour, kind, count) VALUES (:campaign_id, :hour, :kind, :count) "
    "ON CONFLICT (campaign_id, hour, kind) DO UPDATE SET count = hourly_counts.count + excluded.count"
).bindparams(bindparam("hour", type_=UTCDateTime()))


def apply_deltas(campaign_id: int, by_neighborhood: NeighborhoodDeltas, by_hour: HourlyDeltas) -> None:
    """Add the deltas to the stored counts with race-free upserts, inside the caller's transaction."""
    now = utcnow()
    rows = [
        {"campaign_id": campaign_id, "neighborhood_id": n, "kind": k, "count": d, "updated_at": now}
        for (n, k), d in sorted(by_neighborhood.items())
        if d
    ]
    if rows:
        db.session.execute(NEIGHBORHOOD_UPSERT, rows)
    rows = [
        {"campaign_id": campaign_id, "hour": h, "kind": k, "count": d}
        for (h, k), d in sorted(by_hour.items())
        if d
    ]
    if rows:
        db.session.execute(HOURLY_UPSERT, rows)


def count_pledge(campaign_id: int, neighborhood_id: int, kind: str, created_at: datetime, delta: int) -> None:
    apply_deltas(
        campaign_id,
        Counter({(neighborhood_id, kind): delta}),
        Counter({(hour_of(created_at), kind): delta}),
    )


def hour_bucket():  # type: ignore[no-untyped-def]
    if db.session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H:00:00", Pledge.created_at)
    return func.date_trunc("hour", Pledge.created_at)


def as_hour(value: str | datetime) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Drift:
    campaign_id: int
    table: str
    key: tuple
    stored: int
    actual: int


def tally_pledges(*conditions: Any) -> tuple[NeighborhoodDeltas, HourlyDeltas]:
    """Count the pledges matching `conditions` by (neighborhood, kind) and by (hour, kind)."""
    by_neighborhood: NeighborhoodDeltas = Counter()
    for n, k, c in db.session.execute(
        db.select(Pledge.neighborhood_id, Pledge.kind, func.count())
        .where(*conditions)
        .group_by(Pledge.neighborhood_id, Pledge.kind)
    ):
        by_neighborhood[(n, k)] = c
    bucket = hour_bucket().label("hour")
    by_hour: HourlyDeltas = Counter()
    for h, k, c in db.session.execute(
        db.select(bucket, Pledge.kind, func.count()).where(*conditions).group_by(bucket, Pledge.kind)
    ):
        by_hour[(as_hour(h), k)] = c
    return by_neighborhood, by_hour


def _actual_counts(campaign_id: int) -> tuple[NeighborhoodDeltas, HourlyDeltas]:
    return tally_pledges(Pledge.campaign_id == campaign_id, Pledge.status == "counted")


def _stored_counts(campaign_id: int) -> tuple[NeighborhoodDeltas, HourlyDeltas]:
    by_neighborhood: NeighborhoodDeltas = Counter()
    for row in db.session.scalars(
        db.select(NeighborhoodCount).where(NeighborhoodCount.campaign_id == campaign_id)
    ):
        by_neighborhood[(row.neighborhood_id, row.kind)] = row.count
    by_hour: HourlyDeltas = Counter()
    for row in db.session.scalars(db.select(HourlyCount).where(HourlyCount.campaign_id == campaign_id)):
        by_hour[(row.hour, row.kind)] = row.count
    return by_neighborhood, by_hour


def find_drift(campaign_id: int) -> list[Drift]:
    """Every stored count that differs from the pledge rows it stands for."""
    drift = []
    actual, stored = _actual_counts(campaign_id), _stored_counts(campaign_id)
    for table, want, have in (
        ("neighborhood_counts", actual[0], stored[0]),
        ("hourly_counts", actual[1], stored[1]),
    ):
        for key in sorted(set(want) | set(have), key=str):
            if want[key] != have[key]:
                drift.append(Drift(campaign_id, table, key, have[key], want[key]))
    return drift


def rebuild_counts(campaign_id: int) -> None:
    """Replace the stored counts of a campaign with ones computed from its pledges (caller commits)."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Writers wait until the rebuilt counts commit, so none is lost in between.
        db.session.execute(text("LOCK TABLE pledges IN SHARE MODE"))
    by_neighborhood, by_hour = _actual_counts(campaign_id)
    db.session.execute(delete(NeighborhoodCount).where(NeighborhoodCount.campaign_id == campaign_id))
    db.session.execute(delete(HourlyCount).where(HourlyCount.campaign_id == campaign_id))
    apply_deltas(campaign_id, by_neighborhood, by_hour)
