"""The mayor's office's controls over pledges: search, remove, restore and bulk removal.

Every change moves the stored counts in the same transaction and leaves an audit entry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func

from ..database import write_transaction
from ..errors import INVALID_FIELDS, InvalidInput, NotFound
from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge
from .audit import record_action
from .campaigns import find_campaign
from .counts import apply_deltas, count_pledge, tally_pledges
from .cursors import Position, older_than


@dataclass(frozen=True)
class PledgeFilter:
    campaign: str | None = None
    neighborhood: str | None = None
    kind: str | None = None
    status: str | None = None
    q: str | None = None  # a substring of the email or the name
    since: datetime | None = None
    until: datetime | None = None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


PledgeRow = tuple[Pledge, str, str]  # the pledge, its campaign's slug, its neighborhood's slug


def _with_slugs() -> Any:
    return (
        db.select(Pledge, Campaign.slug, Neighborhood.slug)
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
    )


def pledge_row(public_id: str) -> PledgeRow:
    row = db.session.execute(_with_slugs().where(Pledge.public_id == public_id)).first()
    if row is None:
        raise NotFound(_l("There is no pledge '%(id)s'.", id=public_id))
    return row[0], row[1], row[2]


def search_pledges(filters: PledgeFilter, limit: int, after: Position | None = None) -> list[PledgeRow]:
    """Pledges with their personal data, newest first."""
    query = (
        _with_slugs()
        .where(older_than(Pledge.created_at, Pledge.id, after))
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(limit)
    )
    if filters.campaign:
        query = query.where(Pledge.campaign_id == find_campaign(filters.campaign).id)
    if filters.neighborhood:
        query = query.where(Neighborhood.slug == filters.neighborhood)
    if filters.kind:
        query = query.where(Pledge.kind == filters.kind)
    if filters.status:
        query = query.where(Pledge.status == filters.status)
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            Pledge.email.like(pattern, escape="\\") | func.lower(Pledge.name).like(pattern, escape="\\")
        )
    if filters.since:
        query = query.where(Pledge.created_at >= filters.since)
    if filters.until:
        query = query.where(Pledge.created_at < filters.until)
    return [(row[0], row[1], row[2]) for row in db.session.execute(query)]


def _pledge_for_update(public_id: str) -> Pledge:
    query = db.select(Pledge).where(Pledge.public_id == public_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    pledge = db.session.scalars(query).first()
    if pledge is None:
        raise NotFound(_l("There is no pledge '%(id)s'.", id=public_id))
    return pledge


def change_status(public_id: str, to_status: str, reason: str, actor: str, action: str) -> PledgeRow:
    """Move one pledge to `to_status`; its count follows in the same transaction."""
    with write_transaction():
        pledge = _pledge_for_update(public_id)
        before = pledge.status
        delta = (to_status == "counted") - (before == "counted")
        if before != to_status:
            pledge.status = to_status
            if delta:
                count_pledge(
                    pledge.campaign_id, pledge.neighborhood_id, pledge.kind, pledge.created_at, delta
                )
        record_action(actor, action, public_id, reason, {"from": before, "to": to_status})
    return pledge_row(public_id)


def remove_pledge(public_id: str, reason: str, actor: str) -> PledgeRow:
    return change_status(public_id, "removed", reason, actor, "pledge.remove")


def restore_pledge(public_id: str, reason: str, actor: str) -> PledgeRow:
    """Back into the count: for a removed pledge, or a held one an admin releases."""
    return change_status(public_id, "counted", reason, actor, "pledge.restore")


@dataclass(frozen=True)
class BulkCriteria:
    campaign: str
    since: datetime
    until: datetime
    address_hash: str | None = None
    email_domain: str | None = None


def bulk_remove(criteria: BulkCriteria, reason: str, actor: str, dry_run: bool) -> dict[str, Any]:
    """Remove every pledge from one address hash or email domain within a time window.

    A dry run counts them and changes nothing.
    """
    if bool(criteria.address_hash) == bool(criteria.email_domain):
        message = _l("Give either an address_hash or an email_domain.")
        raise InvalidInput(INVALID_FIELDS, {"address_hash": [message], "email_domain": [message]})
    if criteria.since >= criteria.until:
        raise InvalidInput(INVALID_FIELDS, {"until": [_l("The window must end after it starts.")]})
    with write_transaction():
        campaign = find_campaign(criteria.campaign)
        matching = [
            Pledge.campaign_id == campaign.id,
            Pledge.created_at >= criteria.since,
            Pledge.created_at < criteria.until,
            Pledge.status != "removed",
        ]
        if criteria.address_hash:
            matching.append(Pledge.address_hash == criteria.address_hash)
        else:
            domain = criteria.email_domain.lower().lstrip("@")
            matching.append(Pledge.email.like(f"%@{_like(domain)[1:-1]}", escape="\\"))
        matched = db.session.scalar(db.select(func.count()).select_from(Pledge).where(*matching)) or 0
        result = {"campaign": campaign.slug, "matched": matched, "removed": 0, "dry_run": dry_run}
        if dry_run or not matched:
            db.session.rollback()
            return result
        by_neighborhood, by_hour = tally_pledges(*matching, Pledge.status == "counted")
        db.session.execute(db.update(Pledge).where(*matching).values(status="removed"))
        apply_deltas(
            campaign.id,
            Counter({k: -n for k, n in by_neighborhood.items()}),
            Counter({k: -n for k, n in by_hour.items()}),
        )
        details = {
            "address_hash": criteria.address_hash,
            "email_domain": criteria.email_domain,
            "since": criteria.since.isoformat(),
            "until": criteria.until.isoformat(),
            "removed": matched,
        }
        record_action(actor, "pledge.bulk_remove", campaign.slug, reason, details)
        result["removed"] = matched
    return result
