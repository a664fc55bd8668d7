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

from flask import Blueprint, Config, Flask, Response, current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from werkzeug.exceptions import TooManyRequests

from .auth import current_key
from .extensions import limiter
from .services.keys import CallerKey

log = logging.getLogger(__name__)
EXTENSION = "porchlight.ratelimits"
RETRY_STORAGE_SECONDS = 10.0  # while the storage is unreachable, count in memory for this long
F = TypeVar("F", bound=Callable[..., Any])
V = TypeVar("V", bound=Callable[..., Any] | Blueprint)
EXEMPT_BLUEPRINTS: set[str] = set()  # names; an exempt view carries EXEMPT_MARK instead
EXEMPT_MARK = "rate_limits_exempt"  # kept by functools.wraps in the decorators above it


class Window(NamedTuple):
    """One limit of a limits string, with what counting it needs worked out once."""

    seconds: int
    amount: int
    amount_header: str  # X-RateLimit-Limit
    # limits' own key layout: <namespace>/[<prefix>/]<caller>/<scope>/<amount>/<multiples>/<granularity>
    namespace: str
    key_suffix: str


class Count(NamedTuple):
    """One limit as it stands after counting this request."""

    window: Window
    used: int
    reset_at: float  # epoch seconds: when the window ends

    @property
    def allowed(self) -> bool:
        return self.used <= self.window.amount

    @property
    def remaining(self) -> int:
        return max(0, self.window.amount - self.used)


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
        self.prefix = f"{prefix}/" if prefix else ""
        self.retry_at = 0.0  # monotonic; until then the storage is taken to be down

    def hit(self, window: Window, caller: str, scope: str) -> Count:
        key = f"{window.namespace}/{self.prefix}{caller}/{scope}/{window.key_suffix}"
        if time.monotonic() >= self.retry_at:
            try:
                return Count(window, *self.windows.hit(key, window.seconds))
            except self.windows.base_exceptions as error:
                self.retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
                log.warning(
                    "rate limit storage unreachable (%s): counting in this process for %.0f s",
                    type(error).__name__,
                    RETRY_STORAGE_SECONDS,
                )
        return Count(window, *self.fallback.hit(key, window.seconds))


@lru_cache(maxsize=256)
def parsed(limits: str) -> tuple[Window, ...]:
    """The limits of a string, shortest window first: the order they are counted in."""
    windows = (
        Window(
            seconds=limit.get_expiry(),
            amount=limit.amount,
            amount_header=str(limit.amount),
            namespace=limit.namespace,
            key_suffix=f"{limit.amount}/{limit.multiples}/{limit.GRANULARITY.name}",
        )
        for limit in parse_many(limits)
    )
    return tuple(sorted(windows, key=lambda window: window.seconds))


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

        As flask-limiter did: a request the minute refuses is not counted against the hour, so
        one quick retry does not cost the caller an hour.
        """
        # The app and g looked up once each, not once per attribute: this runs on every API read.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        counters: Counters | None = app.extensions.get(EXTENSION)
        if counters is None:  # RATELIMIT_ENABLED is off
            return
        state = g._get_current_object()  # type: ignore[attr-defined]
        limits, caller = self.resolve(app.config, current_key(state))
        counts: list[Count] = []
        for window in parsed(limits):
            counts.append(count := counters.hit(window, caller, self.scope))
            if not count.allowed:
                state.rate_limit = count  # the headers describe the limit that refused it
                raise TooManyRequests()
        # Else the limit nearest to refusing.
        state.rate_limit = min(counts, key=nearest_first)


def nearest_first(count: Count) -> tuple[int, int]:
    return count.remaining, count.window.amount


def add_rate_limit_headers(response: Response) -> Response:
    count: Count | None = g.pop("rate_limit", None)  # popped: tests run requests in one app context
    if count is None:
        return response
    # Added, not set: flask-limiter, which could have set them too, leaves counted views alone.
    headers = response.headers
    headers.add("X-RateLimit-Limit", count.window.amount_header)
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
    return config["PLEDGE_RATE_LIMIT"], get_remote_address()


# One bucket per caller across every API read; one per address across the form and the API.
api_read = SharedLimit("api-read", api_reader)
pledging = SharedLimit("pledge", pledger)
