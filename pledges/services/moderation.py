"""The mayor's office's controls over pledges: search, remove, restore and bulk removal.

Every change moves the stored counts in the same transaction and leaves an audit entry.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import func

from ..database import write_transaction
from ..errors import INVALID_FIELDS, InvalidInput, NotFound
from ..extensions import db
from ..models import PENDING_REASONS, ApiKey, Campaign, Neighborhood, Pledge, SharedPlace
from .audit import record_action
from .campaigns import find_campaign
from .counts import apply_deltas, count_pledge, tally_pledges
from .cursors import Position, older_than
from .manage import WITHDRAWN_DOMAIN
from .privacy import ANONYMOUS_DOMAIN


@dataclass(frozen=True)
class PledgeFilter:
    campaign: str | None = None
    neighborhood: str | None = None
    kind: str | None = None
    status: str | None = None
    pending_reason: str | None = None
    intake_key: str | None = None  # the name of the intake key that took the pledges
    q: str | None = None  # a substring of the email or the name
    since: datetime | None = None
    until: datetime | None = None


def as_utc(moment: datetime) -> datetime:
    """An aggregate's timestamp (min, max) comes back naive from SQLite: it is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The pledge, its campaign's slug, its neighborhood's slug, and the name of the intake key that took it.
PledgeRow = tuple[Pledge, str, str, str | None]


def _with_slugs() -> Any:
    return (
        db.select(Pledge, Campaign.slug, Neighborhood.slug, ApiKey.name)
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .outerjoin(ApiKey, ApiKey.id == Pledge.intake_key_id)
    )


def pledge_row(public_id: str) -> PledgeRow:
    row = db.session.execute(_with_slugs().where(Pledge.public_id == public_id)).first()
    if row is None:
        raise NotFound(_l("There is no pledge '%(id)s'.", id=public_id))
    return row[0], row[1], row[2], row[3]


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
    if filters.pending_reason:
        query = query.where(Pledge.pending_reason == filters.pending_reason)
    if filters.intake_key:
        query = query.where(ApiKey.name == filters.intake_key)
    if filters.q:
        pattern = _like(filters.q)
        query = query.where(
            Pledge.email.like(pattern, escape="\\") | func.lower(Pledge.name).like(pattern, escape="\\")
        )
    if filters.since:
        query = query.where(Pledge.created_at >= filters.since)
    if filters.until:
        query = query.where(Pledge.created_at < filters.until)
    return [(row[0], row[1], row[2], row[3]) for row in db.session.execute(query)]


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
        if to_status == "counted" and nothing_personal_left(pledge):
            message = _l("This pledge was withdrawn by its person or anonymized: it cannot count again.")
            raise InvalidInput(message, {"pledge": [message]})
        before = pledge.status
        delta = (to_status == "counted") - (before == "counted")
        if before != to_status:
            pledge.status, pledge.pending_reason = to_status, None
            if delta:
                count_pledge(
                    pledge.campaign_id, pledge.neighborhood_id, pledge.kind, pledge.created_at, delta
                )
        record_action(actor, action, public_id, reason, {"from": before, "to": to_status})
    return pledge_row(public_id)


def nothing_personal_left(pledge: Pledge) -> bool:
    """A pledge withdrawn by its person, or anonymized: its email is a placeholder, it is no one's now
    (and its person may have pledged again)."""
    return pledge.email.endswith((f"@{WITHDRAWN_DOMAIN}", f"@{ANONYMOUS_DOMAIN}"))


def remove_pledge(public_id: str, reason: str, actor: str) -> PledgeRow:
    return change_status(public_id, "removed", reason, actor, "pledge.remove")


def restore_pledge(public_id: str, reason: str, actor: str) -> PledgeRow:
    """Into the count: a removed pledge restored, or a pending one the mayor's office releases."""
    return change_status(public_id, "counted", reason, actor, "pledge.restore")


@dataclass(frozen=True)
class BulkCriteria:
    """The pledges of one campaign in [since, until) from one address hash, intake key or email domain."""

    campaign: str
    since: datetime
    until: datetime
    address_hash: str | None = None
    intake_key: str | None = None  # the key's name
    email_domain: str | None = None
    pending_reason: str | None = None  # only the pledges waiting for this reason


def _matching(criteria: BulkCriteria, campaign: Campaign) -> list[Any]:
    """The conditions that pick the criteria's pledges; 422 unless exactly one source is named."""
    sources = {"address_hash": criteria.address_hash, "intake_key": criteria.intake_key}
    sources["email_domain"] = criteria.email_domain
    named = [name for name, value in sources.items() if value]
    if len(named) != 1:
        message = _l("Give exactly one of: %(fields)s.", fields=", ".join(sources))
        raise InvalidInput(INVALID_FIELDS, {name: [message] for name in sources})
    if criteria.since >= criteria.until:
        raise InvalidInput(INVALID_FIELDS, {"until": [_l("The window must end after it starts.")]})
    matching = [
        Pledge.campaign_id == campaign.id,
        Pledge.created_at >= criteria.since,
        Pledge.created_at < criteria.until,
        Pledge.status != "removed",
    ]
    if criteria.pending_reason:
        matching += [Pledge.status == "pending", Pledge.pending_reason == criteria.pending_reason]
    if criteria.address_hash:
        matching.append(Pledge.address_hash == criteria.address_hash)
    elif criteria.intake_key:
        key_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.name == criteria.intake_key))
        if key_id is None:
            message = _l("There is no key named '%(name)s'.", name=criteria.intake_key)
            raise InvalidInput(INVALID_FIELDS, {"intake_key": [message]})
        matching.append(Pledge.intake_key_id == key_id)
    else:
        domain = criteria.email_domain.lower().lstrip("@")  # type: ignore[union-attr]
        matching.append(Pledge.email.like(f"%@{_like(domain)[1:-1]}", escape="\\"))
    return matching


def _bulk_change(criteria: BulkCriteria, to_status: str, reason: str, actor: str, dry_run: bool) -> int:
    """Move every matching pledge to `to_status` in one transaction, counts and an audit entry with it.

    Returns how many match; a dry run counts them and changes nothing.
    """
    with write_transaction():
        campaign = find_campaign(criteria.campaign)
        matching = _matching(criteria, campaign)
        if to_status == "counted":
            matching.append(Pledge.status != "counted")
        # The rows are fixed (and, on PostgreSQL, locked) first: what is counted is what is changed,
        # whatever confirms, moves or arrives meanwhile.
        locking = db.select(Pledge.id).where(*matching)
        if db.session.get_bind().dialect.name == "postgresql":
            locking = locking.with_for_update()
        matching.append(Pledge.id.in_(list(db.session.scalars(locking))))
        matched = db.session.scalar(db.select(func.count()).select_from(Pledge).where(*matching)) or 0
        if dry_run or not matched:
            db.session.rollback()
            return matched
        # Released pledges enter the count; removed ones leave it if they were in it.
        changing = matching if to_status == "counted" else [*matching, Pledge.status == "counted"]
        by_neighborhood, by_hour = tally_pledges(*changing)
        sign = 1 if to_status == "counted" else -1
        db.session.execute(
            db.update(Pledge).where(*matching).values(status=to_status, pending_reason=None),
            execution_options={"synchronize_session": False},
        )
        apply_deltas(
            campaign.id,
            Counter({k: sign * n for k, n in by_neighborhood.items()}),
            Counter({k: sign * n for k, n in by_hour.items()}),
        )
        details = {
            "address_hash": criteria.address_hash,
            "intake_key": criteria.intake_key,
            "email_domain": criteria.email_domain,
            "pending_reason": criteria.pending_reason,
            "since": criteria.since.isoformat(),
            "until": criteria.until.isoformat(),
            "matched": matched,
        }
        action = "pledge.bulk_release" if to_status == "counted" else "pledge.bulk_remove"
        record_action(actor, action, campaign.slug, reason, details)
    return matched


def bulk_remove(criteria: BulkCriteria, reason: str, actor: str, dry_run: bool) -> dict[str, Any]:
    """Remove every pledge from one address hash, intake key or email domain within a time window
    (only those waiting for review, when asked). A dry run counts them and changes nothing.
    """
    matched = _bulk_change(criteria, "removed", reason, actor, dry_run)
    slug = find_campaign(criteria.campaign).slug
    return {"campaign": slug, "matched": matched, "removed": 0 if dry_run else matched, "dry_run": dry_run}


def bulk_release(criteria: BulkCriteria, reason: str, actor: str, dry_run: bool) -> dict[str, Any]:
    """Count every pledge waiting (for review, unless another reason is named) from one address hash
    or intake key within a time window."""
    if criteria.email_domain:
        raise InvalidInput(INVALID_FIELDS, {"email_domain": [_l("Release by address or intake key.")]})
    criteria = replace(criteria, pending_reason=criteria.pending_reason or "review")
    matched = _bulk_change(criteria, "counted", reason, actor, dry_run)
    slug = find_campaign(criteria.campaign).slug
    return {"campaign": slug, "matched": matched, "released": 0 if dry_run else matched, "dry_run": dry_run}


@dataclass(frozen=True)
class ReviewSource:
    """Where a group of pledges waiting for review came from: an address hash or an intake key."""

    address_hash: str | None
    intake_key: str | None
    shared_place: bool
    pledges: int
    first_at: datetime
    last_at: datetime


def review_queue(campaign: Campaign) -> dict[str, Any]:
    """How many of the campaign's pledges wait, by reason, and those for review by where they came from."""
    waiting = dict.fromkeys(PENDING_REASONS, 0)
    for reason, n in db.session.execute(
        db.select(Pledge.pending_reason, func.count())
        .where(Pledge.campaign_id == campaign.id, Pledge.status == "pending")
        .group_by(Pledge.pending_reason)
    ):
        waiting[reason] = n
    shared = set(
        db.session.scalars(db.select(SharedPlace.address_hash).where(SharedPlace.campaign_id == campaign.id))
    )
    rows = db.session.execute(
        db.select(
            Pledge.address_hash,
            ApiKey.name,
            func.count(),
            func.min(Pledge.created_at),
            func.max(Pledge.created_at),
        )
        .outerjoin(ApiKey, ApiKey.id == Pledge.intake_key_id)
        .where(Pledge.campaign_id == campaign.id, Pledge.status == "pending")
        .where(Pledge.pending_reason == "review")
        .group_by(Pledge.address_hash, ApiKey.name)
        .order_by(func.count().desc())
    )
    sources = [
        ReviewSource(address, key, address in shared, n, as_utc(first), as_utc(last))
        for address, key, n, first, last in rows
    ]
    return {"campaign": campaign.slug, "waiting": waiting, "review_sources": sources}


def mark_shared_place(campaign_ref: str, address_hash: str, reason: str, actor: str) -> SharedPlace:
    """A known shared place (a library, a church hall) for the rest of the campaign: no burst check there."""
    with write_transaction():
        campaign = find_campaign(campaign_ref)
        place = db.session.get(SharedPlace, (campaign.id, address_hash))
        if place is None:
            place = SharedPlace(campaign_id=campaign.id, address_hash=address_hash, actor=actor)
            db.session.add(place)
            details = {"address_hash": address_hash}
            record_action(actor, "address.shared_place", campaign.slug, reason, details)
    db.session.refresh(place)
    return place
