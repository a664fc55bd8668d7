"""Signed, expiring links mailed to a pledge's own address: to confirm it, or to manage it."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..extensions import db
from ..mail import send_mail
from ..models import Campaign, Pledge

log = logging.getLogger(__name__)


class LinkError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "expired" or "invalid"


@dataclass(frozen=True)
class SignedLink:
    """A link for one purpose (its salt) under one path, signed with SECRET_KEY, valid for `lifetime`."""

    salt: str
    path: str
    lifetime: timedelta
    error: type[LinkError] = LinkError

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=self.salt)

    def url(self, public_id: str) -> str:
        return f"{current_app.config['PUBLIC_URL']}{self.path}/{self._serializer().dumps(public_id)}"

    def public_id(self, token: str) -> str:
        """The public id the link stands for; `error` when it is out of date or forged."""
        try:
            return self._serializer().loads(token, max_age=int(self.lifetime.total_seconds()))
        except SignatureExpired as error:
            raise self.error("expired") from error
        except BadSignature as error:
            raise self.error("invalid") from error

    def mail(self, public_id: str, subject: str, body: str) -> bool:
        """Mail the link to the address the pledge was made with (`body` takes {campaign} and {link}).

        Never raises for a mail failure: False, logged with the public id only, never the address.
        """
        email, campaign = db.session.execute(
            db.select(Pledge.email, Campaign.name)
            .join(Campaign, Campaign.id == Pledge.campaign_id)
            .where(Pledge.public_id == public_id)
        ).one()
        db.session.rollback()
        try:
            send_mail(email, subject, body.format(campaign=campaign, link=self.url(public_id)))
        except (OSError, smtplib.SMTPException) as error:
            log.warning("%s mail for pledge %s failed: %s", self.salt, public_id, type(error).__name__)
            return False
        return True
