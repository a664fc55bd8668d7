"""Finding campaigns by slug or as `current`."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l

from ..database import utcnow
from ..errors import CampaignClosed, NotFound
from ..extensions import db
from ..models import Campaign

CURRENT = "current"


def all_campaigns() -> list[Campaign]:
    return list(db.session.scalars(db.select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id)))


def current_campaign(now: datetime | None = None) -> Campaign | None:
    """The open campaign (the one that ends soonest if several), else the most recent one."""
    now = now or utcnow()
    open_campaign = db.session.scalars(
        db.select(Campaign)
        .where(Campaign.starts_at <= now, Campaign.ends_at > now)
        .order_by(Campaign.ends_at, Campaign.id)
        .limit(1)
    ).first()
    if open_campaign is not None:
        return open_campaign
    return db.session.scalars(
        db.select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id.desc()).limit(1)
    ).first()


def find_campaign(ref: str) -> Campaign:
    """A campaign by slug, or `current`; NotFound when there is none."""
    campaign = (
        current_campaign()
        if ref == CURRENT
        else db.session.scalars(db.select(Campaign).where(Campaign.slug == ref)).first()
    )
    if campaign is None:
        raise NotFound(_l("There is no campaign '%(ref)s'.", ref=ref))
    return campaign


def require_open(campaign: Campaign, now: datetime) -> None:
    status = campaign.status_at(now)
    if status == "upcoming":
        raise CampaignClosed(_l("%(name)s has not opened for pledges yet.", name=campaign.name))
    if status == "closed":
        raise CampaignClosed(_l("%(name)s is closed; it takes no more pledges.", name=campaign.name))
