"""The audit log: every admin action, by which key, when and why."""

from __future__ import annotations

from typing import Any

from ..extensions import db
from ..models import AuditEntry
from .cursors import Position, older_than


def record_action(
    actor: str,
    action: str,
    target: str | None,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add an entry to the caller's transaction: it commits with the change it describes, or not at all."""
    db.session.add(AuditEntry(actor=actor, action=action, target=target, reason=reason, details=details))


def audit_entries(limit: int, after: Position | None = None) -> list[AuditEntry]:
    query = (
        db.select(AuditEntry)
        .where(older_than(AuditEntry.created_at, AuditEntry.id, after))
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))
