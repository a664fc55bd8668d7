"""Who gets how many requests: reads by key or by address, pledges by address.

The limits are flask-limiter strings from the settings (README, "Configuration");
a key may carry its own. Counters live in RATELIMIT_STORAGE_URI (Redis in
production, so they hold across workers and instances).

API reads and pledges are counted here: one fixed-window counter per caller, scope
and limit, kept in the storage flask-limiter was configured with, and answered
with X-RateLimit-* headers (and Retry-After on a 429). flask-limiter still applies
RATELIMIT_DEFAULT to every other route. Its own decorators cost as much as the
rest of a cached totals read (bench/RESULTS.md, "Third round"); this costs an
increment and an expiry read per limit in Redis, a dict lookup in memory.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from functools import lru_cache, wraps
from typing import Any, NamedTuple, TypeVar

from flask import Flask, Response, current_app, g
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from werkzeug.exceptions import TooManyRequests

from .auth import current_key
from .extensions import limiter

log = logging.getLogger(__name__)
EXTENSION = "porchlight.ratelimits"
RETRY_STORAGE_SECONDS = 10.0  # while the storage is unreachable, count in memory for this long
F = TypeVar("F", bound=Callable[..., Any])


class Count(NamedTuple):
    """One limit as it stands after counting this request."""

    limit: RateLimitItem
    used: int
    reset_at: float  # epoch seconds: when the window ends

    @property
    def allowed(self) -> bool:
        return self.used <= self.limit.amount

    @property
    def remaining(self) -> int:
        return max(0, self.limit.amount - self.used)


class ProcessWindows:
    """Fixed windows in this process's memory, for memory:// storage, expired lazily.

    limits' MemoryStorage starts a timer thread every 10 ms that walks every counter;
    under gevent that thread is a greenlet switched to on every tick, and the walk grows
    with every address that has pledged (bench/RESULTS.md, "Third round").
    """

    base_exceptions: tuple[type[Exception], ...] = ()
    SWEEP_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.windows: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()
        self.next_sweep = clock() + self.SWEEP_SECONDS

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        now = self.clock()
        with self.lock:
            used, ends = self.windows.get(key, (0, 0.0))
            if ends <= now:
                used, ends = 0, now + expiry
            self.windows[key] = (used := used + 1, ends)
            if now >= self.next_sweep:
                self.windows = {k: w for k, w in self.windows.items() if w[1] > now}
                self.next_sweep = now + self.SWEEP_SECONDS
        return used, ends


class StorageWindows:
    """Fixed windows in a limits storage (Redis): shared by every worker and instance."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        errors = storage.base_exceptions  # one class or a tuple, by storage
        self.base_exceptions = (StorageError, *(errors if isinstance(errors, tuple) else (errors,)))

    def hit(self, key: str, expiry: int) -> tuple[int, float]:
        used = self.storage.incr(key, expiry)
        try:
            ends = self.storage.get_expiry(key)
        except self.base_exceptions:
            ends = time.time() + expiry  # counted already: not again in memory; the reset is an upper bound
        return used, ends


class Counters:
    """Counts in the configured storage, or in this process while that storage is unreachable."""

    def __init__(self, storage: Storage, prefix: str) -> None:
        self.windows = ProcessWindows() if isinstance(storage, MemoryStorage) else StorageWindows(storage)
        self.fallback = ProcessWindows()
        self.prefix = prefix
        self.retry_at = 0.0  # monotonic; until then the storage is taken to be down

    def hit(self, limit: RateLimitItem, *identifiers: str) -> Count:
        key = limit.key_for(self.prefix, *identifiers) if self.prefix else limit.key_for(*identifiers)
        if time.monotonic() >= self.retry_at:
            try:
                return Count(limit, *self.windows.hit(key, limit.get_expiry()))
            except self.windows.base_exceptions as error:
                self.retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
                log.warning(
                    "rate limit storage unreachable (%s): counting in this process for %.0f s",
                    type(error).__name__,
                    RETRY_STORAGE_SECONDS,
                )
        return Count(limit, *self.fallback.hit(key, limit.get_expiry()))


@lru_cache(maxsize=256)
def parsed(limits: str) -> tuple[RateLimitItem, ...]:
    """The limits of a string, shortest window first: the order they are counted in."""
    return tuple(sorted(parse_many(limits), key=lambda limit: limit.get_expiry()))


class SharedLimit:
    """One bucket per caller across every view it decorates (flask-limiter's shared_limit)."""

    def __init__(self, scope: str, limits: Callable[[], str], key: Callable[[], str]) -> None:
        self.scope = scope
        self.limits = limits
        self.key = key

    def __call__(self, view: F) -> F:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            self.count()
            return view(*args, **kwargs)

        return limiter.exempt(limited)  # type: ignore[return-value]  # counted here, not twice

    def count(self) -> None:
        """Count this request against each limit, shortest window first; 429 at the first one over.

        As flask-limiter did: a request the minute refuses is not counted against the hour, so
        one quick retry does not cost the caller an hour.
        """
        counters: Counters | None = current_app.extensions.get(EXTENSION)
        if counters is None:  # RATELIMIT_ENABLED is off
            return
        caller = self.key()
        counts: list[Count] = []
        for limit in parsed(self.limits()):
            counts.append(count := counters.hit(limit, caller, self.scope))
            if not count.allowed:
                g.rate_limit = count  # the headers describe the limit that refused it
                raise TooManyRequests()
        # Else the limit nearest to refusing.
        g.rate_limit = min(counts, key=lambda count: (count.remaining, count.limit.amount))


def add_rate_limit_headers(response: Response) -> Response:
    count: Count | None = g.pop("rate_limit", None)  # popped: tests run requests in one app context
    if count is None:
        return response
    # Added, not set: flask-limiter, which could have set them too, leaves counted views alone.
    headers = response.headers
    headers.add("X-RateLimit-Limit", str(count.limit.amount))
    headers.add("X-RateLimit-Remaining", str(count.remaining))
    headers.add("X-RateLimit-Reset", str(math.ceil(count.reset_at)))
    if not count.allowed:
        headers.add("Retry-After", str(max(1, math.ceil(count.reset_at - time.time()))))
    return response


def init_app(app: Flask) -> None:
    """After limiter.init_app: count in the storage it opened, under the same key prefix."""
    if app.config["RATELIMIT_ENABLED"]:  # else flask-limiter opened no storage, and nothing is counted
        app.extensions[EXTENSION] = Counters(limiter.storage, app.config["RATELIMIT_KEY_PREFIX"])
    app.after_request(add_rate_limit_headers)


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
api_read = SharedLimit("api-read", read_limit, read_bucket)
pledging = SharedLimit("pledge", pledge_limit, get_remote_address)
