"""Manage my pledge: a signed link mailed to the pledge's address lets its person change or withdraw it.

Asking for a link answers the same whether or not the email has pledged; the mail goes out after
the answer, to the address the pledge was made with. The link expires after 24 hours and opening
it changes nothing (mail scanners open links): its page's buttons do. A withdrawn pledge leaves
the totals and keeps nothing personal, so the same email can pledge again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app

from ..database import utcnow, write_transaction
from ..emails import canonical_email
from ..errors import INVALID_FIELDS, InvalidInput
from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge
from ..schemas import CHOOSE_NEIGHBORHOOD
from .audit import record_action
from .campaigns import current_campaign, require_open
from .counts import count_pledge
from .links import LinkError, SignedLink

log = logging.getLogger(__name__)
SALT = "manage-pledge"
LINK_LIFETIME = timedelta(hours=24)
# Replaces a withdrawn pledge's email: unique per pledge (the schema needs it) and never a real mailbox.
WITHDRAWN_DOMAIN = "withdrawn.invalid"

SUBJECT = "Manage your porch light pledge / Administre su compromiso"
BODY = """Someone asked to manage the porch light pledge made with this email for {campaign}.
Open this link to change your neighborhood or withdraw your pledge:

{link}

The link works for 24 hours. If you did not ask for it, ignore this message: nothing changes.

---

Alguien pidió administrar el compromiso de luz de porche hecho con este correo para {campaign}.
Abra este enlace para cambiar su vecindario o retirar su compromiso:

{link}

El enlace vale 24 horas. Si usted no lo pidió, ignore este mensaje: nada cambia.
"""


class ManageLinkError(LinkError):
    """A link that is forged or out of date: its `reason` is "expired" or "invalid"."""


class PledgeWithdrawn(ValueError):
    """The pledge is out of the count for good (withdrawn, or removed by the mayor's office)."""


@dataclass(frozen=True)
class ManagedPledge:
    """What the link's page shows its person: their own pledge, never anyone else's."""

    public_id: str
    state: str  # "active", "withdrawn" (by its person) or "removed" (by the mayor's office)
    campaign_name: str
    campaign_open: bool
    kind: str
    neighborhood: str  # slug
    neighborhood_name: str
    name: str | None
    show_name: bool
    status: str


LINK = SignedLink(SALT, "/manage", LINK_LIFETIME, ManageLinkError)


def manage_link(public_id: str) -> str:
    return LINK.url(public_id)


def pledge_of_token(token: str) -> str:
    """The public id a link stands for; ManageLinkError when it is forged or out of date."""
    return LINK.public_id(token)


def pledge_to_mail(email: str) -> str | None:
    """The current campaign's pledge of this person that may still be managed, by public id.

    One query whether or not there is one, so the answer takes as long either way.
    """
    campaign = current_campaign()
    if campaign is None:
        return None
    public_id = db.session.scalar(
        db.select(Pledge.public_id).where(
            Pledge.campaign_id == campaign.id,
            Pledge.email_canonical == canonical_email(email),
            Pledge.status != "removed",
        )
    )
    db.session.rollback()
    return public_id


def send_manage_link(public_id: str) -> bool:
    """Mail the link to the address the pledge was made with; never raises for a mail failure."""
    return LINK.mail(public_id, SUBJECT, BODY)


def neighborhood_options() -> list[Neighborhood]:
    return list(db.session.scalars(db.select(Neighborhood).order_by(db.func.lower(Neighborhood.name))))


def is_withdrawn(pledge: Pledge) -> bool:
    return pledge.status == "removed" and pledge.email.endswith(f"@{WITHDRAWN_DOMAIN}")


def managed_pledge(public_id: str) -> ManagedPledge:
    row = db.session.execute(
        db.select(Pledge, Campaign, Neighborhood)
        .join(Campaign, Campaign.id == Pledge.campaign_id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(Pledge.public_id == public_id)
    ).first()
    if row is None:  # a well-signed id that names no pledge: the database was reset
        raise ManageLinkError("invalid")
    pledge, campaign, neighborhood = row
    state = "withdrawn" if is_withdrawn(pledge) else "removed" if pledge.status == "removed" else "active"
    return ManagedPledge(
        public_id=pledge.public_id,
        state=state,
        campaign_name=campaign.name,
        campaign_open=campaign.status_at(utcnow()) == "open",
        kind=pledge.kind,
        neighborhood=neighborhood.slug,
        neighborhood_name=neighborhood.name,
        name=pledge.name,
        show_name=pledge.show_name,
        status=pledge.status,
    )


def _pledge_for_update(public_id: str) -> Pledge:
    query = db.select(Pledge).where(Pledge.public_id == public_id)
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    pledge = db.session.scalars(query).first()
    if pledge is None:
        raise ManageLinkError("invalid")
    if pledge.status == "removed":
        raise PledgeWithdrawn()
    return pledge


def _name_status(pledge: Pledge, name: str | None, show_name: bool) -> str | None:
    """A name to be shown waits for review again only when it is new; an unchanged one keeps its verdict."""
    if not (show_name and name):
        return None
    if name == pledge.name and pledge.show_name and pledge.name_status:
        return pledge.name_status
    return "approved" if current_app.config["BUSINESS_NAMES"] == "immediate" else "pending"


def change_pledge(public_id: str, changes: dict[str, Any]) -> None:
    """Move a pledge to another neighborhood or kind (validated as schemas.PledgeIn); counts follow.

    Only while its campaign is open (409 otherwise); 422 for an unknown neighborhood.
    """
    with write_transaction():
        pledge = _pledge_for_update(public_id)
        require_open(db.session.get_one(Campaign, pledge.campaign_id), utcnow())
        neighborhood_id = db.session.scalar(
            db.select(Neighborhood.id).where(Neighborhood.slug == changes["neighborhood"])
        )
        if neighborhood_id is None:
            raise InvalidInput(INVALID_FIELDS, {"neighborhood": [CHOOSE_NEIGHBORHOOD]})
        name, show_name = changes.get("name"), bool(changes.get("show_name"))
        moved = (pledge.neighborhood_id, pledge.kind) != (neighborhood_id, changes["kind"])
        if moved and pledge.status == "counted":
            count_pledge(pledge.campaign_id, pledge.neighborhood_id, pledge.kind, pledge.created_at, -1)
            count_pledge(pledge.campaign_id, neighborhood_id, changes["kind"], pledge.created_at, +1)
        pledge.name_status = _name_status(pledge, name, show_name)
        pledge.neighborhood_id, pledge.kind = neighborhood_id, changes["kind"]
        pledge.name, pledge.show_name = name, show_name
        record_action("pledger", "pledge.change", public_id, None, {})


def withdraw_pledge(public_id: str) -> None:
    """Out of the totals for good, keeping nothing personal: the email is free to pledge again."""
    with write_transaction():
        pledge = _pledge_for_update(public_id)
        if pledge.status == "counted":
            count_pledge(pledge.campaign_id, pledge.neighborhood_id, pledge.kind, pledge.created_at, -1)
        pledge.status, pledge.pending_reason = "removed", None
        pledge.email = pledge.email_canonical = f"{public_id}@{WITHDRAWN_DOMAIN}"
        pledge.name, pledge.show_name, pledge.name_status, pledge.address_hash = None, False, None, None
        record_action("pledger", "pledge.withdraw", public_id, None, {})
