"""The wall of businesses that chose to be shown by name."""

from __future__ import annotations

from dataclasses import dataclass

from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge


@dataclass(frozen=True)
class ShownBusiness:
    name: str
    neighborhood: str  # the neighborhood's name


def shown_businesses(campaign: Campaign, limit: int = 60) -> list[ShownBusiness]:
    """The newest counted business pledges whose owners asked to be shown, newest first."""
    rows = db.session.execute(
        db.select(Pledge.name, Neighborhood.name)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.show_name.is_(True),
            Pledge.kind == "business",
            Pledge.status == "counted",
        )
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(limit)
    )
    return [ShownBusiness(name, neighborhood) for name, neighborhood in rows]
