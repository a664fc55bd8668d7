"""Signing in and out of /admin and /signup: one piece of code for both pages.

The cookie (Flask's signed session) holds, under the page's name ("admin" or "signup"), the key's id
and name and the session's token; services.sessions decides on every request whether that session
still lives, so a copied cookie dies with sign-out, revocation, ADMIN_IDLE_MINUTES or ADMIN_SESSION_HOURS.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta

from flask import current_app, g, session

from ..services.keys import CallerKey
from ..services.sessions import PURPOSES, end_session, session_key, start_session

# Per request: the pages and the import hooks ask more than once, the database answers once.
CACHE = "signed_in_keys"


def sign_in(purpose: str, key: CallerKey) -> None:
    """A fresh session for this key: whatever this browser held before is ended and dropped (no fixation)."""
    _end_sessions_in_cookie()
    session.clear()
    session[purpose] = {"key_id": key.id, "name": key.name, "token": start_session(key.id, purpose)}
    g.pop(CACHE, None)


def signed_in(purpose: str, scopes: Collection[str]) -> CallerKey | None:
    """The key this browser signed in to `purpose` with, while its session lives and the key fits `scopes`."""
    cache: dict[tuple[str, tuple[str, ...]], CallerKey | None] = g.setdefault(CACHE, {})
    wanted = (purpose, tuple(scopes))
    if wanted in cache:
        return cache[wanted]
    stored = session.get(purpose)
    key = None
    if isinstance(stored, dict):
        config = current_app.config
        key = session_key(
            stored.get("token"),
            purpose,
            scopes,
            lifetime=timedelta(hours=config["ADMIN_SESSION_HOURS"]),
            idle=timedelta(minutes=config["ADMIN_IDLE_MINUTES"]),
        )
    if key is None and purpose in session:  # popping an absent name would still send a cookie
        session.pop(purpose)
    cache[wanted] = key
    return key


def sign_out() -> None:
    """End this browser's session on the server, so no copy of the cookie opens anything, and clear it."""
    _end_sessions_in_cookie()
    session.clear()
    g.pop(CACHE, None)


def _end_sessions_in_cookie() -> None:
    for purpose in PURPOSES:
        stored = session.get(purpose)
        if isinstance(stored, dict):
            end_session(stored.get("token"))
