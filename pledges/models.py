"""Tables and row-level behaviour."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .database import UTCDateTime, utcnow
from .emails import canonical_email
from .extensions import db

KINDS = ("resident", "business")
# counted: in the totals now. pending: waiting, for the reason below. removed: by the mayor's office.
STATUSES = ("counted", "pending", "removed")
# Why a pending pledge waits: its emailed link to be used, or the mayor's office to release it.
PENDING_REASONS = ("confirm_email", "review")
SCOPES = ("read", "intake", "admin")

# A 64-bit key on PostgreSQL; SQLite's rowid is already 64-bit and must stay INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    goal: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when the mayor's office closes the campaign before its end; cleared to reopen it.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def status_at(self, now: datetime) -> str:
        if now >= self.ends_at or (self.closed_at is not None and now >= self.closed_at):
            return "closed"
        if now < self.starts_at:
            return "upcoming"
        return "open"

    @property
    def status(self) -> str:
        return self.status_at(utcnow())


class Neighborhood(db.Model):
    __tablename__ = "neighborhoods"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    # A GeoJSON geometry (Polygon or MultiPolygon) when the city's boundaries were imported.
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def _canonical_of_email(context: Any) -> str:
    return canonical_email(context.get_current_parameters()["email"])


class Pledge(db.Model):
    __tablename__ = "pledges"
    __table_args__ = (
        # One pledge per person per campaign: two spellings of one mailbox are one person.
        UniqueConstraint("campaign_id", "email_canonical"),
        # The wall of shown businesses: newest first, without reading every pledge. Partial, so
        # the many pledges that are not shown cost no index entry.
        Index(
            "ix_pledges_shown",
            "campaign_id",
            "created_at",
            "id",
            sqlite_where=text("show_name = 1"),
            postgresql_where=text("show_name"),
        ),
        # Abuse analysis and bulk removal by address within a time window (synthetic pledges have none).
        Index(
            "ix_pledges_address",
            "campaign_id",
            "address_hash",
            "created_at",
            sqlite_where=text("address_hash IS NOT NULL"),
            postgresql_where=text("address_hash IS NOT NULL"),
        ),
        # The queue: pending pledges by campaign and reason, counted without reading the rest.
        Index(
            "ix_pledges_pending",
            "campaign_id",
            "pending_reason",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        # What an intake key took, in a time window: the admin listing and bulk removal.
        Index(
            "ix_pledges_intake_key",
            "campaign_id",
            "intake_key_id",
            "created_at",
            sqlite_where=text("intake_key_id IS NOT NULL"),
            postgresql_where=text("intake_key_id IS NOT NULL"),
        ),
        CheckConstraint("kind IN ('resident', 'business')", name="kind"),
        CheckConstraint("status IN ('counted', 'pending', 'removed')", name="status"),
        CheckConstraint("name_status IN ('pending', 'approved', 'rejected')", name="name_status"),
        CheckConstraint(
            "(status = 'pending') = (pending_reason IS NOT NULL) "
            "AND (pending_reason IS NULL OR pending_reason IN ('confirm_email', 'review'))",
            name="pending_reason",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(24), unique=True, default=lambda: Pledge.new_public_id())
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("neighborhoods.id"))
    kind: Mapped[str] = mapped_column(String(16))
    email: Mapped[str] = mapped_column(String(320))  # as typed: where mail goes
    email_canonical: Mapped[str] = mapped_column(String(320), default=_canonical_of_email)
    name: Mapped[str | None] = mapped_column(String(120))
    show_name: Mapped[bool] = mapped_column(Boolean, default=False)
    # A name asked to be shown appears once the mayor's office approves it (BUSINESS_NAMES=review).
    name_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="counted")
    pending_reason: Mapped[str | None] = mapped_column(String(16))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    # HMAC of the client address with SECRET_KEY: links a burst of pledges without keeping the address.
    address_hash: Mapped[str | None] = mapped_column(String(64))
    # The intake key (a sign-up table, a block club's sheets) that took this pledge for its person.
    intake_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    # Email confirmation (PLEDGE_CONFIRMATION=email): a pending pledge counts once confirmed.
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmation_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @staticmethod
    def new_public_id() -> str:
        """An unguessable id, safe to show: it says nothing about order or volume."""
        return secrets.token_urlsafe(12)


class NeighborhoodCount(db.Model):
    """Counted pledges per (campaign, neighborhood, kind), kept in step with the pledges."""

    __tablename__ = "neighborhood_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    neighborhood_id: Mapped[int] = mapped_column(ForeignKey("neighborhoods.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HourlyCount(db.Model):
    """Counted pledges per (campaign, UTC hour, kind): the timeseries without scanning pledges."""

    __tablename__ = "hourly_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class ApiKey(db.Model):
    """A partner's key. Only a hash of the token is kept; the token itself is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("scope IN ('read', 'intake', 'admin')", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    scope: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    rate_limit: Mapped[str | None] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    TOKEN_PREFIX = "pl_"

    @classmethod
    def generate_token(cls) -> str:
        """256 random bits: a hash of it needs no salt or stretching to be safe to store."""
        return cls.TOKEN_PREFIX + secrets.token_urlsafe(32)

    @staticmethod
    def hash_token(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_hash, self.hash_token(token))

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class SharedPlace(db.Model):
    """An address the mayor's office knows is shared (a library, a church hall): no burst check there."""

    __tablename__ = "shared_places"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))


class WebSession(db.Model):
    """A signed-in /admin or /signup session, kept here so that signing out ends it everywhere.

    The browser's cookie holds the session's token; only its hash is stored.
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "admin" or "signup"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditEntry(db.Model):
    """One admin action: which key did what, to what, when and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # the key's name, or "cli"
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
