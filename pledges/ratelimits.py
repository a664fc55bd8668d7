"""Who gets how many requests: reads by key or by address, pledges by address or intake key.

The limits are flask-limiter strings from the settings (README, "Configuration");
a key may carry its own. Counters live in RATELIMIT_STORAGE_URI (Redis in
production, so they hold across workers and instances).

API reads and pledges are counted here, with limits' own strategy (RATELIMIT_STRATEGY,
fixed-window by default) over the storage flask-limiter opened, under the keys its own
decorators would use: one bucket per caller and scope, answered with X-RateLimit-*
headers (and Retry-After on a 429). flask-limiter still applies RATELIMIT_DEFAULT to
every other route; its own headers stay off (RATELIMIT_HEADERS_ENABLED), as they put a
Retry-After on every answer, and add_rate_limit_headers writes the same ones from its count.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, NamedTuple, TypeVar

from flask import Blueprint, Config, Flask, Response, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import STRATEGIES, RateLimiter
from werkzeug.exceptions import TooManyRequests

from .auth import current_key
from .extensions import limiter
from .process_storage import ProcessStorage
from .services.keys import INTAKE_SCOPES, CallerKey

log = logging.getLogger(__name__)
EXTENSION = "porchlight.ratelimits"
RETRY_STORAGE_SECONDS = 10.0  # while the storage is unreachable, count in memory for this long
F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V", bound=Callable[..., Any] | Blueprint)
EXEMPT_BLUEPRINTS: set[str] = set()  # names; an exempt view carries EXEMPT_MARK instead
EXEMPT_MARK = "rate_limits_exempt"  # kept by functools.wraps in the decorators above it


class Count(NamedTuple):
    """One limit as it stands after counting this request."""

    limit: RateLimitItem
    allowed: bool
    remaining: int
    reset_at: float  # epoch seconds: when the window ends


def in_process(strategy: str) -> Storage:
    return ProcessStorage() if strategy == "fixed-window" else MemoryStorage()


class Counters:
    """Counts in the configured storage, or in this process while that storage is unreachable.

    Our own fallback: flask-limiter's (`Limiter.limiter`) switches over only on failures its
    decorators see, and these counts are made outside them.
    """

    def __init__(self, storage: Storage, strategy: str, prefix: str) -> None:
        self.strategy = STRATEGIES[strategy]
        self.strategy_name = strategy
        if isinstance(storage, MemoryStorage):  # memory://: this process's counters, either way
            storage = in_process(strategy)
        self.shared = self.strategy(storage)
        self.fallback: RateLimiter | None = None  # opened at the first failure
        errors = storage.base_exceptions  # one class or a tuple, by storage
        self.errors = (StorageError, *(errors if isinstance(errors, tuple) else (errors,)))
        self.prefix = (prefix,) if prefix else ()
        self.retry_at = 0.0  # monotonic; until then the storage is taken to be down

    def hit(self, limit: RateLimitItem, caller: str, scope: str) -> Count:
        identifiers = (*self.prefix, caller, scope)  # as flask-limiter's own decorators count
        if time.monotonic() >= self.retry_at:
            try:
                return counted(self.shared, limit, identifiers)
            except self.errors as error:
                self.retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
                log.warning(
                    "rate limit storage unreachable (%s): counting in this process for %.0f s",
                    type(error).__name__,
                    RETRY_STORAGE_SECONDS,
                )
        if self.fallback is None:
            self.fallback = self.strategy(in_process(self.strategy_name))
        return counted(self.fallback, limit, identifiers)


def counted(strategy: RateLimiter, limit: RateLimitItem, identifiers: tuple[str, ...]) -> Count:
    allowed = strategy.hit(limit, *identifiers)
    stats = strategy.get_window_stats(limit, *identifiers)
    return Count(limit, allowed, stats.remaining if allowed else 0, stats.reset_time)


@lru_cache(maxsize=256)
def parsed(limits: str) -> tuple[RateLimitItem, ...]:
    """The limits of a string, shortest window first: the order they are counted in."""
    return tuple(sorted(parse_many(limits), key=lambda limit: limit.get_expiry()))


class SharedLimit:
    """One bucket per caller across every view it decorates (flask-limiter's shared_limit).

    `resolve` names the caller's limits and bucket, (limits string, caller), from the settings
    and the caller's validated key, if any.
    """

    def __init__(self, scope: str, resolve: Callable[[Config, CallerKey | None], tuple[str, str]]) -> None:
        self.scope = scope
        self.resolve = resolve

    def __call__(self, view: F) -> F:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            self.count()
            return view(*args, **kwargs)

        return exempt(limited)  # counted here, not again by flask-limiter

    def count(self) -> None:
        """Count this request against each limit, shortest window first; 429 at the first one over.

        As flask-limiter does: a request the minute refuses is not counted against the hour, so
        one quick retry does not cost the caller an hour. The 429 carries `retry_after` (seconds).
        """
        counters: Counters | None = current_app.extensions.get(EXTENSION)
        if counters is None:  # RATELIMIT_ENABLED is off
            return
        limits, caller = self.resolve(current_app.config, current_key())
        counts: list[Count] = []
        for limit in parsed(limits):
            counts.append(count := counters.hit(limit, caller, self.scope))
            if not count.allowed:
                g.rate_limit = count  # the headers describe the limit that refused it
                raise TooManyRequests(retry_after=retry_after(count))
        # Else the limit nearest to refusing.
        g.rate_limit = min(counts, key=lambda count: (count.remaining, count.limit.amount))


def retry_after(count: Count) -> int:
    return max(1, math.ceil(count.reset_at - time.time()))


def add_rate_limit_headers(response: Response) -> Response:
    count: Count | None = g.pop("rate_limit", None) or default_limit_count()  # popped: tests share g
    if count is None:
        return response
    headers = response.headers
    headers.add("X-RateLimit-Limit", str(count.limit.amount))
    headers.add("X-RateLimit-Remaining", str(count.remaining))
    headers.add("X-RateLimit-Reset", str(math.ceil(count.reset_at)))
    if not count.allowed:
        headers.add("Retry-After", str(retry_after(count)))
    return response


def default_limit_count() -> Count | None:
    """What flask-limiter counted of RATELIMIT_DEFAULT for this request (`Limiter.current_limit`)."""
    counted = limiter.current_limit
    if counted is None:
        return None
    counters: Counters | None = current_app.extensions.get(EXTENSION)
    errors = counters.errors if counters is not None else (StorageError,)
    try:
        window = counted.window  # its reset_at is rounded up a second: the window's own end is exact
        return Count(counted.limit, not counted.breached, window.remaining, window.reset_time)
    except errors:
        return None  # the storage failed since it counted this request: no figures to give


def init_app(app: Flask) -> None:
    """After limiter.init_app: count in the storage it opened, with its strategy and key prefix."""
    if app.config["RATELIMIT_ENABLED"]:  # else flask-limiter opened no storage, and nothing is counted
        strategy = app.config.get("RATELIMIT_STRATEGY") or "fixed-window"
        app.extensions[EXTENSION] = Counters(limiter.storage, strategy, app.config["RATELIMIT_KEY_PREFIX"])
    app.after_request(add_rate_limit_headers)


def exempt(target: V) -> V:
    """A view or blueprint flask-limiter's default limit leaves alone (`limiter.exempt`), cheaply.

    Unlike `limiter.exempt`, this leaves it no limits at all: a `@limiter.limit` of its own would
    be skipped too. None of ours has one; count such a view with a SharedLimit instead.
    """
    if isinstance(target, Blueprint):
        EXEMPT_BLUEPRINTS.add(target.name)
    else:
        setattr(target, EXEMPT_MARK, True)
    return limiter.exempt(target)  # type: ignore[return-value]


@limiter.request_filter
def is_exempt() -> bool:
    """Tells flask-limiter that what `exempt` marked has no limits to look up.

    Exempt or not, a view otherwise costs flask-limiter a walk of its blueprint and exemption
    tables to resolve its limits on every request: about 225,000 instructions, a sixth of all
    that `/healthz` costs (bench/RESULTS.md, "Fifth round"). What is left of its check (its meta
    limits' exemption, its headers) runs as before.
    """
    rule = request.url_rule
    if rule is None:  # 404 and 405: flask-limiter finds no endpoint to limit either
        return False
    blueprint, _, _ = rule.endpoint.rpartition(".")
    if blueprint in EXEMPT_BLUEPRINTS:
        return True
    view = current_app.view_functions.get(rule.endpoint)  # a rule may have no view of its own
    return hasattr(view, EXEMPT_MARK)


def api_reader(config: Config, key: CallerKey | None) -> tuple[str, str]:
    """A validated key's own limit and bucket, else the address's (after ProxyFix, as trusted)."""
    if key is None:
        return config["API_RATE_LIMIT"], get_remote_address()
    return key.rate_limit or config["API_KEY_RATE_LIMIT"], f"key:{key.id}"


def pledger(config: Config, key: CallerKey | None) -> tuple[str, str]:
    """An intake key's pledges count against the key's own limit; everyone else's against the address's."""
    if key is not None and key.scope in INTAKE_SCOPES:
        return key.rate_limit or config["API_KEY_RATE_LIMIT"], f"key:{key.id}"
    return config["PLEDGE_RATE_LIMIT"], get_remote_address()


# One bucket per caller across every API read; one per address across the form and the API.
api_read = SharedLimit("api-read", api_reader)
pledging = SharedLimit("pledge", pledger)
