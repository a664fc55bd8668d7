"""Signed-in /admin and /signup sessions, kept in web_sessions so that signing out ends them everywhere.

The browser's cookie carries a random token; only its sha256 is stored. A session lives while its row is
not ended, its key is active and of a scope the page accepts, it is younger than its absolute lifetime
and it was used within the idle time. Time comes from `pledges.database.utcnow`, read at each call.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from datetime import timedelta

from .. import database
from ..database import write_transaction
from ..extensions import db
from ..models import ApiKey, WebSession
from .keys import CallerKey

PURPOSES = ("admin", "signup")
# Marking "seen" is a write: do it at most this often per session, not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)
# Sessions are in none of the cached snapshots: writing one must not drop them.
TOUCHES: tuple[str, ...] = ()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(key_id: int, purpose: str) -> str:
    """Store a new session for this key and return its token, for the cookie only."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}")
    token = secrets.token_urlsafe(32)
    now = database.utcnow()
    with write_transaction(touches=TOUCHES):
        row = WebSession(token_hash=hash_token(token), key_id=key_id, purpose=purpose)
        row.created_at = row.seen_at = now
        db.session.add(row)
    return token


def session_key(
    token: object, purpose: str, scopes: Collection[str], lifetime: timedelta, idle: timedelta
) -> CallerKey | None:
    """The key behind a live session, marking it seen; None once it is ended or expired or its key no
    longer fits `scopes` (revoked keys too)."""
    if not isinstance(token, str) or not token:
        return None
    token_hash = hash_token(token)
    found = db.session.execute(
        db.select(WebSession, ApiKey)
        .join(ApiKey, ApiKey.id == WebSession.key_id)
        .where(WebSession.token_hash == token_hash, WebSession.purpose == purpose)
    ).first()
    now = database.utcnow()
    if found is None:
        return None
    row, key = found
    if (
        row.ended_at is not None
        or not key.active
        or key.scope not in scopes
        or now - row.created_at >= lifetime
        or now - row.seen_at >= idle
    ):
        return None
    caller = CallerKey(key.id, key.name, key.scope, key.rate_limit)
    stale = now - row.seen_at >= SEEN_RESOLUTION
    db.session.rollback()
    if stale:
        with write_transaction(touches=TOUCHES):
            db.session.execute(
                db.update(WebSession)
                .where(WebSession.token_hash == token_hash, WebSession.ended_at.is_(None))
                .values(seen_at=now)
            )
    return caller


def end_session(token: object) -> None:
    """End the session behind this token, wherever its cookie has been copied to."""
    if not isinstance(token, str) or not token:
        return
    with write_transaction(touches=TOUCHES):
        db.session.execute(
            db.update(WebSession)
            .where(WebSession.token_hash == hash_token(token), WebSession.ended_at.is_(None))
            .values(ended_at=database.utcnow())
        )
