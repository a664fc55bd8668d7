"""Finding campaigns by slug or as `current`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import lazy_gettext as _l

from ..database import utcnow, write_transaction
from ..errors import INVALID_FIELDS, CampaignClosed, InvalidInput, NotFound
from ..extensions import db
from ..models import Campaign
from ..snapshots import CAMPAIGNS, snapshot
from .audit import record_action

CURRENT = "current"


def all_campaigns() -> list[Campaign]:
    return list(db.session.scalars(db.select(Campaign).order_by(Campaign.starts_at.desc(), Campaign.id)))


def current_campaign(now: datetime | None = None) -> Campaign | None:
    """The open campaign (the one that ends soonest if several), else the most recent one.

    Open as Campaign.status_at says: started, not ended, and not closed early.
    """
    now = now or utcnow()
    open_campaign = db.session.scalars(
        db.select(Campaign)
        .where(
            Campaign.starts_at <= now,
            Campaign.ends_at > now,
            db.or_(Campaign.closed_at.is_(None), Campaign.closed_at > now),
        )
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


@dataclass(frozen=True)
class CampaignFacts:
    """What taking a pledge needs to know of its campaign, kept between requests (snapshots.py)."""

    id: int
    slug: str
    name: str
    starts_at: datetime
    ends_at: datetime
    closed_at: datetime | None

    status_at = Campaign.status_at


def campaign_facts(ref: str) -> CampaignFacts:
    """find_campaign, from this process's copy at most SNAPSHOT_SECONDS old."""

    def read() -> CampaignFacts:
        c = find_campaign(ref)
        return CampaignFacts(c.id, c.slug, c.name, c.starts_at, c.ends_at, c.closed_at)

    return snapshot((CAMPAIGNS, ref), read)


def require_open(campaign: Campaign | CampaignFacts, now: datetime) -> None:
    status = campaign.status_at(now)
    if status == "upcoming":
        raise CampaignClosed(_l("%(name)s has not opened for pledges yet.", name=campaign.name))
    if status == "closed":
        raise CampaignClosed(_l("%(name)s is closed; it takes no more pledges.", name=campaign.name))


SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}[a-z0-9]$")
EDITABLE = ("name", "city", "timezone", "starts_at", "ends_at", "goal")


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[Any]] = {}
    if "slug" in values and (values["slug"] == CURRENT or not SLUG.match(values["slug"] or "")):
        errors["slug"] = [_l("Use 2 to 64 lower-case letters, digits and hyphens (not 'current').")]
    if "timezone" in values:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = [_l("Use a time zone name such as America/New_York.")]
    if values.get("goal") is not None and values["goal"] < 1:
        errors["goal"] = [_l("A goal is at least 1, or null for none.")]
    if errors:
        raise InvalidInput(INVALID_FIELDS, errors)
    return values


def _check_window(campaign: Campaign) -> None:
    if campaign.starts_at >= campaign.ends_at:
        raise InvalidInput(INVALID_FIELDS, {"ends_at": [_l("A campaign must end after it starts.")]})


def create_campaign(values: dict[str, Any], actor: str) -> Campaign:
    """A new campaign (slug, name, city, timezone, starts_at, ends_at, goal?)."""
    values = _validated(values)
    with write_transaction():
        if db.session.scalars(db.select(Campaign).where(Campaign.slug == values["slug"])).first():
            raise InvalidInput(INVALID_FIELDS, {"slug": [_l("A campaign with this slug exists already.")]})
        campaign = Campaign(**{k: values.get(k) for k in ("slug", *EDITABLE)})
        _check_window(campaign)
        db.session.add(campaign)
        record_action(actor, "campaign.create", campaign.slug, None, _describe(values))
    return campaign


def update_campaign(slug: str, changes: dict[str, Any], actor: str, reason: str | None = None) -> Campaign:
    """Edit a campaign; `close: true` closes it early, `reopen: true` opens it again."""
    changes = _validated(dict(changes))
    # Every copy dropped (no topics named): which campaign `current` is, and the totals under that name.
    with write_transaction():
        campaign = db.session.scalars(db.select(Campaign).where(Campaign.slug == slug)).first()
        if campaign is None:
            raise NotFound(_l("There is no campaign '%(ref)s'.", ref=slug))
        for name in EDITABLE:
            if name in changes:
                setattr(campaign, name, changes[name])
        if changes.get("close"):
            campaign.closed_at = utcnow()
        if changes.get("reopen"):
            campaign.closed_at = None
        _check_window(campaign)
        record_action(actor, "campaign.update", slug, reason, _describe(changes))
    return campaign


def _describe(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}
