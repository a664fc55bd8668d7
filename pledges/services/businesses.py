"""The wall of businesses that chose to be shown by name, once the mayor's office approved the name."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge
from .cursors import Position, older_than


@dataclass(frozen=True)
class ShownBusiness:
    name: str
    neighborhood: str  # slug
    neighborhood_name: str
    created_at: datetime
    pledge_id: int  # internal: only ever inside an opaque cursor


def shown_businesses(
    campaign: Campaign, limit: int = 60, after: Position | None = None
) -> list[ShownBusiness]:
    """Counted business pledges whose owners asked to be shown and whose names were approved, newest first.

    BUSINESS_NAMES=immediate stores names approved at once; a pending or rejected name is never shown.

    `after` is the (created_at, id) of the last one already seen: pages stay stable while pledges arrive.
    """
    query = (
        db.select(Pledge.name, Neighborhood.slug, Neighborhood.name, Pledge.created_at, Pledge.id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.show_name == True,  # noqa: E712 - "= 1" matches the partial index on SQLite
            Pledge.kind == "business",
            Pledge.status == "counted",
            # Checked on the rows the partial index ix_pledges_shown finds: it stays the index used.
            Pledge.name_status == "approved",
        )
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(limit)
    )
    query = query.where(older_than(Pledge.created_at, Pledge.id, after))
    return [ShownBusiness(*row) for row in db.session.execute(query)]
