"""Taking a pledge: validate, dedupe and count, in one transaction."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import Boolean, Connection, TextClause, bindparam, text

from ..database import UTCDateTime, utcnow
from ..errors import INVALID_FIELDS, InvalidInput
from ..extensions import db
from ..models import Neighborhood, Pledge
from ..observability import PLEDGES
from ..schemas import CHOOSE_NEIGHBORHOOD
from ..snapshots import COUNTS, NEIGHBORHOODS, snapshot
from .campaigns import campaign_facts, require_open
from .confirmation import confirmation_required, resend_if_due, send_confirmation
from .counts import HourlyDeltas, NeighborhoodDeltas, apply_deltas, hour_of
from .group_commit import GroupCommit


@dataclass(frozen=True)
class PledgeReceipt:
    """What the pledger is told: never their email or name."""

    id: str
    kind: str
    neighborhood: str
    status: str
    created_at: datetime
    created: bool  # False when this email had already pledged in this campaign


def hash_address(address: str | None) -> str | None:
    """A keyed hash of the client address: the same address links pledges, but cannot be read back."""
    if not address:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()


def record_pledge(
    campaign_ref: str, pledge: dict[str, Any], client_address: str | None = None
) -> PledgeReceipt:
    """Record a validated pledge (see schemas.PledgeIn) and count it.

    The same email in the same campaign returns the first pledge, counted once,
    also when both requests race on different workers: the unique (campaign, email)
    constraint decides, and the pledge and its count commit together.

    A pledge waits uncounted when the campaign asks for email confirmation
    ("pending"), or when its address sent a burst of pledges ("held", for an admin
    to release); both are answered like any other, so a bot learns nothing.
    """
    receipt = _record(campaign_ref, pledge, hash_address(client_address))
    if receipt.status == "pending":
        # A failure leaves the pledge pending, to be retried; it is never lost.
        (send_confirmation if receipt.created else resend_if_due)(receipt.id)
    return receipt


# How many pledges an address sent in the window, but never reading more than the limit's worth:
# one busy address (a campus, a carrier's NAT) must not make each batch it is in cost more.
# One bounded count per address, all of a batch's addresses in one statement.
RECENT_FROM_ADDRESS = (
    "SELECT {n} AS sender, count(*) AS recent FROM (SELECT 1 FROM pledges "
    "WHERE campaign_id = :campaign_id_{n} AND address_hash = :address_hash_{n} AND created_at >= :since "
    "LIMIT :limit) AS recent_{n}"
)


@lru_cache(maxsize=128)
def recent_from_addresses(addresses: int) -> TextClause:
    """The statement for a batch with this many distinct (campaign, address) pairs."""
    union = " UNION ALL ".join(RECENT_FROM_ADDRESS.format(n=n) for n in range(addresses))
    return text(union).bindparams(bindparam("since", type_=UTCDateTime()))


class BurstCheck:
    """Whether each pledge of a batch is one too many from its address (BURST_LIMIT in BURST_WINDOW_MINUTES).

    The pledges already stored are read once for the whole batch; those of the batch itself are
    counted as they are written, as a query per pledge would have seen them.
    """

    def __init__(self, connection: Connection, pledges: list[NewPledge], now: datetime) -> None:
        self.limit: int = current_app.config["BURST_LIMIT"]
        window = timedelta(minutes=current_app.config["BURST_WINDOW_MINUTES"])
        addresses = ((p.campaign_id, p.address_hash) for p in pledges if p.address_hash is not None)
        senders = list(dict.fromkeys(addresses))  # each once, in order
        self.sent: Counter[tuple[int, str]] = Counter()
        if not senders:
            return
        values: dict[str, Any] = {"since": now - window, "limit": self.limit}
        for n, (campaign_id, address_hash) in enumerate(senders):
            values[f"campaign_id_{n}"], values[f"address_hash_{n}"] = campaign_id, address_hash
        for sender, recent in connection.execute(recent_from_addresses(len(senders)), values):
            self.sent[senders[sender]] = recent

    def held(self, pledge: NewPledge) -> bool:
        if pledge.address_hash is None:
            return False
        return self.sent[(pledge.campaign_id, pledge.address_hash)] >= self.limit

    def written(self, pledge: NewPledge) -> None:
        if pledge.address_hash is not None:
            self.sent[(pledge.campaign_id, pledge.address_hash)] += 1


def neighborhood_ids() -> dict[str, int]:
    """Neighborhood slug → id, from this process's copy at most SNAPSHOT_SECONDS old."""
    by_slug = db.select(Neighborhood.slug, Neighborhood.id)
    return snapshot((NEIGHBORHOODS, "ids"), lambda: dict(db.session.execute(by_slug).all()))


# The pledge's row, ON CONFLICT DO NOTHING so the unique (campaign, email) constraint decides a race.
# Text, like the count upserts: compiled once, not on every pledge inside the write lock.
PLEDGE_INSERT = text(
    "INSERT INTO pledges (public_id, campaign_id, neighborhood_id, kind, email, name, show_name, "
    "created_at, status, synthetic, address_hash, confirmation_failures) VALUES (:public_id, "
    ":campaign_id, :neighborhood_id, :kind, :email, :name, :show_name, :created_at, :status, "
    "false, :address_hash, 0) ON CONFLICT (campaign_id, email) DO NOTHING RETURNING id"
).bindparams(bindparam("created_at", type_=UTCDateTime()), bindparam("show_name", type_=Boolean()))


@dataclass(frozen=True)
class NewPledge:
    """A validated pledge on its way to the database, with what was looked up for it."""

    campaign_id: int
    neighborhood_id: int
    neighborhood_slug: str
    kind: str
    email: str
    name: str | None
    show_name: bool
    address_hash: str | None


def _record(campaign_ref: str, pledge: dict[str, Any], address_hash: str | None) -> PledgeReceipt:
    # Reads first, outside the write lock (it is held only for what must be atomic), and from this
    # process's copies: the campaign and the neighborhoods seldom change, pledges come by the thousand.
    campaign = campaign_facts(campaign_ref)
    require_open(campaign, utcnow())
    neighborhood_id = neighborhood_ids().get(pledge["neighborhood"])
    if neighborhood_id is None:
        raise InvalidInput(INVALID_FIELDS, {"neighborhood": [CHOOSE_NEIGHBORHOOD]})
    new = NewPledge(
        campaign_id=campaign.id,
        neighborhood_id=neighborhood_id,
        neighborhood_slug=pledge["neighborhood"],
        kind=pledge["kind"],
        email=pledge["email"],
        name=pledge.get("name"),
        show_name=bool(pledge.get("show_name")),
        address_hash=address_hash,
    )
    receipt, stored_as = pledge_writer().submit(new)
    PLEDGES.labels(stored_as).inc()
    return receipt


def pledge_writer() -> GroupCommit[NewPledge, tuple[PledgeReceipt, str]]:
    """This app's group commit for pledges (one per process: see group_commit.py)."""
    writer = current_app.extensions.get("pledge_writer")
    if writer is None:
        writer = current_app.extensions.setdefault("pledge_writer", GroupCommit(_write, touches=(COUNTS,)))
    return writer


def _write(pledges: list[NewPledge]) -> list[tuple[PledgeReceipt, str]]:
    """Store a batch of pledges and count them, inside the caller's write transaction.

    Each is answered with its receipt and how it was stored: counted, pending, held, or
    duplicate (this email had already pledged: the receipt is the first pledge's).
    """
    answers: list[tuple[PledgeReceipt, str]] = []
    by_neighborhood: defaultdict[int, NeighborhoodDeltas] = defaultdict(Counter)
    by_hour: defaultdict[int, HourlyDeltas] = defaultdict(Counter)
    pending = confirmation_required()
    # The session's own connection, in its transaction; Core statements skip the ORM's work per call.
    connection = db.session.connection()
    burst = BurstCheck(connection, pledges, utcnow())
    for pledge in pledges:
        now = utcnow()
        status = "held" if burst.held(pledge) else "pending" if pending else "counted"
        public_id = Pledge.new_public_id()
        inserted = connection.execute(
            PLEDGE_INSERT,
            {
                "public_id": public_id,
                "campaign_id": pledge.campaign_id,
                "neighborhood_id": pledge.neighborhood_id,
                "kind": pledge.kind,
                "email": pledge.email,
                "name": pledge.name,
                "show_name": pledge.show_name,
                "created_at": now,
                "status": status,
                "address_hash": pledge.address_hash,
            },
        ).scalar()
        if inserted is None:
            answers.append((_existing_receipt(pledge.campaign_id, pledge.email), "duplicate"))
            continue
        burst.written(pledge)
        if status == "counted":
            by_neighborhood[pledge.campaign_id][(pledge.neighborhood_id, pledge.kind)] += 1
            by_hour[pledge.campaign_id][(hour_of(now), pledge.kind)] += 1
        receipt = PledgeReceipt(
            id=public_id,
            kind=pledge.kind,
            neighborhood=pledge.neighborhood_slug,
            status=public_status(status),
            created_at=now,
            created=True,
        )
        answers.append((receipt, status))
    for campaign_id, deltas in by_neighborhood.items():
        apply_deltas(campaign_id, deltas, by_hour[campaign_id])
    return answers


def public_status(status: str) -> str:
    """Held and removed pledges are answered as counted: moderation is not the pledger's to probe."""
    return "pending" if status == "pending" else "counted"


def _existing_receipt(campaign_id: int, email: str) -> PledgeReceipt:
    first, slug = db.session.execute(
        db.select(Pledge, Neighborhood.slug)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(Pledge.campaign_id == campaign_id, Pledge.email == email)
    ).one()
    return PledgeReceipt(
        id=first.public_id,
        kind=first.kind,
        neighborhood=slug,
        status=public_status(first.status),
        created_at=first.created_at,
        created=False,
    )
