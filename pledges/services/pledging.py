"""Taking a pledge: validate, dedupe and count, in one transaction."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import Boolean, Connection, TextClause, bindparam, text

from ..database import UTCDateTime, retrying_write, utcnow
from ..emails import canonical_email
from ..errors import INVALID_FIELDS, InvalidInput
from ..extensions import db
from ..models import Neighborhood, Pledge, SharedPlace
from ..observability import PLEDGES
from ..schemas import CHOOSE_NEIGHBORHOOD
from ..snapshots import CAMPAIGNS, COUNTS, NEIGHBORHOODS, snapshot
from .campaigns import CampaignFacts, campaign_facts, require_open
from .confirmation import confirmation_required, mail_configured, resend_if_due, send_confirmation
from .counts import HourlyDeltas, NeighborhoodDeltas, apply_deltas, hour_of
from .group_commit import GroupCommit
from .keys import CallerKey


@dataclass(frozen=True)
class PledgeReceipt:
    """What the pledger is told: never their email or name.

    `status` is the truth: "counted" (in the totals now) or "pending" with its `pending_reason`
    ("confirm_email" or "review"). A duplicate's receipt is the first pledge's, and is answered
    with its id and status only.
    """

    id: str
    kind: str
    neighborhood: str
    status: str
    pending_reason: str | None
    created_at: datetime
    created: bool  # False when this email had already pledged in this campaign


def hash_address(address: str | None) -> str | None:
    """A keyed hash of the client address: the same address links pledges, but cannot be read back."""
    if not address:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, address.encode(), hashlib.sha256).hexdigest()


def record_pledge(
    campaign_ref: str,
    pledge: dict[str, Any],
    client_address: str | None = None,
    intake_key: CallerKey | None = None,
) -> PledgeReceipt:
    """Record a validated pledge (see schemas.PledgeIn) and count it, or say why it waits.

    The same email in the same campaign returns the first pledge, counted once,
    also when both requests race on different workers: the unique (campaign, email)
    constraint decides, and the pledge and its count commit together.

    A pledge waits ("pending") for its emailed link when the campaign asks for
    confirmation, or when its address has sent more than BURST_LIMIT pledges in
    BURST_WINDOW_MINUTES and mail can be sent; past the burst without mail it waits
    for review by the mayor's office. Pledges taken by an intake key (a sign-up
    table, a block club's sheets), and those from TRUSTED_NETWORKS or a shared place
    the mayor's office marked, are not burst-checked.
    """
    # A sign-up table's pledges are its people's, not its address's: attributed to the key instead.
    address_hash = hash_address(client_address) if intake_key is None else None
    trusted = intake_key is not None or in_trusted_network(client_address)
    receipt = _record(campaign_ref, pledge, address_hash, trusted, intake_key)
    if receipt.pending_reason == "confirm_email":
        # A failure leaves the pledge pending, to be retried; it is never lost.
        (send_confirmation if receipt.created else resend_if_due)(receipt.id)
    return receipt


def in_trusted_network(address: str | None) -> bool:
    networks = current_app.config["TRUSTED_NETWORKS"]
    if not networks or not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def shared_places(campaign_id: int) -> frozenset[str]:
    """Address hashes the mayor's office marked as shared places for this campaign."""
    query = db.select(SharedPlace.address_hash).where(SharedPlace.campaign_id == campaign_id)
    return snapshot((CAMPAIGNS, "shared_places", campaign_id), lambda: frozenset(db.session.scalars(query)))


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


# PostgreSQL: one transaction at a time counts an address's burst, across workers and instances.
# Taken in key order, before any other lock of the transaction, so two batches cannot wait on each other.
LOCK_ADDRESSES = text(
    "SELECT pg_advisory_xact_lock(k) "
    "FROM (SELECT DISTINCT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
)


def address_lock_key(address_hash: str) -> int:
    return int(address_hash[:15], 16)  # 60 bits of the hash: a positive bigint


class BurstCheck:
    """Whether each pledge of a batch is one too many from its address (BURST_LIMIT in BURST_WINDOW_MINUTES).

    The pledges already stored are read once for the whole batch; those of the batch itself are
    counted as they are written, as a query per pledge would have seen them. Exact on SQLite (one
    writer at a time) and on PostgreSQL (each address's count is taken under its advisory lock).
    """

    def __init__(self, connection: Connection, pledges: list[NewPledge], now: datetime) -> None:
        self.limit: int = current_app.config["BURST_LIMIT"]
        window = timedelta(minutes=current_app.config["BURST_WINDOW_MINUTES"])
        addresses = ((p.campaign_id, p.address_hash) for p in pledges if p.checked)
        senders = list(dict.fromkeys(addresses))  # each once, in order
        self.sent: Counter[tuple[int, str]] = Counter()
        if not senders:
            return
        if connection.dialect.name == "postgresql":
            connection.execute(LOCK_ADDRESSES, {"keys": [address_lock_key(a) for _, a in senders]})
        values: dict[str, Any] = {"since": now - window, "limit": self.limit}
        for n, (campaign_id, address_hash) in enumerate(senders):
            values[f"campaign_id_{n}"], values[f"address_hash_{n}"] = campaign_id, address_hash
        for sender, recent in connection.execute(recent_from_addresses(len(senders)), values):
            self.sent[senders[sender]] = recent

    def over(self, pledge: NewPledge) -> bool:
        if not pledge.checked:
            return False
        return self.sent[(pledge.campaign_id, pledge.address_hash)] >= self.limit  # type: ignore[index]

    def written(self, pledge: NewPledge) -> None:
        if pledge.checked:
            self.sent[(pledge.campaign_id, pledge.address_hash)] += 1  # type: ignore[index]


def neighborhood_ids() -> dict[str, int]:
    """Neighborhood slug → id, from this process's copy at most SNAPSHOT_SECONDS old."""
    by_slug = db.select(Neighborhood.slug, Neighborhood.id)
    return snapshot((NEIGHBORHOODS, "ids"), lambda: dict(db.session.execute(by_slug).all()))


# The pledge's row, ON CONFLICT DO NOTHING so the unique (campaign, canonical email) constraint decides
# a race.
# Text, like the count upserts: compiled once, not on every pledge inside the write lock.
PLEDGE_INSERT = text(
    "INSERT INTO pledges (public_id, campaign_id, neighborhood_id, kind, email, email_canonical, name, "
    "show_name, name_status, created_at, status, pending_reason, synthetic, address_hash, intake_key_id, "
    "confirmation_failures) VALUES (:public_id, :campaign_id, :neighborhood_id, :kind, :email, "
    ":email_canonical, :name, :show_name, :name_status, :created_at, :status, :pending_reason, false, "
    ":address_hash, :intake_key_id, 0) "
    "ON CONFLICT (campaign_id, email_canonical) DO NOTHING RETURNING id"
).bindparams(bindparam("created_at", type_=UTCDateTime()), bindparam("show_name", type_=Boolean()))


@dataclass(frozen=True)
class NewPledge:
    """A validated pledge on its way to the database, with what was looked up for it."""

    campaign_id: int
    neighborhood_id: int
    neighborhood_slug: str
    kind: str
    email: str
    email_canonical: str
    name: str | None
    show_name: bool
    address_hash: str | None
    intake_key_id: int | None
    checked: bool  # whether the burst check applies: an address that is not trusted or shared


def _record(
    campaign_ref: str,
    pledge: dict[str, Any],
    address_hash: str | None,
    trusted: bool,
    intake_key: CallerKey | None,
) -> PledgeReceipt:
    # Reads first, outside the write lock (it is held only for what must be atomic), and from this
    # process's copies: the campaign and the neighborhoods seldom change, pledges come by the thousand.
    campaign = open_campaign(campaign_ref)
    new = prepare_pledge(campaign.id, pledge, address_hash, trusted, intake_key)
    receipt, stored_as = pledge_writer().submit(new)
    PLEDGES.labels(stored_as).inc()
    return receipt


def open_campaign(campaign_ref: str) -> CampaignFacts:
    """The campaign a pledge is for: 404 when there is none, 409 when it is not open."""
    campaign = campaign_facts(campaign_ref)
    require_open(campaign, utcnow())
    return campaign


def prepare_pledge(
    campaign_id: int,
    pledge: dict[str, Any],
    address_hash: str | None,
    trusted: bool,
    intake_key: CallerKey | None,
) -> NewPledge:
    """A validated pledge (schemas.PledgeIn) with what writing it needs; 422 for an unknown neighborhood."""
    neighborhood_id = neighborhood_ids().get(pledge["neighborhood"])
    if neighborhood_id is None:
        raise InvalidInput(INVALID_FIELDS, {"neighborhood": [CHOOSE_NEIGHBORHOOD]})
    return NewPledge(
        campaign_id=campaign_id,
        neighborhood_id=neighborhood_id,
        neighborhood_slug=pledge["neighborhood"],
        kind=pledge["kind"],
        email=pledge["email"],
        email_canonical=canonical_email(pledge["email"]),
        name=pledge.get("name"),
        show_name=bool(pledge.get("show_name")),
        address_hash=address_hash,
        intake_key_id=intake_key.id if intake_key is not None else None,
        checked=address_hash is not None and not trusted and address_hash not in shared_places(campaign_id),
    )


def store_pledges(
    pledges: list[NewPledge], then: Callable[[list[tuple[PledgeReceipt, str]]], None] | None = None
) -> list[tuple[PledgeReceipt, str]]:
    """Write many prepared pledges in one transaction (a paper sheet): all of them, or none.

    Answers as the group commit does: each pledge's receipt and how it was stored; `then` is given
    those answers inside the same transaction (to audit them). Confirmation mail is not sent from
    here: `pledges send-confirmations` sends what is unsent.
    """

    def write() -> list[tuple[PledgeReceipt, str]]:
        answers = _write(pledges)
        if then is not None:
            then(answers)
        return answers

    answers = retrying_write(write, touches=(COUNTS,))
    for _, stored_as in answers:
        PLEDGES.labels(stored_as).inc()
    return answers


def pledge_writer() -> GroupCommit[NewPledge, tuple[PledgeReceipt, str]]:
    """This app's group commit for pledges (one per process: see group_commit.py)."""
    writer = current_app.extensions.get("pledge_writer")
    if writer is None:
        writer = current_app.extensions.setdefault("pledge_writer", GroupCommit(_write, touches=(COUNTS,)))
    return writer


def _write(pledges: list[NewPledge]) -> list[tuple[PledgeReceipt, str]]:
    """Store a batch of pledges and count them, inside the caller's write transaction.

    Each is answered with its receipt and how it was stored: counted, confirm_email, review,
    or duplicate (this email had already pledged: the receipt is the first pledge's).
    """
    answers: dict[int, tuple[PledgeReceipt, str]] = {}
    by_neighborhood: defaultdict[int, NeighborhoodDeltas] = defaultdict(Counter)
    by_hour: defaultdict[int, HourlyDeltas] = defaultdict(Counter)
    confirm_all = confirmation_required()
    can_mail = mail_configured()
    # The session's own connection, in its transaction; Core statements skip the ORM's work per call.
    connection = db.session.connection()
    burst = BurstCheck(connection, pledges, utcnow())
    names_shown_at_once = current_app.config["BUSINESS_NAMES"] == "immediate"
    # Rows in (campaign, email) order: two batches that share an email cannot wait on each other.
    order = sorted(range(len(pledges)), key=lambda i: (pledges[i].campaign_id, pledges[i].email_canonical))
    for index in order:
        pledge = pledges[index]
        now = utcnow()
        if confirm_all or (burst.over(pledge) and can_mail):
            status, reason = "pending", "confirm_email"
        elif burst.over(pledge):
            status, reason = "pending", "review"
        else:
            status, reason = "counted", None
        public_id = Pledge.new_public_id()
        inserted = connection.execute(
            PLEDGE_INSERT,
            {
                "public_id": public_id,
                "campaign_id": pledge.campaign_id,
                "neighborhood_id": pledge.neighborhood_id,
                "kind": pledge.kind,
                "email": pledge.email,
                "email_canonical": pledge.email_canonical,
                "name": pledge.name,
                "show_name": pledge.show_name,
                "name_status": name_status(pledge, names_shown_at_once),
                "created_at": now,
                "status": status,
                "pending_reason": reason,
                "address_hash": pledge.address_hash,
                "intake_key_id": pledge.intake_key_id,
            },
        ).scalar()
        if inserted is None:
            answers[index] = (_existing_receipt(pledge.campaign_id, pledge.email_canonical), "duplicate")
            continue
        burst.written(pledge)
        if status == "counted":
            by_neighborhood[pledge.campaign_id][(pledge.neighborhood_id, pledge.kind)] += 1
            by_hour[pledge.campaign_id][(hour_of(now), pledge.kind)] += 1
        receipt = PledgeReceipt(
            id=public_id,
            kind=pledge.kind,
            neighborhood=pledge.neighborhood_slug,
            status=status,
            pending_reason=reason,
            created_at=now,
            created=True,
        )
        answers[index] = (receipt, reason or status)
    for campaign_id in sorted(by_neighborhood):
        apply_deltas(campaign_id, by_neighborhood[campaign_id], by_hour[campaign_id])
    return [answers[index] for index in range(len(pledges))]


def public_status(status: str, pending_reason: str | None) -> tuple[str, str | None]:
    """What a stored pledge is told as: a removed one waits on the mayor's office, it is not counted."""
    if status == "removed":
        return "pending", "review"
    return status, pending_reason


def name_status(pledge: NewPledge, shown_at_once: bool) -> str | None:
    """A name asked to be shown waits for the mayor's office, unless BUSINESS_NAMES=immediate."""
    if not (pledge.show_name and pledge.name):
        return None
    return "approved" if shown_at_once else "pending"


def _existing_receipt(campaign_id: int, email_canonical: str) -> PledgeReceipt:
    first, slug = db.session.execute(
        db.select(Pledge, Neighborhood.slug)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(Pledge.campaign_id == campaign_id, Pledge.email_canonical == email_canonical)
    ).one()
    status, reason = public_status(first.status, first.pending_reason)
    return PledgeReceipt(
        id=first.public_id,
        kind=first.kind,
        neighborhood=slug,
        status=status,
        pending_reason=reason,
        created_at=first.created_at,
        created=False,
    )
