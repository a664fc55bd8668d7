"""Synthetic pledges for demos and load tests, marked as such and removable."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, text

from ..database import utcnow, write_transaction
from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge
from .counts import HourlyDeltas, NeighborhoodDeltas, apply_deltas, hour_of, tally_pledges

CHUNK = 50_000
BUSINESS_SHARE = 0.15
SHOWN_SHARE = 0.4


def add_synthetic_pledges(
    campaign: Campaign, count: int, days: int = 3, seed: int | None = None, now: datetime | None = None
) -> int:
    """Add `count` synthetic counted pledges over the neighborhoods, both kinds and the last `days` days.

    Each chunk of pledges commits together with its counts, so the totals are exact at every moment.
    """
    rng = random.Random(seed)
    now = now or utcnow()
    span = days * 86_400
    neighborhood_ids = list(db.session.scalars(db.select(Neighborhood.id)))
    if not neighborhood_ids:
        raise ValueError("there are no neighborhoods: run `pledges seed` first")
    batch = secrets.token_hex(4)
    campaign_id = campaign.id
    added = 0
    while added < count:
        size = min(CHUNK, count - added)
        rows = []
        by_neighborhood: NeighborhoodDeltas = Counter()
        by_hour: HourlyDeltas = Counter()
        for i in range(added, added + size):
            business = rng.random() < BUSINESS_SHARE
            kind = "business" if business else "resident"
            neighborhood_id = rng.choice(neighborhood_ids)
            created_at = now - timedelta(seconds=rng.random() * span)
            rows.append(
                {
                    "public_id": secrets.token_urlsafe(12),
                    "campaign_id": campaign_id,
                    "neighborhood_id": neighborhood_id,
                    "kind": kind,
                    "email": (email := f"demo-{batch}-{i}@synthetic.invalid"),
                    "email_canonical": email,  # already canonical
                    "name": f"Demo Business {batch}-{i}" if business else None,
                    "show_name": (shown := business and rng.random() < SHOWN_SHARE),
                    "name_status": "approved" if shown else None,
                    "created_at": created_at,
                    "status": "counted",
                    "synthetic": True,
                }
            )
            by_neighborhood[(neighborhood_id, kind)] += 1
            by_hour[(hour_of(created_at), kind)] += 1
        with write_transaction():
            _insert_rows(rows)
            apply_deltas(campaign_id, by_neighborhood, by_hour)
        added += size
    return added


COPY_COLUMNS = ("public_id", "campaign_id", "neighborhood_id", "kind", "email", "email_canonical", "name")
COPY_COLUMNS += ("show_name", "name_status", "created_at", "status", "synthetic")


def _insert_rows(rows: list[dict]) -> None:
    """Bulk-insert pledge rows in the caller's transaction, the fastest way each database offers."""
    if db.session.get_bind().dialect.name == "postgresql":
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        with cursor.copy(f"COPY pledges ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                # The column holds naive UTC, as UTCDateTime writes it.
                row = {**row, "created_at": row["created_at"].astimezone(UTC).replace(tzinfo=None)}
                copy.write_row(tuple(row[column] for column in COPY_COLUMNS))
        return
    # A million rows' index pages do not fit SQLite's default 2 MiB page cache.
    db.session.execute(text("PRAGMA cache_size=-131072"))
    # Core, not ORM: one executemany per chunk, whatever mix of NULL names it holds.
    db.session.execute(insert(Pledge.__table__), rows)


def purge_synthetic_pledges(campaign: Campaign) -> int:
    """Remove a campaign's synthetic pledges and take them out of its counts, in one transaction."""
    synthetic = (Pledge.campaign_id == campaign.id, Pledge.synthetic.is_(True))
    with write_transaction():
        by_neighborhood, by_hour = tally_pledges(*synthetic, Pledge.status == "counted")
        removed = db.session.execute(delete(Pledge).where(*synthetic)).rowcount
        apply_deltas(
            campaign.id,
            Counter({key: -n for key, n in by_neighborhood.items()}),
            Counter({key: -n for key, n in by_hour.items()}),
        )
    return removed
