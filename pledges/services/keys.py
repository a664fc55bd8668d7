"""Partner API keys: created, listed, revoked, and recognised on each request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from limits import parse_many

from ..database import utcnow, write_transaction
from ..extensions import db
from ..models import SCOPES, ApiKey

# Keys that may take pledges for many people: past the per-address checks, against their own limit.
INTAKE_SCOPES = ("intake", "admin")
# Marking "last used" is a write: do it at most this often per key, not on every read.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyRequestError(ValueError):
    """A key request that cannot be carried out (a duplicate name, an unknown key, a bad limit)."""


@dataclass(frozen=True)
class CallerKey:
    """What a request knows about the key it came with: never the token or its hash."""

    id: int
    name: str
    scope: str
    rate_limit: str | None


def create_key(name: str, scope: str, rate_limit: str | None = None) -> str:
    """Store a new key and return its token: the only time the token is ever seen."""
    name = name.strip()
    if not name or len(name) > 80:
        raise KeyRequestError("a key needs a name of 1 to 80 characters")
    if scope not in SCOPES:
        raise KeyRequestError(f"scope must be one of {', '.join(SCOPES)}")
    if rate_limit is not None:
        try:
            parse_many(rate_limit)
        except ValueError as error:
            raise KeyRequestError(f"not a rate limit: {rate_limit!r} (try '1200/minute')") from error
    token = ApiKey.generate_token()
    with write_transaction():
        if db.session.scalars(db.select(ApiKey).where(ApiKey.name == name)).first():
            raise KeyRequestError(f"a key named {name!r} exists already")
        db.session.add(
            ApiKey(name=name, scope=scope, token_hash=ApiKey.hash_token(token), rate_limit=rate_limit)
        )
    return token


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(db.select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(name: str) -> None:
    with write_transaction():
        key = db.session.scalars(db.select(ApiKey).where(ApiKey.name == name)).first()
        if key is None:
            raise KeyRequestError(f"there is no key named {name!r}")
        if key.revoked_at is None:
            key.revoked_at = utcnow()


def find_active_key(token: str) -> CallerKey | None:
    """The key this token belongs to, if it exists and is not revoked."""
    if not token.startswith(ApiKey.TOKEN_PREFIX) or len(token) > 200:
        return None
    key = db.session.scalars(db.select(ApiKey).where(ApiKey.token_hash == ApiKey.hash_token(token))).first()
    if key is None or not key.matches(token) or not key.active:
        return None
    caller = CallerKey(key.id, key.name, key.scope, key.rate_limit)
    now = utcnow()
    stale = key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION
    db.session.rollback()
    if stale:
        with write_transaction():
            db.session.execute(db.update(ApiKey).where(ApiKey.id == caller.id).values(last_used_at=now))
    return caller
