"""Caps on open streams: per process exactly, per address across every process where Redis counts.

A process holds at most STREAMS_PER_PROCESS streams (503 beyond) and an address at most
STREAMS_PER_ADDRESS (429 beyond), so open dashboards never take the connections pledges and
pages need. live.py takes a seat for each stream and frees it however the stream ends.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from limits.errors import StorageError
from limits.storage import RedisStorage, Storage

from .errors import ApiError

log = logging.getLogger(__name__)

# What a refused stream is told to wait: dashboard.js tries the stream again after 30 s too.
RETRY_AFTER_SECONDS = 30
# A shared stream count is renewed once a window; a stream may miss that many heartbeats first.
WINDOW_HEARTBEATS = 4
RETRY_STORAGE_SECONDS = 10.0  # while the storage is unreachable, count streams in this process alone


class TooManyStreams(ApiError):
    status = 429
    code = "rate_limited"


class StreamsFull(ApiError):
    status = 503
    code = "unavailable"


@dataclass(eq=False)
class Seat:
    """One open stream's place in the caps: its address and the shared window it is counted in."""

    address: str
    window: int | None = None  # None: counted in this process only
    released: bool = False


class StreamSeats:
    """How many streams are open: in this process exactly, and per address across every process.

    The per-address count is shared where the rate limit storage is Redis (RATELIMIT_STORAGE_URI),
    through limits' public Storage.incr and .get: each stream is counted in one fixed window of
    the storage, moves to the next window (+1 there, -1 where it was) at its first heartbeat in
    it, and leaves with -1. An address holds what its current and previous windows count, and a
    count a crashed process never took back expires with its window, two windows later. Under
    memory:// (or while Redis is unreachable) each process counts its own streams alone.
    """

    def __init__(
        self,
        per_process: int,
        per_address: int,
        heartbeat: float,
        storage: Storage | None = None,
        prefix: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_process = per_process
        self.per_address = per_address
        self.window_seconds = max(1, round(heartbeat * WINDOW_HEARTBEATS))
        # Only Redis takes a negative incr as a decrement (limits 5.8 has no public decr for it).
        self.storage = storage if isinstance(storage, RedisStorage) else None
        errors = storage.base_exceptions if self.storage is not None else ()
        self.errors = (StorageError, *(errors if isinstance(errors, tuple) else (errors,)))
        self.prefix = prefix
        self.clock = clock
        self.lock = threading.Lock()
        self.open = 0
        self.by_address: Counter[str] = Counter()
        self.closing = False
        self.retry_at = 0.0  # monotonic; until then the storage is taken to be down

    def _shared(self) -> bool:
        return self.storage is not None and time.monotonic() >= self.retry_at

    def _storage_failed(self, error: Exception) -> None:
        self.retry_at = time.monotonic() + RETRY_STORAGE_SECONDS
        log.warning(
            "stream count storage unreachable (%s): counting streams in this process for %.0f s",
            type(error).__name__,
            RETRY_STORAGE_SECONDS,
        )

    def take(self, address: str) -> Seat:
        """A seat for a new stream from `address`, or StreamsFull (503) / TooManyStreams (429)."""
        with self.lock:
            if self.closing or self.open >= self.per_process:
                raise self._refusal(StreamsFull(_l("Too many live streams are open; try again later.")))
            if self.by_address[address] >= self.per_address:
                raise self._refusal(TooManyStreams(_l("Too many live streams are open from your address.")))
            self.open += 1
            self.by_address[address] += 1
        seat = Seat(address)
        if self._shared():
            try:
                self._take_shared(seat)
            except TooManyStreams:
                with self.lock:
                    self._release_here(seat)
                raise
            except self.errors as error:
                self._storage_failed(error)
        return seat

    def _take_shared(self, seat: Seat) -> None:
        window = self._window()
        held = self._add(seat.address, window, 1) + self._count(seat.address, window - 1)
        if held > self.per_address:
            self._add(seat.address, window, -1)
            raise self._refusal(TooManyStreams(_l("Too many live streams are open from your address.")))
        seat.window = window

    def renew(self, seat: Seat) -> None:
        """At each heartbeat: keep the seat counted in the storage's current window."""
        if seat.window is None or seat.released or not self._shared():
            return
        window = self._window()
        if window == seat.window:
            return
        try:
            self._add(seat.address, window, 1)
            if seat.window >= window - 1:  # older windows have expired with what they counted
                self._add(seat.address, seat.window, -1)
            seat.window = window
        except self.errors as error:
            self._storage_failed(error)

    def release(self, seat: Seat) -> None:
        """The stream ended: free its seat (once, however many ways it ends)."""
        with self.lock:
            if seat.released:
                return
            seat.released = True
            self._release_here(seat)
        # A count left behind (storage down, window gone) expires with its window.
        if seat.window is not None and seat.window >= self._window() - 1 and self._shared():
            try:
                self._add(seat.address, seat.window, -1)
            except self.errors as error:
                self._storage_failed(error)

    def _release_here(self, seat: Seat) -> None:
        self.open -= 1
        self.by_address[seat.address] -= 1
        if self.by_address[seat.address] <= 0:
            del self.by_address[seat.address]

    @staticmethod
    def _refusal(error: ApiError) -> ApiError:
        error.headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return error

    def _window(self) -> int:
        return int(self.clock() // self.window_seconds)

    def _key(self, address: str, window: int) -> str:
        return f"{self.prefix}/streams/{address}/{window}"

    def _add(self, address: str, window: int, amount: int) -> int:
        assert self.storage is not None
        # Kept two windows: a stream moves on within one, so only crashed processes' counts expire.
        return self.storage.incr(self._key(address, window), 2 * self.window_seconds, amount)

    def _count(self, address: str, window: int) -> int:
        assert self.storage is not None
        return self.storage.get(self._key(address, window))
