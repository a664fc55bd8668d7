"""Who is calling the API: anonymous, or a partner with a Bearer key of some scope.

A wrong or revoked key is refused with 401, never treated as anonymous; but it is
first counted against the caller's address as an anonymous read (API_RATE_LIMIT),
so keys cannot be guessed faster than the address may read: past the limit, 429.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request

from .errors import ApiError, is_api_path
from .services.keys import CallerKey, find_active_key


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="porchlight"'}


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


def current_key() -> CallerKey | None:
    """The caller's validated key, if any."""
    return g.get("api_key")


def identify_caller() -> None:
    """Before the rate limiter: recognise the key, if any, so the limiter can bucket by it."""
    g.api_key = None
    g.bad_credentials = False
    header = request.headers.get("Authorization")
    if header is None or not is_api_path(request.path):
        return
    scheme, _, token = header.partition(" ")
    key = find_active_key(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if key is None:
        g.bad_credentials = True
    g.api_key = key


def refuse_bad_credentials() -> None:
    """After the rate limiter: a key that was given but not recognised is a 401, once counted."""
    if g.get("bad_credentials"):
        from .ratelimits import api_read  # imported here: ratelimits imports this module

        api_read.count()  # the address's read bucket (no key was validated): a 429 past its limit
        raise Unauthorized("The API key is wrong or has been revoked.")


def require_scope(scope: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            check_scope(scope)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def check_scope(scope: str) -> None:
    key = current_key()
    if key is None:
        raise Unauthorized("This route needs an API key: send Authorization: Bearer <key>.")
    if key.scope != scope:
        raise Forbidden(f"This route needs a key with the {scope} scope.")
