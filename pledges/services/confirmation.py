"""Email confirmation (PLEDGE_CONFIRMATION=email): a pending pledge counts once its link is used.

The link is signed and expires after 7 days. Opening it shows a page whose button
confirms (a POST), so mail scanners that only follow links confirm nothing. A
failed send keeps the pledge pending, to be retried; nothing is lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app

from ..database import utcnow, write_transaction
from ..extensions import db
from ..models import Pledge
from .counts import count_pledge
from .links import LinkError, SignedLink

log = logging.getLogger(__name__)
SALT = "pledge-confirmation"
LINK_LIFETIME = timedelta(days=7)

SUBJECT = "Confirm your porch light pledge / Confirme su compromiso"
BODY = """Thank you for pledging to leave your porch light on for {campaign}.
Open this link and press the button to confirm, so your pledge counts:

{link}

The link works for 7 days. If you did not pledge, ignore this message.

---

Gracias por comprometerse a dejar encendida la luz de su porche en {campaign}.
Abra este enlace y pulse el botón para confirmar, así su compromiso cuenta:

{link}

El enlace vale 7 días. Si usted no se comprometió, ignore este mensaje.
"""


class ConfirmationError(LinkError):
    """A link that is forged or out of date: its `reason` is "expired" or "invalid"."""


def confirmation_required() -> bool:
    return current_app.config["PLEDGE_CONFIRMATION"] == "email"


def mail_configured() -> bool:
    """Whether mail can be sent at all (SMTP_HOST is set)."""
    return bool(current_app.config["SMTP_HOST"])


LINK = SignedLink(SALT, "/confirm", LINK_LIFETIME, ConfirmationError)


def confirmation_link(public_id: str) -> str:
    return LINK.url(public_id)


def pledge_of_token(token: str) -> str:
    """The public id a link stands for; ConfirmationError when it is forged or out of date."""
    return LINK.public_id(token)


def send_confirmation(public_id: str) -> bool:
    """Mail the confirmation link; record the outcome. Never raises for a mail failure."""
    if not LINK.mail(public_id, SUBJECT, BODY):
        with write_transaction():
            db.session.execute(
                db.update(Pledge)
                .where(Pledge.public_id == public_id)
                .values(confirmation_failures=Pledge.confirmation_failures + 1)
            )
        return False
    with write_transaction():
        db.session.execute(
            db.update(Pledge).where(Pledge.public_id == public_id).values(confirmation_sent_at=utcnow())
        )
    return True


RESEND_AFTER = timedelta(hours=1)


def resend_if_due(public_id: str) -> None:
    """Pledging again with a pending email sends a fresh link, at most once an hour."""
    sent_at = db.session.scalar(db.select(Pledge.confirmation_sent_at).where(Pledge.public_id == public_id))
    db.session.rollback()
    if sent_at is None or utcnow() - sent_at > RESEND_AFTER:
        send_confirmation(public_id)


def unsent_confirmations() -> list[str]:
    """Pending pledges whose link has not gone out yet, and could still be used."""
    oldest = utcnow() - LINK_LIFETIME
    return list(
        db.session.scalars(
            db.select(Pledge.public_id).where(
                Pledge.status == "pending",
                Pledge.pending_reason == "confirm_email",
                Pledge.confirmation_sent_at.is_(None),
                Pledge.created_at > oldest,
            )
        )
    )


def retry_confirmations() -> tuple[int, int]:
    """Send every unsent confirmation again: (sent, failed)."""
    results = [send_confirmation(public_id) for public_id in unsent_confirmations()]
    return results.count(True), results.count(False)


def confirm_pledge(public_id: str) -> str:
    """Count a pending pledge: "confirmed"; "already" when it counts already (confirming twice is
    harmless); "not_counted" when it was withdrawn or removed meanwhile: the link counts nothing then."""
    with write_transaction():
        query = db.select(Pledge).where(Pledge.public_id == public_id)
        if db.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        pledge = db.session.scalars(query).first()
        if pledge is None:
            raise ConfirmationError("invalid")
        if pledge.status == "pending" and pledge.pending_reason == "confirm_email":
            pledge.confirmed_at = utcnow()
            pledge.status, pledge.pending_reason = "counted", None
            count_pledge(pledge.campaign_id, pledge.neighborhood_id, pledge.kind, pledge.created_at, +1)
            return "confirmed"
        return "already" if pledge.status == "counted" else "not_counted"
