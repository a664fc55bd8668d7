"""Forgetting personal data once a campaign is long over, while keeping its counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import literal

from ..database import utcnow, write_transaction
from ..extensions import db
from ..models import Campaign, Pledge
from .audit import record_action

ANONYMOUS_DOMAIN = "anonymized.invalid"


def campaigns_to_anonymize(after_days: int, now: datetime | None = None) -> list[Campaign]:
    """Campaigns that closed more than `after_days` days ago (early closes included)."""
    cutoff = (now or utcnow()) - timedelta(days=after_days)
    campaigns = db.session.scalars(db.select(Campaign).order_by(Campaign.ends_at))
    return [c for c in campaigns if min(c.ends_at, c.closed_at or c.ends_at) < cutoff]


def anonymize_campaign(campaign: Campaign, actor: str = "cli") -> int:
    """Replace every pledge's email, name and address hash. Counts, kinds and times stay.

    Emails become <public id>@anonymized.invalid: unique per pledge, as the schema needs.
    """
    with write_transaction():
        still_personal = (
            Pledge.address_hash.is_not(None)
            | Pledge.name.is_not(None)
            | ~Pledge.email.like(f"%@{ANONYMOUS_DOMAIN}")
        )
        personal = (Pledge.campaign_id == campaign.id) & still_personal
        changed = db.session.execute(
            db.update(Pledge)
            .where(personal)
            .values(
                email=Pledge.public_id + literal(f"@{ANONYMOUS_DOMAIN}"),
                email_canonical=Pledge.public_id + literal(f"@{ANONYMOUS_DOMAIN}"),
                name=None,
                show_name=False,
                name_status=None,
                address_hash=None,
            )
        ).rowcount
        record_action(actor, "campaign.anonymize", campaign.slug, None, {"pledges": changed})
    return changed
