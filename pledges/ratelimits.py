"""Who gets how many requests: reads by key or by address, pledges by address.

The limits are flask-limiter strings from the settings (README, "Configuration");
a key may carry its own. Counters live in RATELIMIT_STORAGE_URI (Redis in
production, so they hold across workers and instances).
"""

from __future__ import annotations

from flask import current_app
from flask_limiter.util import get_remote_address

from .auth import current_key
from .extensions import limiter


def read_limit() -> str:
    key = current_key()
    if key is None:
        return current_app.config["API_RATE_LIMIT"]
    return key.rate_limit or current_app.config["API_KEY_RATE_LIMIT"]


def read_bucket() -> str:
    """A validated key's own bucket, else the client address (after ProxyFix, as trusted)."""
    key = current_key()
    return f"key:{key.id}" if key is not None else get_remote_address()


def pledge_limit() -> str:
    return current_app.config["PLEDGE_RATE_LIMIT"]


# One bucket per caller across every API read; one per address across the form and the API.
api_read = limiter.shared_limit(read_limit, scope="api-read", key_func=read_bucket)
pledging = limiter.shared_limit(pledge_limit, scope="pledge", key_func=get_remote_address)
