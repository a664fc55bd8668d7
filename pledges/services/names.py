"""Business names asked to be shown: the mayor's office approves or rejects them, many at once.

A name's status never touches its pledge's count: a pledge counts (or waits) whatever happens to its name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l

from ..database import write_transaction
from ..errors import INVALID_FIELDS, InvalidInput
from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge
from .audit import record_action
from .campaigns import find_campaign
from .cursors import Position, older_than

DECISIONS = {"approve": "approved", "reject": "rejected"}
# Names are in none of the cached snapshots (the wall is read fresh): a decision drops none of them.
TOUCHES: tuple[str, ...] = ()


@dataclass(frozen=True)
class NameForReview:
    id: str  # the pledge's public id
    name: str
    campaign: str  # slug
    neighborhood: str  # slug
    neighborhood_name: str
    created_at: datetime
    status: str  # the name's: pending, approved or rejected
    pledge_status: str  # counted, pending or removed: unchanged by any decision on the name
    row_id: int  # internal: only ever inside an opaque cursor


def _names() -> Any:
    return (
        db.select(
            Pledge.public_id,
            Pledge.name,
            Campaign.slug,
            Neighborhood.slug,
            Neighborhood.name,
            Pledge.created_at,
            Pledge.name_status,
            Pledge.status,
            Pledge.id,
        )
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        # show_name first: the rows the partial index ix_pledges_shown holds, as on the wall.
        .where(Pledge.show_name == True, Pledge.kind == "business", Pledge.name_status.is_not(None))  # noqa: E712
    )


def names_for_review(
    status: str, campaign: str | None, limit: int, after: Position | None = None
) -> list[NameForReview]:
    """Business names asked to be shown, with the given status, newest first (in one campaign, or all)."""
    query = (
        _names()
        .where(Pledge.name_status == status, older_than(Pledge.created_at, Pledge.id, after))
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(limit)
    )
    if campaign:
        query = query.where(Pledge.campaign_id == find_campaign(campaign).id)
    return [NameForReview(*row) for row in db.session.execute(query)]


def decide_names(public_ids: list[str], decision: str, reason: str | None, actor: str) -> dict[str, Any]:
    """Approve or reject these names, all or none: an id that names no business asking to be shown
    changes nothing and is answered 422. Each name that changes gets an audit entry.
    """
    to_status = DECISIONS[decision]
    wanted = list(dict.fromkeys(public_ids))  # the same id twice is one decision
    with write_transaction(touches=TOUCHES):
        query = db.select(Pledge).where(
            Pledge.public_id.in_(wanted),
            Pledge.show_name == True,  # noqa: E712
            Pledge.kind == "business",
            Pledge.name_status.is_not(None),
        )
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        found = {pledge.public_id: pledge for pledge in db.session.scalars(query)}
        unknown = [public_id for public_id in wanted if public_id not in found]
        if unknown:
            message = _l(
                "No business asked to show its name under these ids: %(ids)s.",
                ids=", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else ""),
            )
            raise InvalidInput(INVALID_FIELDS, {"ids": [message]})
        changed = []
        for public_id in wanted:
            pledge = found[public_id]
            if pledge.name_status == to_status:
                continue
            record_action(
                actor, f"name.{decision}", public_id, reason, {"from": pledge.name_status, "to": to_status}
            )
            pledge.name_status = to_status
            changed.append(public_id)
    unchanged = len(wanted) - len(changed)
    return {"status": to_status, "changed": len(changed), "unchanged": unchanged, "ids": changed}


def pending_names(campaign: Campaign) -> int:
    """How many names in this campaign wait for a decision."""
    query = (
        db.select(db.func.count())
        .select_from(Pledge)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.show_name == True,  # noqa: E712
            Pledge.kind == "business",
            Pledge.name_status == "pending",
        )
    )
    return db.session.scalar(query) or 0
